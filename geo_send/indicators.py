"""Indicators from counts and scores: values, 95% intervals, smoothing and benchmark labels.

Each configured indicator becomes a block of columns (see :func:`indicator_columns`):

==========================  ============================================================
``{name}``                  the value the index uses (smoothed when configured)
``{name}_raw``              the crude rate ``numerator / denominator * multiplier``
``{name}_lo``, ``_hi``      95% interval of the crude rate (Wilson; Byar / exact Poisson)
``{name}_small_n``          numerator below :data:`SMALL_N` (10): read with care
``{name}_vs_benchmark``     ``higher`` / ``similar`` / ``lower`` than the comparator
==========================  ============================================================

Scores (``kind = "score"``) are ready-made values with no count behind them, so they have
no interval, no smoothing and no comparison: only ``{name}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import special

if TYPE_CHECKING:  # libpysal is imported only by whoever builds its weights
    from libpysal.graph import Graph
    from libpysal.weights import W

    from .spatial import Weights

from ._errors import ConfigError
from .config import IndicatorSpec

__all__ = [
    "compute_indicators",
    "indicator_columns",
    "comparators",
    "wilson_interval",
    "byar_interval",
    "exact_poisson_interval",
    "poisson_interval",
    "global_eb",
    "spatial_eb",
    "neighbourhoods",
    "required_neighbourhoods",
    "compare_with_benchmark",
    "smoothed_rates",
    "CONFIDENCE",
    "Z",
    "SMALL_N",
    "BYAR_MIN_COUNT",
]

#: Confidence level of every interval (Fingertips' default; it also uses 99.8%).
CONFIDENCE = 0.95
#: Two-sided standard normal quantile for :data:`CONFIDENCE`: Φ⁻¹(0.975).
Z = 1.959963984540054
#: A numerator below this is flagged ``{name}_small_n`` (Fingertips' small-number rule).
SMALL_N = 10
#: Byar's approximation is used from this count up; the exact Poisson interval below it.
BYAR_MIN_COUNT = 10

#: Labels of the benchmark comparison.
HIGHER, SIMILAR, LOWER = "higher", "similar", "lower"


def indicator_columns(spec: IndicatorSpec) -> list[str]:
    """Output columns of one indicator, in their fixed order."""
    if not spec.is_count_based:
        return [spec.name]
    return [spec.name] + [
        f"{spec.name}_{suffix}" for suffix in ("raw", "lo", "hi", "small_n", "vs_benchmark")
    ]


# -- intervals ---------------------------------------------------------------------------


def wilson_interval(
    count: np.ndarray | float, total: np.ndarray | float, *, z: float = Z
) -> tuple[np.ndarray, np.ndarray]:
    r"""Wilson score interval for a proportion ``count / total``.

    Parameters
    ----------
    count, total : array_like
        Numerators and denominators (``0 <= count <= total``); a zero or missing total
        gives a missing interval.
    z : float
        Standard normal quantile (1.96 for 95%).

    Returns
    -------
    lo, hi : ndarray
        Bounds of the proportion (between 0 and 1).

    Notes
    -----
    With O the count and n the total (Wilson 1927; Newcombe 1998; the OHID Fingertips
    and PHStatsMethods formula):

    .. math:: \frac{2O + z^2 \mp z\sqrt{z^2 + 4O(1 - O/n)}}{2(n + z^2)}
    """
    o = np.asarray(count, dtype=float)
    n = np.asarray(total, dtype=float)
    n = np.where(n > 0, n, np.nan)
    with np.errstate(invalid="ignore"):
        root = z * np.sqrt(np.clip(z * z + 4 * o * (1 - o / n), 0, None))
    denominator = 2 * (n + z * z)
    return (2 * o + z * z - root) / denominator, (2 * o + z * z + root) / denominator


def exact_poisson_interval(
    count: np.ndarray | float, *, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson count.

    Notes
    -----
    lo = χ²(α/2; 2O) / 2 and hi = χ²(1 − α/2; 2O + 2) / 2, i.e. the gamma quantiles
    Γ⁻¹(α/2; O) and Γ⁻¹(1 − α/2; O + 1); lo = 0 when O = 0 (Armitage & Berry 2002).
    """
    o = np.asarray(count, dtype=float)
    alpha = 1 - confidence
    with np.errstate(invalid="ignore"):
        # chi2.ppf(q, df) is special.chdtri(df, 1 - q), as scipy.stats computes it
        lo = np.where(o > 0, special.chdtri(2 * np.where(o > 0, o, 1), 1 - alpha / 2) / 2, 0.0)
        hi = special.chdtri(2 * o + 2, alpha / 2) / 2
    lo = np.where(np.isnan(o), np.nan, lo)
    return lo, hi


def byar_interval(count: np.ndarray | float, *, z: float = Z) -> tuple[np.ndarray, np.ndarray]:
    """Byar's approximation to the exact Poisson interval of a count.

    Notes
    -----
    lo = O (1 − 1/(9O) − z/(3√O))³ and hi = (O + 1)(1 − 1/(9(O + 1)) + z/(3√(O + 1)))³
    (Breslow & Day 1987). Accurate for O ≥ 10; use :func:`poisson_interval`.
    """
    o = np.asarray(count, dtype=float)
    safe = np.where(o > 0, o, np.nan)
    lo = safe * (1 - 1 / (9 * safe) - z / (3 * np.sqrt(safe))) ** 3
    hi = (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * np.sqrt(o + 1))) ** 3
    return lo, hi


def poisson_interval(count: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """95% interval of a count: Byar's method from 10, exact Poisson below (Fingertips)."""
    o = np.asarray(count, dtype=float)
    byar_lo, byar_hi = byar_interval(o)
    exact_lo, exact_hi = exact_poisson_interval(o)
    use_byar = o >= BYAR_MIN_COUNT
    return np.where(use_byar, byar_lo, exact_lo), np.where(use_byar, byar_hi, exact_hi)


def compare_with_benchmark(
    lo: np.ndarray, hi: np.ndarray, comparator: float | None
) -> pd.Series:
    """Fingertips-style label: ``higher`` if lo > comparator, ``lower`` if hi < comparator.

    Otherwise ``similar``; missing where the interval or the comparator is missing.
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    if comparator is None or not np.isfinite(comparator):
        return pd.Series(np.full(len(lo), np.nan), dtype="str")
    label = np.where(lo > comparator, HIGHER, np.where(hi < comparator, LOWER, SIMILAR))
    missing = np.isnan(lo) | np.isnan(hi)
    return pd.Series(np.where(missing, None, label), dtype="str")


# -- empirical-Bayes smoothing ------------------------------------------------------------


def global_eb(events: np.ndarray, base: np.ndarray) -> np.ndarray:
    r"""Global empirical-Bayes rates (Marshall 1991), shrinking each crude rate to the mean.

    Parameters
    ----------
    events : ndarray, shape (..., n)
        Counts per area; leading axes are independent replicates (Monte Carlo draws).
    base : ndarray, shape (n,) or (..., n)
        Populations at risk. Areas with a missing count or a base of 0 or less are left
        out of the prior and get a missing rate.

    Returns
    -------
    ndarray
        Smoothed rates per unit of ``base`` (not yet multiplied).

    Notes
    -----
    Method of moments, with r_i = e_i / b_i over the n areas with data:

    .. math::

        m = \frac{\sum e_i}{\sum b_i}, \quad
        s^2 = \frac{\sum b_i (r_i - m)^2}{\sum b_i}, \quad
        A = \max\left(0,\; s^2 - \frac{m}{\bar b}\right), \quad
        \hat\theta_i = m + \frac{A}{A + m / b_i}\,(r_i - m)

    A is the between-area variance left once Poisson noise (m / b̄) is taken out. When it
    is negative the areas differ no more than chance allows and every rate is shrunk to
    m. ``esda.smoothing.Empirical_Bayes`` does not truncate A at 0 (a negative A gives
    weights outside [0, 1]); otherwise the two agree.
    """
    e, b, present = _events_base(events, base)
    e0, b0 = np.where(present, e, 0.0), np.where(present, b, 0.0)
    count = present.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = e0.sum(axis=-1, keepdims=True) / b0.sum(axis=-1, keepdims=True)
        rate = e / b
        s2 = (b0 * np.where(present, rate - m, 0.0) ** 2).sum(axis=-1, keepdims=True)
        s2 = s2 / b0.sum(axis=-1, keepdims=True)
        a = np.clip(s2 - m / (b0.sum(axis=-1, keepdims=True) / count), 0.0, None)
        shrink = _shrink_factor(a, m, b)
        return np.where(present, m + shrink * (rate - m), np.nan)


def spatial_eb(events: np.ndarray, base: np.ndarray, neighbours: sp.sparray) -> np.ndarray:
    """Spatial (local) empirical-Bayes rates, shrinking each rate to its neighbourhood.

    Parameters
    ----------
    events, base : ndarray
        As in :func:`global_eb`.
    neighbours : sparse array, shape (n, n)
        1 where area j is in area i's neighbourhood, the area itself included (see
        :func:`neighbourhoods`).

    Notes
    -----
    The formulas of :func:`global_eb` computed over each neighbourhood N_i (the area
    and its neighbours; Marshall 1991; as ``esda.smoothing.Spatial_Empirical_Bayes``):
    m_i = Σ e_j / Σ b_j, s²_i = Σ b_j (r_j − m_i)² / Σ b_j, b̄_i = Σ b_j / |N_i|,
    A_i = max(0, s²_i − m_i / b̄_i), θ_i = m_i + A_i / (A_i + m_i / b_i) (r_i − m_i).
    An area without neighbours keeps its own rate.
    """
    e, b, present = _events_base(events, base)
    shape = np.broadcast_shapes(e.shape, b.shape)
    e, b, present = (np.broadcast_to(x, shape) for x in (e, b, present))
    n = shape[-1]
    flat = lambda x: np.asarray(x, dtype=float).reshape(-1, n).T  # noqa: E731  (n, draws)
    back = lambda x: np.asarray(x).T.reshape(shape)  # noqa: E731
    p = present.astype(float)
    e0, b0 = np.where(present, e, 0.0), np.where(present, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(present, e / b, 0.0)
        sum_e = back(neighbours @ flat(e0))
        sum_b = back(neighbours @ flat(b0))
        count = back(neighbours @ flat(p))
        m = sum_e / sum_b
        # Σ b_j (r_j − m_i)² = Σ b_j r_j² − 2 m_i Σ e_j + m_i² Σ b_j
        sum_br2 = back(neighbours @ flat(b0 * rate * rate))
        s2 = np.clip((sum_br2 - 2 * m * sum_e + m * m * sum_b) / sum_b, 0.0, None)
        a = np.clip(s2 - m / (sum_b / count), 0.0, None)
        shrink = _shrink_factor(a, m, b)
        rate = e / b
        return np.where(present, m + shrink * (rate - m), np.nan)


def _events_base(events, base) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e = np.asarray(events, dtype=float)
    b = np.asarray(base, dtype=float)
    present = ~np.isnan(e) & ~np.isnan(b) & (b > 0)
    return e, b, present


def _shrink_factor(a: np.ndarray, m: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return A / (A + m / b), or 0 (full shrinkage) where both variances vanish."""
    noise = m / b
    total = a + noise
    return np.where(total > 0, a / np.where(total > 0, total, 1.0), 0.0)


def neighbourhoods(weights: Weights | Graph | W, index: pd.Index) -> sp.csr_array:
    """Binary neighbourhood matrix for :func:`spatial_eb`, aligned to ``index``.

    Parameters
    ----------
    weights : libpysal Graph or W, or geo_send.spatial.Weights
        Any spatial weights over the same areas; only who neighbours whom is used (the
        weight values, e.g. row standardisation, are ignored). Not modified.
    index : Index
        Area codes in the order of the rates.

    Returns
    -------
    scipy.sparse.csr_array, shape (n, n)
        1 where j is a neighbour of i or j = i.

    Raises
    ------
    ValueError
        If some areas of ``index`` are not in the weights.
    """
    # Duck-typed, so libpysal is never imported here: geo_send Weights first (its
    # binary links), then a libpysal Graph (unique_ids) or W (id_order).
    if hasattr(weights, "binary") and hasattr(weights, "ids"):  # geo_send.spatial.Weights
        ids = pd.Index(weights.ids)
        matrix = sp.csr_array(weights.binary)
    elif hasattr(weights, "unique_ids") and hasattr(weights, "sparse"):  # libpysal Graph
        ids = pd.Index(weights.unique_ids)
        matrix = sp.csr_array(weights.sparse)
    elif hasattr(weights, "id_order") and hasattr(weights, "sparse"):  # libpysal W
        ids = pd.Index(weights.id_order)
        matrix = sp.csr_array(weights.sparse)
    else:
        raise TypeError("weights must be geo_send Weights or a libpysal Graph or W, got "
                        f"{type(weights).__name__}")
    position = ids.get_indexer(index)
    if (position < 0).any():
        missing = list(index[position < 0][:5])
        raise ValueError(f"{int((position < 0).sum())} area(s) are not in the spatial weights: "
                         f"{', '.join(map(str, missing))}")
    matrix = matrix[position][:, position]
    binary = (matrix != 0).astype(float) + sp.eye_array(len(index), format="csr")
    return sp.csr_array((binary > 0).astype(float))


def required_neighbourhoods(
    indicators: Sequence[IndicatorSpec], weights: Weights | Graph | W | None, index: pd.Index
) -> sp.csr_array | None:
    """Return the :func:`neighbourhoods` matrix if an indicator uses spatial EB, else None.

    Raises
    ------
    ConfigError
        If an indicator asks for spatial EB smoothing and no weights are given.
    """
    names = [s.name for s in indicators if s.smoothing == "spatial_eb"]
    if not names:
        return None
    if weights is None:
        raise ConfigError(
            f"indicator(s) {', '.join(names)} use smoothing = 'spatial_eb', which needs spatial "
            "weights: pass weights= (geo_send Weights or a libpysal Graph or W)"
        )
    return neighbourhoods(weights, index)


def smoothed_rates(
    events: np.ndarray,
    base: np.ndarray,
    smoothing: str,
    neighbours: sp.sparray | None = None,
) -> np.ndarray:
    """Rates per unit of ``base``: crude, global EB or spatial EB.

    Used alike for the observed counts and for every Monte Carlo draw (``events`` may
    carry leading draw axes).
    """
    if smoothing == "none":
        e, b, present = _events_base(events, base)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(present, e / b, np.nan)
    if smoothing == "global_eb":
        return global_eb(events, base)
    if smoothing == "spatial_eb":
        if neighbours is None:
            raise ConfigError("smoothing = 'spatial_eb' needs spatial weights")
        return spatial_eb(events, base, neighbours)
    raise ConfigError(f"unknown smoothing {smoothing!r}; expected none, global_eb or spatial_eb")


# -- the stage ----------------------------------------------------------------------------


def comparators(table: pd.DataFrame, indicators: Sequence[IndicatorSpec]) -> pd.Series:
    """Return the comparator of each count-based indicator, in its units.

    The configured ``benchmark`` where given, else the whole-area rate
    ``sum(numerator) / sum(denominator) * multiplier`` over areas with both counts.
    """
    out = {}
    for spec in indicators:
        if not spec.is_count_based:
            continue
        if spec.benchmark is not None:
            out[spec.name] = float(spec.benchmark)
            continue
        num = table[spec.numerator].astype(float)
        den = table[spec.denominator].astype(float)
        used = num.notna() & den.notna() & (den > 0)
        total = den[used].sum()
        out[spec.name] = float(num[used].sum() / total * spec.multiplier) if total > 0 else np.nan
    return pd.Series(out, dtype=float, name="comparator")


def compute_indicators(
    table: pd.DataFrame,
    indicators: Sequence[IndicatorSpec],
    *,
    weights: Weights | Graph | W | None = None,
) -> pd.DataFrame:
    """Compute each indicator's value, interval, flags and benchmark label per area.

    Parameters
    ----------
    table : DataFrame
        Numeric input columns (counts, denominators, scores), indexed by area code.
    indicators : sequence of IndicatorSpec
    weights : libpysal Graph or W, optional
        Spatial weights over the same areas; needed only by ``smoothing = "spatial_eb"``.

    Returns
    -------
    DataFrame
        The columns of :func:`indicator_columns` for each indicator, in order. A zero or
        missing denominator gives missing values, never zeros.

    Raises
    ------
    ConfigError
        If an indicator asks for spatial EB smoothing and no weights are given.

    Notes
    -----
    Proportions (``kind = "proportion"``, the numerator a subset of the denominator) get
    the Wilson score interval; rates (``kind = "rate"``) Byar's interval for counts of 10
    or more and the exact Poisson interval below, divided by the denominator (OHID
    Fingertips; PHStatsMethods). Intervals describe the crude rate, also when the value
    used by the index is smoothed. The benchmark label compares the interval with the
    comparator of :func:`comparators`.
    """
    neighbours = required_neighbourhoods(indicators, weights, table.index)
    compare = comparators(table, indicators)
    blocks: dict[str, pd.Series] = {}
    for spec in indicators:
        if not spec.is_count_based:
            blocks[spec.name] = table[spec.column].astype(float)
            continue
        num = table[spec.numerator].to_numpy(dtype=float)
        den = table[spec.denominator].to_numpy(dtype=float)
        valid = ~np.isnan(num) & ~np.isnan(den) & (den > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = np.where(valid, num / den, np.nan)
        if spec.kind == "proportion":
            lo, hi = wilson_interval(num, den)
        else:
            lo, hi = poisson_interval(num)
            with np.errstate(invalid="ignore", divide="ignore"):
                lo, hi = lo / den, hi / den
        lo, hi = np.where(valid, lo, np.nan), np.where(valid, hi, np.nan)
        value = smoothed_rates(num, den, spec.smoothing, neighbours)
        k = spec.multiplier
        small = pd.array(np.where(np.isnan(num), None, num < SMALL_N), dtype="boolean")
        block = {
            spec.name: value * k,
            f"{spec.name}_raw": raw * k,
            f"{spec.name}_lo": lo * k,
            f"{spec.name}_hi": hi * k,
        }
        for column, values in block.items():
            blocks[column] = pd.Series(values, index=table.index, dtype=float)
        blocks[f"{spec.name}_small_n"] = pd.Series(small, index=table.index)
        label = compare_with_benchmark(lo * k, hi * k, compare[spec.name])
        blocks[f"{spec.name}_vs_benchmark"] = pd.Series(label.to_numpy(), index=table.index,
                                                        dtype="str")
    out = pd.DataFrame(blocks, index=table.index)
    for spec in indicators:  # scores: infinities from division upstream become missing
        if not spec.is_count_based:
            out[spec.name] = out[spec.name].replace([np.inf, -np.inf], np.nan)
    return out
