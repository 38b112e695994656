"""Targets, fourth review: exact normalisation and stable labels of hierarchical teachers at large
outer degree, B alone on the median cut of a symmetric law, and the prose claims of the
hierarchical and moe docstrings."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial import hermite_e

from sparselearn import theory
from sparselearn.errors import ConfigError
from sparselearn.targets import hierarchical
from sparselearn.targets.hierarchical import Hierarchical, hermite_coeffs, hermite_normalized
from sparselearn.targets.inputs import draw
from sparselearn.targets.moe import MoE
from sparselearn.targets.sparse_mlp import SparseMLP


# ----------------------------------------------------------------------------- hierarchical
def he_int(q):
    """Integer coefficients of He_q, lowest degree first."""
    prev, cur = [1], [0, 1]
    for j in range(1, q):
        prev, cur = cur, [a - j * b for a, b in zip([0] + cur, prev + [0, 0])]
    return cur if q else prev


def gauss_expect(poly):
    """E poly(ξ), ξ ~ N(0, 1), for integer or rational coefficients: E ξ^d = (d − 1)!!."""
    return sum(c * math.prod(range(1, d, 2)) for d, c in enumerate(poly) if d % 2 == 0)


def exact_mean_square_and_variance(k, q):
    """(μ², σ²) of He_q(p)/√(q!) with p = He_k(ξ)/√(k!) (r = 1), exactly: composed as polynomials in ξ.
    He_q(z)² and He_q(z) each hold powers of z of one parity, so both are rational."""
    hk = he_int(k)
    powers = [[Fraction(1)]]                          # He_k(ξ)^i as a polynomial in ξ
    for _ in range(2 * q):
        last = powers[-1]
        powers.append([sum(last[i] * hk[d - i] for i in range(len(last)) if 0 <= d - i < len(hk))
                       for d in range(len(last) + len(hk) - 1)])
    moment = [gauss_expect(pw) for pw in powers]      # E He_k(ξ)^i; E p^i = moment[i] / k!^{i/2}
    hq = he_int(q)
    square = [sum(hq[i] * hq[d - i] for i in range(len(hq)) if 0 <= d - i < len(hq)) for d in range(2 * q + 1)]
    second = sum(c * Fraction(moment[d], math.factorial(k) ** (d // 2)) for d, c in enumerate(square) if d % 2 == 0)
    mean = sum(c * Fraction(moment[d], math.factorial(k) ** (d // 2)) for d, c in enumerate(hq) if d % 2 == q % 2)
    mean_sq = mean ** 2 / (math.factorial(k) if q % 2 else 1)    # odd powers of p carry 1/√(k!)
    return mean_sq / math.factorial(q), (second - mean_sq) / math.factorial(q)


@pytest.mark.parametrize("k, q", [(1, 34), (1, 48), (2, 23), (2, 24), (3, 16), (4, 12), (6, 8), (48, 1)])
def test_default_g_normalisation_equals_exact_rational_arithmetic(k, q):
    """μ and σ of g = He_q/√(q!) at r = 1 against rational arithmetic composed in ξ (no moment
    tables, no convolution). The monomial route gave σ = 1.059 at k = 1, q = 34 and 21 at q = 48."""
    mean_sq, var = exact_mean_square_and_variance(k, q)
    mu, sigma = Hierarchical(n=2, k=k, r=1, q=q).normalization
    assert sigma ** 2 == pytest.approx(float(var), rel=1e-12)
    assert mu ** 2 == pytest.approx(float(mean_sq), rel=1e-12, abs=1e-24 * float(var))
    if k == 1:
        assert (mu, sigma) == (0.0, 1.0)


@pytest.mark.parametrize("q", [36, 44, 48])
def test_default_g_labels_follow_float64_hermite_at_large_q(q):
    """k = 1: y against He_q(p)/√(q!) in float64 on the same inputs. Horner on the monomial
    coefficients gave corr(y, h) = 0.984 at q = 36 and −0.53 at q = 44."""
    t = Hierarchical(n=4, k=1, r=1, q=q)
    tp = t.init(jax.random.key(0))
    x, y = t.sample(tp, jax.random.key(1), 1 << 14)
    p = np.asarray(x, np.float64) @ np.asarray(tp["v"], np.float64)[:, 0]
    want = hermite_e.hermeval(p, [0] * q + [1]) / math.sqrt(math.factorial(q))
    y = np.asarray(y, np.float64)
    assert np.sqrt(np.mean((y - want) ** 2) / np.mean(want ** 2)) < 1e-4


def test_hermite_normalized_stays_finite_where_he_k_overflows_float32():
    """He_48(10) ≈ 1e41 is beyond float32; He_48(10)/√(48!) ≈ 3e10 is not."""
    z = np.array([10.0, -12.0, 0.3])
    want = hermite_e.hermeval(z, [0] * 48 + [1]) / math.sqrt(math.factorial(48))
    got = np.asarray(hermite_normalized(jnp.asarray(z, jnp.float32), 48), np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_a_user_g_whose_horner_rule_cancels_is_refused():
    """He_24's own monomial coefficients as g_coeffs at k = 1 cancel 1.8e5-fold; He_12's (293-fold) pass."""
    with pytest.raises(ConfigError) as err:
        Hierarchical(n=4, k=1, r=1, g_coeffs=hermite_coeffs(24))
    assert err.value.key == "g_coeffs" and "give q instead" in err.value.message
    assert Hierarchical(n=4, k=1, r=1, q=24).degree == 24          # the same g, by the recurrence


@pytest.mark.parametrize("g_coeffs, q", [(hermite_coeffs(12), 12), ((1e8, 0.0, 1.0), 2)])
def test_user_g_labels_equal_float64_evaluation(g_coeffs, q):
    """k = 1, so g(p) standardised is He_q(p)/√(q!) for both: a constant term of 1e8, which float32
    cannot add z² to, only shifts the mean."""
    t = Hierarchical(n=4, k=1, r=1, g_coeffs=g_coeffs)
    tp = t.init(jax.random.key(0))
    x, y = t.sample(tp, jax.random.key(1), 1 << 14)
    p = np.asarray(x, np.float64) @ np.asarray(tp["v"], np.float64)[:, 0]
    want = hermite_e.hermeval(p, [0] * q + [1]) / math.sqrt(math.factorial(q))
    np.testing.assert_allclose(np.asarray(y, np.float64), want, atol=1e-4 * np.abs(want).max())


def test_the_theory_functions_named_in_the_hierarchical_docstring_exist():
    names = re.findall(r"`theory\.(\w+)`", hierarchical.__doc__)
    assert names and all(callable(getattr(theory, name, None)) for name in names)


# ----------------------------------------------------------------------------- moe, r = 1
@pytest.mark.parametrize("top", [1, 2])
def test_a_rank_one_router_routes_at_most_two_top_experts(top):
    """Scores ±xA: over the whole cube, 2·top distinct experts are routed for these teachers."""
    n = 8
    idx = np.arange(2 ** n)
    x = jnp.asarray(1 - 2 * ((idx[:, None] >> np.arange(n)) & 1), jnp.float32)
    t = MoE(n=n, experts=6, expert_width=2, r=1, top=top)
    used = {len(np.unique(np.asarray(t.routes(t.init(jax.random.key(seed)), x)))) for seed in range(4)}
    assert max(used) == 2 * top


# ----------------------------------------------------------------------------- biased, active = ½
SYMMETRIC = [dict(n=15), dict(n=20), dict(n=8, inputs="gaussian"), dict(n=20, inputs="gaussian"),
             dict(n=16, inputs="biased", p=0.5)]


@pytest.mark.parametrize("fields", SYMMETRIC)
def test_b_alone_on_the_median_cut_of_a_symmetric_law_is_refused_at_any_n(fields):
    """Above n = 14 (or on Gaussian inputs) the biases were a sampled median, noise of order 0.01,
    and B alone scaled the teacher by it (n = 15: W = 51.7 against 0.97 at unit variance)."""
    with pytest.raises(ConfigError) as err:
        SparseMLP(s=16, k=16, construction="biased", active=0.5, B=1.0, **fields)
    assert err.value.key == "B"
    t = SparseMLP(s=16, k=16, construction="biased", active=0.5, W=2.0, **fields)
    assert t.norms(t.init(jax.random.key(0)))["W"] == pytest.approx(2.0, rel=1e-5)


@pytest.mark.parametrize("fields", SYMMETRIC[1:4])
def test_median_cut_biases_are_zero_and_each_unit_fires_on_half_the_inputs(fields):
    """The exact median of ⟨w_j, x⟩ is 0; each unit's active fraction on 2^16 fresh draws is
    within 5 standard errors of ½."""
    s, m = 32, 1 << 16
    t = SparseMLP(s=s, k=s, construction="biased", active=0.5, **fields)
    params = t.init(jax.random.key(3))
    assert np.all(np.asarray(params["b"]) == 0.0)
    x = draw(t.inputs, jax.random.key(9), m, t.n)
    fraction = np.asarray(jnp.mean(x @ params["w"].T - params["b"] > 0, axis=0))
    assert np.all(np.abs(fraction - 0.5) < 5 * math.sqrt(0.25 / m))


@pytest.mark.parametrize("fields", [dict(n=20, active=0.4), dict(n=16, active=0.5, inputs="biased", p=0.7)])
def test_b_alone_is_kept_where_the_quantile_is_not_zero(fields):
    t = SparseMLP(s=16, k=16, construction="biased", B=1.0, **fields)
    assert t.norms(t.init(jax.random.key(0)))["B"] == pytest.approx(1.0, rel=1e-5)


def test_coefficients_whose_moments_overflow_are_refused_naming_g_coeffs():
    """g = 1e200·(z + z²): the exact variance does not fit a float (an OverflowError, exit 1)."""
    from sparselearn.errors import ConfigError
    from sparselearn.targets.hierarchical import Hierarchical

    with pytest.raises(ConfigError, match="g_coeffs.*overflows a float"):
        Hierarchical(n=8, k=2, r=2, g_coeffs=(0.0, 1e200, 1e200))
    Hierarchical(n=8, k=2, r=2, g_coeffs=(0.0, 1e20, 1e20))   # large but representable: fine
