"""Compact encodings for the web map: shared-border geometry, numbers and strings.

A choropleth of adjacent areas draws every internal border twice when each polygon carries
its own rings. Here the rings are cut into *arcs*: runs of border between junctions, each
stored once and referenced by every ring that uses it (the TopoJSON idea). Each arc is
simplified once, so the two areas along a border keep the same line and no gap or overlap
opens between them; the kept vertices are reprojected to WGS84 and snapped to a grid of
``10**-PRECISION`` degrees. Arcs, arc references and numeric columns are written as strings
of variable-length integers; ``need_map.js`` decodes them in the browser.

Notes
-----
Integers use the "encoded polyline" alphabet: a signed ``v`` is zig-zag mapped to
``z = 2v`` (``v >= 0``) or ``z = -2v - 1`` (``v < 0``) and written least significant first
in 5-bit chunks, each chunk ``c`` as ``chr(c + 63)`` with ``0x20`` added to every chunk but
the last. Those characters lie in ``?``..``~``, so characters below ``?`` can mark structure:

- arcs: one string of vertex deltas ``(dx, dy)`` running across all arcs, ``,`` after each
  arc but the last;
- shapes: per arc reference, ``zigzag(index - previous index) * 2 + reversed``; ``,`` ends a
  ring, ``;`` a polygon, ``!`` an area;
- numbers: ``zigzag(round(x * 10**d))`` per value, ``!`` for a missing value.

A vertex is a *junction* when it is met with different neighbour pairs in different rings
(where three areas meet, or where a shared border ends); vertices are compared on a grid of
``SNAP_UNITS`` in the input CRS. Rings are cut at junctions; a ring with none (an island, or
an enclave and the hole around it) is one closed arc started at its smallest vertex. An arc
is referenced as ``i`` (forward) or ``~i`` (reversed).

Arcs are simplified with Douglas–Peucker, each once, their ends kept; an arc keeps all its
vertices where simplifying it would change the topology (see :func:`_simplify_arcs`), the
checks GEOS's topology-preserving simplifier makes.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

__all__ = [
    "PRECISION",
    "WebGeometry",
    "auto_tolerance",
    "decimals_for",
    "encode_geometry",
    "encode_numbers",
    "encode_strings",
]

PRECISION = 5
"""Decimal places kept in WGS84 degrees: ``1e-5`` degree is about 1.1 m north–south."""

PIXELS_PER_AREA = 256
"""Screen size (pixels across) of a median area at the zoom the tolerance is chosen for."""

SIGNIFICANT_DIGITS = 3
"""Significant figures shown for a typical value of a numeric column."""


@dataclass(frozen=True)
class WebGeometry:
    """Encoded geometry of a set of areas, in the order given.

    Attributes
    ----------
    arcs : str
        Every arc, delta-encoded as one string.
    shapes : str
        Arc references of each area's rings, encoded as one string.
    n_arcs, n_vertices : int
        Number of distinct arcs and of vertices stored.
    bounds : tuple of float
        West, south, east and north of the vertices stored, in degrees.
    refs : list
        The references of ``shapes`` as nested lists: per area, per polygon, per ring
        (exterior first), the arc references (for tests and diagnostics).
    """

    arcs: str
    shapes: str
    n_arcs: int
    n_vertices: int
    bounds: tuple[float, float, float, float]
    _refs: np.ndarray = field(repr=False)
    _ring_ends: np.ndarray = field(repr=False)

    @property
    def refs(self) -> list[list[list[list[int]]]]:
        """Arc references per area, per polygon, per ring (built on each access)."""
        areas: list[list[list[list[int]]]] = []
        polygons: list[list[list[int]]] = []
        rings: list[list[int]] = []
        ring: list[int] = []
        for r, (end_ring, end_polygon, end_area) in zip(
            self._refs.tolist(), self._ring_ends.tolist(), strict=True
        ):
            ring.append(r)
            if end_ring:
                rings.append(ring)
                ring = []
            if end_polygon:
                polygons.append(rings)
                rings = []
            if end_area:
                areas.append(polygons)
                polygons = []
        return areas


# -- integers as text ----------------------------------------------------------------------
def _chars(z: np.ndarray) -> np.ndarray:
    """Write non-negative integers as chunk characters: an (n, width) uint8 array, 0 = unused.

    ``width`` is the number of chunks of the largest integer; each round works only on the
    integers that still have chunks to write.
    """
    z = np.asarray(z, dtype=np.uint64)
    top = int(z.max()) if len(z) else 0
    out = np.zeros((len(z), max(1, -(-top.bit_length() // 5))), dtype=np.uint8)
    at = np.arange(len(z))
    for j in range(out.shape[1]):
        more = z >= 32
        out[at, j] = (z & np.uint64(31)).astype(np.uint8) + np.uint8(63) + (
            more.astype(np.uint8) << np.uint8(5))
        at, z = at[more], z[more] >> np.uint64(5)
    return out


def _zigzag(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    return np.where(v < 0, ~(v << 1), v << 1).astype(np.uint64)


def _join(chars: np.ndarray) -> str:
    flat = chars.ravel()
    return flat[flat > 0].tobytes().decode("ascii")


def decode_integers(text: str, *, zigzag: bool = True) -> list[int | str]:
    """Decode a string of integers, passing marks (``,;!``) through (the encoders' inverse)."""
    out: list[int | str] = []
    i = 0
    while i < len(text):
        if text[i] < "?":
            out.append(text[i])
            i += 1
            continue
        result = shift = 0
        while True:
            b = ord(text[i]) - 63
            i += 1
            result |= (b & 31) << shift
            shift += 5
            if b < 32:
                break
        if zigzag:
            result = ~(result >> 1) if result & 1 else result >> 1
        out.append(result)
    return out


# -- numbers and strings -------------------------------------------------------------------
def decimals_for(values: pd.Series | np.ndarray) -> int:
    """Decimal places that show a typical value of a column to ``SIGNIFICANT_DIGITS``.

    The typical value is the median absolute non-zero value; the result is between 0 and 4.
    """
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return 0
    magnitude = math.floor(math.log10(float(np.median(v))))
    return int(np.clip(SIGNIFICANT_DIGITS - 1 - magnitude, 0, 4))


def encode_numbers(values: pd.Series | np.ndarray, decimals: int) -> str:
    """Encode numbers rounded to ``decimals`` places; missing values become ``!``."""
    v = np.asarray(values, dtype=float)
    missing = ~np.isfinite(v)
    scaled = np.round(np.where(missing, 0.0, v) * 10**decimals).astype(np.int64)
    chars = _chars(_zigzag(scaled))
    chars[missing] = 0
    chars[missing, 0] = ord("!")
    return _join(chars)


def encode_strings(values: pd.Series | Sequence[object]) -> dict[str, object]:
    """Encode a text column: a plain list, or a dictionary of distinct values and codes.

    Missing values become empty strings. Columns that repeat values (fewer distinct values
    than half the rows) are sent as ``{"dict": [...], "codes": "..."}``, otherwise as
    ``{"list": [...]}``.
    """
    s = pd.Series(list(values), dtype=object).map(lambda x: "" if _is_missing(x) else str(x))
    uniques = pd.unique(s)
    if len(s) > 8 and len(uniques) * 2 < len(s):
        lookup = {u: i for i, u in enumerate(uniques)}
        codes = s.map(lookup).to_numpy(dtype=np.int64)
        return {"dict": [str(u) for u in uniques], "codes": _join(_chars(codes))}
    return {"list": s.tolist()}


def _is_missing(x: object) -> bool:
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


# -- geometry ------------------------------------------------------------------------------
SNAP_UNITS = 1e-3
"""Vertices closer than this many units of a projected CRS (a millimetre) are one vertex."""

SNAP_DEGREES = 1e-8
"""The same for longitude/latitude input (about a millimetre)."""

SEGMENT_TRIM = 1e-6
"""Fraction of a simplified segment left out at each end when testing it against other arcs."""


def auto_tolerance(geoms: np.ndarray) -> float:
    """Return a simplification tolerance in metres for projected polygons.

    The tolerance is the ground size of one screen pixel at the zoom where an area of median
    size spans ``PIXELS_PER_AREA`` pixels, kept between 1 m and 50 m.
    """
    areas = shapely.area(np.asarray(geoms))
    areas = areas[areas > 0]
    if areas.size == 0:
        return 1.0
    return float(np.clip(np.sqrt(np.median(areas)) / PIXELS_PER_AREA, 1.0, 50.0))


@functools.lru_cache(maxsize=8)
def _to_wgs84(crs: pyproj.CRS) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector.

    The geometry steps make hundreds of thousands of short-lived shapely objects, which
    hold no reference cycles but make the collector sweep the whole heap again and again
    (about a quarter of the encoding time for England's LSOAs).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class _Rings:
    """Ring vertices with the closing vertex and repeats dropped; rings of < 3 vertices gone."""

    coords: np.ndarray  # (n, 2) float, ring after ring
    key: np.ndarray  # (n,) int64, the vertex snapped to the detection grid
    starts: np.ndarray  # (r,) first vertex of each ring kept
    lengths: np.ndarray  # (r,) vertices in each ring kept
    ring_ids: np.ndarray  # (r,) position of each ring kept among all rings
    ring_part: np.ndarray  # (all rings,) polygon of every ring, exterior first
    part_area: np.ndarray  # (polygons,) area of every polygon


def _rings(geoms: np.ndarray, grid: float) -> _Rings:
    parts, part_area = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    key = np.zeros(len(coords), np.int64)
    if len(coords):  # a key per vertex: its grid column and row
        x, y = coords[:, 0], coords[:, 1]
        x0, y0 = x.min(), y.min()
        grid = max(grid, float(max(x.max() - x0, y.max() - y0)) / 2**30)
        key = np.round((x - x0) / grid).astype(np.int64) << 31
        key |= np.round((y - y0) / grid).astype(np.int64)
    # drop each ring's closing vertex and repeated vertices
    closing = np.r_[coord_ring[1:] != coord_ring[:-1], True]
    repeat = np.r_[False, (key[1:] == key[:-1]) & (coord_ring[1:] == coord_ring[:-1])]
    keep = ~closing & ~repeat
    coords, key, coord_ring = coords[keep], key[keep], coord_ring[keep]
    while True:  # a ring may now end on its first vertex: drop that last vertex
        starts = np.flatnonzero(np.r_[True, coord_ring[1:] != coord_ring[:-1]])[: len(key)]
        ends = np.r_[starts[1:], len(key)].astype(np.int64)
        wrap = (ends - starts > 1) & (key[ends - 1] == key[starts])
        if not wrap.any():
            break
        keep = np.ones(len(key), bool)
        keep[ends[wrap] - 1] = False
        coords, key, coord_ring = coords[keep], key[keep], coord_ring[keep]
    lengths = ends - starts
    small = np.repeat(lengths < 3, lengths)
    if small.any():  # a ring of fewer than three vertices encloses nothing
        coords, key, coord_ring = coords[~small], key[~small], coord_ring[~small]
        starts = np.flatnonzero(np.r_[True, coord_ring[1:] != coord_ring[:-1]])[: len(key)]
        lengths = np.r_[starts[1:], len(key)] - starts
    return _Rings(coords, key, starts.astype(np.int64), lengths.astype(np.int64),
                  coord_ring[starts], ring_part, part_area)


@dataclass(frozen=True)
class _Topology:
    """Shared arcs of a set of rings (before simplification)."""

    coords: np.ndarray  # (n, 2) float, the vertices of every arc, arc after arc
    offsets: np.ndarray  # (arcs + 1,) where each arc starts in ``coords``
    refs: np.ndarray  # arc references (``i`` or ``~i``), ring after ring
    ref_ring: np.ndarray  # (refs,) position among all rings of the ring using each reference


def _topology(rings: _Rings) -> _Topology:
    """Cut rings into arcs at junctions and store each arc once."""
    key, starts, lengths = rings.key, rings.starts, rings.lengths
    n, n_rings = len(key), len(starts)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return _Topology(np.zeros((0, 2)), np.zeros(1, np.int64), empty, empty)
    # distinct vertices, numbered in order of first appearance
    vid, distinct = pd.factorize(key)
    n_v = len(distinct)
    vertex_xy = np.empty((n_v, 2))
    vertex_xy[vid] = rings.coords  # one position for each vertex, whichever occurrence

    # junctions: distinct vertices met with more than one pair of neighbours
    base = np.repeat(starts, lengths)
    length = np.repeat(lengths, lengths)
    pos = np.arange(n) - base
    prev = vid[base + (pos - 1) % length]
    after = vid[base + (pos + 1) % length]
    pair = np.minimum(prev, after) * n_v + np.maximum(prev, after)
    low = np.full(n_v, np.iinfo(np.int64).max)
    high = np.full(n_v, -1)
    np.minimum.at(low, vid, pair)
    np.maximum.at(high, vid, pair)
    junction = low != high

    # each ring starts at its first junction, or at its smallest vertex when it has none
    ring_of = np.repeat(np.arange(n_rings), lengths)
    offset = np.empty(n_rings, np.int64)
    smallest = vid == np.minimum.reduceat(vid, starts)[ring_of]
    for flags in (smallest, junction[vid]):  # junctions win
        at = np.flatnonzero(flags)
        lead = at[np.diff(ring_of[at], prepend=-1) != 0]
        offset[ring_of[lead]] = lead - starts[ring_of[lead]]
    closed = lengths + 1  # each ring ends on its first vertex again
    seq_ring = np.repeat(np.arange(n_rings), closed)
    local = np.arange(closed.sum()) - np.repeat(np.cumsum(closed) - closed, closed)
    seq = vid[np.repeat(starts, closed)
              + (np.repeat(offset, closed) + local) % np.repeat(lengths, closed)]

    # arcs run from one cut (junction, ring start or ring end) to the next
    ring_end = local == np.repeat(lengths, closed)
    cuts = np.flatnonzero(junction[seq] | (local == 0) | ring_end)
    head = ~ring_end[cuts[:-1]]
    a, b = cuts[:-1][head], cuts[1:][head]
    va, vb, va1, vb1 = seq[a], seq[b], seq[a + 1], seq[b - 1]
    forward = (va < vb) | ((va == vb) & (va1 <= vb1))
    # an arc is known by its first two vertices read forward: its inner vertices are not
    # junctions, so each has a single pair of neighbours and the rest of the arc follows
    ident = np.where(forward, va * n_v + va1, vb * n_v + vb1)
    _, first_use, inverse = np.unique(ident, return_index=True, return_inverse=True)
    rank = np.argsort(first_use)  # arcs are numbered in order of first use
    number = np.empty_like(rank)
    number[rank] = np.arange(len(rank))
    arc = number[inverse]
    rep = first_use[rank]
    ra, rb, rf = a[rep], b[rep], forward[rep]
    size = rb - ra + 1
    offsets = np.r_[0, np.cumsum(size)]
    step = np.arange(offsets[-1]) - np.repeat(offsets[:-1], size)
    at = np.where(np.repeat(rf, size), np.repeat(ra, size) + step, np.repeat(rb, size) - step)
    return _Topology(
        coords=vertex_xy[seq[at]],
        offsets=offsets,
        refs=np.where(forward, arc, ~arc),
        ref_ring=rings.ring_ids[seq_ring[a]],
    )


def _simplify_arcs(topo: _Topology, tolerance: float) -> np.ndarray:
    """Flag the arc vertices kept when each arc is simplified once (Douglas–Peucker).

    Arc ends are always kept, so neighbours stay joined. An arc keeps all its vertices when
    its ring would be left with fewer than three, when it would cross itself, or when a
    segment drawn across removed vertices would meet another arc (what a topology-preserving
    simplifier avoids). Those segments are tested without the last ``SEGMENT_TRIM`` of their
    length at either end, where they meet their neighbours at junctions.
    """
    n = len(topo.coords)
    if tolerance <= 0 or n == 0:
        return np.ones(n, bool)
    size = np.diff(topo.offsets)
    arc_of = np.repeat(np.arange(len(size)), size)
    lines = shapely.linestrings(topo.coords[:, 0], topo.coords[:, 1], np.arange(n, dtype=float),
                                indices=arc_of)
    simple = shapely.simplify(lines, tolerance, preserve_topology=False)
    keep = np.zeros(n, bool)
    keep[shapely.get_coordinates(simple, include_z=True)[:, 2].astype(np.int64)] = True
    keep[topo.offsets[:-1]] = keep[topo.offsets[1:] - 1] = True
    kept = np.add.reduceat(keep, topo.offsets[:-1])
    changed = kept < size
    arc = np.where(topo.refs < 0, ~topo.refs, topo.refs)
    ring_size = np.bincount(topo.ref_ring, weights=kept[arc] - 1)
    changed[arc[ring_size[topo.ref_ring] < 3]] = False
    changed[changed] = shapely.is_simple(simple[changed])

    # the new segments, each drawn between two kept vertices with removed ones between
    at = np.flatnonzero(keep & changed[arc_of])
    new = np.flatnonzero((np.diff(at) > 1) & (arc_of[at[1:]] == arc_of[at[:-1]]))
    start, end = at[new], at[new + 1]
    seg_arc = arc_of[start]

    # no other arc may lie between a segment and the vertices it replaces (it would jump to
    # the other side): test one point of each arc, the middle of its first segment
    chain = end - start + 1
    regions = shapely.polygons(shapely.linearrings(
        topo.coords[np.repeat(start, chain) + np.arange(chain.sum())
                    - np.repeat(np.cumsum(chain) - chain, chain)],
        indices=np.repeat(np.arange(len(start)), chain),
    ))
    first = topo.offsets[:-1]
    probes = shapely.points((topo.coords[first] + topo.coords[first + 1]) / 2)
    region, probe = shapely.STRtree(regions).query(probes, predicate="within")[::-1]
    changed[seg_arc[region[seg_arc[region] != probe]]] = False

    p, q = topo.coords[start], topo.coords[end]
    trim = SEGMENT_TRIM * (q - p)
    segments = shapely.linestrings(np.stack([p + trim, q - trim], axis=1))
    seg, other = shapely.STRtree(np.where(changed, simple, lines)).query(
        segments, predicate="intersects")
    seg_tree = shapely.STRtree(segments)
    while True:
        hit = (seg_arc[seg] != other) & changed[seg_arc[seg]]
        restore = np.union1d(seg_arc[seg[hit]], other[hit])
        restore = restore[changed[restore]]
        if not restore.size:
            break
        changed[restore] = False
        # restored arcs are drawn in full again: test them against the other new segments
        other, seg = seg_tree.query(lines[restore], predicate="intersects")
        other = restore[other]
    keep |= ~changed[arc_of]
    return keep


def encode_geometry(geoms: np.ndarray, *, crs: Any = None, tolerance: float = 0.0) -> WebGeometry:
    """Encode polygons as shared arcs, simplified and quantised in WGS84 degrees.

    Parameters
    ----------
    geoms : array of shapely Polygon or MultiPolygon
        The areas, in ``crs``.
    crs : pyproj.CRS or str, optional
        The CRS of ``geoms``; None when they are already longitude/latitude degrees.
    tolerance : float
        Douglas–Peucker tolerance in the units of ``crs`` (metres); 0 keeps every vertex.

    Returns
    -------
    WebGeometry

    Raises
    ------
    ValueError
        If an area has no ring left with three distinct vertices after snapping.

    Notes
    -----
    Steps: vertices within ``SNAP_UNITS`` (``SNAP_DEGREES``) are merged; rings are cut into
    arcs at junctions and each arc is kept once; each arc is simplified once
    (:func:`_simplify_arcs`); only the kept vertices are reprojected, then snapped to
    ``10**-PRECISION`` degrees and repeats dropped; arcs that shrink to a point are
    skipped, rings left with fewer than three vertices dropped (a polygon goes with its
    exterior ring).
    """
    geoms = np.asarray(geoms)
    n = len(geoms)
    if n == 0:
        return WebGeometry(arcs="", shapes="", n_arcs=0, n_vertices=0,
                           bounds=(0.0, 0.0, 0.0, 0.0), _refs=np.zeros(0, np.int64),
                           _ring_ends=np.zeros((0, 3), bool))
    with _collector_paused():
        rings = _rings(geoms, SNAP_DEGREES if crs is None else SNAP_UNITS)
        topo = _topology(rings)
        keep = _simplify_arcs(topo, tolerance)
    size = np.add.reduceat(keep, topo.offsets[:-1]) if len(keep) else np.zeros(0, np.int64)
    xy = topo.coords[keep]
    if crs is not None and len(xy):
        xy = np.column_stack(_to_wgs84(pyproj.CRS(crs)).transform(xy[:, 0], xy[:, 1]))
    q = np.round(xy * 10**PRECISION).astype(np.int64)
    arc_of = np.repeat(np.arange(len(size)), size)
    same = (q[1:, 0] == q[:-1, 0]) & (q[1:, 1] == q[:-1, 1]) & (arc_of[1:] == arc_of[:-1])
    repeat = np.r_[False, same]
    q, arc_of = q[~repeat], arc_of[~repeat]
    size = np.bincount(arc_of, minlength=len(size))

    # rings keep their arcs that are more than a point; a ring needs three vertices
    refs, ref_ring = topo.refs, topo.ref_ring
    arc = np.where(refs < 0, ~refs, refs)
    live = size[arc] > 1
    refs, ref_ring, arc = refs[live], ref_ring[live], arc[live]
    n_rings = len(rings.ring_part)
    ring_ok = np.bincount(ref_ring, weights=size[arc] - 1, minlength=n_rings) >= 3
    exterior = np.diff(rings.ring_part, prepend=-1) != 0
    part_ok = np.zeros(len(rings.part_area), bool)
    part_ok[rings.ring_part[exterior]] = ring_ok[exterior]
    ring_ok &= part_ok[rings.ring_part]
    ring_area = rings.part_area[rings.ring_part]
    shown = np.zeros(n, bool)
    shown[ring_area[ring_ok]] = True
    if not shown.all():
        empty = np.flatnonzero(~shown)
        raise ValueError(
            f"{len(empty)} area(s) vanish when snapped to {10**-PRECISION} degrees "
            f"(positions {empty[:5].tolist()})"
        )
    used = ring_ok[ref_ring]
    refs, ref_ring, arc = refs[used], ref_ring[used], arc[used]

    # renumber the arcs still used, in order of first use as before
    wanted = np.zeros(len(size), bool)
    wanted[arc] = True
    number = np.cumsum(wanted) - 1
    refs = np.where(refs < 0, ~number[arc], number[arc])
    vertices = q[wanted[arc_of]]
    arc_ends = np.cumsum(size[wanted]) - 1

    # ring, polygon and area ends
    kept_rings = np.flatnonzero(ring_ok)
    part = rings.ring_part[kept_rings]
    area = ring_area[kept_rings]
    ring_last = np.r_[ref_ring[1:] != ref_ring[:-1], True]
    ends = np.column_stack([
        np.ones(len(kept_rings), bool),
        np.r_[part[1:] != part[:-1], True],
        np.r_[area[1:] != area[:-1], True],
    ])
    marks = np.zeros((len(refs), 3), bool)
    marks[ring_last] = ends
    west, east = vertices[:, 0].min() / 10**PRECISION, vertices[:, 0].max() / 10**PRECISION
    south, north = vertices[:, 1].min() / 10**PRECISION, vertices[:, 1].max() / 10**PRECISION
    return WebGeometry(
        arcs=_encode_arcs(vertices, arc_ends),
        shapes=_encode_shapes(refs, marks),
        n_arcs=int(wanted.sum()),
        n_vertices=len(vertices),
        bounds=(float(west), float(south), float(east), float(north)),
        _refs=refs,
        _ring_ends=marks,
    )


def _encode_arcs(vertices: np.ndarray, arc_ends: np.ndarray) -> str:
    if len(vertices) == 0:
        return ""
    deltas = np.diff(vertices, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    mark = np.zeros((len(vertices), 1), np.uint8)
    mark[arc_ends[:-1]] = ord(",")
    return _join(np.hstack([_chars(_zigzag(deltas[:, 0])), _chars(_zigzag(deltas[:, 1])), mark]))


def _encode_shapes(refs: np.ndarray, marks: np.ndarray) -> str:
    """Arc references, each followed by its ring/polygon/area end marks (``,;!``)."""
    reversed_ = refs < 0
    index = np.where(reversed_, ~refs, refs)
    delta = np.diff(index, prepend=0)
    z = (_zigzag(delta) << np.uint64(1)) | reversed_.astype(np.uint64)
    tail = marks * np.array([ord(","), ord(";"), ord("!")], np.uint8)
    return _join(np.hstack([_chars(z), tail.astype(np.uint8)]))
