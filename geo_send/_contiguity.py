"""Vertex-based contiguity (queen and rook) for tens of thousands of polygons, vectorised.

libpysal's ``Graph.build_contiguity`` (vertex-based, ``strict=False``) walks every vertex in
a Python loop and a dictionary of sets: about 7 s for England's 33,755 LSOAs (2 million
vertices) on a quiet machine. The same rule written with numpy sorts takes well under a
second and gives the same neighbours (``tests/test_contiguity.py`` checks it against
libpysal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from libpysal.graph import Graph

__all__ = ["contiguity_pairs", "build_contiguity"]


def contiguity_pairs(geoms: np.ndarray, *, rook: bool) -> tuple[np.ndarray, np.ndarray]:
    """Positions of every pair of polygons that share a vertex (queen) or an edge (rook).

    Parameters
    ----------
    geoms : array of shapely Polygon / MultiPolygon
    rook : bool
        ``False``: queen, a shared vertex is enough. ``True``: rook, two consecutive
        vertices (an edge) of one ring must also be consecutive in the other.

    Returns
    -------
    focal, neighbour : array of int
        Both directions of every link, sorted by focal then neighbour; no self-links.

    Notes
    -----
    As in libpysal's vertex-set method, vertices match only when their coordinates are
    exactly equal, which holds for boundaries cut from one topology (ONS BGC).
    Each vertex (or edge) becomes a key; the keys are sorted, and every pair of distinct
    polygons within a run of equal keys is a link.
    """
    geoms = np.asarray(geoms, dtype=object)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    if rook:
        # edges run between consecutive vertices of the same ring (never across rings)
        rings = shapely.get_rings(shapely.get_parts(geoms))
        _, ring_of = shapely.get_coordinates(rings, return_index=True)
        same_ring = ring_of[1:] == ring_of[:-1]
        a, b = coords[:-1][same_ring], coords[1:][same_ring]
        owner = owner[:-1][same_ring]
        swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
        lo = np.where(swap[:, None], b, a)
        hi = np.where(swap[:, None], a, b)
        keys = np.column_stack([lo, hi])
    else:
        keys = coords
    # one row per (key, polygon); then sort by key
    order = np.lexsort((owner, *keys.T[::-1]))
    keys, owner = keys[order], owner[order]
    new_key = np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)]
    new_row = new_key | np.r_[True, owner[1:] != owner[:-1]]
    keys, owner, new_key = keys[new_row], owner[new_row], new_key[new_row]
    run = np.cumsum(new_key)
    focal, neighbour = [], []
    gap = 1
    while True:
        same = run[gap:] == run[:-gap]
        if not same.any():
            break
        focal.append(owner[:-gap][same])
        neighbour.append(owner[gap:][same])
        gap += 1
    if not focal:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    a = np.concatenate(focal).astype(np.int64)
    b = np.concatenate(neighbour).astype(np.int64)
    n = len(geoms)
    links = np.unique(np.concatenate([a * n + b, b * n + a]))  # both directions, sorted
    return links // n, links % n


def build_contiguity(geometry, *, rook: bool = False) -> Graph:
    """Binary contiguity graph, as ``Graph.build_contiguity(geometry, rook=rook)`` gives it.

    Parameters
    ----------
    geometry : GeoSeries or GeoDataFrame
        Polygons indexed by area code.
    rook : bool
        Rook (shared edge) instead of queen (shared vertex).

    Returns
    -------
    libpysal.graph.Graph
        Weight 1 per link; an area without neighbours is an isolate (libpysal's
        zero-weight self-link), as libpysal makes it.
    """
    geoms = np.asarray(getattr(geometry, "geometry", geometry).values, dtype=object)
    ids = pd.Index(geometry.index)
    focal, neighbour = contiguity_pairs(geoms, rook=rook)
    isolates = np.setdiff1d(np.arange(len(ids)), focal)
    focal = np.concatenate([focal, isolates])
    neighbour = np.concatenate([neighbour, isolates])
    weight = np.concatenate([np.ones(len(focal) - len(isolates), dtype=np.int64),
                             np.zeros(len(isolates), dtype=np.int64)])
    order = np.lexsort((neighbour, focal))
    return Graph.from_arrays(ids.to_numpy()[focal[order]], ids.to_numpy()[neighbour[order]],
                             weight[order])
