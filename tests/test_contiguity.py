"""The vectorised contiguity gives libpysal's vertex-based neighbours."""

from __future__ import annotations

import geopandas as gpd
import pytest
from libpysal.graph import Graph
from shapely.geometry import box

from geo_send._contiguity import build_contiguity
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
    return {"wolverhampton-wards": wards.geometry, "wolverhampton-lsoas": lsoas.geometry,
            "grid-with-island-and-corner": gpd.GeoSeries(
                [*grid.geometry, *extra], index=[*grid.index, *extra.index], crs=grid.crs)}


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
