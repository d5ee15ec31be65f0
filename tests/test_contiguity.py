"""The vectorised contiguity gives libpysal's vertex-based neighbours."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from libpysal.graph import Graph
from shapely.geometry import MultiPolygon, Polygon, box

from geo_send._contiguity import build_contiguity, contiguity_matrix, contiguity_pairs
from geo_send.config import default_root

from .conftest import grid_wards


def _links(graph: Graph) -> set[tuple[str, str, float]]:
    adj = graph.adjacency
    return set(zip(adj.index.get_level_values(0), adj.index.get_level_values(1),
                   adj.to_numpy(dtype=float)))


def _areas() -> dict[str, gpd.GeoSeries]:
    root = default_root() / "boundaries"
    wards = gpd.read_file(root / "wards.gpkg", layer="wards").set_index("ward_code")
    lsoas = gpd.read_file(root / "lsoas.gpkg", layer="lsoas").set_index("lsoa_code")
    grid = grid_wards(4).set_index("ward_code")
    # an island, and a square touching the grid at one corner only (queen, not rook)
    extra = gpd.GeoSeries([box(400_000, 298_000, 401_000, 299_000),
                           box(394_000, 302_000, 395_000, 303_000)],
                          index=["E05999998", "E05999999"], crs=grid.crs)
    # a square with a hole holding another square, a multipolygon whose second part
    # touches a third square, and a vertex written once as -0.0 and once as 0.0
    ring = Polygon(box(0, 0, 30, 30).exterior.coords, [box(10, 10, 20, 20).exterior.coords])
    odd = gpd.GeoSeries(
        [ring, box(10, 10, 20, 20), MultiPolygon([box(40, 0, 50, 10), box(60, 0, 70, 10)]),
         box(70, 0, 80, 10), Polygon([(-0.0, 30), (10, 30), (10, 40), (-0.0, 40)]),
         Polygon([(-10, 40), (0.0, 40), (0.0, 50), (-10, 50)])],
        index=[f"E05{i:06d}" for i in range(6)], crs=grid.crs)
    return {"wolverhampton-wards": wards.geometry, "wolverhampton-lsoas": lsoas.geometry,
            "grid-with-island-and-corner": gpd.GeoSeries(
                [*grid.geometry, *extra], index=[*grid.index, *extra.index], crs=grid.crs),
            "holes-multiparts-signed-zero": odd}


AREAS = _areas()


@pytest.mark.parametrize("name", list(AREAS))
@pytest.mark.parametrize("rook", [False, True], ids=["queen", "rook"])
def test_same_links_as_libpysal(name, rook):
    geoms = AREAS[name]
    assert _links(build_contiguity(geoms, rook=rook)) == _links(
        Graph.build_contiguity(geoms, rook=rook))


def test_island_is_an_isolate_and_corner_is_queen_only():
    geoms = AREAS["grid-with-island-and-corner"]
    queen, rook = build_contiguity(geoms, rook=False), build_contiguity(geoms, rook=True)
    assert list(queen.isolates) == ["E05999998"]
    assert ("E05999999" in rook.isolates) and ("E05999999" not in queen.isolates)


@pytest.mark.parametrize("name", list(AREAS))
@pytest.mark.parametrize("rook", [False, True], ids=["queen", "rook"])
def test_matrix_is_libpysals_links_without_isolates(name, rook):
    """The core needs no libpysal: a 0/1 sparse matrix in frame order, zero diagonal."""
    geoms = AREAS[name]
    mat = contiguity_matrix(geoms, rook=rook)
    ref = Graph.build_contiguity(geoms, rook=rook)
    assert tuple(ref.unique_ids) == tuple(geoms.index)
    expected = (ref.sparse.toarray() != 0).astype(float)
    np.fill_diagonal(expected, 0.0)
    assert mat.shape == (len(geoms), len(geoms)) and mat.has_sorted_indices
    assert (mat.toarray() == expected).all() and set(mat.data) <= {1.0}
    focal, neighbour = contiguity_pairs(np.asarray(geoms.values), rook=rook)
    assert np.array_equal(focal, np.nonzero(expected)[0])
    assert np.array_equal(neighbour, np.nonzero(expected)[1])


def test_hole_multipart_and_signed_zero_by_hand():
    mat = contiguity_matrix(AREAS["holes-multiparts-signed-zero"], rook=False).toarray()
    # 0-1: the hole's edge; 0-4: shared edge x in [0, 10], y = 30 (with -0.0); 2-3: the
    # multipolygon's second part touches square 3; 4-5: edge x = 0 (0.0 and -0.0)
    links = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(mat)), strict=True)}
    assert links == {(0, 1), (0, 4), (2, 3), (4, 5)}
