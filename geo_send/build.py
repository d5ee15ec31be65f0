"""Derive an area's default dataset from the national open files.

``build_dataset`` is pure: it takes the frames :func:`geo_send.load.read_raw_area` read
and returns the boundaries and tables that ``geo-send build-data`` writes (through
:mod:`geo_send.outputs`). The embedded Wolverhampton default is this build for
E08000031 plus the Wolverhampton-only ward-level child-poverty figures.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from ._errors import ValidationError, close_matches, preview
from .join import locate_points, weighted_mean

__all__ = [
    "AreaDataset",
    "build_dataset",
    "dataset_config",
    "data_dictionary",
    "ENGLAND",
    "resolve_areas",
    "SETTINGS",
    "ATTRIBUTION",
]

log = logging.getLogger(__name__)

CRS = "EPSG:27700"
#: Schools this close (metres) outside the generalised boundaries go to the nearest area.
SNAP_M = 250.0
#: Lookup method of an LSOA whose ONS best-fit ward still exists (see PROVENANCE.md).
UNCHANGED = "ons_bestfit_ward24_code_unchanged_in_wd25"
#: Below this share of its area inside its best-fit ward, an LSOA is said to straddle wards.
STRADDLE_SHARE = 0.5
#: LSOA configs of areas with more LSOAs than this use fewer Monte Carlo draws.
MANY_LSOAS = 5_000
#: Monte Carlo draws in those configs (the default is 1,000).
LSOA_DRAWS = 200
#: The first user's authority, whose build adds ward-level child-poverty figures.
WOLVERHAMPTON = "E08000031"
#: Display name of a build of every local authority.
ENGLAND = "England"

ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Contains OS data © Crown copyright and database right 2025. "
    "Source: Office for National Statistics; Ministry of Housing, Communities and Local "
    "Government (English Indices of Deprivation 2025); Department for Education "
    "(Special educational needs in England, January 2023; Get Information About Schools)."
)

#: School phase (DfE ``phase_type_grouping``) -> setting used for ward counts.
SETTINGS = {
    "State-funded primary": "mainstream",
    "State-funded secondary": "mainstream",
    "State-funded nursery": "mainstream",
    "State-funded special school": "specialist",
    "Non-maintained special school": "specialist",
    "State-funded AP school": "specialist",
    "Independent school": "independent",
}

WARD_COLUMNS = [
    "ward_name",
    "lad_code",
    "lad_name",
    "lsoa_count",
    "residents_count",
    "children_0_15_count",
    "imd_score",
    "cyp_education_score",
    "idaci_count",
    "idaci_children_count",
    "idaci_lsoas_suppressed_count",
    "disabled_count",
    "disability_residents_count",
    "school_pupils_count",
    "school_sen_support_count",
    "school_ehcp_count",
    "school_count",
    "specialist_pupils_count",
    "specialist_sen_support_count",
    "specialist_ehcp_count",
    "specialist_school_count",
]
CHILD_POVERTY_COLUMNS = ["children_low_income_count", "children_low_income_denominator_count",
                         "children_low_income_pct"]
LSOA_COLUMNS = [
    "lsoa_name",
    "ward_code",
    "lad_code",
    "residents_count",
    "children_0_15_count",
    "imd_score",
    "cyp_education_score",
    "idaci_count",
    "disabled_count",
    "disability_residents_count",
]
SCHOOL_COLUMNS = [
    "urn",
    "school_name",
    "phase",
    "setting",
    "lad_code",
    "easting",
    "northing",
    "ward_code",
    "lsoa_code",
    "pupils_count",
    "sen_support_count",
    "ehcp_count",
]


@dataclass(frozen=True)
class AreaDataset:
    """The default dataset of one or more local authorities.

    Attributes
    ----------
    name : str
        Display name, e.g. ``"Wolverhampton"``.
    lad_codes : tuple of str
    wards, lsoas : GeoDataFrame
        Boundaries in EPSG:27700 indexed by ``ward_code`` / ``lsoa_code``.
    ward_table, lsoa_table, schools : DataFrame
        The tables written to ``data/``.
    notes : tuple of str
        What the build found and how it was handled (wards without LSOAs, suppressed
        numerators, unlocated schools, ...), for the log and ``data/README.md``.
    """

    name: str
    lad_codes: tuple[str, ...]
    wards: gpd.GeoDataFrame
    lsoas: gpd.GeoDataFrame
    ward_table: pd.DataFrame
    lsoa_table: pd.DataFrame
    schools: pd.DataFrame
    notes: tuple[str, ...] = field(default=())

    @property
    def has_child_poverty(self) -> bool:
        """Whether ward-level child-poverty figures are included."""
        return "children_low_income_count" in self.ward_table.columns

    @property
    def slug(self) -> str:
        """File-name-safe area name."""
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "area"


def build_dataset(
    raw: Mapping[str, pd.DataFrame], lad_codes: Sequence[str] | None = None, *,
    name: str | None = None,
) -> AreaDataset:
    """Derive boundaries and ward, LSOA and school tables for some local authorities.

    Parameters
    ----------
    raw : mapping
        Frames from :func:`geo_send.load.read_raw_area`.
    lad_codes : sequence of str, optional
        The local authority codes the frames were filtered to; ``None`` takes every
        authority in the ward boundaries (all of England).
    name : str, optional
        Display name; by default the authorities' names (up to three), "England" for
        all of them, or "N local authorities".

    Returns
    -------
    AreaDataset

    Raises
    ------
    ValidationError
        If a code has no boundaries, or the LSOA lookup and boundaries disagree.

    Notes
    -----
    Nothing is dropped silently. Each of these is counted, listed in ``notes`` and
    handled as stated there: wards created or redrawn by a ward boundary review since
    the ONS best-fit lookup (their LSOAs are assigned by largest area overlap), LSOAs
    that straddle wards, LSOAs without a ward, wards without an LSOA (their resident
    figures stay missing), suppressed IDACI numerators (left out of numerator and
    denominator alike), schools without a location and schools outside the area.
    """
    all_areas = lad_codes is None
    if all_areas:
        lad_codes = sorted(set(raw["wards"]["LAD25CD"].astype(str)))
    codes = tuple(lad_codes)
    notes: list[str] = []
    wards_raw, lsoas_raw = raw["wards"], raw["lsoas"]
    found = set(wards_raw["LAD25CD"])
    missing = [c for c in codes if c not in found]
    if missing:
        raise ValidationError(
            f"no wards for local authority code(s) {', '.join(missing)} in the national ward "
            "boundaries (LAD 2025 codes, e.g. E08000031 for Wolverhampton)"
        )
    if len(set(codes)) != len(codes):
        raise ValidationError(f"local authority code(s) given twice: {', '.join(codes)}")
    lad_names = (
        wards_raw.drop_duplicates("LAD25CD").set_index("LAD25CD")["LAD25NM"].reindex(codes)
    )
    if name is None:
        if all_areas:
            name = ENGLAND
        elif len(codes) <= 3:
            name = " and ".join(lad_names)
        else:
            name = f"{len(codes)} local authorities"
    log.info("building %s: %d ward(s), %d LSOA(s), %d school(s)", name, len(wards_raw),
             len(lsoas_raw), len(raw["schools"]))

    wards = gpd.GeoDataFrame(
        {
            "ward_code": wards_raw["WD25CD"].astype(str),
            "ward_name": wards_raw["WD25NM"].astype(str),
            "lad_code": wards_raw["LAD25CD"].astype(str),
            "lad_name": wards_raw["LAD25NM"].astype(str),
        },
        geometry=wards_raw.geometry.values,
        crs=wards_raw.crs,
    ).to_crs(CRS)
    wards = wards.set_index("ward_code").sort_index()

    lookup = raw["lookup"].set_index("lsoa21_code")["wd25cd"]
    lsoas = gpd.GeoDataFrame(
        {
            "lsoa_code": lsoas_raw["LSOA21CD"].astype(str),
            "lsoa_name": lsoas_raw["LSOA21NM"].astype(str),
        },
        geometry=lsoas_raw.geometry.values,
        crs=lsoas_raw.crs,
    ).to_crs(CRS)
    lsoas = lsoas.set_index("lsoa_code").sort_index()
    lsoas["ward_code"] = lookup.reindex(lsoas.index)
    no_ward = lsoas.index[lsoas["ward_code"].isna()]
    if len(no_ward):
        notes.append(f"{len(no_ward)} LSOA(s) have no ward in the lookup: {preview(no_ward)}")
    stray = lsoas["ward_code"].dropna()
    stray = stray[~stray.isin(wards.index)]
    if len(stray):
        raise ValidationError(
            f"the LSOA lookup names ward code(s) not in the ward boundaries: "
            f"{preview(sorted(set(stray)))}"
        )
    _lookup_notes(raw["lookup"], lsoas, wards, notes)

    lsoa_table = _lsoa_table(lsoas, raw["imd"], raw["population"], wards, notes)
    schools = _schools(raw["schools"], wards, lsoas, notes)
    ward_table = _ward_table(wards, lsoa_table, schools, notes)
    if "child_poverty" in raw and codes == (WOLVERHAMPTON,):
        ward_table = ward_table.join(_child_poverty(raw["child_poverty"], wards, notes))
    elif WOLVERHAMPTON in codes:
        notes.append(
            "Wolverhampton's ward-level child-poverty figures are not used: they cover one "
            "authority of this area, and an indicator must cover every ward"
        )
    return AreaDataset(
        name=str(name),
        lad_codes=codes,
        wards=wards[["ward_name", "lad_code", "lad_name", "geometry"]],
        lsoas=lsoas[["lsoa_name", "ward_code", "geometry"]],
        ward_table=ward_table,
        lsoa_table=lsoa_table,
        schools=schools,
        notes=tuple(notes),
    )


def resolve_areas(requested: Sequence[str], lads: pd.DataFrame) -> list[str] | None:
    """Turn what a user typed after ``--area`` into LAD 2025 codes.

    Parameters
    ----------
    requested : sequence of str
        Local authority codes (``E08000028``) or names (``Sandwell``, any case); the
        single word ``all`` or ``england`` means every authority.
    lads : DataFrame
        ``LAD25CD`` and ``LAD25NM`` of every authority (:func:`geo_send.load.read_lads`).

    Returns
    -------
    list of str or None
        The codes in the order given, or ``None`` for all of England.

    Raises
    ------
    ValidationError
        Listing every entry that is neither a code nor a name, with close matches.
    """
    words = [w.strip() for w in requested if w.strip()]
    if len(words) == 1 and words[0].lower() in ("all", "england"):
        return None
    by_code = {str(c).upper(): str(c) for c in lads["LAD25CD"]}
    by_name = {str(n).lower(): str(c) for c, n in zip(lads["LAD25CD"], lads["LAD25NM"])}
    codes, problems = [], []
    for word in words:
        code = by_code.get(word.upper()) or by_name.get(word.lower())
        if code is None:
            hint = close_matches(word, [*by_code.values(), *lads["LAD25NM"].astype(str)])
            problems.append(
                f"--area {word!r} is not a local authority code or name (LAD 2025, e.g. "
                f"E08000031 or Wolverhampton; 'all' for England){hint}"
            )
        elif code in codes:
            problems.append(f"--area {word!r} names {code} twice")
        else:
            codes.append(code)
    if not words:
        problems.append("--area is empty: give local authority codes or names, or 'all'")
    if problems:
        raise ValidationError(problems)
    return codes


def _lookup_notes(
    lookup: pd.DataFrame, lsoas: gpd.GeoDataFrame, wards: gpd.GeoDataFrame, notes: list[str]
) -> None:
    """Report what the LSOA -> ward best-fit lookup says about ward changes and fit."""
    not_drawn = pd.Index(lookup["lsoa21_code"]).difference(lsoas.index)
    if len(not_drawn):
        notes.append(
            f"{len(not_drawn)} LSOA(s) of the lookup have no boundary and are left out: "
            f"{preview(not_drawn)}"
        )
    lookup = lookup.loc[lookup["lsoa21_code"].isin(lsoas.index)]
    changed = lookup.loc[lookup["method"] != UNCHANGED]
    if len(changed):
        new_wards = sorted(set(changed["wd25cd"]))
        old_wards = sorted(set(changed["geographr_ward24_code"].dropna()))
        notes.append(
            f"{len(new_wards)} ward(s) were created or redrawn by a ward boundary review since "
            f"the ONS May 2024 best-fit lookup ({len(old_wards)} old ward code(s) no longer "
            f"exist); their {len(changed)} LSOA(s) were assigned to the May 2025 ward holding "
            f"the largest share of their area (not population-weighted): {preview(new_wards)}"
        )
    other = lookup.loc[lookup["method"].str.endswith("_in_other_lad")]
    if len(other):
        notes.append(
            f"{len(other)} LSOA(s) have an ONS best-fit ward in another local authority and were "
            f"assigned by area to a ward of their own authority: {preview(other['lsoa21_code'])}"
        )
    share = pd.to_numeric(lookup["lsoa_area_share_in_ward"], errors="coerce")
    straddle = lookup.loc[share < STRADDLE_SHARE, "lsoa21_code"]
    if len(straddle):
        notes.append(
            f"{len(straddle)} LSOA(s) have less than {STRADDLE_SHARE:.0%} of their area inside "
            "their best-fit ward (they straddle ward boundaries; the whole LSOA counts towards "
            f"that ward): {preview(sorted(straddle))}"
        )


def _lsoa_table(
    lsoas: gpd.GeoDataFrame,
    imd: pd.DataFrame,
    population: pd.DataFrame,
    wards: gpd.GeoDataFrame,
    notes: list[str],
) -> pd.DataFrame:
    imd = imd.set_index("lsoa21_code")
    pop = population.set_index("lsoa21_code")
    for label, frame in (("IoD 2025", imd), ("Census 2021 population", pop)):
        lacking = lsoas.index.difference(frame.index)
        if len(lacking):
            notes.append(f"{len(lacking)} LSOA(s) have no {label} row: {preview(lacking)}")
    table = pd.DataFrame(index=lsoas.index)
    table["lsoa_name"] = lsoas["lsoa_name"]
    table["ward_code"] = lsoas["ward_code"]
    table["lad_code"] = table["ward_code"].map(wards["lad_code"])
    table["residents_count"] = pop["usual_residents_total"].reindex(table.index).astype("Int64")
    table["children_0_15_count"] = pop["age_0_15"].reindex(table.index).astype("Int64")
    table["imd_score"] = imd["IMD_score"].reindex(table.index)
    table["cyp_education_score"] = imd["children_and_young_people_score"].reindex(table.index)
    table["idaci_count"] = imd["idaci_numerator"].reindex(table.index).round().astype("Int64")
    table["disabled_count"] = (
        pop["ts038_disabled_equality_act"].reindex(table.index).astype("Int64")
    )
    table["disability_residents_count"] = (
        pop["ts038_total_residents"].reindex(table.index).astype("Int64")
    )
    suppressed = table.index[table["idaci_count"].isna()]
    if len(suppressed):
        notes.append(
            f"{len(suppressed)} LSOA(s) have a suppressed IDACI numerator (published blank by "
            f"MHCLG): {preview(suppressed)}; ward IDACI rates use the remaining LSOAs"
        )
    table.index.name = "lsoa_code"
    return table[LSOA_COLUMNS]


def _schools(
    schools: pd.DataFrame, wards: gpd.GeoDataFrame, lsoas: gpd.GeoDataFrame, notes: list[str]
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "urn": schools["urn"].astype("Int64"),
            "school_name": schools["school_name"].astype(str),
            "phase": schools["phase_type_grouping"].astype(str),
            "lad_code": schools["new_la_code"].astype(str),
            "easting": schools["gias_easting"].round().astype("Int64"),
            "northing": schools["gias_northing"].round().astype("Int64"),
            "pupils_count": schools["total_pupils"].astype("Int64"),
            "sen_support_count": schools["sen_support"].astype("Int64"),
            "ehcp_count": schools["ehc_plan"].astype("Int64"),
        }
    )
    frame["setting"] = frame["phase"].map(SETTINGS)
    unknown = sorted(set(frame.loc[frame["setting"].isna(), "phase"]))
    if unknown:
        raise ValidationError(f"school phase(s) not classified as a setting: {', '.join(unknown)}")
    located = frame["easting"].notna() & frame["northing"].notna()
    points = gpd.GeoDataFrame(
        frame.loc[located, []],
        geometry=gpd.points_from_xy(
            frame.loc[located, "easting"].astype(float), frame.loc[located, "northing"].astype(float)
        ),
        crs=CRS,
    )
    ward_codes, snapped = locate_points(points, wards, code_name="ward_code", snap_m=SNAP_M)
    frame["ward_code"] = ward_codes.reindex(frame.index)
    frame["lsoa_code"] = locate_points(points, lsoas, code_name="lsoa_code", snap_m=SNAP_M)[
        0
    ].reindex(frame.index)
    if len(snapped):
        notes.append(
            f"{len(snapped)} school(s) lie just outside the generalised ward boundaries "
            f"(within {SNAP_M:.0f} m) and were given to the nearest ward: "
            f"{preview(frame.loc[snapped, 'school_name'])}"
        )
    unlocated = frame.loc[~located]
    if len(unlocated):
        notes.append(
            f"{len(unlocated)} school(s) have no GIAS location (closed or re-registered under a "
            f"new URN since January 2023) and are left out of ward counts: "
            f"{int(unlocated['pupils_count'].sum()):,} pupils, "
            f"{int(unlocated['sen_support_count'].sum()):,} SEN support, "
            f"{int(unlocated['ehcp_count'].sum()):,} EHC plans"
        )
    outside = frame.loc[located & frame["ward_code"].isna()]
    if len(outside):
        notes.append(
            f"{len(outside)} located school(s) lie outside the area's wards and are left out of "
            f"ward counts: {preview(outside['school_name'])}"
        )
    independent = frame.loc[frame["setting"] == "independent"]
    if len(independent):
        notes.append(
            f"{len(independent)} independent school(s) are kept in schools.csv but not in ward "
            "counts (their intake is not local)"
        )
    frame = frame.sort_values(["urn", "school_name"], kind="stable", na_position="last")
    return frame[SCHOOL_COLUMNS].reset_index(drop=True)


def _ward_table(
    wards: gpd.GeoDataFrame, lsoa_table: pd.DataFrame, schools: pd.DataFrame, notes: list[str]
) -> pd.DataFrame:
    table = pd.DataFrame(index=wards.index)
    table["ward_name"] = wards["ward_name"]
    table["lad_code"] = wards["lad_code"]
    table["lad_name"] = wards["lad_name"]
    by_ward = lsoa_table.groupby("ward_code")
    table["lsoa_count"] = by_ward.size().reindex(table.index).fillna(0).astype("Int64")
    empty = table.index[table["lsoa_count"] == 0]
    if len(empty):
        notes.append(
            f"{len(empty)} ward(s) receive no LSOA in the best-fit lookup, so their "
            f"population and deprivation values are missing: {preview(empty)}"
        )
    for column in ("residents_count", "children_0_15_count", "disabled_count",
                   "disability_residents_count"):
        table[column] = by_ward[column].sum(min_count=1).reindex(table.index).astype("Int64")
    groups = lsoa_table["ward_code"]
    table["imd_score"] = weighted_mean(
        lsoa_table["imd_score"], lsoa_table["residents_count"].astype(float), groups
    ).reindex(table.index).round(4)
    table["cyp_education_score"] = weighted_mean(
        lsoa_table["cyp_education_score"], lsoa_table["children_0_15_count"].astype(float), groups
    ).reindex(table.index).round(4)
    has_idaci = lsoa_table["idaci_count"].notna()
    table["idaci_count"] = (
        lsoa_table.loc[has_idaci].groupby("ward_code")["idaci_count"].sum()
        .reindex(table.index).astype("Int64")
    )
    table["idaci_children_count"] = (
        lsoa_table.loc[has_idaci].groupby("ward_code")["children_0_15_count"].sum()
        .reindex(table.index).astype("Int64")
    )
    table["idaci_lsoas_suppressed_count"] = (
        (~has_idaci).groupby(lsoa_table["ward_code"]).sum().reindex(table.index)
        .fillna(0).astype("Int64")
    )
    for setting, prefix in (("mainstream", "school"), ("specialist", "specialist")):
        sub = schools.loc[(schools["setting"] == setting) & schools["ward_code"].notna()]
        grouped = sub.groupby("ward_code")
        for source, target in (("pupils_count", "pupils_count"),
                               ("sen_support_count", "sen_support_count"),
                               ("ehcp_count", "ehcp_count")):
            table[f"{prefix}_{target}"] = (
                grouped[source].sum().reindex(table.index).fillna(0).astype("Int64")
            )
        table[f"{prefix}_count" if prefix == "school" else "specialist_school_count"] = (
            grouped.size().reindex(table.index).fillna(0).astype("Int64")
        )
    no_school = table.index[table["school_pupils_count"] == 0]
    if len(no_school):
        notes.append(
            f"{len(no_school)} ward(s) have no located mainstream school, so their "
            f"school-located SEN rates are missing: {preview(no_school)}"
        )
    table.index.name = "ward_code"
    return table[WARD_COLUMNS]


def _number(text: pd.Series) -> pd.Series:
    cleaned = text.astype(str).str.replace(",", "", regex=False).str.replace("%", "", regex=False)
    return pd.to_numeric(cleaned.str.strip(), errors="coerce")


def _child_poverty(frame: pd.DataFrame, wards: gpd.GeoDataFrame, notes: list[str]) -> pd.DataFrame:
    code = next(c for c in frame.columns if c.startswith("Area Code.1"))
    count = next(c for c in frame.columns if c.startswith("Number of children") and "2025" in c)
    pct = next(c for c in frame.columns if c.startswith("Percentage of children") and "2025" in c)
    table = pd.DataFrame(
        {
            "ward_code": frame[code].str.strip(),
            "children_low_income_count": _number(frame[count]),
            "children_low_income_pct": _number(frame[pct]),
        }
    ).set_index("ward_code")
    unknown = table.index.difference(wards.index)
    if len(unknown):
        raise ValidationError(
            f"child poverty file: ward code(s) not among the current wards: {preview(unknown)}"
        )
    # The published percentage is count / children under 16 (ONS ward estimates); the
    # denominator it implies lets the rate carry a confidence interval.
    table["children_low_income_denominator_count"] = np.round(
        table["children_low_income_count"] / (table["children_low_income_pct"] / 100)
    )
    notes.append(
        "children in relative low-income families (after housing costs, FYE 2025) joined for "
        f"{len(table)} ward(s); the denominator is implied by the published count and percentage"
    )
    out = table.reindex(wards.index)[CHILD_POVERTY_COLUMNS]
    for column in ("children_low_income_count", "children_low_income_denominator_count"):
        out[column] = out[column].astype("Int64")
    return out


def dataset_config(dataset: AreaDataset, *, level: str = "ward",
                   boundaries_dir: str = "../boundaries") -> str:
    """Return the TOML configuration text for a built dataset at ward or LSOA level.

    Paths are relative to the configuration file, which lives in ``data/``.

    Notes
    -----
    The LSOA-level index has no school-located SEN counts: about 24,000 schools spread
    over 33,755 LSOAs leave most LSOAs with no school (and the rest with one), so a
    per-LSOA SEN rate would describe one school, not an area. It uses the resident-based
    figures instead: deprivation (IMD score, IDACI-style rate), the IoD children and
    young people education score and Census 2021 disability. At both levels the IDACI
    numerator (2022, DWP/HMRC) is a *rate* over Census 2021 residents aged 0–15, not a
    proportion: the two come from different sources, and the numerator exceeds the Census
    count in 125 of England's LSOAs and 4 of its wards.
    LSOA configs use 999 permutations (the GeoDa default; p cannot go below 0.001) and
    decile classes on the map (as the IoD publishes LSOA ranks); Fisher–Jenks needs time
    quadratic in the number of areas without numba.
    """
    if level not in ("ward", "lsoa"):
        raise ValueError(f"level must be 'ward' or 'lsoa', got {level!r}")
    if level == "ward":
        domains = {
            "prevalence": ("SEND prevalence (school-located)", 0.4),
            "deprivation": ("Deprivation", 0.4),
            "outcomes": ("Education outcomes", 0.2),
        }
        indicators = _ward_indicators(dataset)
        table, boundaries, layer = "ward_indicators.csv", "wards.gpkg", "wards"
    else:
        domains = {
            "deprivation": ("Deprivation", 0.5),
            "outcomes": ("Education outcomes", 0.25),
            "disability": ("Disability (residents, all ages)", 0.25),
        }
        indicators = _lsoa_indicators()
        table, boundaries, layer = "lsoa_indicators.csv", "lsoas.gpkg", "lsoas"
    codes = ", ".join(_toml(c) for c in dataset.lad_codes)
    lines = [
        f"# geo_send configuration for {dataset.name} ({_codes_text(dataset.lad_codes)}), "
        f"{level} level.",
        "# Written by `geo-send build-data`; paths are relative to this file.",
        "# Weights are relative: change one number to change the index (see docs/methodology.md).",
    ]
    if level == "lsoa":
        lines += [
            "# No school-located SEN counts at LSOA level: most LSOAs hold no school, so a",
            "# per-LSOA SEN rate would describe one school, not an area.",
        ]
    lines += [
        "",
        "[area]",
        f"name = {_toml(dataset.name)}",
        f"level = {_toml(level)}",
        f"codes = [{codes}]",
        "",
        "[inputs]",
        f'boundaries = "{boundaries_dir}/{boundaries}"',
        f"boundaries_layer = {_toml(layer)}",
        f"code_column = {_toml(level + '_code')}",
        f"name_column = {_toml(level + '_name')}",
        f"table = {_toml(table)}",
    ]
    if level == "ward":
        lines += [
            f'lsoa_boundaries = "{boundaries_dir}/lsoas.gpkg"',
            'lsoa_table = "lsoa_indicators.csv"',
            'schools = "schools.csv"',
        ]
    lines.append("")
    for name, (label, weight) in domains.items():
        lines += [f"[domains.{name}]", f"label = {_toml(label)}", f"weight = {weight}", ""]
    for ind in indicators:
        lines.append("[[indicators]]")
        lines += [f"{k} = {_toml(v)}" for k, v in ind.items()]
        lines.append("")
    if level == "lsoa" and len(dataset.lsoas) > MANY_LSOAS:
        lines += [
            "# Monte Carlo rank intervals cost about 40 ms per draw over England's LSOAs;",
            f"# {LSOA_DRAWS} draws still place each 5th and 95th percentile within a few ranks.",
            "[index]",
            f"draws = {LSOA_DRAWS}",
            "",
        ]
    if level == "lsoa":
        lines += [
            "[spatial]",
            "permutations = 999",
            "local_permutations = 999",
            "",
            "[map]",
            'scheme = "Quantiles"',
            "k = 10",
            "",
        ]
    return "\n".join(lines)


def _ward_indicators(dataset: AreaDataset) -> list[dict[str, object]]:
    indicators: list[dict[str, object]] = [
        dict(name="sen_support_pct", label="SEN support, % of pupils (mainstream schools in ward)",
             domain="prevalence", kind="proportion", numerator="school_sen_support_count",
             denominator="school_pupils_count", multiplier=100, direction="higher", weight=1.0,
             smoothing="global_eb"),
        dict(name="ehcp_per_1000", label="EHC plans per 1,000 pupils (mainstream schools in ward)",
             domain="prevalence", kind="proportion", numerator="school_ehcp_count",
             denominator="school_pupils_count", multiplier=1000, direction="higher", weight=1.0,
             smoothing="global_eb"),
        dict(name="imd_score", label="IMD 2025 score (population-weighted)", domain="deprivation",
             kind="score", column="imd_score", direction="higher", weight=1.0),
        # a rate, not a proportion: the IDACI numerator (2022, DWP/HMRC) and Census 2021
        # children come from different sources, and a few wards' numerator is the larger
        dict(name="idaci_per_100",
             label="Income-deprived children (IDACI numerator) per 100 aged 0–15",
             domain="deprivation", kind="rate", numerator="idaci_count",
             denominator="idaci_children_count", multiplier=100, direction="higher", weight=1.0),
    ]
    if dataset.has_child_poverty:
        indicators.append(
            dict(name="children_low_income_pct",
                 label="Children in relative low-income families, % (FYE 2025)",
                 domain="deprivation", kind="proportion", numerator="children_low_income_count",
                 denominator="children_low_income_denominator_count", multiplier=100,
                 direction="higher", weight=1.0)
        )
    indicators.append(
        dict(name="cyp_education_score",
             label="IoD 2025 children and young people education score", domain="outcomes",
             kind="score", column="cyp_education_score", direction="higher", weight=1.0)
    )
    return indicators


def _lsoa_indicators() -> list[dict[str, object]]:
    return [
        dict(name="imd_score", label="IMD 2025 score", domain="deprivation", kind="score",
             column="imd_score", direction="higher", weight=1.0),
        dict(name="idaci_per_100",
             label="Income-deprived children (IDACI numerator) per 100 aged 0–15",
             domain="deprivation", kind="rate",
             numerator="idaci_count", denominator="children_0_15_count", multiplier=100,
             direction="higher", weight=1.0),
        dict(name="cyp_education_score",
             label="IoD 2025 children and young people education score", domain="outcomes",
             kind="score", column="cyp_education_score", direction="higher", weight=1.0),
        dict(name="disabled_pct",
             label="Residents disabled under the Equality Act, % (Census 2021)",
             domain="disability", kind="proportion", numerator="disabled_count",
             denominator="disability_residents_count", multiplier=100, direction="higher",
             weight=1.0),
    ]


def _codes_text(codes: Sequence[str]) -> str:
    """The codes themselves when few, else how many (the TOML lists them all)."""
    return ", ".join(codes) if len(codes) <= 10 else f"{len(codes)} local authorities"


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


_IOD = "English Indices of Deprivation 2025 (MHCLG), LSOA 2021"
_CENSUS = "Census 2021 (ONS)"
_SEN = "DfE Special educational needs in England, school-level, January 2023; GIAS locations May 2025"
_GEO = "ONS Open Geography: LSOA 2021 → ward (May 2025) best-fit lookup"

#: column -> (meaning, unit, vintage and source, basis)
COLUMN_DOCS: dict[str, tuple[str, str, str, str]] = {
    "ward_code": ("ONS ward code (May 2025 wards; Wolverhampton's equal the May 2023 review)",
                  "code", "ONS wards May 2025 BGC", "area"),
    "ward_name": ("Ward name as spelt by ONS (display only; joins use codes)", "text",
                  "ONS wards May 2025", "area"),
    "lad_code": ("Local authority district code", "code", "ONS LAD 2025", "area"),
    "lad_name": ("Local authority district name", "text", "ONS LAD 2025", "area"),
    "lsoa_code": ("LSOA 2021 code", "code", "ONS LSOA Dec 2021 BGC", "area"),
    "lsoa_name": ("LSOA 2021 name", "text", "ONS LSOA Dec 2021", "area"),
    "lsoa_count": ("LSOAs assigned to the ward by the best-fit lookup", "count", _GEO, "area"),
    "residents_count": ("Usual residents, all ages", "persons", _CENSUS + " (age bands)",
                        "resident"),
    "children_0_15_count": ("Usual residents aged 0–15", "persons", _CENSUS, "resident"),
    "imd_score": ("IMD 2025 score; ward = mean of LSOA scores weighted by usual residents",
                  "score (higher = more deprived)", _IOD, "resident"),
    "cyp_education_score": (
        "IoD 2025 Children and Young People sub-domain score (Education domain: attainment, "
        "absence, staying on, entry to higher education); ward = mean weighted by residents "
        "aged 0–15", "score (higher = more deprived)", _IOD, "resident"),
    "idaci_count": ("Children aged 0–15 in income-deprived families (IDACI numerator); ward = "
                    "sum over LSOAs where published", "persons", _IOD + " underlying indicators",
                    "resident"),
    "idaci_children_count": ("Residents aged 0–15 in the LSOAs whose IDACI numerator is "
                             "published (denominator of the IDACI-style rate)", "persons",
                             _CENSUS, "resident"),
    "idaci_lsoas_suppressed_count": ("LSOAs in the ward whose IDACI numerator MHCLG suppressed",
                                     "count", _IOD, "resident"),
    "disabled_count": ("Residents disabled under the Equality Act, all ages (TS038)", "persons",
                       _CENSUS + " TS038", "resident"),
    "disability_residents_count": ("All usual residents in TS038 (its denominator)", "persons",
                                   _CENSUS + " TS038", "resident"),
    "school_pupils_count": ("Pupils on roll at mainstream state-funded nursery, primary and "
                            "secondary schools LOCATED in the ward", "pupils", _SEN,
                            "school-located (not where pupils live)"),
    "school_sen_support_count": ("Of those, pupils with SEN support", "pupils", _SEN,
                                 "school-located (not where pupils live)"),
    "school_ehcp_count": ("Of those, pupils with an education, health and care plan", "pupils",
                          _SEN, "school-located (not where pupils live)"),
    "school_count": ("Mainstream state-funded schools located in the ward", "schools", _SEN,
                     "school-located"),
    "specialist_pupils_count": ("Pupils at special schools and alternative provision located in "
                                "the ward (intake is city-wide; kept apart from mainstream)",
                                "pupils", _SEN, "school-located (not where pupils live)"),
    "specialist_sen_support_count": ("Of those, pupils with SEN support", "pupils", _SEN,
                                     "school-located"),
    "specialist_ehcp_count": ("Of those, pupils with an EHC plan", "pupils", _SEN,
                              "school-located"),
    "specialist_school_count": ("Special schools and AP located in the ward", "schools", _SEN,
                                "school-located"),
    "children_low_income_count": (
        "Children under 16 in relative low-income families after housing costs, FYE 2025",
        "children", "Local child poverty indicators (DWP/HMRC-based), ward, FYE 2025; "
        "licence of the compiled table unconfirmed", "resident"),
    "children_low_income_denominator_count": (
        "Children under 16 implied by the published count and percentage", "children",
        "derived", "resident"),
    "children_low_income_pct": ("Published percentage of children in relative low-income "
                                "families after housing costs, FYE 2025", "%", "as above",
                                "resident"),
    "urn": ("Unique reference number of the school", "code", _SEN, "school"),
    "school_name": ("School name", "text", _SEN, "school"),
    "phase": ("DfE phase type grouping", "text", _SEN, "school"),
    "setting": ("mainstream / specialist (special, AP) / independent", "text", "derived",
                "school"),
    "easting": ("GIAS easting (EPSG:27700); blank where the school is not in GIAS May 2025",
                "metres", "GIAS May 2025", "school"),
    "northing": ("GIAS northing (EPSG:27700)", "metres", "GIAS May 2025", "school"),
    "pupils_count": ("Pupils on roll, January 2023", "pupils", _SEN, "school"),
    "sen_support_count": ("Pupils with SEN support, January 2023", "pupils", _SEN, "school"),
    "ehcp_count": ("Pupils with an EHC plan, January 2023", "pupils", _SEN, "school"),
}


def data_dictionary(dataset: AreaDataset) -> str:
    """Return ``data/README.md``: every column with meaning, unit, source and basis."""

    def table(columns: list[str]) -> list[str]:
        rows = ["| column | meaning | unit | vintage and source | basis |", "|---|---|---|---|---|"]
        for column in columns:
            meaning, unit, source, basis = COLUMN_DOCS[column]
            rows.append(f"| `{column}` | {meaning} | {unit} | {source} | {basis} |")
        return rows

    ward_columns = ["ward_code", *dataset.ward_table.columns]
    lines = [
        f"# Data: {dataset.name} ({_codes_text(dataset.lad_codes)})",
        "",
        "Derived by `geo-send build-data` from the open files described in "
        "`shared/data/raw/PROVENANCE.md`; rebuild them with the same command. Nothing here is "
        "a copy of a source file.",
        "",
        f"**Licence and attribution.** {ATTRIBUTION}",
        "",
        "**Basis matters.** Columns marked *school-located* count pupils on roll at schools "
        "located in the area, not pupils who live there: a ward with a large school draws "
        "children from its neighbours. Councils hold resident-based counts; bring them with "
        "`[inputs.pupils]` or `[[inputs.extra_tables]]` (see the top-level README). Missing "
        "values stay blank: they are never filled with 0.",
        "",
        "## Files",
        "",
        "- `../boundaries/wards.gpkg` (layer `wards`) and `../boundaries/lsoas.gpkg` (layer "
        "`lsoas`): ONS BGC boundaries in EPSG:27700.",
        "- `ward_indicators.csv`: one row per ward.",
        "- `lsoa_indicators.csv`: one row per LSOA 2021.",
        "- `schools.csv`: one row per school in the DfE January 2023 school-level SEN data.",
        f"- `{dataset.slug}.toml`: the configuration `geo-send run` uses for this area (ward "
        "level).",
        f"- `{dataset.slug}_lsoa.toml`: the same area at LSOA level, with resident-based "
        "indicators only (deprivation, IDACI-style rate, education score, disability): "
        "school-located SEN counts are too sparse per LSOA, where most LSOAs hold no school.",
        "",
        "## What the build found",
        "",
        *[f"- {note}" for note in dataset.notes],
        "",
        "## `ward_indicators.csv`",
        "",
        *table(ward_columns),
        "",
        "## `lsoa_indicators.csv`",
        "",
        *table(["lsoa_code", *dataset.lsoa_table.columns]),
        "",
        "## `schools.csv`",
        "",
        *table(list(dataset.schools.columns)),
        "",
    ]
    return "\n".join(lines)
