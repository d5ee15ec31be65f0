"""The embedded default data: rebuilt from the raw open files, it equals what is committed."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

import geo_send as gs
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
