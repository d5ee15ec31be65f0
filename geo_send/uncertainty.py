"""How sure is each rank? Monte Carlo uncertainty and sensitivity analysis of the index.

Step 7 of the JRC/OECD Handbook (2008), as COINr's ``get_sensitivity`` does it: vary the
inputs and assumptions at random, rebuild the index each time with the very code of
:mod:`geo_send.indicators` and :mod:`geo_send.index`, and report each area's rank
distribution. Three sources of uncertainty are varied:

``count_noise``
    every count-based numerator is redrawn from a Poisson distribution with mean the
    observed count (capped at the denominator for proportions), and smoothing is redone;
``weights``
    every indicator and domain weight is multiplied by a factor drawn uniformly from
    [1 − s, 1 + s], s = ``[index] weight_spread`` (COINr's ±25% noise by default);
``method``
    the normalisation and the aggregation are drawn at random from all the choices.

The same random numbers serve the run that varies everything (``all``) and the three
runs that vary one source alone (common random numbers), so their effects compare fairly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .config import AGGREGATIONS, NORMALISATIONS, DomainSpec, IndexSettings, IndicatorSpec
from .index import _structure, aggregate, combine, prepare, rank_array
from .indicators import required_neighbourhoods, smoothed_rates

if TYPE_CHECKING:
    from libpysal.graph import Graph
    from libpysal.weights import W

    from .spatial import Weights

__all__ = ["Uncertainty", "assess_uncertainty", "ASSUMPTIONS", "METHODS", "QUANTILES",
           "rank_columns"]

log = logging.getLogger(__name__)

#: The sources of uncertainty, each varied alone, and all together.
ASSUMPTIONS = {
    "count_noise": "Poisson resampling of every count-based numerator (smoothing redone)",
    "weights": "every indicator and domain weight times a uniform factor in [1 - s, 1 + s]",
    "method": "normalisation and aggregation drawn at random from all the choices",
    "all": "all three at once",
}
#: Every (normalisation, aggregation) pair the ``method`` assumption draws from.
METHODS = tuple((n, a) for n in NORMALISATIONS for a in AGGREGATIONS)
#: Rank percentiles reported per area.
QUANTILES = (0.05, 0.5, 0.95)
#: Draws are processed in chunks of about this many indicator values (bounded memory).
CHUNK_VALUES = 2_000_000


def rank_columns(top_n: int) -> list[str]:
    """Names of the per-area columns: ``rank_p05``, ``rank_median``, ``rank_p95``, ``p_top{n}``."""
    return ["rank_p05", "rank_median", "rank_p95", f"p_top{top_n}"]


@dataclass(frozen=True)
class Uncertainty:
    """Results of :func:`assess_uncertainty`.

    Attributes
    ----------
    areas : DataFrame
        Per area (same index as the input table): ``rank_p05``, ``rank_median``,
        ``rank_p95`` (5th, 50th and 95th percentile of the rank over the draws that vary
        everything) and ``p_top{n}``, the share of those draws in which the area ranks
        in the top n.
    sensitivity : DataFrame
        One row per assumption (``count_noise``, ``weights``, ``method``, ``all``):
        ``mean_abs_rank_shift`` (mean over draws and areas of |rank − nominal rank|),
        ``mean_rank_interval`` (mean width rank_p95 − rank_p05), ``draws`` and
        ``description``.
    rank_draws : DataFrame
        Rank of every area (columns, by code) in every draw varying everything (rows).
    nominal_rank : Series
        Rank under the configured choices, as :func:`geo_send.index.rank_areas` gives.
    settings : dict
        Draws, seed, weight spread, top n, the nominal method and the methods drawn from
        (for the run manifest).
    """

    areas: pd.DataFrame
    sensitivity: pd.DataFrame
    rank_draws: pd.DataFrame
    nominal_rank: pd.Series
    settings: dict = field(default_factory=dict)


def assess_uncertainty(
    table: pd.DataFrame,
    indicators: Sequence[IndicatorSpec],
    domains: Sequence[DomainSpec],
    settings: IndexSettings,
    *,
    seed: int,
    weights: Weights | Graph | W | None = None,
    draws: int | None = None,
) -> Uncertainty:
    """Monte Carlo rank intervals and a one-at-a-time sensitivity table.

    Parameters
    ----------
    table : DataFrame
        The numeric inputs (counts, denominators, scores) indexed by area code, as
        :func:`geo_send.load_table` returns.
    indicators, domains : sequences of specs
    settings : IndexSettings
        Nominal ``normalisation`` and ``aggregation``, ``draws``, ``weight_spread``,
        ``top_n``.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed gives identical results.
    weights : geo_send Weights or a libpysal Graph or W, optional
        Needed when an indicator uses ``spatial_eb`` smoothing.
    draws : int, optional
        Overrides ``settings.draws``.

    Returns
    -------
    Uncertainty

    Notes
    -----
    Areas are put in code order before any random number is drawn, so the results do
    not depend on the order of the input rows. Rank percentiles use the inverted
    empirical distribution (``numpy.quantile(..., method="inverted_cdf")``), so they are
    whole ranks; their Monte Carlo error shrinks as 1/√draws. A ward with a count of 0
    stays at 0 in every draw: Poisson resampling of observed counts carries no noise
    for it.
    """
    draws = settings.draws if draws is None else int(draws)
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    codes = table.index.sort_values()
    data = table.loc[codes]
    n = len(codes)
    membership, iw, dw, direction = _structure(indicators, domains)
    k, m = len(indicators), len(domains)
    neighbours = required_neighbourhoods(indicators, weights, codes)
    nominal = (settings.normalisation, settings.aggregation)

    # observed values (k, n) in their units; oriented (higher = more need) below
    observed = np.empty((k, n))
    counted = {}  # numerator column -> (observed counts, cap)
    for j, spec in enumerate(indicators):
        if spec.is_count_based:
            num = data[spec.numerator].to_numpy(dtype=float)
            den = data[spec.denominator].to_numpy(dtype=float)
            observed[j] = smoothed_rates(num, den, spec.smoothing, neighbours) * spec.multiplier
            cap = den if spec.kind == "proportion" else np.full(n, np.inf)
            previous = counted.get(spec.numerator, (num, np.full(n, np.inf)))[1]
            counted[spec.numerator] = (num, np.fmin(previous, cap))
        else:
            observed[j] = data[spec.column].to_numpy(dtype=float)
    oriented = observed * direction[:, None]

    # the observed values do not change between the draws that vary only the weights or
    # only the method: normalise them once per method, and rank the 8 method-only indices
    observed_prepared = {
        method: prepare(oriented, normalisation=method[0], aggregation=method[1])
        for method in METHODS
    }
    nominal_index = combine(observed_prepared[nominal], membership, iw, dw,
                            aggregation=nominal[1], explain=False).index
    nominal_rank = rank_array(nominal_index)
    method_ranks = np.stack([
        rank_array(combine(observed_prepared[method], membership, iw, dw,
                           aggregation=method[1], explain=False).index)
        for method in METHODS
    ])

    spread = settings.weight_spread
    rng = np.random.default_rng(seed)
    chunk = max(1, min(draws, CHUNK_VALUES // max(1, n * k)))
    ranks = {name: np.empty((draws, n), dtype=np.int32) for name in ASSUMPTIONS}
    columns = list(counted)
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        # every random number of this chunk, always in the same order
        resampled = {}
        for column in columns:
            counts, cap = counted[column]
            lam = np.where(np.isnan(counts), 0.0, counts)
            drawn = rng.poisson(lam, size=(size, n)).astype(float)
            resampled[column] = np.where(np.isnan(counts), np.nan, np.fmin(drawn, cap))
        iw_draw = iw * rng.uniform(1 - spread, 1 + spread, size=(size, k))
        dw_draw = dw * rng.uniform(1 - spread, 1 + spread, size=(size, m))
        method_draw = rng.integers(len(METHODS), size=size)

        noisy = np.empty((size, k, n))
        for j, spec in enumerate(indicators):
            if spec.is_count_based:
                den = data[spec.denominator].to_numpy(dtype=float)
                noisy[:, j] = smoothed_rates(resampled[spec.numerator], den, spec.smoothing,
                                             neighbours) * spec.multiplier
            else:
                noisy[:, j] = observed[j]
        noisy *= direction[:, None]
        rows = slice(start, start + size)
        ranks["count_noise"][rows] = _ranks(noisy, membership, iw, dw, nominal, None)
        ranks["weights"][rows] = rank_array(
            combine(observed_prepared[nominal], membership, iw_draw, dw_draw,
                    aggregation=nominal[1], explain=False).index
        )
        ranks["method"][rows] = method_ranks[method_draw]
        ranks["all"][rows] = _ranks(noisy, membership, iw_draw, dw_draw, nominal, method_draw)

    missing = np.isnan(nominal_index)
    names = rank_columns(settings.top_n)
    quantiles = np.quantile(ranks["all"], QUANTILES, axis=0, method="inverted_cdf")
    areas = pd.DataFrame(
        {
            names[0]: quantiles[0].astype(np.int64),
            names[1]: quantiles[1].astype(np.int64),
            names[2]: quantiles[2].astype(np.int64),
            names[3]: (ranks["all"] <= settings.top_n).mean(axis=0),
        },
        index=codes,
    )
    if missing.any():
        areas = areas.astype(float)
        areas.loc[missing] = np.nan
    sensitivity = []
    for name, description in ASSUMPTIONS.items():
        q = np.quantile(ranks[name], (QUANTILES[0], QUANTILES[2]), axis=0, method="inverted_cdf")
        sensitivity.append(
            {
                "assumption": name,
                "mean_abs_rank_shift": float(np.abs(ranks[name] - nominal_rank)[:, ~missing].mean())
                if (~missing).any() else np.nan,
                "mean_rank_interval": float((q[1] - q[0])[~missing].mean())
                if (~missing).any() else np.nan,
                "draws": draws,
                "description": description,
            }
        )
    log.info("Monte Carlo: %d draws over %d areas", draws, n)
    return Uncertainty(
        areas=areas.reindex(table.index),
        sensitivity=pd.DataFrame(sensitivity).set_index("assumption"),
        rank_draws=pd.DataFrame(ranks["all"], columns=codes),
        nominal_rank=pd.Series(nominal_rank, index=codes, name="rank").reindex(table.index),
        settings={
            "draws": draws,
            "seed": seed,
            "weight_spread": spread,
            "top_n": settings.top_n,
            "nominal": {"normalisation": nominal[0], "aggregation": nominal[1]},
            "methods": [f"{a}/{b}" for a, b in METHODS],
        },
    )


def _ranks(
    values: np.ndarray,
    membership: np.ndarray,
    iw: np.ndarray,
    dw: np.ndarray,
    nominal: tuple[str, str],
    method_draw: np.ndarray | None,
) -> np.ndarray:
    """Ranks (draws, n) of the index of each draw, under the nominal or drawn method."""
    if method_draw is None:
        index = aggregate(values, membership, iw, dw, normalisation=nominal[0],
                          aggregation=nominal[1], explain=False).index
        return rank_array(index)
    index = np.empty(values.shape[:1] + values.shape[2:])
    iw = np.broadcast_to(iw, values.shape[:2])
    dw = np.broadcast_to(dw, (values.shape[0], membership.shape[0]))
    for j, (normalisation, aggregation) in enumerate(METHODS):
        chosen = method_draw == j
        if chosen.any():
            index[chosen] = aggregate(values[chosen], membership, iw[chosen], dw[chosen],
                                      normalisation=normalisation,
                                      aggregation=aggregation, explain=False).index
    return rank_array(index)
