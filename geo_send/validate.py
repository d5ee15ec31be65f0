"""Content rules for boundaries and tables; every problem is collected, then raised once."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import ValidationError, close_matches, preview
from .config import IndicatorSpec

__all__ = [
    "validate_boundaries",
    "validate_codes",
    "to_numbers",
    "validate_indicator_inputs",
    "MISSING_MARKERS",
    "OLD_WOLVERHAMPTON_WARDS",
]

log = logging.getLogger(__name__)

CRS = "EPSG:27700"
#: Text read as a missing value: blank cells and the suppression markers used in
#: official statistics ("c" confidential, "x" not available, "z" not applicable, ...).
MISSING_MARKERS = frozenset({"", "c", "x", "z", "u", "..", ":", "-", "*", "na", "n/a", "low", "<5"})
#: Pre-May-2023 Wolverhampton ward codes, replaced by E05014838–E05014857.
OLD_WOLVERHAMPTON_WARDS = frozenset(f"E0500{n}" for n in range(1321, 1341))
_ONS_CODE = re.compile(r"^[EWSN]\d{8}$")


def validate_boundaries(gdf: gpd.GeoDataFrame, *, source: str) -> gpd.GeoDataFrame:
    """Check boundaries and return them in EPSG:27700.

    Rules: a CRS is declared; codes are present and unique; every geometry is a
    non-empty, valid polygon or multipolygon.

    Raises
    ------
    ValidationError
        Listing every problem found.
    """
    problems = []
    if gdf.crs is None:
        problems.append(
            f"{source}: boundaries have no coordinate reference system; expected one, such as "
            "EPSG:27700 (British National Grid) or EPSG:4326 (longitude/latitude)"
        )
    codes = gdf.index
    blank = codes[(codes.astype(str) == "") | codes.isna()]
    if len(blank):
        problems.append(f"{source}: {len(blank)} feature(s) have an empty code")
    dup = codes[codes.duplicated()].unique()
    if len(dup):
        problems.append(f"{source}: duplicated code(s): {preview(sorted(dup))}")
    geoms = gdf.geometry
    empty = codes[geoms.isna() | geoms.is_empty]
    if len(empty):
        problems.append(f"{source}: empty geometry for {preview(empty)}")
    wrong = codes[~geoms.isna() & ~geoms.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(wrong):
        problems.append(f"{source}: geometry is not a polygon for {preview(wrong)}")
    ok = ~geoms.isna() & ~geoms.is_empty
    invalid = codes[ok & ~geoms.is_valid]
    if len(invalid):
        reasons = [
            f"{c} ({shapely.is_valid_reason(g)})" for c, g in zip(invalid, geoms.loc[invalid])
        ]
        problems.append(
            f"{source}: invalid geometry for {preview(reasons, 3)}; repair it (e.g. "
            "shapely.make_valid) before use"
        )
    if problems:
        raise ValidationError(problems)
    return gdf.to_crs(CRS) if gdf.crs != CRS else gdf


def validate_codes(
    table: pd.DataFrame,
    areas: pd.Index,
    *,
    source: str,
    code_name: str,
) -> pd.DataFrame:
    """Check a table's codes against the boundary codes and index it by code.

    Raises
    ------
    ValidationError
        On duplicated, blank or unknown codes; unknown codes that are pre-2023
        Wolverhampton wards get a hint about the May 2023 boundary review.
    """
    problems = []
    codes = table[code_name]
    blank = table.index[codes == ""]
    if len(blank):
        problems.append(f"{source}: column {code_name!r} is empty on row(s) {preview(blank)}")
    dup = codes[codes.duplicated(keep=False) & (codes != "")]
    if len(dup):
        rows = [f"{c} (rows {', '.join(map(str, dup.index[dup == c]))})" for c in dup.unique()]
        problems.append(f"{source}: duplicated code(s) in {code_name!r}: {preview(rows)}")
    unknown = codes[~codes.isin(areas) & (codes != "")]
    if len(unknown):
        old = unknown[unknown.isin(OLD_WOLVERHAMPTON_WARDS)]
        hint = ""
        if len(old):
            hint = (
                f"; {len(old)} of them are pre-2023 Wolverhampton ward codes: the May 2023 "
                "boundary review replaced them by E05014838–E05014857, so re-base the figures "
                "on the current wards"
            )
        malformed = unknown[~unknown.str.match(_ONS_CODE)]
        if len(malformed):
            hint += f"; not ONS codes at all (a totals row?): {preview(malformed.unique())}"
        listed = [f"{c} (row {r})" for r, c in unknown.items()]
        problems.append(
            f"{source}: {len(unknown)} code(s) in {code_name!r} are not among the "
            f"{len(areas)} boundary codes: {preview(listed)}{hint}"
        )
    if problems:
        raise ValidationError(problems)
    return table.set_index(code_name)


def to_numbers(
    table: pd.DataFrame, columns: Sequence[str], *, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Parse text columns into numbers, collecting every problem.

    Thousands separators, surrounding spaces and a trailing ``%`` are removed; the
    markers in :data:`MISSING_MARKERS` become missing values (never zero).

    Returns
    -------
    frame : DataFrame
        ``table`` with ``columns`` as floats.
    problems : list of str
        Missing columns and unreadable values, each naming file, column, rows and values.
    """
    problems: list[str] = []
    out = table.copy()
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
        cleaned = text.str.replace(",", "", regex=False).str.replace(r"%$", "", regex=True)
        missing = cleaned.str.lower().isin(MISSING_MARKERS)
        numbers = pd.to_numeric(cleaned.where(~missing), errors="coerce")
        bad = numbers.isna() & ~missing
        if bad.any():
            rows = [f"{r}: {v!r}" for r, v in text[bad].items()]
            problems.append(
                f"{source}: column {column!r} has {int(bad.sum())} non-numeric value(s): "
                f"{preview(rows, 3)}; expected numbers (missing-value markers: blank, c, x, z)"
            )
        out[column] = numbers.astype(float)
    return out, problems


def validate_indicator_inputs(
    table: pd.DataFrame, indicators: Sequence[IndicatorSpec], *, source: str
) -> list[str]:
    """Rules on the numbers an indicator reads; returns the problems found.

    Counts must be non-negative whole numbers; denominators positive where present;
    a proportion's numerator must not exceed its denominator.
    """
    problems: list[str] = []

    def codes(mask: pd.Series) -> str:
        return preview(table.index[mask.fillna(False).to_numpy(dtype=bool)])

    checked: set[str] = set()
    for spec in indicators:
        if not spec.is_count_based:
            continue
        num, den = table[spec.numerator], table[spec.denominator]
        for column, values in ((spec.numerator, num), (spec.denominator, den)):
            if column in checked:
                continue
            checked.add(str(column))
            negative = values < 0
            if negative.any():
                problems.append(f"{source}: column {column!r} is negative for {codes(negative)}")
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
