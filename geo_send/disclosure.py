"""Disclosure control: small counts are withheld from everything written for publication.

The index is computed from the true values; suppression is applied only at the writer
boundary, by :func:`publishable`, which :func:`geo_send.outputs.write_outputs` calls
before writing the ranked CSV, the GeoPackage and the map (and which every other
publication writer, such as a report or figure labels, should use too).

Rules
-----
Which columns are counts of people
    Columns whose name ends in ``_count`` (the naming convention), and the numerator and
    denominator of every ``proportion`` or ``rate`` indicator whatever their name; except
    the counts of things in :data:`NON_PERSON_COUNTS` (``indicators_missing_count``,
    ``lsoa_count``, ``school_count``, ...).
Primary suppression
    A count ``0 < x < threshold`` is withheld; so is 0 unless ``show_zero`` (default:
    zeros are shown, as "none" reveals nobody).
Secondary suppression
    A reader may know (or learn) sums over the published cells. geo_send assumes these
    *relations* are known:

    - the area total of every count column (it is published elsewhere, e.g. by DfE);
    - for a ``proportion`` indicator, ``denominator = numerator + rest`` in each area, the
      rest being unpublished (pupils without an EHC plan); a rest ``0 < r < threshold``
      is itself sensitive;
    - for SEN counts named ``{p}_pupils_count``, ``{p}_sen_support_count`` and
      ``{p}_ehcp_count``: ``pupils = SEN support + EHCP + no SEN`` in each area.

    A relation is unsafe when a withheld or sensitive cell in it could be solved for:
    exactly one unknown is left, or every unknown would have to sit at its lower bound
    (two withheld cells that add up to 2 are both 1). Then the smallest non-zero
    published cell of the relation is withheld as well ("secondary"), ties broken by area
    code and column order, until every relation is safe. Finally a linear-programming
    audit (:func:`recoverable_cells`) bounds every withheld cell using all relations at
    once and withholds more wherever a cell is still pinned to one value.
Derived values
    A column derived from counts is withheld wherever its numerator or denominator is:
    the indicator column itself and every column named ``{indicator}_...`` (intervals,
    smoothed values, normalised scores).
How withheld cells are shown
    In the CSV and GeoPackage the cell is empty (NULL) and a 0/1 column says it was
    withheld, so that every column stays numeric (a blank with flag 0 is a value missing at
    source): ``{count}_suppressed`` for each count column, and ``{indicator}_suppressed``
    for each count-based indicator, covering the indicator and all its
    ``{indicator}_...`` columns. Text outputs (map tooltips, report
    tables, figure labels) show :data:`MARKER`, DfE's "c", via :func:`display`.

Not covered: composite scores (domain scores, the need index, ranks) are published from
true values, as the index must be; combining every other published indicator with a
domain score could in principle narrow a withheld indicator down. Hierarchies of areas
(LSOAs adding up to wards) are not relations here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .config import DisclosureSettings, IndicatorSpec

if TYPE_CHECKING:
    from .pipeline import Result

__all__ = [
    "MARKER",
    "FLAG_SUFFIX",
    "NON_PERSON_COUNTS",
    "AUDIT_MAX_UNKNOWNS",
    "Relation",
    "Publication",
    "count_columns",
    "derived_columns",
    "build_relations",
    "suppress_counts",
    "recoverable_cells",
    "suppress_frame",
    "publishable",
    "display",
    "SUPPRESSED",
    "suppress",
    "suppressed_mask",
]

log = logging.getLogger(__name__)

#: What text outputs show for a withheld value (DfE's marker for "confidential").
MARKER = "c"
#: Suffix of the 0/1 column that marks withheld cells of a column.
FLAG_SUFFIX = "_suppressed"
#: Columns ending in ``_count`` that count things, not people.
NON_PERSON_COUNTS = frozenset({
    "indicators_missing_count",
    "lsoa_count",
    "school_count",
    "specialist_school_count",
    "idaci_lsoas_suppressed_count",
})
#: Largest number of unknowns the linear-programming audit handles (beyond it, only the
#: relation-by-relation rules apply and a note says so).
AUDIT_MAX_UNKNOWNS = 3000
_SEN_PARTS = ("_pupils_count", "_sen_support_count", "_ehcp_count")


@dataclass(frozen=True)
class Relation:
    """A sum a reader can know: ``sum(sign * cell) - implied = constant``.

    Attributes
    ----------
    label : str
        What the relation is, for notes (``"total of school_ehcp_count"``).
    cells : tuple of (int, int, int)
        ``(row, column, sign)``: positions in the count matrix and +1 or -1.
    implied : float or None
        True value of an unpublished part (the "rest" of a proportion, pupils with no
        SEN), or None when every part is published.
    """

    label: str
    cells: tuple[tuple[int, int, int], ...]
    implied: float | None = None


def count_columns(columns: Sequence[str], indicators: Sequence[IndicatorSpec] = ()) -> list[str]:
    """Columns holding counts of people, in the order of ``columns`` (see module notes)."""
    sources = {c for s in indicators if s.is_count_based for c in (s.numerator, s.denominator)}
    return [
        c for c in columns
        if (str(c).endswith("_count") or c in sources) and c not in NON_PERSON_COUNTS
    ]


def derived_columns(
    columns: Sequence[str], indicators: Sequence[IndicatorSpec]
) -> dict[str, tuple[str, str]]:
    """Columns computed from counts: ``{column: (numerator, denominator)}``.

    The value column of each count-based indicator and every column whose name starts
    with ``{indicator name}_`` (intervals, smoothed values, scores of that indicator); a
    column matching several indicators belongs to the longest name.
    """
    specs = {s.name: s for s in indicators if s.is_count_based}
    out: dict[str, tuple[str, str]] = {}
    for c in columns:
        if str(c).endswith(FLAG_SUFFIX):
            continue
        names = [n for n in specs if c == n or str(c).startswith(f"{n}_")]
        if names:
            spec = specs[max(names, key=len)]  # 'e_pct_adj_lo' belongs to 'e_pct_adj'
            out[c] = (str(spec.numerator), str(spec.denominator))
    return out


def build_relations(
    counts: pd.DataFrame, indicators: Sequence[IndicatorSpec] = ()
) -> list[Relation]:
    """Return the relations a reader can use on ``counts`` (areas x count columns).

    Column totals, proportion complements and SEN partitions (see module notes), in a
    fixed order.
    """
    values = counts.to_numpy(dtype=float)
    cols = list(counts.columns)
    pos = {c: j for j, c in enumerate(cols)}
    rels: list[Relation] = []
    for j, c in enumerate(cols):
        rows = np.flatnonzero(~np.isnan(values[:, j]))
        rels.append(Relation(f"total of {c}", tuple((int(i), j, 1) for i in rows)))
    groups: list[tuple[str, str, list[str]]] = []
    for spec in indicators:
        if spec.kind == "proportion" and spec.numerator in pos and spec.denominator in pos:
            groups.append((f"{spec.denominator} = {spec.numerator} + rest", str(spec.denominator),
                           [str(spec.numerator)]))
    for c in cols:
        if c.endswith(_SEN_PARTS[0]):
            prefix = c[: -len(_SEN_PARTS[0])]
            parts = [prefix + p for p in _SEN_PARTS[1:]]
            if all(p in pos for p in parts):
                groups.append((f"{c} = SEN support + EHCP + no SEN", c, parts))
    codes = [str(code) for code in counts.index]
    for label, total, parts in groups:
        jt, jp = pos[total], [pos[p] for p in parts]
        for i in range(len(values)):
            row = [values[i, jt]] + [values[i, j] for j in jp]
            if any(np.isnan(row)):
                continue
            rest = row[0] - sum(row[1:])
            if rest < 0:
                continue  # inconsistent input (checked elsewhere); no identity to protect
            cells = ((i, jt, 1),) + tuple((i, j, -1) for j in jp)
            rels.append(Relation(f"{label} in {codes[i]}", cells, float(rest)))
    return rels


def _sensitive(value: float, threshold: int, show_zero: bool) -> bool:
    return (0 < value < threshold) or (value == 0 and not show_zero)


def suppress_counts(
    counts: pd.DataFrame,
    relations: Sequence[Relation],
    *,
    threshold: int,
    show_zero: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Decide which count cells to withhold.

    Parameters
    ----------
    counts : DataFrame
        Areas x count columns, true values (NaN = missing at source, published blank).
    relations : sequence of Relation
        From :func:`build_relations`.
    threshold : int
        Counts ``0 < x < threshold`` are withheld (and 0 when not ``show_zero``).

    Returns
    -------
    reasons : DataFrame
        Same shape as ``counts``: ``""`` (published), ``"primary"`` or ``"secondary"``.
    notes : list of str
        Relations that could not be protected (no cell left to withhold), and audits
        skipped for size.

    Notes
    -----
    A relation with unknowns ``u_k >= l_k`` (a withheld count is at least 1 when zeros
    are shown, else 0; an unpublished rest is at least 0) all entering with the same sign
    and summing to a known ``s`` pins every unknown when there is one unknown or when
    ``s = sum(l_k)``; with both signs present it pins only a lone unknown. Unsafe
    relations get the smallest non-zero published cell withheld until all are safe; the
    audit in :func:`recoverable_cells` then checks all relations jointly.
    """
    values = counts.to_numpy(dtype=float)
    n, m = values.shape
    present = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        primary = present & (((values > 0) & (values < threshold))
                             | ((values == 0) & (not show_zero)))
    withheld = primary.copy()
    reasons = np.where(primary, "primary", "").astype(object)
    lower = 1.0 if show_zero else 0.0
    codes = [str(c) for c in counts.index]
    notes: list[str] = []
    given_up: set[int] = set()

    def candidate(
        cells: Sequence[tuple[int, int, int]], prefer_parts: bool
    ) -> tuple[int, int] | None:
        pool = [(i, j, sign) for i, j, sign in cells if present[i, j] and not withheld[i, j]]
        if not pool:
            return None
        nonzero = [c for c in pool if values[c[0], c[1]] > 0]
        pool = nonzero or pool
        if prefer_parts and any(sign < 0 for _, _, sign in pool):
            pool = [c for c in pool if c[2] < 0]
        i, j, _ = min(pool, key=lambda c: (values[c[0], c[1]], codes[c[0]], c[1]))
        return i, j

    def unsafe(rel: Relation) -> bool:
        cells = [(i, j, s) for i, j, s in rel.cells if present[i, j]]
        hidden = [(i, j, s) for i, j, s in cells if withheld[i, j]]
        rest_sensitive = rel.implied is not None and _sensitive(rel.implied, threshold, show_zero)
        if not hidden and not rest_sensitive:
            return False
        signs = {s for _, _, s in hidden} | ({-1} if rel.implied is not None else set())
        unknowns = len(hidden) + (rel.implied is not None)
        if unknowns <= 1:
            return True
        if len(signs) > 1:
            return False
        total = sum(values[i, j] for i, j, _ in hidden) + (rel.implied or 0.0)
        return total <= lower * len(hidden)

    def withhold(cell: tuple[int, int] | None, rel_index: int, label: str) -> bool:
        if cell is None:
            if rel_index not in given_up:
                given_up.add(rel_index)
                notes.append(f"could not protect {label}: no published cell left to withhold")
            return False
        withheld[cell] = True
        reasons[cell] = "secondary"
        return True

    # relations whose unpublished rest is itself small come first: they need a cell
    # withheld whatever else happens, and that cell may already protect a column total
    order = sorted(range(len(relations)), key=lambda k: not (
        relations[k].implied is not None
        and _sensitive(float(relations[k].implied), threshold, show_zero)))
    while True:
        changed = False
        for k in order:
            rel = relations[k]
            if k not in given_up and unsafe(rel):
                changed |= withhold(candidate(rel.cells, rel.implied is not None), k, rel.label)
        if changed:
            continue
        pinned, skipped = recoverable_cells(values, withheld, relations, lower=lower,
                                            threshold=threshold, show_zero=show_zero)
        if skipped:
            notes.append(skipped)
        for target in pinned:
            for k, rel in enumerate(relations):
                if k in given_up or not _touches(k, rel, target):
                    continue
                if withhold(candidate(rel.cells, rel.implied is not None), k, rel.label):
                    changed = True
                    break
            if changed:
                break
        if not changed:
            break
    return pd.DataFrame(reasons, index=counts.index, columns=counts.columns), notes


def _touches(k: int, rel: Relation, target: tuple[str, int, int]) -> bool:
    kind, a, b = target
    if kind == "cell":
        return any(i == a and j == b for i, j, _ in rel.cells)
    return k == a


def recoverable_cells(
    values: np.ndarray,
    withheld: np.ndarray,
    relations: Sequence[Relation],
    *,
    lower: float,
    threshold: int,
    show_zero: bool,
) -> tuple[list[tuple[str, int, int]], str]:
    """Withheld cells (and sensitive unpublished rests) that the relations pin down.

    Each unknown is bounded by linear programming over all relations jointly (withheld
    counts ``>= lower``, rests ``>= 0``); it is pinned when only one whole number fits.

    Returns
    -------
    pinned : list
        ``("cell", row, column)`` or ``("rest", relation index, 0)``, in a fixed order.
    skipped : str
        A note when the problem was too large to audit (see :data:`AUDIT_MAX_UNKNOWNS`).
    """
    from scipy.optimize import linprog

    present = ~np.isnan(values)
    hidden = [tuple(c) for c in np.argwhere(withheld & present)]
    var = {("cell", int(i), int(j)): k for k, (i, j) in enumerate(hidden)}
    rows, rhs, targets = [], [], [("cell", int(i), int(j)) for i, j in hidden]
    lows = [lower] * len(hidden)
    for index, rel in enumerate(relations):
        cells = [(i, j, s) for i, j, s in rel.cells if present[i, j]]
        touched = [(i, j, s) for i, j, s in cells if withheld[i, j]]
        rest_sensitive = rel.implied is not None and _sensitive(rel.implied, threshold, show_zero)
        if not touched and not rest_sensitive:
            continue
        coef: dict[int, float] = {}
        for i, j, s in touched:
            coef[var[("cell", i, j)]] = float(s)
        if rel.implied is not None:
            key = ("rest", index, 0)
            var[key] = len(lows)
            lows.append(0.0)
            coef[var[key]] = -1.0
            if rest_sensitive:
                targets.append(key)
        truth = {var[("cell", i, j)]: values[i, j] for i, j, _ in touched}
        if rel.implied is not None:
            truth[var[("rest", index, 0)]] = rel.implied
        rows.append(coef)
        rhs.append(sum(coef[k] * truth[k] for k in coef))
    if not targets or not rows:
        return [], ""
    if not any(rel.implied is not None for rel in relations) or len(rows) == sum(
        1 for rel in relations if rel.implied is None
        and any(withheld[i, j] and present[i, j] for i, j, _ in rel.cells)
    ):
        # only column totals are involved: each is one relation on its own cells, which
        # the rules in suppress_counts already settle exactly
        return [], ""
    if len(lows) > AUDIT_MAX_UNKNOWNS:
        return [], (f"joint audit skipped: {len(lows)} unknowns exceed {AUDIT_MAX_UNKNOWNS}; "
                    "relation-by-relation rules applied")
    a = np.zeros((len(rows), len(lows)))
    for r, coef in enumerate(rows):
        for k, v in coef.items():
            a[r, k] = v
    bounds = [(lo, None) for lo in lows]
    truth = np.zeros(len(lows))
    for i, j in hidden:
        truth[var[("cell", int(i), int(j))]] = values[i, j]
    for index, rel in enumerate(relations):
        if ("rest", index, 0) in var:
            truth[var[("rest", index, 0)]] = float(rel.implied or 0.0)
    pinned = []
    for target in targets:
        k = var[target]
        c = np.zeros(len(lows))
        c[k] = -1.0
        high = linprog(c, A_eq=a, b_eq=rhs, bounds=bounds, method="highs")
        if high.status == 3 or (high.status == 0 and -high.fun >= truth[k] + 1 - 1e-7):
            continue  # another whole number fits above the true value
        low = linprog(-c, A_eq=a, b_eq=rhs, bounds=bounds, method="highs")
        if low.status == 0 and low.fun <= truth[k] - 1 + 1e-7:
            continue  # ... or below it
        if high.status == 0 and low.status == 0:
            pinned.append(target)
    return pinned, ""


def suppress_frame(
    frame: pd.DataFrame,
    indicators: Sequence[IndicatorSpec],
    settings: DisclosureSettings,
    *,
    apply: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Withhold small counts and what derives from them in one area-by-column frame.

    Parameters
    ----------
    frame : DataFrame or GeoDataFrame
        One row per area (true values); not modified.
    indicators : sequence of IndicatorSpec
    settings : DisclosureSettings
    apply : bool
        False keeps every true value (an unsuppressed internal copy) but still adds the
        ``{column}_suppressed`` flags saying what publication withholds.

    Returns
    -------
    published : DataFrame
        A copy with withheld cells emptied (NaN), whole-number count columns as nullable
        integers, and the 0/1 ``{column}_suppressed`` columns (one per count column, one
        per count-based indicator), appended after the existing columns (before the
        geometry).
    reasons : DataFrame
        ``""``, ``"primary"``, ``"secondary"`` or ``"derived"`` per count/derived cell.
    notes : list of str
    """
    columns = [c for c in frame.columns if not isinstance(frame, gpd.GeoDataFrame)
               or c != frame.geometry.name]
    counts_cols = count_columns(columns, indicators)
    derived = {d: s for d, s in derived_columns(columns, indicators).items()
               if d not in counts_cols}
    counts = frame[counts_cols].astype(float)
    relations = build_relations(counts, indicators)
    reasons, notes = suppress_counts(counts, relations, threshold=settings.threshold,
                                     show_zero=settings.show_zero)
    for column, (num, den) in derived.items():
        hidden = pd.Series(False, index=frame.index)
        for source in (num, den):
            if source in reasons.columns:
                hidden |= reasons[source] != ""
        reasons[column] = np.where(hidden, "derived", "")
    out = frame.copy()
    for column in reasons.columns:
        values = out[column]
        if apply:
            values = values.where(reasons[column] == "")
        if column in counts_cols:
            whole = values.dropna()
            if (np.floor(whole) == whole).all():
                values = values.astype("Int64")
        out[column] = values
    heads = [c for c in counts_cols] + [
        s.name for s in indicators
        if s.is_count_based and any(_head(d, indicators) == s.name for d in derived)
    ]
    flags = pd.DataFrame(
        {f"{c}{FLAG_SUFFIX}": _flag(reasons, c, derived, indicators) for c in heads},
        index=frame.index,
    )
    ordered = [c for c in columns] + list(flags.columns)
    out = pd.concat([out, flags], axis=1)
    if isinstance(frame, gpd.GeoDataFrame):
        ordered.append(frame.geometry.name)
        out = gpd.GeoDataFrame(out[ordered], geometry=frame.geometry.name, crs=frame.crs)
    else:
        out = out[ordered]
    return out, reasons, notes


def _head(column: str, indicators: Sequence[IndicatorSpec]) -> str:
    """Return the indicator a derived column belongs to (the longest matching name)."""
    names = [s.name for s in indicators if s.is_count_based
             and (column == s.name or column.startswith(f"{s.name}_"))]
    return max(names, key=len)


def _flag(reasons: pd.DataFrame, head: str, derived: dict[str, tuple[str, str]],
          indicators: Sequence[IndicatorSpec]) -> pd.Series:
    if head in derived or head not in reasons.columns:
        columns = [d for d in derived if _head(d, indicators) == head]
    else:
        columns = [head]
    return (reasons[columns] != "").any(axis=1).astype("int64")


@dataclass(frozen=True)
class Publication:
    """What may be published from a run (or, with ``suppressed=False``, the internal copy).

    Attributes
    ----------
    wards : GeoDataFrame
        The areas in rank order with withheld cells emptied and ``_suppressed`` flags.
    reasons : DataFrame
        Why each count/derived cell is withheld (``primary``, ``secondary``, ``derived``).
    settings : DisclosureSettings
    suppressed : bool
        False for the unsuppressed internal copy (true values, same flags).
    count_columns, derived_columns : tuple of str
        The columns treated as counts of people, and those derived from them.
    notes : tuple of str
    """

    wards: gpd.GeoDataFrame
    reasons: pd.DataFrame
    settings: DisclosureSettings
    suppressed: bool = True
    count_columns: tuple[str, ...] = ()
    derived_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ranked(self) -> pd.DataFrame:
        """The published table without geometry (what the ranked CSV holds)."""
        return pd.DataFrame(self.wards.drop(columns=self.wards.geometry.name))

    def summary(self) -> dict[str, Any]:
        """Plain description for the run manifest."""
        cells = {}
        for column in self.reasons.columns:
            counted = self.reasons[column].value_counts()
            found = {k: int(counted.get(k, 0)) for k in ("primary", "secondary", "derived")}
            if any(found.values()):
                cells[column] = found
        return {
            "suppressed": self.suppressed,
            "threshold": self.settings.threshold,
            "show_zero": self.settings.show_zero,
            "count_columns": list(self.count_columns),
            "derived_columns": list(self.derived_columns),
            "shown_as": f"empty cell and {{column}}{FLAG_SUFFIX} = 1 (CSV, GeoPackage); "
                        f"'{MARKER}' in text",
            "withheld_cells": cells,
            "notes": list(self.notes),
        }


def publishable(
    result: Result, settings: DisclosureSettings | None = None, *, suppressed: bool = True
) -> Publication:
    """Apply disclosure control to a run's results, at the writer boundary.

    Parameters
    ----------
    result : Result
        From :func:`geo_send.run` (true values; not modified).
    settings : DisclosureSettings, optional
        Defaults to the run's ``config.disclosure``.
    suppressed : bool
        False gives the unsuppressed internal copy (true values, same flags).

    Returns
    -------
    Publication
    """
    settings = settings or result.config.disclosure
    wards, reasons, notes = suppress_frame(result.wards, result.config.indicators, settings,
                                           apply=suppressed)
    counts = [c for c in reasons.columns if c in count_columns(list(reasons.columns),
                                                               result.config.indicators)]
    derived = [c for c in reasons.columns if c not in counts]
    for note in notes:
        log.warning("disclosure: %s", note)
    return Publication(wards=wards, reasons=reasons, settings=settings, suppressed=suppressed,
                       count_columns=tuple(counts), derived_columns=tuple(derived),
                       notes=tuple(notes))


def display(value: object, withheld: bool, *, fmt: str = "{:,.0f}") -> str:
    """Text for a cell in a text output: :data:`MARKER` when withheld, blank when missing."""
    if withheld:
        return MARKER
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return fmt.format(value)


# -- long tables: several rows per area (years, groups), each line adding up to a total -----

#: Marker written in place of a withheld value in the long tables (trends, conversion,
#: representation), which are report-like tables rather than numeric layers.
SUPPRESSED = MARKER


def suppress(
    frame: pd.DataFrame,
    counts: Sequence[str],
    *,
    threshold: int,
    derived: Sequence[str] = (),
    lines: Sequence[Sequence[str]] = (),
    additive: Sequence[str] | None = None,
    totals: Sequence[bool] | None = None,
    show_zero: bool = True,
) -> pd.DataFrame:
    """Return a copy of a long table ready to publish, withheld cells shown as ``"c"``.

    Parameters
    ----------
    frame : DataFrame
        The table to publish; not modified.
    counts : sequence of str
        Count columns: ``0 < x < threshold`` is withheld (0 too when ``show_zero`` is
        False).
    threshold : int
        ``[disclosure] threshold``.
    derived : sequence of str
        Columns computed from the counts of their row (rates, intervals, ratios, flags),
        withheld in every row where any count is.
    lines : sequence of sequence of str
        Each entry names columns whose equal values mark rows that add up to a total, total
        row included (``[["measure", "year"]]``: the areas and the whole-area row of one
        year; ``[[]]``: the whole frame).
    additive : sequence of str, optional
        The count columns that add up along ``lines``; all ``counts`` by default.
    totals : sequence of bool, optional
        Marks the rows that are the total of their line (the whole-area rows); a line
        without one adds up to a total known from elsewhere.
    show_zero : bool

    Returns
    -------
    DataFrame
        Same index and columns; ``counts`` and ``derived`` columns have object dtype and
        hold ``"c"`` where withheld.

    Notes
    -----
    Each line and additive column becomes a :class:`Relation` (the total row with sign −1)
    and :func:`suppress_counts` decides with the same rules as for the ranked table: a
    lone withheld cell, or withheld cells that could only all sit at their smallest value
    (two cells adding up to 2), take the smallest other non-zero cell of the line with
    them, until every line is safe.
    """
    mask = suppressed_mask(frame, counts, threshold=threshold, derived=derived, lines=lines,
                           additive=additive, totals=totals, show_zero=show_zero)
    out = frame.copy()
    for column in [*counts, *derived]:
        out[column] = out[column].astype(object).where(~mask[column], SUPPRESSED)
    return out


def suppressed_mask(
    frame: pd.DataFrame,
    counts: Sequence[str],
    *,
    threshold: int,
    derived: Sequence[str] = (),
    lines: Sequence[Sequence[str]] = (),
    additive: Sequence[str] | None = None,
    totals: Sequence[bool] | None = None,
    show_zero: bool = True,
) -> pd.DataFrame:
    """Boolean frame over ``counts`` and ``derived``: True where :func:`suppress` withholds."""
    counts = list(counts)
    additive = counts if additive is None else list(additive)
    values = frame[counts].apply(pd.to_numeric, errors="coerce").astype(float)
    values.index = pd.Index([f"{i:09d}" for i in range(len(frame))])  # ties by row order
    is_total = (np.zeros(len(frame), dtype=bool) if totals is None
                else np.asarray(totals, dtype=bool))
    relations = []
    for keys in lines:
        ids = (frame.groupby(list(keys), sort=False, dropna=False).ngroup().to_numpy()
               if len(keys) else np.zeros(len(frame), dtype=int))
        for group in np.unique(ids):
            rows = np.flatnonzero(ids == group)
            if len(rows) < 2:
                continue
            for column in additive:
                j = counts.index(column)
                cells = tuple((int(i), j, -1 if is_total[i] else 1) for i in rows)
                relations.append(Relation(f"{column} along {', '.join(keys) or 'all rows'}",
                                          cells))
    reasons, notes = suppress_counts(values, relations, threshold=threshold,
                                     show_zero=show_zero)
    for note in notes:
        log.warning("%s", note)
    out = pd.DataFrame(reasons.to_numpy() != "", index=frame.index, columns=counts)
    any_row = out.any(axis=1)
    for column in derived:
        out[column] = any_row
    return out
