"""The command line: each bad input gives one clear error, a non-zero exit, and loses nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from shapely.geometry import Polygon

from .conftest import GRID_CODES, folder_digest, grid_table, grid_wards


@pytest.fixture
def out(tmp_path):
    """An output folder holding a previous run's files, which must survive a failure."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "ranked_wards.csv").write_text("previous run\n")
    (folder / "notes.txt").write_text("the analyst's own file\n")
    return folder


def check_failure(result, out, exit_code, *fragments):
    assert result.exit_code == exit_code, result.err
    assert "Traceback" not in result.err
    assert result.err.count("geo-send: error: ") == 1
    for fragment in fragments:
        assert fragment in result.err, result.err
    return True


def test_run_succeeds_on_the_synthetic_area(cli, make_area, out):
    area = make_area()
    result = cli("run", "--config", area.config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.err
    assert (out / "notes.txt").read_text() == "the analyst's own file\n"
    assert (out / "ranked_wards.csv").read_text() != "previous run\n"


def test_missing_config_file(cli, tmp_path, out):
    before = folder_digest(out)
    result = cli("run", "--config", tmp_path / "nope.toml", "--out", out)
    assert check_failure(result, out, 2, "nope.toml", "not found")
    assert folder_digest(out) == before


def test_misspelt_config_key_suggests_the_right_one(cli, make_area, out):
    area = make_area()
    area.config.write_text(area.config.read_text().replace("multiplier = 100", "multipler = 100"))
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 2, "unknown key 'multipler'", "did you mean 'multiplier'")


def test_missing_table_file(cli, make_area, out):
    area = make_area()
    (area.folder / "table.csv").unlink()
    before = folder_digest(out)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 3, "table.csv", "file not found")
    assert folder_digest(out) == before


def test_missing_column(cli, make_area, out):
    area = make_area(table=grid_table().drop(columns=["ehcp"]))
    before = folder_digest(out)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "'ehcp'", "none of the input tables")
    assert folder_digest(out) == before


def test_missing_code_column_suggests_close_match(cli, make_area, out):
    area = make_area(table=grid_table().rename(columns={"ward_code": "ward_cod"}))
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "table.csv", "'ward_code' not found",
                         "did you mean 'ward_cod'")


def test_duplicate_codes(cli, make_area, out):
    table = grid_table()
    table.loc[1, "ward_code"] = table.loc[0, "ward_code"]
    area = make_area(table=table)
    before = folder_digest(out)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "table.csv", "duplicated", GRID_CODES[0], "rows 2, 3")
    assert folder_digest(out) == before


def test_unknown_codes_with_old_ward_hint(cli, make_area, out):
    table = grid_table()
    table.loc[0, "ward_code"] = "E05001321"
    area = make_area(table=table)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "table.csv", "E05001321 (row 2)", "May 2023",
                         "boundary review")


def test_totals_row_is_reported(cli, make_area, out):
    table = pd.concat([grid_table(), pd.DataFrame(
        {"ward_code": ["Total"], "pupils": [9000], "sen_support": [900], "ehcp": [90],
         "imd": [30.0]})])
    area = make_area(table=table)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "Total (row 11)", "totals row")


def test_negative_count(cli, make_area, out):
    table = grid_table()
    table.loc[2, "ehcp"] = -4
    area = make_area(table=table)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "'ehcp' is negative", GRID_CODES[2])


def test_numerator_exceeds_denominator(cli, make_area, out):
    table = grid_table()
    table.loc[4, "sen_support"] = table.loc[4, "pupils"] + 1
    area = make_area(table=table)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "'sen_support' exceeds its denominator 'pupils'",
                         GRID_CODES[4])


def test_non_numeric_value(cli, make_area, out):
    table = grid_table().astype({"imd": object})
    table.loc[3, "imd"] = "high"
    area = make_area(table=table)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "'imd'", "row 5 (E05900004): 'high'", "non-numeric")


def test_several_problems_are_reported_together(cli, make_area, out):
    table = grid_table().astype({"imd": object})
    table.loc[3, "imd"] = "high"
    table = table.drop(columns=["ehcp"])
    area = make_area(table=table)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "2 problems", "'high'", "'ehcp'")


def test_boundaries_without_crs(cli, make_area, out):
    wards = grid_wards().set_crs(None, allow_override=True)
    area = make_area(wards=wards)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "wards.gpkg", "no coordinate reference system")


def test_invalid_geometry(cli, make_area, out):
    wards = grid_wards()
    bowtie = Polygon([(390_000, 298_000), (391_000, 299_000), (391_000, 298_000),
                      (390_000, 299_000)])
    wards.loc[0, "geometry"] = bowtie
    area = make_area(wards=wards)
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 4, "invalid geometry", GRID_CODES[0], "Self-intersection")


def test_empty_table_file(cli, make_area, out):
    area = make_area(csv_text="")
    result = cli("run", "--config", area.config, "--out", out)
    assert check_failure(result, out, 3, "table.csv", "empty")


def test_build_data_needs_out_with_area(cli):
    result = cli("build-data", "--area", "E08000028")
    assert result.exit_code == 2 and "--out is required" in result.err


def test_build_data_reports_missing_raw_folder(cli, tmp_path):
    result = cli("build-data", "--raw", tmp_path / "nothing", "--area", "E08000028", "--out",
                 tmp_path / "x")
    assert result.exit_code == 2 and "raw open-data folder not found" in result.err
