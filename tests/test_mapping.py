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
from geo_send.config import MapSettings

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


def _rebuild(geometry: _webenc.WebGeometry) -> list[shapely.Geometry]:
    """Decode the arcs and shapes in Python, as need_map.js does in the browser."""
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
                coords.append(np.array(out) / 10**_webenc.PRECISION)
            parts.append(shapely.Polygon(coords[0], coords[1:]))
        shapes.append(shapely.MultiPolygon(parts))
    return shapes


def _arc_ids(refs: list[int]) -> set[int]:
    return {r if r >= 0 else ~r for r in refs}


def test_shared_borders_are_stored_once():
    left, right = box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01)
    geometry = _webenc.encode_geometry(np.array([left, right]))
    # the shared edge, the rest of the left square and the rest of the right square
    assert geometry.n_arcs == 3
    assert geometry.n_vertices == 2 + 4 + 4
    shared = _arc_ids(geometry.refs[0][0][0]) & _arc_ids(geometry.refs[1][0][0])
    assert len(shared) == 1


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


def test_coverage_simplification_keeps_neighbours_touching():
    rng = np.random.default_rng(3)
    # two areas split by a wiggly border of 200 vertices
    xs = np.linspace(0, 1000, 200)
    border = np.column_stack([xs, 500 + rng.normal(0, 2, xs.size)])
    south = shapely.Polygon([(0, 0), (1000, 0), *border[::-1]])
    north = shapely.Polygon([*border, (1000, 1000), (0, 1000)])
    simple = _webenc.simplify(np.array([south, north]), 10.0)
    assert shapely.get_num_coordinates(simple).sum() < 100
    assert shapely.intersection(simple[0], simple[1]).area == pytest.approx(0, abs=1e-6)
    assert shapely.union(simple[0], simple[1]).area == pytest.approx(1e6, rel=1e-3)


# -- the map HTML --------------------------------------------------------------------------
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
