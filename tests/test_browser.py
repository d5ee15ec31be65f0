"""The map and the report in real headless Chromium, opened from file:// with no network.

Each test fails on a console error or on any request that is not ``file:`` or ``data:``.
Screenshots go to the test's tmp folder and, from a checkout, to outputs/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point

from geo_send import figures, mapping, report
from geo_send.config import Config

pytestmark = pytest.mark.browser

HOSTILE = ['<script>window.__pwned = 1</script>', '<img src=x onerror="window.__pwned = 2">']
WAIT_MS = 30_000


def save(tmp_path: Path, name: str, html: str) -> Path:
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    return path


def wait_for_map(seen) -> None:
    seen.page.wait_for_function("window.geoSend && window.geoSend.active", timeout=WAIT_MS)


def drawn_areas(seen) -> dict:
    """Return what Leaflet holds and draws: shapes in the area layer, on the canvas, codes."""
    return seen.page.evaluate(
        """() => {
          const g = window.geoSend, shapes = g.areas.getLayers();
          const renderer = g.map.getRenderer(shapes[0]);
          return {
            shapes: shapes.length,
            onCanvas: renderer instanceof L.Canvas,
            drawn: shapes.filter(
              s => s._map && renderer._layers[L.stamp(s)] && s._parts.length).length,
            codes: shapes.map(s => g.columns[g.data.tooltip.code][s.feature.id]),
          };
        }"""
    )


def hover(seen, index: int) -> str:
    """Move the mouse onto area ``index`` (its label point) and return the tooltip text."""
    x, y = seen.page.evaluate(
        """(i) => {
          const g = window.geoSend;
          const c = g.data.labels;
          const p = g.map.latLngToContainerPoint([g.columns[c.lat][i], g.columns[c.lng][i]]);
          const box = g.map.getContainer().getBoundingClientRect();
          return [box.left + p.x, box.top + p.y];
        }""",
        index,
    )
    seen.page.mouse.move(x - 5, y - 5)
    seen.page.mouse.move(x, y)
    tip = seen.page.locator(".leaflet-tooltip.gs-tooltip")
    tip.wait_for(timeout=WAIT_MS)
    return tip.inner_text()


def assert_clean(seen) -> None:
    assert seen.errors == []
    assert seen.blocked == []
    assert seen.dialogs == []


def test_map_draws_one_shape_per_ward_offline(wards_for_map, tmp_path, open_offline, screenshot):
    layers = mapping.default_layers(wards_for_map, {"sen_support_pct": "SEN support, %"})
    path = save(tmp_path, "need_map.html",
                mapping.render_map(wards_for_map, layers, title="Synthetic wards"))
    seen = open_offline(path)
    wait_for_map(seen)
    drawn = drawn_areas(seen)
    assert drawn["shapes"] == len(wards_for_map)
    assert drawn["drawn"] == len(wards_for_map)
    assert drawn["onCanvas"]
    assert sorted(drawn["codes"]) == sorted(wards_for_map.index)
    legend = seen.page.locator(".gs-legend").inner_text()
    assert "Need index" in legend and "(" in legend
    labels = seen.page.locator(".leaflet-tooltip.gs-label")
    assert labels.count() == len(wards_for_map)
    screenshot(seen, "need_map_synthetic.png")
    assert_clean(seen)


def test_hover_shows_name_rank_and_interval(wards_for_map, tmp_path, open_offline):
    layers = mapping.default_layers(wards_for_map, {"sen_support_pct": "SEN support, %"})
    seen = open_offline(save(tmp_path, "m.html", mapping.render_map(wards_for_map, layers)))
    wait_for_map(seen)
    i = 7  # "Ward 8": need rank 13 of 20, interval 11 to 15
    text = hover(seen, i)
    assert "Ward 8" in text
    assert "E05900008" in text
    assert re.search(r"Rank \(1 = most need\)\s+13 of 20 \(90% range 11–15\)", text)
    assert re.search(r"SEN support, %\s+12\.4 \(10\.9–13\.9\)", text)
    assert "Top drivers" in text
    assert_clean(seen)


def test_layer_control_switches_theme_and_overlays(wards_for_map, tmp_path, open_offline,
                                                   screenshot):
    seen = open_offline(save(tmp_path, "m.html", mapping.render_map(wards_for_map)))
    wait_for_map(seen)
    page = seen.page
    fill = "() => window.geoSend.areas.getLayers().map(l => l.options.fillColor)"
    before = page.evaluate(fill)
    page.locator(".leaflet-control-layers label", has_text="LISA clusters").click()
    page.wait_for_function(
        "document.querySelector('.gs-legend-title').textContent.startsWith('LISA')")
    after = page.evaluate(fill)
    assert after != before
    high_high = list(wards_for_map["lisa_label"]).index("High-High")
    codes = drawn_areas(seen)["codes"]
    assert after[codes.index(wards_for_map.index[high_high])] == mapping.LISA_COLORS["High-High"]
    assert "High-High (2)" in page.locator(".gs-legend").inner_text()
    screenshot(seen, "need_map_lisa.png")
    # overlays: names off and on again
    labels = "document.querySelectorAll('.leaflet-tooltip.gs-label').length"
    page.locator(".leaflet-control-layers label", has_text="Names").click()
    page.wait_for_function(f"{labels} === 0")  # Leaflet fades overlays out over 200 ms
    page.locator(".leaflet-control-layers label", has_text="Names").click()
    page.wait_for_function(f"{labels} === {len(wards_for_map)}")
    assert_clean(seen)


def test_markup_in_names_is_shown_as_text_and_never_runs(wards_for_map, tmp_path, open_offline):
    frame = wards_for_map.copy()
    frame.loc[frame.index[-2:], "ward_name"] = HOSTILE  # the two highest-need wards
    frame["top_drivers"] = HOSTILE[1]
    layers = [mapping.MapLayer("need_index", '<img src=x onerror="window.__pwned = 3">')]
    html = mapping.render_map(frame, layers, title=HOSTILE[0], subtitle=HOSTILE[1],
                              attribution=HOSTILE[1])
    seen = open_offline(save(tmp_path, "hostile.html", html))
    wait_for_map(seen)
    text = hover(seen, len(frame) - 1)
    assert HOSTILE[1] in text
    page = seen.page
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator(".leaflet-container img, .leaflet-container script").count() == 0
    assert HOSTILE[0] in page.locator(".gs-title").inner_text()
    assert HOSTILE[0] in page.locator(".leaflet-tooltip.gs-label").all_inner_texts()
    assert layers[0].label in page.locator(".leaflet-control-layers").inner_text()
    assert HOSTILE[1] in page.locator(".leaflet-control-attribution").inner_text()
    assert_clean(seen)


def test_hubs_overlay_with_service_areas(wards_for_map, tmp_path, open_offline, screenshot):
    hubs = gpd.GeoDataFrame({"name": ["Hub A", "Hub B"]},
                            geometry=[Point(391_500, 299_500), Point(393_500, 300_500)],
                            crs="EPSG:27700")
    html = mapping.render_map(wards_for_map, points=hubs, points_radius_m=1200,
                              points_title="Proposed hubs")
    seen = open_offline(save(tmp_path, "hubs.html", html))
    wait_for_map(seen)
    page = seen.page
    counts = page.evaluate(
        """() => { const p = window.geoSend.pointsLayer.getLayers();
                   return [p.filter(l => l instanceof L.Circle).length,
                           p.filter(l => l instanceof L.CircleMarker).length,
                           window.geoSend.map.hasLayer(window.geoSend.pointsLayer)]; }"""
    )
    assert counts == [2, 4, True]  # L.Circle extends L.CircleMarker
    assert "Proposed hubs" in page.locator(".gs-legend").inner_text()
    screenshot(seen, "need_map_hubs.png")
    page.locator(".leaflet-control-layers label", has_text="Proposed hubs").click()
    assert "Proposed hubs" not in page.locator(".gs-legend").inner_text()
    assert_clean(seen)


def _report_html(frame: gpd.GeoDataFrame) -> str:
    pngs = {
        "Need index": figures.to_png(figures.index_map(frame, name_column="ward_name")),
        "Clusters": figures.to_png(figures.lisa_map(frame, name_column="ward_name")),
    }
    return report.render_report(
        frame.drop(columns="geometry"), area_name="Grid", figures=pngs,
        moran={"I": 0.4, "p_sim": 0.002, "expected_I": -0.05, "permutations": 999},
        run={"Seed": "1"}, vintages={"SEN support": "DfE January 2023"},
    )


def test_report_renders_offline_on_one_page(wards_for_map, tmp_path, open_offline, screenshot):
    frame = wards_for_map.copy()
    frame.loc[frame.index[-1], "ward_name"] = HOSTILE[1]
    seen = open_offline(save(tmp_path, "report.html", _report_html(frame)), width=900,
                        height=1200)
    page = seen.page
    page.wait_for_load_state("load")
    widths = page.evaluate("() => [...document.images].map(i => i.naturalWidth)")
    assert len(widths) == 2 and min(widths) > 500
    assert HOSTILE[1] in page.locator("table").inner_text()
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("body img").count() == 2
    hrefs = page.evaluate("() => [...document.links].map(a => a.getAttribute('href'))")
    assert hrefs == ["ranked_wards.csv", "need_map.html"]
    pdf = page.pdf(format="A4", print_background=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    screenshot(seen, "report_synthetic.png", full_page=True)
    assert_clean(seen)


def test_default_run_outputs_in_the_browser(tmp_path, open_offline, screenshot):
    from geo_send import outputs, pipeline

    result = pipeline.run(Config.default())
    paths = outputs.write_outputs(result, tmp_path / "out")
    assert {"maps/need_index.png", "maps/lisa_clusters.png"} <= set(paths)
    seen = open_offline(paths["map"])
    wait_for_map(seen)
    drawn = drawn_areas(seen)
    assert drawn["shapes"] == drawn["drawn"] == len(result.wards) == 20
    assert sorted(drawn["codes"]) == sorted(result.wards.index)
    top = result.wards.sort_values("rank").iloc[0]
    i = drawn["codes"].index(top.name)
    text = hover(seen, i)
    assert top["ward_name"] in text and "1 of 20" in text
    screenshot(seen, "need_map.png")
    assert_clean(seen)
    assert paths["map"].stat().st_size < 1_000_000

    seen = open_offline(paths["report"], width=900, height=1200)
    seen.page.wait_for_load_state("load")
    assert min(seen.page.evaluate("() => [...document.images].map(i => i.naturalWidth)")) > 500
    assert "Is need clustered?" in seen.page.inner_text("body")
    for href in seen.page.evaluate("() => [...document.links].map(a => a.getAttribute('href'))"):
        assert (paths["report"].parent / href).is_file()
    pdf = seen.page.pdf(format="A4", print_background=True)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    screenshot(seen, "report.png", full_page=True)
    assert_clean(seen)
