"""Hub and outreach siting: where community SEND hubs serve the most need, and which wards need outreach.

The stage takes demand points (where children with need live), candidate sites (schools and any
council sites) and the ward table of the index, and returns a siting plan:

* :func:`demand_from_lsoas` / :func:`demand_from_points` make weighted demand points;
* :func:`candidate_sites` makes candidate hub sites from schools and a council's own sites;
* :func:`maximal_covering`, :func:`p_median` and :func:`set_covering` solve the three classic
  location models exactly as integer programmes with HiGHS (``scipy.optimize.milp``, offline,
  in-process);
* :func:`site_hubs` is the one front door: it solves the models, measures how well each ward is
  served, lists wards for outreach and gives every ward a priority tier.

Every function is pure: inputs are copied, never changed. Distances are straight-line, in metres,
in British National Grid (EPSG:27700).

Notes
-----
**Demand weight.** For an LSOA, ``demand_weight = children_count × need_weight``, where
``need_weight`` is the percentile rank of the LSOA's need among all demand areas,
``rank / n`` in (0, 1] (average ranks for ties). The percentile is used because index values
may be negative (z-scores), because it does not depend on the index's normalisation, and because,
unlike a min–max rescaling, it never gives the least needy area a weight of exactly zero (its
children stay in the plan, with the least weight). ``need_scaling='minmax'`` or ``'none'`` are
available.

**Models**, with :math:`w_i` the demand weight of point *i*, :math:`d_{ij}` its distance to
site *j*, *r* the service distance, :math:`N_i = \\{j : d_{ij} \\le r\\}` and :math:`x_j = 1`
when site *j* opens (binary). As solved:

* maximal covering (MCLP; Church & ReVelle 1974): maximise :math:`\\sum_i w_i y_i` subject to
  :math:`y_i \\le \\sum_{j \\in N_i} x_j`, :math:`0 \\le y_i \\le 1` and
  :math:`\\sum_j x_j = p`. Points with no weight or no site within *r* are left out (they
  cannot change the need covered); :math:`y_i` is continuous because, with binary *x*, its best
  value :math:`\\min(1, \\sum_{j \\in N_i} x_j)` is 0 or 1.
* p-median (Hakimi 1964; the integer programme of ReVelle & Swain 1970): minimise
  :math:`\\sum_i \\sum_{j \\in M_i} w_i d_{ij} z_{ij}` subject to
  :math:`\\sum_{j \\in M_i} z_{ij} = 1`, :math:`0 \\le z_{ij} \\le x_j` and
  :math:`\\sum_j x_j = p`. :math:`M_i` holds the sites no farther than point *i*'s
  (m − p + 1)-th nearest site and than its nearest fixed site: whatever *p* sites open, the
  nearest open one is among them. Points with no weight are left out.
* location set covering (LSCP; Toregas et al. 1971): minimise :math:`\\sum_j x_j` subject to
  :math:`\\sum_{j \\in N_i} x_j \\ge 1` for every point with :math:`w_i > 0` (and, with
  ``uncoverable='ignore'``, some site within *r*). A row whose :math:`N_i` contains another
  row's is implied by it and is dropped.

Fixed (already open) sites are forced open (lower bound 1) and count towards *p*. The programmes
are built as sparse matrices with numpy and solved in-process by HiGHS through
``scipy.optimize.milp`` with ``mip_rel_gap = 0`` (optimality proven, not within the default
0.01 %); costs are scaled (``MCLP_SCALE``, ``PMEDIAN_SCALE``) so that HiGHS's absolute
tolerances (1e-6) are far below the tie tolerance. ``time_limit_s`` bounds each solve.

**Ties.** Several plans can be equally good (two schools on one site, symmetric layouts). With
sites sorted by ``site_id`` (positions *j* = 0, 1, …), after the optimum :math:`Z^*` is found a
second solve adds the row "objective within δ of :math:`Z^*`", δ = ``TIE_TOLERANCE`` × total
need for MCLP, × max(:math:`Z^*`, total need) for p-median, and no more sites for LSCP, and
minimises objective + ε :math:`\\sum_j (j+1) x_j` with ε = 2δ (1 for LSCP). Tied plans differ in
objective by at most δ < ε, so a smaller :math:`\\sum_j (j+1) x_j` always wins: the plan chosen
is the tied plan with the smallest sum of positions — ties go to sites that sort first — and,
among those, the better objective. That is the rule of a second solve minimising
:math:`\\sum_j (j+1) x_j` alone, made exact and deterministic when position sums tie too; the
objective term keeps the second solve's linear relaxation as tight as the first's. Inputs are
sorted by id before the model is built, so row order never matters.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from ._errors import SitingError, ValidationError, close_matches, preview
from .config import SitingSettings

__all__ = [
    "CRS",
    "MODELS",
    "TIE_TOLERANCE",
    "TierRule",
    "DEFAULT_TIER_RULES",
    "Plan",
    "SitingResult",
    "describe_siting",
    "demand_from_lsoas",
    "demand_from_points",
    "candidate_sites",
    "distance_matrix",
    "maximal_covering",
    "p_median",
    "set_covering",
    "ward_service",
    "assign_tiers",
    "site_hubs",
]

logger = logging.getLogger(__name__)

#: Coordinate reference system of every distance: British National Grid, metres.
CRS = "EPSG:27700"
#: The location models, in the order :func:`site_hubs` solves them; the first gives the hubs.
MODELS = ("mclp", "pmedian", "lscp")
MODEL_LABELS = {
    "mclp": "maximal covering",
    "pmedian": "p-median",
    "lscp": "location set covering",
}
#: Plans whose objective is within this share of the total need of the optimum count as ties.
TIE_TOLERANCE = 1e-7
#: Costs given to HiGHS: maximal covering in parts per million of the total need, p-median as
#: the need-weighted mean distance in millimetres, so that HiGHS's absolute tolerances (1e-6)
#: are far below the tie tolerance.
MCLP_SCALE = 1e6
PMEDIAN_SCALE = 1e3
#: p-median assignment variables above which a warning is logged: the West Midlands CA's
#: 1.9 million (1,719 LSOAs × 1,114 schools) ran past 300 s and 7.6 GB without a proven optimum.
PMEDIAN_LARGE = 500_000
#: Largest set-covering problem (demand points) whose redundant rows are removed first.
ESSENTIAL_ROWS_MAX = 5000
#: Need scalings accepted by :func:`demand_from_lsoas`.
NEED_SCALINGS = ("percentile", "minmax", "none")
#: LISA labels counted as high need (matched without regard to case, spaces, ``-`` or ``_``).
HIGH_LISA = {"highhigh": "High-High", "hh": "High-High", "highlow": "High-Low", "hl": "High-Low"}

# Plausible ranges of British National Grid and WGS84 coordinates for England.
_EASTING = (0.0, 700_000.0)
_NORTHING = (0.0, 1_300_000.0)
_LATITUDE = (49.0, 61.0)
_LONGITUDE = (-9.0, 2.5)


# ----------------------------------------------------------------------------------------
# Demand
# ----------------------------------------------------------------------------------------
def demand_from_lsoas(
    lsoas: pd.DataFrame,
    *,
    need_column: str,
    children_column: str = "children_0_15_count",
    ward_column: str = "ward_code",
    code_column: str = "lsoa_code",
    centroid_columns: tuple[str, str] | None = None,
    need_scaling: str = "percentile",
) -> gpd.GeoDataFrame:
    """Make demand points from LSOAs: children aged 0–15 weighted by the area's need.

    Parameters
    ----------
    lsoas : DataFrame or GeoDataFrame
        One row per LSOA, with the code (as ``code_column`` or the index), the ward it lies in,
        the number of children and the need value. Located either by ``centroid_columns``
        (population-weighted centroids, British National Grid metres) or, failing those, by the
        representative point of the polygon geometry (reprojected to EPSG:27700 if needed).
    need_column : str
        Need of the area (e.g. the ward's index joined to its LSOAs, or an LSOA score such as
        IMD); higher means more need.
    children_column, ward_column, code_column : str
        Column names.
    centroid_columns : (str, str), optional
        Easting and northing columns of population-weighted centroids.
    need_scaling : {'percentile', 'minmax', 'none'}
        How need becomes a non-negative ``need_weight``: percentile rank ``rank / n`` in (0, 1]
        (default), min–max to [0, 1], or the raw value (which must then be >= 0).

    Returns
    -------
    GeoDataFrame
        Indexed by ``demand_id`` (the LSOA code), in EPSG:27700, with columns ``ward_code``,
        ``children_count``, ``need_score`` (the input need), ``need_weight``, ``demand_weight``
        (= children_count × need_weight) and point ``geometry``.

    Raises
    ------
    ValidationError
        Missing columns, missing or negative values, duplicate codes, no location.
    """
    frame = _with_code_column(lsoas, code_column, "LSOA table")
    problems = _missing_columns(frame, [ward_column, children_column, need_column], "LSOA table")
    geometry = _locate(frame, centroid_columns, "LSOA table", problems)
    if problems:
        raise ValidationError(problems)
    codes = frame[code_column].astype(str)
    _check_unique(codes, f"LSOA table column {code_column!r}")
    children = pd.to_numeric(frame[children_column], errors="coerce").to_numpy(float)
    need = pd.to_numeric(frame[need_column], errors="coerce").to_numpy(float)
    wards = frame[ward_column]
    problems = []
    for label, values, col in (("children", children, children_column), ("need", need, need_column)):
        bad = codes[~np.isfinite(values)]
        if len(bad):
            problems.append(
                f"LSOA table column {col!r}: {label} missing or not a number for "
                f"{preview(bad)}"
            )
    if np.any(children[np.isfinite(children)] < 0):
        problems.append(
            f"LSOA table column {children_column!r}: negative counts for "
            f"{preview(codes[children < 0])}"
        )
    bad_ward = codes[wards.isna().to_numpy()]
    if len(bad_ward):
        problems.append(f"LSOA table column {ward_column!r}: no ward for {preview(bad_ward)}")
    if problems:
        raise ValidationError(problems)
    weight = _scale_need(need, need_scaling, need_column)
    out = gpd.GeoDataFrame(
        {
            "ward_code": wards.astype(str).to_numpy(),
            "children_count": children,
            "need_score": need,
            "need_weight": weight,
            "demand_weight": children * weight,
        },
        geometry=geometry,
        crs=CRS,
        index=pd.Index(codes.to_numpy(), name="demand_id"),
    )
    return out


def demand_from_points(
    points: pd.DataFrame,
    *,
    wards: gpd.GeoDataFrame | None = None,
    ward_column: str = "ward_code",
    weight_column: str | None = None,
    id_column: str | None = None,
    coordinate_columns: tuple[str, str] = ("easting", "northing"),
) -> gpd.GeoDataFrame:
    """Make demand points from pupil (or other individual) locations.

    Parameters
    ----------
    points : DataFrame or GeoDataFrame
        One row per pupil; located by point geometry or by ``coordinate_columns``
        (British National Grid metres).
    wards : GeoDataFrame, optional
        Ward polygons indexed by ``ward_code``; used to find each point's ward when
        ``ward_column`` is absent.
    ward_column : str
        Column with the ward code of each point.
    weight_column : str, optional
        Need weight of each point (>= 0); every point weighs 1 when omitted.
    id_column : str, optional
        Identifier of each point; positions ``P000001``… are used when omitted.
    coordinate_columns : (str, str)
        Easting and northing columns, used when ``points`` has no geometry.

    Returns
    -------
    GeoDataFrame
        Same layout as :func:`demand_from_lsoas`; ``children_count`` is 1 per point and
        ``need_score`` = ``need_weight`` = the point's weight.

    Raises
    ------
    ValidationError
        Missing columns, points outside every ward, negative or missing weights.
    """
    frame = pd.DataFrame(points).copy()
    problems: list[str] = []
    geometry = _locate(
        points, coordinate_columns if not isinstance(points, gpd.GeoDataFrame) else None,
        "pupil points", problems,
    )
    if weight_column is not None:
        problems += _missing_columns(frame, [weight_column], "pupil points")
    if id_column is not None:
        problems += _missing_columns(frame, [id_column], "pupil points")
    if ward_column not in frame.columns and wards is None:
        problems.append(
            f"pupil points: no column {ward_column!r} and no ward polygons to place the points in"
        )
    if problems:
        raise ValidationError(problems)
    n = len(frame)
    ids = (
        frame[id_column].astype(str).to_numpy()
        if id_column is not None
        else np.array([f"P{i + 1:06d}" for i in range(n)])
    )
    _check_unique(pd.Series(ids), "pupil points id")
    if ward_column in frame.columns:
        ward_codes = frame[ward_column]
        missing = ids[ward_codes.isna().to_numpy()]
        ward_codes = ward_codes.astype(str).to_numpy()
    else:
        assert wards is not None
        ward_codes = _ward_of_points(geometry, wards)
        missing = ids[pd.isna(ward_codes)]
    if len(missing):
        raise ValidationError(f"pupil points: no ward for {preview(missing)}")
    if weight_column is None:
        weight = np.ones(n)
    else:
        weight = pd.to_numeric(frame[weight_column], errors="coerce").to_numpy(float)
        bad = ids[~np.isfinite(weight) | (weight < 0)]
        if len(bad):
            raise ValidationError(
                f"pupil points column {weight_column!r}: missing or negative weight for "
                f"{preview(bad)}"
            )
    return gpd.GeoDataFrame(
        {
            "ward_code": np.asarray(ward_codes, dtype=object),
            "children_count": np.ones(n),
            "need_score": weight,
            "need_weight": weight,
            "demand_weight": weight,
        },
        geometry=geometry,
        crs=CRS,
        index=pd.Index(ids, name="demand_id"),
    )


def _scale_need(need: np.ndarray, scaling: str, column: str) -> np.ndarray:
    if scaling not in NEED_SCALINGS:
        raise ValidationError(
            f"need_scaling {scaling!r} is not one of {', '.join(NEED_SCALINGS)}"
            f"{close_matches(str(scaling), NEED_SCALINGS)}"
        )
    if scaling == "percentile":
        return pd.Series(need).rank(method="average").to_numpy(float) / len(need)
    if scaling == "minmax":
        lo, hi = float(np.min(need)), float(np.max(need))
        return np.ones_like(need) if hi == lo else (need - lo) / (hi - lo)
    if np.any(need < 0):
        raise ValidationError(
            f"column {column!r} has negative need values; with need_scaling='none' need must be "
            "non-negative (use 'percentile' or 'minmax')"
        )
    return need.astype(float)


# ----------------------------------------------------------------------------------------
# Candidate sites
# ----------------------------------------------------------------------------------------
def candidate_sites(
    schools: pd.DataFrame | None = None,
    sites: pd.DataFrame | None = None,
    *,
    unlocated: Literal["raise", "drop"] = "raise",
) -> gpd.GeoDataFrame:
    """Make candidate hub sites from schools and a council's own list of sites.

    Parameters
    ----------
    schools : DataFrame, optional
        Columns ``urn``, ``school_name`` and ``easting`` / ``northing`` (British National Grid;
        ``gias_easting`` / ``gias_northing`` are accepted too). ``site_id`` is the URN.
    sites : DataFrame, optional
        A council's sites (Family Hubs, children's centres, libraries): a name (``site_name`` or
        ``name``), an optional ``site_id`` (else ``site-001``, ``site-002``… in row order), an
        optional kind (``site_kind`` or ``kind``, else ``council site``), and either
        ``easting`` / ``northing`` or ``latitude`` / ``longitude`` (WGS84, converted to
        EPSG:27700).
    unlocated : {'raise', 'drop'}
        What to do with rows lacking coordinates: raise, or drop them and log a warning that
        names them.

    Returns
    -------
    GeoDataFrame
        Indexed by ``site_id`` (str), sorted, with ``site_name``, ``site_kind`` and point
        ``geometry`` in EPSG:27700.

    Raises
    ------
    ValidationError
        Missing columns, coordinates out of range, duplicate ids, unlocated rows.
    SitingError
        Neither table has any site.
    """
    parts: list[gpd.GeoDataFrame] = []
    problems: list[str] = []
    if schools is not None:
        part = _school_sites(schools, unlocated, problems)
        if part is not None:
            parts.append(part)
    if sites is not None:
        part = _council_sites(sites, unlocated, problems)
        if part is not None:
            parts.append(part)
    if problems:
        raise ValidationError(problems)
    parts = [p for p in parts if len(p)]
    if not parts:
        raise SitingError("no candidate sites: give schools and/or a table of council sites")
    out = pd.concat(parts) if len(parts) > 1 else parts[0]
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=CRS)
    _check_unique(pd.Series(out.index), "candidate site_id")
    return out.sort_index(kind="stable")


def _school_sites(
    schools: pd.DataFrame, unlocated: str, problems: list[str]
) -> gpd.GeoDataFrame | None:
    frame = pd.DataFrame(schools)
    xy = _first_pair(frame, (("easting", "northing"), ("gias_easting", "gias_northing")))
    missing = _missing_columns(frame, ["urn", "school_name"], "schools table")
    if xy is None:
        missing.append("schools table: no coordinate columns; expected easting and northing")
    if missing:
        problems.extend(missing)
        return None
    assert xy is not None
    ids = frame["urn"].astype("string").str.replace(r"\.0$", "", regex=True)
    if ids.isna().any():
        problems.append(f"schools table column 'urn': {int(ids.isna().sum())} row(s) without a URN")
        return None
    x = pd.to_numeric(frame[xy[0]], errors="coerce").to_numpy(float)
    y = pd.to_numeric(frame[xy[1]], errors="coerce").to_numpy(float)
    keep = _check_located(ids.to_numpy(object), x, y, "schools table", unlocated, problems)
    _check_range(ids.to_numpy(object)[keep], x[keep], y[keep], "schools table", problems)
    return gpd.GeoDataFrame(
        {
            "site_name": frame["school_name"].astype(str).to_numpy()[keep],
            "site_kind": "school",
        },
        geometry=gpd.points_from_xy(x[keep], y[keep]),
        crs=CRS,
        index=pd.Index(ids.to_numpy(object)[keep].astype(str), name="site_id"),
    )


def _council_sites(
    sites: pd.DataFrame, unlocated: str, problems: list[str]
) -> gpd.GeoDataFrame | None:
    frame = pd.DataFrame(sites).reset_index(drop=True)
    name_col = _first_present(frame, ("site_name", "name"))
    kind_col = _first_present(frame, ("site_kind", "kind"))
    projected = _first_pair(frame, (("easting", "northing"),))
    geographic = _first_pair(frame, (("latitude", "longitude"), ("lat", "lon")))
    bad: list[str] = []
    if name_col is None:
        bad.append(
            f"sites table: no name column; expected 'site_name' or 'name', got "
            f"{', '.join(map(str, frame.columns))}"
        )
    if projected is None and geographic is None:
        bad.append(
            "sites table: no coordinates; expected easting and northing (British National "
            "Grid) or latitude and longitude"
        )
    if bad:
        problems.extend(bad)
        return None
    ids = (
        frame["site_id"].astype("string")
        if "site_id" in frame.columns
        else pd.Series([f"site-{i + 1:03d}" for i in range(len(frame))], dtype="string")
    )
    if ids.isna().any():
        problems.append(f"sites table column 'site_id': {int(ids.isna().sum())} row(s) without an id")
        return None
    ids_arr = ids.to_numpy(object).astype(str)
    if projected is not None:
        x = pd.to_numeric(frame[projected[0]], errors="coerce").to_numpy(float)
        y = pd.to_numeric(frame[projected[1]], errors="coerce").to_numpy(float)
        keep = _check_located(ids_arr, x, y, "sites table", unlocated, problems)
        _check_range(ids_arr[keep], x[keep], y[keep], "sites table", problems)
        geometry = gpd.points_from_xy(x[keep], y[keep], crs=CRS)
    else:
        assert geographic is not None
        lat = pd.to_numeric(frame[geographic[0]], errors="coerce").to_numpy(float)
        lon = pd.to_numeric(frame[geographic[1]], errors="coerce").to_numpy(float)
        keep = _check_located(ids_arr, lon, lat, "sites table", unlocated, problems)
        outside = ~(
            (lat[keep] >= _LATITUDE[0]) & (lat[keep] <= _LATITUDE[1])
            & (lon[keep] >= _LONGITUDE[0]) & (lon[keep] <= _LONGITUDE[1])
        )
        if outside.any():
            problems.append(
                f"sites table: latitude/longitude outside Great Britain for "
                f"{preview(ids_arr[keep][outside])} (are the columns swapped?)"
            )
        geometry = gpd.GeoSeries(
            gpd.points_from_xy(lon[keep], lat[keep]), crs="EPSG:4326"
        ).to_crs(CRS).values
    kinds = (
        frame[kind_col].astype(str).to_numpy()[keep]
        if kind_col is not None
        else np.full(int(keep.sum()), "council site", dtype=object)
    )
    return gpd.GeoDataFrame(
        {"site_name": frame[name_col].astype(str).to_numpy()[keep], "site_kind": kinds},
        geometry=geometry,
        crs=CRS,
        index=pd.Index(ids_arr[keep], name="site_id"),
    )


def _check_located(
    ids: np.ndarray, x: np.ndarray, y: np.ndarray, what: str, unlocated: str, problems: list[str]
) -> np.ndarray:
    if unlocated not in ("raise", "drop"):
        raise ValueError(f"unlocated must be 'raise' or 'drop', got {unlocated!r}")
    located = np.isfinite(x) & np.isfinite(y)
    if not located.all():
        lost = ids[~located]
        if unlocated == "raise":
            problems.append(
                f"{what}: no coordinates for {preview(lost)}; pass unlocated='drop' to leave "
                "them out"
            )
        else:
            logger.warning("%s: %d row(s) without coordinates left out: %s", what, len(lost),
                           preview(lost))
    return located


def _check_range(ids: np.ndarray, x: np.ndarray, y: np.ndarray, what: str,
                 problems: list[str]) -> None:
    outside = ~((x >= _EASTING[0]) & (x <= _EASTING[1]) & (y >= _NORTHING[0]) & (y <= _NORTHING[1]))
    if outside.any():
        problems.append(
            f"{what}: easting/northing outside British National Grid for {preview(ids[outside])} "
            "(latitude/longitude given as easting/northing?)"
        )


# ----------------------------------------------------------------------------------------
# The models
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """One solved location model.

    Attributes
    ----------
    model : str
        ``'mclp'``, ``'pmedian'`` or ``'lscp'``.
    site_ids : tuple of str
        Open sites, sorted (fixed sites included).
    fixed_ids : tuple of str
        Sites forced open.
    status : str
        ``'optimal'``; ``'partial'`` when an LSCP covers only the demand within reach of some
        candidate; ``'time limit'`` when HiGHS stopped at the time limit with a plan not proven
        optimal (see ``note``).
    objective : float
        MCLP: need covered; p-median: need-weighted distance in metres; LSCP: number of sites.
    need_covered : float
        Demand weight within the service distance of an open site.
    need_covered_share : float
        ``need_covered`` / total demand weight.
    children_covered_count : float
        Children at demand points within the service distance of an open site.
    mean_distance_km : float
        Need-weighted mean straight-line distance to the nearest open site.
    service_distance_m : float
        The service distance coverage is measured with.
    build_seconds, solve_seconds : float
        Wall time to build the programmes (sparse matrices) and to solve them (both stages).
    note : str
        Plain-language remark (e.g. uncoverable demand), or ``''``.
    """

    model: str
    site_ids: tuple[str, ...]
    fixed_ids: tuple[str, ...]
    status: str
    objective: float
    need_covered: float
    need_covered_share: float
    children_covered_count: float
    mean_distance_km: float
    service_distance_m: float
    build_seconds: float
    solve_seconds: float
    note: str = ""

    @property
    def n_sites(self) -> int:
        """Number of open sites."""
        return len(self.site_ids)

    def __repr__(self) -> str:
        return (
            f"Plan({MODEL_LABELS.get(self.model, self.model)}: {self.n_sites} site(s) "
            f"{', '.join(self.site_ids)}; {self.need_covered_share:.1%} of need within "
            f"{self.service_distance_m / 1000:g} km; mean distance {self.mean_distance_km:.2f} km; "
            f"{self.status}; solved in {self.build_seconds + self.solve_seconds:.2f} s)"
        )


@dataclass(frozen=True)
class _Arrays:
    """Demand and candidates as numpy arrays sorted by id (positions 0..n-1 in the programmes)."""

    demand_ids: np.ndarray
    site_ids: np.ndarray
    distance: np.ndarray
    weight: np.ndarray
    children: np.ndarray
    fixed: np.ndarray

    @property
    def total(self) -> float:
        return float(self.weight.sum())


def distance_matrix(demand: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame) -> np.ndarray:
    """Return straight-line distances in metres, demand points × candidate sites (input order).

    Raises
    ------
    ValidationError
        Either frame is not in a projected CRS in metres or they differ.
    """
    _check_crs(demand, "demand")
    _check_crs(candidates, "candidates")
    return cdist(_xy(demand, "demand"), _xy(candidates, "candidates"))


def _arrays(
    demand: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame, fixed: Sequence[str]
) -> _Arrays:
    problems = _missing_columns(demand, ["demand_weight", "children_count"], "demand")
    if "site_name" not in candidates.columns:
        problems.append("candidates: missing column 'site_name' (make them with candidate_sites)")
    if problems:
        raise ValidationError(problems)
    if len(candidates) == 0:
        raise SitingError("no candidate sites")
    if len(demand) == 0:
        raise SitingError("no demand points")
    demand = demand.sort_index(kind="stable")
    candidates = candidates.sort_index(kind="stable")
    demand_ids = demand.index.astype(str).to_numpy()
    site_ids = candidates.index.astype(str).to_numpy()
    _check_unique(pd.Series(demand_ids), "demand_id")
    _check_unique(pd.Series(site_ids), "candidate site_id")
    weight = pd.to_numeric(demand["demand_weight"], errors="coerce").to_numpy(float)
    children = pd.to_numeric(demand["children_count"], errors="coerce").to_numpy(float)
    bad = demand_ids[~np.isfinite(weight) | (weight < 0)]
    if len(bad):
        raise ValidationError(f"demand: missing or negative demand_weight for {preview(bad)}")
    if weight.sum() <= 0:
        raise SitingError("total demand weight is zero: there is no need to site hubs for")
    fixed_mask = np.zeros(len(site_ids), dtype=bool)
    for site in _resolve_fixed(candidates, fixed):
        fixed_mask[np.flatnonzero(site_ids == site)] = True
    return _Arrays(
        demand_ids=demand_ids,
        site_ids=site_ids,
        distance=distance_matrix(demand, candidates),
        weight=weight,
        children=np.nan_to_num(children),
        fixed=fixed_mask,
    )


def _resolve_fixed(candidates: gpd.GeoDataFrame, fixed: Iterable[str]) -> list[str]:
    """Match fixed sites by ``site_id`` first, then by name (case and spacing ignored)."""
    ids = candidates.index.astype(str)
    names = candidates["site_name"].astype(str)
    key = names.str.casefold().str.split().str.join(" ")
    found: list[str] = []
    problems: list[str] = []
    for wanted in fixed:
        wanted = str(wanted)
        if wanted in ids:
            found.append(wanted)
            continue
        hits = ids[(key == " ".join(wanted.casefold().split())).to_numpy()]
        if len(hits) == 1:
            found.append(str(hits[0]))
        elif len(hits) > 1:
            problems.append(
                f"fixed site {wanted!r} matches {len(hits)} candidates ({preview(hits)}); "
                "give the site_id instead"
            )
        else:
            hint = close_matches(wanted, list(names) + list(ids))
            problems.append(f"fixed site {wanted!r} is not a candidate site id or name{hint}")
    if problems:
        raise SitingError(
            problems[0] if len(problems) == 1 else "fixed sites not found:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return sorted(set(found))


def maximal_covering(
    demand: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    p: int,
    service_distance_m: float,
    fixed: Sequence[str] = (),
    time_limit_s: float | None = None,
) -> Plan:
    """Choose ``p`` sites that put the most need within ``service_distance_m`` (MCLP).

    Parameters
    ----------
    demand : GeoDataFrame
        Demand points (see :func:`demand_from_lsoas`), indexed by ``demand_id``.
    candidates : GeoDataFrame
        Candidate sites (see :func:`candidate_sites`), indexed by ``site_id``.
    p : int
        Number of sites to open, fixed sites included.
    service_distance_m : float
        A point is covered when an open site is at most this far (straight line, metres).
    fixed : sequence of str
        Site ids or names that are already open.
    time_limit_s : float, optional
        Stop each HiGHS solve after this many seconds and keep the best plan found (status
        ``'time limit'``); no limit by default.

    Returns
    -------
    Plan

    Raises
    ------
    SitingError
        ``p`` out of range, fewer candidates than ``p``, more fixed sites than ``p``, fixed site
        not found, solver failure.
    """
    _check_distance(service_distance_m)
    arrays = _arrays(demand, candidates, fixed)
    return _solve_mclp(arrays, p, service_distance_m, time_limit_s)


def p_median(
    demand: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    p: int,
    service_distance_m: float,
    fixed: Sequence[str] = (),
    time_limit_s: float | None = None,
) -> Plan:
    """Choose ``p`` sites that minimise the need-weighted distance to the nearest site.

    ``service_distance_m`` is used only to report coverage. Parameters, returns and errors as in
    :func:`maximal_covering`.
    """
    _check_distance(service_distance_m)
    arrays = _arrays(demand, candidates, fixed)
    return _solve_pmedian(arrays, p, service_distance_m, time_limit_s)


def set_covering(
    demand: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    service_distance_m: float,
    fixed: Sequence[str] = (),
    uncoverable: Literal["raise", "ignore"] = "raise",
    time_limit_s: float | None = None,
) -> Plan:
    """Find the fewest sites that put every point with need within ``service_distance_m`` (LSCP).

    Points with zero demand weight need no cover.

    Parameters
    ----------
    demand, candidates, service_distance_m, fixed, time_limit_s
        As in :func:`maximal_covering`.
    uncoverable : {'raise', 'ignore'}
        When some points are farther than the service distance from every candidate the problem
        is infeasible: raise, or cover the rest and say so in ``Plan.note`` (status
        ``'partial'``).

    Returns
    -------
    Plan

    Raises
    ------
    SitingError
        Infeasible covering (with the points out of reach and their share of need), fixed site
        not found, solver failure.
    """
    _check_distance(service_distance_m)
    arrays = _arrays(demand, candidates, fixed)
    return _solve_lscp(arrays, service_distance_m, uncoverable, time_limit_s)


def _check_distance(distance: float) -> None:
    if not (isinstance(distance, int | float) and math.isfinite(distance) and distance > 0):
        raise SitingError(f"service distance must be a positive number of metres, got {distance!r}")


def _check_p(arrays: _Arrays, p: int, label: str) -> None:
    m = len(arrays.site_ids)
    n_fixed = int(arrays.fixed.sum())
    if not isinstance(p, int | np.integer) or isinstance(p, bool) or p < 1:
        raise SitingError(f"{label}: p must be a whole number of sites >= 1, got {p!r}")
    if p > m:
        raise SitingError(f"{label}: p = {p} sites asked for but there are only {m} candidate sites")
    if n_fixed > p:
        raise SitingError(
            f"{label}: {n_fixed} fixed (already open) sites but p = {p}; p counts the fixed "
            f"sites, so it must be at least {n_fixed}"
        )


def _solve_mclp(
    arrays: _Arrays, p: int, distance: float, time_limit_s: float | None = None
) -> Plan:
    _check_p(arrays, p, "maximal covering")
    t0 = time.perf_counter()
    programme = _mclp_programme(arrays, int(p), distance)
    build = time.perf_counter() - t0
    scale = MCLP_SCALE / arrays.total

    def ties(open_: np.ndarray) -> tuple[float, float]:
        # cost = -(need covered) x scale; tied plans cover at least Z* - TIE_TOLERANCE x total
        best = float(arrays.weight[_covered(arrays, open_, distance)].sum())
        tolerance = TIE_TOLERANCE * arrays.total * scale
        return -best * scale + tolerance, 2.0 * tolerance

    open_, extra, solve, note = _optimise(programme, ties, "maximal covering", time_limit_s)
    plan = _plan("mclp", arrays, open_, distance, build + extra, solve, note)
    return _replace(plan, objective=plan.need_covered)


def _solve_pmedian(
    arrays: _Arrays, p: int, distance: float, time_limit_s: float | None = None
) -> Plan:
    _check_p(arrays, p, "p-median")
    t0 = time.perf_counter()
    programme = _pmedian_programme(arrays, int(p))
    build = time.perf_counter() - t0
    scale = PMEDIAN_SCALE / arrays.total

    def ties(open_: np.ndarray) -> tuple[float, float]:
        # cost = need-weighted metres x scale; tied plans cost at most Z* + tolerance
        best = _weighted_distance(arrays, open_)
        tolerance = TIE_TOLERANCE * max(best, arrays.total) * scale
        return best * scale + tolerance, 2.0 * tolerance

    open_, extra, solve, note = _optimise(programme, ties, "p-median", time_limit_s)
    plan = _plan("pmedian", arrays, open_, distance, build + extra, solve, note)
    return _replace(plan, objective=_weighted_distance(arrays, open_))


def _solve_lscp(
    arrays: _Arrays, distance: float, uncoverable: str, time_limit_s: float | None = None
) -> Plan:
    if uncoverable not in ("raise", "ignore"):
        raise ValueError(f"uncoverable must be 'raise' or 'ignore', got {uncoverable!r}")
    needs = arrays.weight > 0
    cover = arrays.distance <= distance
    reach = cover.any(axis=1)
    out = needs & ~reach
    partial = ""
    if out.any():
        share = arrays.weight[out].sum() / arrays.total
        partial = (
            f"{int(out.sum())} demand point(s) ({share:.1%} of need: "
            f"{preview(arrays.demand_ids[out])}) are more than {distance / 1000:g} km from every "
            "candidate site, so no set of sites covers all need"
        )
        if uncoverable == "raise" or not (needs & reach).any():
            raise SitingError(
                f"location set covering is infeasible: {partial}; add candidate sites near them "
                "or increase the service distance"
            )
        partial = f"covers the need within reach only: {partial}"
    t0 = time.perf_counter()
    rows = _essential_rows(cover, needs & reach)
    programme = _lscp_programme(arrays, cover[rows])
    build = time.perf_counter() - t0

    def ties(open_: np.ndarray) -> tuple[float, float]:
        # cost = number of sites; tied plans have no more sites (any epsilon > 0 will do)
        return float(open_.sum()), 1.0

    open_, extra, solve, note = _optimise(programme, ties, "location set covering", time_limit_s)
    note = "; ".join(n for n in (partial, note) if n)
    plan = _plan("lscp", arrays, open_, distance, build + extra, solve, note)
    status = plan.status if plan.status != "optimal" else ("partial" if partial else "optimal")
    return _replace(plan, objective=float(open_.sum()), status=status)


def _essential_rows(cover: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of a set-covering problem that are not implied by another row.

    A point whose candidate set contains another point's candidate set is covered whenever that
    point is, so its constraint is redundant (the first of identical sets is kept). Dropping such
    rows leaves the feasible plans, and so the optimum and the tie-break, unchanged.
    """
    idx = np.flatnonzero(rows)
    if len(idx) > ESSENTIAL_ROWS_MAX:  # the pairwise check needs n² memory
        return rows.copy()
    a = cover[idx].astype(np.float32)
    size = a.sum(axis=1)
    inter = a @ a.T  # |S_i ∩ S_k|
    contains = np.isclose(inter, size[None, :])  # S_i ⊇ S_k
    np.fill_diagonal(contains, False)
    smaller = size[None, :] < size[:, None]
    earlier = np.arange(len(idx))[None, :] < np.arange(len(idx))[:, None]
    same = np.isclose(size[None, :], size[:, None]) & earlier
    redundant = (contains & (smaller | same)).any(axis=1)
    keep = np.zeros_like(rows)
    keep[idx[~redundant]] = True
    return keep


@dataclass(frozen=True)
class _Programme:
    """A mixed-integer programme in the form ``scipy.optimize.milp`` takes.

    Minimise ``cost @ v`` subject to ``row_lower <= matrix @ v <= row_upper`` and
    ``lower <= v <= 1``. The first ``n_sites`` variables are the sites' :math:`x_j` (binary,
    in ``site_id`` order); the others are continuous.
    """

    cost: np.ndarray
    matrix: Any  # scipy.sparse matrix, rows × variables
    row_lower: np.ndarray
    row_upper: np.ndarray
    lower: np.ndarray
    n_sites: int

    @property
    def integrality(self) -> np.ndarray:
        out = np.zeros(len(self.cost), dtype=np.uint8)
        out[: self.n_sites] = 1
        return out

    def tie_break(self, bound: float, epsilon: float) -> _Programme:
        """The same programme with ``cost @ v <= bound`` added and ε Σ (j + 1) x_j in the cost."""
        from scipy import sparse

        cost = self.cost.copy()
        cost[: self.n_sites] += epsilon * np.arange(1, self.n_sites + 1)
        return _Programme(
            cost=cost,
            matrix=sparse.vstack([self.matrix, sparse.csr_matrix(self.cost)], format="csr"),
            row_lower=np.append(self.row_lower, -np.inf),
            row_upper=np.append(self.row_upper, bound),
            lower=self.lower,
            n_sites=self.n_sites,
        )


def _matrix(
    rows: Sequence[np.ndarray], cols: Sequence[np.ndarray], values: Sequence[np.ndarray | float],
    shape: tuple[int, int],
) -> Any:
    """A sparse matrix (CSR) from blocks of (row, column, value) triplets."""
    from scipy import sparse

    r = np.concatenate(rows)
    c = np.concatenate(cols)
    v = np.concatenate([np.broadcast_to(np.asarray(x, float), a.shape)
                        for x, a in zip(values, rows, strict=True)])
    return sparse.csr_matrix((v, (r, c)), shape=shape)


def _mclp_programme(arrays: _Arrays, p: int, distance: float) -> _Programme:
    """Maximal covering: variables x_j (sites), then y_i (demand points that can be covered).

    Points with no weight or beyond the reach of every candidate cannot change the need
    covered and get no y_i. With ``x`` binary, the optimal y_i = min(1, Σ_{j∈N_i} x_j) is
    integral, so y_i can be continuous. Costs are -need × ``MCLP_SCALE`` / total need (minus
    the share of need covered, in parts per million).
    """
    m = len(arrays.site_ids)
    cover = arrays.distance <= distance
    rows = np.flatnonzero((arrays.weight > 0) & cover.any(axis=1))
    k = len(rows)
    ii, jj = np.nonzero(cover[rows])
    at = np.arange(k)
    matrix = _matrix(
        [ii, at, np.full(m, k)],  # y_i - Σ_{j∈N_i} x_j <= 0; Σ_j x_j = p
        [jj, m + at, np.arange(m)],
        [-1.0, 1.0, 1.0],
        (k + 1, m + k),
    )
    return _Programme(
        cost=np.concatenate([np.zeros(m), -arrays.weight[rows] * (MCLP_SCALE / arrays.total)]),
        matrix=matrix,
        row_lower=np.append(np.full(k, -np.inf), p),
        row_upper=np.append(np.zeros(k), p),
        lower=np.concatenate([arrays.fixed.astype(float), np.zeros(k)]),
        n_sites=m,
    )


def _pmedian_programme(arrays: _Arrays, p: int) -> _Programme:
    """p-median: variables x_j (sites), then z_ij (point i served by site j).

    Only points with weight get z_ij, and only for the sites that can be the nearest open
    one in some plan: no farther than the point's (m − p + 1)-th nearest site (at least one
    of those is open whatever p sites open) and no farther than its nearest fixed site (which
    is open). z_ij is continuous: with ``x`` binary an optimal assignment is integral. Costs are
    need-weighted metres × ``PMEDIAN_SCALE`` / total need (the mean distance in millimetres).
    """
    m = len(arrays.site_ids)
    points = np.flatnonzero(arrays.weight > 0)
    d = arrays.distance[points]
    reach = np.partition(d, m - p, axis=1)[:, m - p]
    if arrays.fixed.any():
        reach = np.minimum(reach, d[:, arrays.fixed].min(axis=1))
    ii, jj = np.nonzero(d <= reach[:, None])
    k, nz = len(points), len(ii)
    if nz > PMEDIAN_LARGE:
        logger.warning(
            "p-median: %d demand points x %d candidate sites make %s assignment variables; "
            "expect minutes and gigabytes of memory (leave 'pmedian' out of [siting] models)",
            k, m, f"{nz:,}",
        )
    at = np.arange(nz)
    matrix = _matrix(
        # Σ_j z_ij = 1; z_ij - x_j <= 0; Σ_j x_j = p
        [ii, k + at, k + at, np.full(m, k + nz)],
        [m + at, m + at, jj, np.arange(m)],
        [1.0, 1.0, -1.0, 1.0],
        (k + nz + 1, m + nz),
    )
    return _Programme(
        cost=np.concatenate(
            [np.zeros(m), arrays.weight[points][ii] * d[ii, jj] * (PMEDIAN_SCALE / arrays.total)]
        ),
        matrix=matrix,
        row_lower=np.concatenate([np.ones(k), np.full(nz, -np.inf), [p]]),
        row_upper=np.concatenate([np.ones(k), np.zeros(nz), [p]]),
        lower=np.concatenate([arrays.fixed.astype(float), np.zeros(nz)]),
        n_sites=m,
    )


def _lscp_programme(arrays: _Arrays, cover: np.ndarray) -> _Programme:
    """Location set covering: variables x_j only; one row Σ_{j∈N_i} x_j >= 1 per point."""
    m = len(arrays.site_ids)
    ii, jj = np.nonzero(cover)
    return _Programme(
        cost=np.ones(m),
        matrix=_matrix([ii], [jj], [1.0], (len(cover), m)),
        row_lower=np.ones(len(cover)),
        row_upper=np.full(len(cover), np.inf),
        lower=arrays.fixed.astype(float),
        n_sites=m,
    )


def _optimise(
    programme: _Programme,
    ties: Callable[[np.ndarray], tuple[float, float]],
    label: str,
    time_limit_s: float | None,
) -> tuple[np.ndarray, float, float, str]:
    """Solve, then break ties among optimal plans (see the module Notes).

    ``ties`` gives, from the optimal plan, the largest ``cost @ v`` a tied plan may have and
    the weight ε of the site positions in the tie-break, larger than the tie tolerance.
    Returns the open sites, the seconds spent building the tie-break, the seconds spent
    solving and a note ('' when both stages finished).
    """
    limit = f"{time_limit_s:g} s time limit" if time_limit_s is not None else "iteration limit"
    x, solve, proven = _solve(programme, label, time_limit_s)
    if x is None:
        raise SitingError(
            f"{label}: no plan found within the {limit}; raise time_limit_s or give fewer "
            "candidate sites"
        )
    open_ = x[: programme.n_sites] > 0.5
    if not proven:
        return open_, 0.0, solve, (
            f"stopped at the {limit}: the best plan found, not proven optimal (ties not broken)"
        )
    t0 = time.perf_counter()
    tied = programme.tie_break(*ties(open_))
    extra = time.perf_counter() - t0
    x, seconds, proven = _solve(tied, f"{label} (tie-break)", time_limit_s)
    kind = "time" if time_limit_s is not None else "iteration"
    note = "" if proven else f"optimal, but breaking ties stopped at the {kind} limit"
    if x is not None:  # else keep the optimal plan of the first stage
        open_ = x[: programme.n_sites] > 0.5
    return open_, extra, solve + seconds, note


def _solve(
    programme: _Programme, label: str, time_limit_s: float | None = None
) -> tuple[np.ndarray | None, float, bool]:
    """Solve with HiGHS (``scipy.optimize.milp``), in-process.

    Returns the solution (``None`` when the time limit stopped HiGHS before it found any),
    the seconds taken and whether optimality was proven.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    options: dict[str, Any] = {"mip_rel_gap": 0.0}  # prove optimality, not 0.01% of it
    if time_limit_s is not None:
        options["time_limit"] = float(time_limit_s)
    t0 = time.perf_counter()
    result = milp(
        programme.cost,
        integrality=programme.integrality,
        bounds=Bounds(programme.lower, np.ones(len(programme.cost))),
        constraints=LinearConstraint(programme.matrix, programme.row_lower, programme.row_upper),
        options=options,
    )
    seconds = time.perf_counter() - t0
    logger.debug("%s: HiGHS status %d in %.3f s (%s)", label, result.status, seconds,
                 result.message)
    if result.status == 0:
        return np.asarray(result.x), seconds, True
    if result.status == 1:  # time (or iteration) limit: the best plan found, if any
        return (None if result.x is None else np.asarray(result.x)), seconds, False
    if result.status == 2:
        raise SitingError(
            f"{label}: no feasible plan; check p, the fixed sites and the service distance"
        )
    raise SitingError(f"{label}: the solver failed ({result.message})")


def _covered(arrays: _Arrays, open_: np.ndarray, distance: float) -> np.ndarray:
    return (arrays.distance[:, open_] <= distance).any(axis=1)


def _weighted_distance(arrays: _Arrays, open_: np.ndarray) -> float:
    return float((arrays.weight * arrays.distance[:, open_].min(axis=1)).sum())


def _plan(
    model: str,
    arrays: _Arrays,
    open_: np.ndarray,
    distance: float,
    build: float,
    solve: float,
    note: str = "",
) -> Plan:
    covered = _covered(arrays, open_, distance)
    nearest = arrays.distance[:, open_].min(axis=1)
    need = float(arrays.weight[covered].sum())
    return Plan(
        model=model,
        site_ids=tuple(str(s) for s in arrays.site_ids[open_]),
        fixed_ids=tuple(str(s) for s in arrays.site_ids[arrays.fixed]),
        status="time limit" if "stopped at the" in note else "optimal",
        objective=float("nan"),
        need_covered=need,
        need_covered_share=need / arrays.total,
        children_covered_count=float(arrays.children[covered].sum()),
        mean_distance_km=float((arrays.weight * nearest).sum() / arrays.total / 1000.0),
        service_distance_m=float(distance),
        build_seconds=build,
        solve_seconds=solve,
        note=note,
    )


def _replace(plan: Plan, **changes: Any) -> Plan:
    import dataclasses

    return dataclasses.replace(plan, **changes)


# ----------------------------------------------------------------------------------------
# Outreach and tiers
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TierRule:
    """One priority tier and when a ward belongs to it; the first matching rule wins.

    Attributes
    ----------
    tier : str
        Name of the tier.
    all_of : tuple of str
        Conditions that must all hold.
    any_of : tuple of str
        Conditions of which at least one must hold (ignored when empty).
    reason : str
        Plain-language reason, completed with the ward's own facts.

    Notes
    -----
    Conditions, computed per ward by :func:`assign_tiers`:

    * ``top_quintile`` — among the ⌈share × n⌉ wards with the highest need (share is
      ``SitingSettings.high_need_share``, 0.2);
    * ``high_high`` / ``high_low`` — LISA cluster label High-High / High-Low;
    * ``rank_interval_in_top_quintile`` — the whole rank interval (both ends) is in the top
      quintile, so the ward is there whatever the weights;
    * ``rank_interval_reaches_top_quintile`` — the best end of the rank interval is there;
    * ``second_quintile`` — the next ⌈share × n⌉ wards;
    * ``high_need`` — top quintile, High-High or High-Low;
    * ``poorly_covered`` — less than ``SitingSettings.outreach_threshold`` of the ward's need is
      within the service distance of a hub;
    * ``outreach`` — high need and poorly covered.
    """

    tier: str
    reason: str
    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()


#: The default tiers, most urgent first; the last rule catches every other ward.
DEFAULT_TIER_RULES: tuple[TierRule, ...] = (
    TierRule(
        "Hub priority",
        "need in the top quintile and confirmed (a High-High cluster, or the whole rank "
        "interval in the top quintile): a place for a hub",
        all_of=("top_quintile",),
        any_of=("high_high", "rank_interval_in_top_quintile"),
    ),
    TierRule(
        "Outreach priority",
        "high need (top quintile, or a High-High / High-Low cluster) that is not confirmed "
        "enough for a hub: target outreach",
        any_of=("top_quintile", "high_high", "high_low"),
    ),
    TierRule(
        "Monitor",
        "need in the second quintile, or a rank interval reaching the top quintile: watch",
        any_of=("second_quintile", "rank_interval_reaches_top_quintile"),
    ),
    TierRule("Universal offer", "need not high: the universal offer"),
)
#: Most ward names listed per sentence of :func:`describe_siting` (the rest are counted).
REPORT_MAX_NAMES = 5
#: Tier of a ward without a need index (no indicator has a value there).
NO_DATA_TIER = "No data"

CONDITIONS = (
    "top_quintile",
    "second_quintile",
    "high_high",
    "high_low",
    "rank_interval_in_top_quintile",
    "rank_interval_reaches_top_quintile",
    "high_need",
    "poorly_covered",
    "outreach",
)


def ward_service(
    demand: gpd.GeoDataFrame,
    hubs: gpd.GeoDataFrame,
    wards: pd.DataFrame,
    *,
    service_distance_m: float,
) -> pd.DataFrame:
    """Measure how well each ward's need is served by the hubs.

    Parameters
    ----------
    demand : GeoDataFrame
        Demand points with ``ward_code`` and ``demand_weight``.
    hubs : GeoDataFrame
        Open sites (points, EPSG:27700).
    wards : DataFrame or GeoDataFrame
        Indexed by ``ward_code``; polygon geometry, when present, locates wards without demand.
    service_distance_m : float

    Returns
    -------
    DataFrame
        Indexed by ``ward_code`` (in the order of ``wards``): ``need_total``,
        ``children_count``, ``nearest_hub_km`` and ``need_covered_share``.

    Raises
    ------
    JoinError
        Demand points name wards missing from ``wards``.

    Notes
    -----
    ``nearest_hub_km`` is the need-weighted mean straight-line distance from the ward's demand
    points to their nearest hub (unweighted when the ward's need is zero; from the ward's
    representative point when it has no demand points). ``need_covered_share`` is the ward's
    demand weight within ``service_distance_m`` of a hub over its total (missing when the ward
    has no need).
    """
    from ._errors import JoinError

    ward_codes = _ward_index(wards)
    demand_wards = demand["ward_code"].astype(str)
    unknown = sorted(set(demand_wards) - set(ward_codes))
    if unknown:
        raise JoinError(
            f"demand points name {len(unknown)} ward code(s) not in the ward table: "
            f"{preview(unknown)}"
        )
    if len(hubs) == 0:
        raise SitingError("no hubs to measure service from")
    hub_xy = _xy(hubs, "hubs")
    d = cdist(_xy(demand, "demand"), hub_xy).min(axis=1)
    frame = pd.DataFrame(
        {
            "ward_code": demand_wards.to_numpy(),
            "w": demand["demand_weight"].to_numpy(float),
            "c": demand["children_count"].to_numpy(float),
            "d": d,
            "covered": d <= service_distance_m,
        }
    )
    frame["wd"] = frame["w"] * frame["d"]
    frame["wc"] = frame["w"] * frame["covered"]
    g = frame.groupby("ward_code", sort=True)
    sums = g[["w", "c", "wd", "wc"]].sum()
    mean_d = g["d"].mean()
    out = pd.DataFrame(index=pd.Index(ward_codes, name="ward_code"))
    out["need_total"] = sums["w"].reindex(out.index)
    out["children_count"] = sums["c"].reindex(out.index)
    weighted = (sums["wd"] / sums["w"]).where(sums["w"] > 0, mean_d)
    out["nearest_hub_km"] = weighted.reindex(out.index) / 1000.0
    out["need_covered_share"] = (sums["wc"] / sums["w"]).where(sums["w"] > 0).reindex(out.index)
    empty = out.index[out["need_total"].isna()]
    if len(empty):
        geom = wards.geometry if isinstance(wards, gpd.GeoDataFrame) else None
        for code in empty:
            if geom is not None:
                shape = gpd.GeoSeries([geom.loc[code]], crs=wards.crs).to_crs(CRS)
                point = shape.representative_point().iloc[0]
                out.loc[code, "nearest_hub_km"] = (
                    float(cdist([[point.x, point.y]], hub_xy).min()) / 1000.0
                )
        out.loc[empty, ["need_total", "children_count"]] = 0.0
    return out


def assign_tiers(
    wards: pd.DataFrame,
    service: pd.DataFrame,
    *,
    need_column: str,
    lisa_column: str | None = "lisa_label",
    rank_interval_columns: tuple[str, str] | None = ("rank_p05", "rank_p95"),
    high_need_share: float = 0.2,
    outreach_threshold: float = 0.5,
    service_distance_m: float = 2000.0,
    rules: Sequence[TierRule] = DEFAULT_TIER_RULES,
) -> pd.DataFrame:
    """Flag wards for outreach and give every ward a priority tier.

    Parameters
    ----------
    wards : DataFrame
        Indexed by ``ward_code`` with ``need_column`` (higher = more need) and, when available,
        a LISA label column and rank-interval columns (rank 1 = most need; the two ends of the
        interval in either order). Absent optional columns simply never match.
    service : DataFrame
        Output of :func:`ward_service`.
    need_column : str
    lisa_column : str or None
    rank_interval_columns : (str, str) or None
    high_need_share : float
        Share of wards counted as the top (and second) "quintile".
    outreach_threshold : float
        High-need wards with less than this share of need within reach of a hub get outreach.
    service_distance_m : float
        Only for the wording of reasons.
    rules : sequence of TierRule
        Tiers, most urgent first; see :class:`TierRule` for the conditions.

    Returns
    -------
    DataFrame
        Indexed by ``ward_code``: ``need_rank``, ``high_need``, ``outreach``,
        ``outreach_reason``, ``tier``, ``tier_reason``. A ward without a need value has no
        ``need_rank``, is neither high need nor outreach, and gets :data:`NO_DATA_TIER`; the
        other wards are ranked among themselves.

    Raises
    ------
    ValidationError
        Missing need column or values, unknown condition in a rule, thresholds out of range.
    """
    codes = _ward_index(wards)
    frame = pd.DataFrame(wards).set_axis(pd.Index(codes, name="ward_code"))
    problems = _missing_columns(frame, [need_column], "ward table")
    if not 0 < high_need_share <= 0.5:
        problems.append(f"high_need_share must be in (0, 0.5], got {high_need_share}")
    if not 0 <= outreach_threshold <= 1:
        problems.append(f"outreach_threshold must be in [0, 1], got {outreach_threshold}")
    for rule in rules:
        for cond in rule.all_of + rule.any_of:
            if cond not in CONDITIONS:
                problems.append(
                    f"tier rule {rule.tier!r}: unknown condition {cond!r}"
                    f"{close_matches(cond, CONDITIONS)}"
                )
    if problems:
        raise ValidationError(problems)
    need = pd.to_numeric(frame[need_column], errors="coerce")
    if need.isna().all():
        raise ValidationError(f"ward table column {need_column!r}: no ward has a need value; "
                              "siting needs some")
    if need.isna().any():
        logger.warning("%d ward(s) have no need index (%s): tier %r, left out of the ranking "
                       "the tiers use", int(need.isna().sum()), preview(need.index[need.isna()]),
                       NO_DATA_TIER)
    known = need.notna().to_numpy()
    codes = np.asarray(codes, dtype=object)
    tiered = _assign_known_tiers(
        frame.loc[known], service, need=need[known], codes=codes[known],
        lisa_column=lisa_column, rank_interval_columns=rank_interval_columns,
        high_need_share=high_need_share, outreach_threshold=outreach_threshold,
        service_distance_m=service_distance_m, rules=rules,
    )
    out = tiered.reindex(pd.Index(codes, name="ward_code"))
    out["need_rank"] = out["need_rank"].astype("Int64")
    missing = ~known
    out.loc[missing, ["high_need", "outreach"]] = False
    out[["high_need", "outreach"]] = out[["high_need", "outreach"]].astype(bool)
    out.loc[missing, "outreach_reason"] = ""
    out.loc[missing, "tier"] = NO_DATA_TIER
    out.loc[missing, "tier_reason"] = "no need index: none of its indicators has a value"
    return out


def _assign_known_tiers(
    frame: pd.DataFrame,
    service: pd.DataFrame,
    *,
    need: pd.Series,
    codes: np.ndarray,
    lisa_column: str | None,
    rank_interval_columns: tuple[str, str] | None,
    high_need_share: float,
    outreach_threshold: float,
    service_distance_m: float,
    rules: Sequence[TierRule],
) -> pd.DataFrame:
    """:func:`assign_tiers` for the wards that have a need value."""
    n = len(frame)
    # rank 1 = most need; ties broken by ward_code so the order is stable
    order = pd.DataFrame({"need": need.to_numpy(), "code": codes}).sort_values(
        ["need", "code"], ascending=[False, True], kind="stable"
    )
    rank = pd.Series(np.arange(1, n + 1), index=order["code"].to_numpy()).reindex(codes)
    top_n = max(1, math.ceil(high_need_share * n - 1e-9))
    cond = pd.DataFrame(index=pd.Index(codes, name="ward_code"))
    cond["top_quintile"] = rank.to_numpy() <= top_n
    cond["second_quintile"] = (rank.to_numpy() > top_n) & (rank.to_numpy() <= 2 * top_n)
    labels = pd.Series("", index=cond.index)
    if lisa_column is not None and lisa_column in frame.columns:
        labels = frame[lisa_column].map(_lisa_key)
    cond["high_high"] = (labels == "High-High").to_numpy()
    cond["high_low"] = (labels == "High-Low").to_numpy()
    if rank_interval_columns is not None and all(c in frame.columns for c in rank_interval_columns):
        ends = frame[list(rank_interval_columns)].apply(pd.to_numeric, errors="coerce")
        best, worst = ends.min(axis=1), ends.max(axis=1)
        cond["rank_interval_in_top_quintile"] = (worst <= top_n).to_numpy()
        cond["rank_interval_reaches_top_quintile"] = (best <= top_n).to_numpy()
    else:
        cond["rank_interval_in_top_quintile"] = False
        cond["rank_interval_reaches_top_quintile"] = False
    cond["high_need"] = cond["top_quintile"] | cond["high_high"] | cond["high_low"]
    share = service["need_covered_share"].reindex(cond.index)
    cond["poorly_covered"] = (share < outreach_threshold).fillna(False).to_numpy(bool)
    cond["outreach"] = cond["high_need"] & cond["poorly_covered"]

    out = pd.DataFrame(index=cond.index)
    out["need_rank"] = rank.to_numpy().astype(int)
    out["high_need"] = cond["high_need"]
    out["outreach"] = cond["outreach"]
    reasons_o, tiers, reasons_t = [], [], []
    km = service["nearest_hub_km"].reindex(cond.index)
    for code in cond.index:
        c = cond.loc[code]
        facts = _facts(c, int(rank[code]), n, labels.get(code, ""))
        cover = share.get(code)
        if c["outreach"]:
            reasons_o.append(
                f"{facts}, but only {cover:.0%} of its children's need is within "
                f"{service_distance_m / 1000:g} km of a hub (need-weighted distance to the nearest "
                f"hub {km[code]:.1f} km)"
            )
        else:
            reasons_o.append("")
        rule = _first_rule(rules, c)
        tiers.append(rule.tier if rule else "")
        text = f"{rule.reason}; {facts}" if rule else "no tier rule matched"
        if c["outreach"]:
            text += f"; only {cover:.0%} of its need is within reach of a hub: outreach"
        reasons_t.append(text)
    out["outreach_reason"] = reasons_o
    out["tier"] = tiers
    out["tier_reason"] = reasons_t
    return out


def _facts(c: pd.Series, rank: int, n: int, label: str) -> str:
    parts = [f"ranked {rank} of {n} for need"]
    if label in ("High-High", "High-Low"):
        parts.append(f"a {label} cluster")
    if c["rank_interval_in_top_quintile"]:
        parts.append("rank interval wholly in the top quintile")
    elif c["rank_interval_reaches_top_quintile"] and not c["top_quintile"]:
        parts.append("rank interval reaching the top quintile")
    return ", ".join(parts)


def _first_rule(rules: Sequence[TierRule], c: pd.Series) -> TierRule | None:
    for rule in rules:
        if all(bool(c[k]) for k in rule.all_of) and (
            not rule.any_of or any(bool(c[k]) for k in rule.any_of)
        ):
            return rule
    return None


def _lisa_key(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    key = "".join(ch for ch in value.casefold() if ch.isalpha())
    return HIGH_LISA.get(key, "")


# ----------------------------------------------------------------------------------------
# The front door
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SitingResult:
    """Everything :func:`site_hubs` found.

    Attributes
    ----------
    hubs : GeoDataFrame
        The hubs of the plan of record (the first model run, maximal covering by default),
        indexed by ``site_id``: ``site_name``, ``site_kind``, ``fixed``, ``ward_code``,
        ``need_within_distance`` (need within the service distance of this hub; overlaps
        between hubs counted for each), ``need_within_distance_share``,
        ``children_within_distance_count``, ``need_covered`` (need within the service distance
        whose nearest hub is this one: sums to the plan's total without double counting),
        ``need_covered_share`` (of total need) and point ``geometry`` (EPSG:27700).
    wards : DataFrame
        Indexed by ``ward_code``: ``need_total``, ``children_count``, ``nearest_hub_km``,
        ``need_covered_share``, ``need_rank``, ``high_need``, ``outreach``,
        ``outreach_reason``, ``tier``, ``tier_reason``.
    summaries : DataFrame
        One row per model (index ``model``): ``label``, ``status``, ``n_sites``, ``site_ids``,
        ``objective``, ``need_covered``, ``need_covered_share``, ``children_covered_count``,
        ``mean_distance_km``, ``build_seconds``, ``solve_seconds``, ``note``.
    plans : dict of str to Plan
    demand : GeoDataFrame
        The demand points with ``nearest_hub_id``, ``nearest_hub_km`` and ``covered``.
    candidates : GeoDataFrame
        The candidate sites, with ``fixed`` and ``chosen``.
    settings : SitingSettings
    """

    hubs: gpd.GeoDataFrame
    wards: pd.DataFrame
    summaries: pd.DataFrame
    plans: dict[str, Plan]
    demand: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    settings: SitingSettings = field(default_factory=SitingSettings)

    def __repr__(self) -> str:
        lines = [
            f"SitingResult: {len(self.hubs)} hub(s) within {self.settings.service_distance_m / 1000:g}"
            f" km, {len(self.demand)} demand points, {len(self.candidates)} candidate sites"
        ]
        lines += [f"  {plan!r}" for plan in self.plans.values()]
        tiers = self.wards["tier"].value_counts().reindex(
            [r for r in dict.fromkeys(self.wards["tier"])]
        )
        lines.append("  tiers: " + ", ".join(f"{k} {v}" for k, v in tiers.items()))
        lines.append(f"  outreach: {int(self.wards['outreach'].sum())} ward(s)")
        return "\n".join(lines)


def describe_siting(result: SitingResult, ward_names: pd.Series) -> tuple[str, ...]:
    """The siting result in a few plain sentences, for the first page of the report.

    Parameters
    ----------
    result : SitingResult
    ward_names : Series
        Ward name by ``ward_code``.

    Returns
    -------
    tuple of str
        The hubs and the share of need they reach, what the other models say, the
        hub-priority wards and the outreach wards (at most :data:`REPORT_MAX_NAMES` named
        in each). No counts of children are quoted
        (the tables publish them under disclosure control); ``hubs.csv`` and the ranked
        table hold the details.
    """
    settings = result.settings
    km = f"{settings.service_distance_m / 1000:g} km"
    record = result.summaries.iloc[0]

    def names(codes, most: int = REPORT_MAX_NAMES) -> str:
        shown = [str(ward_names.get(c, c)) for c in list(codes)[:most]]
        more = len(codes) - len(shown)
        return ", ".join(shown) + (f" and {more} more (see the ranked table)" if more > 0 else "")

    hubs = "; ".join(f"{row.site_name} ({ward_names.get(row.ward_code, row.ward_code)})"
                     for row in result.hubs.itertuples())
    lines = [f"{len(result.hubs)} hub site(s) chosen by {record['label']} from "
             f"{len(result.candidates)} candidates: {hubs}. They have "
             f"{record['need_covered_share']:.0%} of children's need (children aged 0–15 "
             f"weighted by their ward's need) within {km} in a straight line."]
    for model, row in result.summaries.iloc[1:].iterrows():
        status = "" if row["status"] == "optimal" else f", {row['status']}"
        if model == "lscp":
            lines.append(f"Reaching all of it would take {int(row['n_sites'])} sites "
                         f"(set covering{status}).")
        elif model == "pmedian":
            lines.append(f"The p-median plan has {row['need_covered_share']:.0%} within {km} "
                         f"and a mean distance of {row['mean_distance_km']:.1f} km{status}.")
        elif model == "mclp":
            lines.append(f"Maximal covering would reach {row['need_covered_share']:.0%}"
                         f"{status}.")
    wards = result.wards
    tiers = wards["tier"]
    tier = ("Hub priority" if (tiers == "Hub priority").any()
            else tiers.iloc[0] if len(tiers) else None)
    if tier is not None:
        lines.append(f"{tier}: {names(wards.index[(tiers == tier).to_numpy()])}.")
    outreach = wards.index[wards["outreach"].to_numpy(bool)]
    lines.append(
        f"Outreach (high need, under {settings.outreach_threshold:.0%} of it within {km} of a "
        f"hub): {names(outreach)}." if len(outreach)
        else f"No high-need ward has under {settings.outreach_threshold:.0%} of its need "
             f"within {km} of a hub: none needs outreach."
    )
    return tuple(lines)


def site_hubs(
    demand: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    wards: pd.DataFrame,
    settings: SitingSettings | None = None,
    *,
    need_column: str = "need_index",
    lisa_column: str | None = "lisa_label",
    rank_interval_columns: tuple[str, str] | None = ("rank_p05", "rank_p95"),
    models: Sequence[str] = MODELS,
    rules: Sequence[TierRule] = DEFAULT_TIER_RULES,
) -> SitingResult:
    """Site hubs, measure each ward's service, flag outreach and assign priority tiers.

    Parameters
    ----------
    demand : GeoDataFrame
        Demand points (:func:`demand_from_lsoas` or :func:`demand_from_points`).
    candidates : GeoDataFrame
        Candidate sites (:func:`candidate_sites`).
    wards : DataFrame or GeoDataFrame
        The ward table of the index, indexed by ``ward_code``; see :func:`assign_tiers`.
    settings : SitingSettings, optional
        ``p``, ``service_distance_m``, ``fixed_sites``, ``high_need_share`` and
        ``outreach_threshold``; defaults when omitted.
    need_column, lisa_column, rank_interval_columns
        Ward columns used for high need (see :func:`assign_tiers`).
    models : sequence of {'mclp', 'pmedian', 'lscp'}
        Models to solve; the first gives the hubs. An infeasible LSCP (need out of reach of
        every candidate) is solved for the need within reach and reported as ``'partial'``.
    rules : sequence of TierRule
        Priority tiers (default :data:`DEFAULT_TIER_RULES`).

    Returns
    -------
    SitingResult

    Raises
    ------
    SitingError
        Ill-posed or infeasible settings (p, fixed sites, no candidates, no need).
    ValidationError
        Missing columns or values.
    """
    settings = settings or SitingSettings()
    _check_distance(settings.service_distance_m)
    models = tuple(str(m).casefold().replace("-", "").replace("_", "") for m in models)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise SitingError(
            f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(MODELS)}{close_matches(unknown[0], MODELS) if unknown else ''}"
        )
    arrays = _arrays(demand, candidates, settings.fixed_sites)
    distance = settings.service_distance_m
    plans: dict[str, Plan] = {}
    for name in dict.fromkeys(models):
        if name == "mclp":
            plans[name] = _solve_mclp(arrays, settings.p, distance, settings.time_limit_s)
        elif name == "pmedian":
            plans[name] = _solve_pmedian(arrays, settings.p, distance, settings.time_limit_s)
        else:
            plans[name] = _solve_lscp(arrays, distance, "ignore", settings.time_limit_s)
    record = plans[models[0]]
    cands = candidates.sort_index(kind="stable").copy()
    cands["fixed"] = cands.index.astype(str).isin(record.fixed_ids)
    cands["chosen"] = cands.index.astype(str).isin(record.site_ids)
    hubs = _hubs_frame(arrays, cands, record, wards, distance)
    annotated = _annotate_demand(demand, arrays, record, distance)
    service = ward_service(annotated, hubs, wards, service_distance_m=distance)
    tiers = assign_tiers(
        wards,
        service,
        need_column=need_column,
        lisa_column=lisa_column,
        rank_interval_columns=rank_interval_columns,
        high_need_share=settings.high_need_share,
        outreach_threshold=settings.outreach_threshold,
        service_distance_m=distance,
        rules=rules,
    )
    ward_out = service.join(tiers)
    summaries = pd.DataFrame(
        [
            {
                "model": p.model,
                "label": MODEL_LABELS[p.model],
                "status": p.status,
                "n_sites": p.n_sites,
                "site_ids": ";".join(p.site_ids),
                "objective": p.objective,
                "need_covered": p.need_covered,
                "need_covered_share": p.need_covered_share,
                "children_covered_count": p.children_covered_count,
                "mean_distance_km": p.mean_distance_km,
                "build_seconds": p.build_seconds,
                "solve_seconds": p.solve_seconds,
                "note": p.note,
            }
            for p in plans.values()
        ]
    ).set_index("model")
    return SitingResult(
        hubs=hubs,
        wards=ward_out,
        summaries=summaries,
        plans=plans,
        demand=annotated,
        candidates=cands,
        settings=settings,
    )


def _hubs_frame(
    arrays: _Arrays, cands: gpd.GeoDataFrame, plan: Plan, wards: pd.DataFrame, distance: float
) -> gpd.GeoDataFrame:
    open_ = np.isin(arrays.site_ids, plan.site_ids)
    d = arrays.distance[:, open_]
    within = d <= distance
    nearest = d.argmin(axis=1)
    first = np.zeros_like(within)
    first[np.arange(len(nearest)), nearest] = True
    first &= within
    total = arrays.total
    hubs = cands.loc[list(plan.site_ids), ["site_name", "site_kind", "geometry"]].copy()
    hubs.insert(2, "fixed", hubs.index.isin(plan.fixed_ids))
    hubs.insert(3, "ward_code", _ward_of_points(hubs.geometry.values, wards))
    need_within = (arrays.weight[:, None] * within).sum(axis=0)
    need_first = (arrays.weight[:, None] * first).sum(axis=0)
    hubs.insert(4, "need_within_distance", need_within)
    hubs.insert(5, "need_within_distance_share", need_within / total)
    hubs.insert(6, "children_within_distance_count", (arrays.children[:, None] * within).sum(axis=0))
    hubs.insert(7, "need_covered", need_first)
    hubs.insert(8, "need_covered_share", need_first / total)
    hubs.index.name = "site_id"
    return gpd.GeoDataFrame(hubs, geometry="geometry", crs=CRS)


def _annotate_demand(
    demand: gpd.GeoDataFrame, arrays: _Arrays, plan: Plan, distance: float
) -> gpd.GeoDataFrame:
    open_ = np.isin(arrays.site_ids, plan.site_ids)
    d = arrays.distance[:, open_]
    open_ids = arrays.site_ids[open_]
    extra = pd.DataFrame(
        {
            "nearest_hub_id": open_ids[d.argmin(axis=1)],
            "nearest_hub_km": d.min(axis=1) / 1000.0,
            "covered": d.min(axis=1) <= distance,
        },
        index=pd.Index(arrays.demand_ids, name="demand_id"),
    )
    out = demand.sort_index(kind="stable").copy()
    out.index = out.index.astype(str)
    out.index.name = "demand_id"
    for col in extra.columns:
        out[col] = extra[col].to_numpy()
    return out.to_crs(CRS) if out.crs is not None and out.crs != CRS else out


# ----------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------
def _missing_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> list[str]:
    have = [str(c) for c in frame.columns]
    return [
        f"{what}: missing column {c!r}{close_matches(c, have)}"
        for c in columns
        if c not in frame.columns
    ]


def _first_present(frame: pd.DataFrame, names: Iterable[str]) -> str | None:
    return next((n for n in names if n in frame.columns), None)


def _first_pair(
    frame: pd.DataFrame, pairs: Iterable[tuple[str, str]]
) -> tuple[str, str] | None:
    return next((p for p in pairs if p[0] in frame.columns and p[1] in frame.columns), None)


def _check_unique(values: pd.Series, what: str) -> None:
    dup = values[values.duplicated()]
    if len(dup):
        raise ValidationError(f"{what}: duplicate values {preview(sorted(set(dup)))}")


def _with_code_column(frame: pd.DataFrame, code_column: str, what: str) -> pd.DataFrame:
    if code_column in frame.columns:
        return frame
    if frame.index.name == code_column:
        return frame.reset_index()
    raise ValidationError(
        f"{what}: no column or index named {code_column!r}"
        f"{close_matches(code_column, [str(c) for c in frame.columns])}"
    )


def _locate(
    frame: pd.DataFrame,
    columns: tuple[str, str] | None,
    what: str,
    problems: list[str],
) -> Any:
    """Return points in EPSG:27700 from coordinate columns or from the geometry."""
    if columns is not None and all(c in frame.columns for c in columns):
        x = pd.to_numeric(frame[columns[0]], errors="coerce").to_numpy(float)
        y = pd.to_numeric(frame[columns[1]], errors="coerce").to_numpy(float)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            problems.append(f"{what}: missing coordinates in {columns[0]!r} / {columns[1]!r}")
        return gpd.points_from_xy(x, y, crs=CRS)
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame.columns:
        if frame.crs is None:
            problems.append(f"{what}: geometry has no CRS; expected {CRS} (metres)")
            return None
        geom = frame.geometry.to_crs(CRS) if frame.crs != CRS else frame.geometry
        if geom.isna().any() or geom.is_empty.any():
            problems.append(f"{what}: {int((geom.isna() | geom.is_empty).sum())} empty geometries")
            return None
        pts = geom if (geom.geom_type == "Point").all() else geom.representative_point()
        return pts.values
    wanted = f"columns {columns[0]!r} and {columns[1]!r} or " if columns else ""
    problems.append(f"{what}: no location; expected {wanted}point or polygon geometry")
    return None


def _check_crs(frame: gpd.GeoDataFrame, what: str) -> None:
    if not isinstance(frame, gpd.GeoDataFrame):
        raise ValidationError(f"{what}: expected a GeoDataFrame with point geometry")
    if frame.crs is None or frame.crs != CRS:
        raise ValidationError(
            f"{what}: CRS is {frame.crs.to_string() if frame.crs else 'not set'}, expected {CRS} "
            "(British National Grid, metres): distances are straight-line metres"
        )


def _xy(frame: gpd.GeoDataFrame, what: str) -> np.ndarray:
    geom = frame.geometry
    if not (geom.geom_type == "Point").all():
        raise ValidationError(f"{what}: every geometry must be a point")
    return np.column_stack([geom.x.to_numpy(float), geom.y.to_numpy(float)])


def _ward_index(wards: pd.DataFrame) -> list[str]:
    if wards.index.name == "ward_code":
        codes = wards.index.astype(str)
    elif "ward_code" in wards.columns:
        codes = wards["ward_code"].astype(str)
    else:
        raise ValidationError("ward table: expected an index or column named 'ward_code'")
    _check_unique(pd.Series(list(codes)), "ward table ward_code")
    return list(codes)


def _ward_of_points(points: Any, wards: pd.DataFrame | None) -> np.ndarray:
    """Ward code of each point (first by ward_code when on a boundary); missing outside."""
    n = len(points)
    if wards is None or not isinstance(wards, gpd.GeoDataFrame):
        return np.full(n, None, dtype=object)
    codes = _ward_index(wards)
    polys = gpd.GeoDataFrame(
        {"ward_code": codes}, geometry=wards.geometry.values, crs=wards.crs
    ).to_crs(CRS)
    pts = gpd.GeoDataFrame({"_pos": np.arange(n)}, geometry=gpd.GeoSeries(points, crs=CRS).values,
                           crs=CRS)
    hits = gpd.sjoin(pts, polys, how="left", predicate="intersects")
    hits = hits.sort_values(["_pos", "ward_code"], kind="stable").drop_duplicates("_pos")
    return hits.set_index("_pos")["ward_code"].reindex(np.arange(n)).to_numpy(object)
