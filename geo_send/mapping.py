"""The interactive map: one small, self-contained HTML file with switchable themes.

The map is a :class:`folium.Map` whose areas are drawn once (on a canvas) and restyled for
each theme: the need index, each domain and indicator, the LISA cluster and significance
maps, Gi* hot and cold spots. Themes are radio buttons in the layer control and the legend
follows the active one. Labels, hubs with service areas and an optional basemap are
overlays. Geometry is cut into shared borders, each simplified once, snapped to about a metre
and stored once (:mod:`geo_send._webenc`); only the values shown in tooltips are sent.

With ``self_contained=True`` (the default) Leaflet 1.9.4 is inlined from the
``django-js-lib-leaflet`` package and nothing else is loaded: no jQuery, Bootstrap, Font
Awesome or d3, no CDN and no tiles, so the file renders on a network with no internet.

Every text that reaches the page (names, labels, legends, titles) is written into the DOM
as text (``textContent``) or HTML-escaped; none is ever interpreted as markup.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import html
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from branca.utilities import color_brewer
from folium.map import Layer
from folium.template import Template

from . import _webenc
from ._errors import ValidationError, close_matches, preview
from .config import Config, MapSettings

__all__ = [
    "MapLayer",
    "Classes",
    "classify",
    "fisher_jenks_breaks",
    "quantile_breaks",
    "palette",
    "scheme_label",
    "default_layers",
    "layers_for_config",
    "build_map",
    "render_map",
    "LISA_COLORS",
    "SIGNIFICANCE_COLORS",
    "KINDS",
]

KINDS = ("continuous", "categorical", "significance")
WEB_CRS = "EPSG:4326"
LEAFLET_VERSION = "1.9.4"
LEAFLET_CDN = f"https://cdn.jsdelivr.net/npm/leaflet@{LEAFLET_VERSION}/dist"
FISHER_JENKS_SAMPLE = 300
"""Above this many values, Fisher–Jenks breaks come from this many evenly spaced quantiles."""
MAX_CLASSES = 20
MAX_LABELS = 60
"""Area labels are drawn by default up to this many areas (the tooltips name every area)."""
P_DECIMALS = 4
RIGHT_PANEL_PX = 290
"""Width kept clear of areas at the right, where the layer control and legend sit."""

SEQUENTIAL = "YlOrRd"
"""ColorBrewer palette of the need index (colour-blind safe, darker = more need)."""
SEQUENTIAL_OTHER = "PuBu"
"""ColorBrewer palette of the domains and indicators."""
LISA_COLORS = {
    "High-High": "#d7191c",
    "Low-Low": "#2c7bb6",
    "Low-High": "#a7adf9",
    "High-Low": "#f4ada8",
    "Not significant": "#eeeeee",
}
"""GeoDa's cluster-map convention: High-High red, Low-Low blue, Low-High light blue,
High-Low pink, not significant light grey."""
SIGNIFICANCE_BINS = (0.0001, 0.001, 0.01, 0.05)
SIGNIFICANCE_COLORS = ("#006d2c", "#31a354", "#74c476", "#bae4b3")
"""ColorBrewer Greens for p <= 0.0001, 0.001, 0.01, 0.05 (GeoDa's significance map)."""
NOT_SIGNIFICANT = "#eeeeee"
HOT = ("#d7191c", "#fc8d59", "#fdcc8a")
COLD = ("#2c7bb6", "#91bfdb", "#c6dbef")
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#999999")
"""Okabe & Ito's colour-blind-safe qualitative palette, for other categorical layers."""
DEFAULT_ATTRIBUTION = (
    "Boundaries: Office for National Statistics (OGL v3); contains OS data "
    "© Crown copyright and database right"
)

_ASSETS = resources.files("geo_send") / "templates"


@dataclass(frozen=True)
class MapLayer:
    """One theme of the map (a radio button in the layer control).

    Attributes
    ----------
    column : str
        Column of the frame the theme shows.
    label : str
        Name in the layer control, legend title and tooltip.
    kind : {'continuous', 'categorical', 'significance'}
        ``continuous``: classified with the map scheme (mapclassify); ``categorical``: one
        colour per value; ``significance``: pseudo p-values in GeoDa's bins.
    direction : int
        +1 when higher values mean more need (darker), -1 when lower values do.
    colors : mapping of str to str, optional
        Colour per category (categorical); defaults by column (LISA, Gi*) or Okabe–Ito.
    note : str
        One line under the legend (method, caveat).
    palette : str, optional
        ColorBrewer name for a continuous theme.
    """

    column: str
    label: str
    kind: str = "continuous"
    direction: int = 1
    colors: Mapping[str, str] | None = None
    note: str = ""
    palette: str | None = None


@dataclass(frozen=True)
class Classes:
    """A classification of values for a choropleth.

    Attributes
    ----------
    bins : ndarray
        Upper bound of each class (the last is the maximum).
    yb : ndarray of int
        Class of each value, -1 where the value is missing.
    counts : ndarray of int
        Number of values per class.
    scheme : str
        The mapclassify scheme used.
    """

    bins: np.ndarray
    yb: np.ndarray
    counts: np.ndarray
    scheme: str

    @property
    def k(self) -> int:
        """Number of classes."""
        return len(self.bins)


def classify(values: pd.Series | np.ndarray, scheme: str = "FisherJenks", k: int = 5) -> Classes:
    """Classify values with a mapclassify scheme; missing values get class -1.

    Parameters
    ----------
    values : array-like of float
    scheme : str
        A mapclassify scheme name (``FisherJenks``, ``Quantiles``, ...).
    k : int
        Number of classes wanted; fewer are used when there are fewer distinct values.

    Returns
    -------
    Classes

    Notes
    -----
    Fisher–Jenks is exact but its cost grows with the square of the number of values; above
    ``FISHER_JENKS_SAMPLE`` values the breaks are computed on that many evenly spaced
    quantiles of the values (deterministic, unlike mapclassify's random sample) and every
    value is then assigned to those breaks. Fisher–Jenks and quantiles are computed here
    (:func:`fisher_jenks_breaks`, :func:`quantile_breaks`: the breaks mapclassify gives);
    every other scheme is mapclassify's, imported only then (with scikit-learn and
    scipy.stats it costs about a second per run).
    """
    y = np.asarray(values, dtype=float)
    ok = np.isfinite(y)
    yb = np.full(len(y), -1, dtype=int)
    present = y[ok]
    distinct = np.unique(present)
    if distinct.size == 0:
        return Classes(np.zeros(0), yb, np.zeros(0, int), scheme)
    k = int(min(k, distinct.size, MAX_CLASSES))
    if k < 2:
        yb[ok] = 0
        return Classes(np.array([distinct[-1]]), yb, np.array([present.size]), scheme)
    sample = present
    if scheme in ("FisherJenks", "NaturalBreaks") and present.size > FISHER_JENKS_SAMPLE:
        sample = np.quantile(present, np.linspace(0, 1, FISHER_JENKS_SAMPLE))
    if scheme == "FisherJenks":
        fitted_bins = fisher_jenks_breaks(np.sort(sample), k)
    elif scheme == "Quantiles":
        fitted_bins = quantile_breaks(sample, k)
    else:
        import mapclassify  # noqa: PLC0415 - 1 s of imports (scikit-learn, scipy.stats)

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Numba not installed",
                                    category=UserWarning)
            fitted_bins = mapclassify.classify(sample, scheme, k=k).bins
    bins = np.unique(np.asarray(fitted_bins, dtype=float))
    bins[-1] = max(bins[-1], present.max())
    yb[ok] = np.minimum(np.searchsorted(bins, present, side="left"), len(bins) - 1)
    counts = np.bincount(yb[ok], minlength=len(bins))
    return Classes(bins, yb, counts, scheme)


def fisher_jenks_breaks(x: np.ndarray, k: int) -> np.ndarray:
    """Upper bounds of the ``k`` Fisher–Jenks classes of sorted values ``x``.

    The classes minimise the total within-class sum of squared deviations (Fisher 1958;
    Jenks 1977), as ``mapclassify.FisherJenks`` computes them, including its tie rule:
    among equally good breaks the earliest start of the last class wins.

    Parameters
    ----------
    x : ndarray of float
        Sorted values (at most a few thousand: the work is k·n² and memory n²).
    k : int
        Number of classes, 1 <= k <= len(x).

    Returns
    -------
    ndarray of float, shape (k,)
        The largest value of each class; the last is ``x[-1]``.

    Notes
    -----
    Dynamic programme over class ends j: with SSD(i, j) the sum of squared deviations of
    ``x[i..j]`` from their mean (from cumulative sums), the best m classes ending at j cost
    D_m(j) = min over i of D_{m-1}(i - 1) + SSD(i, j), evaluated for every (i, j) at once.
    mapclassify's loop does the same in single precision; this uses double precision on
    values centred on their mean.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and {n}, got {k}")
    c = x - x.mean()
    s1 = np.concatenate(([0.0], np.cumsum(c)))
    s2 = np.concatenate(([0.0], np.cumsum(c * c)))
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ssd = (s2[j + 1] - s2[i]) - (s1[j + 1] - s1[i]) ** 2 / (j - i + 1)
    ssd = np.where(i <= j, np.maximum(ssd, 0.0), np.inf)
    cost = ssd[0]
    starts = np.zeros((k, n), dtype=int)
    columns = np.arange(n)
    for m in range(1, k):
        before = np.concatenate(([np.inf], cost[:-1]))  # m classes ending just before i
        total = before[:, None] + ssd
        total[:m] = np.inf  # m classes need at least m values before i
        starts[m] = np.argmin(total, axis=0)
        cost = total[starts[m], columns]
    breaks = np.empty(k)
    end = n - 1
    for m in range(k - 1, -1, -1):
        breaks[m] = x[end]
        end = starts[m, end] - 1
    return breaks


def quantile_breaks(y: np.ndarray, k: int) -> np.ndarray:
    """Upper bounds of ``k`` quantile classes, as ``mapclassify.Quantiles`` computes them.

    The values at percentiles 100/k, 200/k, ..., 100 (linear interpolation between
    order statistics), with repeated bounds merged, so fewer classes result when many
    values are equal.
    """
    step = 100.0 / k
    percents = np.arange(step, 100 + step, step)
    if percents[-1] > 100.0:
        percents[-1] = 100.0
    return np.unique(np.percentile(np.asarray(y, dtype=float), percents))


def palette(name: str, k: int) -> list[str]:
    """Return ``k`` colours of a ColorBrewer sequential palette, light to dark."""
    colors = color_brewer(name, max(k, 3))
    if k < 3:
        colors = [colors[0], colors[-1]][-k:] if k == 2 else [colors[-1]]
    return list(colors)[:k] if len(colors) >= k else list(colors)


def _fmt(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def default_layers(
    frame: pd.DataFrame,
    extra: Mapping[str, str] | None = None,
    *,
    settings: MapSettings | None = None,
    directions: Mapping[str, int] | None = None,
) -> list[MapLayer]:
    """Return the standard themes for the columns a frame has.

    Parameters
    ----------
    frame : DataFrame
        Needs ``need_index``; ``lisa_label``, ``lisa_p`` and ``gi_label`` are used when
        present.
    extra : mapping of str to str, optional
        Further continuous columns (domains, indicators) and their labels, in map order.
    settings : MapSettings, optional
        For the scheme named in the legend note.
    directions : mapping of str to int, optional
        -1 for columns where lower values mean more need.
    """
    settings = settings or MapSettings()
    directions = directions or {}
    layers = [
        MapLayer(
            "need_index",
            "Need index",
            palette=SEQUENTIAL,
            note=f"{scheme_label(settings.scheme)}; darker = more need.",
        )
    ]
    for column, label in (extra or {}).items():
        direction = int(directions.get(column, 1))
        note = "Darker = more need" + (" (lower values)." if direction < 0 else ".")
        layers.append(MapLayer(column, label, direction=direction, note=note))
    if "lisa_label" in frame.columns:
        layers.append(
            MapLayer(
                "lisa_label",
                "LISA clusters of the need index",
                kind="categorical",
                colors=LISA_COLORS,
                note="Local Moran's I. Clusters are worth a look, not proof: about one area "
                "in twenty is flagged at p ≤ 0.05 by chance.",
            )
        )
    if "lisa_p" in frame.columns:
        layers.append(
            MapLayer(
                "lisa_p",
                "LISA significance (pseudo p)",
                kind="significance",
                note="Permutation pseudo p-values, not corrected for multiple tests.",
            )
        )
    if "gi_label" in frame.columns:
        layers.append(
            MapLayer("gi_label", "Gi* hot and cold spots", kind="categorical",
                     note="Getis–Ord Gi* of the need index.")
        )
    if "tier" in frame.columns:
        layers.append(
            MapLayer("tier", "Priority tier", kind="categorical", colors=TIER_COLORS,
                     note="Rules combine need, rank certainty and clustering "
                     "(docs/methodology.md).")
        )
    if "outreach_status" in frame.columns:
        layers.append(
            MapLayer("outreach_status", "Outreach: high need beyond the hubs' reach",
                     kind="categorical", colors=OUTREACH_COLORS,
                     note="High-need wards with too little of their need within reach of a hub.")
        )
    return layers


#: Colour per priority tier (ColorBrewer Oranges, darkest = most urgent).
TIER_COLORS = {
    "Hub priority": "#a63603",
    "Outreach priority": "#e6550d",
    "Monitor": "#fdae6b",
    "Universal offer": "#feedde",
    "No data": "#ffffff",
}
#: Colour per outreach status.
OUTREACH_COLORS = {"Outreach needed": "#d95f02", "Within reach of a hub": "#e0e0e0"}


def outreach_status(outreach: pd.Series) -> pd.Series:
    """Plain-language outreach status from the siting stage's boolean ``outreach`` flag."""
    flag = outreach.astype("boolean")
    return flag.map({True: "Outreach needed", False: "Within reach of a hub"}).astype(object)


def layers_for_config(frame: pd.DataFrame, cfg: Config) -> list[MapLayer]:
    """Return the themes of a run: the index, each domain and indicator, LISA and Gi*."""
    extra: dict[str, str] = {}
    directions: dict[str, int] = {}
    for domain in cfg.domains:
        column = f"{domain.name}_score"
        if column in frame.columns:
            extra[column] = f"Domain: {domain.label}"
    for spec in cfg.indicators:
        if spec.name in frame.columns:
            extra[spec.name] = spec.label
            directions[spec.name] = spec.direction
    tested = (
        f"significant at {cfg.spatial.alpha:g}"
        + ("" if cfg.spatial.correction == "none" else f" after {cfg.spatial.correction.upper()} "
           "correction")
        + f", {cfg.spatial.local_permutations:,} permutations"
    )
    notes = {
        "lisa_label": f"Local Moran's I, {tested}. Places to look, not proof.",
        "gi_label": f"Getis–Ord Gi*, {tested}.",
    }
    return [
        dataclasses.replace(layer, note=notes[layer.column]) if layer.column in notes else layer
        for layer in default_layers(frame, extra, settings=cfg.map, directions=directions)
    ]


def scheme_label(scheme: str) -> str:
    """Plain-language name of a mapclassify scheme, for legends."""
    return {"FisherJenks": "Fisher–Jenks natural breaks", "Quantiles": "Quantiles",
            "EqualInterval": "Equal intervals"}.get(scheme, scheme)


# -- validation ----------------------------------------------------------------------------
def _check(frame: Any, layers: Sequence[MapLayer], name_column: str | None) -> tuple[str, str]:
    problems: list[str] = []
    if not isinstance(frame, gpd.GeoDataFrame):
        raise ValidationError(f"the map needs a GeoDataFrame, got {type(frame).__name__}")
    code = frame.index.name
    if not code or not str(code).endswith("_code"):
        problems.append(f"map frame: index must be named like 'ward_code', got {code!r}")
        code = str(code)
    name = name_column or str(code).replace("_code", "_name")
    if frame.crs is None:
        problems.append("map frame: geometry has no CRS (expected EPSG:27700)")
    if frame.index.has_duplicates:
        problems.append(
            f"map frame: duplicate codes {preview(frame.index[frame.index.duplicated()].unique())}"
        )
    geom = frame.geometry.values
    bad = shapely.is_missing(geom) | shapely.is_empty(geom)
    if bad.any():
        problems.append(f"map frame: missing or empty geometry for {preview(frame.index[bad])}")
    kinds = shapely.get_type_id(geom[~bad])
    if not np.isin(kinds, (3, 6)).all():
        problems.append("map frame: geometry must be polygons or multipolygons")
    columns = list(frame.columns)
    wanted = [name] + [layer.column for layer in layers]
    for column in dict.fromkeys(wanted):
        if column not in frame.columns:
            problems.append(f"map frame: no column {column!r}{close_matches(column, columns)}")
    for layer in layers:
        if layer.kind not in KINDS:
            problems.append(
                f"map layer {layer.column!r}: kind {layer.kind!r} is not one of {', '.join(KINDS)}"
            )
    if not layers:
        problems.append("map: at least one layer is needed")
    if problems:
        raise ValidationError(problems)
    return str(code), name


# -- the data sent to the browser ---------------------------------------------------------
class _Columns:
    """Columns sent to the browser, each encoded once."""

    def __init__(self) -> None:
        self.encoded: dict[str, dict[str, Any]] = {}
        self.decimals: dict[str, int] = {}

    def number(self, key: str, values: pd.Series, decimals: int | None = None) -> str:
        if key not in self.encoded:
            d = _webenc.decimals_for(values) if decimals is None else decimals
            self.decimals[key] = d
            self.encoded[key] = {
                "type": "number",
                "decimals": d,
                "values": _webenc.encode_numbers(pd.to_numeric(values, errors="coerce"), d),
            }
        return key

    def text(self, key: str, values: pd.Series) -> str:
        if key not in self.encoded:
            self.encoded[key] = {"type": "text", **_webenc.encode_strings(values)}
        return key


def _theme(
    layer: MapLayer, values: pd.Series, settings: MapSettings, cols: _Columns
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the theme sent to the browser and its tooltip row."""
    if layer.kind == "continuous":
        y = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        classes = classify(y, settings.scheme, settings.k)
        colors = palette(layer.palette or SEQUENTIAL_OTHER, classes.k)
        if layer.direction < 0:
            colors = colors[::-1]
        d = _webenc.decimals_for(y)
        lower = classes.bins[:-1].tolist()
        if classes.k:  # no class at all when every value is missing (e.g. all withheld)
            lower.insert(0, float(np.nanmin(y)))
        legend = [
            {"color": colors[i], "label": f"{_fmt(lo, d)} – {_fmt(hi, d)} ({classes.counts[i]})"}
            for i, (lo, hi) in enumerate(zip(lower, classes.bins, strict=True))
        ]
        codes = classes.yb
        key = cols.number(layer.column, values, d)
        row = {"label": layer.label, "value": key, "kind": "number"}
    elif layer.kind == "significance":
        p = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        bins = np.asarray(SIGNIFICANCE_BINS)
        names = [f"p ≤ {b:g}" for b in bins] + [f"Not significant (p > {bins[-1]:g})"]
        shades = [*SIGNIFICANCE_COLORS, NOT_SIGNIFICANT]
        idx = np.where(np.isfinite(p), np.searchsorted(bins, p, side="left"), -1)
        used = sorted(set(idx[idx >= 0].tolist()) | {len(bins)})
        codes = np.array([used.index(i) if i >= 0 else -1 for i in idx.tolist()], dtype=int)
        colors = [shades[i] for i in used]
        legend = [{"color": shades[i], "label": f"{names[i]} ({int((idx == i).sum())})"}
                  for i in used]
        row = {"label": layer.label, "value": cols.number(layer.column, values, P_DECIMALS),
               "kind": "p"}
    else:
        text = [None if _missing(v) else str(v) for v in values]
        present = [v for v in text if v is not None]
        order, colors = _categories(layer, present)
        codes = np.array([-1 if v is None else order.index(v) for v in text], dtype=int)
        legend = [{"color": colors[i], "label": f"{c} ({present.count(c)})"}
                  for i, c in enumerate(order)]
        row = {"label": layer.label, "value": cols.text(layer.column, values), "kind": "text"}
    if (codes < 0).any():
        legend.append({"color": "#ffffff", "label": f"No data ({int((codes < 0).sum())})"})
    theme = {
        "title": layer.label,
        "note": layer.note,
        "colors": colors,
        "legend": legend,
        "classes": "".join(" " if c < 0 else _BASE36[c] for c in codes.tolist()),
    }
    return theme, row


_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _categories(layer: MapLayer, present: Sequence[str]) -> tuple[list[str], list[str]]:
    found = list(dict.fromkeys(sorted(present)))
    given = dict(layer.colors or {})
    if layer.column.startswith("lisa") and not given:
        given = dict(LISA_COLORS)
    if given:
        unknown = [c for c in found if c not in given]
        if unknown:
            raise ValidationError(
                f"map layer {layer.column!r}: no colour for value(s) {preview(unknown)}; "
                f"known: {', '.join(given)}"
            )
        order = [c for c in given if c in found or c.lower().startswith("not significant")]
        return order, [given[c] for c in order]
    if layer.column.startswith("gi"):
        return _gi_categories(found)
    if len(found) > len(OKABE_ITO):
        raise ValidationError(
            f"map layer {layer.column!r}: {len(found)} categories; at most {len(OKABE_ITO)} "
            "can be told apart (give colors=...)"
        )
    return found, list(OKABE_ITO[: len(found)])


def _gi_categories(found: Sequence[str]) -> tuple[list[str], list[str]]:
    """Order Gi* labels hot (strongest first), not significant, cold (weakest first)."""

    def confidence(label: str) -> float:
        m = re.search(r"(\d+(?:\.\d+)?)\s*%", label)
        return float(m.group(1)) if m else 0.0

    hot = sorted((c for c in found if "hot" in c.lower()), key=confidence, reverse=True)
    cold = sorted((c for c in found if "cold" in c.lower()), key=confidence)
    rest = [c for c in found if c not in hot and c not in cold]
    if len(hot) > len(HOT) or len(cold) > len(COLD) or len(rest) > 1:
        raise ValidationError(
            f"Gi* labels not understood: {preview(found)} (expected hot/cold spot labels)"
        )
    colors = [*HOT[: len(hot)], *[NOT_SIGNIFICANT] * len(rest), *COLD[len(COLD) - len(cold) :]]
    return hot + rest + cold, colors


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- assets --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS from the ``django-js-lib-leaflet`` package, images inlined."""
    try:
        static = resources.files("js_lib_leaflet") / "static" / "js_lib_leaflet"
        js = (static / "leaflet.js").read_text(encoding="utf-8")
        css = (static / "leaflet.css").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:  # pragma: no cover - packaging
        raise ModuleNotFoundError(
            "a self-contained map needs Leaflet from the 'django-js-lib-leaflet' package "
            "(pip install django-js-lib-leaflet), or MapSettings(self_contained=False)"
        ) from exc
    if f"Leaflet {LEAFLET_VERSION}" not in js[:300]:  # pragma: no cover - packaging
        raise ModuleNotFoundError(f"django-js-lib-leaflet does not carry Leaflet {LEAFLET_VERSION}")
    js = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", js)

    def inline(match: re.Match[str]) -> str:
        data = (static / "images" / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

    css = re.sub(r"url\(images/([\w.-]+\.png)\)", inline, css)
    return js, css


@functools.lru_cache(maxsize=1)
def _runtime() -> tuple[str, str]:
    return (
        (_ASSETS / "need_map.js").read_text(encoding="utf-8"),
        (_ASSETS / "need_map.css").read_text(encoding="utf-8"),
    )


def _script(code: str) -> str:
    if re.search(r"</script", code, re.IGNORECASE):  # pragma: no cover - guard
        raise ValueError("inline script contains '</script'")
    return f"<script>{code}</script>"


class _Raw(Element):
    """Literal HTML, inserted as it is (never read as a Jinja template)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Raw"
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


class _NeedMap(MacroElement):
    """Creates the JS object that draws the areas, legend and title."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = new GeoSendNeedMap(
            {{ this._parent.get_name() }},
            JSON.parse(document.getElementById({{ this.data_id|tojson }}).textContent)
        );
        {% endmacro %}
        """
    )

    def __init__(self, data_id: str) -> None:
        super().__init__()
        self._name = "NeedMap"
        self.data_id = data_id


class _NeedMapLayer(Layer):
    """A theme or overlay made by the need-map object (``theme(i)``, ``labels()``...)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {{ this.owner.get_name() }}.{{ this.call }};
        {% endmacro %}
        """
    )

    def __init__(self, owner: _NeedMap, call: str, *, name: str, overlay: bool, show: bool):
        # Leaflet's layer control writes names as HTML: escape them here
        super().__init__(name=html.escape(name), overlay=overlay, control=True, show=show)
        self._name = "NeedMapLayer"
        self.owner = owner
        self.call = call


# -- the map -------------------------------------------------------------------------------
def build_map(
    frame: gpd.GeoDataFrame,
    layers: Sequence[MapLayer] | None = None,
    *,
    settings: MapSettings | None = None,
    title: str = "",
    subtitle: str = "",
    name_column: str | None = None,
    points: gpd.GeoDataFrame | None = None,
    points_name: str = "name",
    points_radius_m: float | None = None,
    points_title: str = "Hubs",
    labels: bool | None = None,
    simplify_m: float | None = None,
    attribution: str = DEFAULT_ATTRIBUTION,
) -> folium.Map:
    """Build the interactive need map.

    Parameters
    ----------
    frame : GeoDataFrame
        One row per area, indexed by ``ward_code`` (or ``lsoa_code``), with a CRS (EPSG:27700
        expected), a name column (``ward_name``) and the layers' columns. ``rank``,
        ``rank_p05``/``rank_p95``, ``top_drivers`` and ``{column}_lo``/``{column}_hi``
        intervals are shown in the tooltip when present. The frame is not modified.
    layers : sequence of MapLayer, optional
        Themes in layer-control order; the first is shown on opening. Defaults to
        :func:`default_layers`.
    settings : MapSettings, optional
        Classification scheme and k, ``self_contained`` and ``tiles``.
    title, subtitle : str
        Shown in a box at the top left and in the page title.
    name_column : str, optional
        Defaults to the index name with ``_code`` replaced by ``_name``.
    points : GeoDataFrame, optional
        Point sites (hubs) drawn as an overlay, named by ``points_name``, each with a
        service-area circle of ``points_radius_m`` metres when given.
    points_name, points_radius_m, points_title
        See ``points``.
    labels : bool, optional
        Draw area names on the map; by default when there are at most ``MAX_LABELS`` areas.
    simplify_m : float, optional
        Simplification tolerance in metres (Douglas–Peucker, applied once to each shared
        border); by default :func:`geo_send._webenc.auto_tolerance` (one screen pixel at the
        zoom where a median area spans 256 pixels). 0 keeps every vertex.
    attribution : str
        Data attribution shown at the bottom right.

    Returns
    -------
    folium.Map

    Raises
    ------
    ValidationError
        If the frame lacks a column, has no CRS, duplicate codes or empty geometry, or a
        categorical layer has values without a colour.
    """
    settings = settings or MapSettings()
    layers = list(layers) if layers is not None else default_layers(frame, settings=settings)
    code, name = _check(frame, layers, name_column)
    n = len(frame)

    projected = frame.geometry
    if projected.crs is not None and projected.crs.is_geographic:
        projected = projected.to_crs(3857)
    tolerance = _webenc.auto_tolerance(projected.values) if simplify_m is None else simplify_m
    geometry = _webenc.encode_geometry(projected.values, crs=projected.crs, tolerance=tolerance)

    cols = _Columns()
    columns = set(frame.columns)
    rows: list[dict[str, Any]] = []
    tooltip = {
        "name": cols.text(name, frame[name]),
        "code": cols.text(code, pd.Series(frame.index.astype(str), index=frame.index)),
        "rows": rows,
    }
    if "rank" in columns:
        rank_row: dict[str, Any] = {
            "label": "Rank (1 = most need)",
            "value": cols.number("rank", frame["rank"], 0),
            "kind": "rank",
            "of": int(pd.to_numeric(frame["rank"], errors="coerce").notna().sum()),
        }
        if {"rank_p05", "rank_p95"} <= columns:
            rank_row["lo"] = cols.number("rank_p05", frame["rank_p05"], 0)
            rank_row["hi"] = cols.number("rank_p95", frame["rank_p95"], 0)
        rows.append(rank_row)
    themes = []
    for i, layer in enumerate(layers):
        theme, row = _theme(layer, frame[layer.column], settings, cols)
        if layer.kind == "continuous":
            lo, hi = f"{layer.column}_lo", f"{layer.column}_hi"
            if {lo, hi} <= columns:
                d = cols.decimals[row["value"]]
                row["lo"] = cols.number(lo, frame[lo], d)
                row["hi"] = cols.number(hi, frame[hi], d)
        themes.append(theme)
        rows.append(row)
        if i == 0 and "top_drivers" in columns:
            drivers = cols.text("top_drivers", frame["top_drivers"])
            rows.append({"label": "Top drivers", "value": drivers,
                         "kind": "text"})

    draw_labels = n <= MAX_LABELS if labels is None else labels
    label_spec = None
    if draw_labels:
        at = gpd.GeoSeries(shapely.point_on_surface(projected.values),
                           crs=projected.crs).to_crs(WEB_CRS)
        label_spec = {
            "lat": cols.number("_label_lat", pd.Series(at.y.values), _webenc.PRECISION),
            "lng": cols.number("_label_lng", pd.Series(at.x.values), _webenc.PRECISION),
            "text": tooltip["name"],
        }

    west, south, east, north = geometry.bounds
    point_spec = None
    if points is not None:
        point_spec = _points(points, points_name, points_radius_m, points_title)

    data = {
        "n": n,
        "title": title,
        "subtitle": subtitle,
        "attribution": attribution,
        "geometry": {"arcs": geometry.arcs, "shapes": geometry.shapes,
                     "scale": 10**_webenc.PRECISION},
        "columns": cols.encoded,
        "tooltip": tooltip,
        "themes": themes,
        "labels": label_spec,
        "points": point_spec,
        # fitted once, without animation; the right-hand column is left to the layer
        # control and the legend
        "bounds": [[south, west], [north, east]],
        "padding": {"topLeft": [10, 10], "bottomRight": [RIGHT_PANEL_PX, 10]},
        "style": {"color": "#4d4d4d", "weight": 1.0 if n <= 300 else 0.6 if n <= 3000 else 0.25,
                  "fillOpacity": 0.85},
    }

    m = folium.Map(
        location=[(south + north) / 2, (west + east) / 2],
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        zoom_start=11,
    )
    payload = _json_for_script(data)
    # folium names every element with a random id; a digest of the content instead makes
    # the same data give the same file (and two different maps on one page differ)
    m._id = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
    if settings.self_contained:
        m.default_js = []
        m.default_css = []
        leaflet_js, leaflet_css = _leaflet_assets()
        head = f"<style>{leaflet_css}</style>\n{_script(leaflet_js)}"
    else:
        m.default_js = [("leaflet", f"{LEAFLET_CDN}/leaflet.js")]
        m.default_css = [("leaflet_css", f"{LEAFLET_CDN}/leaflet.css")]
        head = ""
    runtime_js, runtime_css = _runtime()
    figure = m.get_root()
    figure.title = html.escape(title or "Need map")
    figure.header.add_child(_Raw(f"{head}\n<style>{runtime_css}</style>"), name="geo_send_head")
    need_map = _NeedMap(data_id=f"geo-send-data-{m._id}")
    figure.html.add_child(
        _Raw(
            f'<script type="application/json" id="{need_map.data_id}">'
            f"{payload}</script>\n{_script(runtime_js)}"
        ),
        name="geo_send_data",
    )
    m.add_child(need_map)
    for i, layer in enumerate(layers):
        m.add_child(_NeedMapLayer(need_map, f"theme({i})", name=layer.label, overlay=False,
                                  show=i == 0))
    if label_spec is not None:
        m.add_child(_NeedMapLayer(need_map, "labels()", name="Names", overlay=True, show=True))
    if point_spec is not None:
        m.add_child(_NeedMapLayer(need_map, "points()", name=points_title, overlay=True, show=True))
    if settings.tiles:
        folium.TileLayer("OpenStreetMap", name="Basemap (needs internet)", overlay=True,
                         control=True, show=True).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    _number_elements(m.get_root(), m._id[:24])
    return m


def _number_elements(root: Element, prefix: str) -> None:
    """Give every element below ``root`` but the map an id from ``prefix`` and its order."""
    order = 0
    stack = [root]
    while stack:
        element = stack.pop()
        if not isinstance(element, folium.Map):
            element._id = f"{prefix}{order:08x}"
            order += 1
        stack.extend(reversed(list(element._children.values())))


def _points(points: gpd.GeoDataFrame, name: str, radius_m: float | None, title: str) -> dict:
    problems = []
    if not isinstance(points, gpd.GeoDataFrame) or points.crs is None:
        raise ValidationError("map points: need a GeoDataFrame with a CRS")
    if not (points.geom_type == "Point").all():
        problems.append("map points: every geometry must be a Point")
    if name not in points.columns:
        hint = close_matches(name, list(points.columns))
        problems.append(f"map points: no column {name!r}{hint}")
    if radius_m is not None and not radius_m > 0:
        problems.append(f"map points: radius must be positive, got {radius_m}")
    if problems:
        raise ValidationError(problems)
    web = points.to_crs(WEB_CRS)
    return {
        "title": title,
        "lat": _webenc.encode_numbers(web.geometry.y.values, _webenc.PRECISION),
        "lng": _webenc.encode_numbers(web.geometry.x.values, _webenc.PRECISION),
        "decimals": _webenc.PRECISION,
        "names": [str(v) for v in points[name]],
        "radius_m": None if radius_m is None else float(radius_m),
        "marker_label": "Site (hover for its name)",
        "circle_label": f"Within {_fmt(radius_m / 1000, 1)} km" if radius_m else "",
    }


def render_map(
    frame: gpd.GeoDataFrame, layers: Sequence[MapLayer] | None = None, **kwargs: Any
) -> str:
    """Return the HTML text of :func:`build_map` (the writer saves it as ``need_map.html``)."""
    return build_map(frame, layers, **kwargs).get_root().render()
