"""The index: normalisations, two-level aggregation, drivers and their properties."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from geo_send.config import AGGREGATIONS, NORMALISATIONS, DomainSpec, IndexSettings, IndicatorSpec
from geo_send.index import (
    NO_DRIVER,
    aggregate,
    build_index,
    exponential_transform,
    normalise_array,
    rank_areas,
    rank_array,
    short_label,
)

METHODS = list(itertools.product(NORMALISATIONS, AGGREGATIONS))
#: Two domains: indicators 0 and 1 in the first, indicator 2 in the second.
MEMBERSHIP = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


# -- normalisation ------------------------------------------------------------------------


def test_exponential_transform_against_its_formula():
    # X = −23 ln(1 − R (1 − e^(−100/23))), e^(−100/23) = 0.0129349:
    # R = 0.5: −23 ln(1 − 0.5 · 0.9870651) = −23 ln(0.5064675) = 15.646790
    # R = 1:   −23 ln(e^(−100/23)) = 100
    r = np.array([0.25, 0.5, 0.75, 1.0])
    assert_allclose(exponential_transform(r), [6.517733, 15.646790, 31.009144, 100.0],
                    atol=1e-6)
    assert_allclose(exponential_transform(r), -23 * np.log(1 - r * (1 - np.exp(-100 / 23))))
    assert exponential_transform(1e-9) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize(
    "method, expected",
    [
        # mean 25, population sd sqrt(125) = 11.18034
        ("zscore", [-1.341641, -0.447214, 0.447214, 1.341641]),
        ("minmax", [0.0, 100 / 3, 200 / 3, 100.0]),
        ("rank", [0.0, 100 / 3, 200 / 3, 100.0]),
        # R = rank / 4
        ("exponential", [6.517733, 15.646790, 31.009144, 100.0]),
    ],
    ids=["zscore", "minmax", "rank", "exponential"],
)
def test_normalisations_known_answers(method, expected):
    assert_allclose(normalise_array(np.array([10.0, 20.0, 30.0, 40.0]), method), expected,
                    atol=1e-6)


@pytest.mark.parametrize("method, middle", [("zscore", 0.0), ("minmax", 50.0), ("rank", 50.0)])
def test_a_constant_indicator_sits_at_the_middle_and_missing_stays_missing(method, middle):
    got = normalise_array(np.array([7.0, np.nan, 7.0, 7.0]), method)
    assert np.isnan(got[1])
    assert_allclose(got[[0, 2, 3]], middle)


def test_ties_share_the_average_rank():
    assert_allclose(normalise_array(np.array([1.0, 2.0, 2.0, 3.0]), "rank"), [0, 50, 50, 100])


def test_normalisation_of_missing_values_ignores_them():
    got = normalise_array(np.array([10.0, np.nan, 30.0]), "minmax")
    assert_allclose(got[[0, 2]], [0.0, 100.0]) and np.isnan(got[1])


def test_unknown_normalisation_lists_the_choices():
    with pytest.raises(ValueError, match="zscore, minmax, rank, exponential"):
        normalise_array(np.zeros(3), "robust")


# -- aggregation --------------------------------------------------------------------------

X = np.array([[10.0, 20.0, 30.0], [1.0, 3.0, 2.0], [5.0, 5.0, 8.0]])  # 3 indicators x 3 areas


def test_arithmetic_two_levels_by_hand():
    # minmax: ind0 = (0, 50, 100), ind1 = (0, 100, 50), ind2 = (0, 0, 100)
    # domain A weights 1 and 3 -> (0, 87.5, 62.5); domain B = (0, 0, 100)
    # index with domain weights 0.75 / 0.25 -> (0, 65.625, 71.875)
    agg = aggregate(X, MEMBERSHIP, [1.0, 3.0, 1.0], [0.75, 0.25], normalisation="minmax",
                    aggregation="arithmetic")
    assert_allclose(agg.domains, [[0, 87.5, 62.5], [0, 0, 100]])
    assert_allclose(agg.index, [0, 65.625, 71.875])
    assert_allclose(agg.contributions.sum(axis=0), agg.index)
    assert_allclose(agg.domain_contributions.sum(axis=0), agg.index)
    assert_allclose(agg.contributions[1], [0, 0.75 * 0.75 * 100, 0.75 * 0.75 * 50])


def test_geometric_two_levels_by_hand():
    # minmax rescaled to [1, 100]: ind0 = (1, 50.5, 100), ind1 = (1, 100, 50.5), ind2 = (1, 1, 100)
    # domain A = ind0^0.25 ind1^0.75; domain B = ind2; index = A^0.75 B^0.25
    agg = aggregate(X, MEMBERSHIP, [1.0, 3.0, 1.0], [0.75, 0.25], normalisation="minmax",
                    aggregation="geometric")
    a = np.array([1.0, 50.5**0.25 * 100**0.75, 100**0.25 * 50.5**0.75])
    b = np.array([1.0, 1.0, 100.0])
    assert_allclose(agg.domains, [a, b])
    assert_allclose(agg.index, a**0.75 * b**0.25)
    assert_allclose(np.nansum(agg.contributions, axis=0), np.log(agg.index))


def test_geometric_gives_the_same_index_for_zscore_and_minmax():
    z = aggregate(X, MEMBERSHIP, [1, 1, 1], [1, 1], normalisation="zscore", aggregation="geometric")
    m = aggregate(X, MEMBERSHIP, [1, 1, 1], [1, 1], normalisation="minmax", aggregation="geometric")
    assert_allclose(z.index, m.index)


def test_a_missing_indicator_rescales_the_remaining_weights():
    x = X.copy()
    x[1, 2] = np.nan  # area 2 lacks ind1 -> domain A is ind0 alone there
    agg = aggregate(x, MEMBERSHIP, [1.0, 3.0, 1.0], [0.75, 0.25], normalisation="minmax",
                    aggregation="arithmetic")
    # ind1 over areas 0, 1 only: (0, 100); area 2: domain A = ind0 = 100
    assert_allclose(agg.domains[0], [0, 0.25 * 50 + 0.75 * 100, 100])
    assert np.isnan(agg.contributions[1, 2])
    assert_allclose(np.nansum(agg.contributions, axis=0), agg.index)


def test_a_domain_with_no_value_is_left_out_of_the_index():
    x = X.copy()
    x[2, 0] = np.nan
    agg = aggregate(x, MEMBERSHIP, [1, 1, 1], [0.5, 0.5], normalisation="minmax",
                    aggregation="arithmetic")
    assert np.isnan(agg.domains[1, 0])
    assert agg.index[0] == pytest.approx(agg.domains[0, 0])


def test_replicates_are_aggregated_independently():
    stack = np.stack([X, X * 2, X[:, ::-1]])
    agg = aggregate(stack, MEMBERSHIP, [1, 2, 1], [1, 1], normalisation="rank",
                    aggregation="geometric")
    one = aggregate(X[:, ::-1], MEMBERSHIP, [1, 2, 1], [1, 1], normalisation="rank",
                    aggregation="geometric")
    assert_allclose(agg.index[2], one.index)
    assert_allclose(agg.index[0], agg.index[1])


def test_ranks_break_ties_by_code_and_leave_missing_unranked():
    assert rank_array(np.array([1.0, 3.0, np.nan, 3.0])).tolist() == [3, 1, 4, 2]
    index = pd.Series([1.0, 3.0, np.nan, 3.0], index=["d", "b", "a", "c"])
    ranks = rank_areas(index)
    assert ranks.isna().tolist() == [False, False, True, False]  # no value, no rank
    assert ranks.dropna().tolist() == [3, 1, 2]


# -- the stage and its drivers ------------------------------------------------------------


def specs() -> tuple[list[IndicatorSpec], list[DomainSpec]]:
    indicators = [
        IndicatorSpec("ehcp_per_1000", "EHC plans per 1,000 pupils (schools in ward)",
                      "prevalence", "proportion", "e", "p", multiplier=1000),
        IndicatorSpec("low_income_pct", "Children in low-income families, %", "prevalence",
                      "proportion", "l", "c", multiplier=100),
        IndicatorSpec("attainment", "Attainment score", "outcomes", "score", column="a",
                      direction=-1),
    ]
    return indicators, [DomainSpec("prevalence", "Prevalence", 0.5),
                        DomainSpec("outcomes", "Outcomes", 0.5)]


def values() -> pd.DataFrame:
    return pd.DataFrame(
        {"ehcp_per_1000": [30.0, 10.0, 20.0, 20.0], "low_income_pct": [40.0, 20.0, 30.0, 50.0],
         "attainment": [50.0, 60.0, 55.0, 40.0]},
        index=pd.Index(["E2", "E1", "E3", "E4"], name="ward_code"),
    )


def test_build_index_columns_and_drivers():
    indicators, domains = specs()
    out = build_index(values(), indicators, domains, IndexSettings())
    assert list(out.columns) == [
        "need_index", "top_drivers", "prevalence_score", "outcomes_score",
        "prevalence_contribution", "outcomes_contribution", "ehcp_per_1000_contribution",
        "low_income_pct_contribution", "attainment_contribution", "indicators_missing_count",
    ]
    contributions = out[[f"{s.name}_contribution" for s in indicators]]
    assert_allclose(contributions.sum(axis=1), out["need_index"])
    # E2: EHCP z = 1.414 (highest), low income z = 0.447, attainment 50 (lower = more need)
    assert out.loc["E2", "top_drivers"] == (
        "EHC plans per 1,000 pupils; Children in low-income families, %"
    )
    assert out.loc["E4", "top_drivers"].startswith("Attainment score")
    assert out.loc["E1", "top_drivers"] == NO_DRIVER
    assert short_label(indicators[0]) == "EHC plans per 1,000 pupils"


def test_build_index_drivers_use_the_log_decomposition_for_geometric():
    indicators, domains = specs()
    out = build_index(values(), indicators, domains, IndexSettings(aggregation="geometric"))
    contributions = out[[f"{s.name}_contribution" for s in indicators]]
    assert_allclose(contributions.sum(axis=1), np.log(out["need_index"]))
    # ln of the [1, 100] rescaled values: E1 has the best attainment (ln 1 = 0), which
    # pulls the mean log contribution of attainment down, so E2's middling attainment
    # (ln 50.5) lifts it above the average more than its top EHCP rate (ln 100) does:
    # excess 0.5·ln 50.5 − mean(0.5·(ln 50.5, ln 1, ln 25.75, ln 100)) = 0.489 against
    # 0.25·ln 100 − mean(0.25·(ln 100, ln 1, ln 50.5, ln 50.5)) = 0.373
    assert out.loc["E2", "top_drivers"] == "Attainment score; EHC plans per 1,000 pupils"


def test_build_index_counts_missing_indicators():
    indicators, domains = specs()
    frame = values()
    frame.loc["E3", "attainment"] = np.nan
    out = build_index(frame, indicators, domains, IndexSettings())
    assert out["indicators_missing_count"].tolist() == [0, 0, 1, 0]
    assert out.loc["E3", "need_index"] == pytest.approx(out.loc["E3", "prevalence_score"])


# -- properties ---------------------------------------------------------------------------


@st.composite
def problems(draw):
    """Random indicator matrices (3 x n), weights and one raise of one value."""
    n = draw(st.integers(3, 9))
    value = st.one_of(st.floats(-50, 50, allow_nan=False), st.sampled_from([0.0, 1.0]))
    x = np.array(draw(st.lists(value, min_size=3 * n, max_size=3 * n))).reshape(3, n)
    if draw(st.booleans()):  # sometimes one value is missing
        x[draw(st.integers(0, 2)), draw(st.integers(0, n - 1))] = np.nan
    iw = np.array(draw(st.lists(st.floats(0.1, 5), min_size=3, max_size=3)))
    dw = np.array(draw(st.lists(st.floats(0.1, 5), min_size=2, max_size=2)))
    area = draw(st.integers(0, n - 1))
    indicator = draw(st.integers(0, 2))
    delta = draw(st.floats(1e-3, 100))
    return x, iw, dw, area, indicator, delta


def _index(x, iw, dw, method):
    return aggregate(x, MEMBERSHIP, iw, dw, normalisation=method[0], aggregation=method[1]).index


@settings(max_examples=150, deadline=None)
@given(problem=problems())
def test_raising_one_need_indicator_never_lowers_that_areas_index(problem):
    """Monotonicity of the index value, for every normalisation and aggregation.

    Raising x_ik (other areas unchanged) never lowers I_i. It holds because I_i depends on
    the area's own normalised values only, and each is non-decreasing in x_ik: for
    z-scores dz_i/dx_i = (n − 1 − z_i²) / (n·sd) ≥ 0 since z_i² ≤ n − 1 (Samuelson), for
    min–max, ranks and their [1, 100] rescaling by inspection.
    """
    x, iw, dw, area, indicator, delta = problem
    if np.isnan(x[indicator, area]):
        return
    raised = x.copy()
    raised[indicator, area] += delta
    for method in METHODS:
        before, after = _index(x, iw, dw, method), _index(raised, iw, dw, method)
        assert after[area] >= before[area] - 1e-9 * (1 + abs(before[area])), method


RANK_SAFE = [m for m in METHODS if m != ("zscore", "arithmetic")]


@settings(max_examples=150, deadline=None)
@given(problem=problems())
def test_raising_one_need_indicator_never_lets_another_area_overtake(problem):
    """For min–max, ranks and every geometric mean, no other area's value rises either.

    Raising x_ik can only lower the other areas' normalised values (min–max: the range
    widens or the minimum rises; ranks: others can only lose places), so no area below
    area i can pass it. Not so for z-scores with the arithmetic mean: see the next test.
    """
    x, iw, dw, area, indicator, delta = problem
    if np.isnan(x[indicator, area]):
        return
    raised = x.copy()
    raised[indicator, area] += delta
    for method in RANK_SAFE:
        before, after = _index(x, iw, dw, method), _index(raised, iw, dw, method)
        tol = 1e-9 * (1 + np.nanmax(np.abs(before)))
        overtaking = (before < before[area] - tol) & (after > after[area] + tol)
        assert not overtaking.any(), method


def test_zscore_recentring_can_let_another_area_overtake():
    # One domain, two indicators of equal weight, three areas A, B, C.
    # ind0 = (4, 0.2, 0), ind1 = (0, 10, 11). Before: I = (0.0017, −0.0240, 0.0223), C first.
    # C's ind1 rises to 1000: its z rises from 0.75 to √2 (the ceiling for n = 3), but A's
    # z for ind1 rises from −1.41 to −0.71 as the mean moves, so A passes C:
    # I = (0.3475, −0.6742, 0.3267).
    membership = np.array([[1.0, 1.0]])
    x = np.array([[4.0, 0.2, 0.0], [0.0, 10.0, 11.0]])
    raised = x.copy()
    raised[1, 2] = 1000.0
    z = [aggregate(v, membership, [1, 1], [1], normalisation="zscore",
                   aggregation="arithmetic").index for v in (x, raised)]
    assert_allclose(z[0], [0.0017, -0.0240, 0.0223], atol=1e-4)
    assert_allclose(z[1], [0.3475, -0.6742, 0.3267], atol=1e-4)
    assert rank_array(z[0]).tolist() == [2, 3, 1] and rank_array(z[1]).tolist() == [1, 3, 2]
    m = [aggregate(v, membership, [1, 1], [1], normalisation="minmax",
                   aggregation="arithmetic").index for v in (x, raised)]
    assert m[1][2] >= m[0][2] and m[1][0] <= m[0][0]


@settings(max_examples=40, deadline=None)
@given(problem=problems(), data=st.data())
def test_index_does_not_depend_on_the_order_of_the_rows(problem, data):
    x, iw, dw, *_ = problem
    n = x.shape[1]
    indicators = [
        IndicatorSpec(f"i{k}", f"i{k}", "a" if k < 2 else "b", "score", column=f"i{k}",
                      weight=float(iw[k])) for k in range(3)
    ]
    domains = [DomainSpec("a", "a", float(dw[0])), DomainSpec("b", "b", float(dw[1]))]
    frame = pd.DataFrame(x.T, columns=["i0", "i1", "i2"],
                         index=pd.Index([f"E{j:02d}" for j in range(n)], name="ward_code"))
    order = data.draw(st.permutations(list(range(n))))
    shuffled = frame.iloc[order]
    for method in METHODS:
        cfg = IndexSettings(normalisation=method[0], aggregation=method[1])
        a = build_index(frame, indicators, domains, cfg)
        b = build_index(shuffled, indicators, domains, cfg).loc[frame.index]
        assert_allclose(b["need_index"], a["need_index"], rtol=1e-9, atol=1e-9)
        pd.testing.assert_series_equal(b["top_drivers"], a["top_drivers"])
        pd.testing.assert_series_equal(rank_areas(b["need_index"].round(9)),
                                       rank_areas(a["need_index"].round(9)))
