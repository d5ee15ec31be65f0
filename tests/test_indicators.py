"""Indicators: intervals, empirical-Bayes smoothing and benchmark labels, against known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from libpysal.graph import Graph
from libpysal.weights import W, lat2W
from numpy.testing import assert_allclose

import geo_send as gs
from geo_send.config import IndicatorSpec
from geo_send.indicators import (
    byar_interval,
    compute_indicators,
    exact_poisson_interval,
    global_eb,
    indicator_columns,
    neighbourhoods,
    poisson_interval,
    spatial_eb,
    wilson_interval,
)

SEED = 20260


def spec(name="x_pct", kind="proportion", **kw) -> IndicatorSpec:
    defaults = dict(numerator="num", denominator="den", multiplier=100.0)
    if kind == "score":
        defaults = dict(column="score")
    return IndicatorSpec(name=name, label=name, domain="d", kind=kind, **{**defaults, **kw})


# -- Wilson -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "count, total, lo, hi",
    [
        # Newcombe RG (1998), Stat Med 17:857-872, Table II, method 3 (score, no correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # by hand: z = 1.959964, O = 5, n = 100: 2O + z² = 13.841459,
        # z·sqrt(z² + 4·5·0.95) = 9.367205, 2(n + z²) = 207.682918
        # lo = 4.474254 / 207.682918 = 0.021544, hi = 23.208664 / 207.682918 = 0.111750
        (5, 100, 0.021544, 0.111750),
    ],
    ids=["81/263", "15/148", "0/20", "1/29", "5/100-by-hand"],
)
def test_wilson_interval_known_answers(count, total, lo, hi):
    got_lo, got_hi = wilson_interval(count, total)
    assert_allclose([got_lo, got_hi], [lo, hi], atol=5e-5)


def test_wilson_interval_is_missing_for_a_zero_denominator():
    lo, hi = wilson_interval(np.array([0.0, 3.0]), np.array([0.0, np.nan]))
    assert np.isnan(lo).all() and np.isnan(hi).all()


# -- Byar and exact Poisson ---------------------------------------------------------------


@pytest.mark.parametrize(
    "count, lo, hi",
    [
        # Garwood (1936) exact 95% limits for a Poisson count, as tabulated e.g. in
        # Armitage & Berry; lo = χ²(0.025; 2O)/2, hi = χ²(0.975; 2O + 2)/2
        (0, 0.0, 3.6889),
        (1, 0.0253, 5.5716),
        (5, 1.6235, 11.6683),
        (9, 4.1154, 17.0848),
    ],
    ids=["0", "1", "5", "9"],
)
def test_exact_poisson_interval_known_answers(count, lo, hi):
    assert_allclose(exact_poisson_interval(count), (lo, hi), atol=5e-5)


def test_byar_interval_by_hand():
    # O = 10, z = 1.959964: lo = 10 (1 − 1/90 − z/(3·√10))³ = 10 · 0.7822907³ = 4.787450
    # hi = 11 (1 − 1/99 + z/(3·√11))³ = 11 · 1.1868828³ = 18.391459
    assert_allclose(byar_interval(10), (4.787450, 18.391459), atol=5e-6)


def test_poisson_interval_uses_exact_below_ten_and_byar_from_ten():
    lo, hi = poisson_interval(np.array([9.0, 10.0]))
    assert_allclose(lo, [exact_poisson_interval(9)[0], byar_interval(10)[0]])
    assert_allclose(hi, [exact_poisson_interval(9)[1], byar_interval(10)[1]])


def test_intervals_agree_with_phstatsmethods():
    ci = pytest.importorskip("PHStatsMethods.confidence_intervals")
    rng = np.random.default_rng(SEED)
    totals = rng.integers(20, 5000, 40)
    counts = rng.integers(1, 20, 40)
    lo, hi = wilson_interval(counts, totals)
    pairs = list(zip(counts, totals, strict=True))
    assert_allclose(lo, [ci.wilson_lower(c, t) for c, t in pairs], rtol=1e-10)
    assert_allclose(hi, [ci.wilson_upper(c, t) for c, t in pairs], rtol=1e-10)
    lo, hi = poisson_interval(counts)  # PHStatsMethods switches to exact below 10 too
    assert_allclose(lo, [ci.byars_lower(c) for c in counts], rtol=1e-10)
    assert_allclose(hi, [ci.byars_upper(c) for c in counts], rtol=1e-10)


# -- empirical Bayes ----------------------------------------------------------------------

E = np.array([2.0, 10.0, 30.0])
B = np.array([100.0, 200.0, 300.0])


def test_global_eb_by_hand():
    # r = (0.02, 0.05, 0.10); m = 42/600 = 0.07
    # s² = (100·0.05² + 200·0.02² + 300·0.03²) / 600 = 0.6 / 600 = 0.001
    # A = s² − m / b̄ = 0.001 − 0.07/200 = 0.00065
    # C = A / (A + m/b) = 0.00065/0.00135, 0.00065/0.001, 0.00065/0.00088333
    #   = 0.481481, 0.65, 0.735849
    # θ = m + C (r − m) = 0.0459259, 0.057, 0.0920755
    assert_allclose(global_eb(E, B), [0.0459259, 0.057, 0.0920755], atol=1e-7)


def test_global_eb_shrinks_fully_when_areas_differ_less_than_chance():
    # r = 0.04, 0.05, 0.06: s² = 0.0000667 < m / b̄ = 0.0005, so A is truncated at 0
    got = global_eb(np.array([4.0, 5.0, 6.0]), np.array([100.0, 100.0, 100.0]))
    assert_allclose(got, [0.05, 0.05, 0.05])


def test_global_eb_agrees_with_esda_when_the_prior_variance_is_positive():
    smoothing = pytest.importorskip("esda.smoothing")
    rng = np.random.default_rng(SEED)
    b = rng.integers(200, 2000, 16).astype(float)
    e = rng.poisson(b * rng.uniform(0.01, 0.2, 16)).astype(float)
    assert_allclose(global_eb(e, b), smoothing.Empirical_Bayes(e, b).r.ravel(), rtol=1e-12)


def test_global_eb_leaves_missing_areas_out():
    got = global_eb(np.r_[E, np.nan, 5.0], np.r_[B, 50.0, 0.0])
    assert_allclose(got[:3], [0.0459259, 0.057, 0.0920755], atol=1e-7)
    assert np.isnan(got[3:]).all()


def line_graph(codes=("a", "b", "c")) -> Graph:
    a, b, c = codes
    return Graph.from_dicts({a: [b], b: [a, c], c: [b]})


def test_spatial_eb_by_hand_on_a_line():
    # areas a - b - c; each neighbourhood includes the area itself
    # a: N = {a, b}: m = 12/300 = 0.04, s² = (100·0.02² + 200·0.01²)/300 = 0.0002,
    #    A = 0.0002 − 0.04/150 < 0 -> 0, θ = m = 0.04
    # b: N = {a, b, c}: as the global case, θ = 0.057
    # c: N = {b, c}: m = 40/500 = 0.08, s² = (200·0.03² + 300·0.02²)/500 = 0.0006,
    #    A = 0.0006 − 0.08/250 = 0.00028, C = 0.00028/(0.00028 + 0.08/300) = 0.512195,
    #    θ = 0.08 + 0.512195·0.02 = 0.0902439
    nb = neighbourhoods(line_graph(), pd.Index(["a", "b", "c"]))
    assert_allclose(spatial_eb(E, B, nb), [0.04, 0.057, 0.0902439], atol=1e-7)


def test_spatial_eb_agrees_with_esda_on_a_lattice():
    smoothing = pytest.importorskip("esda.smoothing")
    rng = np.random.default_rng(SEED)
    b = rng.integers(200, 2000, 16).astype(float)
    e = rng.poisson(b * rng.uniform(0.01, 0.2, 16)).astype(float)
    w = lat2W(4, 4)  # binary rook weights; esda changes w.transform, so it gets its own
    expected = smoothing.Spatial_Empirical_Bayes(e, b, lat2W(4, 4)).r.ravel()
    nb = neighbourhoods(w, pd.Index(w.id_order))
    assert_allclose(spatial_eb(e, b, nb), expected, rtol=1e-10)


def test_neighbourhoods_follow_the_given_order_and_leave_the_weights_alone():
    graph = line_graph().transform("r")
    nb = neighbourhoods(graph, pd.Index(["c", "a", "b"])).toarray()
    assert_allclose(nb, [[1, 0, 1], [0, 1, 1], [1, 1, 1]])
    assert graph.transformation == "R"
    w = W({"a": ["b"], "b": ["a"]})
    w.transform = "r"
    neighbourhoods(w, pd.Index(["a", "b"]))
    assert w.transform == "R"
    with pytest.raises(ValueError, match="not in the spatial weights"):
        neighbourhoods(graph, pd.Index(["a", "z"]))


def test_smoothing_works_on_stacks_of_draws():
    draws = np.stack([E, E * 2, E + 1])
    assert_allclose(global_eb(draws, B)[0], global_eb(E, B))
    assert_allclose(global_eb(draws, B)[2], global_eb(E + 1, B))
    nb = neighbourhoods(line_graph(), pd.Index(["a", "b", "c"]))
    assert_allclose(spatial_eb(draws, B, nb)[1], spatial_eb(E * 2, B, nb))


# -- the stage ----------------------------------------------------------------------------


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {"num": [5.0, 40.0, 120.0, np.nan, 3.0], "den": [100.0, 400.0, 1000.0, 50.0, 0.0],
         "score": [1.0, 2.0, 3.0, 4.0, np.inf]},
        index=pd.Index(["E1", "E2", "E3", "E4", "E5"], name="ward_code"),
    )


def test_compute_indicators_columns_values_and_missing():
    specs = [spec(), spec("s_score", kind="score")]
    out = compute_indicators(table(), specs)
    assert list(out.columns) == indicator_columns(specs[0]) + ["s_score"]
    assert_allclose(out["x_pct"].iloc[:3], [5.0, 10.0, 12.0])
    assert_allclose(out["x_pct_lo"].iloc[0], 100 * 0.0215437, atol=1e-4)
    # missing numerator and zero denominator stay missing, never 0
    assert out.loc[["E4", "E5"], ["x_pct", "x_pct_raw", "x_pct_lo", "x_pct_hi"]].isna().all().all()
    assert out["x_pct_small_n"].tolist()[:3] == [True, False, False]
    assert out["x_pct_small_n"].isna().tolist() == [False, False, False, True, False]
    assert np.isnan(out.loc["E5", "s_score"])


def test_rates_use_byar_or_exact_interval_over_the_denominator():
    frame = pd.DataFrame({"num": [45.0, 5.0], "den": [10_000.0, 10_000.0]}, index=["a", "b"])
    out = compute_indicators(frame, [spec("r_per_1000", kind="rate", multiplier=1000.0)])
    # Byar for 45 (PHStatsMethods byars_lower/upper: 32.820253, 60.214962) per 10,000 × 1000
    assert_allclose(out[["r_per_1000_lo", "r_per_1000_hi"]].iloc[0], [3.2820253, 6.0214962],
                    atol=1e-6)
    assert_allclose(out[["r_per_1000_lo", "r_per_1000_hi"]].iloc[1], [0.16235, 1.16683],
                    atol=1e-5)


def test_benchmark_label_uses_the_interval_against_the_comparator():
    frame = pd.DataFrame({"num": [10.0, 100.0, 300.0, 200.0], "den": [1000.0] * 4},
                         index=["a", "b", "c", "d"])
    # whole-area rate: 610 / 4000 = 15.25%
    out = compute_indicators(frame, [spec()])
    assert out["x_pct_vs_benchmark"].tolist() == ["lower", "lower", "higher", "higher"]
    # configured comparator 10%: b's interval (8.3%, 12.0%) includes it
    out = compute_indicators(frame, [spec(benchmark=10.0)])
    assert out["x_pct_vs_benchmark"].tolist() == ["lower", "similar", "higher", "higher"]
    assert gs.indicators.comparators(frame, [spec()]).iloc[0] == pytest.approx(15.25)


def test_smoothed_value_is_used_and_raw_is_kept():
    frame = pd.DataFrame({"num": E, "den": B}, index=["a", "b", "c"])
    out = compute_indicators(frame, [spec(smoothing="global_eb")])
    assert_allclose(out["x_pct"], 100 * np.array([0.0459259, 0.057, 0.0920755]), atol=1e-5)
    assert_allclose(out["x_pct_raw"], [2.0, 5.0, 10.0])
    out = compute_indicators(frame, [spec(smoothing="spatial_eb")], weights=line_graph())
    assert_allclose(out["x_pct"], [4.0, 5.7, 9.02439], atol=1e-5)


def test_spatial_eb_without_weights_is_a_config_error():
    frame = pd.DataFrame({"num": E, "den": B}, index=["a", "b", "c"])
    with pytest.raises(gs.ConfigError, match="needs spatial weights"):
        compute_indicators(frame, [spec(smoothing="spatial_eb")])


def test_compute_indicators_does_not_mutate_its_input():
    frame = table()
    before = frame.copy()
    compute_indicators(frame, [spec(), spec("s_score", kind="score")])
    pd.testing.assert_frame_equal(frame, before)
