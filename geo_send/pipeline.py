"""The pipeline: the only place that knows the order of the stages.

``run`` is pure: it reads the configured inputs, computes, and returns a :class:`Result`;
it writes nothing. :func:`geo_send.outputs.write_outputs` is the only writer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from libpysal.graph import Graph

from . import index as index_stage
from . import indicators as indicator_stage
from . import siting as siting_stage
from . import spatial
from . import uncertainty as uncertainty_stage
from ._errors import JoinError, ValidationError
from .config import Config, Inputs, PupilInput
from .join import count_pupils, join_tables, locate_points, normalise_sen_status
from .load import file_sha256, read_boundaries, read_pupil_chunks, read_sites, read_table
from .validate import (
    to_numbers,
    validate_boundaries,
    validate_codes,
    validate_indicator_inputs,
)

__all__ = ["Result", "run", "load_areas", "load_table", "site_hubs_for"]

log = logging.getLogger(__name__)

#: Plain-language name of the need index in sentences.
NEED_INDEX_LABEL = "SEND need index"
#: Local statistics carried into the ranked table and GeoPackage.
LOCAL_OUTPUT_COLUMNS = ("lisa_label", "lisa_p", "gi_z", "gi_label", "p_floor")
#: Siting columns carried into the ranked table and GeoPackage.
SITING_OUTPUT_COLUMNS = ("tier", "tier_reason", "nearest_hub_km", "need_covered_share",
                         "outreach", "outreach_reason")
#: Column of the LSOA table with the number of children aged 0-15 (siting demand).
CHILDREN_COLUMN = "children_0_15_count"


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
    inputs = cfg.inputs
    gdf = read_boundaries(
        inputs.boundaries,
        code_column=inputs.code_column,
        name_column=inputs.name_column,
        code_name=cfg.code_name,
        layer=inputs.boundaries_layer,
    )
    return validate_boundaries(gdf, source=str(inputs.boundaries)).sort_index()


def load_table(cfg: Config, areas: gpd.GeoDataFrame) -> pd.DataFrame:
    """Read, check and join every configured table into one numeric frame by area code.

    Every problem across the files is collected and raised together.

    Raises
    ------
    ValidationError
        Listing every problem found in the tables.
    """
    problems: list[str] = []
    needed = sorted({c for spec in cfg.indicators for c in spec.source_columns})
    main = _read_codes(cfg, cfg.inputs.table, cfg.inputs.code_column, areas)
    extras = [
        _read_codes(cfg, t.path, t.code_column, areas) for t in cfg.inputs.extra_tables
    ]
    available = set(main.columns).union(*(set(e.columns) for e in extras))
    pupil_columns = _pupil_columns(cfg.inputs.pupils)
    missing = [c for c in needed if c not in available and c not in pupil_columns]
    own = [c for c in needed if c in main.columns]
    table, found = to_numbers(main, own, source=str(cfg.inputs.table))
    problems += found
    for spec, extra in zip(cfg.inputs.extra_tables, extras):
        used = [c for c in extra.columns if c in needed]
        clash = [c for c in used if c in own]
        if clash:
            problems.append(
                f"{spec.path}: column(s) {', '.join(clash)} already come from {cfg.inputs.table}"
            )
            continue
        parsed, found = to_numbers(extra[used], used, source=str(spec.path))
        problems += found
        own += used
        table = join_tables(table, parsed, right_name=str(spec.path))
    if cfg.inputs.pupils is not None and not problems:
        table = join_tables(table, count_located_pupils(cfg, areas), right_name="pupil records")
    if missing:
        problems += [
            f"column {c!r} used by an indicator is in none of the input tables "
            f"({cfg.inputs.table}{''.join(', ' + str(t.path) for t in cfg.inputs.extra_tables)})"
            for c in missing
        ]
    if problems:
        raise ValidationError(problems)
    table = table.reindex(areas.index)
    absent = areas.index.difference(main.index)
    if len(absent):
        log.warning("%s has no row for %d area(s); their values stay missing", cfg.inputs.table,
                    len(absent))
    problems = validate_indicator_inputs(table, cfg.indicators, source=str(cfg.inputs.table))
    if problems:
        raise ValidationError(problems)
    return table


def _read_codes(cfg: Config, path, code_column: str, areas: gpd.GeoDataFrame) -> pd.DataFrame:
    frame = read_table(path, code_column=code_column, code_name=cfg.code_name)
    frame = validate_codes(frame, areas.index, source=str(path), code_name=cfg.code_name)
    return frame.drop(columns=[c for c in (cfg.name_name,) if c in frame.columns])


def _pupil_columns(spec: PupilInput | None) -> set[str]:
    if spec is None:
        return set()
    return {f"{spec.prefix}_pupils_count", f"{spec.prefix}_sen_support_count",
            f"{spec.prefix}_ehcp_count"}


def count_located_pupils(cfg: Config, areas: gpd.GeoDataFrame) -> pd.DataFrame:
    """Aggregate pupil-level records to counts per area, in bounded memory.

    Each pupil is located by LSOA code (through the LSOA table's ward column) or by
    easting/northing (point in polygon, EPSG:27700). Every pupil must be located: a
    pupil outside every area or with an unknown LSOA is an error, never dropped.
    """
    spec = cfg.inputs.pupils
    assert spec is not None
    source = str(spec.path)
    if spec.lsoa_column:
        lsoa_to_area = _lsoa_lookup(cfg, areas)
        columns = [spec.lsoa_column, spec.status_column]
    else:
        columns = [str(spec.easting_column), str(spec.northing_column), spec.status_column]

    def located():
        for chunk in read_pupil_chunks(spec.path, columns):
            status = normalise_sen_status(chunk[spec.status_column], source=source,
                                          column=spec.status_column)
            if spec.lsoa_column:
                lsoa = chunk[spec.lsoa_column].str.strip()
                codes = lsoa.map(lsoa_to_area)
                bad = codes.isna()
                if bad.any():
                    rows = [f"row {r}: {v!r}" for r, v in lsoa[bad].head(5).items()]
                    raise ValidationError(
                        f"{source}: {int(bad.sum())} pupil(s) in this chunk have an LSOA code "
                        f"that is not in the area ({'; '.join(rows)}); expected LSOA 2021 codes"
                    )
            else:
                xy, problems = to_numbers(chunk, columns[:2], source=source)
                if problems:
                    raise ValidationError(problems)
                points = gpd.GeoDataFrame(
                    geometry=gpd.points_from_xy(xy[columns[0]], xy[columns[1]]),
                    index=chunk.index, crs=areas.crs,
                )
                codes, _ = locate_points(points, areas, code_name=cfg.code_name)
                bad = codes.isna()
                if bad.any():
                    rows = [f"row {r}" for r in codes.index[bad][:5]]
                    raise ValidationError(
                        f"{source}: {int(bad.sum())} pupil(s) in this chunk lie outside every "
                        f"area ({', '.join(rows)}); expected British National Grid "
                        "easting/northing in metres inside the boundaries"
                    )
            yield pd.DataFrame({cfg.code_name: codes.to_numpy(), "status": status.to_numpy()})

    return count_pupils(located(), code_name=cfg.code_name, codes=list(areas.index),
                        prefix=spec.prefix)


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
    return lsoas.set_index("lsoa_code")["ward_code"].str.strip()


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
    hashes = {str(p): file_sha256(p) for p in cfg.inputs.files() if p.is_file()}
    areas = load_areas(cfg)
    table = load_table(cfg, areas)
    log.info("loaded %d areas and %d input columns", len(areas), table.shape[1])

    graph = smoothing_weights(cfg, areas)
    values = indicator_stage.compute_indicators(table, cfg.indicators, weights=graph)
    scores = index_stage.build_index(values, cfg.indicators, cfg.domains, cfg.index)
    rank = index_stage.rank_areas(scores["need_index"])
    mc_columns = uncertainty_stage.rank_columns(cfg.index.top_n)
    uncertainty = None
    if cfg.index.draws > 0:
        uncertainty = uncertainty_stage.assess_uncertainty(
            table, cfg.indicators, cfg.domains, cfg.index, seed=cfg.seed, weights=graph
        )
        intervals = uncertainty.areas[mc_columns]
    else:
        intervals = pd.DataFrame(np.nan, index=table.index, columns=mc_columns)

    spatial_result = spatial.analyse(
        areas,
        spatial_variables(cfg, table, values, scores["need_index"]),
        cfg.spatial,
        seed=cfg.seed,
        names=areas[cfg.name_name],
    )
    local = spatial_result.local
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
    siting = site_hubs_for(cfg, wards)
    if siting is not None:
        service = siting.wards[list(SITING_OUTPUT_COLUMNS)]
        geometry = wards.geometry.name
        wards = wards.drop(columns=geometry).join(service).join(wards[[geometry]])
        wards = gpd.GeoDataFrame(wards, geometry=geometry, crs=areas.crs)
    return Result(config=cfg, wards=wards, table=table, spatial_stats=spatial_stats,
                  scale=scale, input_hashes=hashes, uncertainty=uncertainty,
                  comparators=indicator_stage.comparators(table, cfg.indicators),
                  siting=siting)


def smoothing_weights(cfg: Config, areas: gpd.GeoDataFrame) -> Graph | None:
    """Spatial weights for ``smoothing = "spatial_eb"``; None when no indicator uses it."""
    if not any(s.smoothing == "spatial_eb" for s in cfg.indicators):
        return None
    return spatial.build_weights(areas, cfg.spatial).graph


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
                      code_column="lsoa_code", name_column="lsoa_name"),
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
                                   source=str(inputs.lsoa_table))
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
