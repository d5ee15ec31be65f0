"""The one configuration object: frozen, loaded from TOML, used alike by the CLI and Jupyter.

Paths in a TOML file are relative to the file itself. Every problem in a file is collected
and reported together, with close-match suggestions for misspelt keys and choices.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError, close_matches

__all__ = [
    "Config",
    "IndicatorSpec",
    "DomainSpec",
    "Inputs",
    "ExtraTable",
    "PupilInput",
    "TrendInput",
    "ConversionInput",
    "RepresentationInput",
    "IndexSettings",
    "SpatialSettings",
    "MapSettings",
    "SitingSettings",
    "DisclosureSettings",
    "default_root",
    "DEFAULT_SEED",
    "MISSING_VALUES",
    "GEOMETRY_REPAIRS",
]

DEFAULT_SEED = 20260
KINDS = ("proportion", "rate", "score")
DIRECTIONS = {"higher": 1, "lower": -1}
NORMALISATIONS = ("zscore", "minmax", "rank", "exponential")
AGGREGATIONS = ("arithmetic", "geometric")
SMOOTHINGS = ("none", "global_eb", "spatial_eb")
WEIGHTS = ("queen", "rook", "knn", "distance")
CORRECTIONS = ("none", "bonferroni", "fdr")
LEVELS = ("ward", "lsoa")
SITING_MODELS = ("mclp", "pmedian", "lscp")
#: Text read as a missing value (compared without case or surrounding spaces): blank
#: cells and the markers of official statistics ("c" confidential, "x" not available,
#: "z" not applicable, "low", "*", ...). ``[inputs] missing_values`` replaces the list.
#: "<5", "< 10" and other "<number" cells are always read as missing (suppressed at source).
MISSING_VALUES = ("", "*", "-", "..", ":", "<5", "c", "low", "n/a", "na", "u", "x", "z")
#: What to do with invalid boundary geometry (``[inputs] invalid_geometry``).
GEOMETRY_REPAIRS = ("refuse", "repair")
SCHEMES = (
    "BoxPlot",
    "EqualInterval",
    "FisherJenks",
    "HeadTailBreaks",
    "JenksCaspall",
    "MaximumBreaks",
    "NaturalBreaks",
    "Quantiles",
    "Percentiles",
    "StdMean",
)


def default_root() -> Path:
    """Return the folder holding the embedded Wolverhampton ``boundaries/`` and ``data/``.

    An installed wheel carries them inside the package (``geo_send/_default``); a source
    checkout or editable install uses the repository's top-level folders.
    """
    packaged = Path(__file__).resolve().parent / "_default"
    if (packaged / "data" / "wolverhampton.toml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator of the index, declared in ``[[indicators]]``.

    Attributes
    ----------
    name : str
        Output column for the indicator's value, with its unit (``ehcp_per_1000``).
    label : str
        Plain-language label for maps and the report.
    domain : str
        Name of the domain (``[domains.NAME]``) the indicator belongs to.
    kind : {'proportion', 'rate', 'score'}
        ``proportion``: numerator is a subset of denominator (Wilson interval);
        ``rate``: a count over a population that need not contain it (Byar / exact Poisson);
        ``score``: a ready-made value in ``column`` (no interval).
    numerator, denominator : str or None
        Count columns for ``proportion`` and ``rate``.
    column : str or None
        Value column for ``score``.
    multiplier : float
        Scale of the published rate (100 for per cent, 1000 for per 1,000).
    direction : int
        +1 when a higher value means more need, -1 when lower means more need.
    weight : float
        Weight of the indicator inside its domain (relative; normalised to sum to 1).
    smoothing : {'none', 'global_eb', 'spatial_eb'}
        Empirical-Bayes smoothing of count-based rates before normalisation.
    benchmark : float or None
        Comparator in the indicator's units (e.g. the England rate); ``None`` uses the
        whole-area rate for count-based indicators and no comparator for scores.
    """

    name: str
    label: str
    domain: str
    kind: str
    numerator: str | None = None
    denominator: str | None = None
    column: str | None = None
    multiplier: float = 1.0
    direction: int = 1
    weight: float = 1.0
    smoothing: str = "none"
    benchmark: float | None = None

    @property
    def is_count_based(self) -> bool:
        """Whether the indicator is a count over a denominator."""
        return self.kind in ("proportion", "rate")

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Columns of the input table the indicator reads."""
        if self.is_count_based:
            return (str(self.numerator), str(self.denominator))
        return (str(self.column),)


@dataclass(frozen=True)
class DomainSpec:
    """A domain of the index (``[domains.NAME]``): a weighted group of indicators."""

    name: str
    label: str
    weight: float


@dataclass(frozen=True)
class ExtraTable:
    """A council's own area-level CSV joined by code (``[[inputs.extra_tables]]``)."""

    path: Path
    code_column: str = "ward_code"
    year_column: str | None = None


@dataclass(frozen=True)
class PupilInput:
    """Pupil-level records aggregated to areas (``[inputs.pupils]``).

    One row per pupil, located either by ``lsoa_column`` (LSOA 2021 code) or by British
    National Grid ``easting_column`` / ``northing_column``; ``status_column`` holds SEN
    support / EHCP / none. The aggregated counts are named ``{prefix}_pupils_count``,
    ``{prefix}_sen_support_count`` and ``{prefix}_ehcp_count``.
    """

    path: Path
    status_column: str = "sen_status"
    lsoa_column: str | None = None
    easting_column: str | None = None
    northing_column: str | None = None
    prefix: str = "resident"


@dataclass(frozen=True)
class TrendInput:
    """Counts by area and year, for trends over time (``[inputs.trends]``).

    One row per area and year; each of ``count_columns`` is trended as a rate of
    ``denominator_column``.
    """

    path: Path
    code_column: str = "ward_code"
    year_column: str = "year"
    count_columns: tuple[str, ...] = ("sen_support_count", "ehcp_count")
    denominator_column: str = "pupils_count"


@dataclass(frozen=True)
class ConversionInput:
    """SEN support and new EHC plans by area and year (``[inputs.conversion]``).

    One row per area and year (and per group of each breakdown column): pupils on SEN
    support that year and new EHC plans issued that year. Conversion pairs SEN support in
    year t with new plans in year t + 1, pooled over ``cohort_years`` (default: all).
    """

    path: Path
    code_column: str = "ward_code"
    year_column: str = "year"
    sen_support_column: str = "sen_support_count"
    new_ehcp_column: str = "new_ehcp_count"
    breakdown_columns: tuple[str, ...] = ()
    cohort_years: tuple[int, ...] = ()


@dataclass(frozen=True)
class RepresentationInput:
    """EHC plans and population by area and group (``[inputs.representation]``).

    One row per area and group (of every breakdown column, e.g. ethnicity), with the
    number of EHC plans and the population (e.g. pupils) of that group.
    """

    path: Path
    code_column: str = "ward_code"
    ehcp_column: str = "ehcp_count"
    population_column: str = "pupils_count"
    breakdown_columns: tuple[str, ...] = ("ethnicity",)


@dataclass(frozen=True)
class Inputs:
    """Where the data live (``[inputs]``); all paths absolute after loading."""

    boundaries: Path
    table: Path
    boundaries_layer: str | None = None
    code_column: str = "ward_code"
    name_column: str = "ward_name"
    lsoa_boundaries: Path | None = None
    lsoa_table: Path | None = None
    schools: Path | None = None
    extra_tables: tuple[ExtraTable, ...] = ()
    pupils: PupilInput | None = None
    missing_values: tuple[str, ...] = MISSING_VALUES
    invalid_geometry: str = "refuse"
    trends: TrendInput | None = None
    conversion: ConversionInput | None = None
    representation: RepresentationInput | None = None

    def files(self) -> list[Path]:
        """Every input file named, in a fixed order (for the manifest)."""
        paths = [self.boundaries, self.table, self.lsoa_boundaries, self.lsoa_table, self.schools]
        paths += [t.path for t in self.extra_tables]
        for spec in (self.pupils, self.trends, self.conversion, self.representation):
            if spec is not None:
                paths.append(spec.path)
        return [p for p in paths if p is not None]


@dataclass(frozen=True)
class IndexSettings:
    """How indicators become one index (``[index]``); see ``docs/methodology.md``.

    Attributes
    ----------
    normalisation : {'zscore', 'minmax', 'rank', 'exponential'}
    aggregation : {'arithmetic', 'geometric'}
    draws : int
        Monte Carlo draws for the rank intervals (0 skips them).
    weight_spread : float
        Each weight is multiplied by a uniform factor in [1 − s, 1 + s] in the draws.
    top_n : int
        The ``p_top{n}`` column: share of draws in which an area ranks in the top n.
    """

    normalisation: str = "zscore"
    aggregation: str = "arithmetic"
    draws: int = 1000
    weight_spread: float = 0.25
    top_n: int = 5


@dataclass(frozen=True)
class SpatialSettings:
    """Spatial weights and tests (``[spatial]``).

    ``lsoa_population`` names the population column of the LSOA table used to average
    LSOA index values up to wards in the scale-sensitivity (MAUP) check.
    """

    weights: str = "queen"
    k: int = 4
    distance_m: float | None = None
    island_neighbours: int = 1
    permutations: int = 9999
    local_permutations: int = 9999
    alpha: float = 0.05
    correction: str = "fdr"
    lsoa_population: str = "residents_count"


@dataclass(frozen=True)
class MapSettings:
    """The interactive and static maps (``[map]``)."""

    scheme: str = "FisherJenks"
    k: int = 5
    self_contained: bool = True
    tiles: bool = False


@dataclass(frozen=True)
class SitingSettings:
    """Hub siting (``[siting]``).

    ``p`` hubs (fixed sites included) within ``service_distance_m`` (straight line) of need;
    ``high_need_share`` of wards count as high need (the top quintile); high-need wards with
    less than ``outreach_threshold`` of their need within reach of a hub are listed for outreach.
    Each solve stops after ``time_limit_s`` seconds with the best plan found. ``models``
    lists the location models solved (``mclp`` maximal covering, ``pmedian``, ``lscp`` set
    covering); the first one chosen gives the hubs. p-median is off by default: it only gives a
    plan to compare with, and is much the slowest (about 1 s on Wolverhampton against 0.03 s
    for maximal covering and 0.05 s for set covering: one assignment variable per LSOA and
    school); add it with ``models = ["mclp", "pmedian", "lscp"]``.
    """

    enabled: bool = True
    p: int = 3
    service_distance_m: float = 2000.0
    sites: Path | None = None
    fixed_sites: tuple[str, ...] = ()
    high_need_share: float = 0.2
    outreach_threshold: float = 0.5
    time_limit_s: float = 120.0
    models: tuple[str, ...] = ("mclp", "lscp")


@dataclass(frozen=True)
class DisclosureSettings:
    """Suppression of small counts in published outputs (``[disclosure]``)."""

    threshold: int = 5
    show_zero: bool = True


def area_label(level: str, *, plural: bool = False) -> str:
    """A level in prose: ``ward`` or ``LSOA`` (``wards``, ``LSOAs`` when plural)."""
    word = "LSOA" if level == "lsoa" else level
    return f"{word}s" if plural else word


@dataclass(frozen=True)
class Config:
    """Everything a run needs; build with :meth:`from_toml` or :meth:`default`.

    Attributes
    ----------
    area_name : str
        Display name of the area.
    level : {'ward', 'lsoa'}
        Geography of the analysis; the index of every frame is ``{level}_code``.
    inputs : Inputs
    indicators : tuple of IndicatorSpec
    domains : tuple of DomainSpec
    index, spatial, map, siting, disclosure : settings objects
    seed : int
        The one seed for every random step.
    source : Path or None
        The TOML file the configuration was read from.
    """

    area_name: str
    inputs: Inputs
    indicators: tuple[IndicatorSpec, ...]
    domains: tuple[DomainSpec, ...]
    level: str = "ward"
    index: IndexSettings = field(default_factory=IndexSettings)
    spatial: SpatialSettings = field(default_factory=SpatialSettings)
    map: MapSettings = field(default_factory=MapSettings)
    siting: SitingSettings = field(default_factory=SitingSettings)
    disclosure: DisclosureSettings = field(default_factory=DisclosureSettings)
    seed: int = DEFAULT_SEED
    source: Path | None = None

    @property
    def code_name(self) -> str:
        """Name of the area code index: ``ward_code`` or ``lsoa_code``."""
        return f"{self.level}_code"

    @property
    def name_name(self) -> str:
        """Name of the area name column: ``ward_name`` or ``lsoa_name``."""
        return f"{self.level}_name"

    @property
    def areas_label(self) -> str:
        """The areas in prose: ``wards`` or ``LSOAs``."""
        return area_label(self.level, plural=True)

    @classmethod
    def default(cls) -> Config:
        """Return the configuration of the embedded Wolverhampton data."""
        return cls.from_toml(default_root() / "data" / "wolverhampton.toml")

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read and check a TOML configuration file.

        Raises
        ------
        ConfigError
            If the file is missing, is not TOML, or breaks any rule; every problem is listed.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(raw, base=path.resolve().parent, source=path.resolve())

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], *, base: Path, source: Path | None = None
    ) -> Config:
        """Build a configuration from a parsed TOML mapping; paths are relative to ``base``."""
        parser = _Parser(source or base)
        cfg = parser.config(raw, base, source)
        if parser.problems:
            where = source if source is not None else base
            raise ConfigError(
                f"{where}: {len(parser.problems)} problem(s) in the configuration:\n"
                + "\n".join(f"  - {p}" for p in parser.problems)
            )
        assert cfg is not None
        return cfg

    def replace(self, **changes: Any) -> Config:
        """Return a copy with top-level fields replaced (``cfg.replace(seed=1)``)."""
        return dataclasses.replace(self, **changes)

    def with_weights(
        self, *, domains: Mapping[str, float] | None = None, indicators: Mapping[str, float] | None = None
    ) -> Config:
        """Return a copy with some domain and/or indicator weights changed."""
        domains = dict(domains or {})
        indicators = dict(indicators or {})
        unknown = [d for d in domains if d not in {x.name for x in self.domains}]
        unknown += [i for i in indicators if i not in {x.name for x in self.indicators}]
        if unknown:
            raise ConfigError(f"unknown domain or indicator name(s): {', '.join(unknown)}")
        new_domains = tuple(
            dataclasses.replace(d, weight=float(domains.get(d.name, d.weight))) for d in self.domains
        )
        new_indicators = tuple(
            dataclasses.replace(i, weight=float(indicators.get(i.name, i.weight)))
            for i in self.indicators
        )
        return dataclasses.replace(self, domains=new_domains, indicators=new_indicators)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form of the configuration (for the run manifest)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value




class _Parser:
    """Collects every problem while turning a TOML mapping into a :class:`Config`."""

    TOP = ("area", "inputs", "indicators", "domains", "index", "spatial", "map", "siting",
           "disclosure", "seed")

    def __init__(self, where: Path) -> None:
        self.where = where
        self.problems: list[str] = []

    # -- helpers -------------------------------------------------------------------------
    def _keys(self, section: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                self.problems.append(
                    f"[{section}] unknown key {key!r}{close_matches(key, allowed)}"
                )

    def _choice(self, section: str, key: str, value: Any, choices: tuple[str, ...]) -> Any:
        if value not in choices:
            self.problems.append(
                f"[{section}] {key} = {value!r} is not one of {', '.join(choices)}"
                f"{close_matches(str(value), choices)}"
            )
        return value

    def _path(self, base: Path, value: Any, key: str) -> Path | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.problems.append(f"[inputs] {key} must be a file path, got {value!r}")
            return None
        return (base / value).resolve()

    def _settings(self, section: str, cls: type, table: Any, base: Path) -> Any:
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            self.problems.append(f"[{section}] must be a table")
            return cls()
        names = tuple(f.name for f in dataclasses.fields(cls))
        self._keys(section, table, names)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in table:
                continue
            value = table[f.name]
            default = getattr(cls(), f.name) if _constructible(cls) else None
            if f.name in ("sites",):
                value = self._path(base, value, f"{section}.{f.name}")
            elif f.name == "models":
                value = tuple(str(v) for v in value)
                for model in value:
                    self._choice(section, "models", model, SITING_MODELS)
                if not value:
                    self.problems.append(f"[{section}] models must name at least one model")
            elif f.name == "fixed_sites":
                value = tuple(str(v) for v in value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    self.problems.append(f"[{section}] {f.name} must be true or false, got {value!r}")
                    continue
            elif isinstance(default, int) and not isinstance(default, bool):
                if not isinstance(value, int) or isinstance(value, bool):
                    self.problems.append(f"[{section}] {f.name} must be an integer, got {value!r}")
                    continue
            elif isinstance(default, float) or f.name == "distance_m":
                if not isinstance(value, int | float) or isinstance(value, bool):
                    self.problems.append(f"[{section}] {f.name} must be a number, got {value!r}")
                    continue
                value = float(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    # -- sections ------------------------------------------------------------------------
    def config(self, raw: Mapping[str, Any], base: Path, source: Path | None) -> Config | None:
        self._keys("top level", raw, self.TOP)
        area = raw.get("area", {})
        if not isinstance(area, Mapping):
            self.problems.append("[area] must be a table")
            area = {}
        self._keys("area", area, ("name", "level", "codes"))
        level = self._choice("area", "level", area.get("level", "ward"), LEVELS)
        inputs = self.inputs(raw.get("inputs"), base, level)
        domains = self.domains(raw.get("domains"))
        indicators = self.indicators(raw.get("indicators"), domains)
        index = self._settings("index", IndexSettings, raw.get("index"), base)
        spatial = self._settings("spatial", SpatialSettings, raw.get("spatial"), base)
        map_ = self._settings("map", MapSettings, raw.get("map"), base)
        siting = self._settings("siting", SitingSettings, raw.get("siting"), base)
        disclosure = self._settings("disclosure", DisclosureSettings, raw.get("disclosure"), base)
        self._choice("index", "normalisation", index.normalisation, NORMALISATIONS)
        self._choice("index", "aggregation", index.aggregation, AGGREGATIONS)
        self._choice("spatial", "weights", spatial.weights, WEIGHTS)
        self._choice("spatial", "correction", spatial.correction, CORRECTIONS)
        self._choice("map", "scheme", map_.scheme, SCHEMES)
        if spatial.weights == "distance" and spatial.distance_m is None:
            self.problems.append("[spatial] weights = 'distance' needs distance_m (metres)")
        if not 0 < spatial.alpha < 1:
            self.problems.append(f"[spatial] alpha must be between 0 and 1, got {spatial.alpha}")
        if spatial.permutations < 99 or spatial.local_permutations < 99:
            self.problems.append("[spatial] permutations must be at least 99")
        if index.draws < 0:
            self.problems.append(f"[index] draws must be 0 or more, got {index.draws}")
        if not 0 <= index.weight_spread < 1:
            self.problems.append(
                f"[index] weight_spread must be at least 0 and below 1, got {index.weight_spread}"
            )
        if index.top_n < 1:
            self.problems.append(f"[index] top_n must be at least 1, got {index.top_n}")
        if siting.p < 1:
            self.problems.append(f"[siting] p must be at least 1, got {siting.p}")
        if siting.service_distance_m <= 0:
            self.problems.append("[siting] service_distance_m must be positive")
        if disclosure.threshold < 0:
            self.problems.append("[disclosure] threshold must be 0 or more")
        seed = raw.get("seed", DEFAULT_SEED)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            self.problems.append(f"seed must be a non-negative integer, got {seed!r}")
            seed = DEFAULT_SEED
        if inputs is None or self.problems:
            return None
        return Config(
            area_name=str(area.get("name", "Area")),
            level=level,
            inputs=inputs,
            indicators=indicators,
            domains=domains,
            index=index,
            spatial=spatial,
            map=map_,
            siting=siting,
            disclosure=disclosure,
            seed=seed,
            source=source,
        )

    def inputs(self, table: Any, base: Path, level: str) -> Inputs | None:
        if not isinstance(table, Mapping):
            self.problems.append("[inputs] is required: boundaries and table at least")
            return None
        allowed = tuple(f.name for f in dataclasses.fields(Inputs))
        self._keys("inputs", table, allowed)
        for key in ("boundaries", "table"):
            if key not in table:
                self.problems.append(f"[inputs] {key} is required")
        extra = []
        for i, item in enumerate(table.get("extra_tables", [])):
            if not isinstance(item, Mapping) or "path" not in item:
                self.problems.append(f"[[inputs.extra_tables]] entry {i + 1} needs a path")
                continue
            self._keys("inputs.extra_tables", item, ("path", "code_column", "year_column"))
            extra.append(
                ExtraTable(
                    path=self._path(base, item["path"], "extra_tables.path") or base,
                    code_column=str(item.get("code_column", f"{level}_code")),
                    year_column=item.get("year_column"),
                )
            )
        pupils = None
        if "pupils" in table:
            p = table["pupils"]
            names = tuple(f.name for f in dataclasses.fields(PupilInput))
            if not isinstance(p, Mapping) or "path" not in p:
                self.problems.append("[inputs.pupils] needs a path")
            else:
                self._keys("inputs.pupils", p, names)
                has_lsoa = "lsoa_column" in p
                has_xy = "easting_column" in p and "northing_column" in p
                if has_lsoa == has_xy:
                    self.problems.append(
                        "[inputs.pupils] give either lsoa_column or both easting_column and "
                        "northing_column"
                    )
                pupils = PupilInput(
                    path=self._path(base, p["path"], "pupils.path") or base,
                    **{k: str(v) for k, v in p.items() if k != "path" and k in names},
                )
        missing_values = table.get("missing_values", MISSING_VALUES)
        if not isinstance(missing_values, list | tuple) or not all(
            isinstance(v, str) for v in missing_values
        ):
            self.problems.append(
                f"[inputs] missing_values must be a list of strings, e.g. [\"\", \"c\", \"x\"], "
                f"got {missing_values!r}"
            )
            missing_values = MISSING_VALUES
        invalid_geometry = self._choice(
            "inputs", "invalid_geometry", table.get("invalid_geometry", "refuse"), GEOMETRY_REPAIRS
        )
        long_tables = {
            key: self.long_table(table, key, cls, base, level)
            for key, cls in (("trends", TrendInput), ("conversion", ConversionInput),
                             ("representation", RepresentationInput))
        }
        if "boundaries" not in table or "table" not in table:
            return None
        return Inputs(
            **long_tables,
            boundaries=self._path(base, table["boundaries"], "boundaries") or base,
            table=self._path(base, table["table"], "table") or base,
            boundaries_layer=table.get("boundaries_layer"),
            code_column=str(table.get("code_column", f"{level}_code")),
            name_column=str(table.get("name_column", f"{level}_name")),
            lsoa_boundaries=self._path(base, table.get("lsoa_boundaries"), "lsoa_boundaries"),
            lsoa_table=self._path(base, table.get("lsoa_table"), "lsoa_table"),
            schools=self._path(base, table.get("schools"), "schools"),
            extra_tables=tuple(extra),
            pupils=pupils,
            missing_values=tuple(sorted({v.strip().lower() for v in missing_values})),
            invalid_geometry=str(invalid_geometry),
        )

    def long_table(self, table: Mapping[str, Any], key: str, cls: type, base: Path,
                   level: str) -> Any:
        """``[inputs.trends]`` and the like: a path, column names and lists of them."""
        if key not in table:
            return None
        item, section = table[key], f"inputs.{key}"
        if not isinstance(item, Mapping) or "path" not in item:
            self.problems.append(f"[{section}] needs a path")
            return None
        fields = dataclasses.fields(cls)
        self._keys(section, item, tuple(f.name for f in fields))
        kwargs: dict[str, Any] = {
            "path": self._path(base, item["path"], f"{key}.path") or base,
            "code_column": f"{level}_code",
        }
        for f in fields:
            if f.name == "path" or f.name not in item:
                continue
            value = item[f.name]
            if isinstance(f.default, tuple):
                kind = int if f.name == "cohort_years" else str
                if not isinstance(value, list) or not all(
                    isinstance(v, kind) and not isinstance(v, bool) for v in value
                ):
                    self.problems.append(
                        f"[{section}] {f.name} must be a list of "
                        f"{'years' if kind is int else 'column names'}, got {value!r}"
                    )
                    continue
                value = tuple(value)
            elif not isinstance(value, str) or not value:
                self.problems.append(f"[{section}] {f.name} must be a column name, got {value!r}")
                continue
            kwargs[f.name] = value
        if key == "trends" and not kwargs.get("count_columns", True):
            self.problems.append(f"[{section}] count_columns must name at least one column")
        return cls(**kwargs)

    def domains(self, table: Any) -> tuple[DomainSpec, ...]:
        if not isinstance(table, Mapping) or not table:
            self.problems.append("[domains] needs at least one domain, e.g. [domains.prevalence]")
            return ()
        out = []
        for name, spec in table.items():
            if not isinstance(spec, Mapping):
                self.problems.append(f"[domains.{name}] must be a table")
                continue
            self._keys(f"domains.{name}", spec, ("label", "weight"))
            weight = spec.get("weight", 1.0)
            if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
                self.problems.append(f"[domains.{name}] weight must be a number >= 0, got {weight!r}")
                weight = 0.0
            out.append(DomainSpec(name=name, label=str(spec.get("label", name)), weight=float(weight)))
        if out and sum(d.weight for d in out) <= 0:
            self.problems.append("[domains] weights must not all be zero")
        return tuple(out)

    def indicators(self, items: Any, domains: tuple[DomainSpec, ...]) -> tuple[IndicatorSpec, ...]:
        if not isinstance(items, list) or not items:
            self.problems.append("[[indicators]] needs at least one indicator")
            return ()
        allowed = tuple(f.name for f in dataclasses.fields(IndicatorSpec))
        domain_names = [d.name for d in domains]
        out: list[IndicatorSpec] = []
        for i, item in enumerate(items, start=1):
            where = f"indicators #{i}"
            if not isinstance(item, Mapping):
                self.problems.append(f"[{where}] must be a table")
                continue
            name = item.get("name")
            where = f"indicators {name!r}" if name else where
            self._keys(where, item, allowed)
            missing = [k for k in ("name", "domain", "kind") if k not in item]
            if missing:
                self.problems.append(f"[{where}] missing {', '.join(missing)}")
                continue
            kind = self._choice(where, "kind", item["kind"], KINDS)
            if item["domain"] not in domain_names:
                self.problems.append(
                    f"[{where}] domain {item['domain']!r} is not declared in [domains]"
                    f"{close_matches(str(item['domain']), domain_names)}"
                )
            needs = ("numerator", "denominator") if kind in ("proportion", "rate") else ("column",)
            for key in needs:
                if not item.get(key):
                    self.problems.append(f"[{where}] kind = {kind!r} needs {key}")
            direction = item.get("direction", "higher")
            if direction not in DIRECTIONS:
                self.problems.append(
                    f"[{where}] direction must be 'higher' (higher value = more need) or 'lower'"
                )
                direction = "higher"
            smoothing = self._choice(where, "smoothing", item.get("smoothing", "none"), SMOOTHINGS)
            if smoothing != "none" and kind == "score":
                self.problems.append(f"[{where}] smoothing applies to count-based indicators only")
            weight = item.get("weight", 1.0)
            if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
                self.problems.append(f"[{where}] weight must be a number >= 0, got {weight!r}")
                weight = 0.0
            benchmark = item.get("benchmark")
            if benchmark is not None and not isinstance(benchmark, int | float):
                self.problems.append(f"[{where}] benchmark must be a number")
                benchmark = None
            if benchmark is not None and kind == "score":
                self.problems.append(
                    f"[{where}] benchmark applies to count-based indicators only (a score has "
                    "no interval to compare)"
                )
            if name in {s.name for s in out}:
                self.problems.append(f"[{where}] indicator name used twice")
            out.append(
                IndicatorSpec(
                    name=str(name),
                    label=str(item.get("label", name)),
                    domain=str(item["domain"]),
                    kind=str(kind),
                    numerator=item.get("numerator"),
                    denominator=item.get("denominator"),
                    column=item.get("column"),
                    multiplier=float(item.get("multiplier", 1.0)),
                    direction=DIRECTIONS[direction],
                    weight=float(weight),
                    smoothing=str(smoothing),
                    benchmark=None if benchmark is None else float(benchmark),
                )
            )
        for d in domains:
            if not any(s.domain == d.name for s in out):
                self.problems.append(f"[domains.{d.name}] has no indicator")
        return tuple(out)


def _constructible(cls: type) -> bool:
    try:
        cls()
    except TypeError:
        return False
    return True
