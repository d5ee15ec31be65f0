"""The one module that writes files: run outputs and built datasets.

Every file is written to a temporary name in the destination folder and moved into place
with :func:`os.replace`, so a failure never leaves a half-written file and earlier outputs
survive until their replacement is complete. A run's outputs are all written first and
moved into place together at the end (the manifest last), so a failure part-way leaves the
previous run's files as they were. Nothing outside the output folder is written, and
nothing is deleted but this module's own temporary files.

What is written for publication passes through :func:`geo_send.disclosure.publishable`
(small counts withheld); the unsuppressed internal copy is written only on request, under
names that say so.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import geopandas as gpd
import pandas as pd
from pyogrio.errors import DataLayerError, DataSourceError

from ._errors import OutputError
from .build import ATTRIBUTION, AreaDataset, data_dictionary, dataset_config
from .config import Config
from .disclosure import publishable, suppress_frame
from .equity import (
    describe_conversion,
    describe_representation,
    plot_funnel,
    plot_representation,
    publish_conversion,
    publish_representation,
)
from .figures import run_figures, to_png
from .mapping import layers_for_config, outreach_status, render_map
from .pipeline import Result
from .siting import describe_siting
from .report import ReportSection, default_caveats, render_report, run_summary
from .trends import describe_trends, plot_trend_map, plot_trends, publish_trends

__all__ = ["write_outputs", "write_dataset", "check_out_dir", "FLOAT_FORMAT", "PACKAGES",
           "INTERNAL_TAG"]

log = logging.getLogger(__name__)

#: Fixed float format for every CSV written: same numbers, same bytes.
FLOAT_FORMAT = "%.6g"
#: Packages whose versions the run manifest records: those a run computes with.
PACKAGES = ("geo_send", "geopandas", "shapely", "pyogrio", "pyproj", "pandas", "numpy", "scipy",
            "mapclassify", "folium", "matplotlib")
#: Columns of ``hubs.csv``, in order (``site_id`` first, as the index).
HUB_COLUMNS = ("site_name", "site_kind", "fixed", "ward_code", "ward_name",
               "need_within_distance", "need_within_distance_share",
               "children_within_distance_count", "need_covered", "need_covered_share",
               "easting", "northing")
#: Added to the names of files holding unsuppressed small counts (never to be published).
INTERNAL_TAG = "_UNSUPPRESSED_INTERNAL"


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _Staging:
    """Temporary files in one folder, moved to their destinations together at the end.

    The temporary files live directly in ``root`` (the output folder), so a failure never
    leaves a new subfolder behind; subfolders such as ``maps/`` are made on commit.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pending: list[tuple[Path, Path]] = []

    def path(self, final: Path) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=final.suffix, dir=self.root)
        os.close(fd)
        os.unlink(tmp)
        self.pending.append((Path(tmp), final))
        return Path(tmp)

    def commit(self) -> None:
        for tmp, final in self.pending:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)

    def discard(self) -> None:
        for tmp, _ in self.pending:
            if os.path.lexists(tmp):
                os.unlink(tmp)


@contextmanager
def _staged(root: Path) -> Iterator[_Staging]:
    """Stage files in ``root`` (created if needed; removed again if a failure leaves it empty)."""
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    stage = _Staging(root)
    try:
        yield stage
        stage.commit()
    finally:
        stage.discard()
        if created and not any(root.iterdir()):
            root.rmdir()


def _text_to(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


def _csv_to(path: Path, frame: pd.DataFrame, *, index: bool = True) -> None:
    _text_to(path, frame.to_csv(index=index, float_format=FLOAT_FORMAT, lineterminator="\n"))


def _bytes_to(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _json_to(path: Path, document: object) -> None:
    """Strict JSON (no NaN), fixed key order, two-space indent, final newline."""
    _text_to(path, json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n")


def _gpkg_to(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    for layer, gdf in layers.items():
        gdf.to_file(path, layer=layer, driver="GPKG", engine="pyogrio")


def check_out_dir(out_dir: str | Path, cfg: Config | None = None) -> Path:
    """Check that ``out_dir`` can take a run's outputs; return it resolved.

    Refused: a path that is (or lies under) a file; a folder that cannot be written; a
    folder that directly holds one of the run's input files or its configuration (outputs
    would sit among, and could overwrite, the inputs).

    Raises
    ------
    OutputError
        Saying what is wrong and what to do instead.
    """
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file, not a folder; give --out a folder for the outputs")
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputError(f"{out}: cannot create the output folder because {existing} is a file")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{existing}: no permission to write here; give --out a folder you "
                          "can write to")
    resolved = out.resolve()
    if cfg is not None:
        inputs = [Path(p).resolve() for p in cfg.inputs.files()]
        if cfg.source is not None:
            inputs.append(Path(cfg.source).resolve())
        clash = sorted({str(p) for p in inputs if p.parent == resolved})
        if clash:
            raise OutputError(
                f"{out}: holds the run's input file(s) {', '.join(clash)}; write the outputs to a "
                "folder of their own (e.g. a subfolder 'outputs') so that no input can be "
                "overwritten"
            )
    return resolved


def _write_text(path: Path, text: str) -> None:
    with _atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")


def _write_csv(path: Path, frame: pd.DataFrame, *, index: bool = True) -> None:
    _write_text(path, frame.to_csv(index=index, float_format=FLOAT_FORMAT, lineterminator="\n"))


def _published_csv_to(path: Path, frame: pd.DataFrame) -> None:
    """A long table with ``"c"`` markers: numbers in object columns get the fixed format."""
    cells = frame.copy()
    for column in cells.columns:
        if cells[column].dtype == object:
            cells[column] = cells[column].map(
                lambda v: FLOAT_FORMAT % v if isinstance(v, float) and v == v else v)
    _csv_to(path, cells, index=False)


def _write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    with _atomic(path) as tmp:
        for layer, gdf in layers.items():
            gdf.to_file(tmp, layer=layer, driver="GPKG", engine="pyogrio")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_outputs(
    result: Result,
    out_dir: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
    unsuppressed_internal_copy: bool = False,
) -> dict[str, Path]:
    """Write the outputs of a run into ``out_dir``.

    Writes ``ranked_wards.csv``, ``need_index.gpkg`` (layer ``wards``, and ``hubs`` when the
    run sited hubs), ``need_map.html``, the static figures in ``maps/`` (PNG), ``report.html``,
    ``spatial_stats.json``, ``hubs.csv`` (when the run sited hubs),
    ``scale_sensitivity.csv`` (when the run has the LSOA-scale check) and
    ``run_manifest.json``. The table, GeoPackage, map, figures and report are made from
    the publishable results (:func:`geo_send.disclosure.publishable`: small counts
    withheld and flagged in ``{column}_suppressed``). All files are written to temporary
    names first and moved into place together, the manifest last.

    Parameters
    ----------
    result : Result
    out_dir : str or Path
        Output folder; created if needed (see :func:`check_out_dir` for what is refused).
    progress : callable, optional
        Called with a short message before each file.
    unsuppressed_internal_copy : bool
        Also write the true values, with the same flags, to
        ``ranked_wards_UNSUPPRESSED_INTERNAL.csv`` and
        ``need_index_UNSUPPRESSED_INTERNAL.gpkg``, for use inside the organisation only;
        the manifest lists them under ``disclosure``.

    With the long-table inputs it also writes ``trends.csv``, ``trend_series.csv``,
    ``conversion.csv``, ``representation.csv`` and their charts in ``charts/``, small
    counts withheld by :func:`geo_send.disclosure.suppress`, and the report gains a section
    for each.

    Returns
    -------
    dict of str to Path
        Each output's name and path.

    Raises
    ------
    OutputError
        If the folder cannot be used or a file cannot be written; earlier outputs are then
        left as they were.
    """
    out = check_out_dir(out_dir, result.config)
    cfg = result.config
    timings = dict(result.timings)
    say = _timing(progress or (lambda message: log.info("%s", message)), timings)
    stem = f"ranked_{cfg.level}s"
    paths = {
        "ranked_csv": out / f"{stem}.csv",
        "geopackage": out / "need_index.gpkg",
        "map": out / "need_map.html",
        "spatial_stats": out / "spatial_stats.json",
        "report": out / "report.html",
    }
    if result.scale is not None:
        paths["scale_csv"] = out / "scale_sensitivity.csv"
    hubs = hub_table(result)
    if hubs is not None:
        paths["hubs_csv"] = out / "hubs.csv"
        # counts of children near a hub are counts of people too (no area total applies,
        # so the column-total rule may withhold one more cell than needed: on the safe side)
        hubs, _, _ = suppress_frame(hubs, (), cfg.disclosure)
    internal = {
        "ranked_csv_internal": out / f"{stem}{INTERNAL_TAG}.csv",
        "geopackage_internal": out / f"need_index{INTERNAL_TAG}.gpkg",
    }
    if unsuppressed_internal_copy:
        paths.update(internal)
    else:
        stale = [p.name for p in internal.values() if p.exists()]
        if stale:
            log.warning("%s still holds an unsuppressed internal copy from an earlier run (%s): "
                        "do not publish it", out, ", ".join(stale))
    published = publishable(result)
    try:
        with _staged(out) as stage:
            ranked = published.ranked
            say(f"writing {paths['ranked_csv'].name}")
            _csv_to(stage.path(paths["ranked_csv"]), ranked)
            say(f"writing {paths['geopackage'].name}")
            layers = {f"{cfg.level}s": published.wards.reset_index()}
            if hubs is not None:
                layers["hubs"] = gpd.GeoDataFrame(
                    hubs.reset_index(), geometry=result.hubs.geometry.values,
                    crs=result.hubs.crs,
                )
            _gpkg_to(stage.path(paths["geopackage"]), layers)
            say(f"writing {paths['map'].name}")
            map_frame = published.wards
            if "outreach" in map_frame.columns:
                map_frame = map_frame.assign(outreach_status=outreach_status(map_frame["outreach"]))
            hub_points = {}
            if hubs is not None:
                hub_points = dict(
                    points=gpd.GeoDataFrame(
                        {"site_name": hubs["site_name"].to_numpy()},
                        geometry=result.hubs.geometry.values, crs=result.hubs.crs,
                    ),
                    points_name="site_name",
                    points_radius_m=cfg.siting.service_distance_m,
                    points_title="Community SEND hubs",
                )
            _text_to(
                stage.path(paths["map"]),
                render_map(
                    map_frame,
                    layers_for_config(map_frame, cfg),
                    settings=cfg.map,
                    name_column=cfg.name_name,
                    title=f"SEND need index: {cfg.area_name}",
                    subtitle=f"{len(published.wards)} {cfg.areas_label} · hover an area for details",
                    **hub_points,
                ),
            )
            say(f"writing {paths['spatial_stats'].name}")
            _json_to(stage.path(paths["spatial_stats"]), result.spatial_stats)
            if result.scale is not None:
                say(f"writing {paths['scale_csv'].name}")
                _csv_to(stage.path(paths["scale_csv"]), result.scale)
            say("writing maps/*.png")
            figures = run_figures(published.wards, cfg)
            for name, (_, png) in figures.items():
                paths[f"maps/{name}"] = out / "maps" / name
                _bytes_to(stage.path(paths[f"maps/{name}"]), png)
            written, sections = _write_long_tables(result, out, stage, say)
            paths.update(written)

            say(f"writing {paths['report'].name}")
            run, vintages = run_summary(cfg, n_areas=len(result.wards),
                                        version=_versions()["geo_send"])
            _text_to(
                stage.path(paths["report"]),
                render_report(
                    ranked,
                    area_name=cfg.area_name,
                    level=cfg.level,
                    name_column=cfg.name_name,
                    moran_text=result.spatial_stats["variables"]["need_index"]["sentence"],
                    alpha=cfg.spatial.alpha,
                    figures={caption: png for caption, png in figures.values()},
                    run=run,
                    vintages=vintages,
                    caveats=default_caveats(level=cfg.level, threshold=cfg.disclosure.threshold),
                    links={f"Ranked {cfg.areas_label} (CSV)": paths["ranked_csv"].name,
                           "Interactive map": paths["map"].name},
                    attribution=ATTRIBUTION,
                    sections=sections,
                    hubs=(() if result.siting is None
                          else describe_siting(result.siting, result.wards[cfg.name_name])),
                ),
            )
            if hubs is not None:
                say(f"writing {paths['hubs_csv'].name}")
                _csv_to(stage.path(paths["hubs_csv"]), hubs)
            if unsuppressed_internal_copy:
                log.warning("writing an UNSUPPRESSED internal copy (%s, %s): small counts are "
                            "visible; do not publish it", internal["ranked_csv_internal"].name,
                            internal["geopackage_internal"].name)
                true = publishable(result, suppressed=False)
                _csv_to(stage.path(paths["ranked_csv_internal"]), true.ranked)
                _gpkg_to(stage.path(paths["geopackage_internal"]),
                         {f"{cfg.level}s": true.wards.reset_index()})
            say.finish()
            paths["manifest"] = out / "run_manifest.json"
            disclosure = published.summary()
            disclosure["unsuppressed_internal_copy"] = (
                [p.name for p in internal.values()] if unsuppressed_internal_copy else []
            )
            manifest = {
                "geo_send_version": _versions()["geo_send"],
                "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "config_file": str(cfg.source) if cfg.source else None,
                "rerun": _rerun(cfg),
                "config": cfg.to_dict(),
                "seed": cfg.seed,
                "inputs_sha256": result.input_hashes,
                "versions": _versions(),
                "rows": {"areas": len(result.wards), "ranked_csv": len(ranked),
                         **({"hubs_csv": len(hubs)} if hubs is not None else {})},
                "index": _index_summary(result),
                "siting": _siting_summary(result),
                "disclosure": disclosure,
                "input_notes": list(result.notes),
                "outputs": {k: p.relative_to(out).as_posix() for k, p in paths.items()},
                "timings_s": {k: round(v, 3) for k, v in timings.items()},
            }
            _text_to(stage.path(paths["manifest"]),
                     json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    except (OSError, DataSourceError, DataLayerError) as exc:
        raise OutputError(f"{out}: could not write the outputs ({exc}); earlier outputs in the "
                          "folder are unchanged") from None
    return paths


class _timing:  # noqa: N801 - used like a function
    """A progress callback that also times each step: from its message to the next one.

    ``timings["write need_map.html"]`` is the time from "writing need_map.html" to the
    next message (or to :meth:`finish`); the run manifest records them.
    """

    def __init__(self, say: Callable[[str], None], timings: dict[str, float]) -> None:
        self.say, self.timings = say, timings
        self.current: str | None = None
        self.started = 0.0

    def __call__(self, message: str) -> None:
        self.finish()
        self.current, self.started = message.replace("writing ", "write ", 1), time.perf_counter()
        self.say(message)

    def finish(self) -> None:
        """Record the time of the step in progress, if any."""
        if self.current is not None:
            self.timings[self.current] = time.perf_counter() - self.started
            self.current = None


def _rerun(cfg: Config) -> str:
    config = f" --config {cfg.source}" if cfg.source else ""
    return f"geo-send run{config} --seed {cfg.seed} --out <folder>"


def _index_summary(result: Result) -> dict:
    """Return the comparators, Monte Carlo settings and sensitivity table, JSON-ready."""
    cfg = result.config
    summary: dict = {
        "normalisation": cfg.index.normalisation,
        "aggregation": cfg.index.aggregation,
        "comparators": {},
    }
    benchmarks = {s.name: s.benchmark for s in cfg.indicators}
    for name, value in (result.comparators if result.comparators is not None else {}).items():
        summary["comparators"][name] = {
            "value": None if pd.isna(value) else float(value),
            "source": "benchmark" if benchmarks.get(name) is not None else "whole-area rate",
        }
    if result.uncertainty is not None:
        summary["uncertainty"] = result.uncertainty.settings
        summary["sensitivity"] = [
            {"assumption": name, **{k: (v.item() if hasattr(v, "item") else v)
                                    for k, v in row.items()}}
            for name, row in result.uncertainty.sensitivity.iterrows()
        ]
    return summary


def hub_table(result: Result) -> pd.DataFrame | None:
    """The rows of ``hubs.csv``: one per hub, with its ward name and easting/northing."""
    if result.hubs is None:
        return None
    hubs = result.hubs
    names = result.wards[result.config.name_name] if result.config.level == "ward" else None
    table = pd.DataFrame(hubs.drop(columns=hubs.geometry.name))
    table["ward_name"] = (
        table["ward_code"].map(names) if names is not None else pd.Series(None, index=table.index)
    )
    table["easting"] = hubs.geometry.x.round(1)
    table["northing"] = hubs.geometry.y.round(1)
    return table[list(HUB_COLUMNS)]


def _siting_summary(result: Result) -> dict | None:
    """Settings and per-model summaries for the manifest (timings live only here)."""
    if result.siting is None:
        return None
    s = result.siting.settings
    models = result.siting.summaries.reset_index()
    return {
        "p": s.p,
        "service_distance_m": s.service_distance_m,
        "fixed_sites": list(s.fixed_sites),
        "high_need_share": s.high_need_share,
        "outreach_threshold": s.outreach_threshold,
        "hubs_from": models["model"].iloc[0],
        "models": [
            {k: (None if isinstance(v, float) and v != v else v)
             for k, v in row.items()}
            for row in json.loads(models.to_json(orient="records"))
        ],
    }


def _write_long_tables(
    result: Result, out: Path, stage: _Staging, say: Callable[[str], None]
) -> tuple[dict[str, Path], list[ReportSection]]:
    """Trends, conversion and representation: tables and charts with small counts suppressed.

    Returns the paths written and the report sections (sentences and charts drawn from
    the published tables, so the report shows nothing the tables withhold).
    """
    cfg = result.config
    rule = {"threshold": cfg.disclosure.threshold, "show_zero": cfg.disclosure.show_zero}
    names = result.wards[cfg.name_name]
    paths: dict[str, Path] = {}
    sections: list[ReportSection] = []

    def chart(key: str, name: str, png: bytes) -> bytes:
        paths[key] = out / "charts" / name
        _bytes_to(stage.path(paths[key]), png)
        return png

    withheld = (f"Counts below {cfg.disclosure.threshold} are withheld (c) in the tables, "
                "with the rates computed from them, and left out of the charts.")
    if result.trends is not None and result.trend_series is not None:
        trends, series = publish_trends(result.trends, result.trend_series,
                                        code_name=cfg.code_name, **rule)
        paths["trends_csv"] = out / "trends.csv"
        paths["trend_series_csv"] = out / "trend_series.csv"
        say("writing trends.csv, trend_series.csv, charts/trends.png and charts/trend_map.png")
        _published_csv_to(stage.path(paths["trends_csv"]), trends)
        _published_csv_to(stage.path(paths["trend_series_csv"]), series)
        lines = chart("trends_chart", "trends.png", to_png(plot_trends(
            series, trends, code_name=cfg.code_name, names=names, area_name=cfg.area_name)))
        chart("trend_map", "trend_map.png", to_png(plot_trend_map(result.wards, trends,
                                                                  code_name=cfg.code_name)))
        sections.append(ReportSection(
            "Trends over time", (*describe_trends(trends, code_name=cfg.code_name), withheld),
            lines, "Rates by year; coloured where a trend differs from the rest of the area"))
    if result.conversion is not None:
        conversion = publish_conversion(result.conversion, **rule)
        paths["conversion_csv"] = out / "conversion.csv"
        say("writing conversion.csv and charts/conversion_funnel.png")
        _published_csv_to(stage.path(paths["conversion_csv"]), conversion)
        funnel = chart("conversion_chart", "conversion_funnel.png", to_png(plot_funnel(conversion)))
        sections.append(ReportSection(
            "From SEN support to an EHC plan", (*describe_conversion(conversion), withheld),
            funnel, "Funnel plot: 95% (dashed) and 99.8% (dotted) limits around the area's rate"))
    if result.representation is not None:
        representation = publish_representation(result.representation,
                                                code_name=cfg.code_name, **rule)
        paths["representation_csv"] = out / "representation.csv"
        say("writing representation.csv and charts/representation.png")
        _published_csv_to(stage.path(paths["representation_csv"]), representation)
        ratios = chart("representation_chart", "representation.png", to_png(
            plot_representation(representation, code_name=cfg.code_name)))
        sections.append(ReportSection(
            "Representation among EHC plans",
            (*describe_representation(representation, code_name=cfg.code_name), withheld),
            ratios, "Share of EHC plans ÷ share of the population, with 95% intervals"))
    return paths, sections


def write_dataset(dataset: AreaDataset, root: str | Path) -> dict[str, Path]:
    """Write a built dataset: ``boundaries/*.gpkg`` and ``data/*`` under ``root``.

    ``data/`` holds the tables, the data dictionary and two configurations: one at
    ward level (``{slug}.toml``) and one at LSOA level (``{slug}_lsoa.toml``).

    Returns
    -------
    dict of str to Path
        Each file written.
    """
    root = Path(root)
    paths = {
        "wards": root / "boundaries" / "wards.gpkg",
        "lsoas": root / "boundaries" / "lsoas.gpkg",
        "ward_table": root / "data" / "ward_indicators.csv",
        "lsoa_table": root / "data" / "lsoa_indicators.csv",
        "schools": root / "data" / "schools.csv",
        "config": root / "data" / f"{dataset.slug}.toml",
        "lsoa_config": root / "data" / f"{dataset.slug}_lsoa.toml",
        "readme": root / "data" / "README.md",
    }
    _write_gpkg(paths["wards"], {"wards": dataset.wards.reset_index()})
    _write_gpkg(paths["lsoas"], {"lsoas": dataset.lsoas.reset_index()})
    _write_csv(paths["ward_table"], dataset.ward_table)
    _write_csv(paths["lsoa_table"], dataset.lsoa_table)
    _write_csv(paths["schools"], dataset.schools, index=False)
    _write_text(paths["config"], dataset_config(dataset))
    _write_text(paths["lsoa_config"], dataset_config(dataset, level="lsoa"))
    _write_text(paths["readme"], data_dictionary(dataset))
    return paths
