"""Joins and aggregations: LSOAs to wards, pupils and schools to areas, tables to boundaries.

Joins are loud: codes without a partner are reported, never dropped or filled silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from ._errors import JoinError, ValidationError, preview

__all__ = [
    "weighted_mean",
    "join_tables",
    "locate_points",
    "SEN_STATUS",
    "normalise_sen_status",
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


def normalise_sen_status(status: pd.Series, *, source: str, column: str) -> pd.Series:
    """Map free-text SEN status to ``'ehcp'``, ``'sen_support'`` or ``'none'``.

    Raises
    ------
    ValidationError
        Listing the rows and values that match none of the accepted spellings.
    """
    lookup = {spelling: canon for canon, spellings in SEN_STATUS.items() for spelling in spellings}
    cleaned = status.astype(str).str.strip().str.lower()
    out = cleaned.map(lookup)
    bad = out.isna()
    if bad.any():
        rows = [f"row {r}: {status.loc[r]!r}" for r in status.index[bad][:5]]
        raise ValidationError(
            f"{source}: column {column!r} has {int(bad.sum())} value(s) that are not an SEN "
            f"status ({'; '.join(rows)}); expected one of EHCP / SEN support / none "
            "(or the school census codes E / K / N)"
        )
    return out


def count_pupils(
    located: Iterable[pd.DataFrame], *, code_name: str, codes: Sequence[str], prefix: str
) -> pd.DataFrame:
    """Sum chunks of located pupils (``code_name``, ``status``) into counts per area.

    Returns
    -------
    DataFrame
        Indexed by ``code_name`` over ``codes`` (areas with no pupil get 0, a true zero
        because every pupil was located), with ``{prefix}_pupils_count``,
        ``{prefix}_sen_support_count`` and ``{prefix}_ehcp_count``.
    """
    total = np.zeros((len(codes), 3), dtype=np.int64)
    index = pd.Index(list(codes), name=code_name)
    for chunk in located:
        pos = index.get_indexer(chunk[code_name])
        status = chunk["status"].to_numpy()
        np.add.at(total[:, 0], pos, 1)
        np.add.at(total[:, 1], pos[status == "sen_support"], 1)
        np.add.at(total[:, 2], pos[status == "ehcp"], 1)
    columns = [f"{prefix}_pupils_count", f"{prefix}_sen_support_count", f"{prefix}_ehcp_count"]
    return pd.DataFrame(total, index=index, columns=columns)
