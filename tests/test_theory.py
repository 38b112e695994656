"""Theory overlays: each closed form against a direct evaluation, a brute-force count, a known
value, or the ordering/monotonicity the theorem implies."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sparselearn import theory as th

M = np.logspace(1, 7, 40)
SETTING = dict(W=1.0, B=2.0, R=math.sqrt(50))      # A = W·R on the cube {±1}^50


def test_rademacher_bounds_match_their_formulas():
    n, s, k, m, W, B, R = 50, 256, 4, 1e4, 1.0, 2.0, math.sqrt(50)
    A = W * R
    assert th.rademacher_adkm_k1(n, s, m, W, B, R) == pytest.approx(
        (A + B) * math.sqrt(s * n * math.log(m * (R + B)) / m))
    assert th.rademacher_adkm(n, s, k, m, W, B, R) == pytest.approx(
        (A + B) * math.sqrt(s * n * k * math.log(k * m * (R + B)) / m))
    assert th.rademacher_conjecture20(s, k, m, W, B, R) == pytest.approx((A + B) * math.sqrt(s * k / m))
    assert th.rademacher_dense(s, m, W, B, R) == pytest.approx((A + B) * s / math.sqrt(m))
    rho = th.rademacher_sum_abs(m)
    main = A * min(k, math.sqrt(s * k / m) * math.log(2 * m) ** 1.5) + k * B * rho
    assert th.rademacher_lsjgh_upper(s, k, m, W, B, R) == pytest.approx(
        min(main, k * (A + B), 2 * s * (A + B) / math.sqrt(m)))
    assert th.rademacher_lsjgh_lower(s, k, m, W, B, R) == pytest.approx(
        (A * min(k, math.sqrt(s * k / m)) + k * B / math.sqrt(m)) / (4 * math.sqrt(2)))
    assert th.rademacher_zero_bias(k, m, W, R) == pytest.approx(4 * k * A / math.sqrt(m))
    # k = 1 of Eq. (15) is Theorem 19
    assert th.rademacher_adkm(n, s, 1, M, W, B, R) == pytest.approx(th.rademacher_adkm_k1(n, s, M, W, B, R))


def test_rademacher_sum_abs_against_enumeration():
    for m in range(1, 13):
        sums = [abs(sum(z)) for z in itertools.product((-1, 1), repeat=m)]
        assert th.rademacher_sum_abs(m) == pytest.approx(np.mean(sums) / m)
    m = np.array([1, 10, 100, 10 ** 4, 10 ** 6])
    rho = th.rademacher_sum_abs(m)
    assert np.all(rho >= 1 / np.sqrt(3 * m)) and np.all(rho <= 1 / np.sqrt(m) + 1e-12)
    assert rho[-1] * math.sqrt(10 ** 6) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-3)   # CLT limit


@pytest.mark.parametrize("s,k", [(64, 1), (256, 4), (1024, 16), (32, 32)])
def test_rademacher_orderings(s, k):
    n = 50
    upper = th.rademacher_lsjgh_upper(s, k, M, **SETTING)
    lower = th.rademacher_lsjgh_lower(s, k, M, **SETTING)
    assert np.all(upper >= lower)                            # Thm 2 (C = 1) sits above Thm 3
    settled = M >= s / k                                      # Conjecture 20 up to log^{3/2} m
    ratio = upper[settled] / lower[settled] / np.log(2 * M[settled]) ** 1.5
    assert np.all(ratio <= 4 * math.sqrt(2) * (1 + 1e-9))
    conj = th.rademacher_conjecture20(s, k, M, **SETTING)
    assert np.all(conj <= th.rademacher_adkm(n, s, k, M, **SETTING))       # ADKM loose by ≈ √(n log)
    assert np.all(conj <= th.rademacher_dense(s, M, **SETTING) + 1e-12)    # k ≤ s
    for bound in (upper, lower, conj, th.rademacher_adkm(n, s, k, M, **SETTING), th.rademacher_dense(s, M, **SETTING)):
        assert np.all(np.diff(bound) <= 1e-12)                # more samples never hurt


def test_lower_bound_needs_enough_dimensions():
    assert np.isnan(th.rademacher_lsjgh_lower(64, 2, 1e4, 1, 1, 1, n=10))   # q = min(32, m) = 32 > 10
    assert np.isfinite(th.rademacher_lsjgh_lower(64, 2, 1e4, 1, 1, 1, n=32))


def test_minimax_excess_risk():
    lower, upper = th.excess_risk_minimax(256, 4, M)
    assert np.all(lower <= upper)
    assert th.MINIMAX_C1 == pytest.approx((1 - math.sqrt(3) / 2) ** 2 / (64 * math.sqrt(2)))
    assert lower[0] == pytest.approx(th.MINIMAX_C1)          # m = 10 < s/k: saturated at c₁
    assert th.excess_risk_minimax(256, 4, 6400)[0] == pytest.approx(th.MINIMAX_C1 * 0.1)
    assert th.sample_complexity_minimax(256, 4, 0.1) == pytest.approx(6400)


def test_sample_complexities():
    n, s, k, eps, delta, W, B, R = 50, 1024, 2, 0.1, 0.05, 1.0, 1.0, math.sqrt(50)
    sparse = th.sample_complexity_sparse(n, s, k, eps, delta, W, B, R)
    direct = ((W * R + B) ** 2 * k * s * n * math.log(k * (R + B) / eps) + math.log(1 / delta)) / eps ** 2
    assert sparse == pytest.approx(direct)
    dense = th.sample_complexity_dense(s, eps, delta, W, B, R)
    assert dense == pytest.approx(((W * R + B) ** 2 * s ** 2 + math.log(1 / delta)) / eps ** 2)
    assert sparse < dense                                    # k·n·log ≪ s: sparsity pays
    small_s = th.sample_complexity_sparse(n, 64, 8, eps, delta, W, B, R)
    assert small_s > th.sample_complexity_dense(64, eps, delta, W, B, R)      # but not when k·n ≳ s
    eps_grid = np.linspace(0.01, 0.5, 20)
    assert np.all(np.diff(th.sample_complexity_sparse(n, s, k, eps_grid, delta, W, B, R)) < 0)
    for grid_arg in ("n", "s", "k"):
        args = dict(n=n, s=s, k=k)
        args[grid_arg] = np.array([2, 4, 8, 16])
        assert np.all(np.diff(th.sample_complexity_sparse(**args, eps=eps, delta=delta, W=W, B=B, R=R)) > 0)


def test_low_degree_algorithm_rates():
    assert th.output_bound(16, 2, 1.0, 3.0) == pytest.approx(2 * (4 + 3))
    assert th.num_features(10, 2) == 1 + 10 + 45
    np.testing.assert_allclose(th.num_features(np.array([5, 20]), 20), [32, 2 ** 20])
    d = th.lowdegree_degree(20, 64, 2, 1.0, 1.0, 0.5)
    assert d == pytest.approx((2 ** 8 * math.log(20 * 64) ** 4 + 2 ** 6 * math.log(64)) / 0.25)
    direct = 20 ** 3 * th.output_bound(20, 2, 1, 1) ** 2 * math.log(1 / 0.1) / 0.1
    assert th.lowdegree_samples(20, 3, 2, 1, 1, 0.1, 0.1) == pytest.approx(direct)
    assert th.lowdegree_samples(20, 3, 2, 1, 1, 0.1, 0.1, log10=True) == pytest.approx(math.log10(direct))
    assert np.isfinite(th.lowdegree_samples(100, 1e4, 2, 1, 1, 0.1, 0.1, log10=True))


def test_sensitivity_bounds():
    assert th.tail_bound_claim21(0.1, 0.5, 2) == pytest.approx(0.2 / 0.75)
    assert th.halfspace_as_lemma6(100, 0.1) == pytest.approx(0.1 * math.sqrt(100 * math.log(10)))
    rho = np.linspace(0.1, 0.99, 10)
    ns = th.ns_bound_lemma10(20, 64, 2, 1.0, 1.0, rho)
    assert np.all(np.isfinite(ns)) and ns[-1] < ns[0]          # √(1 − ρ) wins as ρ → 1
    n = np.array([10, 100, 1000])
    assert np.all(np.diff(th.as_bound_lemma9(n, 64, 2, 1.0, 1.0)) > 0)


def test_parity_rates():
    assert th.parity_sq_queries(30, 3) == pytest.approx(math.comb(30, 3))
    assert th.parity_sgd_samples(30, 3) == pytest.approx(900)
    assert th.parity_fourier_gap(30, 3) ** -2 == pytest.approx(th.parity_sgd_samples(30, 3))
    assert th.parity_information_samples(30, 3) == pytest.approx(math.log2(math.comb(30, 3)))
    assert th.hidden_progress_tc(50, 3, c=2.0, alpha=0.5) == pytest.approx(2 * 50 ** 1.5)
    assert th.barak_batch_size(30, 2, 0.1) == pytest.approx(900 * math.log(300))
    assert th.barak_iterations(30, 2, 100, 0.1) == pytest.approx(8 * 1e4 * 30 / 0.01)
    assert th.barak_min_width(4, 0.1) == pytest.approx(16 * 4 * math.log(40))
    assert th.edelman_independent_steps(50, 3, 1000, 100, 0.5) == pytest.approx(
        math.comb(50, 3) * 0.5 / (2 * 1000 * 100))
    assert th.sparse_init_width(60, 3, 2) == pytest.approx(30 ** 3)
    assert th.sparse_init_samples(60, 3, 6) == pytest.approx(4 * 3600 * math.log(60))
    assert th.sign_sgd_neurons(4) == 16


def test_gf2_rank_probability_against_enumeration():
    n = 3
    vectors = list(itertools.product((0, 1), repeat=n))

    def rank(rows):
        rows, r = [int("".join(map(str, v)), 2) for v in rows], 0
        for bit in reversed(range(n)):
            pivot = next((x for x in rows if x >> bit & 1), None)
            if pivot is None:
                continue
            rows = [x ^ pivot if x >> bit & 1 else x for x in rows if x != pivot]
            r += 1
        return r

    for m in range(1, 6):
        full = np.mean([rank(rows) == n for rows in itertools.product(vectors, repeat=m)])
        assert th.gf2_full_rank_probability(n, m) == pytest.approx(full)
    m = th.gf2_samples(np.array([10, 100]), 0.01)
    assert np.all(m >= [10, 100]) and np.all(m <= np.array([10, 100]) + math.log2(100) + 2)
    assert th.gf2_full_rank_probability(100, m[1]) >= 0.99 > th.gf2_full_rank_probability(100, m[1] - 1)


def test_polynet_iterations_solve_the_implicit_inequality():
    n, k, eps, delta = 30, 3, 0.1, 0.1
    T = th.polynet_iterations(n, k, eps, delta)
    def rhs(t):
        return 6 * math.log(2 * n * t / delta) * math.log(2 * k / eps) * (3 * n / k - 2) ** (2 * k - 1)

    assert T >= rhs(T) * (1 - 1e-9)
    assert T * 0.999 < rhs(T * 0.999)                          # and it is the smallest such T
    assert np.all(np.diff(th.polynet_iterations(np.array([12, 24, 48]), 3, eps, delta)) > 0)


def test_hierarchical_rates():
    d = np.array([16, 24, 32, 40])
    three = th.hierarchical_samples_three_layer(d, 3)
    kernel = th.hierarchical_samples_kernel(d, 3, 3)
    np.testing.assert_allclose(three, d ** 3.0)
    np.testing.assert_allclose(kernel / three, d ** 6.0)        # the kernel gap is d^{k(q−1)}
    assert th.hierarchical_samples_three_layer(32, 2) == 32 ** 2


def test_fit_power_law_recovers_exponents():
    n = np.array([10, 20, 30, 40, 50, 60])
    c, alpha = th.fit_power_law(n, 3.0 * n ** 1.8)
    assert c == pytest.approx(3.0) and alpha == pytest.approx(1.8)
    c, alpha = th.fit_power_law([1, 2, -1, np.nan, 4], [1, 4, 5, 6, 16])      # bad points ignored
    assert alpha == pytest.approx(2.0)
    with pytest.raises(ValueError):
        th.fit_power_law([1], [1])


def test_log_comb_matches_math_comb():
    for n, k in [(10, 3), (50, 25), (7, 0), (7, 7)]:
        assert math.exp(th.log_comb(n, k)) == pytest.approx(math.comb(n, k))
    assert th.log_comb(5, 6) == -np.inf
