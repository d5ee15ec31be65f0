"""Monte Carlo rank intervals and sensitivity: reproducible, right on a case with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

import geo_send as gs
from geo_send.config import DomainSpec, IndexSettings, IndicatorSpec
from geo_send.index import build_index, rank_areas
from geo_send.indicators import compute_indicators
from geo_send.spatial import build_weights
from geo_send.uncertainty import ASSUMPTIONS, METHODS, assess_uncertainty, rank_columns

SEED = 20260


@pytest.fixture(scope="module")
def wolverhampton():
    cfg = gs.Config.default()
    areas = gs.load_areas(cfg)
    return cfg, gs.load_table(cfg, areas)


def assess(cfg, table, *, seed=SEED, **changes):
    settings = IndexSettings(**{**cfg.index.__dict__, **changes})
    return assess_uncertainty(table, cfg.indicators, cfg.domains, settings, seed=seed)


def test_columns_and_basic_invariants(wolverhampton):
    cfg, table = wolverhampton
    result = assess(cfg, table)
    areas = result.areas
    assert list(areas.columns) == rank_columns(5) == ["rank_p05", "rank_median", "rank_p95",
                                                      "p_top5"]
    assert list(areas.index) == list(table.index)
    assert (areas["rank_p05"] <= areas["rank_median"]).all()
    assert (areas["rank_median"] <= areas["rank_p95"]).all()
    # every draw has exactly five areas in its top five
    assert areas["p_top5"].sum() == pytest.approx(5.0)
    assert list(result.sensitivity.index) == list(ASSUMPTIONS)
    assert result.rank_draws.shape == (cfg.index.draws, 20)
    assert result.settings["methods"] == [f"{n}/{a}" for n, a in METHODS]


def test_nominal_rank_is_the_pipelines_rank(wolverhampton):
    cfg, table = wolverhampton
    for normalisation, aggregation in METHODS:
        settings = IndexSettings(normalisation=normalisation, aggregation=aggregation)
        values = compute_indicators(table, cfg.indicators)
        index = build_index(values, cfg.indicators, cfg.domains, settings)["need_index"]
        result = assess_uncertainty(table, cfg.indicators, cfg.domains, settings, seed=SEED,
                                    draws=1)
        pd.testing.assert_series_equal(result.nominal_rank, rank_areas(index),
                                       check_dtype=False)


def test_same_seed_gives_identical_results(wolverhampton):
    cfg, table = wolverhampton
    a, b = assess(cfg, table), assess(cfg, table)
    pd.testing.assert_frame_equal(a.areas, b.areas)
    pd.testing.assert_frame_equal(a.sensitivity, b.sensitivity)
    pd.testing.assert_frame_equal(a.rank_draws, b.rank_draws)


def test_different_seeds_differ_only_within_monte_carlo_error(wolverhampton):
    cfg, table = wolverhampton
    a, b = assess(cfg, table, seed=1), assess(cfg, table, seed=2)
    draws = cfg.index.draws
    assert not a.rank_draws.equals(b.rank_draws)
    # a share estimated from D draws has standard error sqrt(p(1 − p)/D); the difference of
    # two independent estimates sqrt(2) times that. Allow four standard errors.
    p = (a.areas["p_top5"] + b.areas["p_top5"]) / 2
    se = np.sqrt(2 * p * (1 - p) / draws)
    assert (np.abs(a.areas["p_top5"] - b.areas["p_top5"]) <= 4 * se + 1 / draws).all()
    # rank percentiles are whole ranks: with 1,000 draws they move by at most a place or two
    for column in ("rank_p05", "rank_median", "rank_p95"):
        assert (a.areas[column] - b.areas[column]).abs().max() <= 2
    # the mean absolute rank shift, with its standard error over draws
    nominal = a.nominal_rank.reindex(a.rank_draws.columns).to_numpy()
    per_draw = np.abs(a.rank_draws.to_numpy() - nominal).mean(axis=1)
    se = per_draw.std() / np.sqrt(draws) * np.sqrt(2)
    shift = a.sensitivity["mean_abs_rank_shift"] - b.sensitivity["mean_abs_rank_shift"]
    assert abs(shift["all"]) <= 4 * se


def test_results_do_not_depend_on_the_order_of_the_rows(wolverhampton):
    cfg, table = wolverhampton
    a = assess(cfg, table, draws=200)
    b = assess(cfg, table.iloc[::-1], draws=200)
    pd.testing.assert_frame_equal(a.areas, b.areas.loc[a.areas.index])
    pd.testing.assert_frame_equal(a.sensitivity, b.sensitivity)


def test_one_count_indicator_known_probability_of_ranking_first():
    # Two areas, one proportion with equal denominators: A ranks first when its redrawn
    # count beats B's, or ties with it (ties go to the smaller code). With X ~ Poisson(20)
    # and Y ~ Poisson(25): P(X >= Y) = sum_y P(Y = y) P(X >= y). Weights and method do not
    # matter with one indicator: every normalisation is increasing.
    table = pd.DataFrame({"n": [20.0, 25.0], "d": [1000.0, 1000.0]},
                         index=pd.Index(["A", "B"], name="ward_code"))
    spec = IndicatorSpec("x", "x", "dom", "proportion", "n", "d", multiplier=100)
    draws = 4000
    result = assess_uncertainty(table, [spec], [DomainSpec("dom", "dom", 1.0)],
                                IndexSettings(top_n=1), seed=SEED, draws=draws)
    y = np.arange(0, 200)
    expected = float((poisson.pmf(y, 25) * poisson.sf(y - 1, 20)).sum())  # ≈ 0.2458
    se = np.sqrt(expected * (1 - expected) / draws)
    assert result.areas.loc["A", "p_top1"] == pytest.approx(expected, abs=4 * se)
    assert result.areas.loc["B", "p_top1"] == pytest.approx(1 - expected, abs=4 * se)
    assert result.sensitivity.loc["weights", "mean_abs_rank_shift"] == 0
    assert result.sensitivity.loc["method", "mean_abs_rank_shift"] == 0


def test_scores_alone_carry_no_count_noise_and_no_spread_means_no_weight_noise(wolverhampton):
    cfg, table = wolverhampton
    scores = [s for s in cfg.indicators if not s.is_count_based]
    domains = [d for d in cfg.domains if any(s.domain == d.name for s in scores)]
    result = assess_uncertainty(table, scores, domains, IndexSettings(weight_spread=0.0),
                                seed=SEED, draws=100)
    assert result.sensitivity.loc["count_noise", "mean_abs_rank_shift"] == 0
    assert result.sensitivity.loc["weights", "mean_abs_rank_shift"] == 0
    assert result.sensitivity.loc["method", "mean_abs_rank_shift"] > 0


def test_varying_more_moves_ranks_more(wolverhampton):
    cfg, table = wolverhampton
    shift = assess(cfg, table).sensitivity["mean_abs_rank_shift"]
    assert shift["all"] >= shift.drop("all").max()
    wider = assess(cfg, table, weight_spread=0.9).sensitivity["mean_abs_rank_shift"]
    assert wider["weights"] > shift["weights"]


def test_spatial_eb_needs_the_weights(wolverhampton):
    cfg, table = wolverhampton
    indicators = [s if not s.is_count_based else
                  IndicatorSpec(**{**s.__dict__, "smoothing": "spatial_eb"})
                  for s in cfg.indicators]
    with pytest.raises(gs.ConfigError, match="spatial weights"):
        assess_uncertainty(table, indicators, cfg.domains, cfg.index, seed=SEED, draws=10)
    areas = gs.load_areas(cfg)
    graph = build_weights(areas)
    result = assess_uncertainty(table, indicators, cfg.domains, cfg.index, seed=SEED,
                                draws=50, weights=graph)
    assert result.areas["p_top5"].sum() == pytest.approx(5.0)
