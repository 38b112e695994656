"""Fourier analysis: the fast transform against the definition, Parseval, sensitivities three
ways (definition, spectrum, Monte Carlo), and the proof-chain bounds on real sparse teachers."""

from __future__ import annotations

import functools
import itertools

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparselearn import analysis as fa
from sparselearn import theory
from sparselearn.targets.inputs import hypercube_points
from sparselearn.targets.parity import SparseParity
from sparselearn.targets.sparse_mlp import SparseMLP


def characters(n):
    """χ_T(x_i) for all (x_i, T) by the definition Π_{j∈T} x_j, shape (2^n, 2^n)."""
    x = np.asarray(hypercube_points(n, 0, 1 << n), np.float64)        # rows in enumeration order
    chi = np.ones((1 << n, 1 << n))
    for T in range(1 << n):
        for j in fa.set_of(T):
            chi[:, T] *= x[:, j]
    return chi


@functools.lru_cache(maxsize=None)
def sparse_teacher(construction, seed):
    """Truth table and spectrum of a random sparse teacher on {±1}^10 (k = 2, s = 16)."""
    t = SparseMLP(n=10, s=16, k=2, construction=construction)
    tp = t.init(jax.random.key(seed))
    values = fa.truth_table(lambda x: t.labels(tp, x), 10)
    return t, tp, values, fa.walsh_hadamard(values)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 8), seed=st.integers(0, 2 ** 16))
def test_fast_transform_equals_the_direct_sum(n, seed):
    f = np.random.default_rng(seed).normal(size=1 << n)
    direct = characters(n).T @ f / (1 << n)                    # O(4^n): f̂(T) = 2^{-n} Σ_x f(x) χ_T(x)
    fast = fa.walsh_hadamard(f)
    np.testing.assert_allclose(fast, direct, atol=1e-12)
    np.testing.assert_allclose(fa.inverse_walsh_hadamard(fast), f, atol=1e-12)
    assert np.sum(fast ** 2) == pytest.approx(np.mean(f ** 2))                 # Parseval
    assert np.sum(fa.degree_weights(fast)) == pytest.approx(np.mean(f ** 2))


def test_transform_batches_and_rejects_bad_lengths():
    f = np.random.default_rng(0).normal(size=(3, 16))
    np.testing.assert_allclose(fa.walsh_hadamard(f)[1], fa.walsh_hadamard(f[1]))
    with pytest.raises(ValueError):
        fa.walsh_hadamard(np.ones(12))


def test_enumeration_order_matches_the_character_convention():
    n = 5
    x = np.asarray(hypercube_points(n, 0, 32))
    for i, T in itertools.product(range(32), range(32)):
        assert np.prod(x[i, list(fa.set_of(T))]) == (-1) ** bin(i & T).count("1")
    assert fa.mask_of([0, 2]) == 5 and fa.set_of(5) == (0, 2)
    np.testing.assert_array_equal(fa.set_sizes(3), [0, 1, 1, 2, 1, 2, 2, 3])


def test_parity_spectrum_sensitivities_and_tail():
    n, k = 10, 3
    t = SparseParity(n=n, k=k)
    tp = t.init(jax.random.key(1))
    fn = lambda x: t.labels(tp, x)  # noqa: E731
    c = fa.spectrum(fn, n)
    S = fa.mask_of(np.asarray(tp["support"]))
    expected = np.zeros(1 << n)
    expected[S] = 1.0
    np.testing.assert_allclose(c, expected, atol=1e-12)           # the only non-zero coefficient is S
    assert fa.tail_mass(c, k - 1) == pytest.approx(1.0) and fa.tail_mass(c, k) == 0.0
    AS = fa.average_sensitivity(fn, n)
    assert AS.exact and AS.value == pytest.approx(k)              # every bit of S is pivotal
    NS = fa.noise_sensitivity(fn, n, 0.8)
    assert NS.exact and NS.value == pytest.approx(0.5 * (1 - 0.8 ** k))
    np.testing.assert_allclose(fa.influences(fa.truth_table(fn, n)),
                               [1.0 if i in set(np.asarray(tp["support"]).tolist()) else 0.0 for i in range(n)])


@pytest.mark.parametrize("construction", ["random", "dense_weight"])
def test_sensitivities_agree_three_ways(construction):
    t, tp, values, coeffs = sparse_teacher(construction, 0)
    as_direct = fa.average_sensitivity_exact(values)
    assert fa.average_sensitivity_fourier(coeffs) == pytest.approx(as_direct, rel=1e-9)
    for rho in (0.0, 0.5, 0.9):
        ns_direct = fa.noise_sensitivity_exact(values, rho)
        assert fa.noise_sensitivity_fourier(coeffs, rho) == pytest.approx(ns_direct, rel=1e-9, abs=1e-12)
    fn = lambda x: t.labels(tp, x)  # noqa: E731
    mc = fa.average_sensitivity_mc(fn, 10, key=jax.random.key(3), samples=2048)
    assert not mc.exact and "Monte Carlo" in str(mc)
    assert abs(mc.value - as_direct) < 5 * mc.stderr
    mc = fa.noise_sensitivity_mc(fn, 10, 0.5, key=jax.random.key(4), samples=1 << 14)
    assert abs(mc.value - fa.noise_sensitivity_exact(values, 0.5)) < 5 * mc.stderr


def test_noise_sensitivity_at_rho_zero_is_half_the_variance():
    _, _, values, _ = sparse_teacher("random", 0)
    assert fa.noise_sensitivity_exact(values, 0.0) == pytest.approx(0.5 * np.var(values))


@pytest.mark.parametrize("construction,seed", [("random", 0), ("random", 1), ("junta", 0), ("dense_weight", 0)])
def test_claim_2_1_and_lemmas_9_10_hold_on_sparse_teachers(construction, seed):
    t, tp, values, coeffs = sparse_teacher(construction, seed)
    norms = t.norms(tp)
    for rho in (0.3, 0.6, 0.9):
        ns = fa.noise_sensitivity_fourier(coeffs, rho)
        for d in range(1, 10):
            assert fa.tail_mass(coeffs, d) <= theory.tail_bound_claim21(ns, rho, d) + 1e-12
        # Lemma 10 with its O-constant set to 1 holds with a wide margin on these teachers
        assert ns <= theory.ns_bound_lemma10(10, t.s, t.k, norms["W"], norms["B"], rho)
    assert fa.average_sensitivity_fourier(coeffs) <= theory.as_bound_lemma9(10, t.s, t.k, norms["W"], norms["B"])


def test_low_degree_structure_of_the_random_construction():
    # a Hamming-ball unit reading L coordinates, times a linear jitter, has degree ≤ L + 1
    t, _, _, coeffs = sparse_teacher("random", 0)
    assert fa.tail_mass(coeffs, t.layout.bits + 1) < 1e-10


def test_large_n_falls_back_to_labelled_monte_carlo():
    t = SparseParity(n=24, k=2)
    tp = t.init(jax.random.key(0))
    est = fa.average_sensitivity(lambda x: t.labels(tp, x), 24, samples=256)
    assert not est.exact and est.samples == 256
    assert est.value == pytest.approx(2.0)                     # a parity's sensitivity is constant
    est = fa.noise_sensitivity(lambda x: t.labels(tp, x), 24, 0.5, samples=1 << 14)
    assert not est.exact and abs(est.value - 0.5 * (1 - 0.25)) < 5 * est.stderr
    with pytest.raises(ValueError):
        fa.truth_table(lambda x: x[:, 0], 24)


def test_top_coefficients_and_degree_weights():
    c = np.zeros(16)
    c[fa.mask_of([1])] = 0.6
    c[fa.mask_of([0, 2, 3])] = -0.8
    assert fa.top_coefficients(c) == [((0, 2, 3), -0.8), ((1,), 0.6)]
    np.testing.assert_allclose(fa.degree_weights(c), [0, 0.36, 0, 0.64, 0])
    assert fa.tail_mass(c, 1) == pytest.approx(0.64)
