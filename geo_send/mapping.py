"""The interactive map: a folium choropleth of the need index with a legend and tooltips."""

from __future__ import annotations

import geopandas as gpd

from .config import MapSettings

__all__ = ["render_map"]


def render_map(wards: gpd.GeoDataFrame, settings: MapSettings, *, name_column: str) -> str:
    """Return the HTML text of a choropleth of ``need_index`` (classified by mapclassify)."""
    shown = wards.reset_index()[
        [wards.index.name, name_column, "rank", "need_index", "lisa_label", wards.geometry.name]
    ]
    m = shown.explore(
        column="need_index",
        scheme=settings.scheme,
        k=min(settings.k, len(shown) - 1),
        cmap="YlOrRd",
        tooltip=[name_column, wards.index.name, "rank", "need_index", "lisa_label"],
        legend=True,
        tiles="CartoDB positron" if settings.tiles else None,
        style_kwds={"weight": 1, "color": "#444"},
    )
    return m.get_root().render()
