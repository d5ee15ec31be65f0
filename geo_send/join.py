"""Joins and aggregations: LSOAs to wards, pupils and schools to areas, tables to boundaries.

Joins are loud: codes without a partner are reported, never dropped or filled silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import JoinError, ValidationError, preview

__all__ = [
    "weighted_mean",
    "join_tables",
    "locate_points",
    "SEN_STATUS",
    "normalise_sen_status",
    "sen_status_codes",
    "status_codes",
    "STATUS_ORDER",
    "PointLocator",
    "count_pupils",
]

log = logging.getLogger(__name__)


def weighted_mean(
    values: pd.Series, weights: pd.Series, groups: pd.Series
) -> pd.Series:
    """Weighted mean of ``values`` within each group, skipping missing values.

    Parameters
    ----------
    values, weights, groups : Series
        Aligned on the same index (e.g. LSOA codes): the value, its weight (population)
        and the group it belongs to (ward code).

    Returns
    -------
    Series
        Indexed by group: ``sum(w * v) / sum(w)`` over members with a value; missing
        (NaN) for a group whose members all lack a value or weight.

    Notes
    -----
    This is how the English Indices of Deprivation summarise LSOA scores for larger
    areas: a population-weighted average of the LSOA scores (MHCLG, IoD 2025 Technical
    Report, "Summary measures"). A missing value is excluded from both numerator and
    denominator, so it neither drags the mean towards zero nor inflates it.
    """
    frame = pd.DataFrame({"v": values, "w": weights, "g": groups})
    frame = frame.dropna(subset=["v", "w"])
    frame = frame.loc[frame["w"] > 0]
    sums = (frame["v"] * frame["w"]).groupby(frame["g"]).sum()
    totals = frame["w"].groupby(frame["g"]).sum()
    out = sums / totals
    return out.reindex(pd.Index(pd.unique(groups.dropna()), name=groups.name)).sort_index()


def join_tables(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    right_name: str,
    allow_missing: bool = True,
) -> pd.DataFrame:
    """Left-join ``right`` to ``left`` on their shared code index, loudly.

    Codes in ``right`` that are not in ``left`` are an error; codes of ``left`` that
    ``right`` lacks stay missing (NaN) and are logged, unless ``allow_missing`` is False.
    Columns present in both frames are an error (no silent suffixes).

    Raises
    ------
    JoinError
        On unknown codes, missing codes (when not allowed) or clashing columns.
    """
    problems = []
    unknown = right.index.difference(left.index)
    if len(unknown):
        problems.append(
            f"{right_name}: {len(unknown)} code(s) not among the {len(left)} areas: "
            f"{preview(sorted(unknown))}"
        )
    absent = left.index.difference(right.index)
    if len(absent) and not allow_missing:
        problems.append(f"{right_name}: no row for {preview(sorted(absent))}")
    clash = [c for c in right.columns if c in left.columns]
    if clash:
        problems.append(f"{right_name}: column(s) already present: {', '.join(clash)}")
    if problems:
        raise JoinError(problems)
    if len(absent):
        log.warning("%s: no row for %s; their values stay missing", right_name, preview(absent))
    return left.join(right, how="left")


def locate_points(
    points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame, *, code_name: str, snap_m: float = 0.0
) -> tuple[pd.Series, pd.Index]:
    """Code of the area containing each point.

    Parameters
    ----------
    points, areas : GeoDataFrame
        In the same projected CRS (metres).
    code_name : str
        Name of the area code index of ``areas``.
    snap_m : float
        A point outside every area but within this distance of one is given to the
        nearest area (generalised boundaries clip some buildings at the edge).

    Returns
    -------
    codes : Series
        Area code per point, missing where no area contains it (or is near enough).
    snapped : Index
        The points that were given to a nearby area rather than a containing one.

    Notes
    -----
    A point on a shared boundary is given to the area with the smallest code, so the
    result never depends on the order of the rows.
    """
    if points.crs != areas.crs:
        raise ValidationError(
            f"points are in {points.crs} but areas are in {areas.crs}; reproject one of them"
        )
    geometry = areas[[areas.geometry.name]].reset_index()
    hits = gpd.sjoin(points[[points.geometry.name]], geometry, how="left", predicate="intersects")
    hits = hits.reset_index(names="_point").sort_values(["_point", code_name], kind="stable")
    codes = hits.drop_duplicates("_point").set_index("_point")[code_name].reindex(points.index)
    outside = codes.index[codes.isna()]
    snapped = pd.Index([], dtype=points.index.dtype)
    if snap_m > 0 and len(outside):
        near = gpd.sjoin_nearest(
            points.loc[outside, [points.geometry.name]], geometry, how="inner",
            max_distance=snap_m, distance_col="_distance",
        )
        near = near.reset_index(names="_point").sort_values(
            ["_point", "_distance", code_name], kind="stable"
        ).drop_duplicates("_point").set_index("_point")[code_name]
        codes.loc[near.index] = near
        snapped = near.index
    return codes.rename(code_name), snapped


#: Canonical SEN status values and the spellings accepted for each.
SEN_STATUS = {
    "ehcp": ("ehcp", "ehc plan", "e", "education, health and care plan", "statement", "s"),
    "sen_support": ("sen support", "sen_support", "k", "support"),
    "none": ("none", "n", "no sen", "no", ""),
}
#: Order of the status codes returned by :func:`sen_status_codes`.
STATUS_ORDER = ("none", "sen_support", "ehcp")
_SPELLINGS = {spelling: canon for canon, spellings in SEN_STATUS.items() for spelling in spellings}


def status_codes(status: pd.Series) -> np.ndarray:
    """SEN status as small integers: 0 none, 1 SEN support, 2 EHCP, -1 not a status.

    Only the distinct spellings are normalised (a categorical column has a handful), so
    the cost per row is one array lookup; :data:`STATUS_ORDER` gives the order.
    """
    cat = status if isinstance(status.dtype, pd.CategoricalDtype) else status.astype("category")
    spellings = pd.Index(cat.cat.categories.astype(str))
    canon = spellings.str.strip().str.lower().map(_SPELLINGS)
    # -1 for an unknown spelling; the appended -1 is what a missing value (code -1) takes
    to_code = np.append(pd.Index(STATUS_ORDER).get_indexer(canon), -1)
    return to_code[cat.cat.codes.to_numpy()].astype(np.int8)


def sen_status_codes(status: pd.Series, *, source: str, column: str) -> np.ndarray:
    """SEN status as small integers (:func:`status_codes`), refusing unknown values.

    Raises
    ------
    ValidationError
        Listing the rows and values that match none of the accepted spellings.
    """
    out = status_codes(status)
    bad = out < 0
    if bad.any():
        rows = [f"row {r}: {status.loc[r]!r}" for r in status.index[bad][:5]]
        raise ValidationError(
            f"{source}: column {column!r} has {int(bad.sum())} value(s) that are not an SEN "
            f"status ({'; '.join(rows)}); expected one of EHCP / SEN support / none "
            "(or the school census codes E / K / N)"
        )
    return out


def normalise_sen_status(status: pd.Series, *, source: str, column: str) -> pd.Series:
    """Map free-text SEN status to ``'ehcp'``, ``'sen_support'`` or ``'none'``.

    Raises
    ------
    ValidationError
        Listing the rows and values that match none of the accepted spellings.
    """
    codes = sen_status_codes(status, source=source, column=column)
    return pd.Series(np.asarray(STATUS_ORDER, dtype=object)[codes], index=status.index,
                     name=status.name)


class PointLocator:
    """Vectorised point-in-polygon for many points against fixed areas.

    The areas are prepared once (bounding boxes, prepared GEOS geometries, an STR-tree
    for snapping); :meth:`locate` then places arrays of coordinates without building a
    point geometry per pupil.

    Parameters
    ----------
    areas : GeoDataFrame
        Polygons in the points' projected CRS, indexed by area code.

    Notes
    -----
    The points are sorted by easting once; for each area, a binary search gives the
    points in the vertical strip of its bounding box, a comparison keeps those inside the
    box, and ``shapely.intersects_xy`` on the prepared polygon confirms them. Areas are
    visited in code order and a point keeps its first area, so, as in
    :func:`locate_points`, a point on a shared boundary goes to the area with the
    smallest code whatever the order of the rows. Building a shapely point per pupil
    and querying an STR-tree costs about four times as much.
    """

    def __init__(self, areas: gpd.GeoDataFrame) -> None:
        self.codes = pd.Index(areas.index)
        self._order = np.argsort(self.codes.to_numpy(dtype=str), kind="stable")
        # a copy of each geometry: preparing caches an index inside it, and the caller's
        # frame is left as it was
        self._geoms = shapely.from_wkb(shapely.to_wkb(areas.geometry.to_numpy()[self._order]))
        shapely.prepare(self._geoms)
        self._bounds = shapely.bounds(self._geoms)
        self._tree = shapely.STRtree(self._geoms)

    def locate(
        self, x: np.ndarray, y: np.ndarray, *, snap_m: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Place points in areas.

        Parameters
        ----------
        x, y : array of float
            Coordinates in the areas' CRS.
        snap_m : float
            A point outside every area but within this distance of one goes to the
            nearest (ties: smallest code); generalised boundaries clip coasts and edges.

        Returns
        -------
        positions : array of int
            Position in ``areas`` of each point's area; -1 outside every area.
        snapped : array of bool
            The points given to a nearby area rather than a containing one.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        n_areas = len(self._geoms)
        by_x = np.argsort(x, kind="stable")
        xs, ys = x[by_x], y[by_x]
        first = np.searchsorted(xs, self._bounds[:, 0], side="left")
        last = np.searchsorted(xs, self._bounds[:, 2], side="right")
        best = np.full(len(x), n_areas, dtype=np.int64)  # in x order
        for area in np.flatnonzero(last > first):
            lo, hi = first[area], last[area]
            strip = ys[lo:hi]
            _, ymin, _, ymax = self._bounds[area]
            candidates = lo + np.flatnonzero((strip >= ymin) & (strip <= ymax)
                                             & (best[lo:hi] == n_areas))
            if len(candidates):
                inside = shapely.intersects_xy(self._geoms[area], xs[candidates], ys[candidates])
                best[candidates[inside]] = area
        best_rows = np.empty_like(best)
        best_rows[by_x] = best
        snapped = np.zeros(len(x), dtype=bool)
        outside = np.flatnonzero(best_rows == n_areas)
        if snap_m > 0 and len(outside):
            near_point, near_area = self._tree.query_nearest(
                shapely.points(x[outside], y[outside]), max_distance=snap_m, all_matches=True
            )
            np.minimum.at(best_rows, outside[near_point], near_area)
            snapped[outside[near_point]] = True
        found = best_rows < n_areas
        out = np.full(len(x), -1, dtype=np.int64)
        out[found] = self._order[best_rows[found]]
        return out, snapped

    def __repr__(self) -> str:
        return f"PointLocator({len(self.codes):,} areas)"


def count_pupils(
    located: Iterable[pd.DataFrame], *, code_name: str, codes: Sequence[str], prefix: str
) -> pd.DataFrame:
    """Sum chunks of located pupils (``code_name``, ``status``) into counts per area.

    Parameters
    ----------
    located : iterable of DataFrame
        Chunks with the area code (``code_name``) and the status (``'none'``,
        ``'sen_support'``, ``'ehcp'``) of each pupil; categorical columns whose categories
        are ``codes`` and :data:`STATUS_ORDER` are counted without looking at any string.
    code_name : str
    codes : sequence of str
        Every area, in output order.
    prefix : str
        Prefix of the output columns.

    Returns
    -------
    DataFrame
        Indexed by ``code_name`` over ``codes`` (areas with no pupil get 0, a true zero
        because every pupil was located), with ``{prefix}_pupils_count``,
        ``{prefix}_sen_support_count`` and ``{prefix}_ehcp_count``.

    Raises
    ------
    JoinError
        If a chunk names an area or a status that is not known.
    """
    index = pd.Index(list(codes), name=code_name)
    n = len(index)
    total = np.zeros(n * len(STATUS_ORDER), dtype=np.int64)
    for chunk in located:
        area = _positions(chunk[code_name], index)
        status = _positions(chunk["status"], pd.Index(STATUS_ORDER))
        unknown = (area < 0) | (status < 0)
        if unknown.any():
            first = chunk.loc[unknown, [code_name, "status"]].head(5)
            raise JoinError(
                f"{int(unknown.sum())} located pupil(s) name an unknown area or status: "
                f"{preview(f'{c} / {s}' for c, s in first.itertuples(index=False))}"
            )
        total += np.bincount(area * len(STATUS_ORDER) + status, minlength=total.size)
    by_status = total.reshape(n, len(STATUS_ORDER))
    columns = [f"{prefix}_pupils_count", f"{prefix}_sen_support_count", f"{prefix}_ehcp_count"]
    return pd.DataFrame(
        np.column_stack([by_status.sum(axis=1), by_status[:, 1], by_status[:, 2]]),
        index=index, columns=columns,
    )


def _positions(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent), cheaply for categoricals."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        # the appended -1 is what a missing value (code -1) takes
        where = np.append(index.get_indexer(values.cat.categories), -1).astype(np.int64)
        return where[values.cat.codes.to_numpy()]
    return np.asarray(index.get_indexer(values), dtype=np.int64)
