"""The interactive map's HTML text, classification and the compact web encodings.

Map tests assert on the rendered HTML with whitespace stripped (as geopandas' test_explore
does), never on byte-identical HTML; what the browser draws is in test_browser.py.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from numpy.testing import assert_allclose, assert_array_equal
from shapely.geometry import Point, box

from geo_send import _webenc, mapping
from geo_send._errors import ValidationError
from geo_send.config import MapSettings, default_root

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


def strip(text: str) -> str:
    return re.sub(r"\s+", "", text)


def map_data(html: str) -> dict:
    """Return the JSON the map carries for its runtime."""
    match = re.search(r'<script type="application/json" id="geo-send-data-\w+">(.*?)</script>',
                      html, re.S)
    assert match, "no map data in the HTML"
    return json.loads(match.group(1))


# -- classification ------------------------------------------------------------------------
def test_fisher_jenks_known_breaks():
    y = np.array([1, 2, 3, 10, 11, 12, 30, 31, 32], dtype=float)
    classes = mapping.classify(y, "FisherJenks", 3)
    assert_allclose(classes.bins, [3, 12, 32])
    assert_array_equal(classes.yb, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert_array_equal(classes.counts, [3, 3, 3])


def test_classify_keeps_missing_values_out():
    y = np.array([1.0, np.nan, 2.0, 9.0, 10.0])
    classes = mapping.classify(y, "FisherJenks", 2)
    assert classes.yb[1] == -1
    assert classes.counts.sum() == 4


def test_classify_uses_fewer_classes_than_distinct_values():
    classes = mapping.classify(np.array([1.0, 1.0, 2.0, 2.0]), "FisherJenks", 5)
    assert classes.k == 2
    assert mapping.classify(np.array([4.0, 4.0]), "Quantiles", 5).k == 1


def test_large_fisher_jenks_is_deterministic_and_covers_every_value():
    y = np.random.default_rng(7).gamma(2.0, size=5000)
    a = mapping.classify(y, "FisherJenks", 5)
    b = mapping.classify(y[::-1], "FisherJenks", 5)
    assert_allclose(a.bins, b.bins)
    assert a.bins[-1] == y.max()
    assert a.counts.sum() == y.size
    assert (np.diff(a.bins) > 0).all()


# -- encodings -----------------------------------------------------------------------------
def test_numbers_use_the_polyline_alphabet():
    # 0 -> '?', 1 -> zigzag 2 -> 'A', -1 -> zigzag 1 -> '@', 16 -> zigzag 32 -> '_@'
    assert _webenc.encode_numbers([0, 1, -1, 16], 0) == "?A@_@"
    assert _webenc.decode_integers(_webenc.encode_numbers([1.234, np.nan, -2.5], 2)) == [
        123, "!", -250]


def test_arcs_match_googles_encoded_polyline_example():
    # developers.google.com/maps/documentation/utilities/polylinealgorithm (lat, lng order)
    points = np.array([[3850000, -12020000], [4070000, -12095000], [4325200, -12645300]])
    assert _webenc._encode_arcs(points, np.array([2])) == "_p~iF~ps|U_ulLnnqC_mqNvxq`@"


def test_decimals_follow_the_typical_value():
    assert _webenc.decimals_for([0.5, 0.2, 0.9]) == 3
    assert _webenc.decimals_for([17.0, 23.4]) == 1
    assert _webenc.decimals_for([1234.0, 5678.0]) == 0
    assert _webenc.decimals_for([np.nan]) == 0


def test_repeated_strings_are_sent_once():
    encoded = _webenc.encode_strings(["Low-Low", "Not significant"] * 10)
    assert encoded["dict"] == ["Low-Low", "Not significant"]
    assert _webenc.decode_integers(encoded["codes"], zigzag=False) == [0, 1] * 10
    assert _webenc.encode_strings(["a", None, "c"]) == {"list": ["a", "", "c"]}


def _decode_arcs(geometry: _webenc.WebGeometry) -> list[list[tuple[int, int]]]:
    """Decode the arcs in Python, as need_map.js does in the browser (grid units)."""
    arcs: list[list[tuple[int, int]]] = [[]]
    x = y = 0
    values = _webenc.decode_integers(geometry.arcs)
    i = 0
    while i < len(values):
        if values[i] == ",":
            arcs.append([])
            i += 1
            continue
        x, y = x + values[i], y + values[i + 1]
        arcs[-1].append((x, y))
        i += 2
    return arcs


def _rebuild(geometry: _webenc.WebGeometry) -> list[shapely.Geometry]:
    """Decode the arcs and shapes in Python, as need_map.js does in the browser."""
    arcs = _decode_arcs(geometry)
    areas, polygons, rings, ring, previous = [], [], [], [], 0
    for token in _webenc.decode_integers(geometry.shapes, zigzag=False):
        if token == ",":
            rings.append(ring)
            ring = []
        elif token == ";":
            polygons.append(rings)
            rings = []
        elif token == "!":
            areas.append(polygons)
            polygons = []
        else:
            z = token >> 1
            previous += ~(z >> 1) if z & 1 else z >> 1
            ring.append(~previous if token & 1 else previous)
    assert areas == geometry.refs
    shapes = []
    for area in areas:
        parts = []
        for polygon in area:
            coords = []
            for refs in polygon:
                out: list[tuple[int, int]] = []
                for r in refs:
                    arc = arcs[r] if r >= 0 else arcs[~r][::-1]
                    out.extend(arc[1:] if out else arc)
                assert out[0] == out[-1], "a ring must close"
                coords.append(np.array(out) / 10**_webenc.PRECISION)
            parts.append(shapely.Polygon(coords[0], coords[1:]))
        shapes.append(shapely.MultiPolygon(parts))
    return shapes


def _rebuild_projected(geometry: _webenc.WebGeometry, crs: str) -> np.ndarray:
    """Decode, then project back to ``crs`` to compare with the input in metres."""
    return gpd.GeoSeries(_rebuild(geometry), crs="EPSG:4326").to_crs(crs).values


def _arc_ids(refs: list[int]) -> set[int]:
    return {r if r >= 0 else ~r for r in refs}


def _unordered(arc: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return min(tuple(arc), tuple(arc[::-1]))


BNG = "EPSG:27700"
X0, Y0 = 390_000.0, 298_000.0
"""A corner near Wolverhampton, in British National Grid metres."""
#: Largest error of a vertex snapped to 10**-5 degrees, in metres at England's latitudes.
SNAP_M = 0.7


def test_shared_borders_are_stored_once():
    left, right = box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01)
    geometry = _webenc.encode_geometry(np.array([left, right]))
    # the shared edge, the rest of the left square and the rest of the right square
    assert geometry.n_arcs == 3
    assert geometry.n_vertices == 2 + 4 + 4
    shared = _arc_ids(geometry.refs[0][0][0]) & _arc_ids(geometry.refs[1][0][0])
    assert len(shared) == 1


def test_two_by_two_grid_encodes_to_expected_arcs():
    # four squares of 0.01 degree around (0.01, 0.01): in grid units of 10**-5 degree,
    # 1000 is the middle. Junctions: the centre and the middle of each outer side.
    squares = [box(x, y, x + 0.01, y + 0.01) for x in (0, 0.01) for y in (0, 0.01)]
    geometry = _webenc.encode_geometry(np.array(squares))
    arcs = _decode_arcs(geometry)
    inner = [[(1000, 1000), end] for end in [(1000, 0), (0, 1000), (2000, 1000), (1000, 2000)]]
    outer = [
        [(1000, 0), (0, 0), (0, 1000)],
        [(0, 1000), (0, 2000), (1000, 2000)],
        [(1000, 2000), (2000, 2000), (2000, 1000)],
        [(2000, 1000), (2000, 0), (1000, 0)],
    ]
    assert sorted(map(_unordered, arcs)) == sorted(map(_unordered, inner + outer))
    assert (geometry.n_arcs, geometry.n_vertices) == (8, 20)
    uses: dict[int, list[int]] = {}
    for area in geometry.refs:
        (ring,) = area[0]
        assert len(ring) == 3  # two inner borders and one outer corner
        for r in ring:
            uses.setdefault(r if r >= 0 else ~r, []).append(r)
    inner_ids = {i for i, arc in enumerate(arcs) if len(arc) == 2}
    assert len(inner_ids) == 4 and len(uses) == 8
    for i, refs in uses.items():
        # each inner border is read forward by one square and backward by the other
        assert sorted(refs) == [~i, i] if i in inner_ids else len(refs) == 1
    assert geometry.bounds == pytest.approx((0, 0, 0.02, 0.02))


def test_geometry_round_trip_with_holes_enclaves_and_multipolygons():
    grid = [box(x, y, x + 0.01, y + 0.01) for x in np.arange(0, 0.05, 0.01)
            for y in np.arange(0, 0.04, 0.01)]
    hole = box(1.04, 1.04, 1.06, 1.06)
    outer = box(1, 1, 1.1, 1.1).difference(hole)
    islands = shapely.MultiPolygon([box(2, 2, 2.01, 2.01), box(2.02, 2, 2.03, 2.01)])
    geoms = np.array([*grid, outer, hole, islands], dtype=object)
    geometry = _webenc.encode_geometry(geoms)
    for original, rebuilt in zip(geoms, _rebuild(geometry), strict=True):
        assert shapely.equals(shapely.normalize(rebuilt), shapely.normalize(original))
    # the enclave and the hole around it share one closed arc
    assert _arc_ids(geometry.refs[-3][0][1]) == _arc_ids(geometry.refs[-2][0][0])


def _wiggly_pair(seed: int = 3) -> tuple[np.ndarray, float]:
    """Two 1 km squares split by a wiggly border of 200 vertices; the tolerance to use."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(0, 1000, 200)
    border = np.column_stack([xs, 500 + rng.normal(0, 2, xs.size)]) + [X0, Y0]
    south = shapely.Polygon([(X0, Y0), (X0 + 1000, Y0), *border[::-1]])
    north = shapely.Polygon([*border, (X0 + 1000, Y0 + 1000), (X0, Y0 + 1000)])
    return np.array([south, north]), 10.0


def test_a_simplified_border_is_shared_and_within_tolerance():
    geoms, tolerance = _wiggly_pair()
    geometry = _webenc.encode_geometry(geoms, crs=BNG, tolerance=tolerance)
    assert geometry.n_vertices < 100
    assert geometry.n_arcs == 3  # the border, the rest of each square
    south, north = _rebuild_projected(geometry, BNG)
    assert shapely.intersection(south, north).area == pytest.approx(0, abs=1e-3)
    assert shapely.union(south, north).area == pytest.approx(1e6, rel=1e-4)
    assert shapely.hausdorff_distance(south, geoms[0]) <= tolerance + SNAP_M
    assert shapely.hausdorff_distance(north, geoms[1]) <= tolerance + SNAP_M


def test_no_tolerance_keeps_every_vertex():
    geoms, _ = _wiggly_pair()
    geometry = _webenc.encode_geometry(geoms, crs=BNG, tolerance=0)
    assert geometry.n_vertices == 200 + 2 * 4  # the border once, each rest with its corners


def test_holes_and_multipolygons_survive_simplification():
    ring = shapely.Point(X0, Y0).buffer(500, quad_segs=64)
    hole = shapely.Point(X0, Y0).buffer(200, quad_segs=64)
    donut = ring.difference(hole)
    islands = shapely.MultiPolygon([shapely.Point(X0 + 1000 + 300 * i, Y0).buffer(100)
                                    for i in range(3)])
    geoms = np.array([donut, hole, islands])
    tolerance = 5.0
    geometry = _webenc.encode_geometry(geoms, crs=BNG, tolerance=tolerance)
    rebuilt = _rebuild_projected(geometry, BNG)
    assert geometry.n_vertices < shapely.get_num_coordinates(geoms).sum() / 2
    assert [len(area) for area in geometry.refs] == [1, 1, 3]
    assert [len(polygon) for polygon in geometry.refs[0]] == [2]  # exterior and hole
    assert shapely.is_valid(rebuilt).all()
    assert (shapely.hausdorff_distance(rebuilt, geoms) <= tolerance + SNAP_M).all()
    # the hole and the area filling it still meet exactly: no overlap, no gap
    assert shapely.intersection(rebuilt[0], rebuilt[1]).area == pytest.approx(0, abs=1e-3)
    assert shapely.get_num_interior_rings(shapely.union(rebuilt[0], rebuilt[1])) == 0


def _bump(island: shapely.Polygon) -> np.ndarray:
    """South and north of a border with a bump 8 m high, an island in the south below it."""
    border = [(X0, Y0), (X0 + 40, Y0), (X0 + 50, Y0 + 8), (X0 + 60, Y0), (X0 + 100, Y0)]
    south = shapely.Polygon([(X0, Y0 - 50), (X0 + 100, Y0 - 50), *border[::-1]],
                            [island.exterior.coords])
    north = shapely.Polygon([*border, (X0 + 100, Y0 + 50), (X0, Y0 + 50)])
    return np.array([south, north, island])


@pytest.mark.parametrize(
    "island",
    [box(X0 + 48, Y0 + 1, X0 + 52, Y0 + 3), box(X0 + 45, Y0 - 5, X0 + 55, Y0 + 3)],
    ids=["inside-the-bump", "across-the-chord"],
)
def test_simplification_keeps_a_border_that_would_pass_an_island(island):
    # a tolerance of 10 m would flatten the bump and leave the island north of the border
    geoms = _bump(island)
    assert shapely.is_valid(geoms).all()
    geometry = _webenc.encode_geometry(geoms, crs=BNG, tolerance=10.0)
    rebuilt = _rebuild_projected(geometry, BNG)
    assert shapely.is_valid(rebuilt).all()
    assert shapely.intersection(rebuilt[1], rebuilt[2]).area == pytest.approx(0, abs=1e-3)
    assert shapely.hausdorff_distance(rebuilt[1], geoms[1]) < 1.0


def test_simplification_keeps_a_thin_area_between_two_borders():
    # a lens 20 m wide between two areas: both its borders would flatten onto one line
    top = [(X0, Y0), (X0 + 50, Y0 + 10), (X0 + 100, Y0)]
    bottom = [(X0, Y0), (X0 + 50, Y0 - 10), (X0 + 100, Y0)]
    lens = shapely.Polygon([*top, *bottom[::-1][1:]])
    north = shapely.Polygon([*top, (X0 + 100, Y0 + 50), (X0, Y0 + 50)])
    south = shapely.Polygon([*bottom, (X0 + 100, Y0 - 50), (X0, Y0 - 50)])
    geoms = np.array([north, lens, south])
    geometry = _webenc.encode_geometry(geoms, crs=BNG, tolerance=20.0)
    rebuilt = _rebuild_projected(geometry, BNG)
    assert (shapely.hausdorff_distance(rebuilt, geoms) <= SNAP_M).all()
    assert shapely.is_valid(rebuilt).all()


def test_real_boundaries_decode_as_a_coverage():
    lsoas = gpd.read_file(default_root() / "boundaries" / "lsoas.gpkg", layer="lsoas")
    geoms = lsoas.geometry.values
    tolerance = _webenc.auto_tolerance(geoms)
    geometry = _webenc.encode_geometry(geoms, crs=lsoas.crs, tolerance=tolerance)
    rebuilt = _rebuild_projected(geometry, lsoas.crs)
    assert geometry.n_vertices < 0.6 * shapely.get_num_coordinates(geoms).sum()
    assert (shapely.hausdorff_distance(rebuilt, geoms) <= tolerance + SNAP_M).all()
    # neighbours meet without gaps or overlaps: they share their borders exactly
    assert shapely.coverage_is_valid(rebuilt)
    union = shapely.union_all(rebuilt)
    assert union.area == pytest.approx(shapely.area(rebuilt).sum(), rel=1e-9)
    assert shapely.get_num_interior_rings(union) == shapely.get_num_interior_rings(
        shapely.union_all(geoms))


def test_an_area_that_vanishes_when_snapped_is_reported():
    tiny = box(0.5, 0.5, 0.5 + 1e-7, 0.5 + 1e-7)
    with pytest.raises(ValueError, match=r"1 area\(s\) vanish .* \(positions \[1\]\)"):
        _webenc.encode_geometry(np.array([box(0, 0, 0.01, 0.01), tiny]))


# -- the map HTML --------------------------------------------------------------------------
def test_same_data_gives_the_same_file_and_other_data_another_map_id(wards_for_map):
    first = mapping.render_map(wards_for_map, title="Test")
    assert mapping.render_map(wards_for_map, title="Test") == first
    other = mapping.render_map(wards_for_map, title="Another title")
    ids = [set(re.findall(r"(?<![a-z_])map_([0-9a-f]{32})", h)) for h in (first, other)]
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1]


def test_map_is_self_contained(wards_for_map):
    html = mapping.render_map(wards_for_map, title="Test")
    flat = strip(html).lower()
    assert not re.search(r"<script[^>]*src=", flat)
    assert not re.search(r"<link[^>]*href=", flat)
    assert not re.search(r"url\((['\"])?https?:", flat)
    for library in ("jquery", "bootstrap", "font-awesome", "fontawesome", "d3.js", "d3.min.js",
                    "awesome-markers", "cdn."):
        assert library not in flat, library
    assert "leaflet1.9.4" in flat
    assert "sourcemappingurl" not in flat


def test_map_can_link_leaflet_from_a_cdn_instead(wards_for_map):
    html = mapping.render_map(wards_for_map, settings=MapSettings(self_contained=False))
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts == [f"{mapping.LEAFLET_CDN}/leaflet.js"]


def test_basemap_is_an_optional_overlay(wards_for_map):
    html = mapping.render_map(wards_for_map, settings=MapSettings(tiles=True))
    assert "Basemap (needs internet)" in html
    assert not re.search(r"<script[^>]*src=", html)
    assert "tile.openstreetmap.org" in html
    assert "tile.openstreetmap" not in mapping.render_map(wards_for_map)


def test_twenty_ward_map_is_small(wards_for_map):
    assert len(mapping.render_map(wards_for_map).encode("utf-8")) < 300_000


def test_map_carries_only_what_it_shows(wards_for_map):
    frame = wards_for_map.assign(secret_count=range(len(wards_for_map)))
    data = map_data(mapping.render_map(frame))
    assert "secret_count" not in data["columns"]
    assert {"ward_name", "ward_code", "rank", "rank_p05", "rank_p95", "need_index",
            "top_drivers", "lisa_label", "lisa_p", "gi_label"} <= set(data["columns"])


def test_default_layers_follow_the_columns(wards_for_map):
    layers = mapping.default_layers(wards_for_map, {"sen_support_pct": "SEN support %"})
    assert [x.column for x in layers] == [
        "need_index", "sen_support_pct", "lisa_label", "lisa_p", "gi_label"]
    assert [x.kind for x in layers][-3:] == ["categorical", "significance", "categorical"]
    bare = mapping.default_layers(wards_for_map.drop(columns=["lisa_label", "lisa_p", "gi_label"]))
    assert [x.column for x in bare] == ["need_index"]


def test_themes_legends_and_palettes(wards_for_map):
    layers = mapping.default_layers(
        wards_for_map, {"imd_score": "IMD"}, directions={"imd_score": -1})
    data = map_data(mapping.render_map(wards_for_map, layers))
    index, imd, lisa, significance, gi = data["themes"]
    assert len(index["classes"]) == len(wards_for_map)
    assert index["colors"] == mapping.palette(mapping.SEQUENTIAL, 5)
    assert imd["colors"] == mapping.palette(mapping.SEQUENTIAL_OTHER, 5)[::-1]
    assert sum(int(re.search(r"\((\d+)\)$", e["label"]).group(1)) for e in index["legend"]) == 20
    assert [e["label"].split(" (")[0] for e in lisa["legend"]] == list(mapping.LISA_COLORS)
    assert lisa["colors"][0] == "#d7191c" and lisa["colors"][1] == "#2c7bb6"
    assert significance["legend"][-1]["label"].startswith("Not significant")
    assert [e["label"].split(" (")[0] for e in gi["legend"]] == [
        "Hot spot 95%", "Not significant", "Cold spot 95%"]


def test_missing_values_get_a_no_data_class(wards_for_map):
    frame = wards_for_map.copy()
    frame.loc[frame.index[:2], "need_index"] = np.nan
    theme = map_data(mapping.render_map(frame))["themes"][0]
    assert theme["classes"][:2] == "  "
    assert theme["legend"][-1]["label"] == "No data (2)"


def test_tooltip_rows_carry_intervals(wards_for_map):
    layers = [mapping.MapLayer("need_index", "Need index"),
              mapping.MapLayer("sen_support_pct", "SEN support, %")]
    rows = map_data(mapping.render_map(wards_for_map, layers))["tooltip"]["rows"]
    assert rows[0] == {"label": "Rank (1 = most need)", "value": "rank", "kind": "rank", "of": 20,
                       "lo": "rank_p05", "hi": "rank_p95"}
    assert rows[2]["label"] == "Top drivers"
    assert rows[3]["lo"] == "sen_support_pct_lo" and rows[3]["hi"] == "sen_support_pct_hi"


def test_markup_in_names_and_labels_never_reaches_html_as_markup(wards_for_map):
    frame = wards_for_map.copy()
    frame.loc[frame.index[:2], "ward_name"] = HOSTILE
    layers = [mapping.MapLayer("need_index", "<b>Need</b> & index")]
    html = mapping.render_map(frame, layers, title="<i>Title</i>", subtitle=HOSTILE[1])
    for text in (*HOSTILE, "<b>Need</b>", "<i>Title</i>"):
        assert text not in html
    assert "<title>&lt;i&gt;Title&lt;/i&gt;</title>" in html
    # the layer control writes names as HTML: escaped once, then JSON-encoded for the script
    assert "\\u0026lt;b\\u0026gt;Need\\u0026lt;/b\\u0026gt; \\u0026amp; index" in html
    data = map_data(html)
    assert data["columns"]["ward_name"]["list"][:2] == HOSTILE  # JSON keeps the text as text


def test_map_does_not_change_its_input(wards_for_map):
    before = wards_for_map.copy()
    mapping.render_map(wards_for_map)
    pd.testing.assert_frame_equal(pd.DataFrame(wards_for_map), pd.DataFrame(before))


def test_labels_are_drawn_for_few_areas_only(wards_for_map):
    assert map_data(mapping.render_map(wards_for_map))["labels"] is not None
    assert map_data(mapping.render_map(wards_for_map, labels=False))["labels"] is None


def test_points_layer_for_hubs(wards_for_map):
    hubs = gpd.GeoDataFrame({"name": ["Hub <A>", "Hub B"]},
                            geometry=[Point(391_500, 299_500), Point(393_500, 300_500)],
                            crs="EPSG:27700")
    html = mapping.render_map(wards_for_map, points=hubs, points_radius_m=1500,
                              points_title="Proposed hubs")
    points = map_data(html)["points"]
    assert points["names"] == ["Hub <A>", "Hub B"]
    assert points["radius_m"] == 1500
    lat = [v / 1e5 for v in _webenc.decode_integers(points["lat"])]
    assert_allclose(lat, hubs.to_crs(4326).geometry.y, atol=1e-5)
    assert "Proposed hubs" in html


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="need_index"), "no column 'need_index'"),
        (lambda f: f.rename(columns={"need_index": "need_indx"}), "did you mean 'need_indx'"),
        (lambda f: f.set_crs(None, allow_override=True), "no CRS"),
        (lambda f: f.rename_axis("ward"), "index must be named like 'ward_code'"),
        (lambda f: f.assign(lisa_label="Hot"), "no colour for value"),
    ],
    ids=["missing-column", "close-match", "no-crs", "index-name", "unknown-lisa-label"],
)
def test_bad_input_is_reported(wards_for_map, change, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        mapping.render_map(change(wards_for_map))


def test_unknown_layer_kind_is_reported(wards_for_map):
    with pytest.raises(ValidationError, match="kind 'bubbles'"):
        mapping.render_map(wards_for_map, [mapping.MapLayer("need_index", "x", kind="bubbles")])
