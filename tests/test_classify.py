"""Fisher–Jenks breaks computed by geo_send, checked by hand and against mapclassify."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from geo_send import mapping
from geo_send.mapping import fisher_jenks_breaks, quantile_breaks

SEED = 20261204


def _within_ssd(x: np.ndarray, breaks: np.ndarray) -> float:
    """Total within-class sum of squared deviations, by brute force."""
    cls = np.searchsorted(breaks, x, side="left")
    return float(sum(((x[cls == c] - x[cls == c].mean()) ** 2).sum() for c in np.unique(cls)))


def _fisher_jenks_mapclassify(x: np.ndarray, k: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Numba not installed"
        import mapclassify

        return np.asarray(mapclassify.FisherJenks(x, k=k).bins, dtype=float)


def test_two_obvious_groups():
    x = np.array([1.0, 2.0, 3.0, 10.0, 11.0, 12.0])
    assert_array_equal(fisher_jenks_breaks(x, 2), [3.0, 12.0])


def test_three_classes_by_exhaustive_search():
    # Every split of 7 sorted values into 3 runs, scored by hand-rolled SSD.
    x = np.array([0.0, 1.0, 4.0, 5.0, 6.0, 20.0, 21.0])
    best = min(((a, b) for a in range(1, 6) for b in range(a + 1, 7)),
               key=lambda s: _within_ssd(x, np.array([x[s[0] - 1], x[s[1] - 1], x[-1]])))
    expected = [x[best[0] - 1], x[best[1] - 1], x[-1]]
    assert_array_equal(fisher_jenks_breaks(x, 3), expected)
    assert_array_equal(expected, [1.0, 6.0, 21.0])


def test_one_class_is_the_maximum_and_k_equal_n_is_every_value():
    x = np.array([1.0, 2.0, 4.0])
    assert_array_equal(fisher_jenks_breaks(x, 1), [4.0])
    assert_array_equal(fisher_jenks_breaks(x, 3), x)


def test_k_out_of_range_is_refused():
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        fisher_jenks_breaks(np.array([1.0, 2.0, 3.0]), 4)


@pytest.mark.parametrize("n, k", [(10, 2), (20, 5), (57, 4), (120, 7), (300, 5)],
                         ids=["10x2", "20x5", "57x4", "120x7", "300x5"])
def test_same_breaks_as_mapclassify_on_continuous_values(n, k):
    x = np.sort(np.random.default_rng(SEED + n).gamma(2.0, 10.0, n))
    assert_allclose(fisher_jenks_breaks(x, k), _fisher_jenks_mapclassify(x, k))


def test_ties_between_equal_values_are_as_good_as_mapclassify():
    # Rounded values have equally good partitions; mapclassify decides them in single
    # precision, so compare the objective, which must be the optimum either way.
    rng = np.random.default_rng(SEED)
    for _ in range(50):
        x = np.sort(np.round(rng.gamma(2.0, 10.0, int(rng.integers(8, 60)))))
        k = int(min(5, np.unique(x).size))
        ours = _within_ssd(x, fisher_jenks_breaks(x, k))
        theirs = _within_ssd(x, _fisher_jenks_mapclassify(x, k))
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9)


def test_quantiles_by_hand():
    # percentiles 25, 50, 75, 100 of 1..9 by linear interpolation: 3, 5, 7, 9
    assert_array_equal(quantile_breaks(np.arange(1.0, 10.0), 4), [3.0, 5.0, 7.0, 9.0])
    # equal bounds merge
    assert_array_equal(quantile_breaks(np.array([1.0, 1.0, 1.0, 2.0]), 4), [1.0, 1.25, 2.0])


@pytest.mark.parametrize("n, k", [(10, 3), (57, 5), (300, 10), (1001, 7)],
                         ids=["10x3", "57x5", "300x10", "1001x7"])
def test_same_quantiles_as_mapclassify(n, k):
    x = np.random.default_rng(SEED + n).gamma(2.0, 10.0, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mapclassify

        expected = mapclassify.Quantiles(x, k=k).bins
    assert_allclose(quantile_breaks(x, k), expected)


def test_classify_uses_mapclassify_for_other_schemes():
    y = np.arange(10, dtype=float)
    classes = mapping.classify(y, "EqualInterval", 5)
    assert_array_equal(classes.counts, [2, 2, 2, 2, 2])
