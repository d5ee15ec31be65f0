"""Conversion from SEN support to an EHC plan, and representation of groups among EHC plans.

Frames in, frames out; nothing is read or written here. Both work on long tables with one
row per area (and year, and breakdown groups), and report every area and every group of
each breakdown column against the whole area.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from scipy.special import ndtri

from ._errors import ValidationError
from .disclosure import suppress
from .indicators import wilson_interval
from .trends import TOTAL, Z95

__all__ = [
    "Z998",
    "funnel_limits",
    "compute_conversion",
    "representation_ratio",
    "compute_representation",
    "plot_funnel",
    "plot_representation",
    "publish_conversion",
    "publish_representation",
    "describe_conversion",
    "describe_representation",
    "CONVERSION_COUNTS",
    "CONVERSION_DERIVED",
    "REPRESENTATION_COUNTS",
    "REPRESENTATION_DERIVED",
]

#: Two-sided 99.8% normal quantile, Φ⁻¹(0.999) (the "3 sigma" funnel limit).
Z998 = float(ndtri(0.999))

#: Ticks of the representation chart's log axis.
RATIO_TICKS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)

CONVERSION_COUNTS = ("sen_support_count", "new_ehcp_count")
#: Rates, intervals, funnel limits (which give the denominator back) and the flag.
CONVERSION_DERIVED = ("conversion_pct", "conversion_pct_lower", "conversion_pct_upper",
                      "funnel_95_lower_pct", "funnel_95_upper_pct", "funnel_998_lower_pct",
                      "funnel_998_upper_pct", "vs_la")
REPRESENTATION_COUNTS = ("ehcp_count", "population_count")
REPRESENTATION_DERIVED = ("ehcp_share_pct", "population_share_pct", "representation_ratio",
                          "representation_ratio_lower", "representation_ratio_upper",
                          "representation")


def funnel_limits(
    target: float, trials: np.ndarray | pd.Series | float, *, z: float
) -> tuple[np.ndarray, np.ndarray]:
    """Funnel-plot control limits of a proportion around ``target``.

    Parameters
    ----------
    target : float
        Comparator proportion p₀ (the whole-area rate), 0–1.
    trials : array-like
        Denominators n at which to evaluate the limits.
    z : float
        :data:`Z95` (1.96) for the 95% limits, :data:`Z998` (3.09) for 99.8%.

    Returns
    -------
    lower, upper : ndarray
        p₀ ∓ z·√(p₀(1 − p₀)/n), clipped to [0, 1].

    Notes
    -----
    These are the normal-approximation limits of Spiegelhalter (2005, *Funnel plots for
    comparing institutional performance*, Stat Med 24:1185) and also exactly the limits
    of the OHID Fingertips funnel plots for proportions: Fingertips finds the observed
    proportion whose Wilson score interval just reaches p₀, and since the Wilson interval
    inverts the score test, (p − p₀)² = z² p₀(1 − p₀)/n, that proportion is
    p₀ ± z·√(p₀(1 − p₀)/n). A point therefore lies outside the 95% funnel exactly when
    its 95% Wilson interval excludes p₀.
    """
    n = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = z * np.sqrt(target * (1 - target) / np.where(n > 0, n, np.nan))
    return np.clip(target - half, 0.0, 1.0), np.clip(target + half, 0.0, 1.0)


def _strict_sum(frame: pd.DataFrame, keys: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Sum ``columns`` by ``keys``; a group with any missing value stays missing."""
    return frame.groupby(list(keys), sort=True)[list(columns)].sum(min_count=1, skipna=False)


def _funnel_flag(p: float, n: float, target: float) -> object:
    if not (np.isfinite(p) and np.isfinite(n) and n > 0):
        return pd.NA
    lo95, hi95 = funnel_limits(target, n, z=Z95)
    lo998, hi998 = funnel_limits(target, n, z=Z998)
    if p > hi998:
        return "higher (99.8%)"
    if p > hi95:
        return "higher (95%)"
    if p < lo998:
        return "lower (99.8%)"
    if p < lo95:
        return "lower (95%)"
    return "similar"


def compute_conversion(
    table: pd.DataFrame,
    *,
    year_column: str,
    sen_support: str,
    new_ehcp: str,
    breakdowns: Sequence[str] = (),
    code_name: str = "ward_code",
    cohort_years: Sequence[int] | None = None,
    names: Mapping[str, str] | None = None,
    area_name: str = "Whole area",
) -> pd.DataFrame:
    """Conversion rate from SEN support in year t to a new EHC plan in year t + 1.

    Parameters
    ----------
    table : DataFrame
        Long table, one row per area and year (and per group of each breakdown column),
        with the count of pupils on SEN support in that year and of new EHC plans issued
        in that year. Not modified.
    year_column, sen_support, new_ehcp : str
        Column names.
    breakdowns : sequence of str
        Further columns to compare groups by (gender, ethnicity, school, ...); the area
        code is always the first breakdown.
    cohort_years : sequence of int, optional
        Base years t to pool; by default every year whose t + 1 is in the table.
    names : mapping, optional
        Area names by code, for the ``group_name`` column.
    area_name : str
        Name of the whole area.

    Returns
    -------
    DataFrame
        One row per breakdown and group plus a whole-area row (group ``"all"``):
        ``breakdown``, ``group``, ``group_name``, ``cohort_years``,
        ``sen_support_count`` (pooled over the base years), ``new_ehcp_count`` (pooled
        over the following years), ``conversion_pct`` with its 95% Wilson interval,
        ``la_conversion_pct``, the 95% and 99.8% funnel limits at the group's
        denominator and ``vs_la``.

    Notes
    -----
    rate = Σₜ new EHCPs(t + 1) / Σₜ SEN support(t) over the base years t. The interval is
    :func:`geo_send.indicators.wilson_interval`; the comparison uses :func:`funnel_limits`
    around the whole-area rate, giving ``higher``/``lower`` at 95% or 99.8% or ``similar``
    (OHID Fingertips funnel plots); :class:`~geo_send.ValidationError` when no base year
    has a following year. Treating the rate as a proportion assumes the new plans are drawn
    from the previous year's SEN support pupils; plans for children not on SEN support
    before make it an approximation (and can push it above 100% in tiny groups).
    """
    columns = [sen_support, new_ehcp]
    years = sorted(pd.unique(table[year_column].dropna()))
    base = [t for t in years if t + 1 in set(years)]
    if cohort_years is not None:
        base = [t for t in base if t in set(cohort_years)]
    if not base:
        raise ValidationError(
            f"conversion needs SEN support in a year t and new EHC plans in year t + 1, but "
            f"the table has years {', '.join(str(y) for y in years) or 'none'}"
            + (f" and cohort_years {list(cohort_years)}" if cohort_years is not None else "")
        )
    period = f"{min(base)}-{max(base)}"
    rows = []
    for breakdown in [code_name, *breakdowns]:
        label = code_name.removesuffix("_code") if breakdown == code_name else breakdown
        sums = _strict_sum(table, [breakdown, year_column], columns)
        den = sums[sen_support].unstack(year_column).reindex(columns=base)
        num = sums[new_ehcp].unstack(year_column).reindex(columns=[t + 1 for t in base])
        part = pd.DataFrame({
            "group": den.index.astype(str),
            "sen_support_count": den.sum(axis=1, min_count=1, skipna=False).to_numpy(),
            "new_ehcp_count": num.sum(axis=1, min_count=1, skipna=False).to_numpy(),
        })
        totals = part[["sen_support_count", "new_ehcp_count"]].sum(min_count=1, skipna=False)
        part.loc[len(part)] = [TOTAL, totals["sen_support_count"], totals["new_ehcp_count"]]
        part.insert(0, "breakdown", label)
        rows.append(part)
    out = pd.concat(rows, ignore_index=True)
    names = dict(names or {})
    by_area = out["breakdown"] == code_name.removesuffix("_code")
    out.insert(2, "group_name", [
        area_name if g == TOTAL else names.get(g, g) if is_area else g
        for is_area, g in zip(by_area, out["group"])
    ])
    out.insert(3, "cohort_years", period)
    n, x = out["sen_support_count"], out["new_ehcp_count"]
    low, high = wilson_interval(x, n)
    out["conversion_pct"] = 100 * x / n.where(n > 0)
    out["conversion_pct_lower"] = 100 * low
    out["conversion_pct_upper"] = 100 * high
    total = out.loc[out["group"] == TOTAL].iloc[0]
    target = float(total["new_ehcp_count"] / total["sen_support_count"])
    out["la_conversion_pct"] = 100 * target
    for name, z in (("95", Z95), ("998", Z998)):
        lo, hi = funnel_limits(target, n, z=z)
        out[f"funnel_{name}_lower_pct"] = 100 * lo
        out[f"funnel_{name}_upper_pct"] = 100 * hi
    out["vs_la"] = [
        pd.NA if g == TOTAL else _funnel_flag(xi / ni if ni > 0 else np.nan, ni, target)
        for g, xi, ni in zip(out["group"], x, n)
    ]
    return out


def representation_ratio(
    a: np.ndarray | float,
    group_total: np.ndarray | float,
    n: np.ndarray | float,
    population_total: np.ndarray | float,
    *,
    z: float = Z95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A group's share of EHC plans over its share of the population, with an interval.

    Parameters
    ----------
    a : array-like
        EHC plans in the group.
    group_total : array-like
        EHC plans in every group (A).
    n : array-like
        Population of the group.
    population_total : array-like
        Population of every group (N).

    Returns
    -------
    ratio, lower, upper : ndarray
        R = (a/A) / (n/N) and its interval; the interval is missing when the group or
        the rest of the population has no plan (a = 0 or A − a = 0).

    Notes
    -----
    R is the group's EHCP rate a/n over the whole population's rate A/N. With c = A − a
    plans and m = N − n people outside the group, the relative risk of the group against
    the rest is RR = (a/n) / (c/m), and with the populations fixed

        R = N·RR / (n·RR + m),

    an increasing function of RR with R = 1 exactly when RR = 1. The interval is Katz's
    log interval for RR, exp(ln RR ± z·√(1/a − 1/n + 1/c − 1/m)) (Katz et al. 1978),
    carried over to R by the same function. So R's interval excludes 1 exactly when the
    group's rate differs significantly from the rest's, and with two groups one is
    over-represented exactly when the other is under-represented. When the group is the
    whole population (m = 0) R = 1 with no uncertainty.
    """
    a = np.asarray(a, dtype=float)
    big_a = np.asarray(group_total, dtype=float)
    n = np.asarray(n, dtype=float)
    big_n = np.asarray(population_total, dtype=float)
    c, m = big_a - a, big_n - n
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (a / big_a) / (n / big_n)
        rr = (a / n) / (c / m)
        se = np.sqrt(1 / a - 1 / n + 1 / c - 1 / m)
        usable = (a > 0) & (c > 0) & (m > 0)
        to_ratio = lambda r: big_n * r / (n * r + m)  # noqa: E731
        lower = np.where(usable, to_ratio(rr * np.exp(-z * se)), np.nan)
        upper = np.where(usable, to_ratio(rr * np.exp(z * se)), np.nan)
    everyone = (m == 0) & (n > 0) & (big_a > 0)
    lower = np.where(everyone, 1.0, lower)
    upper = np.where(everyone, 1.0, upper)
    return ratio, lower, upper


def compute_representation(
    table: pd.DataFrame,
    *,
    ehcp: str,
    population: str,
    breakdowns: Sequence[str],
    code_name: str = "ward_code",
    names: Mapping[str, str] | None = None,
    area_name: str = "Whole area",
) -> pd.DataFrame:
    """Representation of each group among EHC plans, per area and for the whole area.

    Parameters
    ----------
    table : DataFrame
        Long table, one row per area and group (of every breakdown column), with the
        count of EHC plans and the population (e.g. pupils) of that group. Not modified.
    ehcp, population : str
        Count columns.
    breakdowns : sequence of str
        Columns to compare groups by (ethnicity, gender, ...), each on its own.
    names : mapping, optional
        Area names by code.

    Returns
    -------
    DataFrame
        One row per breakdown, area (and whole area, code ``"all"``) and group:
        ``ehcp_count``, ``population_count``, ``ehcp_share_pct``,
        ``population_share_pct``, ``representation_ratio`` with its 95% interval and
        ``representation``: ``over-represented`` / ``under-represented`` only when the
        interval excludes 1, else ``similar``.

    Notes
    -----
    See :func:`representation_ratio` for the interval (Katz's log interval of the group
    against the rest, on the share-ratio scale).
    """
    names = dict(names or {})
    name_column = code_name.replace("_code", "_name")
    parts = []
    for breakdown in breakdowns:
        sums = _strict_sum(table, [code_name, breakdown], [ehcp, population]).reset_index()
        whole = _strict_sum(table, [breakdown], [ehcp, population]).reset_index()
        whole.insert(0, code_name, TOTAL)
        both = pd.concat([sums, whole], ignore_index=True)
        totals = both.groupby(code_name, sort=False)[[ehcp, population]].transform(
            lambda s: s.sum(min_count=1, skipna=False))
        ratio, lower, upper = representation_ratio(both[ehcp], totals[ehcp], both[population],
                                                   totals[population])
        part = pd.DataFrame({
            "breakdown": breakdown,
            code_name: both[code_name].astype(str),
            name_column: [area_name if c == TOTAL else names.get(c, c) for c in both[code_name]],
            "group": both[breakdown].astype(str),
            "ehcp_count": both[ehcp],
            "population_count": both[population],
            "ehcp_share_pct": 100 * both[ehcp] / totals[ehcp].where(totals[ehcp] > 0),
            "population_share_pct": 100 * both[population]
            / totals[population].where(totals[population] > 0),
            "representation_ratio": ratio,
            "representation_ratio_lower": lower,
            "representation_ratio_upper": upper,
        })
        part["representation"] = [
            pd.NA if not (np.isfinite(lo) and np.isfinite(hi))
            else "over-represented" if lo > 1 else "under-represented" if hi < 1 else "similar"
            for lo, hi in zip(lower, upper)
        ]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def publish_conversion(
    conversion: pd.DataFrame, *, threshold: int, show_zero: bool = True
) -> pd.DataFrame:
    """Copy of the conversion table fit to publish: small counts and their rates ``"c"``.

    Groups of one breakdown add up to its whole-area row, so secondary suppression runs
    along each breakdown (:func:`geo_send.disclosure.suppress`).
    """
    return suppress(conversion, CONVERSION_COUNTS, threshold=threshold,
                    derived=CONVERSION_DERIVED, lines=[["breakdown"]],
                    totals=conversion["group"] == TOTAL, show_zero=show_zero)


def publish_representation(
    representation: pd.DataFrame, *, threshold: int, show_zero: bool = True,
    code_name: str = "ward_code",
) -> pd.DataFrame:
    """Copy of the representation table fit to publish: small counts and their ratios ``"c"``.

    The table is two-way: the groups of an area add up to the area's total (which the
    shares give back), and the areas add up to the whole-area row of each group; secondary
    suppression runs along both.
    """
    return suppress(representation, REPRESENTATION_COUNTS, threshold=threshold,
                    derived=REPRESENTATION_DERIVED,
                    lines=[["breakdown", code_name], ["breakdown", "group"]],
                    totals=representation[code_name] == TOTAL, show_zero=show_zero)


def plot_funnel(conversion: pd.DataFrame, *, label_outside: bool = True) -> Figure:
    """Funnel plot of conversion rates: one panel per breakdown.

    Each group is a point at (SEN support count, conversion %); the whole-area rate is
    the centre line, with the 95% (dashed) and 99.8% (dotted) control limits of
    :func:`funnel_limits`. Groups outside the 95% limits are labelled. Rows whose
    values are suppressed (``"c"``) are not drawn.
    """
    breakdowns = list(dict.fromkeys(conversion["breakdown"]))
    fig = Figure(figsize=(6.0 * len(breakdowns), 4.5), layout="constrained")
    axes = fig.subplots(1, len(breakdowns), squeeze=False)[0]
    for ax, breakdown in zip(axes, breakdowns):
        part = conversion.loc[(conversion["breakdown"] == breakdown)
                              & (conversion["group"] != TOTAL)]
        n = pd.to_numeric(part["sen_support_count"], errors="coerce")
        pct = pd.to_numeric(part["conversion_pct"], errors="coerce")
        target = float(conversion["la_conversion_pct"].iloc[0]) / 100
        sizes = n.to_numpy(dtype=float)
        sizes = sizes[np.isfinite(sizes) & (sizes > 0)]
        low_n = float(sizes.min()) if len(sizes) else 1.0
        high_n = float(sizes.max()) if len(sizes) else 10.0
        start = 0.5 * low_n if high_n <= 2 * low_n else max(1.0, high_n / 100)
        grid = np.linspace(start, 1.1 * high_n, 400)
        for z, style, name in ((Z95, "--", "95% limits"), (Z998, ":", "99.8% limits")):
            lo, hi = funnel_limits(target, grid, z=z)
            ax.plot(grid, 100 * lo, style, color="#555555", linewidth=1, label=name)
            ax.plot(grid, 100 * hi, style, color="#555555", linewidth=1)
        ax.axhline(100 * target, color="black", linewidth=1.2,
                   label=f"Whole area {100 * target:.1f}%")
        flags = part["vs_la"].astype(str)
        colour = np.where(flags.str.startswith("higher"), "#b2182b",
                          np.where(flags.str.startswith("lower"), "#2166ac", "#777777"))
        shown = n.notna() & pct.notna()
        ax.scatter(n[shown], pct[shown], c=colour[shown.to_numpy()], s=22, zorder=3,
                   edgecolors="white", linewidths=0.5)
        if label_outside:
            for i in np.flatnonzero(shown.to_numpy() & (colour != "#777777")):
                ax.annotate(str(part["group_name"].iloc[i]), (n.iloc[i], pct.iloc[i]),
                            fontsize=7, xytext=(3, 2), textcoords="offset points")
        hidden = int((~shown).sum())
        ax.set_title(f"By {breakdown}" + (f" ({hidden} suppressed)" if hidden else ""))
        ax.set_xlabel("Pupils on SEN support (base years pooled)")
        ax.set_ylabel("New EHC plans the next year, %")
        ceiling = max(float(np.nanmax(pct.to_numpy(dtype=float), initial=0.0)),
                      100 * float(funnel_limits(target, grid[0], z=Z998)[1]))
        ax.set_ylim(0, 1.1 * ceiling)
        ax.grid(True, color="#eeeeee")
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle("Conversion from SEN support to an EHC plan: funnel plot", fontsize=10)
    return fig


def plot_representation(representation: pd.DataFrame, *, code_name: str = "ward_code") -> Figure:
    """Representation ratios: whole-area ratio with its 95% interval, ward ratios as dots.

    One panel per breakdown, groups on the vertical axis, ratio on a log scale with the
    line of equal shares at 1. Suppressed values (``"c"``) are not drawn.
    """
    breakdowns = list(dict.fromkeys(representation["breakdown"]))
    heights = [max(2.0, 0.45 * representation.loc[representation["breakdown"] == b,
                                                    "group"].nunique() + 1.2)
               for b in breakdowns]
    fig = Figure(figsize=(8.5, sum(heights)), layout="constrained")
    axes = fig.subplots(len(breakdowns), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, breakdown in zip(axes, breakdowns):
        part = representation.loc[representation["breakdown"] == breakdown]
        groups = sorted(part["group"].unique())
        y = {g: i for i, g in enumerate(groups)}
        ratio = pd.to_numeric(part["representation_ratio"], errors="coerce")
        wards = part[code_name] != TOTAL
        shown = wards & ratio.gt(0)
        ax.scatter(ratio[shown], part.loc[shown, "group"].map(y), s=10, color="#bbbbbb",
                   label="Wards", zorder=2)
        whole = part.loc[~wards]
        r = pd.to_numeric(whole["representation_ratio"], errors="coerce")
        lo = pd.to_numeric(whole["representation_ratio_lower"], errors="coerce")
        hi = pd.to_numeric(whole["representation_ratio_upper"], errors="coerce")
        flag = whole["representation"].astype(str)
        colour = np.where(flag == "over-represented", "#b2182b",
                          np.where(flag == "under-represented", "#2166ac", "black"))
        ok = (r > 0).to_numpy() & lo.notna().to_numpy()
        ys = whole["group"].map(y).to_numpy()
        ax.errorbar(r[ok], ys[ok], xerr=[(r - lo)[ok], (hi - r)[ok]], fmt="none",
                    ecolor=colour[ok], elinewidth=1.5, zorder=3)
        ax.scatter(r[ok], ys[ok], color=colour[ok], s=36, zorder=4,
                   label="Whole area (95% interval)")
        ax.axvline(1.0, color="#555555", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(RATIO_TICKS))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_yticks(range(len(groups)), groups)
        ax.set_ylim(-0.6, len(groups) - 0.4)
        ax.set_title(f"By {breakdown}: share of EHC plans ÷ share of population")
        ax.grid(True, axis="x", color="#eeeeee")
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Representation among EHC plans (red over-, blue under-represented)",
                 fontsize=10)
    return fig


def describe_conversion(conversion: pd.DataFrame) -> list[str]:
    """One plain sentence per breakdown: the whole-area rate and the groups outside the funnel.

    Works on the published (suppressed) table; withheld groups are not named.
    """
    out = []
    for breakdown, part in conversion.groupby("breakdown", sort=False):
        whole = part.loc[part["group"] == TOTAL].iloc[0]
        text = (f"By {breakdown}: {float(whole['la_conversion_pct']):.1f}% of pupils on SEN "
                f"support had a new EHC plan the following year across the whole area "
                f"(base years {whole['cohort_years']}).")
        found = False
        for flag, words in (("higher (99.8%)", "well above"), ("higher (95%)", "above"),
                            ("lower (95%)", "below"), ("lower (99.8%)", "well below")):
            groups = part.loc[part["vs_la"] == flag]
            if len(groups):
                found = True
                listed = ", ".join(f"{g} ({float(r):.1f}%)" for g, r in
                                   zip(groups["group_name"], groups["conversion_pct"]))
                limit = "99.8%" if "99.8" in flag else "95%"
                text += f" {words.capitalize()} the area's rate ({limit} funnel limit): {listed}."
        if not found:
            text += " Every group is within the 95% funnel limits."
        out.append(text)
    return out


def describe_representation(
    representation: pd.DataFrame, *, code_name: str = "ward_code"
) -> list[str]:
    """One plain sentence per breakdown on the whole-area representation ratios.

    Works on the published (suppressed) table; withheld groups are not named.
    """
    out = []
    for breakdown, part in representation.groupby("breakdown", sort=False):
        whole = part.loc[part[code_name] == TOTAL]
        parts = []
        for flag in ("over-represented", "under-represented"):
            groups = whole.loc[whole["representation"] == flag]
            if len(groups):
                listed = ", ".join(
                    f"{g} (ratio {float(r):.2f}, 95% interval {float(lo):.2f}–{float(hi):.2f})"
                    for g, r, lo, hi in zip(groups["group"], groups["representation_ratio"],
                                            groups["representation_ratio_lower"],
                                            groups["representation_ratio_upper"]))
                parts.append(f"{flag}: {listed}")
        found = "; ".join(parts) if parts else "no group is clearly over- or under-represented"
        out.append(f"Among EHC plans across the whole area, by {breakdown}, {found}.")
    return out
