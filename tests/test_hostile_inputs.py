"""A corpus of broken and hostile inputs, run through the command line.

Every bad case asserts the exit code, that exactly one error (no traceback) reaches stderr
with the fragments that make it useful (file, row, column, value, what was expected), and
that the output folder, holding a previous run's files, is byte-for-byte unchanged. Every
messy-but-readable case asserts exit code 0 and the values read. More cases live in
``test_cli.py``; together they exceed the thirty the trust issue asks for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from shapely.geometry import Polygon

from .conftest import GRID_CODES, folder_digest, grid_table, grid_wards

BASE = grid_table().to_csv(index=False)
BOWTIE = Polygon([(390_000, 298_000), (391_000, 299_000), (391_000, 298_000),
                  (390_000, 299_000)])
PUPILS = """
[inputs.pupils]
path = "pupils.csv"
status_column = "sen"
easting_column = "x"
northing_column = "y"
"""


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Make an output folder holding a previous run's files, which must survive a failure."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "ranked_wards.csv").write_text("previous run\n")
    (folder / "run_manifest.json").write_text("{}\n")
    (folder / "notes.txt").write_text("the analyst's own file\n")
    return folder


def lines(text: str = BASE) -> list[str]:
    return text.splitlines()


def with_line(index: int, new: str) -> str:
    rows = lines()
    rows[index] = new
    return "\n".join(rows) + "\n"


def with_value(row: int, column: str, value: str) -> str:
    """Return BASE with one cell replaced (row 0 = first data row)."""
    table = grid_table().astype(str)
    table.loc[row, column] = value
    return table.to_csv(index=False)


def pupils_frame(n: int = 3) -> pd.DataFrame:
    rows = []
    for i, code in enumerate(GRID_CODES):
        r, c = divmod(i, 3)
        for j in range(n):
            rows.append({"x": 390_100 + c * 1000 + 100 * j, "y": 298_500 + r * 1000,
                         "sen": ["EHCP", "SEN support", "none"][j % 3], "ward": code})
    return pd.DataFrame(rows)


def check_failure(result, exit_code: int, *fragments: str) -> None:
    assert result.exit_code == exit_code, result.err
    assert "Traceback" not in result.err
    assert result.err.count("geo-send: error: ") == 1, result.err
    for fragment in fragments:
        assert fragment in result.err, f"{fragment!r} not in:\n{result.err}"


# -- each case: how to break the area, the exit code, what the message must say ----------


def table_bytes(data: bytes):
    def setup(area):
        (area.folder / "table.csv").write_bytes(data)
    return setup


def table_text(text: str):
    return table_bytes(text.encode("utf-8"))


def boundaries(change):
    def setup(area):
        wards = change(grid_wards())
        wards.to_file(area.folder / "wards.gpkg", driver="GPKG", engine="pyogrio")
    return setup


def config_lines(text: str):
    def setup(area):
        config = area.config.read_text().replace('table = "table.csv"\n',
                                                 f'table = "table.csv"\n{text}\n')
        area.config.write_text(config)
    return setup


def pupils(frame_change, text: str = PUPILS):
    def setup(area):
        frame_change(pupils_frame()).to_csv(area.folder / "pupils.csv", index=False)
        config_lines(text)(area)
    return setup


PUPILS_BY_LSOA = 'lsoa_table = "lsoas.csv"\n' + PUPILS.replace(
    'easting_column = "x"\nnorthing_column = "y"', 'lsoa_column = "lsoa"')


def lsoa_lookup(text: str):
    def setup(area):
        (area.folder / "lsoas.csv").write_text(text)
    return setup


def two(*setups):
    def setup(area):
        for s in setups:
            s(area)
    return setup


def dup_boundary_code(w):
    w.loc[1, "ward_code"] = w.loc[0, "ward_code"]
    return w


def bowtie(w):
    w.loc[0, "geometry"] = BOWTIE
    return w


def degrees_declared_as_metres(w):
    return w.to_crs("EPSG:4326").set_crs("EPSG:27700", allow_override=True)


def metres_declared_as_degrees(w):
    return w.set_crs("EPSG:4326", allow_override=True)


def centroids(w):
    return w.set_geometry(w.centroid)


def second_layer(area):
    grid_wards().to_file(area.folder / "wards.gpkg", layer="old_wards", driver="GPKG",
                         engine="pyogrio")


def boundaries_as_csv(area):
    (area.folder / "wards.csv").write_text("ward_code,ward_name\nE05900001,Ward 1\n")
    area.config.write_text(area.config.read_text().replace("wards.gpkg", "wards.csv"))


def empty_boundaries(area):
    (area.folder / "wards.gpkg").write_bytes(b"")


def network_boundaries(area):
    area.config.write_text(area.config.read_text().replace(
        '"wards.gpkg"', '"/vsicurl/http://example.invalid/wards.gpkg"'))


def lonlat(frame):
    return frame.assign(x=-2.13 + frame["x"] * 0, y=52.59 + frame["y"] * 0)


def outside(frame):
    frame = frame.copy()
    frame.loc[[4, 7], "x"] = 380_000
    return frame


def swapped(frame):
    return frame.assign(x=frame["y"], y=frame["x"])


def bad_status(frame):
    frame = frame.copy()
    frame.loc[5, "sen"] = "maybe"
    return frame


FAILURES = [
    # -- the file itself -----------------------------------------------------------------
    ("excel-workbook", table_bytes(b"PK\x03\x04\x14\x00\x06\x00 workbook bytes"), 3,
     ["table.csv", "spreadsheet workbook", "CSV UTF-8"]),
    ("utf16-without-bom", table_bytes(BASE.encode("utf-16-le")), 3,
     ["table.csv", "NUL bytes", "UTF-8 or Windows-1252"]),
    ("not-utf8-nor-cp1252", table_bytes(b"ward_code,pupils\nE05900001,\x81\x8d\n"), 3,
     ["table.csv", "neither UTF-8 nor Windows-1252", "0x81"]),
    ("only-blank-lines", table_text("\n \n,,,\n"), 3, ["table.csv", "empty (only blank lines)"]),
    ("header-only", table_text("ward_code,pupils,sen_support,ehcp,imd\n\n"), 3,
     ["table.csv", "no data rows"]),
    # -- its shape -----------------------------------------------------------------------
    ("space-delimited", table_text(BASE.replace(",", " ")), 4,
     ["table.csv", "read as a single column", "seems to use spaces"]),
    ("unquoted-comma-in-a-value", table_text(with_line(3, "E05900003,1115,122,22,20,0")), 4,
     ["table.csv", "more values than the 5 columns", "line(s) 4 (6 values)",
      "unquoted delimiter"]),
    ("mixed-delimiters", table_text(with_line(2, "E05900002;890;84;13;15.0")), 4,
     ["table.csv", "line(s) 3", "different delimiter"]),
    ("duplicated-column-name", table_text(BASE.replace("imd", "ehcp", 1)), 4,
     ["table.csv", "column name 'ehcp' appears 2 times (columns 4, 5)"]),
    # -- its values ----------------------------------------------------------------------
    ("decimal-comma", table_text(BASE.replace(",", ";").replace("10.0", "10,5")), 4,
     ["table.csv", "'imd'", "row 2 (E05900001): '10,5' (a decimal comma? use a decimal point)"]),
    ("spreadsheet-error", table_text(with_value(2, "pupils", "#DIV/0!")), 4,
     ["'pupils'", "row 4 (E05900003): '#DIV/0!' (a spreadsheet error)"]),
    ("inf-and-nan-text", table_text(with_value(1, "imd", "inf").replace("1079", "nan")), 4,
     ["'imd'", "'inf'", "'pupils'", "'nan'", "missing-value marker"]),
    ("fractional-count", table_text(with_value(3, "ehcp", "2.5")), 4,
     ["'ehcp' should hold whole counts", "E05900004"]),
    ("unconfigured-marker", table_text(with_value(0, "ehcp", "n.a.")), 4,
     ["'ehcp'", "row 2 (E05900001): 'n.a.'", "missing-value marker (blank"]),
    # -- its codes -----------------------------------------------------------------------
    ("ward-of-another-authority", table_text(with_value(0, "ward_code", "E05011111")), 4,
     ["table.csv", "E05011111 (row 2)", "ward codes from outside this area",
      "another local authority"]),
    ("lsoa-codes-in-a-ward-table", table_text(with_value(0, "ward_code", "E01010410")), 4,
     ["E01010410 (row 2)", "they are LSOA codes, expected ward codes"]),
    ("authority-code-totals-row", table_text(BASE + "E08000031,9000,1300,280,30\n"), 4,
     ["E08000031 (row 11)", "looks like a totals row"]),
    ("area-name-totals-row", table_text(BASE + "Grid,9000,1300,280,30\n"), 4,
     ["Grid (row 11)", "looks like a totals row"]),
    ("all-wards-totals-row", table_text(BASE + "All wards,9000,1300,280,30\n"), 4,
     ["All wards (row 11)", "looks like a totals row"]),
    ("duplicate-after-tidying", table_text(with_value(1, "ward_code", " e05900001 ")), 4,
     ["duplicated code(s)", "E05900001 (rows 2, 3)"]),
    ("blank-code", table_text(with_value(4, "ward_code", "  ")), 4,
     ["'ward_code' is empty on row(s) 6"]),
    ("all-codes-from-elsewhere", table_text(BASE.replace("E059", "E051")), 4,
     ["none of the codes match the boundaries"]),
    # -- boundaries ----------------------------------------------------------------------
    ("boundaries-missing", lambda area: (area.folder / "wards.gpkg").unlink(), 3,
     ["wards.gpkg", "file not found"]),
    ("boundaries-empty-file", empty_boundaries, 3, ["wards.gpkg", "file is empty"]),
    ("boundaries-two-layers", second_layer, 3,
     ["wards.gpkg", "holds 2 layers", "boundaries_layer"]),
    ("boundaries-without-geometry", boundaries_as_csv, 3, ["wards.csv", "has no geometry"]),
    ("boundaries-are-points", boundaries(centroids), 4,
     ["geometry is not a polygon (Point)", "E05900001"]),
    ("boundaries-duplicate-codes", boundaries(dup_boundary_code), 4,
     ["wards.gpkg", "duplicated code(s): E05900001"]),
    ("degrees-declared-as-metres", boundaries(degrees_declared_as_metres), 4,
     ["wards.gpkg", "do not fit the declared CRS EPSG:27700", "look like longitude/latitude"]),
    ("metres-declared-as-degrees", boundaries(metres_declared_as_degrees), 4,
     ["wards.gpkg", "do not fit the declared CRS EPSG:4326", "look like metres"]),
    ("gdal-virtual-path-is-not-fetched", network_boundaries, 3,
     ["vsicurl", "file not found"]),
    # -- pupil records: coordinates and coverage -----------------------------------------
    ("pupils-in-longitude-latitude", pupils(lonlat), 4,
     ["pupils.csv", "outside Great Britain", "look like longitude/latitude",
      "mix coordinate systems"]),
    ("pupils-outside-the-boundaries", pupils(outside), 4,
     ["pupils.csv", "2 pupil(s) lie outside every area", "row 6, row 9",
      "boundaries do not cover them"]),
    ("pupils-easting-northing-swapped", pupils(swapped), 4,
     ["pupils.csv", "27 pupil(s) lie outside every area", "are x and y swapped?"]),
    ("pupils-unknown-status", pupils(bad_status), 4,
     ["pupils.csv", "'sen'", "row 7: 'maybe'", "EHCP / SEN support / none"]),
    ("pupils-lsoa-not-in-the-area",
     two(lsoa_lookup("lsoa_code,ward_code\nL1,E05900001\n"),
         pupils(lambda f: f.assign(lsoa=["L1"] * 26 + ["E01099999"]), PUPILS_BY_LSOA)), 4,
     ["pupils.csv", "1 pupil(s) have an LSOA code that is not in the area",
      "row 28: 'E01099999'"]),
    ("lsoa-lookup-with-a-duplicate",
     two(lsoa_lookup("lsoa_code,ward_code\nL1,E05900001\nL1,E05900002\n"),
         pupils(lambda f: f.assign(lsoa="L1"), PUPILS_BY_LSOA)), 4,
     ["lsoas.csv", "duplicated LSOA code(s) L1 (row 2), L1 (row 3)"]),
    # -- configuration -------------------------------------------------------------------
    ("missing-values-not-a-list", config_lines('missing_values = "c"'), 2,
     ["[inputs] missing_values must be a list of strings"]),
    ("invalid-geometry-option-misspelt", config_lines('invalid_geometry = "repiar"'), 2,
     ["invalid_geometry = 'repiar'", "did you mean 'repair'"]),
    # -- every problem in every file, in one message -------------------------------------
    ("problems-in-two-files-together",
     two(boundaries(bowtie), table_text(with_value(3, "imd", "high"))), 4,
     ["2 problems", "invalid geometry for E05900001", "row 5 (E05900004): 'high'"]),
    ("missing-table-and-bad-boundaries-together",
     two(boundaries(bowtie), lambda area: (area.folder / "table.csv").unlink()), 3,
     ["2 problems", "invalid geometry", "table.csv: file not found"]),
    ("all-bad-rows-of-one-file-together",
     table_text(with_line(3, "E05900003,1115,122,22,20,0").replace(
         "E05900007,1057,179,42,40.0", "E05900007,1057,179,42,40.0,1")), 4,
     ["2 row(s) have more values", "line(s) 4 (6 values), 8 (6 values)"]),
]


@pytest.mark.parametrize("setup, exit_code, fragments", [c[1:] for c in FAILURES],
                         ids=[c[0] for c in FAILURES])
def test_bad_input_is_reported_and_loses_nothing(cli, make_area, out, setup, exit_code,
                                                 fragments):
    area = make_area()
    setup(area)
    before, inputs = folder_digest(out), folder_digest(area.folder)
    result = cli("run", "--config", area.config, "--out", out)
    check_failure(result, exit_code, *fragments)
    assert folder_digest(out) == before
    assert folder_digest(area.folder) == inputs


# -- messy but readable: the clean reading ------------------------------------------------


def ranked(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "ranked_wards.csv", dtype={"ward_code": str}).set_index("ward_code")


def run_ok(cli, area, out) -> pd.DataFrame:
    result = cli("run", "--config", area.config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.err
    assert (out / "notes.txt").read_text() == "the analyst's own file\n"
    return ranked(out)


def expected_counts() -> pd.DataFrame:
    return grid_table().set_index("ward_code")[["pupils", "sen_support", "ehcp"]]


@pytest.mark.parametrize(
    "data",
    [
        ("\ufeff" + BASE).encode("utf-8"),
        BASE.replace("\n", "\r\n").encode("cp1252"),
        BASE.replace(",", "\t").encode("utf-16"),
        BASE.replace(",", ";").encode("utf-8"),
        (BASE + "\n\n,,,,\n  \n").encode("utf-8"),
        grid_table().to_csv(index=True).encode("utf-8"),
    ],
    ids=["utf8-with-bom", "windows-1252-crlf", "utf16-tab-excel-unicode-text", "semicolons",
         "trailing-blank-rows", "unnamed-index-column"],
)
def test_encodings_delimiters_and_blank_rows_read_cleanly(cli, make_area, out, data):
    area = make_area()
    (area.folder / "table.csv").write_bytes(data)
    got = run_ok(cli, area, out)
    pd.testing.assert_frame_equal(got.loc[GRID_CODES, ["pupils", "sen_support", "ehcp"]],
                                  expected_counts().loc[GRID_CODES], check_dtype=False)


def test_windows_1252_names_and_thousands_separators_read_cleanly(cli, make_area, out):
    table = grid_table().astype(str)
    table["note"] = "Café – Nord"
    table.loc[0, "pupils"] = "1,079"
    table.loc[1, "pupils"] = "890 "
    table.loc[2, "pupils"] = "1\u00a0115"
    table.loc[3, "imd"] = "25%"
    area = make_area()
    (area.folder / "table.csv").write_bytes(table.to_csv(index=False).encode("cp1252"))
    got = run_ok(cli, area, out)
    assert got.loc[GRID_CODES[:3], "pupils"].tolist() == [1079, 890, 1115]
    assert got.loc[GRID_CODES[3], "imd_score"] == 25


def test_codes_with_spaces_case_and_inner_blanks_are_tidied(cli, make_area, out):
    table = grid_table()
    table.loc[0, "ward_code"] = "  E05900001"
    table.loc[1, "ward_code"] = "e05900002"
    table.loc[2, "ward_code"] = "E05 900003"
    table.loc[3, "ward_code"] = "\u00a0E05900004\u00a0"
    area = make_area(table=table)
    got = run_ok(cli, area, out)
    assert sorted(got.index) == GRID_CODES
    assert got.loc[GRID_CODES[2], "pupils"] == 1115


def test_suppression_markers_are_read_as_missing_never_zero(cli, make_area, out):
    table = grid_table().astype(str)
    for row, marker in enumerate(["c", "<5", "x", "*", "low", " C ", "< 10"]):
        table.loc[row, "ehcp"] = marker
    area = make_area(table=table)
    got = run_ok(cli, area, out)
    hidden = GRID_CODES[:7]
    assert got.loc[hidden, "ehcp"].isna().all() and got.loc[hidden, "ehcp_per_1000"].isna().all()
    # missing at source, not withheld by geo_send: the flag stays 0
    assert (got.loc[hidden, "ehcp_suppressed"] == 0).all()
    assert (got.loc[hidden, "indicators_missing_count"] == 1).all()
    assert got.loc[GRID_CODES[8], "ehcp"] == 59


def test_missing_value_markers_are_configurable(cli, make_area, out):
    area = make_area(extra='missing_values = ["", "n.a.", "c"]')
    (area.folder / "table.csv").write_text(with_value(0, "ehcp", "N.A."))
    got = run_ok(cli, area, out)
    assert pd.isna(got.loc[GRID_CODES[0], "ehcp"])


def test_invalid_geometry_can_be_repaired_with_a_note(cli, make_area, out):
    wards = bowtie(grid_wards())
    area = make_area(wards=wards, extra='invalid_geometry = "repair"')
    run_ok(cli, area, out)
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert any("repaired invalid geometry" in n and GRID_CODES[0] in n
               for n in manifest["input_notes"])
    import geopandas as gpd

    assert gpd.read_file(out / "need_index.gpkg").is_valid.all()
