"""Spatial statistics: weights, global and local Moran's I, Getis-Ord Gi*, multiple testing.

Every function takes frames or series indexed by the area code (``ward_code`` or
``lsoa_code``) and returns new objects; nothing here mutates its input, reads or writes a
file, or touches NumPy's global random state. Randomness comes only from
``numpy.random.default_rng(seed)`` with an explicit ``seed``.

The statistics are computed here, vectorised, rather than through ``esda``: esda 2.9's
``Moran`` has no ``seed`` (it draws from the legacy global RNG), its local statistics
reseed the global RNG and report a *directional* pseudo p-value, and without numba its
conditional randomisation is a Python loop. The formulas are those of esda (Anselin 1995;
Getis & Ord 1992; Ord & Getis 1995; Assunção & Reis 1999); the tests check them against
independent hand computations and, where esda has no random step, against esda itself.

Nothing slow to import is needed: weights come from :mod:`geo_send._contiguity` and
SciPy's k-d tree, the normal tail from ``scipy.special``; libpysal is imported only if
:attr:`Weights.graph` is asked for.

Examples
--------
>>> w = build_weights(wards, SpatialSettings())                     # doctest: +SKIP
>>> glob = global_moran(wards["need_index"], w, seed=1)             # doctest: +SKIP
>>> local = local_statistics(wards["need_index"], w, seed=1)        # doctest: +SKIP
>>> describe_moran("Need index", glob)                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse, special
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from ._contiguity import contiguity_matrix
from ._errors import ConfigError, JoinError, ValidationError, close_matches, preview
from .config import CORRECTIONS, WEIGHTS, SpatialSettings
from .index import rank_areas
from .join import weighted_mean

if TYPE_CHECKING:
    from libpysal.graph import Graph

__all__ = [
    "PERMUTATIONS",
    "LOCAL_PERMUTATIONS",
    "ALTERNATIVE",
    "LISA_LABELS",
    "NOT_SIGNIFICANT",
    "Weights",
    "build_weights",
    "global_moran",
    "eb_moran",
    "eb_standardised_rates",
    "local_statistics",
    "adjust_p",
    "significance_threshold",
    "p_floor",
    "describe_moran",
    "Variable",
    "SpatialResult",
    "analyse",
    "scale_sensitivity",
    "summarise_scale",
    "LOCAL_COLUMNS",
]

logger = logging.getLogger(__name__)

PERMUTATIONS = 9999
"""Default number of permutations for the global tests."""
LOCAL_PERMUTATIONS = 9999
"""Default number of conditional permutations for the local tests."""
ALTERNATIVE = "two-sided"
"""The only alternative hypothesis geo_send tests."""
CODE_NAMES = ("ward_code", "lsoa_code")
NOT_SIGNIFICANT = "Not significant"
LISA_LABELS = {1: "High-High", 2: "Low-High", 3: "Low-Low", 4: "High-Low"}
"""LISA quadrant numbers as in esda (``geoda_quads=False``) and their labels."""
GI_LABELS = {1: "Hot spot", -1: "Cold spot"}
_CORRECTION_NAMES = {"bonferroni": "Bonferroni", "fdr": "false-discovery-rate (Benjamini-Hochberg)"}

# Elements per block of permuted values in the global permutation loop (bounds memory
# to a few MB whatever the number of areas, variables or permutations).
_CHUNK_ELEMENTS = 1 << 19
# From this many areas on, permutations are drawn one row at a time (faster than one
# ``rng.permuted`` call per block for large rows; the same permutations).
_PERMUTE_ROWS_MIN_N = 512
# Elements (areas x permutations) per block of the local (conditional) permutation loop.
_LOCAL_CHUNK_ELEMENTS = 1 << 16
# Above this many elements, subsets are drawn by rejection instead of full row shuffles.
_SHUFFLE_ELEMENTS = 1 << 24
# Relative tolerance under which a simulated value counts as a tie with the observed one.
_TIE_RTOL = 1e-9


# --------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Weights:
    """Spatial weights of a set of areas, with a record of how gaps were bridged.

    Build with :func:`build_weights`. The object is immutable; the statistics in this
    module read :attr:`binary` (0/1 links, no self-links) and use its row-standardised
    form. The same row-standardised weights are available as a libpysal
    :class:`~libpysal.graph.Graph` in :attr:`graph` for use with PySAL tools; it is built
    (and libpysal imported) only when first asked for.

    Attributes
    ----------
    kind : {'queen', 'rook', 'knn', 'distance'}
        How neighbours were defined.
    ids : tuple of str
        Area codes, in the order of the matrix rows.
    index_name : str
        Name of the area-code index (``ward_code`` or ``lsoa_code``).
    binary : scipy.sparse.csr_array
        Symmetric-or-not 0/1 adjacency after joins (knn may be asymmetric), zero diagonal.
    islands : tuple of str
        Areas that had no neighbour under :attr:`kind`.
    links_added : tuple of (str, str, str)
        Links added to bridge gaps, as ``(area, neighbour, reason)`` with reason
        ``'island'`` or ``'component'``; every link is added in both directions and
        listed once.
    n_components : int
        Connected components (weak connectivity) before any link was added.
    n_components_after : int
        Connected components after the joins (1 unless ``island_neighbours = 0``).
    parameter : float or None
        ``k`` for knn, ``distance_m`` for distance bands, otherwise ``None``.
    graph : libpysal.graph.Graph
        Row-standardised graph (transformation ``'R'``) over :attr:`ids`, after joins;
        an area without neighbours has libpysal's zero-weight self-loop. Built from
        :attr:`binary` on first access.
    """

    kind: str
    ids: tuple[str, ...]
    index_name: str
    binary: sparse.csr_array = field(repr=False, compare=False)
    islands: tuple[str, ...] = ()
    links_added: tuple[tuple[str, str, str], ...] = ()
    n_components: int = 1
    n_components_after: int = 1
    parameter: float | None = None

    @property
    def n(self) -> int:
        """Number of areas."""
        return len(self.ids)

    @property
    def cardinalities(self) -> np.ndarray:
        """Number of neighbours of each area (after joins), in :attr:`ids` order."""
        return np.diff(self.binary.indptr).astype(np.int64)

    @cached_property
    def row_standardised(self) -> sparse.csr_array:
        """Row-standardised weights (rows of isolated areas are all zero); do not modify."""
        k = self.cardinalities.astype(float)
        scale = np.divide(1.0, k, out=np.zeros_like(k), where=k > 0)
        out = sparse.csr_array(sparse.diags_array(scale) @ self.binary)
        out.sort_indices()  # a fixed order of summation, whatever uses it first
        return out

    @cached_property
    def graph(self) -> Graph:
        """Row-standardised libpysal Graph over :attr:`ids` (imports libpysal)."""
        return _graph_from_binary(self.binary, self.ids)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.ids)

    @cached_property
    def _moran_terms(self) -> tuple[float, float, float, sparse.csr_array]:
        """Return S0, S1, S2 of the row-standardised W and U, the upper triangle of W + W'.

        ``z' W z = z' U z`` with half the links.
        """
        w = self.row_standardised
        s0 = float(w.sum())
        wsym = sparse.csr_array(w + w.T)
        s1 = 0.5 * float(wsym.multiply(wsym).sum())
        s2 = float(((np.asarray(w.sum(axis=1)) + np.asarray(w.sum(axis=0))) ** 2).sum())
        upper = sparse.csr_array(sparse.triu(wsym, k=1))
        upper.sort_indices()
        return s0, s1, s2, upper

    def summary(self) -> dict[str, Any]:
        """Return a JSON-ready description of the weights.

        Returns
        -------
        dict
            ``kind``, ``parameter``, ``n``, ``links`` (non-zero directed links),
            ``mean_neighbours``, ``min_neighbours``, ``max_neighbours``, ``islands``
            (codes), ``components`` (before joins), ``components_after``,
            ``links_added`` (list of ``{area, neighbour, reason}``).
        """
        k = self.cardinalities
        return {
            "kind": self.kind,
            "parameter": self.parameter,
            "n": self.n,
            "links": int(self.binary.nnz),
            "mean_neighbours": round(float(k.mean()), 4),
            "min_neighbours": int(k.min()),
            "max_neighbours": int(k.max()),
            "islands": list(self.islands),
            "components": int(self.n_components),
            "components_after": int(self.n_components_after),
            "links_added": [
                {"area": a, "neighbour": b, "reason": r} for a, b, r in self.links_added
            ],
        }

    def __repr__(self) -> str:
        k = self.cardinalities
        param = "" if self.parameter is None else f", parameter={self.parameter:g}"
        return (
            f"Weights(kind={self.kind!r}{param}, n={self.n}, neighbours mean "
            f"{k.mean():.2f} [min {k.min()}, max {k.max()}], islands={len(self.islands)}, "
            f"components={self.n_components}->{self.n_components_after}, "
            f"links_added={len(self.links_added)})"
        )


def build_weights(gdf: gpd.GeoDataFrame, settings: SpatialSettings | None = None) -> Weights:
    """Build spatial weights for the areas of ``gdf`` and bridge islands and components.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        One polygon (or point) per area, indexed by a unique string code named
        ``ward_code`` or ``lsoa_code``, in a projected CRS (metres) whenever distances
        are used (knn, distance bands, or joining islands/components).
    settings : SpatialSettings, optional
        ``weights`` ('queen' by default, 'rook', 'knn' with ``k``, 'distance' with
        ``distance_m``) and ``island_neighbours``.

    Returns
    -------
    Weights
        Binary links plus a record of joins (and, on request, a libpysal graph).

    Raises
    ------
    ValidationError
        If the frame is not indexed by unique string area codes, has missing or empty
        geometries, has fewer than 4 areas, or its CRS is not projected when a
        distance is needed; for knn, if two areas share a centroid.
    ConfigError
        If the settings name an unknown weights kind or an impossible ``k``.

    Notes
    -----
    Contiguity is libpysal's vertex-based rule (``Graph.build_contiguity``, whose default
    is rook; ours is queen), computed by :func:`geo_send._contiguity.contiguity_matrix`
    with a coordinate hash and a sparse product: the same links, about 0.3 s instead of
    7 s or more for England's 33,755 LSOAs. knn and distance bands use centroids and
    SciPy's k-d tree, with the links of libpysal's ``Graph.build_knn`` and
    ``Graph.build_distance_band(binary=True)``: a distance band links areas whose
    centroids are at most ``distance_m`` apart; knn links each area to its ``k``
    nearest centroids, ties at the k-th distance going to the area that comes first
    in ``gdf`` (libpysal leaves such ties to its tree). libpysal is not needed.

    libpysal gives an
    area with no neighbour a zero-weight self-loop and says nothing; here every such
    *island* is reported (logged as a warning) and, when ``island_neighbours >= 1``,
    linked both ways to its ``island_neighbours`` nearest areas by centroid distance.
    If the graph still has more than one connected component (weakly connected, for
    asymmetric knn), the smallest component (ties: the one holding the first code in
    sorted order) is linked both ways to the nearest area outside it, by the closest
    pair of centroids, until one component remains. ``island_neighbours = 0`` keeps
    islands and components as they are; islands then have an all-zero weights row,
    a zero spatial lag and a local p-value of 1.

    All kinds are binary before row standardisation, so within a row every neighbour
    has the same weight ``1 / k_i``.
    """
    settings = settings or SpatialSettings()
    _check_settings(settings)
    _check_frame(gdf)
    links, parameter = _links(gdf, settings)
    return _bridge(links, gdf, settings, parameter)


def _links(
    gdf: gpd.GeoDataFrame, settings: SpatialSettings
) -> tuple[sparse.csr_array, float | None]:
    """0/1 links of ``settings.weights`` in frame order, before any gap is bridged."""
    n = len(gdf)
    kind = settings.weights
    if kind in ("knn", "distance"):
        _require_projected(gdf, f"weights = {kind!r}")
    if kind == "knn" and not 1 <= settings.k < n:
        raise ConfigError(
            f"[spatial] k must be between 1 and {n - 1} for {n} areas, got {settings.k}"
        )
    if kind in ("queen", "rook"):
        return contiguity_matrix(gdf.geometry, rook=(kind == "rook")), None
    xy = _xy(_centroids(gdf))
    if kind == "knn":
        return _knn(xy, settings.k, gdf.index), float(settings.k)
    threshold = float(settings.distance_m)  # type: ignore[arg-type]
    return _distance_band(xy, threshold), threshold


def _knn(xy: np.ndarray, k: int, codes: pd.Index) -> sparse.csr_array:
    """Each point linked to its ``k`` nearest others; ties at the k-th distance by position."""
    n = len(xy)
    shared = pd.DataFrame(xy).duplicated(keep=False).to_numpy()
    if shared.any():
        raise ValidationError(
            f"cannot build knn weights: {int(shared.sum())} areas share a centroid with "
            f"another area ({preview(codes[shared])}), so their nearest neighbours are "
            "undefined"
        )
    tree = cKDTree(xy)
    dist, nearest = tree.query(xy, k=k + 1)  # the point itself comes first (distance 0)
    nearest = nearest[:, 1:]
    kth = dist[:, k]
    # every point within the k-th distance; more than k + 1 means ties at that distance
    within = tree.query_ball_point(xy, kth * (1 + 1e-9), return_length=True)
    for i in np.flatnonzero(within > k + 1):
        cand = np.array([j for j in tree.query_ball_point(xy[i], kth[i] * (1 + 1e-9)) if j != i])
        d = np.hypot(*(xy[cand] - xy[i]).T)
        nearest[i] = cand[np.lexsort((cand, d))[:k]]
    rows = np.repeat(np.arange(n), k)
    out = sparse.csr_array((np.ones(n * k), (rows, nearest.ravel())), shape=(n, n))
    out.sort_indices()
    return out


def _distance_band(xy: np.ndarray, threshold: float) -> sparse.csr_array:
    """Points at most ``threshold`` apart linked both ways (coincident points included)."""
    n = len(xy)
    pairs = cKDTree(xy).query_pairs(threshold, output_type="ndarray")
    a, b = pairs[:, 0], pairs[:, 1]
    out = sparse.csr_array((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    out.sort_indices()
    return out


def _bridge(
    links: sparse.csr_array,
    gdf: gpd.GeoDataFrame,
    settings: SpatialSettings,
    parameter: float | None,
    centroids: Callable[[], np.ndarray] | None = None,
) -> Weights:
    """Report islands and components of ``links`` and join them as the settings say.

    ``centroids`` gives the centroids of ``gdf`` (as ``_xy(_centroids(gdf))``) when
    they are already known; called only if links are to be added.
    """
    ids = tuple(str(c) for c in gdf.index)
    kind = settings.weights
    binary = sparse.csr_array(links, dtype=float)
    binary.sort_indices()
    card = np.diff(binary.indptr)
    islands = tuple(ids[i] for i in np.flatnonzero(card == 0))
    n_comp = int(csgraph.connected_components(binary, directed=True, connection="weak")[0])
    added: list[tuple[str, str, str]] = []
    if islands:
        logger.warning(
            "%d area(s) have no neighbour under %s weights: %s",
            len(islands),
            kind,
            preview(islands),
        )
    n_comp_after = n_comp
    if (islands or n_comp > 1) and settings.island_neighbours > 0:
        _require_projected(gdf, "joining islands or disconnected parts")
        xy = _xy(_centroids(gdf)) if centroids is None else centroids()
        binary, added = _join_gaps(binary, xy, ids, settings.island_neighbours)
        logger.warning(
            "%s weights had %d connected component(s); added %d link(s) to join them: %s",
            kind,
            n_comp,
            len(added),
            preview(f"{a}-{b} ({why})" for a, b, why in added),
        )
        n_comp_after = int(
            csgraph.connected_components(binary, directed=True, connection="weak")[0]
        )
    elif n_comp > 1:
        logger.warning("weights have %d disconnected components; none joined", n_comp)

    return Weights(
        kind=kind,
        ids=ids,
        index_name=str(gdf.index.name),
        binary=binary,
        islands=islands,
        links_added=tuple(added),
        n_components=n_comp,
        n_components_after=n_comp_after,
        parameter=parameter,
    )


def _subset_weights(
    links: sparse.csr_array,
    gdf: gpd.GeoDataFrame,
    keep: np.ndarray,
    settings: SpatialSettings,
    parameter: float | None,
    centroids: Callable[[], np.ndarray],
) -> Weights:
    """``build_weights(gdf[keep], settings)``, reusing the links found for all of ``gdf``.

    ``centroids`` gives the centroids of all of ``gdf``.

    A shared vertex or edge, or a distance, concerns two areas only, so the contiguity
    and distance-band links of a subset are the full links restricted to it; knn is
    rebuilt (the nearest neighbours of an area may be left out). Islands and
    components of the subset are then reported and joined exactly as for a new frame.
    """
    sub = gdf.loc[keep]
    _check_frame(sub)
    if settings.weights == "knn":
        sub_links, parameter = _links(sub, settings)
    else:
        sub_links = links[keep][:, keep]
    return _bridge(sub_links, sub, settings, parameter, lambda: centroids()[keep])


def _check_settings(settings: SpatialSettings) -> None:
    problems = []
    if settings.weights not in WEIGHTS:
        problems.append(
            f"[spatial] weights = {settings.weights!r} is not one of {', '.join(WEIGHTS)}"
            f"{close_matches(str(settings.weights), WEIGHTS)}"
        )
    if settings.weights == "distance" and not (settings.distance_m or 0) > 0:
        problems.append("[spatial] weights = 'distance' needs a positive distance_m (metres)")
    if settings.island_neighbours < 0:
        problems.append("[spatial] island_neighbours must be 0 or more")
    if problems:
        raise ConfigError("; ".join(problems))


def _check_frame(gdf: Any) -> None:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise ValidationError(f"expected a GeoDataFrame of areas, got {type(gdf).__name__}")
    problems = []
    if gdf.index.name not in CODE_NAMES:
        problems.append(
            f"areas must be indexed by {' or '.join(CODE_NAMES)}, got index name {gdf.index.name!r}"
        )
    codes = pd.Series(gdf.index)
    not_str = codes[[not isinstance(c, str) for c in codes]]
    if len(not_str):
        problems.append(f"area codes must be strings; not strings: {preview(not_str)}")
    dup = codes[codes.duplicated()]
    if len(dup):
        problems.append(f"duplicate area codes: {preview(dup.unique())}")
    bad = gdf.index[gdf.geometry.isna() | gdf.geometry.is_empty]
    if len(bad):
        problems.append(f"missing or empty geometry: {preview(bad)}")
    if len(gdf) < 4:
        problems.append(f"spatial statistics need at least 4 areas, got {len(gdf)}")
    if problems:
        raise ValidationError(problems)


def _require_projected(gdf: gpd.GeoDataFrame, why: str) -> None:
    if gdf.crs is None or not gdf.crs.is_projected:
        got = "no CRS" if gdf.crs is None else f"{gdf.crs.to_string()} (not projected)"
        raise ValidationError(
            f"{why} needs distances in metres: expected a projected CRS such as EPSG:27700, "
            f"got {got}"
        )


def _centroids(gdf: gpd.GeoDataFrame) -> gpd.GeoSeries:
    return gdf.geometry.centroid


def _xy(points: gpd.GeoSeries) -> np.ndarray:
    return np.column_stack([points.x.to_numpy(), points.y.to_numpy()])


def _graph_from_binary(binary: sparse.csr_array, ids: tuple[str, ...]) -> Graph:
    """Row-standardised libpysal Graph; isolated areas get libpysal's zero self-loop."""
    from libpysal.graph import Graph  # only on request: libpysal is slow to import

    card = np.diff(binary.indptr)
    coo = binary.tocoo()
    order = np.lexsort((coo.col, coo.row))
    rows, cols = coo.row[order], coo.col[order]
    iso = np.flatnonzero(card == 0)
    rows = np.concatenate([rows, iso])
    cols = np.concatenate([cols, iso])
    weights = np.concatenate([1.0 / card[coo.row[order]], np.zeros(len(iso))])
    order = np.lexsort((cols, rows))
    id_arr = np.asarray(ids, dtype=object)
    return Graph.from_arrays(
        id_arr[rows[order]], id_arr[cols[order]], weights[order], transformation="R"
    )


def _join_gaps(
    binary: sparse.csr_array, xy: np.ndarray, ids: tuple[str, ...], n_nearest: int
) -> tuple[sparse.csr_array, list[tuple[str, str, str]]]:
    """Link islands to their nearest areas, then link components until one remains."""
    n = len(ids)
    tree = cKDTree(xy)
    links: list[tuple[str, str, str]] = []
    new: list[tuple[int, int]] = []
    added: set[tuple[int, int]] = set()

    def link(i: int, j: int, why: str) -> None:
        linked = [binary[a, b] != 0 or (a, b) in added for a, b in ((i, j), (j, i))]
        if not all(linked):
            added.update({(i, j), (j, i)})
            new.append((i, j))
            links.append((ids[i], ids[j], why))

    card = np.diff(binary.indptr)
    for i in np.flatnonzero(card == 0):
        k = min(n_nearest, n - 1)
        _, nearest = tree.query(xy[i], k=k + 1)
        for j in [int(j) for j in np.atleast_1d(nearest) if j != i][:k]:
            link(int(i), j, "island")

    def with_new(mat: sparse.csr_array) -> sparse.csr_array:
        if not new:
            return mat
        a, b = np.array(new).T
        extra = sparse.csr_array((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))
        out = sparse.csr_array(mat + extra)
        out.data[:] = 1.0
        out.sort_indices()
        return out

    # Adding a link between two weak components merges them and leaves the others as
    # they are, so the labels are found once and then merged.
    count, labels = csgraph.connected_components(with_new(binary), directed=True, connection="weak")
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(np.asarray(ids, dtype=object), kind="stable")] = np.arange(n)
    while count > 1:
        present = np.unique(labels)
        sizes = np.bincount(labels)[present]
        first = np.full(labels.max() + 1, n, dtype=np.int64)
        np.minimum.at(first, labels, rank)
        # the smallest component; ties: the one holding the first code in sorted order
        smallest = present[np.lexsort((first[present], sizes))[0]]
        inside = labels == smallest
        i, j = _closest_outside(tree, xy, inside)
        link(i, j, "component")
        labels[labels == labels[j]] = smallest
        count -= 1

    return with_new(binary), links


def _closest_outside(tree: cKDTree, xy: np.ndarray, inside: np.ndarray) -> tuple[int, int]:
    """Closest pair of points (one inside the mask, one outside) by Euclidean distance.

    Ties between inside points go to the first one; the nearest outside point of each is
    found among its nearest neighbours in ``tree``, asking for more of them only where
    the pair could still be the closest.
    """
    n = len(xy)
    todo = np.flatnonzero(inside)
    best_d = np.full(len(todo), np.inf)
    best_j = np.full(len(todo), -1)
    pos = np.arange(len(todo))
    k = min(n, 8)
    while len(pos):
        dist, nearest = tree.query(xy[todo[pos]], k=k)
        dist, nearest = dist.reshape(len(pos), k), nearest.reshape(len(pos), k)
        outside = ~inside[nearest]
        found = outside.any(axis=1)
        col = outside.argmax(axis=1)
        rows = np.flatnonzero(found)
        best_d[pos[rows]] = dist[rows, col[rows]]
        best_j[pos[rows]] = nearest[rows, col[rows]]
        # a point with no outside neighbour among its k nearest is at least dist[:, -1]
        # from the outside; look further only if that could still beat the best pair
        lower = dist[:, -1]
        pos = pos[~found & (lower <= best_d.min())]
        k = min(n, 4 * k)
    at = int(np.argmin(best_d))
    return int(todo[at]), int(best_j[at])


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
def _aligned(
    y: pd.Series | np.ndarray | Sequence[float], weights: Weights, what: str
) -> np.ndarray:
    """Return ``y`` as float64 in ``weights.ids`` order; loud about gaps and missing values."""
    if isinstance(y, pd.Series) and y.index.equals(weights._index):
        name = y.name if y.name is not None else what
        values = pd.Series(y.to_numpy(), index=weights._index)
    elif isinstance(y, pd.Series):
        name = y.name if y.name is not None else what
        codes = pd.Index([str(c) for c in y.index])
        if codes.has_duplicates:
            raise ValidationError(
                f"{name}: duplicate area codes {preview(codes[codes.duplicated()])}"
            )
        ids = pd.Index(weights.ids)
        missing, extra = ids.difference(codes, sort=True), codes.difference(ids, sort=True)
        if len(missing) or len(extra):
            problems = []
            if len(missing):
                problems.append(f"{name}: no value for area(s) in the weights: {preview(missing)}")
            if len(extra):
                problems.append(
                    f"{name}: value(s) for area(s) not in the weights: {preview(extra)}"
                )
            raise JoinError(problems)
        values = pd.Series(y.to_numpy(), index=codes).reindex(ids)
    else:
        name = what
        values = pd.Series(np.asarray(y), index=pd.Index(weights.ids))
        if len(values) != weights.n:
            raise ValidationError(f"{name}: expected {weights.n} values, got {len(values)}")
    try:
        arr = values.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}: values must be numeric, got dtype {values.dtype}") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValidationError(
            f"{name}: missing or infinite values in {bad.sum()} area(s): "
            f"{preview(values.index[bad])}; spatial statistics need a value for every area"
        )
    return arr


def _standardise(y: np.ndarray, name: str) -> np.ndarray:
    z = y - y.mean()
    sd = np.sqrt((z * z).mean())
    if not sd > 1e-12 * max(1.0, float(np.abs(y).max())):
        raise ValidationError(f"{name}: all areas have the same value; nothing to test")
    return z / sd


def _two_sided(ge: np.ndarray, le: np.ndarray, permutations: int) -> np.ndarray:
    """Two-sided pseudo p-value from counts of simulations at least / at most the observed."""
    return np.minimum(1.0, 2.0 * (np.minimum(ge, le) + 1.0) / (permutations + 1.0))


def _check_permutations(permutations: int) -> None:
    if not isinstance(permutations, int | np.integer) or permutations < 1:
        raise ConfigError(f"permutations must be a positive integer, got {permutations!r}")


# --------------------------------------------------------------------------------------
# Global Moran's I
# --------------------------------------------------------------------------------------
def global_moran(
    y: pd.Series | np.ndarray,
    weights: Weights,
    *,
    permutations: int = PERMUTATIONS,
    seed: int,
) -> dict[str, Any]:
    r"""Global Moran's I with a seeded, two-sided permutation test.

    Parameters
    ----------
    y : pandas.Series or array-like
        One value per area, indexed by area code (or in ``weights.ids`` order).
    weights : Weights
        From :func:`build_weights`; row-standardised here.
    permutations : int, default 9999
        Random permutations of ``y`` over the areas (total randomisation).
    seed : int
        Seed of ``numpy.random.default_rng``; same seed, same result.

    Returns
    -------
    dict
        ``statistic`` ('moran'), ``n``, ``i``, ``expected_i``, ``variance_norm``,
        ``z_norm``, ``p_norm`` (two-sided, normal approximation), ``p_sim`` (two-sided
        pseudo p), ``mean_sim``, ``sd_sim``, ``z_sim``, ``permutations``, ``seed``,
        ``alternative`` ('two-sided'). Plain floats and ints (JSON-ready).

    Raises
    ------
    JoinError
        If ``y`` and the weights do not cover the same areas.
    ValidationError
        If ``y`` has missing values or no variation.

    Notes
    -----
    With :math:`z_i = y_i - \bar y` and row-standardised :math:`w_{ij}`,

    .. math:: I = \frac{n}{S_0} \frac{\sum_i \sum_j w_{ij} z_i z_j}{\sum_i z_i^2},
              \qquad E[I] = -\frac{1}{n-1},

    and under normality (Cliff & Ord 1981)
    :math:`V[I] = (n^2 S_1 - n S_2 + 3 S_0^2) / ((n^2 - 1) S_0^2) - E[I]^2`, with
    :math:`S_0 = \sum w_{ij}`, :math:`S_1 = \frac12 \sum (w_{ij} + w_{ji})^2`,
    :math:`S_2 = \sum_i (w_{i\cdot} + w_{\cdot i})^2` (as ``esda.Moran``).

    **Two-sided pseudo p-value.** With :math:`R` permutations,
    :math:`G = \#\{I^{(r)} \ge I\}` and :math:`L = \#\{I^{(r)} \le I\}`,

    .. math:: p = \min\left(1, \frac{2\,(\min(G, L) + 1)}{R + 1}\right),

    twice the one-sided (M + 1)/(R + 1) (Davison & Hinkley 1997, ch. 4; as in
    esda), in the tail where the observed value lies. Each one-sided p is exactly valid,
    so the doubled p is valid (conservative) too; the smallest value it can take is
    2/(R + 1) (0.0002 for 9,999 permutations). esda 2.9's ``p_sim`` is the one-sided
    value in the observed tail (half of this one), and its ``'two-sided'`` option
    counts simulations beyond a mirrored percentile; we use the simple doubling,
    which is easy to state and to check. Values within a relative 1e-9 of the
    observed one count as ties (they fall in both G and L).

    **Permutations.** Permutation *r* is the *r*-th ``rng.permutation(n)`` of
    ``numpy.random.default_rng(seed)``. :func:`analyse` gives every variable tested over
    the same areas these same permutations, drawn once and used block by block: each
    test is exactly the test this function runs on that variable alone (valid on its
    own), while the tests of different variables are not independent of one another.
    Each block of permutations is applied as one gather and one sparse-dense product,
    with :math:`z' W z = z' U z` for :math:`U` the strict upper triangle of
    :math:`W + W^T`.
    """
    _check_permutations(permutations)
    name = getattr(y, "name", None) or "y"
    z = _standardise(_aligned(y, weights, str(name)), str(name))
    return _global_morans([z], weights, permutations=permutations, seed=seed)[0]


def _permutations(n: int, permutations: int, seed: int, block: int) -> Iterator[np.ndarray]:
    """Yield the seeded permutations of ``range(n)`` in blocks of ``block`` rows ``(b, n)``.

    Permutation *r* is the *r*-th ``rng.permutation(n)`` of ``default_rng(seed)``,
    whatever the block size; for small ``n`` a block is drawn in one
    ``rng.permuted`` call, which gives the same permutations.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, permutations, block):
        b = min(block, permutations - start)
        if n < _PERMUTE_ROWS_MIN_N:
            yield rng.permuted(np.broadcast_to(np.arange(n, dtype=np.intp), (b, n)), axis=1)
            continue
        rows = np.empty((b, n), dtype=np.intp)
        for r in range(b):
            rows[r] = rng.permutation(n)
        yield rows


def _global_morans(
    columns: Sequence[np.ndarray], weights: Weights, *, permutations: int, seed: int
) -> list[dict[str, Any]]:
    """:func:`global_moran` of several standardised variables over the same areas.

    Every variable is tested against the same seeded permutations (those
    :func:`global_moran` draws for ``seed``), so each result is exactly what
    :func:`global_moran` gives for that variable alone; the permutations are drawn once
    and each block of them serves every variable.
    """
    n, m = weights.n, len(columns)
    s0, s1, s2, upper = weights._moran_terms
    w = weights.row_standardised
    ei = -1.0 / (n - 1)
    vi = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n * n - 1) * s0 * s0) - ei * ei
    den = np.array([float(z @ z) for z in columns])
    observed = [n / s0 * float(z @ (w @ z)) / d for z, d in zip(columns, den, strict=True)]

    # z_pi' W z_pi = z_pi' U z_pi with U the upper triangle of W + W', for every
    # permutation pi of a block at once: one gather and one sparse-dense product
    stacked = np.column_stack(columns)  # (n, m)
    sims = np.empty((m, permutations))
    block = max(1, min(permutations, _CHUNK_ELEMENTS // (n * m)))
    start = 0
    for rows in _permutations(n, permutations, seed, block):
        b = len(rows)
        x = np.take(stacked, rows.T, axis=0).reshape(n, b * m)  # column r * m + j
        sims[:, start : start + b] = np.einsum("ij,ij->j", x, upper @ x).reshape(b, m).T
        start += b
    sims *= (n / s0 / den)[:, None]

    results = []
    for i_obs, sim in zip(observed, sims, strict=True):
        z_norm = (i_obs - ei) / math.sqrt(vi)
        tol = _TIE_RTOL * max(1.0, abs(i_obs))
        ge = int((sim >= i_obs - tol).sum())
        le = int((sim <= i_obs + tol).sum())
        sd_sim = float(sim.std())
        results.append(
            {
                "statistic": "moran",
                "n": n,
                "i": float(i_obs),
                "expected_i": float(ei),
                "variance_norm": float(vi),
                "z_norm": float(z_norm),
                "p_norm": float(2 * special.ndtr(-abs(z_norm))),
                "p_sim": float(_two_sided(np.array(ge), np.array(le), permutations)),
                "mean_sim": float(sim.mean()),
                "sd_sim": sd_sim,
                "z_sim": float((i_obs - sim.mean()) / sd_sim) if sd_sim > 0 else float("nan"),
                "permutations": int(permutations),
                "seed": int(seed),
                "alternative": ALTERNATIVE,
            }
        )
    return results


def eb_standardised_rates(
    numerator: pd.Series | np.ndarray, denominator: pd.Series | np.ndarray, weights: Weights
) -> pd.Series:
    r"""Assunção–Reis empirical-Bayes standardised rates.

    Parameters
    ----------
    numerator, denominator : pandas.Series or array-like
        Event counts (>= 0) and populations at risk (> 0), per area.
    weights : Weights
        Gives the areas and their order.

    Returns
    -------
    pandas.Series
        :math:`z_i = (r_i - b) / \sqrt{v_i}`, indexed by area code.

    Raises
    ------
    ValidationError
        If counts are missing, negative, or populations are not positive.

    Notes
    -----
    :math:`r_i = e_i / n_i`, :math:`b = \sum e / \sum n`,
    :math:`s^2 = \sum n_i (r_i - b)^2 / \sum n`, :math:`a = s^2 - b / \bar n`,
    :math:`v_i = a + b / n_i`, replaced by :math:`b / n_i` where it is not positive
    (Assunção & Reis 1999; identical to ``esda.smoothing.assuncao_rate``, which keeps
    :math:`v_i` when it is exactly zero and so would divide by zero).
    """
    e = _aligned(numerator, weights, "numerator")
    pop = _aligned(denominator, weights, "denominator")
    problems = []
    ids = pd.Index(weights.ids)
    if (e < 0).any():
        problems.append(f"numerator: negative counts in {preview(ids[e < 0])}")
    if (pop <= 0).any():
        problems.append(f"denominator: zero or negative populations in {preview(ids[pop <= 0])}")
    if problems:
        raise ValidationError(problems)
    r = e / pop
    b = e.sum() / pop.sum()
    s2 = (pop * (r - b) ** 2).sum() / pop.sum()
    a = s2 - b / pop.mean()
    v = a + b / pop
    v = np.where(v > 0, v, b / pop)
    if not (v > 0).all():
        raise ValidationError("numerator: no events in any area; empirical-Bayes rates undefined")
    return pd.Series((r - b) / np.sqrt(v), index=ids, name="eb_rate_z")


def eb_moran(
    numerator: pd.Series | np.ndarray,
    denominator: pd.Series | np.ndarray,
    weights: Weights,
    *,
    permutations: int = PERMUTATIONS,
    seed: int,
) -> dict[str, Any]:
    r"""Empirical-Bayes Moran's I for a count-based rate (Assunção & Reis 1999).

    Parameters
    ----------
    numerator, denominator : pandas.Series or array-like
        Event counts and populations at risk, per area.
    weights : Weights
        From :func:`build_weights`.
    permutations : int, default 9999
        Random permutations of the standardised rates.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    dict
        As :func:`global_moran`, with ``statistic`` = ``'eb_moran'``.

    Notes
    -----
    Raw rates of small areas are noisy in proportion to :math:`1/\sqrt{n_i}`, which
    can create or hide autocorrelation. The rates are first standardised by their
    empirical-Bayes variance (:func:`eb_standardised_rates`), then Moran's I is
    computed on them as in :func:`global_moran` (centred on their mean), which is what
    ``esda.Moran_Rate(adjusted=True)`` and GeoDa's "Moran's I with EB rate" do. The
    permutation test and its two-sided rule are those of :func:`global_moran`; unlike
    ``esda.Moran_Rate`` nothing is drawn from NumPy's global random state.
    """
    rates = eb_standardised_rates(numerator, denominator, weights)
    result = global_moran(rates, weights, permutations=permutations, seed=seed)
    return {"statistic": "eb_moran", **{k: v for k, v in result.items() if k != "statistic"}}


# --------------------------------------------------------------------------------------
# Local statistics
# --------------------------------------------------------------------------------------
def p_floor(n: int, neighbours: np.ndarray | int, permutations: int) -> np.ndarray:
    r"""Smallest two-sided conditional-permutation p-value an area can reach.

    Parameters
    ----------
    n : int
        Number of areas.
    neighbours : int or array of int
        Number of neighbours :math:`k_i` of each area.
    permutations : int
        Number of conditional permutations :math:`R`.

    Returns
    -------
    numpy.ndarray
        :math:`\min(1, \max(2/(R+1),\; 2/\binom{n-1}{k_i}))` per area.

    Notes
    -----
    The conditional permutation holds area *i*'s value fixed and gives its
    :math:`k_i` neighbour slots a random :math:`k_i`-subset of the other
    :math:`n-1` values. With equal weights within a row (all geo_send weights) the
    spatial lag depends only on which subset is drawn, so it takes at most
    :math:`C = \binom{n-1}{k_i}` equally likely values. The exact (infinitely many
    permutations) one-sided p-value counts the subsets at least as extreme as the
    observed one, the observed subset included, so it is at least :math:`1/C`; the
    two-sided p of :func:`global_moran`'s rule is therefore at least :math:`2/C`. A
    Monte Carlo estimate from :math:`R` permutations is also at least
    :math:`2/(R+1)`. Ties among the values only raise the floor. Example: 20 wards,
    a ward with one neighbour: :math:`C = 19`, floor :math:`2/19 \approx 0.105`, so
    it can never be significant at 0.05. Islands (:math:`k_i = 0`) have floor 1.
    """
    k = np.atleast_1d(np.asarray(neighbours, dtype=np.int64))
    combos = np.array([float(math.comb(n - 1, int(ki))) for ki in k])
    return np.minimum(1.0, np.maximum(2.0 / (permutations + 1.0), 2.0 / combos))


def significance_threshold(alpha: float, m: int, correction: str) -> float:
    """Largest p-value that could be declared significant among ``m`` tests.

    ``alpha`` for no correction and for FDR (Benjamini–Hochberg's most lenient step,
    reached only when every test is rejected), ``alpha / m`` for Bonferroni. An area
    whose :func:`p_floor` is above this threshold can never be significant.
    """
    _check_correction(correction)
    return alpha / m if correction == "bonferroni" else alpha


def adjust_p(p: np.ndarray | Sequence[float] | pd.Series, method: str) -> np.ndarray:
    r"""Adjust p-values for multiple testing.

    Parameters
    ----------
    p : array-like of float
        Raw p-values, all in [0, 1].
    method : {'none', 'bonferroni', 'fdr'}
        'fdr' is Benjamini–Hochberg (1995).

    Returns
    -------
    numpy.ndarray
        Adjusted p-values (same order as ``p``); reject where adjusted <= alpha.

    Raises
    ------
    ConfigError
        If ``method`` is unknown.
    ValidationError
        If any p-value is missing or outside [0, 1].

    Notes
    -----
    Bonferroni: :math:`\min(1, m p_i)`. Benjamini–Hochberg: sort
    :math:`p_{(1)} \le \dots \le p_{(m)}`, then
    :math:`q_{(j)} = \min_{l \ge j} \min(1, m p_{(l)} / l)`; rejecting
    :math:`q \le \alpha` rejects exactly the hypotheses of the BH step-up procedure,
    :math:`p_{(j)} \le j \alpha / m`. ``esda.fdr`` returns only a cut-off, tests
    :math:`p_{(j)} < j \alpha / m` strictly and returns :math:`\alpha / m` when nothing
    passes, so it can reject fewer hypotheses at the boundary.
    """
    _check_correction(method)
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1:
        arr = arr.ravel()
    if not np.all((arr >= 0) & (arr <= 1)):
        raise ValidationError("p-values must all be in [0, 1] (no missing values)")
    m = arr.size
    if method == "none" or m == 0:
        return arr.copy()
    if method == "bonferroni":
        return np.minimum(1.0, arr * m)
    order = np.argsort(arr, kind="stable")
    ranked = arr[order] * m / np.arange(1, m + 1)
    q = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    out = np.empty(m)
    out[order] = q
    return out


def _check_correction(method: str) -> None:
    if method not in CORRECTIONS:
        raise ConfigError(
            f"correction = {method!r} is not one of {', '.join(CORRECTIONS)}"
            f"{close_matches(str(method), CORRECTIONS)}"
        )


def _draw_subsets(rng: np.random.Generator, n_other: int, k: int, permutations: int) -> np.ndarray:
    """``permutations`` rows of ``k`` distinct draws from ``range(n_other)``, uniform order."""
    if k == 0:
        return np.zeros((permutations, 0), dtype=np.intp)
    if n_other * permutations <= _SHUFFLE_ELEMENTS:
        base = np.broadcast_to(np.arange(n_other, dtype=np.intp), (permutations, n_other))
        return np.ascontiguousarray(rng.permuted(base, axis=1)[:, :k])
    out = rng.integers(0, n_other, size=(permutations, k), dtype=np.intp)
    while True:  # rejection: redraw rows with a repeat (rare when k << n)
        srt = np.sort(out, axis=1)
        bad = (np.diff(srt, axis=1) == 0).any(axis=1)
        if not bad.any():
            return out
        out[bad] = rng.integers(0, n_other, size=(int(bad.sum()), k), dtype=np.intp)


def _conditional_counts(
    x: np.ndarray,
    binary: sparse.csr_array,
    draws: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Count conditional-permutation neighbour sums at least / at most the observed sum.

    For each area *i* with :math:`k_i` neighbours, permutation *r* gives the neighbour
    slots the values ``x[j + (j >= i)]`` for the first :math:`k_i` entries *j* of
    ``draws[r]`` (draws from ``range(n - 1)``, shifted past *i*): a uniform random
    subset of the other areas. The same draws serve every area (as in esda), so each
    area's test is exact but the tests are not independent.

    With ``a = x[draws]`` and ``b = x[draws + 1]``, the sum for area *i* in permutation
    *r* is ``sum_t a[r, t] + sum_t [draws[r, t] >= i] (b[r, t] - a[r, t])``. Over the
    areas sorted by position, draw ``(r, t)`` adds its step ``b - a`` to every area up to
    ``draws[r, t]``: a prefix, so the sums of a block of areas are one ``bincount`` of
    the steps by where their prefix ends and one cumulative sum, in time proportional
    to (areas x permutations) rather than (links x permutations).
    """
    n = len(x)
    permutations = draws.shape[0]
    card = np.diff(binary.indptr)
    observed = binary @ x
    ge = np.zeros(n, dtype=np.int64)
    le = np.zeros(n, dtype=np.int64)
    scale = max(1.0, float(np.abs(x).max()))
    chunk = max(1, _LOCAL_CHUNK_ELEMENTS // permutations)
    column = np.arange(permutations)[:, None]
    for k in np.unique(card):
        k = int(k)
        sites = np.flatnonzero(card == k)  # sorted
        if k == 0:
            ge[sites] = le[sites] = permutations  # lag is always 0: every draw ties
            continue
        d = np.ascontiguousarray(draws[:, :k])
        low = x[d]  # draws are < n - 1, so d + 1 is a valid index
        step_up = (x[d + 1] - low).ravel()
        base = low.sum(axis=1)
        ends = np.searchsorted(sites, d, side="right")  # draw (r, t) reaches sites[:ends]
        tol = _TIE_RTOL * k * scale
        for start in range(0, len(sites), chunk):
            s = sites[start : start + chunk]
            c = len(s)
            end = np.clip(ends - start, 0, c)
            steps = np.bincount(
                (end * permutations + column).ravel(),
                weights=step_up,
                minlength=(c + 1) * permutations,
            ).reshape(c + 1, permutations)
            # site j gets the steps of every draw whose prefix ends after it: a running
            # sum from the last site back (row by row, which NumPy vectorises; cumsum
            # does not)
            sims = np.empty((c, permutations))
            np.add(base, steps[c], out=sims[c - 1])
            for j in range(c - 2, -1, -1):
                np.add(sims[j + 1], steps[j + 1], out=sims[j])
            obs = observed[s]
            ge[s] = (sims >= obs[:, None] - tol).sum(axis=1)
            le[s] = (sims <= obs[:, None] + tol).sum(axis=1)
    return ge, le


def local_statistics(
    y: pd.Series | np.ndarray,
    weights: Weights,
    *,
    permutations: int = LOCAL_PERMUTATIONS,
    seed: int,
    alpha: float = 0.05,
    correction: str = "fdr",
) -> pd.DataFrame:
    r"""Local Moran's I (LISA) and Getis-Ord Gi* with two-sided conditional permutation.

    Parameters
    ----------
    y : pandas.Series or array-like
        One value per area, indexed by area code (or in ``weights.ids`` order).
    weights : Weights
        From :func:`build_weights`.
    permutations : int, default 9999
        Conditional permutations per area.
    seed : int
        Seed of ``numpy.random.default_rng``.
    alpha : float, default 0.05
        Significance level after correction.
    correction : {'none', 'bonferroni', 'fdr'}, default 'fdr'
        Multiple-testing correction over the areas (:func:`adjust_p`).

    Returns
    -------
    pandas.DataFrame
        Indexed by area code (``weights.index_name``), in ``weights.ids`` order, with
        columns ``lisa_i``, ``lisa_quadrant`` (1 HH, 2 LH, 3 LL, 4 HL), ``lisa_p``,
        ``lisa_p_adjusted``, ``lisa_significant``, ``lisa_label``, ``gi_z``, ``gi_p``,
        ``gi_p_adjusted``, ``gi_label``, ``neighbours_count``, ``p_floor``,
        ``significance_possible``.

    Raises
    ------
    JoinError, ValidationError, ConfigError
        As :func:`global_moran`; unknown ``correction`` or ``alpha`` outside (0, 1).

    Notes
    -----
    **Local Moran** (Anselin 1995), with :math:`z` standardised by the population
    standard deviation and :math:`w_{ij}` row-standardised, scaled as esda's
    ``Moran_Local``: :math:`I_i = (n-1)\, z_i \sum_j w_{ij} z_j / \sum_k z_k^2`.
    Quadrant: 1 High-High (:math:`z_i > 0`, lag > 0), 2 Low-High, 3 Low-Low,
    4 High-Low (:math:`z_i > 0`, lag :math:`\le 0`), as esda.

    **Gi*** (Ord & Getis 1995), the area itself included with binary weight 1:
    :math:`W_i = k_i + 1`, :math:`s^2 = \overline{y^2} - \bar y^2`,

    .. math:: G^*_{z,i} = \frac{\sum_{j \in N_i \cup \{i\}} y_j - \bar y\, W_i}
                         {s \sqrt{(n W_i - W_i^2) / (n - 1)}},

    equal to esda's ``G_Local(star=True, transform='B').Zs``.

    **p-values.** Both statistics are, for a fixed area, increasing functions of the
    sum of its neighbours' values (Local Moran decreasing when :math:`z_i < 0`), so
    one conditional permutation of that sum (:math:`R` draws of a random
    :math:`k_i`-subset of the other areas) serves both, with the two-sided rule of
    :func:`global_moran`: :math:`p = \min(1, 2(\min(G, L) + 1)/(R + 1))`. Hence
    ``gi_p`` equals ``lisa_p`` except where :math:`z_i = 0` (Local Moran is then 0
    whatever the neighbours, so ``lisa_p`` = 1). esda 2.9's ``p_sim`` is the one-sided
    value in the observed tail, about half of this. Reported p-values are raised to
    at least ``p_floor`` (the exact test cannot go below it; lower Monte Carlo
    estimates are simulation noise).

    **Floor.** ``p_floor`` (:func:`p_floor`) is
    :math:`\min(1, \max(2/(R+1), 2/\binom{n-1}{k_i}))`. ``significance_possible``
    is ``p_floor <= significance_threshold(alpha, n, correction)``; where it is
    False the area can never be flagged, whatever the data.

    About one area in twenty is "significant" at 0.05 by chance without correction:
    call such areas interesting, not proven clusters.
    """
    _check_permutations(permutations)
    _check_correction(correction)
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")
    name = getattr(y, "name", None) or "y"
    values = _aligned(y, weights, str(name))
    z = _standardise(values, str(name))
    n = len(z)
    binary = weights.binary
    card = weights.cardinalities
    w = weights.row_standardised
    lag = w @ z
    lisa_i = (n - 1) * z * lag / float(z @ z)
    quadrant = np.where(z > 0, np.where(lag > 0, 1, 4), np.where(lag > 0, 2, 3))

    ybar = values.mean()
    s = math.sqrt(max(float((values**2).mean() - ybar**2), 0.0))
    w_star = card + 1.0
    star_sum = binary @ values + values
    with np.errstate(divide="ignore", invalid="ignore"):
        gi_z = (star_sum - ybar * w_star) / (s * np.sqrt((n * w_star - w_star**2) / (n - 1)))

    rng = np.random.default_rng(seed)
    draws = _draw_subsets(rng, n - 1, int(card.max()), permutations)
    ge, le = _conditional_counts(z, binary, draws)
    floor = p_floor(n, card, permutations)
    gi_p = np.maximum(_two_sided(ge, le, permutations), floor)
    lisa_p = np.where(z == 0, 1.0, gi_p)

    lisa_adj = adjust_p(lisa_p, correction)
    gi_adj = adjust_p(gi_p, correction)
    lisa_sig = lisa_adj <= alpha
    gi_sig = (gi_adj <= alpha) & np.isfinite(gi_z) & (gi_z != 0)
    quadrant_label = pd.Series(quadrant).map(LISA_LABELS).to_numpy()
    lisa_label = np.where(lisa_sig, quadrant_label, NOT_SIGNIFICANT)
    gi_label = np.where(gi_sig, np.where(gi_z > 0, GI_LABELS[1], GI_LABELS[-1]), NOT_SIGNIFICANT)
    threshold = significance_threshold(alpha, n, correction)

    index = pd.Index(list(weights.ids), name=weights.index_name)
    return pd.DataFrame(
        {
            "lisa_i": lisa_i,
            "lisa_quadrant": quadrant.astype(np.int64),
            "lisa_p": lisa_p,
            "lisa_p_adjusted": lisa_adj,
            "lisa_significant": lisa_sig,
            "lisa_label": lisa_label.astype(object),
            "gi_z": gi_z,
            "gi_p": gi_p,
            "gi_p_adjusted": gi_adj,
            "gi_label": gi_label.astype(object),
            "neighbours_count": card.astype(np.int64),
            "p_floor": floor,
            "significance_possible": floor <= threshold,
        },
        index=index,
    )


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------
def _format_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    if p < 0.1:
        return f"p = {p:.3f}"
    return f"p = {p:.2f}"


def _join_names(names: Sequence[str], limit: int = 5) -> str:
    names = list(names)
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def describe_moran(
    label: str,
    result: dict[str, Any],
    *,
    alpha: float = 0.05,
    areas: str = "wards",
    local: pd.DataFrame | None = None,
    names: pd.Series | None = None,
    correction: str = "fdr",
    p_adjusted: float | None = None,
) -> str:
    """One plain-language sentence on a global Moran result (plus clusters, if given).

    Parameters
    ----------
    label : str
        Plain-language name of the variable ("SEND need index").
    result : dict
        From :func:`global_moran` or :func:`eb_moran`.
    alpha : float, default 0.05
        Level at which the global p is called evidence.
    areas : str, default "wards"
        Plural noun for the areas.
    local : pandas.DataFrame, optional
        From :func:`local_statistics`; significant High-High and Low-Low areas are
        named in a second sentence.
    names : pandas.Series, optional
        Area names indexed by code, used instead of codes when naming clusters.
    correction : {'none', 'bonferroni', 'fdr'}, default 'fdr'
        The correction ``local`` was computed with (named in the sentence).
    p_adjusted : float, optional
        The global p adjusted for the number of variables tested; when given, the
        judgement uses it and the sentence shows both.

    Returns
    -------
    str
        E.g. ``"SEND need index: wards with similar values cluster together, high next
        to high and low next to low, more than chance would give (Moran's I = 0.41,
        p = 0.003, 9,999 permutations)."``

    Notes
    -----
    Four wordings: clustering (p <= alpha, I above its expectation); a checkerboard
    (p <= alpha, I below); "only weak evidence" (alpha < p <= 2 alpha, I above); "no
    evidence of clustering" otherwise. A non-significant result is never described
    as evidence of randomness.
    """
    i, p, r = result["i"], result["p_sim"], result["permutations"]
    kind = "EB Moran's I" if result.get("statistic") == "eb_moran" else "Moran's I"
    shown = _format_p(p)
    if p_adjusted is not None and p_adjusted != p:
        shown += f", adjusted {_format_p(p_adjusted)}"
    numbers = f"({kind} = {i:.2f}, {shown}, {r:,} permutations)"
    p = p if p_adjusted is None else p_adjusted
    if p <= alpha and i > result["expected_i"]:
        text = (
            f"{label}: {areas} with similar values cluster together, high next to high and "
            f"low next to low, more than chance would give {numbers}."
        )
    elif p <= alpha:
        text = (
            f"{label}: neighbouring {areas} differ more than chance would give, a "
            f"checkerboard pattern {numbers}."
        )
    elif p <= 2 * alpha and i > result["expected_i"]:
        text = (
            f"{label}: only weak evidence that {areas} with similar values cluster together, "
            f"not significant at {alpha:g} {numbers}."
        )
    else:
        text = (
            f"{label}: no evidence of clustering; the pattern on the map could well be "
            f"chance {numbers}."
        )
    if local is not None:
        how = (
            f"significant at {alpha:g}, uncorrected"
            if correction == "none"
            else f"significant at {alpha:g} after {_CORRECTION_NAMES[correction]} correction"
        )
        parts = []
        for tag in ("High-High", "Low-Low"):
            codes = local.index[local["lisa_label"] == tag]
            if len(codes):
                shown = [str(names.get(c, c)) if names is not None else str(c) for c in codes]
                parts.append(f"{tag}: {_join_names(sorted(shown))}")
        if parts:
            text += f" Local clusters ({how}): " + "; ".join(parts) + "."
        else:
            one = areas[:-1] if areas.endswith("s") else areas
            text += f" No {one} forms a local High-High or Low-Low cluster ({how})."
    return text


# --------------------------------------------------------------------------------------
# The stage: every variable of a run, one weights object, one JSON-ready summary
# --------------------------------------------------------------------------------------
LOCAL_COLUMNS = (
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
)
"""Columns of :func:`local_statistics`, in order."""

_AREA_WORDS = {"ward_code": "wards", "lsoa_code": "LSOAs"}


@dataclass(frozen=True)
class Variable:
    """One variable to test: values per area, a plain-language label, counts for rates.

    Attributes
    ----------
    label : str
        Plain-language name used in sentences.
    values : pandas.Series
        Value per area, indexed by area code (missing values allowed; see :func:`analyse`).
    numerator, denominator : pandas.Series or None
        Event counts and populations for count-based rates (adds EB Moran's I).
    """

    label: str
    values: pd.Series
    numerator: pd.Series | None = None
    denominator: pd.Series | None = None

    @property
    def is_rate(self) -> bool:
        """Whether counts are given (and EB Moran's I applies)."""
        return self.numerator is not None and self.denominator is not None


@dataclass(frozen=True)
class SpatialResult:
    """Output of :func:`analyse`.

    Attributes
    ----------
    weights : Weights
        Weights over all areas.
    local : pandas.DataFrame
        :func:`local_statistics` of the focus variable for every area (missing where
        the variable is missing), columns :data:`LOCAL_COLUMNS`.
    summary : dict
        JSON-ready: weights summary, settings, per-variable global statistics with
        their sentences, and the local clusters (``spatial_stats.json``).
    """

    weights: Weights
    local: pd.DataFrame = field(repr=False)
    summary: dict[str, Any] = field(repr=False)


def analyse(
    areas: gpd.GeoDataFrame,
    variables: Mapping[str, Variable],
    settings: SpatialSettings,
    *,
    seed: int,
    focus: str = "need_index",
    names: pd.Series | None = None,
) -> SpatialResult:
    """Test every variable for spatial autocorrelation; local statistics for ``focus``.

    Parameters
    ----------
    areas : geopandas.GeoDataFrame
        Boundaries indexed by area code (see :func:`build_weights`).
    variables : mapping of str to Variable
        Variables by output name, in report order; ``focus`` among them.
    settings : SpatialSettings
        Weights, permutations, alpha and correction.
    seed : int
        The run's seed; every test uses it (and records it).
    focus : str, default "need_index"
        The variable that gets local statistics (LISA, Gi*).
    names : pandas.Series, optional
        Area names by code, for the sentences.

    Returns
    -------
    SpatialResult

    Raises
    ------
    JoinError
        If a variable is not indexed by exactly the areas' codes.

    Notes
    -----
    Global test per variable: Moran's I (:func:`global_moran`); for count-based rates
    also EB Moran's I (:func:`eb_moran`), which is then the headline, since raw rates
    of small populations are noisier. ``focus`` is the primary variable and its test
    stands alone; the headline p-values of the other variables (the indicators) are
    adjusted together with ``settings.correction`` (``p_adjusted``), since testing
    several indicators is itself multiple testing. Sentences judge by ``p_adjusted``.

    Missing values are never filled: a variable missing in some areas is tested over
    the areas that have it, with the weights :func:`build_weights` gives that subset
    (the contiguity or distance links restricted to it, knn found again; islands so
    created are joined as usual), and the areas left out are listed
    (``areas_without_value``); its local statistics are missing there. A variable with
    fewer than 4 areas or no variation is not tested (``skipped`` says why).

    The weights are built once, and once more per distinct subset. The global tests of
    all variables over the same areas share one seeded stream of permutations (see
    :func:`global_moran`), so a result here equals ``global_moran`` (or ``eb_moran``)
    run on that variable, with the same weights and ``seed``.
    """
    _check_settings(settings)
    _check_frame(areas)
    _check_permutations(settings.permutations)
    links, parameter = _links(areas, settings)
    centroids = cache(lambda: _xy(_centroids(areas)))  # found once, if ever needed
    weights = _bridge(links, areas, settings, parameter, centroids)
    index_name = str(areas.index.name)
    word = _AREA_WORDS.get(index_name, "areas")
    entries: dict[str, dict[str, Any]] = {}
    local = pd.DataFrame(index=areas.index, columns=list(LOCAL_COLUMNS), dtype=object)
    local_sets: dict[str, Any] | None = None
    subsets: dict[bytes, Weights] = {}  # by the areas left out
    # global tests to run, by weights: (variable, statistic, standardised values)
    tests: dict[int, tuple[Weights, list[tuple[str, str, np.ndarray]]]] = {}
    for name, var in variables.items():
        complete = _complete(var, areas.index, name)
        left_out = [str(c) for c in areas.index[~complete]]
        entry: dict[str, Any] = {"label": var.label, "n": int(complete.sum())}
        entry["areas_without_value"] = left_out
        values = var.values.reindex(areas.index)[complete]
        if complete.sum() < 4 or values.nunique() < 2:
            entry["skipped"] = (
                "fewer than 4 areas with a value"
                if complete.sum() < 4
                else ("no variation between areas")
            )
            logger.warning(
                "%s: not tested for spatial autocorrelation (%s)", name, entry["skipped"]
            )
            entries[name] = entry
            continue
        w = weights
        if left_out:
            logger.warning(
                "%s: missing in %d %s (%s); tested over the other %d with their own weights",
                name,
                len(left_out),
                word,
                preview(left_out),
                int(complete.sum()),
            )
            keep = complete.to_numpy()
            key = keep.tobytes()
            if key not in subsets:
                subsets[key] = _subset_weights(links, areas, keep, settings, parameter, centroids)
            w = subsets[key]
            entry["weights"] = w.summary()
        label = str(getattr(values, "name", None) or "y")
        batch = tests.setdefault(id(w), (w, []))[1]
        batch.append((name, "moran", _standardise(_aligned(values, w, label), label)))
        entry["moran"] = None
        entry["headline"] = "moran"
        if var.is_rate:
            assert var.numerator is not None and var.denominator is not None
            rates = eb_standardised_rates(
                var.numerator.reindex(areas.index)[complete],
                var.denominator.reindex(areas.index)[complete],
                w,
            )
            batch.append(
                (name, "eb_moran", _standardise(_aligned(rates, w, "eb_rate_z"), "eb_rate_z"))
            )
            entry["eb_moran"] = None
            entry["headline"] = "eb_moran"
        if name == focus:
            found = local_statistics(
                values,
                w,
                permutations=settings.local_permutations,
                seed=seed,
                alpha=settings.alpha,
                correction=settings.correction,
            )
            local = found.reindex(areas.index)
            local_sets = _local_summary(found, settings, name)
        entries[name] = entry

    # One seeded stream of permutations per set of areas, shared by its variables
    for w, batch in tests.values():
        found_all = _global_morans(
            [z for _, _, z in batch], w, permutations=settings.permutations, seed=seed
        )
        for (name, statistic, _), result in zip(batch, found_all, strict=True):
            entries[name][statistic] = {**result, "statistic": statistic}

    family = [n for n, e in entries.items() if "headline" in e and n != focus]
    adjusted = dict(
        zip(
            family,
            adjust_p(
                [entries[n][entries[n]["headline"]]["p_sim"] for n in family], settings.correction
            ),
            strict=True,
        )
    )
    for name, entry in entries.items():
        if "headline" not in entry:
            continue
        p_adj = adjusted.get(name, entry[entry["headline"]]["p_sim"])
        entry["correction"] = settings.correction if name in adjusted else "none"
        entry["tests_corrected_together"] = len(family) if name in adjusted else 1
        entry["p_adjusted"] = float(p_adj)
        entry["sentence"] = describe_moran(
            entry["label"],
            entry[entry["headline"]],
            alpha=settings.alpha,
            areas=word,
            local=local if name == focus else None,
            names=names,
            correction=settings.correction,
            p_adjusted=float(p_adj),
        )
    summary = {
        "level": index_name.removesuffix("_code"),
        "n": weights.n,
        "weights": weights.summary(),
        "seed": int(seed),
        "permutations": int(settings.permutations),
        "local_permutations": int(settings.local_permutations),
        "alternative": ALTERNATIVE,
        "alpha": float(settings.alpha),
        "correction": settings.correction,
        "p_value_rule": "two-sided pseudo p = min(1, 2 (min(G, L) + 1) / (R + 1))",
        "p_floor_rule": "min(1, max(2 / (R + 1), 2 / C(n - 1, k)))",
        "variables": entries,
        "local": local_sets,
    }
    return SpatialResult(weights=weights, local=local, summary=_json_ready(summary))


def _complete(var: Variable, codes: pd.Index, name: str) -> pd.Series:
    """Areas where the variable (and its counts) can be tested; loud on unknown codes."""
    series = [("values", var.values)]
    if var.is_rate:
        series += [("numerator", var.numerator), ("denominator", var.denominator)]
    ok = pd.Series(True, index=codes)
    for part, s in series:
        assert s is not None
        extra, missing = s.index.difference(codes), codes.difference(s.index)
        if len(extra) or len(missing):
            problems = []
            if len(missing):
                problems.append(f"{name} {part}: no row for area(s) {preview(missing)}")
            if len(extra):
                problems.append(f"{name} {part}: area(s) not in the boundaries: {preview(extra)}")
            raise JoinError(problems)
        aligned = pd.to_numeric(s.reindex(codes), errors="coerce").astype(float)
        ok &= np.isfinite(aligned)
        if part == "denominator":
            ok &= aligned > 0
        if part == "numerator":
            ok &= aligned >= 0
    return ok


def _local_summary(local: pd.DataFrame, settings: SpatialSettings, name: str) -> dict[str, Any]:
    def codes(mask: pd.Series) -> list[str]:
        return [str(c) for c in local.index[mask]]

    return {
        "variable": name,
        "permutations": int(settings.local_permutations),
        "alpha": float(settings.alpha),
        "correction": settings.correction,
        "significance_threshold": significance_threshold(
            settings.alpha, len(local), settings.correction
        ),
        "label_counts": {
            k: int(v) for k, v in local["lisa_label"].value_counts().sort_index().items()
        },
        "high_high": codes(local["lisa_label"] == "High-High"),
        "low_low": codes(local["lisa_label"] == "Low-Low"),
        "high_low": codes(local["lisa_label"] == "High-Low"),
        "low_high": codes(local["lisa_label"] == "Low-High"),
        "hot_spots": codes(local["gi_label"] == "Hot spot"),
        "cold_spots": codes(local["gi_label"] == "Cold spot"),
        "cannot_be_significant": codes(~local["significance_possible"].astype(bool)),
    }


def _json_ready(value: Any) -> Any:
    """Plain Python containers and numbers; NaN and infinities become None."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def scale_sensitivity(
    ward_index: pd.Series,
    lsoa_index: pd.Series,
    lsoa_local: pd.DataFrame,
    lookup: pd.Series,
    population: pd.Series,
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare the ward index with the same index computed for the LSOAs inside each ward.

    Parameters
    ----------
    ward_index : pandas.Series
        Need index per ward, indexed by ``ward_code``.
    lsoa_index : pandas.Series
        The index computed at LSOA level, indexed by ``lsoa_code``.
    lsoa_local : pandas.DataFrame
        :func:`local_statistics` at LSOA level (``lisa_label``), indexed by ``lsoa_code``.
    lookup : pandas.Series
        Ward code of each LSOA (best fit), indexed by ``lsoa_code``.
    population : pandas.Series
        Population of each LSOA, indexed by ``lsoa_code``; the averaging weight.
    alpha : float, default 0.05
        Level for the uncorrected counts.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``ward_code`` (as ``ward_index``): ``need_index``, ``rank``,
        ``lsoa_count``, ``lsoa_need_index_mean`` (population-weighted mean of the LSOA
        index), ``lsoa_rank`` (rank of that mean, 1 = highest need), ``rank_change``
        (``lsoa_rank - rank``), ``lsoa_high_high_count`` and ``lsoa_low_low_count``
        (LSOAs in the ward in a significant LISA High-High / Low-Low cluster, after the
        multiple-testing correction ``lsoa_local`` used), and
        ``lsoa_high_high_uncorrected_count`` / ``lsoa_low_low_uncorrected_count`` (the
        same quadrants with an uncorrected ``lisa_p <= alpha``: "interesting", not
        proven clusters; with many LSOAs the corrected counts are often all zero).

    Raises
    ------
    JoinError
        If an LSOA has no ward, or a ward in the lookup is not among the wards.

    Notes
    -----
    The modifiable areal unit problem: the same data grouped at another scale can rank
    and cluster differently. The LSOA index is z-scored among LSOAs, so its level is
    not comparable with the ward index; its ranks are. Population-weighted averaging
    follows the English Indices of Deprivation (see :func:`geo_send.join.weighted_mean`).
    """
    lsoa_codes = lsoa_index.index
    ward_of = lookup.reindex(lsoa_codes)
    problems = []
    if ward_of.isna().any():
        problems.append(f"LSOA lookup: no ward for LSOA(s) {preview(lsoa_codes[ward_of.isna()])}")
    unknown = pd.Index(ward_of.dropna().unique()).difference(ward_index.index)
    if len(unknown):
        problems.append(f"LSOA lookup: ward code(s) not among the wards: {preview(unknown)}")
    if problems:
        raise JoinError(problems)
    ward_of = ward_of.rename("ward_code")
    mean = weighted_mean(lsoa_index, population.reindex(lsoa_codes), ward_of)
    labels = lsoa_local["lisa_label"].reindex(lsoa_codes)
    wards = ward_index.index
    out = pd.DataFrame(index=wards)
    out["need_index"] = ward_index
    out["rank"] = rank_areas(ward_index)
    out["lsoa_count"] = ward_of.value_counts().reindex(wards, fill_value=0).astype(np.int64)
    out["lsoa_need_index_mean"] = mean.reindex(wards)
    has_mean = out["lsoa_need_index_mean"].notna()
    out["lsoa_rank"] = rank_areas(out["lsoa_need_index_mean"]).where(has_mean).astype("Int64")
    out["rank_change"] = out["lsoa_rank"] - out["rank"]
    quadrant = lsoa_local["lisa_quadrant"].reindex(lsoa_codes)
    raw_p = lsoa_local["lisa_p"].reindex(lsoa_codes).astype(float)
    flags = {
        "lsoa_high_high_count": labels == "High-High",
        "lsoa_low_low_count": labels == "Low-Low",
        "lsoa_high_high_uncorrected_count": (quadrant == 1) & (raw_p <= alpha),
        "lsoa_low_low_uncorrected_count": (quadrant == 3) & (raw_p <= alpha),
    }
    for column, flag in flags.items():
        counts = flag.astype(bool).groupby(ward_of).sum().reindex(wards, fill_value=0)
        out[column] = counts.astype(np.int64)
    return out


def summarise_scale(frame: pd.DataFrame, *, top_n: int = 5) -> dict[str, Any]:
    """Headline comparison of ward and LSOA-based rankings (from :func:`scale_sensitivity`).

    Returns
    -------
    dict
        ``spearman_rank_correlation`` between the ward index and the population-weighted
        LSOA mean, ``top_n`` and ``top_n_overlap`` (wards in both top-n lists),
        ``largest_rank_changes`` (up to five wards, largest absolute change first, ties
        by code), ``wards_with_high_high_lsoas`` (after correction) and
        ``wards_with_high_high_lsoas_uncorrected``, and a ``sentence``.
    """
    both = frame.dropna(subset=["need_index", "lsoa_need_index_mean"])
    rho = _spearman(both["need_index"], both["lsoa_need_index_mean"])
    top_ward = set(both.index[both["rank"] <= top_n])
    top_lsoa = set(both.index[(both["lsoa_rank"] <= top_n).to_numpy(dtype=bool)])
    change = both["rank_change"].astype(float).abs().sort_index()
    change = change.sort_values(ascending=False, kind="stable")
    largest = [
        {
            "ward_code": str(c),
            "rank": int(both.loc[c, "rank"]),
            "lsoa_rank": int(both.loc[c, "lsoa_rank"]),
        }
        for c in change.index[:5]
        if change[c] > 0
    ]
    with_hh = [str(c) for c in frame.index[frame["lsoa_high_high_count"] > 0]]
    with_hh_raw = [str(c) for c in frame.index[frame["lsoa_high_high_uncorrected_count"] > 0]]
    sentence = (
        f"Ranked by the population-weighted mean of the same index computed for LSOAs, the "
        f"wards keep a Spearman rank correlation of {rho:.2f} with the ward ranking; "
        f"{len(top_ward & top_lsoa)} of the top {top_n} wards are the same at both scales. "
        f"{len(with_hh)} ward(s) contain LSOAs in a significant High-High LISA cluster "
        f"after correction, {len(with_hh_raw)} before correction."
    )
    return _json_ready(
        {
            "spearman_rank_correlation": rho,
            "top_n": top_n,
            "top_n_overlap": len(top_ward & top_lsoa),
            "largest_rank_changes": largest,
            "wards_with_high_high_lsoas": with_hh,
            "wards_with_high_high_lsoas_uncorrected": with_hh_raw,
            "sentence": sentence,
        }
    )


def _spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rank correlation, as ``scipy.stats.spearmanr(a, b).statistic`` computes it.

    Pearson's correlation of the average ranks (ties share the mean of their ranks);
    NaN when there are fewer than two pairs or either side is constant.
    """
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    if len(x) < 2 or (x == x[0]).all() or (y == y[0]).all():
        return float("nan")
    ranked = np.column_stack([pd.Series(v).rank(method="average").to_numpy() for v in (x, y)])
    return float(np.corrcoef(ranked, rowvar=False)[1, 0])
