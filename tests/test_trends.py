"""Trends over time: known answers for the log-linear trend and the ward-versus-rest test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from geo_send.trends import (
    TOTAL,
    Z95,
    compute_trends,
    fit_loglinear_trend,
    plot_trend_map,
    plot_trends,
)


def test_two_years_give_the_closed_form_slope_and_standard_error():
    # 100 then 121 per 1,000: beta = ln(121/100); se = sqrt(1/100 + 1/121) (Poisson, dt = 1)
    trend = fit_loglinear_trend([2020, 2021], [100, 121], [1000, 1000])
    beta, se = math.log(1.21), math.sqrt(1 / 100 + 1 / 121)
    assert_allclose([trend.slope, trend.se, trend.dispersion], [beta, se, 1.0], rtol=1e-9)
    assert trend.annual_change_pct == pytest.approx(21.0)
    low, high = trend.interval_pct()
    assert_allclose([low, high], [100 * (math.exp(beta - Z95 * se) - 1),
                                  100 * (math.exp(beta + Z95 * se) - 1)], rtol=1e-9)
    assert_allclose([low, high], [-7.1571, 57.6965], atol=1e-3)


def test_exact_doubling_has_the_hand_computed_information():
    # mu = 100, 200, 400 at t = 0, 1, 2 (fits exactly, so phi floors at 1);
    # weighted mean t = (0 + 200 + 800) / 700 = 10/7;
    # sum mu (t - 10/7)^2 = (100*100 + 200*9 + 400*16) / 49 = 18200 / 49; se = sqrt(49 / 18200)
    trend = fit_loglinear_trend([0, 1, 2], [100, 200, 400], [1, 1, 1])
    assert_allclose([trend.slope, trend.se], [math.log(2), math.sqrt(49 / 18200)], rtol=1e-9)
    assert trend.dispersion == 1.0


def test_overdispersion_inflates_the_standard_error():
    # symmetric counts 100, 120, 100 at t = -1, 0, 1: beta = 0, mu = 320/3 everywhere;
    # Pearson X2 = (2 * (20/3)^2 + (40/3)^2) / (320/3) = 2.5 on 3 - 2 = 1 df -> phi = 2.5;
    # Var(beta) = phi / sum(mu t^2) = 2.5 / (2 * 320/3)
    trend = fit_loglinear_trend([2019, 2020, 2021], [100, 120, 100], [1000, 1000, 1000])
    assert trend.slope == pytest.approx(0.0, abs=1e-12)
    assert trend.dispersion == pytest.approx(2.5)
    assert trend.se == pytest.approx(math.sqrt(2.5 / (2 * 320 / 3)))


@pytest.mark.parametrize(
    ("counts", "denominators"),
    [([0, 0, 0], [10, 10, 10]), ([0, 0, 7], [10, 10, 10]), ([5], [10]), ([3, 4], [0, 0])],
    ids=["all-zero", "one-year-only", "single-year", "no-denominator"],
)
def test_no_finite_trend_is_missing_not_zero(counts, denominators):
    trend = fit_loglinear_trend(list(range(len(counts))), counts, denominators)
    assert math.isnan(trend.slope) and math.isnan(trend.se)


def _two_wards() -> pd.DataFrame:
    return pd.DataFrame({
        "ward_code": ["A", "A", "B", "B"],
        "year": [2020, 2021, 2020, 2021],
        "ehcp_count": [100, 150, 100, 100],
        "pupils_count": [1000, 1000, 1000, 1000],
    })


def test_a_ward_is_compared_with_the_rest_of_the_area():
    table = _two_wards()
    before = table.copy()
    trends, series = compute_trends(table, year_column="year", counts=["ehcp_count"],
                                    denominator="pupils_count")
    pd.testing.assert_frame_equal(table, before)
    rows = trends.set_index("ward_code")
    # A: ln 1.5 per year; the rest (B) is flat; se = sqrt(1/100 + 1/150 + 1/100 + 1/100)
    d, se = math.log(1.5), math.sqrt(1 / 100 + 1 / 150 + 1 / 100 + 1 / 100)
    assert_allclose(rows.loc["A", ["trend_ratio_to_rest", "trend_ratio_lower",
                                   "trend_ratio_upper"]].to_numpy(dtype=float),
                    [1.5, math.exp(d - Z95 * se), math.exp(d + Z95 * se)], rtol=1e-9)
    assert rows.loc["A", "trend_vs_la"] == "faster" and rows.loc["B", "trend_vs_la"] == "slower"
    assert rows.loc["A", "trend"] == "rising" and rows.loc["B", "trend"] == "no clear trend"
    # the whole area: 200 then 250 per 2,000
    assert rows.loc[TOTAL, "annual_change_pct"] == pytest.approx(25.0)
    assert pd.isna(rows.loc[TOTAL, "trend_vs_la"])
    assert rows.loc["A", "change_pct_points"] == pytest.approx(5.0)
    assert rows.loc["A", ["first_count", "last_count", "min_count"]].tolist() == [100, 150, 100]
    assert series.loc[(series["ward_code"] == TOTAL) & (series["year"] == 2021),
                      "pct"].item() == pytest.approx(12.5)


def test_a_missing_year_is_left_out_never_read_as_zero():
    table = _two_wards()
    table.loc[3, "ehcp_count"] = np.nan
    trends, series = compute_trends(table, year_column="year", counts=["ehcp_count"],
                                    denominator="pupils_count")
    b = trends.set_index("ward_code").loc["B"]
    assert b["years_count"] == 1 and math.isnan(b["annual_change_pct"])
    assert series["count"].isna().sum() == 1


def test_trend_chart_draws_one_panel_per_measure():
    table = _two_wards().assign(sen_support_count=[300, 310, 200, 190])
    trends, series = compute_trends(table, year_column="year",
                                    counts=["sen_support_count", "ehcp_count"],
                                    denominator="pupils_count")
    fig = plot_trends(series, trends, names=pd.Series({"A": "Ward A"}))
    assert [ax.get_title() for ax in fig.axes] == ["SEN support, % of pupils",
                                                   "EHC plans, % of pupils"]
    assert "Ward A (faster)" in [t.get_text() for t in fig.axes[1].texts]


def test_trend_map_outlines_the_faster_ward(make_area):
    area = make_area()
    wards = area.wards.set_index("ward_code")
    rows = []
    for i, code in enumerate(wards.index):
        for k, year in enumerate((2020, 2021, 2022)):
            rows.append({"ward_code": code, "year": year, "pupils_count": 1000,
                         "ehcp_count": int(100 * (1.5 if i == 0 else 1.0) ** k)})
    trends, _ = compute_trends(pd.DataFrame(rows), year_column="year", counts=["ehcp_count"],
                               denominator="pupils_count")
    assert trends.set_index("ward_code").loc[wards.index[0], "trend_vs_la"] == "faster"
    fig = plot_trend_map(wards, trends)
    assert fig.axes[0].get_title() == "EHC plans: annual change"
