"""Known-answer tests for geo_send.spatial: weights, Moran's I, LISA, Gi*, floors, BH."""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from libpysal.graph import Graph
from numpy.testing import assert_allclose
from scipy import stats

from geo_send import spatial
from geo_send._errors import ConfigError, JoinError, ValidationError
from geo_send.config import SpatialSettings
from geo_send.spatial import (
    adjust_p,
    build_weights,
    describe_moran,
    eb_moran,
    eb_standardised_rates,
    global_moran,
    local_statistics,
    p_floor,
    significance_threshold,
)

SEED = 20260
CRS = "EPSG:27700"
SIDE = 1000.0  # metres


# --------------------------------------------------------------------------------------
# Fixtures built here: lattices of 1 km boxes in British National Grid
# --------------------------------------------------------------------------------------
def lattice(
    rows: int, cols: int, *, prefix: str = "W", extra: dict | None = None
) -> gpd.GeoDataFrame:
    """Row-major lattice; codes W00, W01, … (row r, column c -> r * cols + c)."""
    geoms, codes = [], []
    for r in range(rows):
        for c in range(cols):
            geoms.append(shapely.box(c * SIDE, r * SIDE, (c + 1) * SIDE, (r + 1) * SIDE))
            codes.append(f"{prefix}{r * cols + c:02d}")
    for code, geom in (extra or {}).items():
        codes.append(code)
        geoms.append(geom)
    return gpd.GeoDataFrame(
        {"ward_name": [f"Ward {c}" for c in codes]},
        geometry=geoms,
        index=pd.Index(codes, name="ward_code"),
        crs=CRS,
    )


def series(values, gdf: gpd.GeoDataFrame, name: str = "need_score") -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=gdf.index, name=name)


def dense_adjacency(rows: int, cols: int, *, queen: bool) -> np.ndarray:
    """Hand-built 0/1 lattice adjacency, independent of libpysal and geo_send."""
    n = rows * cols
    a = np.zeros((n, n))
    for r, c in itertools.product(range(rows), range(cols)):
        for dr, dc in itertools.product((-1, 0, 1), repeat=2):
            if (dr, dc) == (0, 0) or (not queen and dr != 0 and dc != 0):
                continue
            rr, cc = r + dr, c + dc
            if 0 <= rr < rows and 0 <= cc < cols:
                a[r * cols + c, rr * cols + cc] = 1.0
    return a


# 3x3 values with a high corner (top right) and a low corner (bottom left)
Y9 = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 7.0, 6.0, 8.0, 9.5])
# 4x5 values with a smooth west-east gradient plus fixed noise
Y20 = np.arange(20.0) % 5 * 2.0 + np.array(
    [
        0.3,
        -0.2,
        0.5,
        0.1,
        -0.4,
        0.2,
        0.0,
        -0.3,
        0.4,
        0.1,
        -0.1,
        0.3,
        0.2,
        -0.5,
        0.0,
        0.4,
        -0.2,
        0.1,
        0.3,
        -0.3,
    ]
)


@pytest.fixture
def grid9() -> gpd.GeoDataFrame:
    return lattice(3, 3)


@pytest.fixture
def grid20() -> gpd.GeoDataFrame:
    return lattice(4, 5)


# --------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "expected"),
    [("queen", [3, 5, 3, 5, 8, 5, 3, 5, 3]), ("rook", [2, 3, 2, 3, 4, 3, 2, 3, 2])],
    ids=["queen", "rook"],
)
def test_contiguity_matches_hand_lattice(grid9, kind, expected):
    w = build_weights(grid9, SpatialSettings(weights=kind))
    assert w.cardinalities.tolist() == expected
    assert_allclose(w.binary.toarray(), dense_adjacency(3, 3, queen=kind == "queen"))
    assert_allclose(w.row_standardised.sum(axis=1), 1.0)
    assert w.graph.transformation == "R"
    assert_allclose(w.graph.sparse.toarray(), w.row_standardised.toarray())


def test_default_is_queen_not_libpysal_rook(grid9):
    assert build_weights(grid9).kind == "queen"
    assert build_weights(grid9).cardinalities[4] == 8


def test_weights_follow_frame_order_not_sorted_codes(grid9):
    shuffled = grid9.iloc[[4, 0, 8, 2, 6, 1, 3, 5, 7]]
    w = build_weights(shuffled)
    assert w.ids == tuple(shuffled.index)
    assert tuple(w.graph.unique_ids) == tuple(shuffled.index)
    assert w.cardinalities[0] == 8  # W04, the centre, first


@pytest.mark.parametrize(
    ("settings", "expected_k"),
    [
        (SpatialSettings(weights="knn", k=2), [2] * 9),
        (SpatialSettings(weights="distance", distance_m=SIDE * 1.01), [2, 3, 2, 3, 4, 3, 2, 3, 2]),
        (SpatialSettings(weights="distance", distance_m=SIDE * 1.5), [3, 5, 3, 5, 8, 5, 3, 5, 3]),
    ],
    ids=["knn2", "distance-rook-like", "distance-queen-like"],
)
def test_distance_based_weights(grid9, settings, expected_k):
    w = build_weights(grid9, settings)
    if settings.weights == "knn":
        assert (w.cardinalities == 2).all()
        assert w.parameter == 2
    else:
        assert w.cardinalities.tolist() == expected_k
        assert w.parameter == settings.distance_m


def test_graph_is_built_from_binary_only_when_asked_for(grid9):
    w = build_weights(grid9)
    assert "graph" not in vars(w)  # the statistics never need it
    local_statistics(series(Y9, grid9), w, permutations=99, seed=SEED)
    global_moran(series(Y9, grid9), w, permutations=99, seed=SEED)
    assert "graph" not in vars(w)
    assert w.graph is w.graph  # built once, on first access
    assert w.graph.transformation == "R" and tuple(w.graph.unique_ids) == w.ids


def test_importing_spatial_needs_nothing_slow_to_import():
    """geo_send.spatial and geo_send._contiguity import no libpysal, esda, scipy.stats, ...

    The package's ``__init__`` (which imports every stage) is bypassed, so only these
    modules and what they import are loaded.
    """
    package = Path(spatial.__file__).parent
    code = (
        "import sys, types\n"
        "pkg = types.ModuleType('geo_send')\n"
        f"pkg.__path__ = [{str(package)!r}]\n"
        "sys.modules['geo_send'] = pkg\n"
        "import geo_send.spatial, geo_send._contiguity\n"
        "print(sorted(sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = ast.literal_eval(out)
    assert {"geopandas", "scipy.sparse", "scipy.spatial"} <= set(loaded)
    slow = ("libpysal", "esda", "scipy.stats", "sklearn", "mapclassify", "matplotlib", "folium")
    assert [m for m in loaded if any(m == s or m.startswith(f"{s}.") for s in slow)] == []


def scattered(n: int, seed: int) -> gpd.GeoDataFrame:
    """Small squares at random (tie-free) positions."""
    xy = np.random.default_rng(seed).uniform(0, 20 * SIDE, size=(n, 2))
    geoms = [shapely.box(x, y, x + 10.0, y + 10.0) for x, y in xy]
    codes = pd.Index([f"R{i:03d}" for i in range(n)], name="ward_code")
    return gpd.GeoDataFrame(geometry=geoms, index=codes, crs=CRS)


def libpysal_binary(graph, ids) -> np.ndarray:
    """0/1 matrix of a libpysal Graph's links in ``ids`` order, without self-loops."""
    assert tuple(graph.unique_ids) == tuple(ids)
    dense = (graph.sparse.toarray() != 0).astype(float)
    np.fill_diagonal(dense, 0.0)
    return dense


@pytest.mark.parametrize("k", [1, 3, 6], ids=["k1", "k3", "k6"])
def test_knn_links_are_libpysals(k):
    gdf = scattered(60, seed=k)
    w = build_weights(gdf, SpatialSettings(weights="knn", k=k, island_neighbours=0))
    ref = Graph.build_knn(gdf.centroid, k=k)
    assert_allclose(w.binary.toarray(), libpysal_binary(ref, w.ids))
    assert (w.cardinalities == k).all()


@pytest.mark.parametrize("threshold", [1500.0, 3000.0], ids=["sparse", "dense"])
def test_distance_band_links_are_libpysals(threshold):
    gdf = scattered(80, seed=5)
    settings = SpatialSettings(weights="distance", distance_m=threshold, island_neighbours=0)
    w = build_weights(gdf, settings)
    ref = Graph.build_distance_band(gdf.centroid, threshold=threshold, binary=True)
    assert_allclose(w.binary.toarray(), libpysal_binary(ref, w.ids))


def test_knn_ties_go_to_the_area_first_in_the_frame(grid9):
    # W04 (centre) has four neighbours at 1 km: W01, W03, W05, W07 in frame order;
    # W00 (corner) has two (W01, W03) and then two diagonals at sqrt(2) km
    w = build_weights(grid9, SpatialSettings(weights="knn", k=2))
    pos = {c: i for i, c in enumerate(w.ids)}
    b = w.binary.toarray()
    assert [w.ids[j] for j in np.flatnonzero(b[pos["W04"]])] == ["W01", "W03"]
    assert [w.ids[j] for j in np.flatnonzero(b[pos["W00"]])] == ["W01", "W03"]
    reordered = build_weights(grid9.iloc[::-1], SpatialSettings(weights="knn", k=2))
    pos = {c: i for i, c in enumerate(reordered.ids)}
    centre = reordered.binary.toarray()[pos["W04"]]
    assert sorted(reordered.ids[j] for j in np.flatnonzero(centre)) == ["W05", "W07"]


def test_summary_is_json_ready(grid9):
    s = build_weights(grid9).summary()
    assert s == {
        "kind": "queen",
        "parameter": None,
        "n": 9,
        "links": 40,
        "mean_neighbours": round(40 / 9, 4),
        "min_neighbours": 3,
        "max_neighbours": 8,
        "islands": [],
        "components": 1,
        "components_after": 1,
        "links_added": [],
    }
    assert "kind='queen'" in repr(build_weights(grid9))


def island_frame() -> gpd.GeoDataFrame:
    """3x3 lattice plus an island 'ISL' east of W05 (nearest centroid W05, then W02/W08)."""
    far = shapely.box(5 * SIDE, 1 * SIDE, 6 * SIDE, 2 * SIDE)
    return lattice(3, 3, extra={"ISL": far})


def test_island_is_reported_logged_and_joined(caplog):
    gdf = island_frame()
    with caplog.at_level(logging.WARNING, logger="geo_send.spatial"):
        w = build_weights(gdf)
    assert w.islands == ("ISL",)
    assert w.n_components == 2 and w.n_components_after == 1
    assert w.links_added == (("ISL", "W05", "island"),)
    pos = {c: i for i, c in enumerate(w.ids)}
    b = w.binary.toarray()
    assert b[pos["ISL"], pos["W05"]] == 1 and b[pos["W05"], pos["ISL"]] == 1  # symmetric
    assert w.cardinalities[pos["ISL"]] == 1 and w.cardinalities[pos["W05"]] == 6
    assert "no neighbour" in caplog.text and "ISL" in caplog.text
    assert w.summary()["islands"] == ["ISL"]


def test_island_neighbours_two_links_to_two_nearest():
    w = build_weights(island_frame(), SpatialSettings(island_neighbours=2))
    linked = {b for a, b, why in w.links_added if a == "ISL" and why == "island"}
    assert len(linked) == 2 and "W05" in linked and linked < {"W02", "W05", "W08"}


def test_island_left_alone_when_island_neighbours_zero():
    gdf = island_frame()
    w = build_weights(gdf, SpatialSettings(island_neighbours=0))
    assert w.links_added == () and w.n_components_after == 2
    y = series(list(Y9) + [50.0], gdf)
    local = local_statistics(y, w, permutations=999, seed=SEED)
    assert local.loc["ISL", "lisa_p"] == 1.0
    assert local.loc["ISL", "p_floor"] == 1.0
    assert not local.loc["ISL", "significance_possible"]
    assert local.loc["ISL", "lisa_label"] == "Not significant"


def test_disconnected_components_are_joined_by_closest_pair():
    west = lattice(2, 2, prefix="A")
    east = lattice(2, 2, prefix="B")
    east = east.set_geometry(east.geometry.translate(xoff=3.5 * SIDE, yoff=0.2 * SIDE))
    gdf = pd.concat([west, east])
    w = build_weights(gdf)
    assert w.islands == ()
    assert w.n_components == 2 and w.n_components_after == 1
    ((a, b, why),) = w.links_added
    # both components have 4 areas; the one holding the first code ('A00') is joined,
    # from its eastern column (A01 or A03) to the western column of B (B00 or B02)
    assert why == "component" and a in {"A01", "A03"} and b in {"B00", "B02"}


def test_three_components_and_an_island_joined_smallest_first(caplog):
    """By hand: a 2x2 block A, a row of three B and an island C, joined nearest-first.

    Centroids (km): A00 (0.5, 0.5), A01 (1.5, 0.5), A02 (0.5, 1.5), A03 (1.5, 1.5);
    B00 (3.5, 0.7), B01 (4.5, 0.7), B02 (5.5, 0.7); C00 (9.5, 0.8). C00 is an island,
    linked to its nearest area, B02 (4.001 km). That leaves two components of four
    areas: the tie goes to the one holding the first code (A00), which is linked by
    the closest pair of centroids, A01-B00 (2.010 km; A03-B00 is 2.154 km).
    """
    west = lattice(2, 2, prefix="A")
    east = lattice(1, 3, prefix="B")
    east = east.set_geometry(east.geometry.translate(xoff=3.0 * SIDE, yoff=0.2 * SIDE))
    island = lattice(1, 1, prefix="C")
    island = island.set_geometry(island.geometry.translate(xoff=9.0 * SIDE, yoff=0.3 * SIDE))
    gdf = pd.concat([west, east, island])
    with caplog.at_level(logging.WARNING, logger="geo_send.spatial"):
        w = build_weights(gdf)
    assert w.islands == ("C00",)
    assert w.n_components == 3 and w.n_components_after == 1
    assert w.links_added == (("C00", "B02", "island"), ("A01", "B00", "component"))
    b = w.binary.toarray()
    assert (b == b.T).all() and w.binary.nnz == 12 + 4 + 2 * 2
    assert "C00-B02 (island)" in caplog.text


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda g: g.rename_axis("code"), "indexed by ward_code or lsoa_code"),
        (lambda g: g.set_axis(["W00"] * 9), "duplicate area codes"),
        (lambda g: g.set_axis(range(9)).rename_axis("ward_code"), "must be strings"),
        (lambda g: g.iloc[:3], "at least 4 areas"),
    ],
    ids=["index-name", "duplicates", "non-string", "too-few"],
)
def test_bad_frames_raise_validation_error(grid9, mutate, match):
    with pytest.raises(ValidationError, match=match):
        build_weights(mutate(grid9))


def test_all_frame_problems_reported_together(grid9):
    bad = grid9.set_axis(["W00"] * 9).rename_axis("code")
    with pytest.raises(ValidationError) as info:
        build_weights(bad)
    assert len(info.value.problems) == 2


def test_geographic_crs_rejected_for_distances(grid9):
    with pytest.raises(ValidationError, match="projected CRS.*EPSG:4326"):
        build_weights(grid9.set_crs(4326, allow_override=True), SpatialSettings(weights="knn", k=2))


def test_knn_with_shared_centroids_is_a_validation_error(grid9):
    doubled = grid9.set_geometry([grid9.geometry.iloc[0]] * 2 + list(grid9.geometry.iloc[2:]))
    with pytest.raises(ValidationError, match="cannot build knn weights"):
        build_weights(doubled, SpatialSettings(weights="knn", k=1))


def test_unknown_weights_kind_suggests_close_match(grid9):
    with pytest.raises(ConfigError, match="did you mean 'queen'"):
        build_weights(grid9, SpatialSettings(weights="queenn"))


def test_weights_are_frozen(grid9):
    w = build_weights(grid9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.kind = "rook"  # type: ignore[misc]


# --------------------------------------------------------------------------------------
# Global Moran's I: hand computation from the formula
# --------------------------------------------------------------------------------------
def hand_moran(y: np.ndarray, a: np.ndarray) -> tuple[float, float, float]:
    """Moran's I, E[I] and V[I] under normality from a dense 0/1 matrix (Cliff & Ord)."""
    n = len(y)
    w = a / a.sum(axis=1, keepdims=True)
    z = y - y.mean()
    s0 = w.sum()
    i = n / s0 * (z @ w @ z) / (z @ z)
    s1 = 0.5 * ((w + w.T) ** 2).sum()
    s2 = ((w.sum(axis=1) + w.sum(axis=0)) ** 2).sum()
    ei = -1 / (n - 1)
    vi = (n**2 * s1 - n * s2 + 3 * s0**2) / ((n**2 - 1) * s0**2) - ei**2
    return i, ei, vi


@pytest.mark.parametrize("kind", ["queen", "rook"], ids=["queen", "rook"])
def test_global_moran_known_answer(grid9, kind):
    y = series(Y9, grid9)
    res = global_moran(
        y, build_weights(grid9, SpatialSettings(weights=kind)), permutations=999, seed=SEED
    )
    i, ei, vi = hand_moran(Y9, dense_adjacency(3, 3, queen=kind == "queen"))
    assert_allclose([res["i"], res["expected_i"], res["variance_norm"]], [i, ei, vi], rtol=1e-12)
    assert_allclose(res["z_norm"], (i - ei) / math.sqrt(vi), rtol=1e-12)
    assert res["permutations"] == 999 and res["seed"] == SEED
    assert res["alternative"] == "two-sided" and res["statistic"] == "moran"


def test_global_moran_rook_value_by_hand():
    """Fully by hand for a 2x2 rook lattice: y = (1, 2, 3, 4), each cell has 2 neighbours."""
    gdf = lattice(2, 2)
    # z = (-1.5, -0.5, 0.5, 1.5); lag = mean of the two rook neighbours
    # W00: (W01, W02) -> (-0.5 + 0.5)/2 = 0; W01: (W00, W03) -> 0; W02: 0; W03: 0
    res = global_moran(
        series([1, 2, 3, 4], gdf),
        build_weights(gdf, SpatialSettings(weights="rook")),
        permutations=99,
        seed=SEED,
    )
    assert_allclose(res["i"], 0.0, atol=1e-15)
    # y = (1, 4, 4, 1): z = (-1.5, 1.5, 1.5, -1.5), every neighbour has the opposite sign
    res = global_moran(
        series([1, 4, 4, 1], gdf),
        build_weights(gdf, SpatialSettings(weights="rook")),
        permutations=99,
        seed=SEED,
    )
    assert_allclose(res["i"], -1.0)


def test_global_moran_matches_esda_without_permutations(grid20):
    w = build_weights(grid20)
    res = global_moran(series(Y20, grid20), w, permutations=99, seed=SEED)
    ref = esda.Moran(Y20, w.graph, permutations=0)  # permutations=0: no global RNG use
    assert_allclose(
        [res["i"], res["expected_i"], res["variance_norm"], res["z_norm"], res["p_norm"]],
        [ref.I, ref.EI, ref.VI_norm, ref.z_norm, ref.p_norm],
        rtol=1e-10,
    )


def test_global_permutation_p_against_exact_enumeration():
    """2x3 rook lattice: all 720 permutations enumerated give the exact two-sided p."""
    gdf = lattice(2, 3)
    y = np.array([1.0, 2.0, 6.0, 3.0, 5.0, 9.0])
    a = dense_adjacency(2, 3, queen=False)
    obs = hand_moran(y, a)[0]
    perms = np.array([hand_moran(y[list(p)], a)[0] for p in itertools.permutations(range(6))])
    tol = 1e-12
    ge, le = (perms >= obs - tol).mean(), (perms <= obs + tol).mean()
    exact = min(1.0, 2 * min(ge, le))
    r = 9999
    res = global_moran(
        series(y, gdf),
        build_weights(gdf, SpatialSettings(weights="rook")),
        permutations=r,
        seed=SEED,
    )
    sd = 2 * math.sqrt(exact / 2 * (1 - exact / 2) / r)
    assert abs(res["p_sim"] - exact) < 5 * sd + 2 / (r + 1)


def test_p_norm_is_the_two_sided_normal_tail(grid20):
    res = global_moran(series(Y20, grid20), build_weights(grid20), permutations=99, seed=SEED)
    # 2 (1 - Phi(|z|)) = erfc(|z| / sqrt(2))
    assert_allclose(res["p_norm"], math.erfc(abs(res["z_norm"]) / math.sqrt(2)), rtol=1e-12)


@pytest.mark.parametrize("n", [5, 40, 700], ids=["tiny", "small", "large"])
@pytest.mark.parametrize("block", [1, 7, 1000], ids=["block1", "block7", "block1000"])
def test_permutations_are_the_seeded_rng_permutations_in_any_block(n, block):
    rng = np.random.default_rng(SEED)
    expected = np.array([rng.permutation(n) for _ in range(23)])
    blocks = list(spatial._permutations(n, 23, SEED, block))
    assert [len(b) for b in blocks] == [min(block, 23 - s) for s in range(0, 23, block)]
    assert np.array_equal(np.concatenate(blocks), expected)
    # the same draws as permuting the values themselves, row by row
    z = np.arange(n) * 1.5
    permuted = np.random.default_rng(SEED).permuted(np.broadcast_to(z, (23, n)), axis=1)
    assert np.array_equal(z[expected], permuted)


def test_simulated_moran_values_by_hand(grid9):
    """Every simulated I is Moran's I of the values permuted by rng.permutation."""
    a = dense_adjacency(3, 3, queen=True)
    res = global_moran(series(Y9, grid9), build_weights(grid9), permutations=50, seed=SEED)
    rng = np.random.default_rng(SEED)
    sims = np.array([hand_moran(Y9[rng.permutation(9)], a)[0] for _ in range(50)])
    assert_allclose(res["mean_sim"], sims.mean(), rtol=1e-12)
    assert_allclose(res["sd_sim"], sims.std(), rtol=1e-12)
    obs = hand_moran(Y9, a)[0]
    tol = 1e-9 * max(1.0, abs(obs))
    ge, le = (sims >= obs - tol).sum(), (sims <= obs + tol).sum()
    assert res["p_sim"] == min(1.0, 2 * (min(ge, le) + 1) / 51)


def test_variables_share_permutations_but_each_test_is_its_own(grid20):
    w = build_weights(grid20)
    ys = [Y20, np.cos(np.arange(20.0)), Y20[::-1] ** 2]
    zs = [(y - y.mean()) / y.std() for y in ys]
    together = spatial._global_morans(zs, w, permutations=999, seed=SEED)
    alone = [global_moran(series(y, grid20), w, permutations=999, seed=SEED) for y in ys]
    assert together == alone


# --------------------------------------------------------------------------------------
# Local statistics: hand computations
# --------------------------------------------------------------------------------------
def test_local_moran_known_answer(grid9):
    local = local_statistics(series(Y9, grid9), build_weights(grid9), permutations=99, seed=SEED)
    z = (Y9 - Y9.mean()) / Y9.std()
    # W00 (bottom-left corner), queen neighbours W01, W03, W04
    lag0 = (z[1] + z[3] + z[4]) / 3
    assert_allclose(local.loc["W00", "lisa_i"], 8 * z[0] * lag0 / (z @ z), rtol=1e-12)
    assert local.loc["W00", "lisa_quadrant"] == 3  # low value, low neighbours
    # whole vector from the dense hand matrix
    a = dense_adjacency(3, 3, queen=True)
    lag = (a / a.sum(axis=1, keepdims=True)) @ z
    assert_allclose(local["lisa_i"], 8 * z * lag / (z @ z), rtol=1e-12)
    quad = np.where(z > 0, np.where(lag > 0, 1, 4), np.where(lag > 0, 2, 3))
    assert local["lisa_quadrant"].tolist() == quad.tolist()


def test_local_moran_matches_esda_without_permutations(grid20):
    w = build_weights(grid20)
    local = local_statistics(series(Y20, grid20), w, permutations=99, seed=SEED)
    ref = esda.Moran_Local(Y20, w.graph, permutations=0)
    assert_allclose(local["lisa_i"], ref.Is, rtol=1e-12)
    assert local["lisa_quadrant"].tolist() == ref.q.tolist()


def test_gi_star_z_known_answer(grid9):
    local = local_statistics(series(Y9, grid9), build_weights(grid9), permutations=99, seed=SEED)
    n = 9
    ybar = Y9.mean()
    s = math.sqrt((Y9**2).mean() - ybar**2)
    # W08 (top-right): itself and queen neighbours W04, W05, W07
    wi = 4
    num = Y9[[8, 4, 5, 7]].sum() - ybar * wi
    den = s * math.sqrt((n * wi - wi**2) / (n - 1))
    assert_allclose(local.loc["W08", "gi_z"], num / den, rtol=1e-12)


def test_gi_star_matches_esda_binary_star(grid20):
    w = build_weights(grid20)
    local = local_statistics(series(Y20, grid20), w, permutations=99, seed=SEED)
    ref = esda.G_Local(Y20, w.graph.transform("b"), transform="B", star=True, permutations=0)
    assert_allclose(local["gi_z"], ref.Zs, rtol=1e-10)


def test_local_columns_and_labels(grid20):
    local = local_statistics(
        series(Y20, grid20), build_weights(grid20), permutations=999, seed=SEED
    )
    assert list(local.columns) == [
        "lisa_i",
        "lisa_quadrant",
        "lisa_p",
        "lisa_p_adjusted",
        "lisa_significant",
        "lisa_label",
        "gi_z",
        "gi_p",
        "gi_p_adjusted",
        "gi_label",
        "neighbours_count",
        "p_floor",
        "significance_possible",
    ]
    assert local.index.name == "ward_code"
    assert set(local["lisa_label"]) <= {
        "High-High",
        "Low-Low",
        "High-Low",
        "Low-High",
        "Not significant",
    }
    assert set(local["gi_label"]) <= {"Hot spot", "Cold spot", "Not significant"}
    sig = local["lisa_significant"]
    assert (local.loc[~sig, "lisa_label"] == "Not significant").all()
    assert (
        local.loc[sig, "lisa_label"] == local.loc[sig, "lisa_quadrant"].map(spatial.LISA_LABELS)
    ).all()
    # Gi* and LISA share the conditional permutation of the neighbour sum
    assert_allclose(local["gi_p"], local["lisa_p"])
    assert ((local["lisa_p"] >= local["p_floor"]) & (local["lisa_p"] <= 1)).all()


# --------------------------------------------------------------------------------------
# Conditional permutation: exact enumeration and the p-value floor
# --------------------------------------------------------------------------------------
def exact_conditional_p(y: np.ndarray, a: np.ndarray, i: int) -> float:
    """Two-sided p of area i over every subset of the other values (equal weights)."""
    others = np.delete(y, i)
    k = int(a[i].sum())
    observed = y[a[i] == 1].sum()
    sums = np.array([others[list(c)].sum() for c in itertools.combinations(range(len(others)), k)])
    tol = 1e-9
    ge, le = (sums >= observed - tol).mean(), (sums <= observed + tol).mean()
    return min(1.0, 2 * min(ge, le))


@pytest.mark.parametrize(
    ("n", "k"),
    [(9, 3), (9, 5), (9, 8), (7, 1), (7, 2), (20, 1), (20, 2)],
    ids=["9-corner", "9-edge", "9-centre", "7-end", "7-middle", "20-one", "20-two"],
)
def test_p_floor_equals_brute_force_minimum(n, k):
    """The smallest exact p over every possible configuration is 2 / C(n-1, k)."""
    y = np.arange(1.0, n + 1) ** 1.5  # distinct values, distinct subset sums not required
    others = y[1:]
    sums = np.array([others[list(c)].sum() for c in itertools.combinations(range(n - 1), k)])
    count = len(sums)
    assert count == math.comb(n - 1, k)
    tol = 1e-9
    smallest = min(
        min(1.0, 2 * min((sums >= s - tol).mean(), (sums <= s + tol).mean())) for s in sums
    )
    assert_allclose(p_floor(n, k, permutations=10**9), smallest)
    assert_allclose(p_floor(n, k, permutations=99), max(2 / 100, min(1.0, 2 / count)))


def test_one_neighbour_among_twenty_can_never_be_significant():
    row = lattice(1, 20)
    w = build_weights(row, SpatialSettings(weights="rook"))
    y = np.arange(20.0)
    y[[0, 1]] = [100.0, 90.0]  # W00's only neighbour is W01, the second-highest value
    local = local_statistics(series(y, row), w, permutations=9999, seed=SEED, correction="none")
    assert local.loc["W00", "neighbours_count"] == 1
    assert_allclose(local.loc["W00", "p_floor"], 2 / 19)
    assert not local.loc["W00", "significance_possible"]
    assert local.loc["W00", "lisa_p"] >= 2 / 19
    assert local.loc["W00", "lisa_label"] == "Not significant"
    assert local.loc["W05", "significance_possible"]  # two neighbours: C(19, 2) = 171


def test_centre_of_3x3_queen_has_nothing_to_permute(grid9):
    local = local_statistics(series(Y9, grid9), build_weights(grid9), permutations=999, seed=SEED)
    assert local.loc["W04", "p_floor"] == 1.0 and local.loc["W04", "lisa_p"] == 1.0


@pytest.mark.parametrize("shuffle_limit", [None, 0], ids=["shuffle-draws", "rejection-draws"])
def test_conditional_p_matches_exact_enumeration(grid9, monkeypatch, shuffle_limit):
    if shuffle_limit is not None:
        monkeypatch.setattr(spatial, "_SHUFFLE_ELEMENTS", shuffle_limit)
    r = 9999
    local = local_statistics(
        series(Y9, grid9), build_weights(grid9), permutations=r, seed=SEED, correction="none"
    )
    a = dense_adjacency(3, 3, queen=True)
    for i, code in enumerate(local.index):
        exact = max(exact_conditional_p(Y9, a, i), 2 / (r + 1))
        q = exact / 2
        sd = 2 * math.sqrt(q * (1 - q) / r)
        assert abs(local.loc[code, "lisa_p"] - exact) <= 5 * sd + 2 / (r + 1), code


def test_chunking_does_not_change_results(grid20, monkeypatch):
    y = series(Y20, grid20)
    w = build_weights(grid20)
    glob = global_moran(y, w, permutations=999, seed=SEED)
    local = local_statistics(y, w, permutations=999, seed=SEED)
    monkeypatch.setattr(spatial, "_CHUNK_ELEMENTS", 50)
    monkeypatch.setattr(spatial, "_LOCAL_CHUNK_ELEMENTS", 5000)
    assert global_moran(y, w, permutations=999, seed=SEED) == glob
    pd.testing.assert_frame_equal(local_statistics(y, w, permutations=999, seed=SEED), local)


def brute_force_counts(x: np.ndarray, a: np.ndarray, draws: np.ndarray) -> tuple:
    """G and L of every area, one area and one permutation at a time."""
    n = len(x)
    ge, le = np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    scale = max(1.0, np.abs(x).max())
    for i in range(n):
        k = int(a[i].sum())
        if k == 0:
            ge[i] = le[i] = len(draws)
            continue
        others = np.delete(x, i)  # position j of the others is area j + (j >= i)
        observed = x[a[i] == 1].sum()
        tol = 1e-9 * k * scale
        for row in draws:
            s = others[row[:k]].sum()
            ge[i] += s >= observed - tol
            le[i] += s <= observed + tol
    return ge, le


@pytest.mark.parametrize("values", ["distinct", "ties"], ids=["distinct", "ties"])
def test_conditional_counts_equal_brute_force(values, monkeypatch):
    gdf = island_frame()  # 3x3 queen plus an island: 0, 3, 5 and 8 neighbours
    w = build_weights(gdf, SpatialSettings(island_neighbours=0))
    x = np.random.default_rng(4).normal(size=w.n)
    if values == "ties":
        x = np.round(x)
    rng = np.random.default_rng(SEED)
    draws = spatial._draw_subsets(rng, w.n - 1, int(w.cardinalities.max()), 500)
    expected = brute_force_counts(x, w.binary.toarray(), draws)
    for chunk in (1 << 16, 1000, 1):  # several areas per block, or one
        monkeypatch.setattr(spatial, "_LOCAL_CHUNK_ELEMENTS", chunk)
        ge, le = spatial._conditional_counts(x, w.binary, draws)
        assert ge.tolist() == expected[0].tolist() and le.tolist() == expected[1].tolist()


# --------------------------------------------------------------------------------------
# Multiple testing
# --------------------------------------------------------------------------------------
P5 = np.array([0.01, 0.04, 0.03, 0.005, 0.20])


def test_benjamini_hochberg_hand_worked():
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.20; m p / rank: 0.025, 0.025, 0.05, 0.05, 0.20;
    # running minimum from the right leaves them unchanged; back in input order:
    assert_allclose(adjust_p(P5, "fdr"), [0.025, 0.05, 0.05, 0.025, 0.20])
    # step-up at alpha = 0.05: largest j with p_(j) <= j * 0.05 / 5 is j = 4 (0.04 <= 0.04)
    assert (adjust_p(P5, "fdr") <= 0.05).sum() == 4
    # esda.fdr tests p_(j) < j alpha / m strictly: at the boundary (0.04) it rejects fewer
    assert (P5 <= esda.fdr(P5, 0.05)).sum() < 4


def test_benjamini_hochberg_agrees_with_esda_cutoff_off_the_boundary():
    p = np.array([0.012, 0.039, 0.029, 0.004, 0.20])
    assert ((p <= esda.fdr(p, 0.05)) == (adjust_p(p, "fdr") <= 0.05)).all()


def test_benjamini_hochberg_running_minimum():
    # sorted 0.02, 0.021, 0.03; m p / rank = 0.06, 0.0315, 0.03 -> minimum from the right
    assert_allclose(adjust_p([0.03, 0.02, 0.021], "fdr"), [0.03, 0.03, 0.03])


@pytest.mark.parametrize(
    ("method", "expected"),
    [("none", P5), ("bonferroni", [0.05, 0.2, 0.15, 0.025, 1.0])],
    ids=["none", "bonferroni"],
)
def test_other_corrections(method, expected):
    assert_allclose(adjust_p(P5, method), expected)


def test_adjust_p_rejects_bad_input():
    with pytest.raises(ConfigError, match="did you mean 'fdr'"):
        adjust_p(P5, "fdrr")
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        adjust_p([0.1, np.nan], "fdr")


@pytest.mark.parametrize(
    ("correction", "expected"),
    [("none", 0.05), ("bonferroni", 0.0025), ("fdr", 0.05)],
    ids=["none", "bonferroni", "fdr"],
)
def test_significance_threshold(correction, expected):
    assert_allclose(significance_threshold(0.05, 20, correction), expected)


def test_bonferroni_with_999_permutations_marks_floor(grid20):
    local = local_statistics(
        series(Y20, grid20),
        build_weights(grid20),
        permutations=99,
        seed=SEED,
        correction="bonferroni",
    )
    # 99 permutations: floor 2/100 > 0.05/20, nothing can be significant
    assert not local["significance_possible"].any()
    assert not local["lisa_significant"].any()


# --------------------------------------------------------------------------------------
# Empirical Bayes
# --------------------------------------------------------------------------------------
EVENTS = np.array([30, 25, 25, 15, 33, 21, 30, 20, 12.0])
POP = np.array([100, 100, 110, 90, 100, 90, 110, 90, 40.0])


def test_eb_rates_by_hand_and_as_esda(grid9):
    w = build_weights(grid9)
    got = eb_standardised_rates(series(EVENTS, grid9), series(POP, grid9), w)
    r = EVENTS / POP
    b = EVENTS.sum() / POP.sum()
    s2 = (POP * (r - b) ** 2).sum() / POP.sum()
    v = s2 - b / POP.mean() + b / POP
    v = np.where(v > 0, v, b / POP)
    assert_allclose(got, (r - b) / np.sqrt(v), rtol=1e-12)
    assert_allclose(got, esda.smoothing.assuncao_rate(EVENTS, POP), rtol=1e-12)


def test_eb_moran_matches_esda_moran_rate(grid9):
    w = build_weights(grid9)
    res = eb_moran(series(EVENTS, grid9), series(POP, grid9), w, permutations=999, seed=SEED)
    ref = esda.Moran_Rate(EVENTS, POP, w.graph, permutations=0)
    assert_allclose([res["i"], res["z_norm"]], [ref.I, ref.z_norm], rtol=1e-10)
    assert res["statistic"] == "eb_moran" and res["alternative"] == "two-sided"


def test_eb_rejects_zero_population(grid9):
    pop = POP.copy()
    pop[2] = 0
    with pytest.raises(ValidationError, match="zero or negative populations in W02"):
        eb_moran(series(EVENTS, grid9), series(pop, grid9), build_weights(grid9), seed=SEED)


# --------------------------------------------------------------------------------------
# Inputs, seeds, purity
# --------------------------------------------------------------------------------------
def test_series_is_aligned_by_code_not_position(grid9):
    w = build_weights(grid9)
    y = series(Y9, grid9)
    res = global_moran(y, w, permutations=99, seed=SEED)
    assert global_moran(y.iloc[::-1], w, permutations=99, seed=SEED) == res


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda y: y.drop("W03"), JoinError, "no value for area.*W03"),
        (
            lambda y: pd.concat([y, pd.Series([1.0], index=["X99"])]),
            JoinError,
            "not in the weights: X99",
        ),
        (lambda y: y.where(y.index != "W07"), ValidationError, "missing or infinite.*W07"),
        (lambda y: y * 0 + 3, ValidationError, "same value"),
    ],
    ids=["missing-code", "extra-code", "nan", "constant"],
)
def test_bad_values_raise(grid9, make, error, match):
    w = build_weights(grid9)
    with pytest.raises(error, match=match):
        global_moran(make(series(Y9, grid9)), w, permutations=99, seed=SEED)
    with pytest.raises(error, match=match):
        local_statistics(make(series(Y9, grid9)), w, permutations=99, seed=SEED)


def test_same_seed_same_output_different_seed_within_monte_carlo_error(grid20):
    w = build_weights(grid20)
    y = series(Y20, grid20)
    r = 9999
    a = local_statistics(y, w, permutations=r, seed=SEED)
    pd.testing.assert_frame_equal(a, local_statistics(y, w, permutations=r, seed=SEED))
    b = local_statistics(y, w, permutations=r, seed=SEED + 1)
    assert not np.array_equal(a["lisa_p"], b["lisa_p"])
    q = np.clip(a["lisa_p"].to_numpy() / 2, 1 / (r + 1), 0.5)
    sd = 2 * np.sqrt(2 * q * (1 - q) / r)  # difference of two independent estimates
    assert (np.abs(a["lisa_p"] - b["lisa_p"]) <= 5 * sd + 4 / (r + 1)).all()

    g1 = global_moran(y, w, permutations=r, seed=SEED)
    assert g1 == global_moran(y, w, permutations=r, seed=SEED)
    g2 = global_moran(y, w, permutations=r, seed=SEED + 1)
    assert g1["p_sim"] != g2["p_sim"] or g1["mean_sim"] != g2["mean_sim"]
    assert g1["i"] == g2["i"]


def test_inputs_not_mutated_and_global_rng_untouched(grid20):
    gdf = grid20.copy()
    y = series(Y20, gdf)
    gdf_before, y_before = gdf.copy(), y.copy()
    state = np.random.get_state()
    w = build_weights(gdf)
    binary_before = w.binary.toarray().copy()
    global_moran(y, w, permutations=99, seed=SEED)
    local_statistics(y, w, permutations=99, seed=SEED)
    eb_moran(y.abs() + 1, y.abs() + 10, w, permutations=99, seed=SEED)
    pd.testing.assert_frame_equal(gdf, gdf_before)
    pd.testing.assert_series_equal(y, y_before)
    assert_allclose(w.binary.toarray(), binary_before)
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]


def test_twenty_wards_9999_permutations_well_under_a_second(grid20):
    w = build_weights(grid20)
    y = series(Y20, grid20)
    start = time.perf_counter()
    global_moran(y, w, permutations=9999, seed=SEED)
    local_statistics(y, w, permutations=9999, seed=SEED)
    assert time.perf_counter() - start < 1.0


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------
def result(i: float, p: float, r: int = 9999) -> dict:
    return {"statistic": "moran", "i": i, "expected_i": -1 / 19, "p_sim": p, "permutations": r}


@pytest.mark.parametrize(
    ("res", "expected"),
    [
        (
            result(0.41, 0.003),
            "SEND need index: wards with similar values cluster together, high next to high and "
            "low next to low, more than chance would give (Moran's I = 0.41, p = 0.003, "
            "9,999 permutations).",
        ),
        (
            result(0.05, 0.41),
            "SEND need index: no evidence of clustering; the pattern on the map could well be "
            "chance (Moran's I = 0.05, p = 0.41, 9,999 permutations).",
        ),
        (
            result(-0.35, 0.0002),
            "SEND need index: neighbouring wards differ more than chance would give, a "
            "checkerboard pattern (Moran's I = -0.35, p < 0.001, 9,999 permutations).",
        ),
    ],
    ids=["clustered", "not-significant", "dispersed"],
)
def test_describe_moran(res, expected):
    assert describe_moran("SEND need index", res) == expected


def test_describe_moran_names_local_clusters(grid20):
    w = build_weights(grid20)
    y = series(Y20, grid20)
    local = local_statistics(y, w, permutations=999, seed=SEED, correction="none")
    local.loc[:, "lisa_label"] = "Not significant"
    local.loc[["W04", "W09"], "lisa_label"] = "High-High"
    text = describe_moran(
        "Need",
        global_moran(y, w, permutations=999, seed=SEED),
        local=local,
        names=grid20["ward_name"],
        correction="none",
    )
    assert text.endswith(
        "Local clusters (significant at 0.05, uncorrected): High-High: Ward W04 and Ward W09."
    )
    local.loc[:, "lisa_label"] = "Not significant"
    text = describe_moran("Need", result(0.1, 0.5), local=local)
    assert text.endswith(
        "No ward forms a local High-High or Low-Low cluster (significant at 0.05 after "
        "false-discovery-rate (Benjamini-Hochberg) correction)."
    )


def test_describe_moran_weak_evidence_and_adjusted_p():
    text = describe_moran("Rate", result(0.3, 0.02), p_adjusted=0.08)
    assert text == (
        "Rate: only weak evidence that wards with similar values cluster together, not "
        "significant at 0.05 (Moran's I = 0.30, p = 0.020, adjusted p = 0.080, "
        "9,999 permutations)."
    )


# --------------------------------------------------------------------------------------
# The stage: analyse() over several variables
# --------------------------------------------------------------------------------------
def test_analyse_reports_every_variable_and_corrects_the_indicators_together(grid20):
    pupils = pd.Series(1000.0, index=grid20.index)
    ehcp = pd.Series(np.round(10 + 3 * Y20), index=grid20.index)
    variables = {
        "need_index": spatial.Variable("SEND need index", series(Y20, grid20)),
        "ehcp_per_1000": spatial.Variable("EHCP rate", ehcp / pupils * 1000, ehcp, pupils),
        "noise": spatial.Variable("Noise", series(np.cos(np.arange(20.0) * 7), grid20)),
    }
    settings = SpatialSettings(permutations=999, local_permutations=999)
    res = spatial.analyse(grid20, variables, settings, seed=SEED, names=grid20["ward_name"])
    s = res.summary
    assert list(s["variables"]) == ["need_index", "ehcp_per_1000", "noise"]
    assert s["weights"]["n"] == 20 and s["seed"] == SEED and s["alternative"] == "two-sided"
    need, rate, noise = (s["variables"][k] for k in ("need_index", "ehcp_per_1000", "noise"))
    assert need["headline"] == "moran" and need["correction"] == "none"
    assert need["p_adjusted"] == need["moran"]["p_sim"]
    assert rate["headline"] == "eb_moran" and "moran" in rate
    assert rate["tests_corrected_together"] == noise["tests_corrected_together"] == 2
    ps = [rate["eb_moran"]["p_sim"], noise["moran"]["p_sim"]]
    assert_allclose([rate["p_adjusted"], noise["p_adjusted"]], adjust_p(ps, "fdr"))
    assert need["sentence"].startswith("SEND need index: wards with similar values cluster")
    assert "EB Moran's I" in rate["sentence"]
    assert list(res.local.columns) == list(spatial.LOCAL_COLUMNS)
    assert s["local"]["variable"] == "need_index"
    json.dumps(s, allow_nan=False)  # strict JSON
    # each test is the one global_moran / eb_moran gives alone (shared permutations)
    w = build_weights(grid20)
    for name in ("need_index", "noise"):
        alone = global_moran(variables[name].values, w, permutations=999, seed=SEED)
        assert s["variables"][name]["moran"] == alone
    assert rate["eb_moran"] == eb_moran(ehcp, pupils, w, permutations=999, seed=SEED)
    assert rate["moran"] == global_moran(ehcp / pupils * 1000, w, permutations=999, seed=SEED)


@pytest.mark.parametrize(
    ("settings", "gaps"),
    [
        (SpatialSettings(), ["W07"]),
        # W00 loses all its queen neighbours (an island is joined); W14 and W19 cut
        # W04 and W09 off from the rest (a component is joined)
        (SpatialSettings(), ["W01", "W05", "W06", "W03", "W08", "W13", "W14", "W19"]),
        (SpatialSettings(island_neighbours=0), ["W01", "W05", "W06"]),
        (SpatialSettings(weights="rook"), ["W01", "W05"]),
        (SpatialSettings(weights="knn", k=3), ["W06", "W07", "W12"]),
        (SpatialSettings(weights="distance", distance_m=1100.0), ["W01", "W05"]),
    ],
    ids=[
        "queen-one-gap",
        "queen-island-and-component",
        "queen-island-kept",
        "rook",
        "knn",
        "distance",
    ],
)
def test_analyse_tests_a_variable_with_gaps_over_the_areas_that_have_it(
    grid20, caplog, settings, gaps
):
    settings = dataclasses.replace(settings, permutations=99, local_permutations=99)
    y = series(Y20, grid20)
    y[gaps] = np.nan
    pupils = pd.Series(1000.0, index=grid20.index)
    ehcp = pd.Series(np.round(10 + 3 * Y20), index=grid20.index).where(~y.isna())
    variables = {
        "need_index": spatial.Variable("Need", y),
        "ehcp_per_1000": spatial.Variable("EHCP rate", ehcp / pupils * 1000, ehcp, pupils),
        "whole": spatial.Variable("Whole", series(np.cos(np.arange(20.0)), grid20)),
    }
    with caplog.at_level(logging.WARNING, logger="geo_send.spatial"):
        res = spatial.analyse(grid20, variables, settings, seed=SEED)
    entry = res.summary["variables"]["need_index"]
    n = 20 - len(gaps)
    assert entry["n"] == n and entry["areas_without_value"] == sorted(gaps)
    assert res.local.loc[gaps].isna().all().all()
    assert res.local.drop(index=gaps)["lisa_p"].notna().all()
    assert gaps[0] in caplog.text
    # the subset's weights and tests are those built from the subset alone
    sub = grid20.drop(index=gaps)
    w = build_weights(sub, settings)
    assert entry["weights"] == spatial._json_ready(w.summary())
    assert entry["moran"] == global_moran(y.drop(gaps), w, permutations=99, seed=SEED)
    rate = res.summary["variables"]["ehcp_per_1000"]
    assert rate["weights"] == entry["weights"]
    assert rate["eb_moran"] == eb_moran(
        ehcp.drop(gaps), pupils.drop(gaps), w, permutations=99, seed=SEED
    )
    local = local_statistics(y.drop(gaps), w, permutations=99, seed=SEED)
    pd.testing.assert_frame_equal(
        res.local.drop(index=gaps).astype(local.dtypes.to_dict()), local, check_names=False
    )
    assert "weights" not in res.summary["variables"]["whole"]


def test_analyse_skips_a_constant_variable_and_rejects_unknown_codes(grid20):
    settings = SpatialSettings(permutations=99, local_permutations=99)
    flat = spatial.Variable("Flat", pd.Series(3.0, index=grid20.index))
    res = spatial.analyse(grid20, {"flat": flat}, settings, seed=SEED)
    assert res.summary["variables"]["flat"]["skipped"] == "no variation between areas"
    assert res.local["lisa_p"].isna().all()
    stray = spatial.Variable("Stray", series(Y20, grid20).rename({"W00": "X00"}))
    with pytest.raises(JoinError, match="X00"):
        spatial.analyse(grid20, {"need_index": stray}, settings, seed=SEED)


# --------------------------------------------------------------------------------------
# Scale sensitivity (MAUP)
# --------------------------------------------------------------------------------------
def test_scale_sensitivity_known_answer():
    wards = pd.Series([1.0, -1.0], index=pd.Index(["WA", "WB"], name="ward_code"))
    lsoas = pd.Index(["L1", "L2", "L3", "L4", "L5"], name="lsoa_code")
    lsoa_index = pd.Series([2.0, 0.0, -1.0, 3.0, -2.0], index=lsoas)
    lookup = pd.Series(["WA", "WA", "WB", "WB", "WB"], index=lsoas)
    population = pd.Series([100.0, 300.0, 200.0, 100.0, 100.0], index=lsoas)
    local = pd.DataFrame(
        {
            "lisa_label": [
                "High-High",
                "Not significant",
                "Low-Low",
                "Not significant",
                "Not significant",
            ],
            "lisa_quadrant": [1, 1, 3, 1, 3],
            "lisa_p": [0.01, 0.04, 0.001, 0.2, 0.03],
        },
        index=lsoas,
    )
    out = spatial.scale_sensitivity(wards, lsoa_index, local, lookup, population)
    # WA: (2*100 + 0*300) / 400 = 0.5; WB: (-1*200 + 3*100 - 2*100) / 400 = -0.25
    assert_allclose(out["lsoa_need_index_mean"], [0.5, -0.25])
    assert out["lsoa_count"].tolist() == [2, 3]
    assert out["rank"].tolist() == [1, 2] and out["lsoa_rank"].tolist() == [1, 2]
    assert out["lsoa_high_high_count"].tolist() == [1, 0]
    assert out["lsoa_low_low_count"].tolist() == [0, 1]
    assert out["lsoa_high_high_uncorrected_count"].tolist() == [2, 0]
    assert out["lsoa_low_low_uncorrected_count"].tolist() == [0, 2]
    summary = spatial.summarise_scale(out, top_n=1)
    assert summary["spearman_rank_correlation"] == pytest.approx(1.0)
    assert summary["top_n_overlap"] == 1 and summary["largest_rank_changes"] == []
    with pytest.raises(JoinError, match="WZ"):
        spatial.scale_sensitivity(wards, lsoa_index, local, lookup.replace("WB", "WZ"), population)


def test_spearman_known_answer_with_ties_and_as_scipy():
    a = pd.Series([1.0, 2.0, 2.0, 4.0, 5.0])
    b = pd.Series([2.0, 1.0, 3.0, 3.0, 5.0])
    # average ranks (1, 2.5, 2.5, 4, 5) and (2, 1, 3.5, 3.5, 5); deviations from 3:
    # (-2, -0.5, -0.5, 1, 2) and (-1, -2, 0.5, 0.5, 2): r = 7.25 / sqrt(9.5 * 9.5)
    assert_allclose(spatial._spearman(a, b), 7.25 / 9.5, rtol=1e-14)
    rng = np.random.default_rng(SEED)
    x, y = pd.Series(rng.integers(0, 9, 50) * 1.0), pd.Series(rng.normal(size=50))
    assert spatial._spearman(x, y) == stats.spearmanr(x, y).statistic
    assert math.isnan(spatial._spearman(a * 0 + 1, b))
