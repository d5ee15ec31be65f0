"""Trends over time: each area's annual rate of change, with an interval, against the whole area.

Frames in, frames out; nothing is read or written here. The pipeline feeds in a long table
(one row per area and year) and :mod:`geo_send.outputs` writes what comes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.special import ndtri

from ._errors import ValidationError
from .disclosure import SUPPRESSED, suppress, suppressed_mask

__all__ = [
    "TOTAL",
    "Z95",
    "LoglinearTrend",
    "fit_loglinear_trend",
    "compute_trends",
    "plot_trends",
    "plot_trend_map",
    "publish_trends",
    "describe_trends",
    "TREND_COUNTS",
    "TREND_DERIVED",
    "SERIES_COUNTS",
    "SERIES_DERIVED",
]

#: Code given to the whole-area (local authority) rows of every table.
TOTAL = "all"
#: Two-sided 95% normal quantile, Φ⁻¹(0.975).
Z95 = float(ndtri(0.975))
#: Newton–Raphson stops when no coefficient moves more than this.
TOLERANCE = 1e-10
MAX_ITERATIONS = 100

#: Chart labels of the usual measures; others are shown by name.
MEASURE_LABELS = {"sen_support": "SEN support", "ehcp": "EHC plans"}
#: Count and derived columns of the trend table (for disclosure control).
TREND_COUNTS = ("first_count", "last_count", "first_denominator_count",
                "last_denominator_count", "min_count")
TREND_DERIVED = ("first_pct", "last_pct", "change_pct_points", "annual_change_pct",
                 "annual_change_pct_lower", "annual_change_pct_upper", "dispersion", "trend",
                 "trend_ratio_to_rest", "trend_ratio_lower", "trend_ratio_upper", "trend_vs_la")
#: Count and derived columns of the yearly series.
SERIES_COUNTS = ("count", "denominator_count")
SERIES_DERIVED = ("pct",)


@dataclass(frozen=True)
class LoglinearTrend:
    """A fitted log-linear (Poisson) trend of counts on year with the denominator as offset.

    Attributes
    ----------
    slope : float
        β, the change in log rate per year; the annual rate ratio is ``exp(slope)``.
    se : float
        Standard error of β after the dispersion adjustment.
    dispersion : float
        φ used to inflate the variance (Pearson χ² / (n − 2), never below 1; 1 when
        there are only two years).
    years : int
        Number of years fitted.
    """

    slope: float
    se: float
    dispersion: float
    years: int

    @property
    def annual_change_pct(self) -> float:
        """Annual change of the rate in per cent, 100 · (exp(β) − 1)."""
        return 100.0 * np.expm1(self.slope)

    def interval_pct(self, z: float = Z95) -> tuple[float, float]:
        """Interval of the annual change in per cent, 100 · (exp(β ± z·se) − 1)."""
        return (100.0 * np.expm1(self.slope - z * self.se),
                100.0 * np.expm1(self.slope + z * self.se))


NO_TREND = LoglinearTrend(slope=np.nan, se=np.nan, dispersion=np.nan, years=0)


def fit_loglinear_trend(
    years: Sequence[float], counts: Sequence[float], denominators: Sequence[float]
) -> LoglinearTrend:
    """Fit log E[count] = log(denominator) + α + β·(year − mean year) by maximum likelihood.

    Parameters
    ----------
    years, counts, denominators : sequence of numbers
        One value per year; years with a missing value or a zero denominator are left out.

    Returns
    -------
    LoglinearTrend
        All NaN when β has no finite estimate: fewer than two years, no count at all, or
        every count in a single year.

    Notes
    -----
    Poisson regression with an offset, fitted by Newton–Raphson (iteratively reweighted
    least squares): with μᵢ = nᵢ·exp(α + β tᵢ), the score is Xᵀ(y − μ) and the information
    Xᵀ diag(μ) X. The variance of β is the inverse information multiplied by the
    quasi-Poisson dispersion φ = Σ (yᵢ − μᵢ)²/μᵢ / (k − 2), floored at 1 so that the
    interval is never narrower than the Poisson one (k = number of years; with k = 2 there
    is nothing to estimate φ from and φ = 1). With two years β = ln((y₂/n₂)/(y₁/n₁)) / Δt
    and se = √(1/y₁ + 1/y₂) / Δt exactly.

    Counts of children with a plan are a stock, so the same children appear in several
    years: successive counts are positively correlated and even the quasi-Poisson interval
    can be too narrow. Read the interval as a guide, not a test of a sampling model.
    """
    t = np.asarray(years, dtype=float)
    y = np.asarray(counts, dtype=float)
    n = np.asarray(denominators, dtype=float)
    keep = np.isfinite(t) & np.isfinite(y) & np.isfinite(n) & (n > 0)
    t, y, n = t[keep], y[keep], n[keep]
    if len(t) < 2 or np.unique(t).size < 2 or y.sum() <= 0 or np.count_nonzero(y) < 2:
        return NO_TREND
    t = t - t.mean()
    x = np.column_stack([np.ones_like(t), t])
    offset = np.log(n)
    beta = np.array([np.log(y.sum() / n.sum()), 0.0])
    for _ in range(MAX_ITERATIONS):
        mu = np.exp(x @ beta + offset)
        info = x.T @ (mu[:, None] * x)
        step = np.linalg.solve(info, x.T @ (y - mu))
        beta = beta + step
        if np.max(np.abs(step)) < TOLERANCE:
            break
    mu = np.exp(x @ beta + offset)
    info = x.T @ (mu[:, None] * x)
    k = len(t)
    pearson = float(np.sum((y - mu) ** 2 / mu))
    dispersion = max(1.0, pearson / (k - 2)) if k > 2 else 1.0
    variance = np.linalg.inv(info)[1, 1] * dispersion
    return LoglinearTrend(slope=float(beta[1]), se=float(np.sqrt(variance)),
                          dispersion=float(dispersion), years=k)


def compute_trends(
    table: pd.DataFrame,
    *,
    year_column: str,
    counts: Sequence[str],
    denominator: str,
    code_name: str = "ward_code",
    names: Mapping[str, str] | None = None,
    area_name: str = "Whole area",
    z: float = Z95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Trend of each count per area and for the whole area, compared with the rest.

    Parameters
    ----------
    table : DataFrame
        Long table: one row per area and year, with ``code_name``, ``year_column``, the
        ``counts`` columns and the ``denominator`` column (all numeric). Not modified.
    year_column : str
    counts : sequence of str
        Count columns to trend, e.g. ``["sen_support_count", "ehcp_count"]``; the measure
        is named after the column without ``_count``.
    denominator : str
        Population the counts are out of (e.g. ``pupils_count``).
    code_name : str
        Area code column.
    names : mapping, optional
        Area names by code, for the name column of ``trends``.
    area_name : str
        Name of the whole area.
    z : float
        Normal quantile of the intervals (1.96 for 95%).

    Returns
    -------
    trends : DataFrame
        One row per measure and area plus a whole-area row (code ``"all"``), with the
        area name, ``first_year``, ``last_year``, ``years_count``, first and last counts,
        denominators and rates (``_pct``), ``min_count``, ``change_pct_points``,
        ``annual_change_pct`` with ``_lower``/``_upper``, ``dispersion``, ``trend``
        (``rising`` / ``falling`` / ``no clear trend``), ``trend_ratio_to_rest`` with
        ``trend_ratio_lower``/``_upper`` and ``trend_vs_la`` (``faster`` / ``slower`` /
        ``similar``).
    series : DataFrame
        One row per measure, area (and whole area) and year: ``count``,
        ``denominator_count`` and ``pct``.

    Raises
    ------
    ValidationError
        If the table holds fewer than two years.

    Notes
    -----
    Each trend is :func:`fit_loglinear_trend`. A ward is compared with the *rest* of
    the area (all other wards summed), not with the whole, so that the two estimates are
    independent: the difference of slopes d = β_ward − β_rest has variance
    se²_ward + se²_rest (the Wald test of a ward × year interaction in a model with
    separate intercepts and slopes). ``trend_ratio_to_rest`` = exp(d) is the ratio of
    the two annual rate ratios; the ward's trend is ``faster`` than the rest of the area
    when the interval exp(d ± z·se) lies above 1 and ``slower`` when it lies below 1.
    With 20 wards about one is flagged at the 95% level by chance alone.
    """
    frame = table[[code_name, year_column, *counts, denominator]].copy()
    years = sorted(pd.unique(frame[year_column].dropna()))
    if len(years) < 2:
        raise ValidationError(f"trends need at least two years in {year_column!r}; the table "
                              f"has {', '.join(str(y) for y in years) or 'none'}")
    trends, series = [], []
    for column in counts:
        measure = column.removesuffix("_count")
        keyed = frame.set_index([code_name, year_column]).sort_index()
        wide_count = keyed[column].unstack(year_column)
        wide_den = keyed[denominator].unstack(year_column)
        usable = wide_count.notna() & wide_den.notna()
        years_all = wide_count.columns.to_numpy(dtype=float)
        total_count = wide_count.where(usable).sum(axis=0, min_count=1)
        total_den = wide_den.where(usable).sum(axis=0, min_count=1)
        la = fit_loglinear_trend(years_all, total_count, total_den)
        rows = []
        for code in wide_count.index:
            y, n = wide_count.loc[code], wide_den.loc[code]
            own = fit_loglinear_trend(years_all, y, n)
            rest = fit_loglinear_trend(years_all, total_count - y.fillna(0),
                                       total_den - n.fillna(0))
            rows.append(_trend_row(code, years_all, y, n, own, rest, z))
        rows.append(_trend_row(TOTAL, years_all, total_count, total_den, la, None, z))
        out = pd.DataFrame(rows)
        out.insert(0, "measure", measure)
        trends.append(out)
        long = pd.DataFrame({
            code_name: np.repeat([*wide_count.index, TOTAL], len(years_all)),
            "year": np.tile(wide_count.columns.to_numpy(), len(wide_count) + 1),
            "count": np.concatenate([wide_count.to_numpy().ravel(), total_count.to_numpy()]),
            "denominator_count": np.concatenate([wide_den.to_numpy().ravel(),
                                                 total_den.to_numpy()]),
        })
        long["pct"] = 100.0 * long["count"] / long["denominator_count"].where(
            long["denominator_count"] > 0)
        long.insert(0, "measure", measure)
        series.append(long)
    trends_frame = pd.concat(trends, ignore_index=True).rename(columns={"code": code_name})
    names = dict(names or {})
    trends_frame.insert(2, code_name.replace("_code", "_name"), [
        area_name if c == TOTAL else names.get(c, c) for c in trends_frame[code_name]
    ])
    return trends_frame, pd.concat(series, ignore_index=True)


def _trend_row(code, years, y, n, own: LoglinearTrend, rest: LoglinearTrend | None, z: float):
    present = np.flatnonzero(np.isfinite(y.to_numpy(dtype=float))
                             & np.isfinite(n.to_numpy(dtype=float)) & (n.to_numpy() > 0))
    first, last = (present[0], present[-1]) if len(present) else (None, None)

    def at(series, i):
        return float(series.iloc[i]) if i is not None else np.nan

    first_pct = 100 * at(y, first) / at(n, first) if first is not None else np.nan
    last_pct = 100 * at(y, last) / at(n, last) if last is not None else np.nan
    low, high = own.interval_pct(z)
    row = {
        "code": code,
        "first_year": int(years[first]) if first is not None else pd.NA,
        "last_year": int(years[last]) if last is not None else pd.NA,
        "years_count": len(present),
        "first_count": at(y, first),
        "last_count": at(y, last),
        "first_denominator_count": at(n, first),
        "last_denominator_count": at(n, last),
        "min_count": float(y.iloc[present].min()) if len(present) else np.nan,
        "first_pct": first_pct,
        "last_pct": last_pct,
        "change_pct_points": last_pct - first_pct,
        "annual_change_pct": own.annual_change_pct,
        "annual_change_pct_lower": low,
        "annual_change_pct_upper": high,
        "dispersion": own.dispersion,
        "trend": _direction(low, high, ("rising", "falling", "no clear trend")),
    }
    ratio = lower = upper = np.nan
    if rest is not None and np.isfinite(own.slope) and np.isfinite(rest.slope):
        d = own.slope - rest.slope
        se = float(np.hypot(own.se, rest.se))
        ratio, lower, upper = np.exp(d), np.exp(d - z * se), np.exp(d + z * se)
    row["trend_ratio_to_rest"] = ratio
    row["trend_ratio_lower"] = lower
    row["trend_ratio_upper"] = upper
    row["trend_vs_la"] = (_direction(lower - 1, upper - 1, ("faster", "slower", "similar"))
                          if rest is not None else pd.NA)
    return row


def _direction(low: float, high: float, words: tuple[str, str, str]) -> object:
    """``words[0]`` if the interval lies above 0, ``words[1]`` if below, else ``words[2]``."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return pd.NA
    return words[0] if low > 0 else words[1] if high < 0 else words[2]


def publish_trends(
    trends: pd.DataFrame,
    series: pd.DataFrame,
    *,
    threshold: int,
    show_zero: bool = True,
    code_name: str = "ward_code",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies of the trend table and yearly series fit to publish (small counts ``"c"``).

    The yearly series is suppressed first (:func:`geo_send.disclosure.suppress`, along
    each measure and year, whole-area row included). A trend row is then hidden entirely
    when any of its years is hidden, or its smallest yearly count is below the threshold,
    so the two tables never give back each other's hidden cells.
    """
    rule = {"threshold": threshold, "lines": [["measure", "year"]],
            "totals": series[code_name] == TOTAL, "show_zero": show_zero}
    series_out = suppress(series, SERIES_COUNTS, derived=SERIES_DERIVED, **rule)
    hidden = suppressed_mask(series, SERIES_COUNTS, **rule).any(axis=1)
    hidden_keys = set(zip(series.loc[hidden, "measure"], series.loc[hidden, code_name]))
    own = suppressed_mask(trends, ["min_count"], threshold=threshold,
                          show_zero=show_zero)["min_count"]
    rows = own | pd.Series([k in hidden_keys for k in zip(trends["measure"], trends[code_name])],
                           index=trends.index)
    trends_out = trends.copy()
    for column in [*TREND_COUNTS, *TREND_DERIVED]:
        trends_out[column] = trends_out[column].astype(object).where(~rows, SUPPRESSED)
    return trends_out, series_out


def plot_trends(
    series: pd.DataFrame,
    trends: pd.DataFrame,
    *,
    code_name: str = "ward_code",
    names: pd.Series | None = None,
    area_name: str = "Whole area",
) -> Figure:
    """Trend lines: one panel per measure, every area in grey, the whole area in black.

    Areas whose trend is ``faster`` or ``slower`` than the rest are drawn in colour and
    labelled. Suppressed points (``"c"``) are not drawn, so a published chart shows no
    more than the published table.

    Parameters
    ----------
    series, trends : DataFrame
        As returned by :func:`compute_trends`, or their published (suppressed) copies.
    names : Series, optional
        Area names by code, for labels.
    """
    measures = list(dict.fromkeys(series["measure"]))
    fig = Figure(figsize=(6.0 * len(measures), 4.5), layout="constrained")
    axes = fig.subplots(1, len(measures), squeeze=False)[0]
    flags = trends.set_index(["measure", code_name])["trend_vs_la"]
    colours = {"faster": "#b2182b", "slower": "#2166ac"}
    for ax, measure in zip(axes, measures):
        part = series.loc[series["measure"] == measure]
        for code, line in part.groupby(code_name, sort=True):
            pct = pd.to_numeric(line["pct"], errors="coerce")
            year = pd.to_numeric(line["year"], errors="coerce")
            if code == TOTAL:
                ax.plot(year, pct, color="black", linewidth=2.5, marker="o", label=area_name,
                        zorder=3)
                continue
            flag = flags.get((measure, code), pd.NA)
            colour = colours.get(flag, "#bbbbbb") if isinstance(flag, str) else "#bbbbbb"
            ax.plot(year, pct, color=colour, linewidth=1.6 if colour != "#bbbbbb" else 0.9,
                    zorder=2 if colour != "#bbbbbb" else 1)
            if colour != "#bbbbbb" and pct.notna().any():
                last = pct.last_valid_index()
                label = names.get(code, code) if names is not None else code
                ax.annotate(f"{label} ({flag})", (year[last], pct[last]), fontsize=7,
                            color=colour, xytext=(3, 0), textcoords="offset points")
        ax.set_title(f"{MEASURE_LABELS.get(measure, measure.replace('_', ' '))}, % of pupils")
        ax.margins(x=0.15)
        ax.set_xlabel("Year")
        ax.set_ylabel("%")
        ax.grid(True, color="#eeeeee")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.suptitle("Trends by area: coloured where the trend differs from the rest of the area "
                 "(95%)", fontsize=10)
    return fig


def plot_trend_map(
    areas: gpd.GeoDataFrame, trends: pd.DataFrame, *, code_name: str = "ward_code"
) -> Figure:
    """Map of each area's annual change (%), one panel per measure.

    Areas whose trend is ``faster`` than the rest of the area are outlined in red,
    ``slower`` in blue; areas without a value (suppressed ``"c"`` or no trend) are grey
    and hatched.

    Parameters
    ----------
    areas : GeoDataFrame
        Boundaries indexed by ``code_name``.
    trends : DataFrame
        As returned by :func:`compute_trends`, or its published copy.
    """
    measures = list(dict.fromkeys(trends["measure"]))
    fig = Figure(figsize=(5.5 * len(measures), 5.0), layout="constrained")
    axes = fig.subplots(1, len(measures), squeeze=False)[0]
    for ax, measure in zip(axes, measures):
        part = trends.loc[(trends["measure"] == measure) & (trends[code_name] != TOTAL)]
        part = part.set_index(code_name).reindex(areas.index)
        shown = areas[[areas.geometry.name]].assign(
            change=pd.to_numeric(part["annual_change_pct"], errors="coerce").to_numpy(),
            flag=part["trend_vs_la"].astype(object).to_numpy(),
        )
        limit = float(np.nanmax(np.abs(shown["change"]), initial=1.0))
        shown.plot(column="change", ax=ax, cmap="RdBu_r", vmin=-limit, vmax=limit,
                   legend=True, edgecolor="white", linewidth=0.5,
                   legend_kwds={"label": "Annual change, %", "shrink": 0.7},
                   missing_kwds={"color": "#dddddd", "hatch": "///", "label": "no value"})
        for flag, colour in (("faster", "#b2182b"), ("slower", "#2166ac")):
            flagged = shown.loc[shown["flag"] == flag]
            if len(flagged):
                flagged.boundary.plot(ax=ax, color=colour, linewidth=2.0)
        ax.set_title(f"{MEASURE_LABELS.get(measure, measure.replace('_', ' '))}: annual change")
        ax.set_axis_off()
    fig.suptitle("Annual change by area; outlined where faster (red) or slower (blue) than "
                 "the rest of the area (95%)", fontsize=10)
    return fig


def describe_trends(trends: pd.DataFrame, *, code_name: str = "ward_code") -> list[str]:
    """One plain sentence per measure: the whole area's trend and the areas that differ.

    Works on the published (suppressed) table as well as the true one; areas whose
    figures are withheld are not named.
    """
    name_column = code_name.replace("_code", "_name")
    out = []
    for measure, part in trends.groupby("measure", sort=False):
        label = MEASURE_LABELS.get(str(measure), str(measure).replace("_", " "))
        whole = part.loc[part[code_name] == TOTAL].iloc[0]
        values = pd.to_numeric(whole[["annual_change_pct", "annual_change_pct_lower",
                                      "annual_change_pct_upper"]], errors="coerce")
        if values.isna().any():
            text = f"{label}: no trend could be estimated for the whole area."
        else:
            change, low, high = values.tolist()
            text = (f"{label}: across the whole area the rate changed by {change:+.1f}% a year "
                    f"(95% interval {low:+.1f}% to {high:+.1f}%) from {whole['first_year']} to "
                    f"{whole['last_year']}.")
        for flag, words in (("faster", "Faster than the rest of the area"),
                            ("slower", "Slower than the rest of the area")):
            names = part.loc[part["trend_vs_la"] == flag, name_column].astype(str).tolist()
            if names:
                text += f" {words}: {', '.join(names)}."
        if not part["trend_vs_la"].isin(["faster", "slower"]).any():
            text += " No area's trend differs clearly from the rest of the area."
        out.append(text)
    return out
