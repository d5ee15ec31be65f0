"""Static figures for board papers: index choropleth, LISA cluster map, rank intervals.

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no display needed; the Agg canvas draws it); :func:`to_png` turns one into PNG bytes
at ``DPI``. The writer saves them to ``outputs/maps/``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.collections import PathCollection
from matplotlib.patches import Patch, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.ticker import MaxNLocator

from . import _webenc
from ._errors import ValidationError, close_matches
from .config import Config, MapSettings
from .mapping import LISA_COLORS, SEQUENTIAL, classify, palette, scheme_label

__all__ = [
    "DPI",
    "index_map",
    "lisa_map",
    "rank_interval_chart",
    "run_figures",
    "to_png",
    "plain_text",
]

DPI = 150
MAP_SIZE = (7.0, 6.0)
"""Figure size of the maps in inches (1050 x 900 pixels at 150 dpi)."""
MAP_AXES = (0.01, 0.07, 0.73, 0.85)
"""Left, bottom, width and height of a map's axes, as fractions of the figure."""
MAX_MAP_LABELS = 40
MAX_INTERVAL_ROWS = 50
"""Most areas in the rank-interval chart (the highest-need ones): one row per area."""
EDGE = "#4d4d4d"
HALO = [patheffects.withStroke(linewidth=2.2, foreground="white")]


def plain_text(text: object) -> str:
    """Return text that matplotlib shows literally (``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def to_png(fig: Figure) -> bytes:
    """Render a figure as PNG bytes at ``DPI`` (no timestamp or version in the file).

    The figures lay themselves out (``layout="constrained"``), so the page size is the
    figure size and each figure is drawn once (``bbox_inches="tight"`` draws it twice).
    zlib level 1 writes these flat-coloured images at about the size of the default
    level 6 in half the time.
    """
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None},
                pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        hints = "".join(close_matches(c, list(frame.columns)) for c in missing)
        raise ValidationError(f"{what}: no column(s) {', '.join(map(repr, missing))}{hints}")


def _projected(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if frame.crs is None:
        raise ValidationError("figure: geometry has no CRS (expected EPSG:27700)")
    return frame.to_crs(27700) if frame.crs.is_geographic else frame


def _draw_areas(ax, gdf: gpd.GeoDataFrame, fill: Sequence[str]) -> None:
    """Draw every area in its fill colour, as one collection of paths.

    ``GeoDataFrame.plot`` builds a matplotlib patch per polygon through several layers of
    Python, which takes seconds for England's 33,755 LSOAs; here each polygon becomes one
    path (its rings split from one coordinate array), and all go into a single
    :class:`~matplotlib.collections.PathCollection`. Edges get thinner as areas get
    smaller on the page.
    """
    fill = np.asarray(fill, dtype=object)
    parts, row = shapely.get_parts(gdf.geometry.to_numpy(), return_index=True)
    parts = shapely.orient_polygons(parts)  # holes clockwise: they stay empty
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    codes = np.full(len(coords), MplPath.LINETO, dtype=MplPath.code_type)
    codes[np.flatnonzero(np.r_[True, ring_of[1:] != ring_of[:-1]])] = MplPath.MOVETO
    part_of = ring_part[ring_of]
    cuts = np.flatnonzero(part_of[1:] != part_of[:-1]) + 1
    paths = [MplPath(v, c) for v, c in zip(np.split(coords, cuts), np.split(codes, cuts),
                                            strict=True)]
    width = float(np.clip(8.0 / math.sqrt(max(len(gdf), 1)), 0.05, 0.5))
    drawn = np.unique(part_of)  # parts with at least one ring, in order
    ax.add_collection(PathCollection(paths, facecolors=list(fill[row[drawn]]), edgecolors=EDGE,
                                     linewidths=width))
    x0, y0, x1, y1 = gdf.total_bounds
    pad_x, pad_y = 0.02 * (x1 - x0), 0.02 * (y1 - y0)
    ax.set_xlim(x0 - pad_x, x1 + pad_x)
    ax.set_ylim(y0 - pad_y, y1 + pad_y)


def _map_axes(title: str) -> tuple[Figure, object]:
    # A fixed layout: the map in the left three quarters, its legend to the right. A map
    # has no tick labels to make room for, and constrained layout would cost a second
    # pass over every text (a third of the time of a map).
    fig = Figure(figsize=MAP_SIZE)
    ax = fig.add_axes(MAP_AXES)
    ax.set_axis_off()
    ax.set_aspect("equal")
    if title:
        ax.set_title(plain_text(title), fontsize=12, loc="left")
    return fig, ax


def _labels(ax, frame: gpd.GeoDataFrame, name_column: str | None) -> None:
    if not name_column or name_column not in frame.columns or len(frame) > MAX_MAP_LABELS:
        return
    points = frame.geometry.representative_point()
    for point, name in zip(points, frame[name_column], strict=True):
        ax.annotate(plain_text(name), (point.x, point.y), ha="center", va="center",
                    fontsize=5.5, path_effects=HALO)


def _north_arrow(ax) -> None:
    ax.annotate("N", xy=(0.95, 0.97), xytext=(0.95, 0.86), xycoords="axes fraction",
                ha="center", va="center", fontsize=10, fontweight="bold",
                arrowprops={"facecolor": "black", "width": 3, "headwidth": 9, "headlength": 8})


def _scale_bar(ax) -> None:
    """Draw a bar of a round length (1, 2 or 5 x 10^k metres), about a fifth of the width."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    target = (x1 - x0) / 5
    exponent = math.floor(math.log10(target))
    length = max(m * 10**exponent for m in (1, 2, 5) if m * 10**exponent <= target)
    left, bottom = x0 + 0.03 * (x1 - x0), y0 + 0.03 * (y1 - y0)
    height = 0.012 * (y1 - y0)
    for i, fill in enumerate(("black", "white")):
        ax.add_patch(Rectangle((left + i * length / 2, bottom), length / 2, height,
                               facecolor=fill, edgecolor="black"))
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.annotate(label, (left + length, bottom + height), xytext=(3, 0),
                textcoords="offset points", va="bottom", fontsize=8)


def index_map(
    frame: gpd.GeoDataFrame,
    *,
    column: str = "need_index",
    settings: MapSettings | None = None,
    title: str = "SEND need index",
    name_column: str | None = None,
    legend_title: str = "Need index",
) -> Figure:
    """Choropleth of the index, classified as in the interactive map.

    Parameters
    ----------
    frame : GeoDataFrame
        Areas with ``column``; projected to EPSG:27700 when geographic.
    column : str
    settings : MapSettings, optional
        Scheme and k of the classification (Fisher–Jenks, 5 classes by default).
    title, legend_title : str
    name_column : str, optional
        Area names drawn on the map when there are at most ``MAX_MAP_LABELS`` areas.

    Returns
    -------
    Figure
        With a legend (class ranges and counts), a north arrow and a scale bar.
    """
    settings = settings or MapSettings()
    _require(frame, [column], "index map")
    gdf = _projected(frame)
    values = pd.to_numeric(gdf[column], errors="coerce")
    classes = classify(values, settings.scheme, settings.k)
    colors = palette(SEQUENTIAL, classes.k)
    fill = np.array([colors[c] if c >= 0 else "#ffffff" for c in classes.yb], dtype=object)
    fig, ax = _map_axes(title)
    _draw_areas(ax, gdf, fill)
    _labels(ax, gdf, name_column)
    lower = [float(np.nanmin(values))] + classes.bins[:-1].tolist()
    d = _webenc.decimals_for(values)
    handles = [
        Patch(facecolor=colors[i], edgecolor=EDGE,
              label=f"{lo:,.{d}f} to {hi:,.{d}f} ({classes.counts[i]})")
        for i, (lo, hi) in enumerate(zip(lower, classes.bins, strict=True))
    ]
    if (classes.yb < 0).any():
        handles.append(Patch(facecolor="#ffffff", edgecolor=EDGE,
                             label=f"No data ({int((classes.yb < 0).sum())})"))
    ax.legend(handles=handles, title=plain_text(legend_title), loc="upper left",
              bbox_to_anchor=(1.0, 1.0), fontsize=8, title_fontsize=9, frameon=False)
    ax.annotate(f"{scheme_label(settings.scheme)}, {classes.k} classes; darker = more need",
                xy=(0, -0.02), xycoords="axes fraction", fontsize=7, color="#444", va="top")
    _north_arrow(ax)
    _scale_bar(ax)
    return fig


def lisa_map(
    frame: gpd.GeoDataFrame,
    *,
    column: str = "lisa_label",
    title: str = "Local clusters of need (LISA)",
    name_column: str | None = None,
) -> Figure:
    """LISA cluster map in GeoDa's colours, with counts per category.

    Raises
    ------
    ValidationError
        If a label is not one of ``LISA_COLORS``.
    """
    _require(frame, [column], "LISA map")
    gdf = _projected(frame)
    labels = gdf[column].astype(object)
    unknown = sorted({str(v) for v in labels.dropna()} - set(LISA_COLORS))
    if unknown:
        raise ValidationError(
            f"LISA map: unknown label(s) {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(LISA_COLORS)}"
        )
    fill = [LISA_COLORS.get(str(v), "#ffffff") if pd.notna(v) else "#ffffff" for v in labels]
    fig, ax = _map_axes(title)
    _draw_areas(ax, gdf, fill)
    _labels(ax, gdf, name_column)
    counts = labels.value_counts()
    handles = [
        Patch(facecolor=color, edgecolor=EDGE, label=f"{label} ({int(counts.get(label, 0))})")
        for label, color in LISA_COLORS.items()
    ]
    ax.legend(handles=handles, title="Local Moran's I", loc="upper left",
              bbox_to_anchor=(1.0, 1.0), fontsize=8, title_fontsize=9, frameon=False)
    ax.annotate("Clusters are worth a look, not proof: about 1 area in 20 is flagged by chance",
                xy=(0, -0.02), xycoords="axes fraction", fontsize=7, color="#444", va="top")
    _north_arrow(ax)
    _scale_bar(ax)
    return fig


def rank_interval_chart(
    frame: pd.DataFrame,
    *,
    name_column: str,
    rank: str = "rank",
    low: str = "rank_p05",
    high: str = "rank_p95",
    median: str = "rank_median",
    title: str = "Rank of each area with its 90% uncertainty interval",
) -> Figure:
    """Each area's rank with the 5th–95th percentile of its rank under uncertainty.

    Areas are listed by rank (1 = most need, at the top). The dot is the median rank when
    a ``median`` column exists, else the nominal rank; the cross marks the nominal rank.

    Raises
    ------
    ValidationError
        If the rank or interval columns are missing.
    """
    _require(frame, [name_column, rank, low, high], "rank-interval chart")
    data = frame.sort_values([rank], kind="stable")
    n = len(data)
    y = np.arange(n)
    centre = data[median] if median in data.columns else data[rank]
    fig = Figure(figsize=(5.0, max(3.0, 0.2 * n + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    ax.hlines(y, data[low], data[high], color="#2c7bb6", linewidth=2.5, alpha=0.6,
              label="5th to 95th percentile")
    ax.plot(centre, y, "o", color="#08306b", markersize=4,
            label="Median rank" if median in data.columns else "Rank")
    if median in data.columns:
        ax.plot(data[rank], y, "x", color="#d7191c", markersize=4, label="Nominal rank")
    ax.set_yticks(y, [plain_text(v) for v in data[name_column]], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0.5, n + 0.5)
    ax.set_xlabel("Rank (1 = most need)")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    # Across the whole figure, not the axes: the names take much of the width.
    fig.suptitle(plain_text(title), fontsize=11, x=0.01, ha="left")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=4))
    ax.legend(loc="upper right", fontsize=7, frameon=True, framealpha=0.9, edgecolor="none")
    return fig


def run_figures(wards: gpd.GeoDataFrame, cfg: Config) -> dict[str, tuple[str, bytes]]:
    """Return the static figures of a run: file name -> (caption, PNG bytes).

    The rank-interval chart is included only when the ranks carry intervals.
    """
    name = cfg.name_name
    area = f"{cfg.area_name} {cfg.areas_label}"
    out = {
        "need_index.png": (
            f"Need index by {cfg.level} ({scheme_label(cfg.map.scheme)})",
            to_png(index_map(wards, settings=cfg.map, name_column=name,
                             title=f"SEND need index, {area}")),
        )
    }
    if "lisa_label" in wards.columns:
        out["lisa_clusters.png"] = (
            "Local clusters of the need index (LISA)",
            to_png(lisa_map(wards, name_column=name, title=f"Local clusters of need, {area}")),
        )
    if {"rank_p05", "rank_p95"} <= set(wards.columns):
        caption = "Rank of each area with its 90% uncertainty interval"
        shown = wards
        if len(wards) > MAX_INTERVAL_ROWS:  # national LSOAs would need a chart 7,000 in tall
            shown = wards.nsmallest(MAX_INTERVAL_ROWS, "rank")
            caption = (f"Rank of the {MAX_INTERVAL_ROWS} highest-need {cfg.areas_label} with their 90% "
                       "uncertainty intervals")
        out["rank_intervals.png"] = (
            caption, to_png(rank_interval_chart(shown, name_column=name, title=caption)))
    return out
