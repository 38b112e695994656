"""Edge cases of the Fourier-analysis helpers and the theory overlays: batched tables, ρ outside
[−1, 1], degenerate Monte Carlo sizes, and the limits of the Lemma 6/10 bounds and N_d."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from sparselearn import analysis as fa
from sparselearn import theory


def _tables(count=3, n=4, seed=0):
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(count, 1 << n))


@pytest.mark.parametrize("fn", [fa.average_sensitivity_fourier, fa.average_sensitivity_exact, fa.influences,
                                fa.degree_weights, fa.top_coefficients,
                                lambda a: fa.tail_mass(a, 1), lambda a: fa.noise_sensitivity_fourier(a, 0.5),
                                lambda a: fa.noise_sensitivity_exact(a, 0.5)])
def test_one_function_helpers_reject_a_batch(fn):
    # walsh_hadamard takes a batch; before, feeding its output on gave the batch's sum of AS from the
    # spectrum but the batch's mean from the table, and cryptic numpy errors elsewhere
    batch = fa.walsh_hadamard(_tables())
    with pytest.raises(ValueError, match="one function"):
        fn(batch)


def test_per_row_sensitivities_still_agree():
    tables = _tables()
    for values, coeffs in zip(tables, fa.walsh_hadamard(tables)):
        assert fa.average_sensitivity_exact(values) == pytest.approx(fa.average_sensitivity_fourier(coeffs))


def test_empty_table_is_reported_as_a_bad_length():
    with pytest.raises(ValueError, match="power of 2"):
        fa.degree_weights(np.zeros(0))


@pytest.mark.parametrize("rho", [1.5, -2.0, float("nan")])
def test_noise_helpers_reject_rho_outside_the_unit_interval(rho):
    values = _tables(1)[0]
    for call in (lambda: fa.noise_operator(values, rho), lambda: fa.noise_sensitivity_exact(values, rho),
                 lambda: fa.noise_sensitivity_fourier(fa.walsh_hadamard(values), rho),
                 lambda: fa.noise_sensitivity_mc(lambda x: x[:, 0], 3, rho, key=jax.random.key(0), samples=8)):
        with pytest.raises(ValueError, match="rho"):
            call()


def test_noise_sensitivity_against_pair_enumeration():
    n = 4
    values = np.random.default_rng(1).normal(size=1 << n)
    for rho in (-1.0, -0.4, 0.0, 0.3, 1.0):
        brute = 0.0
        for x in range(1 << n):
            for y in range(1 << n):
                d = bin(x ^ y).count("1")
                brute += ((1 - rho) / 2) ** d * ((1 + rho) / 2) ** (n - d) * 0.25 * (values[x] - values[y]) ** 2
        brute /= 1 << n
        assert fa.noise_sensitivity_exact(values, rho) == pytest.approx(brute, abs=1e-12)


@pytest.mark.parametrize("mc", [lambda s: fa.average_sensitivity_mc(lambda x: x[:, 0], 3, key=jax.random.key(0), samples=s),
                                lambda s: fa.noise_sensitivity_mc(lambda x: x[:, 0], 3, 0.5, key=jax.random.key(0), samples=s)])
def test_monte_carlo_needs_two_samples_for_a_standard_error(mc):
    with pytest.raises(ValueError, match="samples"):
        mc(1)
    assert np.isfinite(mc(2).stderr)


def test_lemma6_bound_is_zero_for_a_unit_that_never_fires():
    p = np.array([0.0, 1e-12, 0.5, 1.0])
    out = theory.halfspace_as_lemma6(16, p)
    assert out[0] == 0.0 and out[1] < 1e-10 and out[3] == 0.0
    assert np.isnan(theory.halfspace_as_lemma6(16, -0.1))


def test_lemma10_bound_tends_to_zero_at_rho_one():
    rho = np.array([0.9, 1 - 1e-12, 1.0])
    out = theory.ns_bound_lemma10(10, 16, 2, 1.0, 1.0, rho)
    assert out[2] == 0.0 and out[1] < 1e-3 * out[0]
    assert np.isnan(theory.ns_bound_lemma10(10, 16, 2, 1.0, 1.0, 1.5))


def test_num_features_floors_fractional_degrees():
    d = np.array([-0.5, -1.0, 0.0, 2.7, 3.0, 12.0])
    expected = [sum(math.comb(10, i) for i in range(math.floor(v) + 1)) for v in d]
    np.testing.assert_array_equal(theory.num_features(10, d), expected)
