"""Static figures: what they draw, and that they come out as 150 dpi PNG."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from geo_send import figures
from geo_send._errors import ValidationError
from geo_send.config import MapSettings

PNG = b"\x89PNG\r\n\x1a\n"


def png_dpi(data: bytes) -> float:
    """Dots per inch from a PNG's pHYs chunk."""
    at = data.index(b"pHYs")
    per_metre, _, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
    assert unit == 1
    return per_metre * 0.0254


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_index_map_has_legend_north_arrow_and_scale_bar(wards_for_map):
    fig = figures.index_map(wards_for_map, name_column="ward_name")
    labels = legend_texts(fig)
    assert len(labels) == 5
    assert labels[0].startswith("-1.500 to ") and labels[-1].endswith("1.500 (4)")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "N" in texts
    assert "1 km" in texts  # the grid is 5 km wide: a round bar of 1 km
    assert "Ward 1" in texts


def test_index_map_uses_the_configured_scheme(wards_for_map):
    fig = figures.index_map(wards_for_map, settings=MapSettings(scheme="Quantiles", k=4))
    assert len(legend_texts(fig)) == 4


def test_missing_values_are_shown_as_no_data(wards_for_map):
    frame = wards_for_map.copy()
    frame.loc[frame.index[0], "need_index"] = np.nan
    assert legend_texts(figures.index_map(frame))[-1] == "No data (1)"


def test_lisa_map_counts_every_category(wards_for_map):
    labels = legend_texts(figures.lisa_map(wards_for_map))
    assert labels == ["High-High (2)", "Low-Low (2)", "Low-High (2)", "High-Low (2)",
                      "Not significant (12)"]


def test_lisa_map_rejects_unknown_labels(wards_for_map):
    with pytest.raises(ValidationError, match="unknown label"):
        figures.lisa_map(wards_for_map.assign(lisa_label="HH"))


def test_rank_interval_chart_lists_every_area_by_rank(wards_for_map):
    fig = figures.rank_interval_chart(wards_for_map, name_column="ward_name")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks[0] == "Ward 20" and ticks[-1] == "Ward 1"
    assert len(ticks) == len(wards_for_map)


def test_rank_interval_chart_needs_the_interval(wards_for_map):
    with pytest.raises(ValidationError, match="rank_p05"):
        figures.rank_interval_chart(wards_for_map.drop(columns="rank_p05"), name_column="ward_name")


def test_dollar_signs_in_names_stay_text(wards_for_map):
    frame = wards_for_map.copy()
    frame.loc[frame.index[-1], "ward_name"] = "$x^2$ & <b>"
    fig = figures.rank_interval_chart(frame, name_column="ward_name")
    assert fig.axes[0].get_yticklabels()[0].get_text() == r"\$x^2\$ & <b>"
    figures.to_png(fig)  # mathtext would fail or render a formula


def test_png_is_150_dpi_and_reproducible(wards_for_map):
    a = figures.to_png(figures.index_map(wards_for_map))
    b = figures.to_png(figures.index_map(wards_for_map))
    assert a.startswith(PNG)
    assert png_dpi(a) == pytest.approx(150, abs=0.1)
    assert a == b
    assert b"Software" not in a


def test_run_figures_skip_the_rank_chart_without_intervals(wards_for_map):
    from geo_send.config import Config

    cfg = Config.default()
    frame = wards_for_map.drop(columns=["rank_p05", "rank_p95"])
    assert list(figures.run_figures(frame, cfg)) == ["need_index.png", "lisa_clusters.png"]
    assert list(figures.run_figures(wards_for_map, cfg))[-1] == "rank_intervals.png"


def test_png_chunks_are_valid(wards_for_map):
    data = figures.to_png(figures.lisa_map(wards_for_map))
    at = 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc
        at += 12 + length


def _pixel(fig: Figure, x: float, y: float) -> tuple[int, ...]:
    """RGB of the rendered figure at data coordinates (x, y) of its first axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())
    px, py = fig.axes[0].transData.transform((x, y))
    return tuple(int(v) for v in image[image.shape[0] - 1 - int(round(py)), int(round(px)), :3])


def test_areas_are_filled_with_holes_left_empty_and_every_part_drawn():
    import geopandas as gpd
    from shapely.geometry import MultiPolygon, Polygon, box

    # A square with a square hole (its rings both anticlockwise: orientation must not
    # matter), and a two-part area; each part of the second must be filled.
    holed = Polygon([(0, 0), (100, 0), (100, 100), (0, 100)],
                    [[(40, 40), (60, 40), (60, 60), (40, 60)]])
    two = MultiPolygon([box(200, 0, 250, 50), box(200, 60, 250, 100)])
    frame = gpd.GeoDataFrame({"lisa_label": ["High-High", "Low-Low"]},
                             geometry=[holed, two], crs=27700,
                             index=pd.Index(["A", "B"], name="ward_code"))
    fig = figures.lisa_map(frame)
    red = _pixel(fig, 20, 20)
    assert red == _pixel(fig, 80, 80) and red[0] > 150 and red[2] < 100
    assert _pixel(fig, 50, 50) == (255, 255, 255)  # the hole
    blue = _pixel(fig, 225, 25)
    assert blue == _pixel(fig, 225, 80) and blue[2] > 150 and blue[0] < 100
    assert _pixel(fig, 225, 55) == (255, 255, 255)  # between the two parts
