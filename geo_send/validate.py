"""Content rules for boundaries, tables and coordinates.

Each ``check_*`` function returns the problems it finds instead of raising, so the
pipeline can read every input, collect every problem across files and raise once
(:func:`geo_send._errors.combine`). The ``validate_*`` names raise straight away, for use
on their own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import ValidationError, close_matches, preview
from .config import MISSING_VALUES, IndicatorSpec

__all__ = [
    "check_boundaries",
    "check_codes",
    "check_coordinates",
    "clean_codes",
    "validate_boundaries",
    "validate_codes",
    "to_numbers",
    "validate_indicator_inputs",
    "validate_long_table",
    "MISSING_MARKERS",
    "OLD_WOLVERHAMPTON_WARDS",
    "GB_BOUNDS",
]

log = logging.getLogger(__name__)

CRS = "EPSG:27700"
#: Text read as a missing value by default (see :data:`geo_send.config.MISSING_VALUES`).
MISSING_MARKERS = frozenset(MISSING_VALUES)
#: Pre-May-2023 Wolverhampton ward codes, replaced by E05014838–E05014857.
OLD_WOLVERHAMPTON_WARDS = frozenset(f"E0500{n}" for n in range(1321, 1341))
#: British National Grid extent of Great Britain (metres): xmin, ymin, xmax, ymax. The land
#: lies well inside it (Scilly near x = 80 km, the Lizard near y = 11 km), so longitude and
#: latitude taken for metres (x below 2, y near 50) fall outside.
GB_BOUNDS = (1_000.0, 1_000.0, 700_000.0, 1_300_000.0)
_ONS_CODE = re.compile(r"^[EWSNKLM]\d{8}$")
#: Kinds of ONS code by prefix, for messages about codes of the wrong kind.
_CODE_KINDS = {
    "E00": "output area", "E01": "LSOA", "E02": "MSOA", "E04": "parish", "E05": "ward",
    "E06": "local authority", "E07": "local authority", "E08": "local authority",
    "E09": "local authority", "E10": "county", "E12": "region", "E92": "country",
    "W05": "ward", "W06": "local authority", "S13": "ward", "N08": "ward",
}
_TOTAL_WORDS = ("total", "all wards", "all areas", "all lsoas", "all", "england", "la total",
                "grand total", "overall", "sum")
_LESS_THAN = re.compile(r"^[<≤]\s*\d+(\.\d+)?$")
_INTEGER = r"(?:\d+|\d{1,3}(?:,\d{3})+|\d{1,3}(?:[ \u00a0\u202f]\d{3})+)"
_NUMBER = re.compile(rf"^[+-]?(?:{_INTEGER}(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d{1,2}$|^[+-]?\d+,\d{4,}$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- boundaries ---------------------------------------------------------------------------


def check_boundaries(
    gdf: gpd.GeoDataFrame, *, source: str, invalid_geometry: str = "refuse"
) -> tuple[gpd.GeoDataFrame, list[str], list[str]]:
    """Check boundaries; return them in EPSG:27700 with the problems and notes found.

    Rules: a CRS is declared and fits the coordinates (once in EPSG:27700 they lie in
    Great Britain); codes are present and unique; every geometry is a non-empty polygon
    or multipolygon; every geometry is valid, or, with ``invalid_geometry="repair"``,
    is repaired by :func:`shapely.make_valid` (keeping its polygonal parts) and noted.

    Parameters
    ----------
    gdf : GeoDataFrame
        Indexed by area code, as :func:`geo_send.load.read_boundaries` returns it.
    source : str
        File name used in messages.
    invalid_geometry : {'refuse', 'repair'}
        What to do with invalid geometry. Refusing is the default: a repair changes the
        shape of a ward (a self-intersecting "bow-tie" becomes two triangles, a spike
        disappears) and so its neighbours in the spatial weights, which the analyst
        should see and accept rather than discover.

    Returns
    -------
    boundaries : GeoDataFrame
        In EPSG:27700 (unchanged when the CRS is missing or unusable).
    problems : list of str
    notes : list of str
        Things done or noticed that are not errors (repairs; names that spreadsheets
        would read as formulas); the pipeline logs them and the manifest keeps them.
    """
    problems: list[str] = []
    notes: list[str] = []
    codes = gdf.index
    blank = codes[(codes.astype(str) == "") | codes.isna()]
    if len(blank):
        problems.append(f"{source}: {len(blank)} feature(s) have an empty code")
    dup = codes[codes.duplicated() & (codes.astype(str) != "")].unique()
    if len(dup):
        problems.append(f"{source}: duplicated code(s): {preview(sorted(dup))}; expected one "
                        "feature per area (dissolve multi-part areas first)")
    geoms = gdf.geometry
    empty = codes[geoms.isna() | geoms.is_empty]
    if len(empty):
        problems.append(f"{source}: empty geometry for {preview(empty)}")
    wrong = codes[~geoms.isna() & ~geoms.is_empty
                  & ~geoms.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(wrong):
        kinds = sorted(set(geoms.loc[wrong].geom_type))
        problems.append(f"{source}: geometry is not a polygon ({', '.join(kinds)}) for "
                        f"{preview(wrong)}; expected area polygons")
    ok = ~geoms.isna() & ~geoms.is_empty & geoms.geom_type.isin(["Polygon", "MultiPolygon"])
    invalid = codes[ok & ~geoms.is_valid]
    if len(invalid):
        reasons = [
            f"{c} ({shapely.is_valid_reason(g)})"
            for c, g in zip(invalid, geoms.loc[invalid], strict=True)
        ]
        if invalid_geometry == "repair":
            gdf, failed = _repair(gdf, invalid)
            if failed:
                problems.append(f"{source}: invalid geometry for {preview(failed, 3)} could not "
                                "be repaired into polygons")
            notes.append(f"{source}: repaired invalid geometry (shapely.make_valid) for "
                         f"{preview(reasons, 3)}; check these areas and their neighbours")
        else:
            problems.append(
                f"{source}: invalid geometry for {preview(reasons, 3)}; repair it (e.g. "
                "shapely.make_valid, or QGIS 'Fix geometries') or set [inputs] "
                "invalid_geometry = \"repair\""
            )
    name_columns = [c for c in gdf.columns if c != gdf.geometry.name]
    names = gdf[name_columns[0]].astype(str) if name_columns else pd.Series(dtype=str)
    formula = names[names.str.startswith(_FORMULA_START)]
    if len(formula):
        notes.append(f"{source}: name(s) of {preview(formula.index)} begin with =, +, -, @ or a "
                     "control character: spreadsheet programs may read them as formulas when "
                     "opening the CSV; they are written unchanged")
    if gdf.crs is None:
        problems.append(
            f"{source}: boundaries have no coordinate reference system; expected one, such as "
            "EPSG:27700 (British National Grid) or EPSG:4326 (longitude/latitude)"
        )
        return gdf, problems, notes
    try:
        projected = gdf.to_crs(CRS) if gdf.crs != CRS else gdf
    except Exception as exc:  # pyproj raises several types for unusable CRSs
        problems.append(f"{source}: cannot reproject from {gdf.crs} to {CRS} ({exc})")
        return gdf, problems, notes
    bounds = projected.geometry[~projected.geometry.isna() & ~projected.geometry.is_empty]
    if len(bounds):
        xmin, ymin, xmax, ymax = bounds.total_bounds
        if not np.all(np.isfinite([xmin, ymin, xmax, ymax])) or not _inside_gb(
            xmin, ymin, xmax, ymax
        ):
            raw = gdf.geometry.total_bounds
            hint = ""
            if _looks_like_degrees(raw) and not gdf.crs.is_geographic:
                hint = "; they look like longitude/latitude (EPSG:4326)"
            elif gdf.crs.is_geographic and not _looks_like_degrees(raw):
                hint = "; they look like metres (e.g. British National Grid, EPSG:27700)"
            problems.append(
                f"{source}: the coordinates do not fit the declared CRS {gdf.crs.to_string()}: "
                f"once in {CRS} they do not lie in Great Britain (bounds "
                f"{', '.join(f'{v:.6g}' for v in raw)}){hint}; declare the CRS the coordinates "
                "are really in"
            )
    return projected, problems, notes


def _repair(gdf: gpd.GeoDataFrame, codes: pd.Index) -> tuple[gpd.GeoDataFrame, list[str]]:
    out = gdf.copy()
    failed = []
    for code in codes:
        fixed = shapely.make_valid(out.geometry.loc[code])
        parts = [
            g for g in getattr(fixed, "geoms", [fixed])
            if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty
        ]
        if not parts:
            failed.append(str(code))
            continue
        out.loc[code, out.geometry.name] = shapely.union_all(parts)
    return out, failed


def _inside_gb(xmin: float, ymin: float, xmax: float, ymax: float) -> bool:
    gx0, gy0, gx1, gy1 = GB_BOUNDS
    return gx0 <= xmin and gy0 <= ymin and xmax <= gx1 and ymax <= gy1


def _looks_like_degrees(bounds: Sequence[float]) -> bool:
    xmin, ymin, xmax, ymax = bounds
    return -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90


def validate_boundaries(
    gdf: gpd.GeoDataFrame, *, source: str, invalid_geometry: str = "refuse"
) -> gpd.GeoDataFrame:
    """Check boundaries and return them in EPSG:27700 (see :func:`check_boundaries`).

    Raises
    ------
    ValidationError
        Listing every problem found.
    """
    out, problems, notes = check_boundaries(gdf, source=source, invalid_geometry=invalid_geometry)
    for note in notes:
        log.warning("%s", note)
    if problems:
        raise ValidationError(problems)
    return out


# -- codes --------------------------------------------------------------------------------


def clean_codes(codes: pd.Series) -> pd.Series:
    """Tidy area codes as typed by people and spreadsheets.

    Surrounding spaces (including non-breaking ones) are removed; a value that becomes
    an ONS code once inner spaces are removed and letters upper-cased
    (``' e05 014838'`` -> ``'E05014838'``) is replaced by that code. Anything else is
    kept as typed, to be reported.
    """
    text = codes.astype(str).str.strip()
    squeezed = text.str.replace(r"\s+", "", regex=True).str.upper()
    return text.where(~squeezed.str.match(_ONS_CODE), squeezed)


def _code_kind(code: str, *, area_name: str | None) -> str:
    low = code.strip().lower()
    if code in OLD_WOLVERHAMPTON_WARDS:
        return "old"
    if (area_name and low == area_name.strip().lower()) or low in _TOTAL_WORDS or "total" in low:
        return "total"
    if _ONS_CODE.match(code):
        kind = _CODE_KINDS.get(code[:3])
        if kind == "local authority":
            return "total"
        return kind or "ons"
    return "other"


def check_codes(
    table: pd.DataFrame,
    areas: pd.Index,
    *,
    source: str,
    code_name: str,
    area_name: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Check a table's codes against the boundary codes and index the table by code.

    Codes are tidied by :func:`clean_codes` first. Reported: blank codes, duplicated
    codes (with their rows), and codes not among the boundaries, grouped by what they
    look like: pre-2023 Wolverhampton wards (re-base on the May 2023 review), totals rows
    (``Total``, ``All wards``, the area's name, a local authority code), codes of another
    geography (an LSOA code in a ward table), ward codes from outside this area, and
    text that is no ONS code at all.

    Returns
    -------
    table : DataFrame
        Indexed by the tidied code (rows with problems kept, so that further checks can
        still name them).
    problems : list of str
    """
    problems = []
    codes = clean_codes(table[code_name])
    blank = table.index[codes == ""]
    if len(blank):
        problems.append(f"{source}: column {code_name!r} is empty on row(s) {preview(blank)}")
    dup = codes[codes.duplicated(keep=False) & (codes != "")]
    if len(dup):
        rows = [f"{c} (rows {', '.join(map(str, dup.index[dup == c]))})" for c in dup.unique()]
        problems.append(f"{source}: duplicated code(s) in {code_name!r}: {preview(rows)}; "
                        "expected one row per area")
    unknown = codes[~codes.isin(areas) & (codes != "")]
    groups: dict[str, list[str]] = {}
    for row, code in unknown.items():
        groups.setdefault(_code_kind(code, area_name=area_name), []).append(f"{code} (row {row})")
    where = f"{area_name}'s {len(areas)}" if area_name else f"the {len(areas)}"
    level = code_name.replace("_code", "")
    for kind, listed in groups.items():
        n = len(listed)
        head = f"{source}: {n} code(s) in {code_name!r} are not among {where} boundary codes"
        if kind == "old":
            problems.append(
                f"{head}: {preview(listed)}; they are pre-2023 Wolverhampton ward codes: the May "
                "2023 boundary review replaced them by E05014838–E05014857, so re-base the "
                "figures on the current wards"
            )
        elif kind == "total":
            problems.append(
                f"{head}: {preview(listed)}; this looks like a totals row (a grand total, the "
                "area's name or a local authority code): remove it, geo_send adds up the areas "
                "itself"
            )
        elif kind.lower() == level:
            problems.append(
                f"{head}: {preview(listed)}; they are {level} codes from outside this area "
                "(another local authority, or another boundary vintage?)"
            )
        elif kind in ("ons", "other"):
            what = "ONS codes of an unknown kind" if kind == "ons" else "not ONS codes at all"
            problems.append(f"{head}: {preview(listed)}; {what} (a totals or notes row?); "
                            f"expected {level} codes such as {preview(sorted(areas), 1)}")
        else:
            problems.append(
                f"{head}: {preview(listed)}; they are {kind} codes, expected {level} codes (is the "
                f"table at {kind} level? set [area] level or use the matching input)"
            )
    if len(unknown) and len(unknown) == int((codes != "").sum()):
        problems.append(f"{source}: none of the codes match the boundaries: is the table for "
                        "another area, or another geography or year?")
    out = table.assign(**{code_name: codes})
    if table.index.name == "csv_row":
        out = out.assign(csv_row=table.index.to_numpy())
    return out.set_index(code_name), problems


def validate_codes(
    table: pd.DataFrame,
    areas: pd.Index,
    *,
    source: str,
    code_name: str,
) -> pd.DataFrame:
    """Check a table's codes and index it by code (see :func:`check_codes`).

    Raises
    ------
    ValidationError
        On blank, duplicated or unknown codes, with hints about what they look like.
    """
    out, problems = check_codes(table, areas, source=source, code_name=code_name)
    if problems:
        raise ValidationError(problems)
    return out


# -- numbers ------------------------------------------------------------------------------


def _why_not_a_number(text: str) -> str:
    if _DECIMAL_COMMA.match(text):
        return " (a decimal comma? use a decimal point)"
    if text.startswith("#"):
        return " (a spreadsheet error)"
    if text.lower() in ("nan", "inf", "-inf", "infinity", "none", "null"):
        return " (write a missing-value marker instead)"
    if text.startswith("(") and text.endswith(")"):
        return " (an accounting-style negative?)"
    return ""


def to_numbers(
    table: pd.DataFrame,
    columns: Sequence[str],
    *,
    source: str,
    missing_values: Collection[str] = MISSING_VALUES,
) -> tuple[pd.DataFrame, list[str]]:
    """Parse text columns into numbers, collecting every problem.

    Read as numbers: ``1234``, ``1,234`` and ``1 234`` (thousands separators in groups
    of three), ``12.5``, ``1.2e3``, ``-3`` (also with a Unicode minus), ``41.1%`` (the
    ``%`` is dropped). Read as missing (never zero): the markers in ``missing_values``
    (case and surrounding spaces ignored) and any ``<number`` such as ``<5``.
    Everything else is a problem, including a decimal comma (``12,5``), spreadsheet
    errors (``#DIV/0!``), ``nan`` and ``inf``.

    Returns
    -------
    frame : DataFrame
        ``table`` with ``columns`` as floats.
    problems : list of str
        Missing columns and unreadable values, each naming file, column, rows and values.
    """
    problems: list[str] = []
    markers = {m.strip().lower() for m in missing_values}
    out = table.copy()
    names = ["blank" if m == "" else m for m in sorted(markers)]
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    for column in columns:
        if column not in out.columns:
            problems.append(
                f"{source}: column {column!r} not found{close_matches(column, out.columns)}"
            )
            continue
        if pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype(float)
            continue
        text = out[column].astype(str).str.strip()
        # Plain numbers (the great majority) are parsed in compiled code: pandas reads
        # exactly the strings _NUMBER accepts without thousands separators. The rules
        # below then run on the other values only.
        quick = pd.to_numeric(text, errors="coerce").astype(float)
        easy = np.isfinite(quick) & ~text.isin(markers)
        if easy.all():
            out[column] = quick
            continue
        hard = ~easy.to_numpy()
        text = text[hard]
        lowered = text.str.lower()
        missing = lowered.isin(markers) | text.str.match(_LESS_THAN)
        cleaned = text.str.replace("\u2212", "-", regex=False).str.replace(r"\s*%$", "", regex=True)
        ok = cleaned.str.match(_NUMBER) & ~missing
        digits = cleaned.where(ok).str.replace(r"[,\s\u00a0\u202f]", "", regex=True)
        numbers = pd.to_numeric(digits, errors="coerce").astype(float)
        bad = ~missing & (numbers.isna() | ~np.isfinite(numbers.fillna(0.0)))
        if bad.any():
            lines = (out["csv_row"].to_numpy()[hard] if "csv_row" in out.columns
                     else np.full(len(text), np.nan))
            flags = bad.to_numpy()
            rows = [
                (f"row {line} ({r})" if pd.notna(line) else str(r))
                + f": {v!r}{_why_not_a_number(v)}"
                for r, line, v in zip(text.index[flags], lines[flags], text[flags], strict=True)
            ]
            problems.append(
                f"{source}: column {column!r} has {int(bad.sum())} non-numeric value(s): "
                f"{preview(rows, 3)}; expected numbers such as 1234, 1,234 or 41.1%, or a "
                f"missing-value marker ({shown}; any <number)"
            )
        if missing.any() and (text[missing] != "").any():
            log.info("%s: column %r: %d value(s) read as missing (%s)", source, column,
                     int((missing & (text != "")).sum()),
                     ", ".join(sorted(set(text[missing & (text != "")]))[:5]))
        parsed = quick.to_numpy(copy=True)
        parsed[hard] = numbers.where(~bad & ~missing).to_numpy()
        out[column] = pd.Series(parsed, index=out.index)
    return out, problems


def validate_indicator_inputs(
    table: pd.DataFrame, indicators: Sequence[IndicatorSpec], *, source: str
) -> list[str]:
    """Rules on the numbers an indicator reads; returns the problems found.

    Counts must be non-negative whole numbers; denominators positive where present;
    a proportion's numerator must not exceed its denominator. Indicators whose columns
    are not all in ``table`` are skipped.
    """
    problems: list[str] = []

    def codes(mask: pd.Series) -> str:
        return preview(table.index[mask.fillna(False).to_numpy(dtype=bool)])

    checked: set[str] = set()
    for spec in indicators:
        if not spec.is_count_based:
            continue
        if spec.numerator not in table.columns or spec.denominator not in table.columns:
            continue
        num, den = table[spec.numerator], table[spec.denominator]
        for column, values in ((spec.numerator, num), (spec.denominator, den)):
            if column in checked:
                continue
            checked.add(str(column))
            negative = values < 0
            if negative.any():
                problems.append(f"{source}: column {column!r} is negative for {codes(negative)}; "
                                "expected a count (0 or more)")
            fractional = values.notna() & (np.floor(values) != values)
            if fractional.any():
                problems.append(
                    f"{source}: column {column!r} should hold whole counts but has fractions "
                    f"for {codes(fractional)}"
                )
        if spec.kind == "proportion":
            over = num > den
            if over.any():
                problems.append(
                    f"{source}: {spec.numerator!r} exceeds its denominator {spec.denominator!r} "
                    f"for {codes(over)} (indicator {spec.name!r})"
                )
        zero = (den == 0) & (num > 0)
        if zero.any():
            problems.append(
                f"{source}: {spec.denominator!r} is 0 while {spec.numerator!r} is not for "
                f"{codes(zero)} (indicator {spec.name!r})"
            )
    return problems


# -- coordinates --------------------------------------------------------------------------


def check_coordinates(
    x: pd.Series, y: pd.Series, *, source: str, columns: tuple[str, str]
) -> tuple[pd.Series, list[str]]:
    """Check British National Grid easting/northing given as numbers (NaN = missing).

    Returns
    -------
    usable : Series of bool
        Rows whose coordinates are present and inside Great Britain.
    problems : list of str
        Missing coordinates; coordinates that look like longitude/latitude (a CRS mix-up);
        coordinates outside Great Britain, with a hint when easting and northing seem
        swapped.
    """
    problems: list[str] = []
    absent = x.isna() | y.isna()
    if absent.any():
        problems.append(f"{source}: {int(absent.sum())} row(s) have no {columns[0]}/{columns[1]}: "
                        f"row(s) {preview(x.index[absent])}; expected both coordinates")
    gx0, gy0, gx1, gy1 = GB_BOUNDS
    inside = (x >= gx0) & (x <= gx1) & (y >= gy0) & (y <= gy1) & ~absent
    outside = ~inside & ~absent
    if outside.any():
        degrees = outside & x.between(-180, 180) & y.between(-90, 90)
        swapped = outside & (y >= gx0) & (y <= gx1) & (x >= gy0) & (x <= gy1)
        hint = ""
        if degrees.sum() * 2 >= outside.sum():
            hint = ("; they look like longitude/latitude (EPSG:4326), not British National Grid "
                    "(EPSG:27700) metres: the inputs mix coordinate systems")
        elif swapped.sum() * 2 >= outside.sum():
            hint = f"; are {columns[0]} and {columns[1]} swapped?"
        rows = [f"{r} ({a:g}, {b:g})"
                for r, a, b in zip(x.index[outside], x[outside], y[outside], strict=True)]
        problems.append(
            f"{source}: {int(outside.sum())} row(s) have {columns[0]}/{columns[1]} outside Great "
            f"Britain: {preview(rows, 3)}{hint}; expected British National Grid metres"
        )
    return inside, problems


def validate_long_table(
    table: pd.DataFrame,
    areas: pd.Index,
    *,
    source: str,
    code_name: str,
    keys: Sequence[str],
    counts: Sequence[str],
    year_column: str | None = None,
    missing_values: Collection[str] = MISSING_VALUES,
) -> pd.DataFrame:
    """Check a table with several rows per area (years, groups) and parse its numbers.

    Rules: every named column exists; codes are known boundary codes; each combination
    of code and ``keys`` appears once; years are whole numbers; counts are whole numbers
    of zero or more (missing-value markers stay missing, never zero).

    Returns
    -------
    DataFrame
        The table with counts as floats and the year as integers, rows as read.

    Raises
    ------
    ValidationError
        Listing every problem found.
    """
    problems: list[str] = []
    text_columns = [c for c in keys if c != year_column]
    for column in text_columns:
        if column not in table.columns:
            problems.append(
                f"{source}: column {column!r} not found{close_matches(column, table.columns)}"
            )
            continue
        blank = table.index[table[column].astype(str).str.strip() == ""]
        if len(blank):
            problems.append(f"{source}: column {column!r} is empty on row(s) {preview(blank)}")
    numeric = [*counts, *([year_column] if year_column else [])]
    out, found = to_numbers(table, numeric, source=source, missing_values=missing_values)
    problems += found
    codes = out[code_name]
    blank = out.index[codes == ""]
    if len(blank):
        problems.append(f"{source}: column {code_name!r} is empty on row(s) {preview(blank)}")
    unknown = codes[~codes.isin(areas) & (codes != "")]
    if len(unknown):
        old = unknown.isin(OLD_WOLVERHAMPTON_WARDS).any()
        hint = ("; some are pre-2023 Wolverhampton ward codes: re-base the figures on the "
                "current wards (E05014838–E05014857)") if old else ""
        problems.append(
            f"{source}: {len(unknown)} row(s) have a code in {code_name!r} that is not among "
            f"the {len(areas)} boundary codes: "
            f"{preview([f'{c} (row {r})' for r, c in unknown.items()])}{hint}"
        )
    if year_column and year_column in out.columns and not found:
        year = out[year_column]
        bad = year.isna() | (np.floor(year) != year)
        if bad.any():
            problems.append(f"{source}: column {year_column!r} must hold a whole year on every "
                            f"row; rows {preview(out.index[bad])}")
        else:
            out[year_column] = year.astype(int)
    for column in counts:
        if column not in out.columns or found:
            continue
        values = out[column]
        wrong = values.notna() & ((values < 0) | (np.floor(values) != values))
        if wrong.any():
            rows = [f"row {r}: {v:g}" for r, v in values[wrong].items()]
            problems.append(f"{source}: column {column!r} should hold whole counts of 0 or "
                            f"more; {preview(rows, 3)}")
    key_columns = [code_name, *[k for k in keys if k in out.columns]]
    if not problems:
        dup = out.duplicated(key_columns, keep=False)
        if dup.any():
            problems.append(f"{source}: each {' + '.join(key_columns)} should appear once; "
                            f"repeated on rows {preview(out.index[dup])}")
    if problems:
        raise ValidationError(problems)
    return out
