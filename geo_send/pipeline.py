"""The pipeline: the only place that knows the order of the stages.

``run`` is pure: it reads the configured inputs, computes, and returns a :class:`Result`;
it writes nothing. :func:`geo_send.outputs.write_outputs` is the only writer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from . import index as index_stage
from . import indicators as indicator_stage
from . import siting as siting_stage
from . import spatial
from . import uncertainty as uncertainty_stage
from ._errors import GeoSendError, JoinError, ValidationError, combine, preview
from ._progress import Progress, step
from .config import Config, Inputs, PupilInput
from .equity import compute_conversion, compute_representation
from .join import STATUS_ORDER, PointLocator, count_pupils, join_tables, status_codes
from .load import file_sha256, read_boundaries, read_pupil_chunks, read_sites, read_table
from .trends import compute_trends
from .validate import (
    check_boundaries,
    check_codes,
    check_coordinates,
    clean_codes,
    to_numbers,
    validate_indicator_inputs,
    validate_long_table,
)

__all__ = ["Result", "run", "load_areas", "load_table", "load_inputs", "site_hubs_for",
           "analyse_long_tables"]

log = logging.getLogger(__name__)

#: Pupils this close (metres) outside the generalised boundaries go to the nearest area.
PUPIL_SNAP_M = 250.0

#: Plain-language name of the need index in sentences.
NEED_INDEX_LABEL = "SEND need index"
#: Local statistics carried into the ranked table and GeoPackage.
LOCAL_OUTPUT_COLUMNS = ("lisa_label", "lisa_p", "gi_z", "gi_label", "p_floor")
#: Siting columns carried into the ranked table and GeoPackage.
SITING_OUTPUT_COLUMNS = ("tier", "tier_reason", "nearest_hub_km", "need_covered_share",
                         "outreach", "outreach_reason")
#: Column of the LSOA table with the number of children aged 0-15 (siting demand).
CHILDREN_COLUMN = "children_0_15_count"
#: Fewest areas with a need index that a run accepts (Moran's I needs some neighbours).
MIN_AREAS = 3


@dataclass(frozen=True)
class Result:
    """Everything a run computed; nothing is written until :func:`write_outputs`.

    Attributes
    ----------
    config : Config
    wards : GeoDataFrame
        One row per area in rank order (EPSG:27700), indexed by the area code, with the
        name, rank, need index, domain scores, indicator values, the counts they were
        computed from, and the local spatial statistics.
    table : DataFrame
        The numeric inputs after validation and joins, indexed by area code.
    spatial_stats : dict
        JSON-ready spatial statistics (``spatial_stats.json``): the weights, global
        Moran's I (and EB Moran's I for rates) of the need index and every indicator with
        a plain-language sentence, the local clusters of the need index, and the
        LSOA-scale sensitivity check.
    scale : DataFrame or None
        Per ward: the need index computed for its LSOAs (population-weighted mean, rank)
        and its LSOAs in LISA clusters; ``None`` without LSOA inputs or at LSOA level.
    input_hashes : dict
        SHA-256 of every input file read.
    uncertainty : Uncertainty or None
        Monte Carlo rank intervals and sensitivity (None when ``[index] draws = 0``).
    comparators : Series or None
        The comparator of each count-based indicator (benchmark or whole-area rate).
    siting : SitingResult or None
        Hubs, per-ward service, outreach and tiers (:func:`geo_send.siting.site_hubs`);
        ``None`` when ``[siting] enabled = false`` or the inputs it needs are absent.
    notes : tuple of str
        Things noticed while reading the inputs that are not errors (e.g. repaired
        geometry); the manifest records them.
    trends, trend_series : DataFrame or None
        With ``[inputs.trends]``: each area's and the whole area's trend per measure
        (:func:`geo_send.trends.compute_trends`) and the yearly rates behind it.
    conversion : DataFrame or None
        With ``[inputs.conversion]``: SEN support to EHC plan conversion per area and
        breakdown group against the whole area (:func:`geo_send.equity.compute_conversion`).
    representation : DataFrame or None
        With ``[inputs.representation]``: share of EHC plans over share of the population
        per group, area and whole area (:func:`geo_send.equity.compute_representation`).

    All frames hold true values; :func:`write_outputs` suppresses small counts in what it
    publishes.
    timings : dict
        Seconds spent in each step (recorded in the run manifest, nowhere else).
    """

    config: Config
    wards: gpd.GeoDataFrame
    table: pd.DataFrame
    spatial_stats: dict[str, Any]
    scale: pd.DataFrame | None = None
    input_hashes: dict[str, str] = field(default_factory=dict)
    uncertainty: uncertainty_stage.Uncertainty | None = None
    comparators: pd.Series | None = None
    siting: siting_stage.SitingResult | None = None
    notes: tuple[str, ...] = ()
    trends: pd.DataFrame | None = None
    trend_series: pd.DataFrame | None = None
    conversion: pd.DataFrame | None = None
    representation: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def sensitivity(self) -> pd.DataFrame:
        """How much each assumption moves the ranking (empty when no draws were made)."""
        if self.uncertainty is None:
            return pd.DataFrame()
        return self.uncertainty.sensitivity

    @property
    def hubs(self) -> gpd.GeoDataFrame | None:
        """The chosen hubs (points, EPSG:27700, indexed by ``site_id``), or ``None``."""
        return None if self.siting is None else self.siting.hubs

    @property
    def ranked(self) -> pd.DataFrame:
        """The ranked table without geometry (what ``ranked_wards.csv`` holds)."""
        return pd.DataFrame(self.wards.drop(columns=self.wards.geometry.name))


def load_areas(cfg: Config) -> gpd.GeoDataFrame:
    """Read and validate the configured boundaries (EPSG:27700, indexed by code)."""
    areas, problems, notes = _check_areas(cfg)
    for note in notes:
        log.warning("%s", note)
    if problems:
        raise ValidationError(problems)
    return areas


def _check_areas(cfg: Config) -> tuple[gpd.GeoDataFrame, list[str], list[str]]:
    inputs = cfg.inputs
    gdf = read_boundaries(
        inputs.boundaries,
        code_column=inputs.code_column,
        name_column=inputs.name_column,
        code_name=cfg.code_name,
        layer=inputs.boundaries_layer,
    )
    areas, problems, notes = check_boundaries(
        gdf, source=str(inputs.boundaries), invalid_geometry=inputs.invalid_geometry
    )
    return areas.sort_index(), problems, notes


def load_table(cfg: Config, areas: gpd.GeoDataFrame) -> pd.DataFrame:
    """Read, check and join every configured table into one numeric frame by area code.

    Every problem across the files is collected and raised together.

    Raises
    ------
    GeoSendError
        Listing every problem found in the tables.
    """
    table, errors = _check_tables(cfg, areas)
    if errors:
        raise combine(errors)
    assert table is not None
    return table


def load_inputs(cfg: Config) -> tuple[gpd.GeoDataFrame, pd.DataFrame, list[str]]:
    """Read and check every configured input, reporting every problem in every file at once.

    The boundaries, the tables and the pupil records are all read and checked even when
    an earlier file has problems (codes are checked against the boundaries whenever
    their codes could be read), so one run lists everything to fix.

    Returns
    -------
    areas : GeoDataFrame
    table : DataFrame
    notes : list of str
        Things noticed that are not errors (e.g. repaired geometry), for the manifest.

    Raises
    ------
    GeoSendError
        One error listing every problem (:func:`geo_send._errors.combine`).
    """
    errors: list[GeoSendError] = []
    notes: list[str] = []
    areas = None
    try:
        areas, problems, notes = _check_areas(cfg)
        if problems:
            errors.append(ValidationError(problems))
    except GeoSendError as exc:
        errors.append(exc)
    table, found = _check_tables(cfg, areas)
    errors += found
    if errors:
        raise combine(errors)
    for note in notes:
        log.warning("%s", note)
    assert areas is not None and table is not None
    return areas, table, notes


def _check_tables(
    cfg: Config, areas: gpd.GeoDataFrame | None
) -> tuple[pd.DataFrame | None, list[GeoSendError]]:
    errors: list[GeoSendError] = []
    problems: list[str] = []
    needed = sorted({c for spec in cfg.indicators for c in spec.source_columns})
    specs = [(cfg.inputs.table, cfg.inputs.code_column)]
    specs += [(t.path, t.code_column) for t in cfg.inputs.extra_tables]
    frames: list[pd.DataFrame | None] = []
    codes_ok = areas is not None
    for path, code_column in specs:
        try:
            frame, found = _read_codes(cfg, path, code_column, areas)
        except GeoSendError as exc:
            errors.append(exc)
            frames.append(None)
            continue
        problems += found
        codes_ok = codes_ok and not found
        frames.append(frame)
    main, extras = frames[0], frames[1:]
    table = None
    if main is not None:
        own = [c for c in needed if c in main.columns]
        table, found = to_numbers(main, own, source=str(cfg.inputs.table),
                                  missing_values=cfg.inputs.missing_values)
        table = table.drop(columns="csv_row")
        problems += found
        for spec, extra in zip(cfg.inputs.extra_tables, extras, strict=True):
            if extra is None:
                continue
            used = [c for c in extra.columns if c in needed]
            clash = [c for c in used if c in own]
            if clash:
                problems.append(f"{spec.path}: column(s) {', '.join(clash)} already come from "
                                f"{cfg.inputs.table}")
                continue
            parsed, found = to_numbers(extra[used + ["csv_row"]], used, source=str(spec.path),
                                       missing_values=cfg.inputs.missing_values)
            parsed = parsed.drop(columns="csv_row")
            problems += found
            own += used
            if codes_ok:
                try:
                    table = join_tables(table, parsed, right_name=str(spec.path))
                except GeoSendError as exc:
                    errors.append(exc)
    pupils = None
    if cfg.inputs.pupils is not None and areas is not None:
        try:
            pupils = count_located_pupils(cfg, areas)
        except GeoSendError as exc:
            errors.append(exc)
    if all(f is not None for f in frames):
        available = set().union(*(set(f.columns) for f in frames if f is not None))
        pupil_columns = _pupil_columns(cfg.inputs.pupils)
        problems += [
            f"column {c!r} used by an indicator is in none of the input tables "
            f"({cfg.inputs.table}{''.join(', ' + str(t.path) for t in cfg.inputs.extra_tables)})"
            for c in needed if c not in available and c not in pupil_columns
        ]
    if table is not None and codes_ok and not errors and areas is not None:
        if pupils is not None:
            table = join_tables(table, pupils, right_name="pupil records")
        absent = areas.index.difference(table.index)
        table = table.reindex(areas.index)
        if len(absent):
            log.warning("%s has no row for %d area(s); their values stay missing",
                        cfg.inputs.table, len(absent))
    if table is not None:
        problems += validate_indicator_inputs(table, cfg.indicators, source=str(cfg.inputs.table))
    if problems:
        errors.insert(0, ValidationError(problems))
    return table, errors


def _read_codes(
    cfg: Config, path, code_column: str, areas: gpd.GeoDataFrame | None
) -> tuple[pd.DataFrame, list[str]]:
    frame = read_table(path, code_column=code_column, code_name=cfg.code_name)
    if areas is None:
        frame = frame.assign(**{cfg.code_name: clean_codes(frame[cfg.code_name])},
                             csv_row=frame.index.to_numpy())
        frame, problems = frame.set_index(cfg.code_name), []
    else:
        frame, problems = check_codes(frame, areas.index, source=str(path),
                                      code_name=cfg.code_name, area_name=cfg.area_name)
    return frame.drop(columns=[c for c in (cfg.name_name,) if c in frame.columns]), problems


def _pupil_columns(spec: PupilInput | None) -> set[str]:
    if spec is None:
        return set()
    return {f"{spec.prefix}_pupils_count", f"{spec.prefix}_sen_support_count",
            f"{spec.prefix}_ehcp_count"}


def count_located_pupils(cfg: Config, areas: gpd.GeoDataFrame) -> pd.DataFrame:
    """Aggregate pupil-level records to counts per area, in bounded memory.

    Each pupil is located by LSOA code (through the LSOA table's ward column) or by
    easting/northing (point in polygon, EPSG:27700). Every pupil must be located: a
    pupil with an unknown LSOA, or outside every area by more than :data:`PUPIL_SNAP_M`
    (generalised boundaries clip coasts), is an error, never dropped; pupils just outside
    go to the nearest area and are counted in a warning. The whole file is read and
    every problem reported together.

    Notes
    -----
    The file is read in chunks of :data:`geo_send.load.PUPIL_CHUNK_ROWS` rows, parsing
    only the columns needed: codes and status as categoricals (a handful of distinct
    strings per chunk, each normalised once), coordinates straight to floats. Each chunk
    becomes one integer array of area positions and one of status codes, counted with
    ``numpy.bincount``; nothing the size of the file is ever held, so memory is bounded
    by the chunk size (about 9 million pupils: see ``benchmarks/pupils.py``). A file
    whose coordinates are not plain numbers (thousands separators, markers such as
    ``c``) is read again with the coordinates as text, parsed as tables are.
    """
    try:
        return _count_located_pupils(cfg, areas, text_coordinates=False)
    except _NotPlainNumbers:
        log.info("pupil coordinates are not plain numbers: reading them as text (slower)")
        return _count_located_pupils(cfg, areas, text_coordinates=True)


class _NotPlainNumbers(Exception):
    """The C parser met text in a coordinate column."""


class _Rows:
    """The first few offending rows of a kind, and how many there are."""

    def __init__(self) -> None:
        self.first: list[str] = []
        self.count = 0

    def add(self, rows, count: int) -> None:
        """Keep the first of ``rows`` (an iterable of labels) and add ``count``."""
        self.count += count
        self.first.extend(list(rows)[: max(0, 5 - len(self.first))])

    def __str__(self) -> str:
        shown = ", ".join(self.first[:3])
        return shown + (f", … ({self.count} in all)" if self.count > 3 else f" ({self.count})")


def _count_located_pupils(
    cfg: Config, areas: gpd.GeoDataFrame, *, text_coordinates: bool
) -> pd.DataFrame:
    spec = cfg.inputs.pupils
    assert spec is not None
    source = str(spec.path)
    codes = pd.Index(areas.index, name=cfg.code_name)
    status_column = spec.status_column
    dtypes: dict[str, str] = {status_column: "category"}
    na_values: dict[str, list[str]] = {}
    if spec.lsoa_column:
        lsoa_column = spec.lsoa_column
        lookup = _lsoa_lookup(cfg, areas)
        lsoa_position = pd.Series(codes.get_indexer(lookup.to_numpy()), index=lookup.index)
        columns = [lsoa_column, status_column]
        dtypes[lsoa_column] = "category"
    else:
        x_column, y_column = str(spec.easting_column), str(spec.northing_column)
        locator = PointLocator(areas)
        columns = [x_column, y_column, status_column]
        if not text_coordinates:
            dtypes.update({x_column: "float64", y_column: "float64"})
            markers = {m.strip() for m in cfg.inputs.missing_values}
            markers = sorted(markers | {m.upper() for m in markers} | {""})
            na_values = {x_column: markers, y_column: markers}
    problems: list[str] = []
    bad_status, bad_lsoa, outside = _Rows(), _Rows(), _Rows()
    swapped = snapped = 0

    def locate(chunk: pd.DataFrame, ok: np.ndarray) -> np.ndarray:
        nonlocal swapped, snapped
        if spec.lsoa_column:
            lsoa = chunk[lsoa_column]
            labels = clean_codes(pd.Series(lsoa.cat.categories.astype(str)))
            where = np.append(lsoa_position.reindex(labels).fillna(-1).to_numpy(np.int64), -1)
            position = where[lsoa.cat.codes.to_numpy()]
            bad = position < 0
            if bad.any():
                bad_lsoa.add((f"row {r}: {v!r}" for r, v in lsoa[bad].head(5).items()),
                             int(bad.sum()))
            return position
        if text_coordinates:
            xy, found = to_numbers(chunk, [x_column, y_column], source=source,
                                   missing_values=cfg.inputs.missing_values)
            problems.extend(found)
            x, y = xy[x_column], xy[y_column]
        else:
            x, y = chunk[x_column], chunk[y_column]
        usable, found = check_coordinates(x, y, source=source, columns=(x_column, y_column))
        problems.extend(found)
        usable = usable.to_numpy(dtype=bool)
        xs, ys = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
        position = np.full(len(chunk), -1, dtype=np.int64)
        position[usable], near = locator.locate(xs[usable], ys[usable], snap_m=PUPIL_SNAP_M)
        snapped += int(near.sum())
        out = usable & (position < 0)
        if out.any():
            outside.add((f"row {r}" for r in chunk.index[out][:5]), int(out.sum()))
            flipped, _ = locator.locate(ys[out], xs[out])
            swapped += int((flipped >= 0).sum())
        return position

    progress = Progress(log, "pupil records read")
    done = 0

    def located() -> Iterator[pd.DataFrame]:
        nonlocal done
        chunks = read_pupil_chunks(spec.path, columns, dtypes=dtypes, na_values=na_values)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except ValueError as exc:
                if isinstance(exc, GeoSendError) or text_coordinates:
                    raise
                raise _NotPlainNumbers() from None
            status = status_codes(chunk[status_column])
            ok = status >= 0
            if not ok.all():
                wrong = chunk.loc[~ok, status_column].head(5)
                bad_status.add((f"row {r}: {v!r}" for r, v in wrong.items()), int((~ok).sum()))
            position = locate(chunk, ok)
            ok &= position >= 0
            done += len(chunk)
            progress.update(done)
            if problems or bad_status.count or bad_lsoa.count or outside.count:
                continue  # keep reading to report every problem; count nothing more
            yield pd.DataFrame({
                cfg.code_name: pd.Categorical.from_codes(position[ok], categories=codes),
                "status": pd.Categorical.from_codes(status[ok], categories=STATUS_ORDER),
            })

    counts = count_pupils(located(), code_name=cfg.code_name, codes=list(codes),
                          prefix=spec.prefix)
    if bad_status.count:
        problems.append(
            f"{source}: column {status_column!r} has {bad_status.count} value(s) that are "
            f"not an SEN status ({bad_status}); expected one of EHCP / SEN support / "
            "none (or the school census codes E / K / N)"
        )
    if bad_lsoa.count:
        problems.append(
            f"{source}: {bad_lsoa.count} pupil(s) have an LSOA code that is not in the area "
            f"({bad_lsoa}); expected LSOA 2021 codes of this area"
        )
    if outside.count:
        problems.append(
            f"{source}: {outside.count} pupil(s) lie outside every area, farther than "
            f"{PUPIL_SNAP_M:.0f} m ({', '.join(outside.first)}"
            f"{', …' if outside.count > len(outside.first) else ''}): the boundaries do not "
            "cover them; expected British National Grid easting/northing in metres inside "
            "the boundaries"
            + (f" (are {columns[0]} and {columns[1]} swapped? {swapped} of them fall inside "
               "with the two exchanged)" if swapped * 2 >= outside.count else "")
        )
    if problems:
        raise ValidationError(problems)
    log.info("located %s pupil records", f"{done:,}")
    if snapped:
        log.warning("%s pupil(s) lie just outside the generalised boundaries (within %.0f m) and "
                    "were given to the nearest area", f"{snapped:,}", PUPIL_SNAP_M)
    return counts


def _lsoa_lookup(cfg: Config, areas: gpd.GeoDataFrame) -> pd.Series:
    if cfg.level == "lsoa":
        return pd.Series(areas.index, index=areas.index)
    if cfg.inputs.lsoa_table is None:
        raise ValidationError(
            "[inputs.pupils] lsoa_column needs [inputs] lsoa_table (LSOA code -> ward code); "
            "or give easting_column and northing_column instead"
        )
    lsoas = read_table(cfg.inputs.lsoa_table, code_column="lsoa_code", code_name="lsoa_code")
    if "ward_code" not in lsoas.columns:
        raise ValidationError(f"{cfg.inputs.lsoa_table}: column 'ward_code' not found")
    codes = clean_codes(lsoas["lsoa_code"])
    dup = codes[codes.duplicated(keep=False)]
    if len(dup):
        raise ValidationError(
            f"{cfg.inputs.lsoa_table}: duplicated LSOA code(s) "
            f"{preview(f'{c} (row {r})' for r, c in dup.items())}; expected one row per LSOA, "
            "each in one ward"
        )
    return pd.Series(clean_codes(lsoas["ward_code"]).to_numpy(), index=codes.to_numpy())


def analyse_long_tables(cfg: Config, areas: gpd.GeoDataFrame) -> dict[str, pd.DataFrame]:
    """Trends, conversion and representation from the long tables a council declares.

    Returns
    -------
    dict
        ``trends`` and ``trend_series``, ``conversion``, ``representation`` for the
        inputs configured (``[inputs.trends]``, ...); empty when none is.

    Raises
    ------
    ValidationError
        Listing every problem across the tables.
    """
    inputs, code = cfg.inputs, cfg.code_name
    problems: list[str] = []
    tables: dict[str, pd.DataFrame] = {}

    def read(key, spec, keys, counts, year=None) -> None:
        try:
            raw = read_table(spec.path, code_column=spec.code_column, code_name=code)
            tables[key] = validate_long_table(raw, areas.index, source=str(spec.path),
                                              code_name=code, keys=keys, counts=counts,
                                              year_column=year,
                                              missing_values=cfg.inputs.missing_values)
        except ValidationError as exc:
            problems.extend(exc.problems)

    if (t := inputs.trends) is not None:
        read("trends", t, [t.year_column], [*t.count_columns, t.denominator_column],
             t.year_column)
    if (c := inputs.conversion) is not None:
        read("conversion", c, [c.year_column, *c.breakdown_columns],
             [c.sen_support_column, c.new_ehcp_column], c.year_column)
    if (r := inputs.representation) is not None:
        read("representation", r, list(r.breakdown_columns),
             [r.ehcp_column, r.population_column])
    if problems:
        raise ValidationError(problems)

    named = {"names": areas[cfg.name_name].to_dict(), "area_name": cfg.area_name,
             "code_name": code}
    out: dict[str, pd.DataFrame] = {}
    if t is not None:
        out["trends"], out["trend_series"] = compute_trends(
            tables["trends"], year_column=t.year_column, counts=t.count_columns,
            denominator=t.denominator_column, **named)
    if c is not None:
        out["conversion"] = compute_conversion(
            tables["conversion"], year_column=c.year_column, sen_support=c.sen_support_column,
            new_ehcp=c.new_ehcp_column, breakdowns=c.breakdown_columns,
            cohort_years=c.cohort_years or None, **named)
    if r is not None:
        out["representation"] = compute_representation(
            tables["representation"], ehcp=r.ehcp_column, population=r.population_column,
            breakdowns=r.breakdown_columns, **named)
    return out


def run(cfg: Config | None = None) -> Result:
    """Run the whole analysis and return the results; writes nothing.

    Parameters
    ----------
    cfg : Config, optional
        Defaults to :meth:`Config.default` (the embedded Wolverhampton data).

    Returns
    -------
    Result

    Raises
    ------
    GeoSendError
        Any input problem, as one error listing everything found.
    """
    cfg = cfg or Config.default()
    timings: dict[str, float] = {}
    with step(log, "hash", "hashing the input files", timings=timings):
        hashes = {str(p): file_sha256(p) for p in cfg.inputs.files() if p.is_file()}
    with step(log, "load", f"loading boundaries and tables ({cfg.level} level)", timings=timings):
        areas, table, notes = load_inputs(cfg)
    log.info("loaded %s areas and %d input columns", f"{len(areas):,}", table.shape[1])
    long_tables: dict[str, pd.DataFrame] = {}
    if any(x is not None for x in (cfg.inputs.trends, cfg.inputs.conversion,
                                   cfg.inputs.representation)):
        with step(log, "long_tables", "analysing trends, conversion and representation tables",
                  timings=timings):
            long_tables = analyse_long_tables(cfg, areas)

    with step(log, "index", "computing indicators and the need index", timings=timings):
        graph = smoothing_weights(cfg, areas)
        values = indicator_stage.compute_indicators(table, cfg.indicators, weights=graph)
        scores = index_stage.build_index(values, cfg.indicators, cfg.domains, cfg.index)
        rank = index_stage.rank_areas(scores["need_index"])

    indexed = int(scores["need_index"].notna().sum())
    if indexed < MIN_AREAS:
        raise ValidationError(
            f"{cfg.area_name} has {indexed} {cfg.level}(s) with a need index at {cfg.level} "
            f"level; ranking and spatial statistics need at least {MIN_AREAS} (use "
            f"{'a larger area' if cfg.level == 'ward' else 'ward level or a larger area'})"
        )
    mc_columns = uncertainty_stage.rank_columns(cfg.index.top_n)
    uncertainty = None
    if cfg.index.draws > 0:
        with step(log, "monte_carlo", f"Monte Carlo rank intervals ({cfg.index.draws:,} draws)",
                  timings=timings):
            uncertainty = uncertainty_stage.assess_uncertainty(
                table, cfg.indicators, cfg.domains, cfg.index, seed=cfg.seed, weights=graph
            )
        intervals = uncertainty.areas[mc_columns]
    else:
        intervals = pd.DataFrame(np.nan, index=table.index, columns=mc_columns)

    with step(log, "spatial",
              f"spatial statistics for {len(areas):,} areas (weights, Moran's I, LISA and Gi* "
              f"with {cfg.spatial.local_permutations:,} permutations)", timings=timings):
        spatial_result = spatial.analyse(
            areas,
            spatial_variables(cfg, table, values, scores["need_index"]),
            cfg.spatial,
            seed=cfg.seed,
            names=areas[cfg.name_name],
        )
    local = spatial_result.local
    scale, scale_stats = None, None
    if cfg.level == "ward" and cfg.inputs.lsoa_boundaries and cfg.inputs.lsoa_table:
        with step(log, "scale", "checking the index at LSOA scale", timings=timings):
            scale, scale_stats = lsoa_scale(cfg, scores["need_index"], areas[cfg.name_name])
    spatial_stats = {**spatial_result.summary, "scale_sensitivity": scale_stats}

    counts = sorted({c for spec in cfg.indicators for c in spec.source_columns}
                    - {s.name for s in cfg.indicators})
    wards = pd.concat(
        [
            areas[[cfg.name_name]],
            rank,
            scores[["need_index"]],
            intervals,
            scores[["top_drivers"]],
            scores[[f"{d.name}_score" for d in cfg.domains]],
            scores[[f"{d.name}_contribution" for d in cfg.domains]],
            values,
            scores[[f"{s.name}_contribution" for s in cfg.indicators]],
            table[counts],
            local[list(LOCAL_OUTPUT_COLUMNS)],
            scores[["indicators_missing_count"]],
        ],
        axis=1,
    )
    wards = gpd.GeoDataFrame(wards, geometry=areas.geometry, crs=areas.crs)
    wards = wards.sort_values(["rank"], kind="stable")
    with step(log, "siting", "siting hubs", timings=timings):
        siting = site_hubs_for(cfg, wards)
    if siting is not None:
        service = siting.wards[list(SITING_OUTPUT_COLUMNS)]
        geometry = wards.geometry.name
        wards = wards.drop(columns=geometry).join(service).join(wards[[geometry]])
        wards = gpd.GeoDataFrame(wards, geometry=geometry, crs=areas.crs)
    return Result(config=cfg, wards=wards, table=table, spatial_stats=spatial_stats,
                  scale=scale, input_hashes=hashes, uncertainty=uncertainty,
                  comparators=indicator_stage.comparators(table, cfg.indicators),
                  siting=siting, notes=tuple(notes), timings=timings, **long_tables)


def smoothing_weights(cfg: Config, areas: gpd.GeoDataFrame) -> spatial.Weights | None:
    """Spatial weights for ``smoothing = "spatial_eb"``; None when no indicator uses it."""
    if not any(s.smoothing == "spatial_eb" for s in cfg.indicators):
        return None
    return spatial.build_weights(areas, cfg.spatial)


def site_hubs_for(cfg: Config, wards: gpd.GeoDataFrame) -> siting_stage.SitingResult | None:
    """Site hubs for the ranked wards: demand from the LSOAs, candidates from the schools.

    Demand points are the LSOAs of ``[inputs] lsoa_boundaries`` (representative points) with
    weight = children aged 0-15 (``children_0_15_count`` in ``lsoa_table``) x the percentile
    of their ward's need index (through the table's best-fit ``ward_code``). Candidate sites
    are the schools of ``[inputs] schools`` located in the area's wards, plus every site of
    ``[siting] sites``.

    Returns
    -------
    SitingResult or None
        ``None`` (with a logged warning saying why) when siting is disabled, the level is not
        ward, or the LSOA inputs or every candidate source are missing.

    Raises
    ------
    ValidationError, JoinError, SitingError
        Bad LSOA or site tables, LSOAs naming unknown wards, ill-posed siting settings.
    """
    settings = cfg.siting
    inputs = cfg.inputs
    if not settings.enabled:
        return None
    missing = [
        f"[inputs] {name}"
        for name, value in (("lsoa_boundaries", inputs.lsoa_boundaries),
                            ("lsoa_table", inputs.lsoa_table))
        if value is None
    ]
    if inputs.schools is None and settings.sites is None:
        missing.append("[inputs] schools or [siting] sites")
    if cfg.level != "ward" or missing:
        why = "it works on wards" if cfg.level != "ward" else f"it needs {', '.join(missing)}"
        log.warning("hub siting skipped: %s", why)
        return None
    assert inputs.lsoa_boundaries is not None and inputs.lsoa_table is not None
    lsoas = read_boundaries(inputs.lsoa_boundaries, code_column="lsoa_code",
                            name_column=None, code_name="lsoa_code")
    raw = read_table(inputs.lsoa_table, code_column="lsoa_code", code_name="lsoa_code")
    problems = [
        f"{inputs.lsoa_table}: column {c!r} not found (needed for hub siting)"
        for c in ("ward_code", CHILDREN_COLUMN) if c not in raw.columns
    ]
    if problems:
        raise ValidationError(problems)
    children, problems = to_numbers(raw, [CHILDREN_COLUMN], source=str(inputs.lsoa_table))
    if problems:
        raise ValidationError(problems)
    table = pd.DataFrame(
        {"ward_code": raw["ward_code"].str.strip().to_numpy(),
         CHILDREN_COLUMN: children[CHILDREN_COLUMN].to_numpy()},
        index=pd.Index(raw["lsoa_code"].to_numpy(), name="lsoa_code"),
    )
    unknown = sorted(set(table["ward_code"]) - set(wards.index))
    if unknown:
        raise JoinError(f"{inputs.lsoa_table}: ward_code(s) not among the area's wards: "
                        f"{', '.join(unknown[:5])} ({len(unknown)})")
    no_shape = table.index.difference(lsoas.index)
    no_row = lsoas.index.difference(table.index)
    if len(no_shape) or len(no_row):
        raise JoinError(
            f"LSOA codes differ between {inputs.lsoa_boundaries.name} and "
            f"{inputs.lsoa_table.name}: {len(no_shape)} only in the table "
            f"({', '.join(no_shape[:5])}), {len(no_row)} only in the boundaries "
            f"({', '.join(no_row[:5])})"
        )
    table["ward_need_index"] = wards["need_index"].reindex(table["ward_code"]).to_numpy()
    frame = gpd.GeoDataFrame(table, geometry=lsoas.geometry.reindex(table.index), crs=lsoas.crs)
    demand = siting_stage.demand_from_lsoas(
        frame, need_column="ward_need_index", children_column=CHILDREN_COLUMN
    )
    schools = None
    if inputs.schools is not None:
        schools = read_table(inputs.schools, code_column="urn", code_name="urn")
        if "ward_code" in schools.columns:
            inside = schools["ward_code"].str.strip().isin(wards.index)
            log.info("candidate sites: %d of %d schools lie in the area's wards (the others "
                     "have no location or lie outside)", int(inside.sum()), len(schools))
            schools = schools.loc[inside]
    sites = read_sites(settings.sites) if settings.sites is not None else None
    candidates = siting_stage.candidate_sites(schools, sites)
    result = siting_stage.site_hubs(
        demand, candidates, wards, settings, need_column="need_index", models=settings.models
    )
    log.info("%r", result)
    return result


def spatial_variables(
    cfg: Config, table: pd.DataFrame, values: pd.DataFrame, need_index: pd.Series
) -> dict[str, spatial.Variable]:
    """The need index and every indicator, with counts for count-based ones."""
    out = {"need_index": spatial.Variable(NEED_INDEX_LABEL, need_index)}
    for spec in cfg.indicators:
        counts = (
            {"numerator": table[str(spec.numerator)], "denominator": table[str(spec.denominator)]}
            if spec.is_count_based
            else {}
        )
        out[spec.name] = spatial.Variable(spec.label, values[spec.name], **counts)
    return out


def lsoa_scale(
    cfg: Config, ward_index: pd.Series, ward_names: pd.Series
) -> tuple[pd.DataFrame | None, dict | None]:
    """Scale sensitivity (MAUP): the same index at LSOA level, summarised per ward.

    Runs the ward configuration on ``[inputs] lsoa_boundaries`` and ``lsoa_table`` with
    the indicators whose columns that table has (the others are listed as left out;
    domains without an indicator drop out and the remaining weights are rescaled), then
    averages the LSOA index to wards, weighted by ``[spatial] lsoa_population``, and
    counts each ward's LSOAs in LISA clusters. The LSOA table's ``ward_code`` column is
    the (best-fit) lookup.

    Returns
    -------
    (DataFrame or None, dict or None)
        The per-ward comparison (:func:`geo_send.spatial.scale_sensitivity`) and its
        JSON-ready summary; ``(None, None)`` at LSOA level or without LSOA inputs.
    """
    inputs = cfg.inputs
    if cfg.level != "ward" or inputs.lsoa_boundaries is None or inputs.lsoa_table is None:
        return None, None
    raw = read_table(inputs.lsoa_table, code_column="lsoa_code", code_name="lsoa_code")
    problems = [
        f"{inputs.lsoa_table}: column {c!r} not found (needed for the LSOA-scale check)"
        for c in ("ward_code", cfg.spatial.lsoa_population)
        if c not in raw.columns
    ]
    if problems:
        raise ValidationError(problems)
    usable = tuple(s for s in cfg.indicators if all(c in raw.columns for c in s.source_columns))
    left_out = [s.name for s in cfg.indicators if s not in usable]
    domains = tuple(d for d in cfg.domains if any(s.domain == d.name for s in usable))
    if not usable:
        log.warning("LSOA-scale check skipped: %s has none of the indicators' columns",
                    inputs.lsoa_table)
        return None, {"skipped": f"{inputs.lsoa_table} has none of the indicators' columns"}
    if left_out:
        log.info("LSOA-scale check without %s (columns not in %s)", ", ".join(left_out),
                 inputs.lsoa_table.name)
    lsoa_cfg = cfg.replace(
        level="lsoa",
        inputs=Inputs(boundaries=inputs.lsoa_boundaries, table=inputs.lsoa_table,
                      code_column="lsoa_code", name_column="lsoa_name",
                      missing_values=inputs.missing_values,
                      invalid_geometry=inputs.invalid_geometry),
        indicators=usable,
        domains=domains,
    )
    lsoas = load_areas(lsoa_cfg)
    table = load_table(lsoa_cfg, lsoas)
    values = indicator_stage.compute_indicators(table, usable,
                                                weights=smoothing_weights(lsoa_cfg, lsoas))
    scores = index_stage.build_index(values, usable, domains, cfg.index)
    result = spatial.analyse(
        lsoas,
        {"need_index": spatial.Variable(f"{NEED_INDEX_LABEL} (LSOA level)", scores["need_index"])},
        cfg.spatial,
        seed=cfg.seed,
        names=lsoas[lsoa_cfg.name_name],
    )
    population, found = to_numbers(raw, [cfg.spatial.lsoa_population],
                                   source=str(inputs.lsoa_table),
                                   missing_values=inputs.missing_values)
    if found:
        raise ValidationError(found)
    codes = pd.Index(raw["lsoa_code"], name="lsoa_code")
    frame = spatial.scale_sensitivity(
        ward_index,
        scores["need_index"],
        result.local,
        pd.Series(raw["ward_code"].str.strip().to_numpy(), index=codes, name="ward_code"),
        pd.Series(population[cfg.spatial.lsoa_population].to_numpy(), index=codes),
        alpha=cfg.spatial.alpha,
    )
    frame.insert(0, cfg.name_name, ward_names.reindex(frame.index))
    summary = {
        "level": "lsoa",
        "indicators_used": [s.name for s in usable],
        "indicators_left_out": left_out,
        "population_column": cfg.spatial.lsoa_population,
        "lookup": f"{inputs.lsoa_table.name} ward_code (best fit)",
        **spatial.summarise_scale(frame, top_n=cfg.index.top_n),
        "lsoa_statistics": result.summary,
    }
    return frame, summary
