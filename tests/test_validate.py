"""Known answers for the content rules: numbers, codes, boundaries, coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Polygon

from geo_send.validate import (
    check_boundaries,
    check_codes,
    check_coordinates,
    clean_codes,
    to_numbers,
)

from .conftest import GRID_CODES, grid_wards

READ = [
    ("1234", 1234.0), ("1,234", 1234.0), ("1,234,567", 1_234_567.0), ("1 234", 1234.0),
    ("1\u00a0234", 1234.0), ("12.5", 12.5), ("41.1%", 41.1), ("41.1 %", 41.1), (" 7 ", 7.0),
    ("\u22123", -3.0), ("1.2e3", 1200.0), (".5", 0.5), ("+4", 4.0),
]
MISSING = ["", "c", "C", " x ", "*", "<5", "< 10", "≤3", "low", "LOW", "..", "z", "n/a"]
REFUSED = [("12,5", "decimal comma"), ("1,23", "decimal comma"), ("#N/A", "spreadsheet error"),
           ("#DIV/0!", "spreadsheet error"), ("inf", "missing-value marker"),
           ("nan", "missing-value marker"), ("(12)", "accounting-style"), ("ten", ""),
           ("1e400", ""), ("1,2345", "decimal comma"), ("12-3", "")]


def parse(values: list[str], **kwargs) -> tuple[list[float], list[str]]:
    frame = pd.DataFrame({"v": values}, index=[f"W{i}" for i in range(len(values))])
    out, problems = to_numbers(frame, ["v"], source="t.csv", **kwargs)
    return out["v"].tolist(), problems


@pytest.mark.parametrize("text, expected", READ, ids=[r[0] for r in READ])
def test_numbers_are_read_with_separators_percent_and_signs(text, expected):
    values, problems = parse([text])
    assert problems == [] and values == [expected]


@pytest.mark.parametrize("text", MISSING, ids=repr)
def test_markers_are_missing_never_zero(text):
    values, problems = parse([text])
    assert problems == [] and np.isnan(values[0])


@pytest.mark.parametrize("text, hint", REFUSED, ids=[r[0] for r in REFUSED])
def test_everything_else_is_reported_with_a_hint(text, hint):
    values, problems = parse(["1", text])
    assert np.isnan(values[1]) and len(problems) == 1
    assert f"W1: {text!r}" in problems[0] and hint in problems[0]
    assert "expected numbers such as 1234" in problems[0]


def test_missing_value_markers_can_be_replaced():
    values, problems = parse(["-", "n.a."], missing_values=["", "n.a."])
    assert "W0: '-'" in problems[0]  # '-' is no longer a marker
    assert np.isnan(values[1])


def test_codes_are_tidied_only_into_ons_codes():
    got = clean_codes(pd.Series([" e05 014838", "\u00a0E05014839 ", "Total ", "e01"]))
    assert got.tolist() == ["E05014838", "E05014839", "Total", "e01"]


def test_unknown_codes_are_grouped_by_what_they_look_like():
    table = pd.DataFrame(
        {"ward_code": [GRID_CODES[0], "E05001321", "E08000031", "E01010410", "E05011111",
                       "notes:", "Total"]},
        index=pd.Index(range(2, 9), name="csv_row"))
    out, problems = check_codes(table, pd.Index(GRID_CODES), source="t.csv",
                                code_name="ward_code", area_name="Grid")
    text = "\n".join(problems)
    assert "E05001321 (row 3)" in text and "May 2023" in text
    assert "E08000031 (row 4), Total (row 8)" in text and "totals row" in text
    assert "E01010410 (row 5)" in text and "LSOA codes, expected ward codes" in text
    assert "E05011111 (row 6)" in text and "outside this area" in text
    assert "notes: (row 7)" in text and "not ONS codes at all" in text
    assert out.index.name == "ward_code" and out["csv_row"].tolist() == list(range(2, 9))


def test_invalid_geometry_is_repaired_only_when_asked():
    wards = grid_wards().set_index("ward_code")
    wards.loc[GRID_CODES[0], "geometry"] = Polygon(
        [(390_000, 298_000), (391_000, 299_000), (391_000, 298_000), (390_000, 299_000)])
    _, problems, _ = check_boundaries(wards, source="w.gpkg")
    assert "Self-intersection" in problems[0] and 'invalid_geometry = "repair"' in problems[0]
    fixed, problems, notes = check_boundaries(wards, source="w.gpkg", invalid_geometry="repair")
    assert problems == [] and fixed.is_valid.all()
    assert fixed.geometry.loc[GRID_CODES[0]].geom_type == "MultiPolygon"
    assert fixed.geometry.loc[GRID_CODES[0]].area == pytest.approx(500_000)  # two triangles
    assert "repaired invalid geometry" in notes[0] and GRID_CODES[0] in notes[0]
    assert wards.geometry.loc[GRID_CODES[0]].is_valid is False  # the input is not modified


def test_coordinates_in_degrees_or_swapped_are_recognised():
    x = pd.Series([-2.13, 391_000.0, np.nan, 298_500.0])
    y = pd.Series([52.59, 299_000.0, 299_000.0, 1_390_500.0])
    usable, problems = check_coordinates(x, y, source="p.csv", columns=("e", "n"))
    assert usable.tolist() == [False, True, False, False]
    assert "row(s) 2 (1)" in problems[0] and "no e/n" in problems[0]
    assert "2 row(s) have e/n outside Great Britain" in problems[1]
    degrees, _ = check_coordinates(pd.Series([-2.1, 1.3]), pd.Series([52.6, 52.6]),
                                   source="p.csv", columns=("e", "n"))
    assert not degrees.any()
