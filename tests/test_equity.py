"""Conversion and representation: known answers for Wilson intervals, funnel limits and ratios."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from geo_send.equity import (
    Z95,
    Z998,
    compute_conversion,
    compute_representation,
    funnel_limits,
    plot_funnel,
    plot_representation,
    representation_ratio,
)
from geo_send.indicators import wilson_interval
from geo_send.trends import TOTAL


def test_normal_quantiles():
    assert_allclose([Z95, Z998], [1.959964, 3.090232], atol=1e-6)


def test_wilson_interval_of_ten_in_a_hundred():
    # p = 0.1, z^2 = 3.841459: centre = (0.1 + z^2/200) / (1 + z^2/100) = 0.114795;
    # half = z * sqrt(0.1 * 0.9 / 100 + z^2 / 40000) / (1 + z^2/100) = 0.059567
    low, high = wilson_interval(10, 100)
    assert_allclose([low, high], [0.055229, 0.174366], atol=1e-6)
    low, high = wilson_interval(np.array([0, 5]), np.array([20, 0]))
    assert low[0] == 0.0 and np.isnan(low[1]) and np.isnan(high[1])


def test_funnel_limits_known_answer():
    # p0 = 0.1, n = 100: se0 = sqrt(0.1 * 0.9 / 100) = 0.03
    lo95, hi95 = funnel_limits(0.1, 100, z=Z95)
    lo998, hi998 = funnel_limits(0.1, 100, z=Z998)
    assert_allclose([lo95, hi95], [0.1 - 1.959964 * 0.03, 0.1 + 1.959964 * 0.03], atol=1e-7)
    assert_allclose([lo998, hi998], [0.1 - 3.090232 * 0.03, 0.1 + 3.090232 * 0.03], atol=1e-7)
    # The same numbers from PHEindicatormethods' closed-form Fingertips limits
    # (sigma_adjustment(0.975 / 0.999, 100, 0.1, side) / 100), an independent derivation:
    assert_allclose([lo95, hi95, lo998, hi998],
                    [0.0412010805, 0.1587989195, 0.0072930308, 0.1927069692], atol=1e-9)
    # clipped at 0 for small denominators
    assert funnel_limits(0.1, 20, z=Z95)[0] == 0.0


@given(p0=st.floats(0.01, 0.9), n=st.integers(5, 100_000))
def test_a_funnel_limit_is_where_the_wilson_interval_reaches_the_target(p0, n):
    # The Fingertips definition: the observed proportion at the limit has a Wilson bound = p0.
    lo, hi = funnel_limits(p0, n, z=Z95)
    if hi < 1:
        assert wilson_interval(hi * n, n)[0] == pytest.approx(p0, rel=1e-6)
    if lo > 0:
        assert wilson_interval(lo * n, n)[1] == pytest.approx(p0, rel=1e-6)


def _conversion_table() -> pd.DataFrame:
    # new EHCPs in 2020 have no 2019 base year, and 2022's SEN support no 2023 follow-up
    return pd.DataFrame({
        "ward_code": ["A"] * 3 + ["B"] * 3,
        "year": [2020, 2021, 2022] * 2,
        "sen_support": [100, 120, 130, 200, 210, 220],
        "new_ehcp": [0, 4, 6, 1, 8, 9],
    })


def test_conversion_pairs_year_t_with_year_t_plus_one():
    table = _conversion_table()
    before = table.copy()
    out = compute_conversion(table, year_column="year", sen_support="sen_support",
                             new_ehcp="new_ehcp", names={"A": "Ward A"}, area_name="Town")
    pd.testing.assert_frame_equal(table, before)
    rows = out.set_index("group")
    # A: (4 + 6) / (100 + 120) = 10/220; B: (8 + 9) / (200 + 210) = 17/410; all: 27/630
    assert rows.loc["A", ["sen_support_count", "new_ehcp_count"]].tolist() == [220, 10]
    assert_allclose(rows["conversion_pct"], [100 * 10 / 220, 100 * 17 / 410, 100 * 27 / 630])
    assert rows.loc["A", "group_name"] == "Ward A" and rows.loc[TOTAL, "group_name"] == "Town"
    assert (out["cohort_years"] == "2020-2021").all()
    p0 = 27 / 630
    se = math.sqrt(p0 * (1 - p0) / 220)
    assert_allclose(rows.loc["A", ["funnel_95_lower_pct", "funnel_95_upper_pct"]].to_numpy(float),
                    [100 * (p0 - Z95 * se), 100 * (p0 + Z95 * se)])
    assert_allclose([100 * (p0 - Z95 * se), 100 * (p0 + Z95 * se)], [1.6094, 6.9620], atol=1e-4)
    assert rows.loc["A", "vs_la"] == "similar" and pd.isna(rows.loc[TOTAL, "vs_la"])
    low, high = wilson_interval(10, 220)
    assert_allclose(rows.loc["A", ["conversion_pct_lower", "conversion_pct_upper"]].to_numpy(float),
                    [100 * low, 100 * high])


def test_conversion_by_a_breakdown_and_the_funnel_flags():
    rows = []
    for ward, rate in (("A", 0.12), ("B", 0.032), ("C", 0.03), ("D", 0.03)):
        for gender in ("F", "M"):
            rows += [{"ward_code": ward, "gender": gender, "year": 2021, "sen": 500, "new": 0},
                     {"ward_code": ward, "gender": gender, "year": 2022, "sen": 0,
                      "new": int(500 * rate)}]
    out = compute_conversion(pd.DataFrame(rows), year_column="year", sen_support="sen",
                             new_ehcp="new", breakdowns=["gender"])
    flags = out.set_index(["breakdown", "group"])["vs_la"]
    # p0 = (120 + 32 + 30 + 30) / 4,000 = 5.3%; at n = 1,000, se0 = sqrt(.053 * .947 / 1000)
    # = 0.708%: 95% limits 3.91% and 6.69%, 99.8% limits 3.11% and 7.49%
    assert flags[("ward", "A")] == "higher (99.8%)"   # 12%
    assert flags[("ward", "B")] == "lower (95%)"      # 3.2%
    assert flags[("ward", "C")] == "lower (99.8%)"    # 3.0%
    assert flags[("gender", "F")] == "similar"
    assert out.loc[out["breakdown"] == "gender", "sen_support_count"].tolist() == [2000, 2000, 4000]


def test_conversion_with_a_missing_count_stays_missing():
    table = _conversion_table()
    table.loc[1, "new_ehcp"] = np.nan
    out = compute_conversion(table, year_column="year", sen_support="sen_support",
                             new_ehcp="new_ehcp").set_index("group")
    assert np.isnan(out.loc["A", "new_ehcp_count"]) and np.isnan(out.loc[TOTAL, "conversion_pct"])


def test_representation_ratio_known_answer():
    # a = 30 of A = 100 plans; n = 200 of N = 1,000 pupils: R = 0.30 / 0.20 = 1.5.
    # Against the rest (c = 70 of m = 800): RR = 0.15 / 0.0875 = 1.7142857,
    # se = sqrt(1/30 - 1/200 + 1/70 - 1/800) = 0.2033937; RR interval 1.7142857 *
    # exp(-/+ 1.959964 * 0.2033937) = (1.150676, 2.553955); R = 1000 RR / (200 RR + 800)
    # maps it to (1150.676 / 1030.135, 2553.955 / 1310.791) = (1.11702, 1.94840) to 5 d.p.
    ratio, low, high = representation_ratio(30, 100, 200, 1000)
    assert_allclose([ratio, low, high], [1.5, 1.11702, 1.94840], atol=1e-5)


def test_representation_ratio_edge_cases():
    ratio, low, high = representation_ratio(np.array([0.0, 50.0, 10.0]),
                                            np.array([10.0, 50.0, 10.0]),
                                            np.array([100.0, 400.0, 100.0]),
                                            np.array([500.0, 400.0, 500.0]))
    assert ratio[0] == 0.0 and np.isnan(low[0])           # no plans in the group
    assert (ratio[1], low[1], high[1]) == (1.0, 1.0, 1.0)  # the group is everyone
    assert ratio[2] == 5.0 and np.isnan(high[2])           # no plans outside the group


@given(a=st.integers(1, 200), c=st.integers(1, 200), n_extra=st.integers(0, 2000),
       m_extra=st.integers(0, 2000))
def test_two_groups_are_flagged_as_mirror_images(a, c, n_extra, m_extra):
    n, m = a + n_extra, c + m_extra
    _, lo_x, hi_x = representation_ratio(a, a + c, n, n + m)
    _, lo_y, hi_y = representation_ratio(c, a + c, m, n + m)
    assert (lo_x > 1) == (hi_y < 1) and (hi_x < 1) == (lo_y > 1)


def test_representation_per_ward_and_whole_area():
    table = pd.DataFrame({
        "ward_code": ["W1", "W1", "W2", "W2"],
        "ethnicity": ["X", "Y", "X", "Y"],
        "ehcp": [30, 70, 10, 40],
        "pupils": [200, 800, 100, 400],
    })
    out = compute_representation(table, ehcp="ehcp", population="pupils",
                                 breakdowns=["ethnicity"], names={"W1": "One"}, area_name="Town")
    rows = out.set_index(["ward_code", "group"])
    assert_allclose(rows.loc[("W1", "X"), ["representation_ratio", "representation_ratio_lower",
                                           "representation_ratio_upper"]].to_numpy(float),
                    [1.5, 1.11702, 1.94840], atol=1e-5)
    assert rows.loc[("W2", "X"), "representation_ratio"] == pytest.approx(1.0)
    # whole area X: 40 of 150 plans, 300 of 1,500 pupils: R = (40/150) / (300/1500) = 4/3;
    # against the rest: RR = (40/300) / (110/1200) = 1.4545, se = sqrt(1/40 - 1/300 + 1/110
    # - 1/1200) = 0.17299: RR from 1.0363 up, R from 1500 * 1.0363 / 1510.9 = 1.0288 up,
    # so X is over-represented and Y (its mirror image) under-represented
    se = math.sqrt(1 / 40 - 1 / 300 + 1 / 110 - 1 / 1200)
    rr = (40 / 300) / (110 / 1200)
    low = 1500 * rr * math.exp(-Z95 * se) / (300 * rr * math.exp(-Z95 * se) + 1200)
    assert rows.loc[(TOTAL, "X"), "representation_ratio"] == pytest.approx(4 / 3)
    assert rows.loc[(TOTAL, "X"), "representation_ratio_lower"] == pytest.approx(low)
    assert low == pytest.approx(1.0288, abs=1e-4)
    assert rows.loc[(TOTAL, "X"), "representation"] == "over-represented"
    assert rows.loc[(TOTAL, "Y"), "representation"] == "under-represented"
    assert rows.loc[("W2", "X"), "representation"] == "similar"
    assert rows.loc[("W1", "X"), "ward_name"] == "One"
    assert rows.loc[(TOTAL, "X"), "ehcp_share_pct"] == pytest.approx(100 * 40 / 150)


def test_conversion_and_representation_charts():
    conversion = compute_conversion(_conversion_table(), year_column="year",
                                    sen_support="sen_support", new_ehcp="new_ehcp")
    fig = plot_funnel(conversion)
    assert fig.axes[0].get_title() == "By ward"
    published = conversion.astype(object)
    published.loc[0, ["sen_support_count", "conversion_pct"]] = "c"
    fig = plot_funnel(published)
    assert fig.axes[0].get_title() == "By ward (1 suppressed)"
    table = pd.DataFrame({"ward_code": ["W1", "W1"], "ethnicity": ["X", "Y"], "ehcp": [30, 70],
                          "pupils": [200, 800]})
    fig = plot_representation(compute_representation(table, ehcp="ehcp", population="pupils",
                                                     breakdowns=["ethnicity"]))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["X", "Y"]
