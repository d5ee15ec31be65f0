"""Vertex-based contiguity (queen and rook) for tens of thousands of polygons, vectorised.

libpysal's ``Graph.build_contiguity`` (vertex-based, ``strict=False``) walks every vertex in
a Python loop and a dictionary of sets: about 7 s for England's 33,755 LSOAs (2 million
vertices) on a quiet machine. The same rule written with a hash of the coordinates and one
sparse product takes about a quarter of a second and gives the same neighbours
(``tests/test_contiguity.py`` checks it against libpysal).

The core, :func:`contiguity_matrix`, returns a SciPy sparse array and needs neither
libpysal nor anything else slow to import; :func:`build_contiguity` wraps it in a
libpysal ``Graph`` for those who ask for one (and imports libpysal only then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely
from scipy import sparse

if TYPE_CHECKING:
    from libpysal.graph import Graph

__all__ = ["contiguity_matrix", "contiguity_pairs", "build_contiguity"]


def _vertex_ids(coords: np.ndarray) -> tuple[np.ndarray, int]:
    """One integer per distinct (x, y): equal coordinates, equal id (0.0 equals -0.0)."""
    xy = np.ascontiguousarray(coords[:, :2], dtype=np.float64) + 0.0  # -0.0 -> 0.0
    codes, uniques = pd.factorize(xy.view(np.complex128).ravel(), use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), len(uniques)


def contiguity_matrix(geometry: Any, *, rook: bool = False) -> sparse.csr_array:
    """0/1 adjacency of polygons that share a vertex (queen) or an edge (rook).

    Parameters
    ----------
    geometry : GeoSeries, GeoDataFrame or array of shapely Polygon / MultiPolygon
        The areas, in the order of the matrix rows.
    rook : bool
        ``False``: queen, a shared vertex is enough. ``True``: rook, two consecutive
        vertices (an edge) of one ring must also be consecutive in the other.

    Returns
    -------
    scipy.sparse.csr_array
        ``n x n``, float 1.0 for each link (both directions), zero diagonal, sorted
        indices. An area without neighbours has an empty row.

    Notes
    -----
    As in libpysal's vertex-set method, vertices match only when their coordinates are
    exactly equal, which holds for boundaries cut from one topology (ONS BGC).
    Each distinct vertex (or edge, a pair of vertex ids) gets an id from a hash table;
    with the sparse incidence matrix :math:`M` (polygon x vertex, or polygon x edge),
    two polygons are neighbours where :math:`M M^T` is non-zero off the diagonal.
    """
    geoms = np.asarray(getattr(geometry, "geometry", geometry), dtype=object)
    n = len(geoms)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    vertex, n_vertices = _vertex_ids(coords)
    if rook:
        # edges run between consecutive vertices of the same ring (never across rings)
        rings = shapely.get_rings(shapely.get_parts(geoms))
        _, ring_of = shapely.get_coordinates(rings, return_index=True)
        same_ring = ring_of[1:] == ring_of[:-1]
        a, b = vertex[:-1][same_ring], vertex[1:][same_ring]
        owner = owner[:-1][same_ring]
        # an unordered pair of vertex ids; n_vertices < 2**31 keeps it within int64
        key, _ = pd.factorize(np.minimum(a, b) * n_vertices + np.maximum(a, b))
        n_keys = int(key.max()) + 1 if len(key) else 0
    else:
        key, n_keys = vertex, n_vertices
    incidence = sparse.csr_array(
        (np.ones(len(key), dtype=np.int32), (owner, key)), shape=(n, n_keys)
    )
    shared = sparse.coo_array(incidence @ incidence.T)
    off = shared.row != shared.col
    out = sparse.csr_array(
        (np.ones(int(off.sum())), (shared.row[off], shared.col[off])), shape=(n, n)
    )
    out.sum_duplicates()
    out.sort_indices()
    return out


def contiguity_pairs(geoms: np.ndarray, *, rook: bool) -> tuple[np.ndarray, np.ndarray]:
    """Positions of every pair of polygons that share a vertex (queen) or an edge (rook).

    Returns
    -------
    focal, neighbour : array of int
        Both directions of every link, sorted by focal then neighbour; no self-links
        (the non-zeros of :func:`contiguity_matrix`).
    """
    mat = contiguity_matrix(geoms, rook=rook)
    focal = np.repeat(np.arange(mat.shape[0], dtype=np.int64), np.diff(mat.indptr))
    return focal, mat.indices.astype(np.int64)


def build_contiguity(geometry: Any, *, rook: bool = False) -> Graph:
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
        zero-weight self-link), as libpysal makes it. libpysal is imported here, on
        request; :func:`contiguity_matrix` gives the same links without it.
    """
    from libpysal.graph import Graph

    ids = pd.Index(geometry.index).to_numpy()
    focal, neighbour = contiguity_pairs(geometry, rook=rook)
    isolates = np.setdiff1d(np.arange(len(ids)), focal)
    focal = np.concatenate([focal, isolates])
    neighbour = np.concatenate([neighbour, isolates])
    weight = np.concatenate([np.ones(len(focal) - len(isolates), dtype=np.int64),
                             np.zeros(len(isolates), dtype=np.int64)])
    order = np.lexsort((neighbour, focal))
    return Graph.from_arrays(ids[focal[order]], ids[neighbour[order]], weight[order])
