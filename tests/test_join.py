"""Known-answer tests for aggregation and the loud joins."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from shapely.geometry import Point

from geo_send import JoinError, ValidationError
from geo_send.join import (
    PointLocator,
    count_pupils,
    join_tables,
    locate_points,
    normalise_sen_status,
    weighted_mean,
)

from .conftest import SEED, grid_wards


def test_population_weighted_imd_matches_hand_computation():
    # Ward A: LSOAs with scores 10, 40 and populations 1000, 3000 -> (10*1000 + 40*3000) / 4000
    # Ward B: scores 20 (pop 500), missing (pop 700), 30 (pop 1500) -> (20*500 + 30*1500) / 2000
    lsoas = pd.Index(["L1", "L2", "L3", "L4", "L5"], name="lsoa_code")
    scores = pd.Series([10.0, 40.0, 20.0, np.nan, 30.0], index=lsoas)
    population = pd.Series([1000, 3000, 500, 700, 1500], index=lsoas, dtype=float)
    ward = pd.Series(["A", "A", "B", "B", "B"], index=lsoas, name="ward_code")
    got = weighted_mean(scores, population, ward)
    assert_allclose(got.loc["A"], 130_000 / 4000)
    assert_allclose(got.loc["B"], 55_000 / 2000)
    assert got.index.name == "ward_code"


def test_weighted_mean_is_missing_when_no_member_has_a_value():
    idx = pd.Index(["L1", "L2"])
    got = weighted_mean(pd.Series([np.nan, np.nan], index=idx), pd.Series([1.0, 2.0], index=idx),
                        pd.Series(["A", "A"], index=idx))
    assert np.isnan(got.loc["A"])


def test_weighted_mean_does_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    idx = pd.Index([f"L{i}" for i in range(30)])
    values = pd.Series(rng.normal(size=30), index=idx)
    weights = pd.Series(rng.integers(1, 100, 30).astype(float), index=idx)
    groups = pd.Series(rng.choice(list("ABC"), 30), index=idx)
    order = rng.permutation(30)
    a = weighted_mean(values, weights, groups)
    b = weighted_mean(values.iloc[order], weights.iloc[order], groups.iloc[order])
    assert_allclose(a.to_numpy(), b.to_numpy())


def test_join_reports_unknown_codes_and_clashing_columns():
    left = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["W1", "W2"], name="ward_code"))
    right = pd.DataFrame({"a": [3], "b": [4]}, index=pd.Index(["W9"], name="ward_code"))
    with pytest.raises(JoinError) as err:
        join_tables(left, right, right_name="extra.csv")
    assert "W9" in str(err.value) and "already present: a" in str(err.value)


def test_join_keeps_missing_areas_missing_not_zero():
    left = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["W1", "W2"], name="ward_code"))
    right = pd.DataFrame({"b": [4.0]}, index=pd.Index(["W1"], name="ward_code"))
    got = join_tables(left, right, right_name="extra.csv")
    assert got.loc["W1", "b"] == 4.0 and np.isnan(got.loc["W2", "b"])


def test_locate_points_inside_boundary_and_snapped():
    wards = grid_wards().set_index("ward_code")
    points = gpd.GeoDataFrame(
        geometry=[Point(390_500, 298_500), Point(392_500, 300_500), Point(389_950, 298_500),
                  Point(380_000, 298_500)],
        crs="EPSG:27700",
    )
    codes, snapped = locate_points(points, wards, code_name="ward_code", snap_m=100)
    assert codes.tolist()[:3] == ["E05900001", "E05900009", "E05900001"]
    assert pd.isna(codes.iloc[3])
    assert list(snapped) == [2]


def test_locate_points_on_shared_edge_goes_to_smallest_code():
    wards = grid_wards().set_index("ward_code")
    points = gpd.GeoDataFrame(geometry=[Point(391_000, 298_500)], crs="EPSG:27700")
    codes, _ = locate_points(points, wards, code_name="ward_code")
    assert codes.iloc[0] == "E05900001"


def test_locate_points_refuses_mixed_crs():
    wards = grid_wards().set_index("ward_code")
    points = gpd.GeoDataFrame(geometry=[Point(-2.1, 52.6)], crs="EPSG:4326")
    with pytest.raises(ValidationError, match="EPSG:4326"):
        locate_points(points, wards, code_name="ward_code")


@pytest.mark.parametrize(
    "text, expected",
    [("EHCP", "ehcp"), (" E ", "ehcp"), ("SEN support", "sen_support"), ("K", "sen_support"),
     ("none", "none"), ("N", "none")],
    ids=["ehcp", "code-E", "support", "code-K", "none", "code-N"],
)
def test_sen_status_spellings(text, expected):
    got = normalise_sen_status(pd.Series([text]), source="p.csv", column="s")
    assert got.iloc[0] == expected


def test_sen_status_rejects_unknown_values_with_row():
    with pytest.raises(ValidationError, match=r"row 3: 'maybe'"):
        normalise_sen_status(pd.Series(["E", "maybe"], index=[2, 3]), source="p.csv", column="s")


def test_count_pupils_sums_chunks():
    chunks = [
        pd.DataFrame({"ward_code": ["A", "B", "A"], "status": ["ehcp", "none", "sen_support"]}),
        pd.DataFrame({"ward_code": ["A"], "status": ["ehcp"]}),
    ]
    got = count_pupils(iter(chunks), code_name="ward_code", codes=["A", "B", "C"], prefix="r")
    assert got.loc["A"].tolist() == [3, 1, 2]
    assert got.loc["B"].tolist() == [1, 0, 0]
    assert got.loc["C"].tolist() == [0, 0, 0]


def test_point_locator_agrees_with_locate_points_and_breaks_ties_by_code():
    wards = grid_wards().set_index("ward_code").iloc[::-1]  # rows in reverse code order
    rng = np.random.default_rng(SEED)
    x = np.r_[rng.uniform(389_800, 393_200, 500), 391_000.0, 391_000.0]
    y = np.r_[rng.uniform(297_800, 301_200, 500), 298_500.0, 299_000.0]  # edge, then corner
    positions, snapped = PointLocator(wards).locate(x, y, snap_m=100)
    got = pd.Series(wards.index.to_numpy()[positions], dtype=object).where(positions >= 0)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs="EPSG:27700")
    expected, expected_snapped = locate_points(points, wards, code_name="ward_code", snap_m=100)
    assert got.fillna("outside").tolist() == expected.fillna("outside").tolist()
    assert np.flatnonzero(snapped).tolist() == list(expected_snapped)
    assert got.iloc[-2] == "E05900001" and got.iloc[-1] == "E05900001"


def test_count_pupils_refuses_unknown_areas():
    chunk = pd.DataFrame({"ward_code": ["A", "Z"], "status": ["ehcp", "none"]})
    with pytest.raises(JoinError, match="Z / none"):
        count_pupils(iter([chunk]), code_name="ward_code", codes=["A"], prefix="r")
