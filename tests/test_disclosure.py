"""Disclosure control: known answers for each rule, and properties over random tables.

The property tests attack the published cells with their own linear program (written
independently of :func:`geo_send.disclosure.recoverable_cells`): it knows every published
cell, every column total, ``denominator = numerator + rest`` for each proportion, that a
withheld count is at least 1 (0 when zeros are withheld too) and that a rest is at least
0, and bounds each withheld cell. A cell is recovered when only one whole number fits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from geo_send.config import DisclosureSettings, IndicatorSpec
from geo_send.disclosure import (
    FLAG_SUFFIX,
    MARKER,
    SUPPRESSED,
    build_relations,
    count_columns,
    derived_columns,
    display,
    suppress,
    suppress_counts,
    suppress_frame,
)

CODES = [f"E05900{i:03d}" for i in range(1, 30)]


def spec(name: str, num: str, den: str, kind: str = "proportion") -> IndicatorSpec:
    return IndicatorSpec(name=name, label=name, domain="d", kind=kind, numerator=num,
                         denominator=den, multiplier=100.0)


def reasons_of(columns: dict[str, list[float]], *, threshold: int = 5, show_zero: bool = True,
               indicators: tuple[IndicatorSpec, ...] = ()) -> pd.DataFrame:
    counts = pd.DataFrame(columns, index=CODES[: len(next(iter(columns.values())))], dtype=float)
    reasons, notes = suppress_counts(counts, build_relations(counts, indicators),
                                     threshold=threshold, show_zero=show_zero)
    assert notes == []
    return reasons


# -- which columns ------------------------------------------------------------------------


def test_counts_are_the_count_suffix_and_indicator_sources_but_not_counts_of_things():
    columns = ["ward_name", "pupils", "ehcp", "school_ehcp_count", "lsoa_count",
               "indicators_missing_count", "imd_score", "ehcp_pct"]
    assert count_columns(columns, [spec("ehcp_pct", "ehcp", "pupils")]) == [
        "pupils", "ehcp", "school_ehcp_count"]


def test_each_indicator_has_one_flag_even_when_its_name_prefixes_another():
    frame = pd.DataFrame({"e": [3.0, 40.0, 50.0], "f": [30.0, 40.0, 50.0],
                          "p_count": [100.0, 100.0, 100.0], "e_pct": [3.0, 40.0, 50.0],
                          "e_pct_lo": [1.0, 30.0, 40.0], "e_pct_adj": [30.0, 40.0, 50.0],
                          "e_pct_adj_lo": [20.0, 30.0, 40.0]}, index=CODES[:3])
    specs = [spec("e_pct", "e", "p_count"), spec("e_pct_adj", "f", "p_count")]
    out, _, _ = suppress_frame(frame, specs, DisclosureSettings())
    assert [c for c in out.columns if c.endswith(FLAG_SUFFIX)] == [
        "e_suppressed", "f_suppressed", "p_count_suppressed", "e_pct_suppressed",
        "e_pct_adj_suppressed"]
    assert out["e_pct_suppressed"].tolist() == [1, 1, 0]  # 3 and its partner 40
    assert out["e_pct_adj_suppressed"].tolist() == [0, 0, 0]
    assert out["e_pct_adj_lo"].notna().all() and out["e_pct_lo"].isna().tolist() == [
        True, True, False]


def test_derived_columns_are_the_indicator_and_its_prefixed_columns():
    columns = ["ehcp_pct", "ehcp_pct_lower", "ehcp_pct_upper", "ehcp_pctx", "imd_score"]
    got = derived_columns(columns, [spec("ehcp_pct", "e_count", "p_count")])
    assert got == {c: ("e_count", "p_count") for c in columns[:3]}


# -- primary suppression ------------------------------------------------------------------


@pytest.mark.parametrize(
    "show_zero, expected",
    [(True, ["", "primary", "primary", "", "", ""]),
     (False, ["primary", "primary", "primary", "", "", ""])],
    ids=["zeros-shown", "zeros-withheld"],
)
def test_primary_suppression_below_the_threshold(show_zero, expected):
    # 1 and 4 are below 5; 5 is not; 0 only when zeros are withheld. 1 + 4 = 5 > 2 (and,
    # with 0 withheld, 0 + 1 + 4 = 5 > 0), so no secondary cell is needed.
    got = reasons_of({"x_count": [0, 1, 4, 5, 50, 60]}, show_zero=show_zero)
    assert got["x_count"].tolist() == expected


def test_threshold_is_configurable_and_zero_switches_suppression_off():
    assert reasons_of({"x_count": [2, 9, 10, 40]}, threshold=10)["x_count"].tolist() == [
        "primary", "primary", "", ""]
    assert (reasons_of({"x_count": [1, 2, 3]}, threshold=0)["x_count"] == "").all()


# -- secondary suppression ----------------------------------------------------------------


def test_a_lone_withheld_cell_takes_the_next_smallest_with_it():
    # total 3 + 9 + 12 + 9 + 40 is known: the 3 alone could be recovered; the next smallest
    # non-zero value is 9, in two wards: the smaller code wins.
    got = reasons_of({"x_count": [3, 12, 9, 9, 40, 0]})
    assert got["x_count"].tolist() == ["primary", "", "secondary", "", "", ""]


def test_two_withheld_cells_that_must_both_be_one_take_a_third():
    # 1 + 1 = 2 and each withheld cell is at least 1: both are pinned to 1.
    got = reasons_of({"x_count": [1, 1, 30, 20, 40]})
    assert got["x_count"].tolist() == ["primary", "primary", "", "secondary", ""]


def test_two_withheld_cells_with_room_between_them_are_enough():
    got = reasons_of({"x_count": [2, 3, 30, 20, 40]})
    assert got["x_count"].tolist() == ["primary", "primary", "", "", ""]


def test_a_small_rest_of_a_proportion_withholds_the_numerator():
    # 48 of 50 pupils: the 2 without are revealed by 50 - 48, so 48 is withheld, and the
    # column total then needs a second cell (the next smallest, 10).
    got = reasons_of({"e_count": [48, 10, 20, 30], "p_count": [50, 100, 200, 300]},
                     indicators=(spec("e_pct", "e_count", "p_count"),))
    assert got["e_count"].tolist() == ["secondary", "secondary", "", ""]
    assert (got["p_count"] == "").all()


def test_sen_partition_protects_the_pupils_with_no_sen():
    # 20 pupils = 10 SEN support + 7 EHCP + 3 with no SEN: the 3 is revealed unless a part
    # is withheld; 7 (the smaller part) goes, and then the EHCP column needs a partner.
    counts = {"s_pupils_count": [20, 300, 400, 500], "s_sen_support_count": [10, 40, 50, 60],
              "s_ehcp_count": [7, 9, 12, 15]}
    got = reasons_of(counts)
    assert got["s_ehcp_count"].tolist() == ["secondary", "secondary", "", ""]
    assert (got["s_sen_support_count"] == "").all() and (got["s_pupils_count"] == "").all()


def test_missing_values_stay_missing_and_never_count_as_protection():
    got = reasons_of({"x_count": [3, np.nan, 20, 30]})
    assert got["x_count"].tolist() == ["primary", "", "secondary", ""]


def test_a_cell_that_cannot_be_protected_is_reported():
    counts = pd.DataFrame({"x_count": [3.0, np.nan]}, index=CODES[:2])
    reasons, notes = suppress_counts(counts, build_relations(counts), threshold=5)
    assert reasons["x_count"].tolist() == ["primary", ""]
    assert notes == ["could not protect total of x_count: no published cell left to withhold"]


# -- the frame written ----------------------------------------------------------------------


def frame_with_rates() -> pd.DataFrame:
    return pd.DataFrame(
        {"ward_name": ["A", "B", "C", "D"],
         "need_index": [1.5, 0.2, -0.3, -1.4],
         "e_pct": [3 / 120 * 100, 10.0, 12 / 30 * 100, 20 / 400 * 100],
         "e_pct_lower": [0.5, 6.0, 20.0, 3.0],
         "e": [3.0, 20.0, 12.0, 20.0],
         "p_count": [120.0, 200.0, 30.0, 400.0]},
        index=pd.Index(CODES[:4], name="ward_code"),
    )


def test_suppressed_frame_empties_counts_and_rates_and_flags_them():
    frame = frame_with_rates()
    before = frame.copy()
    out, reasons, notes = suppress_frame(frame, [spec("e_pct", "e", "p_count")],
                                         DisclosureSettings())
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is not touched
    assert notes == []
    # 3 is primary; the next smallest non-zero count of 'e' is 12 (ward C)
    assert out["e"].tolist() == [pd.NA, 20, pd.NA, 20]
    assert str(out["e"].dtype) == "Int64" and str(out["p_count"].dtype) == "Int64"
    for column in ("e_pct", "e_pct_lower"):
        assert out[column].isna().tolist() == [True, False, True, False]
    assert out["e_suppressed"].tolist() == [1, 0, 1, 0]
    assert out["e_pct_suppressed"].tolist() == [1, 0, 1, 0]
    assert out["p_count_suppressed"].tolist() == [0, 0, 0, 0]
    assert out["need_index"].tolist() == before["need_index"].tolist()  # the index is untouched
    assert list(out.columns[: len(frame.columns)]) == list(frame.columns)
    # one flag per count column and one per indicator (covering e_pct_lower too)
    assert list(out.columns[len(frame.columns):]) == [
        "e" + FLAG_SUFFIX, "p_count" + FLAG_SUFFIX, "e_pct" + FLAG_SUFFIX]
    assert reasons.loc[CODES[0], "e"] == "primary" and reasons.loc[CODES[2], "e"] == "secondary"
    assert reasons.loc[CODES[0], "e_pct"] == "derived"


def test_internal_copy_keeps_true_values_and_the_same_flags():
    frame = frame_with_rates()
    out, _, _ = suppress_frame(frame, [spec("e_pct", "e", "p_count")], DisclosureSettings(),
                               apply=False)
    assert out["e"].tolist() == [3, 20, 12, 20]
    assert out["e_suppressed"].tolist() == [1, 0, 1, 0]


def test_display_uses_the_dfe_marker():
    assert display(3, True) == MARKER == "c"
    assert display(1234, False) == "1,234"
    assert display(float("nan"), False) == ""


# -- properties ---------------------------------------------------------------------------


@st.composite
def tables(draw):
    """Small areas x (numerator, denominator) count tables with many small values."""
    n = draw(st.integers(3, 7))
    small = st.integers(0, 6)
    anything = st.one_of(small, st.integers(0, 12), st.integers(0, 60))
    den = draw(st.lists(anything, min_size=n, max_size=n))
    num = [
        draw(st.one_of(st.integers(0, d), st.integers(max(0, d - 3), d), st.integers(0, min(d, 6))))
        for d in den
    ]
    other = draw(st.lists(anything, min_size=n, max_size=n))
    frame = pd.DataFrame({"num_count": num, "den_count": den, "other_count": other},
                         index=CODES[:n], dtype=float)
    for column in frame.columns:
        if draw(st.booleans()) and n > 3:
            frame.iloc[draw(st.integers(0, n - 1)), frame.columns.get_loc(column)] = np.nan
    frame.loc[frame["num_count"].isna() | frame["den_count"].isna(), "num_count"] = np.nan
    threshold = draw(st.sampled_from([3, 5, 10]))
    return frame, threshold, draw(st.booleans())


PAIR = (spec("num_pct", "num_count", "den_count"),)


class Infeasible(Exception):
    """The attacker's assumptions do not fit the published table."""


def attack(frame: pd.DataFrame, withheld: pd.DataFrame, lower: float,
           pairs: tuple[tuple[str, str], ...] = (("num_count", "den_count"),)
           ) -> list[tuple[str, str]]:
    """Cells (and rests of proportions) a linear-programming attacker pins to one value.

    ``frame`` holds the true counts (the attacker knows the published ones and every
    column total), ``withheld`` which cells were withheld, ``pairs`` the (numerator,
    denominator) columns of each proportion.
    """
    names = [(code, col) for col in frame.columns for code in frame.index
             if not np.isnan(frame.loc[code, col])]
    rests = [(code, num, den) for num, den in pairs for code in frame.index
             if not np.isnan(frame.loc[code, num]) and not np.isnan(frame.loc[code, den])]
    size = len(names) + len(rests)
    where = {name: k for k, name in enumerate(names)}
    bounds = []
    for code, col in names:
        value = frame.loc[code, col]
        bounds.append((lower, None) if withheld.loc[code, col] else (value, value))
    bounds += [(0.0, None)] * len(rests)
    eq, rhs = [], []
    for col in frame.columns:
        row = np.zeros(size)
        for code in frame.index:
            if (code, col) in where:
                row[where[code, col]] = 1.0
        eq.append(row)
        rhs.append(np.nansum(frame[col].to_numpy(dtype=float)))
    for r, (code, num, den) in enumerate(rests):
        row = np.zeros(size)
        row[where[code, den]], row[where[code, num]] = 1.0, -1.0
        row[len(names) + r] = -1.0
        eq.append(row)
        rhs.append(0.0)
    targets = [(k, name) for k, name in enumerate(names) if withheld.loc[name[0], name[1]]]
    targets += [(len(names) + r, (code, "rest", num, den))
                for r, (code, num, den) in enumerate(rests)]
    pinned = []
    for k, name in targets:
        c = np.zeros(size)
        c[k] = 1.0
        low = linprog(c, A_eq=eq, b_eq=rhs, bounds=bounds, method="highs")
        high = linprog(-c, A_eq=eq, b_eq=rhs, bounds=bounds, method="highs")
        if low.status == 2:
            raise Infeasible(name)
        assert low.status == 0, low.message
        if high.status == 3:
            continue
        if np.floor(-high.fun + 1e-7) <= np.ceil(low.fun - 1e-7):
            pinned.append(name)
    return pinned


def disclosed(frame: pd.DataFrame, withheld: pd.DataFrame, threshold: int, show_zero: bool,
              pairs: tuple[tuple[str, str], ...] = (("num_count", "den_count"),)) -> list:
    """Return what the attacker recovers that it should not: withheld cells, small rests."""
    try:
        pinned = attack(frame, withheld, 1.0 if show_zero else 0.0, pairs)
    except Infeasible:
        # a zero was withheld as a last resort (no non-zero cell left): a reader who finds
        # "withheld >= 1" impossible falls back to ">= 0"
        pinned = attack(frame, withheld, 0.0, pairs)
    return [p for p in pinned if len(p) == 2 or sensitive(
        frame.loc[p[0], p[3]] - frame.loc[p[0], p[2]], threshold, show_zero)]


def sensitive(value: float, threshold: int, show_zero: bool) -> bool:
    return (0 < value < threshold) or (value == 0 and not show_zero)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_no_published_count_is_below_the_threshold(case):
    frame, threshold, show_zero = case
    out, reasons, _ = suppress_frame(frame, PAIR, DisclosureSettings(threshold, show_zero))
    for column in frame.columns:
        shown = out[column].dropna().astype(float)
        assert not any(sensitive(v, threshold, show_zero) for v in shown), column
        assert (out[column].isna() == (frame[column].isna() | (reasons[column] != ""))).all()



@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_withheld_cells_cannot_be_recovered_from_published_totals(case):
    frame, threshold, show_zero = case
    _, reasons, notes = suppress_frame(frame, PAIR, DisclosureSettings(threshold, show_zero))
    withheld = reasons[list(frame.columns)] != ""
    found = disclosed(frame, withheld, threshold, show_zero)
    assert not found or notes, (found, frame, reasons)


# -- long tables (trends, conversion, representation) ---------------------------------------


def _long_table() -> pd.DataFrame:
    return pd.DataFrame({
        "ward_code": ["A", "B", "C", "D", "all"],
        "count": [3, 12, 40, 0, 55],
        "pupils": [100, 110, 120, 90, 420],
        "pct": [3.0, 10.9, 33.3, 0.0, 13.1],
    })


def test_long_table_small_counts_and_their_rates_are_suppressed_and_the_next_smallest_too():
    table = _long_table()
    out = suppress(table, ["count", "pupils"], threshold=5, derived=["pct"], lines=[[]])
    # A (3) is primary; the total row would give it back (55 - 12 - 40 - 0), so the smallest
    # other non-zero count, B (12), is suppressed as well; zero is shown
    assert out["count"].tolist() == [SUPPRESSED, SUPPRESSED, 40, 0, 55]
    assert out["pct"].tolist() == [SUPPRESSED, SUPPRESSED, 33.3, 0.0, 13.1]
    assert out["pupils"].tolist() == [100, 110, 120, 90, 420]
    pd.testing.assert_frame_equal(table, _long_table())


def test_long_table_two_hidden_cells_that_must_both_be_one_are_protected():
    # 1 + 1 hidden, total 62 shown: 62 - 30 - 30 = 2 forces both to be 1 (zeros are shown)
    table = pd.DataFrame({"ward": ["A", "B", "C", "D", "all"], "count": [1, 1, 30, 30, 62]})
    total = table["ward"] == "all"
    out = suppress(table, ["count"], threshold=5, lines=[[]], totals=total)
    assert out["count"].tolist() == [SUPPRESSED, SUPPRESSED, SUPPRESSED, 30, 62]
    # 1 + 3 = 4 could be 1 + 3, 2 + 2 or 3 + 1: nothing more to hide
    table["count"] = [1, 3, 30, 30, 64]
    out = suppress(table, ["count"], threshold=5, lines=[[]], totals=total)
    assert out["count"].tolist() == [SUPPRESSED, SUPPRESSED, 30, 30, 64]
    # a hidden total leaves the line's sum unknown
    table["count"] = [1, 1, 0, 0, 2]
    out = suppress(table, ["count"], threshold=5, lines=[[]], totals=total)
    assert out["count"].tolist() == [SUPPRESSED, SUPPRESSED, 0, 0, SUPPRESSED]


def test_long_table_zero_is_suppressed_when_configured():
    out = suppress(_long_table(), ["count"], threshold=5, show_zero=False)
    assert out["count"].tolist() == [SUPPRESSED, 12, 40, SUPPRESSED, 55]


def test_long_table_lines_are_separate_groups():
    table = pd.DataFrame({"measure": ["x", "x", "x", "y", "y", "y"],
                          "count": [2, 30, 32, 20, 30, 50]})
    out = suppress(table, ["count"], threshold=5, lines=[["measure"]])
    assert out["count"].tolist() == [SUPPRESSED, SUPPRESSED, 32, 20, 30, 50]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 12), min_size=3, max_size=3), min_size=2, max_size=6))
def test_long_table_no_small_count_is_published_or_recoverable_from_a_line(cells):
    # a two-way table (wards x groups) with both margins, like the representation table
    grid = np.array(cells)
    rows = []
    for i, line in enumerate(grid):
        rows += [{"ward": f"W{i}", "group": f"G{j}", "count": int(v)} for j, v in enumerate(line)]
    rows += [{"ward": "all", "group": f"G{j}", "count": int(v)}
             for j, v in enumerate(grid.sum(axis=0))]
    table = pd.DataFrame(rows)
    out = suppress(table, ["count"], threshold=5, lines=[["ward"], ["group"]],
                   totals=table["ward"] == "all")
    shown = out.loc[out["count"] != SUPPRESSED, "count"].astype(int)
    assert not ((shown > 0) & (shown < 5)).any()
    hidden = out["count"] == SUPPRESSED
    for key in ("ward", "group"):
        for _, line in table.assign(hidden=hidden).groupby(key):
            cells = line.loc[line["hidden"]]
            if len(line) < 2 or len(cells) == len(line):
                continue  # nothing to subtract from, or nothing left to hide
            assert len(cells) != 1
            if len(cells) > 1 and not (cells["ward"] == "all").any():
                assert cells["count"].sum() > len(cells)  # not all forced to be 1
