"""From indicator values to one need index: normalise, weight, aggregate, explain, rank.

Two levels, as in the JRC/OECD Handbook and COINr: indicators -> domain scores (weighted
within each domain) -> need index (weighted over domains). The array functions
(:func:`normalise_array`, :func:`aggregate`) work on stacks of replicates so that the
Monte Carlo of :mod:`geo_send.uncertainty` runs the very code that builds the index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import AGGREGATIONS, NORMALISATIONS, DomainSpec, IndexSettings, IndicatorSpec

__all__ = [
    "normalise",
    "normalise_array",
    "exponential_transform",
    "aggregate",
    "prepare",
    "combine",
    "Aggregated",
    "build_index",
    "rank_areas",
    "rank_array",
    "top_drivers",
    "short_label",
    "EXPONENTIAL_CONSTANT",
    "GEOMETRIC_RANGE",
    "TOP_DRIVERS",
    "NO_DRIVER",
]

#: The IoD exponential transformation maps the most deprived rank to this value.
EXPONENTIAL_CONSTANT = 23.0
#: Geometric aggregation takes every normalised indicator min–max rescaled to this range.
GEOMETRIC_RANGE = (1.0, 100.0)
#: How many indicators ``top_drivers`` names.
TOP_DRIVERS = 2
#: ``top_drivers`` text for an area where no indicator is above the area average.
NO_DRIVER = "no indicator above the area average"


# -- normalisation ------------------------------------------------------------------------


def exponential_transform(r: np.ndarray | float) -> np.ndarray:
    """IoD exponential transformation of a scaled rank.

    Parameters
    ----------
    r : array_like
        Rank scaled to (0, 1]: rank / n with rank 1 the least need, so 1 = most need.

    Returns
    -------
    ndarray
        X = −23 ln(1 − r (1 − e^(−100/23))), from about 0 (least need) to 100 (most).

    Notes
    -----
    English Indices of Deprivation technical report: the transformation stretches the
    most deprived end, so a high score in one domain is not fully cancelled by a low
    score in another when domains are combined.
    """
    r = np.asarray(r, dtype=float)
    c = EXPONENTIAL_CONSTANT
    return -c * np.log(1 - r * (1 - np.exp(-100 / c)))


def _average_ranks(x: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest) along the last axis, ignoring missing values."""
    filled = np.where(present, x, np.inf)  # missing sort last and do not move the others
    # pandas ranks rows in compiled code, as scipy.stats.rankdata would
    rows = filled.reshape(-1, filled.shape[-1])
    ranks = pd.DataFrame(rows).rank(axis=1, method="average").to_numpy().reshape(filled.shape)
    return np.where(present, ranks, np.nan)


def normalise_array(x: np.ndarray, method: str) -> np.ndarray:
    """Normalise along the last axis (areas); higher input = more need.

    Parameters
    ----------
    x : ndarray, shape (..., n)
        Indicator values already oriented (multiplied by the direction). Missing values
        (NaN) are left out and stay missing.
    method : {'zscore', 'minmax', 'rank', 'exponential'}

    Returns
    -------
    ndarray
        Same shape.

    Notes
    -----
    With n the number of areas with a value:

    - ``zscore``: (x − mean) / sd, sd with ddof = 0; a constant indicator gives 0.
    - ``minmax``: 100 (x − min) / (max − min) (COINr default range 0–100); constant: 50.
    - ``rank``: percentile rank 100 (r − 1) / (n − 1), r the average rank (COINr
      ``n_prank`` uses the minimum rank for ties); constant or n = 1: 50.
    - ``exponential``: :func:`exponential_transform` of r / n (IoD), 0–100.

    A constant indicator sits at the middle of the scale, so it moves no area.
    """
    x = np.asarray(x, dtype=float)
    present = ~np.isnan(x)
    count = present.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "zscore":
            x0 = np.where(present, x, 0.0)
            mean = x0.sum(axis=-1, keepdims=True) / count
            dev = np.where(present, x - mean, 0.0)
            sd = np.sqrt((dev * dev).sum(axis=-1, keepdims=True) / count)
            out = np.where(sd > 0, dev / np.where(sd > 0, sd, 1.0), 0.0)
        elif method == "minmax":
            lo = np.where(present, x, np.inf).min(axis=-1, keepdims=True)
            hi = np.where(present, x, -np.inf).max(axis=-1, keepdims=True)
            span = hi - lo
            out = np.where(span > 0, 100 * (x - lo) / np.where(span > 0, span, 1.0), 50.0)
        elif method == "rank":
            r = _average_ranks(x, present)
            out = np.where(count > 1, 100 * (r - 1) / np.maximum(count - 1, 1), 50.0)
        elif method == "exponential":
            out = exponential_transform(_average_ranks(x, present) / count)
        else:
            raise ValueError(
                f"unknown normalisation {method!r}; expected one of {', '.join(NORMALISATIONS)}"
            )
    return np.where(present, out, np.nan)


def normalise(values: pd.Series, method: str) -> pd.Series:
    """Normalise one indicator (already oriented so that higher = more need).

    See :func:`normalise_array` for the methods and formulas.
    """
    return pd.Series(normalise_array(values.to_numpy(dtype=float), method), index=values.index,
                     name=values.name)


def _positive(v: np.ndarray) -> np.ndarray:
    """Min–max rescale along the last axis to :data:`GEOMETRIC_RANGE` (constant: midpoint)."""
    lo_target, hi_target = GEOMETRIC_RANGE
    unit = normalise_array(v, "minmax") / 100
    return lo_target + (hi_target - lo_target) * unit


# -- aggregation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Aggregated:
    """Arrays from :func:`aggregate`; the last axis is areas, leading axes replicates.

    Attributes
    ----------
    index : ndarray, shape (..., n)
        The need index.
    domains : ndarray, shape (..., m, n)
        Domain scores.
    contributions : ndarray, shape (..., k, n), or None
        Each indicator's additive share of the index (arithmetic) or of ln(index)
        (geometric); missing where the indicator is. None when not asked for.
    domain_contributions : ndarray, shape (..., m, n), or None
        The same per domain; sums over domains give the index (or its log).
    """

    index: np.ndarray
    domains: np.ndarray
    contributions: np.ndarray | None
    domain_contributions: np.ndarray | None


def aggregate(
    values: np.ndarray,
    membership: np.ndarray,
    indicator_weights: np.ndarray,
    domain_weights: np.ndarray,
    *,
    normalisation: str,
    aggregation: str,
    explain: bool = True,
) -> Aggregated:
    """Normalise and aggregate oriented indicator values in two levels.

    Parameters
    ----------
    values : ndarray, shape (..., k, n)
        Indicator values times their direction (higher = more need), k indicators by n
        areas; leading axes are replicates.
    membership : ndarray, shape (m, k)
        1 where indicator k belongs to domain m.
    indicator_weights : ndarray, shape (k,) or (..., k)
    domain_weights : ndarray, shape (m,) or (..., m)
        Relative weights (need not sum to 1).
    normalisation : {'zscore', 'minmax', 'rank', 'exponential'}
    aggregation : {'arithmetic', 'geometric'}
    explain : bool
        Also compute the contributions (default True).

    Returns
    -------
    Aggregated

    Notes
    -----
    Weights are renormalised over what an area has: an indicator missing in an area is
    left out of its domain's mean there (the others' weights scale up), and a domain
    with no indicator left is left out of the index.

    Arithmetic: S_d = Σ w̃_k v_k, I = Σ W̃_d S_d (w̃, W̃ the renormalised weights).
    Contributions W̃_d w̃_k v_k add up to I exactly.

    Geometric (less compensatory): the weighted geometric mean needs positive inputs, so
    every normalised indicator is first min–max rescaled to [1, 100] across areas (the
    COINr recommendation for ``a_gmean``); then S_d = Π v_k^w̃_k and I = Π S_d^W̃_d.
    z-scores and min–max are both affine in x, so they give the same geometric index.
    Contributions W̃_d w̃_k ln v_k add up to ln I.
    """
    prepared = prepare(values, normalisation=normalisation, aggregation=aggregation)
    return combine(prepared, membership, indicator_weights, domain_weights,
                   aggregation=aggregation, explain=explain)


def prepare(values: np.ndarray, *, normalisation: str, aggregation: str) -> np.ndarray:
    """Normalise, and for the geometric mean rescale to [1, 100] and take logs.

    The first half of :func:`aggregate`, which does not depend on the weights: the Monte
    Carlo computes it once for values that do not change between draws.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"unknown aggregation {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}"
        )
    v = normalise_array(values, normalisation)
    if aggregation == "geometric":
        v = np.log(_positive(v))
    return v


def combine(
    prepared: np.ndarray,
    membership: np.ndarray,
    indicator_weights: np.ndarray,
    domain_weights: np.ndarray,
    *,
    aggregation: str,
    explain: bool = True,
) -> Aggregated:
    """Weight and aggregate the output of :func:`prepare` (the second half of :func:`aggregate`).

    ``prepared`` (..., k, n) broadcasts against the weights (..., k) and (..., m), so one
    set of values can be combined with many sets of weights. With ``explain=False`` the
    contributions are not computed (they are ``None``): the Monte Carlo needs the index only.
    """
    v = prepared
    geometric = aggregation == "geometric"
    present = ~np.isnan(v)
    v0 = np.where(present, v, 0.0)
    w = np.asarray(indicator_weights, dtype=float)[..., :, None] * present  # (..., k, n)
    membership = np.asarray(membership, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight_sum = np.einsum("mk,...kn->...mn", membership, w)
        domain = np.einsum("mk,...kn->...mn", membership, w * v0) / weight_sum
        domain_present = weight_sum > 0
        domain = np.where(domain_present, domain, np.nan)
        dw = np.asarray(domain_weights, dtype=float)[..., :, None] * domain_present
        dw_sum = dw.sum(axis=-2, keepdims=True)
        total = (dw * np.where(domain_present, domain, 0.0)).sum(axis=-2) / dw_sum[..., 0, :]
        total = np.where(dw_sum[..., 0, :] > 0, total, np.nan)
        contrib = domain_contrib = None
        if explain:
            share = np.where(present, w / np.einsum("mk,...mn->...kn", membership, weight_sum),
                             np.nan)  # w̃ (..., k, n)
            dshare = np.where(dw_sum > 0, dw / dw_sum, np.nan)  # W̃ (..., m, n)
            domain_contrib = np.where(domain_present, dshare * domain, np.nan)
            ind_dshare = np.einsum("mk,...mn->...kn", membership, np.nan_to_num(dshare))
            contrib = np.where(present, ind_dshare * share * v, np.nan)
    if geometric:
        return Aggregated(index=np.exp(total), domains=np.exp(domain), contributions=contrib,
                          domain_contributions=domain_contrib)
    return Aggregated(index=total, domains=domain, contributions=contrib,
                      domain_contributions=domain_contrib)


def _structure(
    indicators: Sequence[IndicatorSpec], domains: Sequence[DomainSpec]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Membership matrix, indicator weights, domain weights and directions."""
    names = [d.name for d in domains]
    membership = np.zeros((len(domains), len(indicators)))
    for k, spec in enumerate(indicators):
        membership[names.index(spec.domain), k] = 1.0
    return (
        membership,
        np.array([s.weight for s in indicators], dtype=float),
        np.array([d.weight for d in domains], dtype=float),
        np.array([s.direction for s in indicators], dtype=float),
    )


# -- drivers ------------------------------------------------------------------------------


def short_label(spec: IndicatorSpec) -> str:
    """Return the label without its parenthesised qualifiers (for ``top_drivers``)."""
    return re.sub(r"\s*\([^)]*\)", "", spec.label).strip() or spec.name


def top_drivers(
    contributions: pd.DataFrame,
    labels: Sequence[str],
    *,
    n: int = TOP_DRIVERS,
) -> pd.Series:
    """Name the indicators that lift each area's index most above the area average.

    Parameters
    ----------
    contributions : DataFrame
        One column per indicator (additive contributions), one row per area.
    labels : sequence of str
        Label per column.
    n : int
        At most this many names per area.

    Returns
    -------
    Series of str
        ``"label 1; label 2"`` in decreasing order of c_ik − mean_j c_jk, keeping only
        positive excesses; :data:`NO_DRIVER` where none is positive; missing where the
        area has no index.

    Notes
    -----
    For z-scores the area mean of each contribution is 0, so this is simply the largest
    positive contributions. For other normalisations (all contributions positive) the
    excess over the average keeps a heavily weighted but unremarkable indicator from
    being named.
    """
    c = contributions.to_numpy(dtype=float)
    present = ~np.isnan(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(present, c, 0.0).sum(axis=0) / present.sum(axis=0)
    # excesses equal up to rounding count as ties (kept in indicator order), so the text
    # never depends on the order in which the areas were summed
    scale = np.nanmax(np.abs(c), initial=0.0) if present.any() else 0.0
    excess = np.round((c - mean) / (scale or 1.0), 9)
    out = []
    for row, values in zip(c, excess, strict=True):
        if np.isnan(row).all():
            out.append(None)
            continue
        order = [j for j in np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
                 if np.isfinite(values[j]) and values[j] > 0][:n]
        out.append("; ".join(labels[j] for j in order) if order else NO_DRIVER)
    return pd.Series(out, index=contributions.index, dtype="str", name="top_drivers")


# -- the stage ----------------------------------------------------------------------------


def build_index(
    values: pd.DataFrame,
    indicators: Sequence[IndicatorSpec],
    domains: Sequence[DomainSpec],
    settings: IndexSettings,
) -> pd.DataFrame:
    """Combine indicator values into domain scores, the need index and its drivers.

    Parameters
    ----------
    values : DataFrame
        Indexed by area code, with a column ``spec.name`` per indicator (the value the
        index uses, e.g. from :func:`geo_send.indicators.compute_indicators`).
    indicators, domains : sequences of specs
    settings : IndexSettings
        ``normalisation`` and ``aggregation``.

    Returns
    -------
    DataFrame
        ``need_index``, ``top_drivers``, ``{domain}_score``, ``{domain}_contribution``,
        ``{indicator}_contribution`` and ``indicators_missing_count``.

    Notes
    -----
    See :func:`normalise_array` and :func:`aggregate` for the formulas, and
    ``docs/methodology.md`` for the choices and their references. An indicator missing in
    an area is left out of its domain there (the remaining weights are rescaled) and
    counted in ``indicators_missing_count``.
    """
    membership, iw, dw, direction = _structure(indicators, domains)
    x = values[[s.name for s in indicators]].to_numpy(dtype=float).T * direction[:, None]
    agg = aggregate(x, membership, iw, dw, normalisation=settings.normalisation,
                    aggregation=settings.aggregation)
    out = pd.DataFrame(index=values.index)
    out["need_index"] = agg.index
    contributions = pd.DataFrame(agg.contributions.T, index=values.index,
                                 columns=[f"{s.name}_contribution" for s in indicators])
    out["top_drivers"] = top_drivers(contributions, [short_label(s) for s in indicators])
    for j, domain in enumerate(domains):
        out[f"{domain.name}_score"] = agg.domains[j]
    for j, domain in enumerate(domains):
        out[f"{domain.name}_contribution"] = agg.domain_contributions[j]
    out = pd.concat([out, contributions], axis=1)
    out["indicators_missing_count"] = values[[s.name for s in indicators]].isna().sum(axis=1)
    return out


def rank_array(index: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, 1 = highest; ties keep their order; missing rank last.

    The caller orders the areas by code, so ties are broken by code as in
    :func:`rank_areas`.
    """
    key = np.where(np.isnan(index), np.inf, -index)
    order = np.argsort(key, axis=-1, kind="stable")
    ranks = np.empty(index.shape, dtype=np.int64)
    positions = np.broadcast_to(np.arange(1, index.shape[-1] + 1), index.shape)
    np.put_along_axis(ranks, order, positions, axis=-1)
    return ranks


def rank_areas(index: pd.Series) -> pd.Series:
    """Rank 1 = highest need; ties broken by area code (stable, deterministic).

    Areas without an index value have no rank (missing, after every ranked area in the
    ranked table).
    """
    order = (
        pd.DataFrame({"v": index, "code": index.index})
        .dropna(subset=["v"])
        .sort_values(["v", "code"], ascending=[False, True], kind="stable")
    )
    ranks = pd.Series(np.arange(1, len(order) + 1), index=order.index, name="rank")
    return ranks.reindex(index.index).astype("Int64")
