"""Compact encodings for the web map: shared-border geometry, numbers and strings.

A choropleth of adjacent areas draws every internal border twice when each polygon carries
its own rings. Here the areas are simplified together (so neighbours keep a common border),
reprojected to WGS84, snapped to a grid of ``10**-PRECISION`` degrees and cut into *arcs*:
runs of border between junctions, each stored once and referenced by every ring that uses it
(the TopoJSON idea). Arcs, arc references and numeric columns are written as strings of
variable-length integers; ``need_map.js`` decodes them in the browser.

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
(where three areas meet, or where a shared border ends). Rings are cut at junctions; a ring
with none (an island, or an enclave and the hole around it) is one closed arc started at its
smallest vertex. An arc is referenced as ``i`` (forward) or ``~i`` (reversed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

__all__ = [
    "PRECISION",
    "WebGeometry",
    "auto_tolerance",
    "decimals_for",
    "encode_geometry",
    "encode_numbers",
    "encode_strings",
    "simplify",
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
    refs : list
        The same references as nested lists: per area, per polygon, per ring (exterior
        first), the arc references (kept for tests and diagnostics).
    n_arcs, n_vertices : int
        Number of distinct arcs and of vertices stored.
    """

    arcs: str
    shapes: str
    refs: list[list[list[list[int]]]]
    n_arcs: int
    n_vertices: int


# -- integers as text ----------------------------------------------------------------------
def _chars(z: np.ndarray) -> np.ndarray:
    """Write non-negative integers as chunk characters: a (n, 7) uint8 array, 0 = unused."""
    z = np.asarray(z, dtype=np.uint64)
    out = np.zeros((len(z), 7), dtype=np.uint8)
    for j in range(7):
        rest = z >> np.uint64(5 * j)
        used = (rest > 0) | (j == 0)
        more = (rest >> np.uint64(5)) > 0
        chunk = (rest & np.uint64(31)).astype(np.uint8) + np.where(more, 32, 0).astype(np.uint8)
        out[:, j] = np.where(used, chunk + 63, 0)
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


def simplify(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify polygons together so that shared borders stay shared.

    Uses ``shapely.coverage_simplify`` (GEOS ``CoverageSimplifier``: Visvalingam–Whyatt
    on the shared edges). An area that would become empty or invalid keeps its geometry.
    """
    geoms = np.asarray(geoms)
    if tolerance <= 0:
        return geoms
    out = shapely.coverage_simplify(geoms, tolerance)
    bad = shapely.is_empty(out) | ~shapely.is_valid(out)
    return np.where(bad, geoms, out) if bad.any() else out


def _snap(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Snap ring vertices to the grid; return vertices, ring starts/ends and ring ids."""
    parts, part_area = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    q = np.round(coords * 10**PRECISION).astype(np.int64)
    # drop each ring's closing vertex and the repeats that snapping makes
    closing = np.r_[coord_ring[1:] != coord_ring[:-1], True]
    repeat = np.r_[False, (q[1:] == q[:-1]).all(axis=1) & (coord_ring[1:] == coord_ring[:-1])]
    keep = ~closing & ~repeat
    q, coord_ring = q[keep], coord_ring[keep]
    while True:  # a ring may now end on its first vertex: drop that last vertex
        starts = np.r_[0, np.flatnonzero(coord_ring[1:] != coord_ring[:-1]) + 1].astype(np.int64)
        ends = np.r_[starts[1:], len(q)].astype(np.int64)
        wrap = (ends - starts > 1) & (q[ends - 1] == q[starts]).all(axis=1)
        if not wrap.any():
            break
        drop = np.zeros(len(q), bool)
        drop[ends[wrap] - 1] = True
        q, coord_ring = q[~drop], coord_ring[~drop]
    ring_ids = coord_ring[starts]
    meta = np.column_stack([ring_part, part_area[ring_part]])
    return q, np.column_stack([starts, ends, ring_ids]), meta, np.asarray(rings)


def encode_geometry(geoms_wgs84: np.ndarray) -> WebGeometry:
    """Quantise WGS84 polygons and encode them as shared arcs.

    Parameters
    ----------
    geoms_wgs84 : array of shapely Polygon or MultiPolygon
        Longitude/latitude degrees.

    Returns
    -------
    WebGeometry

    Raises
    ------
    ValueError
        If an area has no ring left with three distinct vertices after snapping.
    """
    geoms = np.asarray(geoms_wgs84)
    n = len(geoms)
    if n == 0:
        return WebGeometry(arcs="", shapes="", refs=[], n_arcs=0, n_vertices=0)
    q, ring_span, ring_meta, rings = _snap(geoms)
    starts, ends = ring_span[:, 0], ring_span[:, 1]

    key = q[:, 0] * (1 << 32) + (q[:, 1] + (1 << 31))
    length = np.repeat(ends - starts, ends - starts)
    base = np.repeat(starts, ends - starts)
    pos = np.arange(len(q)) - base
    prev_key = key[base + (pos - 1) % length]
    next_key = key[base + (pos + 1) % length]
    is_junction = _junctions(key, np.minimum(prev_key, next_key), np.maximum(prev_key, next_key))

    arc_ids: dict[bytes, int] = {}
    arc_list: list[np.ndarray] = []

    def ref(arc_keys: np.ndarray, arc_pts: np.ndarray) -> int:
        if arc_keys[0] != arc_keys[-1]:
            forward = bool(arc_keys[0] < arc_keys[-1])
        else:  # a closed arc: read it in the direction of its smaller second vertex
            forward = bool(arc_keys[1] <= arc_keys[-2])
        token = (arc_keys if forward else arc_keys[::-1]).tobytes()
        idx = arc_ids.get(token)
        if idx is None:
            idx = arc_ids[token] = len(arc_list)
            arc_list.append(arc_pts if forward else arc_pts[::-1])
        return idx if forward else ~idx

    ring_refs: dict[int, list[int]] = {}
    for s, e, r in ring_span.tolist():
        if e - s < 3:
            continue
        j = np.flatnonzero(is_junction[s:e])
        first = int(j[0]) if j.size else int(np.argmin(key[s:e]))
        order = np.arange(first, first + e - s + 1) % (e - s) + s  # rotated and closed
        k, p = key[order], q[order]
        cuts = [0, *(j[1:] - first).tolist(), e - s] if j.size else [0, e - s]
        spans = zip(cuts[:-1], cuts[1:], strict=True)
        ring_refs[r] = [ref(k[a : b + 1], p[a : b + 1]) for a, b in spans]

    # rings -> polygons -> areas; a polygon whose exterior vanished goes with its holes
    refs: list[list[list[list[int]]]] = [[] for _ in range(n)]
    current: list[list[int]] | None = None
    for r in range(len(rings)):
        part, area = ring_meta[r]
        ring = ring_refs.get(r)
        if r == 0 or ring_meta[r - 1][0] != part:  # exterior ring
            current = [ring] if ring is not None else None
            if current is not None:
                refs[int(area)].append(current)
        elif ring is not None and current is not None:
            current.append(ring)
    empty = [i for i, shape in enumerate(refs) if not shape]
    if empty:
        raise ValueError(
            f"{len(empty)} area(s) vanish when snapped to {10**-PRECISION} degrees "
            f"(positions {empty[:5]})"
        )

    vertices = np.vstack(arc_list) if arc_list else np.zeros((0, 2), np.int64)
    return WebGeometry(
        arcs=_encode_arcs(vertices, np.cumsum([len(a) for a in arc_list]) - 1),
        shapes=_encode_refs(refs),
        refs=refs,
        n_arcs=len(arc_list),
        n_vertices=len(vertices),
    )


def _junctions(key: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Flag vertices met with more than one distinct neighbour pair ``(lo, hi)``."""
    order = np.lexsort((hi, lo, key))
    k, a, b = key[order], lo[order], hi[order]
    new_key = np.r_[True, k[1:] != k[:-1]]
    new_pair = new_key | np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
    group = np.cumsum(new_key) - 1
    pairs = np.bincount(group, weights=new_pair)
    out = np.empty(len(key), dtype=bool)
    out[order] = pairs[group] > 1
    return out


def _encode_arcs(vertices: np.ndarray, arc_ends: np.ndarray) -> str:
    if len(vertices) == 0:
        return ""
    deltas = np.diff(vertices, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    mark = np.zeros((len(vertices), 1), np.uint8)
    mark[arc_ends[:-1]] = ord(",")
    return _join(np.hstack([_chars(_zigzag(deltas[:, 0])), _chars(_zigzag(deltas[:, 1])), mark]))


def _encode_refs(refs: list[list[list[list[int]]]]) -> str:
    flat: list[int] = []
    marks: list[int] = []
    for shape in refs:
        for p, polygon in enumerate(shape):
            for r, ring in enumerate(polygon):
                flat.extend(ring)
                marks.extend([0] * (len(ring) - 1))
                last_ring = r == len(polygon) - 1
                last_polygon = p == len(shape) - 1
                marks.append(1 + last_ring + (last_ring and last_polygon))
    a = np.asarray(flat, dtype=np.int64)
    reversed_ = a < 0
    index = np.where(reversed_, ~a, a)
    delta = np.diff(index, prepend=0)
    z = (_zigzag(delta) << np.uint64(1)) | reversed_.astype(np.uint64)
    tail = np.zeros((len(a), 3), np.uint8)
    m = np.asarray(marks)
    tail[m >= 1, 0] = ord(",")
    tail[m >= 2, 1] = ord(";")
    tail[m >= 3, 2] = ord("!")
    return _join(np.hstack([_chars(z), tail]))
