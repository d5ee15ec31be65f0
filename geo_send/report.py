"""``report.html``: a one-page, printable summary for commissioners.

:func:`render_report` takes plain inputs (a ranked frame, dicts, strings, PNG bytes) and
returns one self-contained HTML page: figures are embedded as base64 PNG, the style is
inline, there is no script, and links to the CSV and the interactive map are relative.
The template is rendered by Jinja2 with autoescaping on, so every value is HTML-escaped.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import pandas as pd

from ._errors import ValidationError, close_matches
from .config import Config, area_label

__all__ = ["ReportSection", "render_report", "describe_moran", "default_caveats", "run_summary",
           "TOP_N"]

TOP_N = 10
"""Areas listed in the report's table."""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("geo_send", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class ReportSection:
    """An optional section after the first page (trends, conversion, representation, ...).

    Attributes
    ----------
    heading : str
    paragraphs : tuple of str
        Plain text, escaped like every other value.
    figure : bytes or None
        A PNG shown under the text.
    caption : str
    """

    heading: str
    paragraphs: tuple[str, ...] = ()
    figure: bytes | None = None
    caption: str = ""


def describe_moran(
    stats: Mapping[str, Any] | None, *, alpha: float = 0.05, level: str = "ward"
) -> str:
    """Global Moran's I in plain words.

    Parameters
    ----------
    stats : mapping
        ``i`` (or ``I``), ``p_sim`` and optionally ``expected_i`` (or ``expected_I``) and
        ``permutations``, as in ``spatial_stats.json``.
    alpha : float
        Significance level for the wording.

    Returns
    -------
    str
        One or two sentences, with the statistic and its pseudo p-value in brackets.
    """
    stats = {k.lower(): v for k, v in (stats or {}).items()}
    if stats.get("i") is None or stats.get("p_sim") is None:
        return "Spatial autocorrelation was not computed for this run."
    i, p = float(stats["i"]), float(stats["p_sim"])
    expected = stats.get("expected_i")
    perms = stats.get("permutations")
    figures = f"Moran's I = {i:.2f}"
    if expected is not None:
        figures += f", against {float(expected):.2f} expected with no pattern"
    figures += f"; permutation p = {p:.3g}"
    if perms:
        figures += f" from {int(perms):,} permutations"
    areas = area_label(level, plural=True)
    if p > alpha:
        words = (f"There is no clear geographical pattern: the index of neighbouring {areas} is "
                 "no more alike than chance would give.")
    elif expected is None or i > float(expected):
        words = (f"Need is geographically clustered: {areas} with high need tend to border "
                 f"other {areas} with high need, and low borders low.")
    else:
        words = (f"Need is geographically dispersed: neighbouring {areas} tend to differ more "
                 "than chance would give.")
    return f"{words} ({figures}.)"


def default_caveats(*, level: str = "ward", threshold: int = 5) -> list[str]:
    """Return the caveats every report carries."""
    one, many = area_label(level), area_label(level, plural=True)
    return [
        "School-located, not resident: SEN support and EHC plan counts are for pupils at "
        f"schools located in each {one}, not for children who live there. A {one} with a "
        "large school draws pupils from its neighbours; resident-based counts held by the "
        "council give a truer picture.",
        f"Small numbers: rates in {many} with few pupils or children move a lot from year to "
        "year. The intervals show this; neighbouring ranks often cannot be told apart.",
        f"Suppressed values: counts of fewer than {threshold} children, and counts that would "
        "reveal one, are withheld from the published table and map, with the rates built on "
        "them; the index itself uses the true values. Values withheld at source ('c') are "
        "missing: a missing value is left out of its domain, never counted as zero.",
        f"Clusters: local (LISA) clusters are tested {one} by {one}; about one in twenty "
        "is flagged by chance. Treat them as places to look, not proof.",
        "Relative, not absolute: the index ranks need within the area; it is not a count of "
        "children who need support.",
    ]


def run_summary(
    cfg: Config, *, n_areas: int | None = None, version: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Describe a run for the report: what was run, and the data vintages.

    Returns
    -------
    run : dict of str to str
        Configuration in words (areas, domains and weights, method, seed).
    vintages : dict of str to str
        Source and vintage per indicator, where the data dictionary records it.
    """
    from .build import COLUMN_DOCS

    run: dict[str, str] = {}
    if cfg.source is not None:
        run["Configuration"] = cfg.source.name
    if n_areas is not None:
        run["Areas"] = f"{n_areas} {cfg.areas_label} in {cfg.area_name}"
    run["Domains (weight)"] = "; ".join(f"{d.label} ({d.weight:g})" for d in cfg.domains)
    run["Method"] = (
        f"{len(cfg.indicators)} indicators, {cfg.index.normalisation} normalisation, "
        f"{cfg.index.aggregation} mean"
    )
    run["Spatial statistics"] = (
        f"{cfg.spatial.weights} contiguity, {cfg.spatial.permutations:,} permutations, "
        f"alpha {cfg.spatial.alpha:g}"
    )
    run["Map classes"] = f"{cfg.map.scheme}, k = {cfg.map.k}"
    run["Seed"] = str(cfg.seed)
    if version:
        run["geo_send"] = version
    vintages: dict[str, str] = {}
    for spec in cfg.indicators:
        sources = [COLUMN_DOCS[c][2] for c in spec.source_columns if c in COLUMN_DOCS]
        vintages[spec.label] = "; ".join(dict.fromkeys(sources)) or "not recorded"
    return run, vintages


def _by_source(vintages: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """Group indicator labels by their source and vintage, in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for label, source in vintages.items():
        grouped.setdefault(source, []).append(label)
    return list(grouped.items())


def _png(data: bytes) -> str:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValidationError("report: a figure is not PNG data")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _cluster(value: Any) -> str:
    text = _text(value)
    return "–" if text.lower() in ("", "not significant") else text


def _text(value: Any) -> str:
    return "" if pd.isna(value) else str(value)


def _number(value: Any, decimals: int = 2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(v):
        return ""
    return f"{v:,.{decimals}f}"


def render_report(
    ranked: pd.DataFrame,
    *,
    area_name: str,
    level: str = "ward",
    name_column: str | None = None,
    index_column: str = "need_index",
    moran: Mapping[str, Any] | None = None,
    moran_text: str | None = None,
    alpha: float = 0.05,
    figures: Mapping[str, bytes] | None = None,
    run: Mapping[str, str] | None = None,
    vintages: Mapping[str, str] | None = None,
    caveats: Sequence[str] | None = None,
    links: Mapping[str, str] | None = None,
    top_n: int = TOP_N,
    attribution: str = "",
    sections: Sequence[ReportSection] = (),
    hubs: Sequence[str] = (),
) -> str:
    """Return the HTML text of the one-page report.

    Parameters
    ----------
    ranked : DataFrame
        One row per area indexed by code, with ``rank``, the index and the name; shown when
        present: ``rank_p05``/``rank_p95`` (rank interval), ``top_drivers``, ``lisa_label``.
    area_name, level : str
        E.g. ``"Wolverhampton"`` and ``"ward"``.
    name_column : str, optional
        Defaults to ``{level}_name``.
    index_column : str
    moran : mapping, optional
        Global Moran's I of the index, put in words by :func:`describe_moran`.
    moran_text : str, optional
        The same in words, ready made (the spatial stage's sentence); used when given.
    alpha : float
    figures : mapping of str to bytes, optional
        Caption -> PNG bytes, embedded in order in one row (up to three).
    run, vintages : mapping of str to str, optional
        What was run and the data vintages (see :func:`run_summary`).
    caveats : sequence of str, optional
        Defaults to :func:`default_caveats`.
    links : mapping of str to str, optional
        Label -> relative link; defaults to the ranked CSV and the interactive map.
    top_n : int
        Areas listed.
    attribution : str
        Data licence and attribution line.
    sections : sequence of ReportSection
        Further sections, printed from a new page; none by default.
    hubs : sequence of str
        Sentences on the hub sites, tiers and outreach
        (:func:`geo_send.siting.describe_siting`), on the first page; none by default.

    Returns
    -------
    str

    Raises
    ------
    ValidationError
        If a needed column is missing or a figure is not PNG.
    """
    name_column = name_column or f"{level}_name"
    missing = [c for c in ("rank", index_column, name_column) if c not in ranked.columns]
    if missing:
        hints = "".join(close_matches(c, list(ranked.columns)) for c in missing)
        raise ValidationError(f"report: ranked table has no column(s) {', '.join(missing)}{hints}")
    has_interval = {"rank_p05", "rank_p95"} <= set(ranked.columns)
    has_drivers = "top_drivers" in ranked.columns
    has_lisa = "lisa_label" in ranked.columns
    top = ranked.sort_values(["rank"], kind="stable").head(top_n)
    rows = []
    for code, row in top.iterrows():
        rows.append({
            "rank": _number(row["rank"], 0),
            "name": _text(row[name_column]),
            "code": str(code),
            "index": _number(row[index_column]),
            "interval": (f"{_number(row['rank_p05'], 0)}–{_number(row['rank_p95'], 0)}"
                         if has_interval else ""),
            "drivers": _text(row["top_drivers"]) if has_drivers else "",
            "lisa": _cluster(row["lisa_label"]) if has_lisa else "",
        })
    links = dict(links) if links is not None else {
        f"Ranked {area_label(level, plural=True)} (CSV)": f"ranked_{level}s.csv",
        "Interactive map": "need_map.html",
    }
    absolute = [href for href in links.values() if re.match(r"^([a-zA-Z][\w+.-]*:|//)", href)]
    if absolute:
        raise ValidationError(f"report: links must be relative paths, got {', '.join(absolute)}")
    template = _ENV.get_template("report.html.j2")
    return template.render(
        title=f"SEND need index: {area_name}",
        area_name=area_name,
        level=level,
        n=len(ranked),
        rows=rows,
        top_n=min(top_n, len(ranked)),
        has_interval=has_interval,
        has_drivers=has_drivers,
        has_lisa=has_lisa,
        moran_text=moran_text or describe_moran(moran, alpha=alpha, level=level),
        figures=[(caption, _png(data)) for caption, data in (figures or {}).items()],
        run=dict(run or {}),
        sources=_by_source(vintages or {}),
        caveats=list(caveats) if caveats is not None else default_caveats(level=level),
        links=links,
        attribution=attribution,
        hubs=list(hubs),
        sections=[
            {"heading": x.heading, "paragraphs": list(x.paragraphs), "caption": x.caption,
             "figure": _png(x.figure) if x.figure is not None else None}
            for x in sections
        ],
    )
