"""The embedded default data: rebuilt from the raw open files, it equals what is committed."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

import geo_send as gs
from geo_send.build import resolve_areas
from geo_send.config import default_root

from .conftest import RAW

needs_raw = pytest.mark.skipif(not (RAW / "national").is_dir(),
                               reason="../shared/data/raw/national not present")

ROOT = default_root()


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rebuilt")
    dataset = gs.build_dataset(gs.read_raw_area(RAW, ["E08000031"]), ["E08000031"])
    gs.write_dataset(dataset, folder)
    return folder


@needs_raw
@pytest.mark.parametrize(
    "name",
    ["ward_indicators.csv", "lsoa_indicators.csv", "schools.csv", "wolverhampton.toml",
     "wolverhampton_lsoa.toml", "README.md"],
)
def test_rebuilt_text_files_equal_the_committed_ones(rebuilt, name):
    assert (rebuilt / "data" / name).read_bytes() == (ROOT / "data" / name).read_bytes()


@needs_raw
@pytest.mark.parametrize("name, layer", [("wards.gpkg", "wards"), ("lsoas.gpkg", "lsoas")])
def test_rebuilt_boundaries_equal_the_committed_ones(rebuilt, name, layer):
    # GeoPackages carry a write timestamp, so compare content rather than bytes.
    new = gpd.read_file(rebuilt / "boundaries" / name, layer=layer)
    old = gpd.read_file(ROOT / "boundaries" / name, layer=layer)
    pd.testing.assert_frame_equal(new.drop(columns="geometry"), old.drop(columns="geometry"))
    assert new.geometry.geom_equals_exact(old.geometry, tolerance=0).all()
    assert new.crs == old.crs == "EPSG:27700"


def test_committed_default_has_the_twenty_current_wards_and_161_lsoas():
    wards = gpd.read_file(ROOT / "boundaries" / "wards.gpkg", layer="wards")
    lsoas = gpd.read_file(ROOT / "boundaries" / "lsoas.gpkg", layer="lsoas")
    assert sorted(wards["ward_code"]) == [f"E0501{n}" for n in range(4838, 4858)]
    assert len(lsoas) == 161 and lsoas["ward_code"].isin(wards["ward_code"]).all()
    assert wards.crs == lsoas.crs == "EPSG:27700"


def test_committed_ward_table_totals_match_the_sources():
    table = pd.read_csv(ROOT / "data" / "ward_indicators.csv", dtype={"ward_code": str})
    # Census 2021 usual residents in Wolverhampton (age bands): 263,753
    assert table["residents_count"].sum() == 263_753
    assert table["lsoa_count"].sum() == 161
    schools = pd.read_csv(ROOT / "data" / "schools.csv")
    # DfE January 2023 school-level SEN data, Wolverhampton: 117 schools, 2,102 EHC plans
    assert len(schools) == 117 and schools["ehcp_count"].sum() == 2102
    located = schools["ward_code"].notna()
    counted = schools.loc[located & (schools["setting"] == "mainstream"), "ehcp_count"].sum()
    assert table["school_ehcp_count"].sum() == counted


def test_data_dictionary_documents_every_column():
    readme = (ROOT / "data" / "README.md").read_text()
    for name in ("ward_indicators.csv", "lsoa_indicators.csv"):
        header = (ROOT / "data" / name).read_text().splitlines()[0].split(",")
        for column in header:
            assert f"`{column}`" in readme, column
    assert "Open Government Licence v3.0" in readme and "Crown copyright" in readme
    assert "school-located" in readme


# -- any area from the national files ------------------------------------------------------

SMALL_LA = "E06000017"  # Rutland: 15 wards, 26 LSOAs; builds and runs in a few seconds


@needs_raw
@pytest.mark.raw
def test_build_data_for_another_area_runs_at_both_levels(cli, tmp_path):
    built = cli("build-data", "--raw", RAW, "--area", "rutland", "--out", tmp_path)
    assert built.exit_code == 0, built.err
    assert "what the build found" in built.err
    readme = (tmp_path / "data" / "README.md").read_text()
    assert readme.startswith(f"# Data: Rutland ({SMALL_LA})")
    wards = gpd.read_file(tmp_path / "boundaries" / "wards.gpkg", layer="wards")
    assert len(wards) == 15 and (wards["lad_code"] == SMALL_LA).all()
    for config, stem, rows in (("rutland.toml", "ranked_wards", 15),
                               ("rutland_lsoa.toml", "ranked_lsoas", 26)):
        out = tmp_path / f"out_{stem}"
        ran = cli("run", "--config", tmp_path / "data" / config, "--out", out)
        assert ran.exit_code == 0, ran.err
        ranked = pd.read_csv(out / f"{stem}.csv", dtype=str)
        assert len(ranked) == rows
        assert ranked["rank"].astype(int).tolist() == list(range(1, rows + 1))
        assert {"need_index.gpkg", "need_map.html", "run_manifest.json"} <= {
            p.name for p in out.iterdir()}


@needs_raw
@pytest.mark.raw
def test_city_of_london_runs_with_siting_and_leaves_wards_without_data_unranked(cli, tmp_path):
    # 19 of its 25 wards have no LSOA and so no indicator value: they get no rank and the
    # tier "No data", and hubs are still sited for the rest.
    assert cli("build-data", "--raw", RAW, "--area", "E09000001", "--out", tmp_path).exit_code == 0
    out = tmp_path / "out"
    ran = cli("run", "--config", tmp_path / "data" / "city_of_london.toml", "--out", out)
    assert ran.exit_code == 0, ran.err
    ranked = pd.read_csv(out / "ranked_wards.csv", dtype={"ward_code": str})
    unranked = ranked["rank"].isna()
    assert unranked.sum() == ranked["need_index"].isna().sum() == 19
    assert (ranked.loc[unranked, "tier"] == "No data").all()
    assert ranked.loc[~unranked, "rank"].tolist() == list(range(1, 7))
    assert len(pd.read_csv(out / "hubs.csv")) >= 1


@needs_raw
@pytest.mark.raw
def test_a_district_gets_the_schools_located_in_it():
    # Adur (E07000223) is a district of West Sussex: its schools carry the county's code.
    raw = gs.read_raw_area(RAW, ["E07000223"])
    schools = raw["schools"]
    assert len(schools) > 0 and set(schools["new_la_code"]) == {"E10000032"}
    inside = set(raw["lookup"]["lsoa21_code"])
    assert schools["lsoa21_code_from_point"].isin(inside).all()


@needs_raw
@pytest.mark.raw
def test_build_reports_wards_without_lsoas_and_ward_reviews():
    # The City of London has 25 wards but 6 LSOAs; County Durham redrew its wards in 2025.
    codes = ["E09000001", "E06000047"]
    dataset = gs.build_dataset(gs.read_raw_area(RAW, codes), codes)
    notes = "\n".join(dataset.notes)
    assert "20 ward(s) receive no LSOA" in notes
    assert "created or redrawn by a ward boundary review" in notes
    assert "suppressed IDACI numerator" in notes and "no GIAS location" in notes
    empty = dataset.ward_table["lsoa_count"] == 0
    assert empty.sum() == 20 and dataset.ward_table.loc[empty, "imd_score"].isna().all()
    assert dataset.name == "City of London and County Durham"
    assert "child-poverty" not in notes


@needs_raw
@pytest.mark.raw
def test_several_areas_leave_out_the_wolverhampton_only_extra():
    codes = ["E08000028", "E08000031"]
    dataset = gs.build_dataset(gs.read_raw_area(RAW, codes), codes, name="Black Country (part)")
    assert not dataset.has_child_poverty
    assert any("child-poverty figures are not used" in n for n in dataset.notes)
    assert set(dataset.wards["lad_code"]) == set(codes) and dataset.slug == "black_country_part"


LADS = pd.DataFrame({"LAD25CD": ["E08000028", "E08000031", "E06000017"],
                     "LAD25NM": ["Sandwell", "Wolverhampton", "Rutland"]})


@pytest.mark.parametrize(
    "typed, expected",
    [(["E08000028"], ["E08000028"]), ([" sandwell ", "E08000031"], ["E08000028", "E08000031"]),
     (["all"], None), (["England"], None)],
    ids=["code", "name-and-code", "all", "england"],
)
def test_resolve_areas_accepts_codes_names_and_all(typed, expected):
    assert resolve_areas(typed, LADS) == expected


def test_resolve_areas_lists_every_unknown_entry_with_suggestions():
    with pytest.raises(gs.ValidationError, match=r"'Sandwel'.*did you mean 'Sandwell'") as info:
        resolve_areas(["Sandwel", "E08000099", "rutland"], LADS)
    assert len(info.value.problems) == 2


def test_lsoa_config_uses_resident_indicators_only():
    text = (ROOT / "data" / "wolverhampton_lsoa.toml").read_text()
    cfg = gs.Config.from_toml(ROOT / "data" / "wolverhampton_lsoa.toml")
    assert cfg.level == "lsoa" and cfg.code_name == "lsoa_code"
    columns = {c for spec in cfg.indicators for c in spec.source_columns}
    assert not any(c.startswith("school_") for c in columns)
    assert "too sparse" in (ROOT / "data" / "README.md").read_text()
    assert "most LSOAs hold no school" in text
