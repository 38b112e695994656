"""The science numerics: feature counts, the GF(2) sample search, the
truth-table contract, tail mass at negative degree, and censored runs marked +inf."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparselearn import analysis as fa
from sparselearn import theory as th
from sparselearn.plotting.significance import compare_reach


def test_num_features_is_an_exact_count():
    for n in range(1, 31):
        for d in range(0, 7):
            exact = sum(math.comb(n, i) for i in range(d + 1))
            assert int(th.num_features(n, d)) == exact, (n, d)
    for n, d in ((150, 8), (2000, 5), (64, 64), (64, 200)):    # up to 2⁵³, where floats hold every count
        assert int(th.num_features(n, d)) == sum(math.comb(n, i) for i in range(min(d, n) + 1)), (n, d)
    grid = th.num_features(np.array([3, 5, 12]), np.array([1, 3, 4]))
    np.testing.assert_array_equal(grid.astype(int), [4, 26, 794])


@pytest.mark.parametrize("delta", [0.0, 1.5, np.nan])
def test_gf2_samples_rejects_delta_outside_the_unit_interval(delta):
    with pytest.raises(ValueError, match="delta"):
        th.gf2_samples(10, delta)


@pytest.mark.parametrize("args, key", [((20, 2, 5.0, 0.1), "eps"), ((20, 2, 1.0, 0.1), "eps"),
                                       ((20, 2, 0.1, 0.0), "delta"), ((20, 30, 0.1, 0.1), "k"),
                                       (([20, 40], [2, 0], 0.1, 0.1), "k")])
def test_polynet_iterations_names_the_argument_outside_its_range(args, key):
    """ε ≥ 2k made log(2k/ε) ≤ 0 and the fixed-point iteration a math domain error."""
    with pytest.raises(ValueError, match=f"^{key} must lie in"):
        th.polynet_iterations(*args)


@pytest.mark.parametrize("args, key", [((-1, 2, 10), "s"), ((4, 0, 10), "k"), ((4, 2, [10, 0]), "m")])
def test_excess_risk_minimax_wants_positive_sizes(args, key):
    with pytest.raises(ValueError, match=f"^{key} must be positive"):
        th.excess_risk_minimax(*args)


def test_truth_table_rejects_a_column_output():
    column = lambda x: (x[:, 0] * x[:, 1])[:, None]     # (m, 1), not (m,)
    with pytest.raises(ValueError, match=r"shape \(m,\)"):
        fa.truth_table(column, 3)
    with pytest.raises(ValueError, match=r"shape \(m,\)"):
        fa.average_sensitivity(column, 3)
    assert fa.average_sensitivity(lambda x: x[:, 0] * x[:, 1], 3).value == pytest.approx(2.0)


def test_tail_mass_below_degree_zero_is_the_whole_mass():
    coeffs = fa.spectrum(lambda x: 0.5 + x[:, 0] * x[:, 1], 3)
    total = float(np.sum(coeffs ** 2))
    assert fa.tail_mass(coeffs, -1) == pytest.approx(total)
    assert fa.tail_mass(coeffs, -2) == pytest.approx(total)


def test_infinite_steps_count_as_unreached_in_both_tests():
    nan_arm = compare_reach([100, 200, np.nan, np.nan], [np.nan] * 4, cap=1000)
    inf_arm = compare_reach([100, 200, np.inf, np.inf], [np.inf] * 4, cap=1000)
    assert inf_arm.reached == nan_arm.reached == (2, 0)
    assert inf_arm.fisher_p == pytest.approx(nan_arm.fisher_p)
    assert inf_arm.logrank_p == pytest.approx(nan_arm.logrank_p)


def test_reach_rejects_minus_infinity_and_a_non_finite_cap():
    with pytest.raises(ValueError, match="negative"):
        compare_reach([-np.inf, 5], [np.nan], cap=10)
    with pytest.raises(ValueError, match="cap"):
        compare_reach([5], [np.nan], cap=np.nan)


def test_truth_table_chunks_that_do_not_divide_two_to_the_n():
    fn = lambda x: x[:, 0] * x[:, 1] + x[:, 3]
    np.testing.assert_array_equal(fa.truth_table(fn, 4, chunk=5), fa.truth_table(fn, 4))


def test_an_error_of_exactly_eps_counts_as_reached_as_in_the_training_loop():
    """50 errors in 1,000 test points at eps = 0.05: the loop compares in float32 and calls it
    reached; the stored float64 value is 0.0500000007, which must not read as a miss."""
    import json

    import pandas as pd

    from sparselearn.plotting.curves import first_step
    from sparselearn.plotting.phase import success_table
    from sparselearn.schema import within_eps

    stored = float(np.float32(50 / 1000))
    assert stored > 0.05 and within_eps(stored, 0.05) and not within_eps(float(np.float32(51 / 1000)), 0.05)
    curves = pd.DataFrame({"run_id": ["a", "a", "b"], "step": [0, 100, 0], "test_error": [0.5, stored, 0.5]})
    steps = first_step(curves, eps=0.05)
    assert steps["a"] == 100 and np.isnan(steps["b"])
    runs = pd.DataFrame({"status": "ok", "eps": 0.05, "test_error": [stored, 0.2],
                         "grid": [json.dumps({"data.m": 64, "target.n": 10}), json.dumps({"data.m": 128, "target.n": 10})]})
    assert success_table(runs, "data.m", "target.n").loc[10].tolist() == [1.0, 0.0]
