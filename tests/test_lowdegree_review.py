"""Low-degree bases and fits, ReLU kernel closed forms and random features, against
independent references: enumeration of the cube, numpy's Hermite polynomials, Gauss–Hermite
quadrature, float64 least squares, float64 quadrature of the bivariate normal and Monte Carlo."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial import hermite_e
from scipy import integrate
from scipy.special import ndtr

from sparselearn.learners import kernels
from sparselearn.learners.kernels import KernelRidge, RandomFeatures
from sparselearn.learners.lowdegree import LowDegree, feature_count, features, terms


def _cube(n):
    return np.array(list(itertools.product([-1.0, 1.0], repeat=n)), np.float32)


def _hermite_reference(x, term_list):
    """Π_i He_{c_i}(x_i)/√(c_i!) in float64 by numpy, one column per multiset."""
    out = np.ones((len(x), len(term_list)))
    for col, term in enumerate(term_list):
        for i in set(term):
            c = term.count(i)
            out[:, col] *= hermite_e.hermeval(x[:, i], [0] * c + [1]) / math.sqrt(math.factorial(c))
    return out


def _lstsq(phi, y, weights, ridge):
    """float64 minimiser of (1/m) Σ w (φ·c − y)² + ridge ‖c‖² (minimum norm at ridge 0)."""
    m = weights.sum()
    wphi = phi * weights[:, None]
    if ridge == 0:
        return np.linalg.pinv(wphi, rcond=1e-10) @ (weights * y)
    return np.linalg.solve(wphi.T @ phi / m + ridge * np.eye(phi.shape[1]), wphi.T @ y / m)


# ---------------------------------------------------------------- bases


@pytest.mark.parametrize("n, d", [(3, 0), (4, 1), (4, 2), (5, 3), (3, 5)])
def test_walsh_features_are_the_characters_of_degree_at_most_d(n, d):
    x = _cube(n)
    phi = np.asarray(features(jnp.asarray(x), d, "walsh"), np.float64)
    sets = terms(n, d, "walsh")
    want = sum(math.comb(n, i) for i in range(min(d, n) + 1))
    assert phi.shape == (2**n, want) and feature_count(n, d, "walsh") == want
    assert set(sets) == {s for k in range(min(d, n) + 1) for s in itertools.combinations(range(n), k)}
    chars = np.stack([np.prod(x[:, list(s)], axis=1) for s in sets], axis=1)
    np.testing.assert_array_equal(phi, chars)
    np.testing.assert_array_equal(phi.T @ phi / len(x), np.eye(want))
    # auto on the cube: the same characters, and 0 on the multisets with a repeated index
    auto = np.asarray(features(jnp.asarray(x), d, "auto", True), np.float64)
    for col, s in enumerate(terms(n, d, "auto")):
        expect = np.zeros(len(x)) if len(set(s)) < len(s) else chars[:, sets.index(s)]
        np.testing.assert_array_equal(auto[:, col], expect)


@pytest.mark.parametrize("n, d", [(1, 7), (2, 4), (3, 3)])
def test_hermite_features_are_numpys_normalised_polynomials_and_orthonormal_by_quadrature(n, d):
    nodes, weights = hermite_e.hermegauss(d + 1)                  # exact to degree 2d + 1 per coordinate
    weights = weights / weights.sum()
    grid = np.array(list(itertools.product(nodes, repeat=n)))
    mass = np.prod(np.array(list(itertools.product(weights, repeat=n))), axis=1)
    phi = np.asarray(features(jnp.asarray(grid, jnp.float32), d, "hermite"), np.float64)
    assert phi.shape[1] == feature_count(n, d, "hermite") == math.comb(n + d, d)
    ref = _hermite_reference(grid.astype(np.float32).astype(np.float64), terms(n, d, "hermite"))
    np.testing.assert_allclose(phi, ref, rtol=2e-6, atol=2e-6 * np.abs(ref).max())
    np.testing.assert_allclose((phi * mass[:, None]).T @ phi, np.eye(phi.shape[1]), atol=2e-6)


def test_hermite_features_are_orthonormal_by_monte_carlo():
    n, d, m = 4, 3, 100_000
    x = np.random.default_rng(0).standard_normal((m, n)).astype(np.float32)
    phi = np.asarray(features(jnp.asarray(x), d, "hermite"), np.float64)
    gram = phi.T @ phi / m
    se = np.sqrt(np.maximum((phi**2).T @ phi**2 / m - gram**2, 0.0) / m)
    assert gram[0, 0] == 1.0 and se[0, 0] == 0.0                   # the constant
    z = (gram - np.eye(phi.shape[1]))[1:, 1:] / se[1:, 1:]
    assert np.abs(z).max() < 5.5, np.abs(z).max()                 # 34·35/2 entries


# ---------------------------------------------------------------- fits


@pytest.mark.slow
@pytest.mark.parametrize("basis, gaussian", [("walsh", False), ("auto", False), ("hermite", True), ("auto", True)])
@pytest.mark.parametrize("ridge", [0.0, 1e-3])
def test_fit_recovers_a_low_degree_polynomial_and_matches_float64_least_squares(basis, gaussian, ridge):
    rng = np.random.default_rng(1)
    n, d, m = 6, 3, 400
    draw = (lambda k: rng.standard_normal((k, n))) if gaussian else (lambda k: rng.choice([-1.0, 1.0], (k, n)))
    x, x_test = draw(m).astype(np.float32), draw(300).astype(np.float32)
    sets = terms(n, d, basis)
    live = [c for c, s in enumerate(sets) if gaussian or len(set(s)) == len(s)]
    true = np.zeros(len(sets))
    true[rng.choice(live, 6, replace=False)] = rng.uniform(0.5, 1.5, 6) * rng.choice([-1, 1], 6)
    phi = np.asarray(features(jnp.asarray(x), d, basis, not gaussian), np.float64)
    y = (phi @ true).astype(np.float32)
    weights = np.ones(m, np.float32)
    weights[-60:] = 0.0                                           # padding rows
    y[-60:] = 100.0
    ld = LowDegree(degree=d, basis=basis, ridge=ridge)
    params = ld.fit(jax.random.key(0), jnp.asarray(x), jnp.asarray(y), jnp.asarray(weights))
    assert bool(params["cube"]) == (not gaussian)
    coef = np.asarray(params["coef"], np.float64)
    ref = _lstsq(phi, y.astype(np.float64), weights.astype(np.float64), ridge)
    np.testing.assert_allclose(coef, ref, atol=2e-5)
    phi_test = np.asarray(features(jnp.asarray(x_test), d, basis, not gaussian), np.float64)
    err = np.mean((np.asarray(ld.apply(params, jnp.asarray(x_test))) - phi_test @ true) ** 2)
    ref_err = np.mean((phi_test @ ref - phi_test @ true) ** 2)
    assert abs(err - ref_err) <= 1e-3 * ref_err + 1e-9
    if ridge == 0:
        np.testing.assert_allclose(coef, true, atol=2e-5)         # noise-free: exact recovery


@pytest.mark.parametrize("basis", ["walsh", "auto"])
@pytest.mark.parametrize("ridge", [0.0, 1e-2])
def test_fewer_rows_than_features_is_the_float64_minimum_norm_or_ridge_solution(basis, ridge):
    rng = np.random.default_rng(2)
    n, d, m = 8, 3, 60                                            # 93 walsh / 165 auto features
    x = rng.choice([-1.0, 1.0], (m, n)).astype(np.float32)
    y = rng.standard_normal(m).astype(np.float32)
    weights = np.ones(m, np.float32)
    weights[-10:] = 0.0
    params = LowDegree(degree=d, basis=basis, ridge=ridge).fit(jax.random.key(0), jnp.asarray(x), jnp.asarray(y),
                                                               jnp.asarray(weights))
    phi = np.asarray(features(jnp.asarray(x), d, basis, True), np.float64)
    ref = _lstsq(phi, y.astype(np.float64), weights.astype(np.float64), ridge)
    np.testing.assert_allclose(np.asarray(params["coef"]), ref, atol=1e-5)


def test_keep_refits_the_largest_coefficients_like_numpy():
    rng = np.random.default_rng(3)
    n, d, m, ridge = 5, 2, 30, 1e-3
    x = rng.choice([-1.0, 1.0], (m, n)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] + 0.3 * x[:, 2] + 0.1 * rng.standard_normal(m)).astype(np.float32)
    params = LowDegree(degree=d, basis="walsh", ridge=ridge, keep=4).fit(jax.random.key(0), jnp.asarray(x), jnp.asarray(y))
    phi = np.asarray(features(jnp.asarray(x), d, "walsh"), np.float64)
    full = _lstsq(phi, y.astype(np.float64), np.ones(m), ridge)
    top = np.argsort(-np.abs(full))[:4]
    ref = np.zeros_like(full)
    ref[top] = _lstsq(phi[:, top], y.astype(np.float64), np.ones(m), ridge)
    np.testing.assert_allclose(np.asarray(params["coef"]), ref, atol=1e-6)


# ---------------------------------------------------------------- kernels


def _mixed_rows(d=5):
    """Rows of assorted norms, with a parallel (longer), an opposite and a nearly equal row."""
    rng = np.random.default_rng(4)
    u = rng.standard_normal((6, d)) * rng.uniform(0.4, 2.0, (6, 1))
    u[1], u[2], u[3] = 1.7 * u[0], -u[0], u[0] + 0.05 * rng.standard_normal(d)
    return u


def _assert_monte_carlo(closed, samples):
    """closed (a, a) against the mean of samples (a, a, R) within 5 standard errors."""
    mean = samples.mean(axis=-1)
    se = samples.std(axis=-1) / math.sqrt(samples.shape[-1])
    assert np.all(np.abs(closed - mean) <= 5 * se + 1e-6), np.max(np.abs(closed - mean) / (se + 1e-12))


@pytest.mark.parametrize("beta", [None, 0.0, 0.7, -0.5])
def test_relu_kernels_match_monte_carlo_over_random_features(beta):
    u = _mixed_rows()
    pre = u @ np.random.default_rng(5).standard_normal((u.shape[1], 100_000))
    t = 0.0 if beta is None else beta
    step, ramp = (pre > t).astype(np.float64), np.maximum(pre - t, 0.0)
    uj = jnp.asarray(u, jnp.float32)
    if beta is None:
        k0, k1, full = kernels.arccos0(uj, uj), kernels.arccos1(uj, uj), kernels.ntk(uj, uj)
        tangent = (u @ u.T)[..., None] * step[:, None] * step[None]
    else:
        k0, k1 = kernels.shifted_arccos0(uj, uj, beta), kernels.shifted_arccos1(uj, uj, beta)
        full = kernels.bias_ntk(uj, uj, beta)
        tangent = (u @ u.T + 1.0)[..., None] * step[:, None] * step[None]
    _assert_monte_carlo(np.asarray(k0, np.float64), step[:, None] * step[None])
    _assert_monte_carlo(np.asarray(k1, np.float64), ramp[:, None] * ramp[None])
    _assert_monte_carlo(np.asarray(full, np.float64), ramp[:, None] * ramp[None] + tangent)


def _bivariate(rho, h, k):
    """(P(Z > h, Z' > k), E[(Z − h)₊(Z' − k)₊]) for standard normals of correlation ρ, float64,
    by integrating over Z the closed-form conditional law of Z' (ρ = ±1 directly)."""
    pdf = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    s = math.sqrt(max(1.0 - rho * rho, 0.0))
    if s == 0.0:
        lo, hi = (max(h, k), math.inf) if rho > 0 else (h, -k)
        if hi <= lo:
            return 0.0, 0.0
        second = integrate.quad(lambda z: (z - h) * (rho * z - k) * pdf(z), lo, hi)[0]
        return float(ndtr(hi) - ndtr(lo)), second

    def ramp(z):                                                  # E[(Z' − k)₊ | Z = z]
        a = (k - rho * z) / s
        return s * pdf(a) + (rho * z - k) * ndtr(-a)

    first = integrate.quad(lambda z: pdf(z) * ndtr((rho * z - k) / s), h, math.inf, epsabs=1e-13)[0]
    second = integrate.quad(lambda z: (z - h) * pdf(z) * ramp(z), h, math.inf, epsabs=1e-13)[0]
    return first, second


@pytest.mark.parametrize("beta", [0.0, 0.4, 1.5, -0.8])
def test_shifted_kernels_match_float64_quadrature(beta):
    for (ru, rv), theta in itertools.product([(1.0, 1.0), (1.0, 1.3), (0.6, 2.0)],
                                             [0.0, 1e-2, 0.4, 1.2, math.pi / 2, 2.4, math.pi - 1e-2, math.pi]):
        u = jnp.asarray([[ru, 0.0]], jnp.float32)
        v = jnp.asarray([[rv * math.cos(theta), rv * math.sin(theta)]], jnp.float32)
        orthant, moment = _bivariate(math.cos(theta), beta / ru, beta / rv)
        got0 = float(kernels.shifted_arccos0(u, v, beta)[0, 0])
        got1 = float(kernels.shifted_arccos1(u, v, beta)[0, 0])
        assert abs(got0 - orthant) < 2e-6, (ru, rv, theta, got0, orthant)
        assert abs(got1 - ru * rv * moment) < 4e-6 * max(1.0, ru * rv), (ru, rv, theta, got1, ru * rv * moment)


def test_random_features_approach_arccos1_kernel_ridge():
    rng = np.random.default_rng(6)
    n, m, ridge = 8, 100, 1e-2
    x = rng.choice([-1.0, 1.0], (m, n)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] + 0.5 * x[:, 2]).astype(np.float32)
    x_test = jnp.asarray(rng.choice([-1.0, 1.0], (200, n)).astype(np.float32))
    weights = np.ones(m, np.float32)
    weights[-20:] = 0.0
    args = (jax.random.key(0), jnp.asarray(x), jnp.asarray(y), jnp.asarray(weights))
    kr = KernelRidge(kernel="arccos1", ridge=ridge, bias=1.0)
    exact = np.asarray(kr.apply(kr.fit(*args), x_test), np.float64)
    # the same fit in float64 numpy
    u = np.hstack([x[:80] / math.sqrt(n), np.ones((80, 1))]).astype(np.float64)
    ut = np.hstack([np.asarray(x_test) / math.sqrt(n), np.ones((200, 1))])

    def arccos1(a, b):
        norms = np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1))
        cos = np.clip(a @ b.T / norms, -1, 1)
        return norms * (np.sqrt(1 - cos**2) + (np.pi - np.arccos(cos)) * cos) / (2 * np.pi)

    alpha = np.linalg.solve(arccos1(u, u) + ridge * 80 * np.eye(80), y[:80])
    np.testing.assert_allclose(exact, arccos1(ut, u) @ alpha, atol=1e-5)

    def rms(width):
        errs = []
        for seed in range(2):
            rf = RandomFeatures(width=width, ridge=ridge, bias=1.0)
            params = rf.fit(jax.random.key(seed), *args[1:])
            errs.append(np.sqrt(np.mean((np.asarray(rf.apply(params, x_test)) - exact) ** 2)))
        return float(np.mean(errs))

    small, large = rms(512), rms(8192)
    assert large < 0.45 * small and large < 0.03, (small, large)   # ~ 1/√width: 0.25 expected


@pytest.mark.parametrize("m", [300, 150])
def test_ridge_zero_is_least_squares_on_features_float32_still_resolves(m):
    """Hermite features of degree 6 on N(0, I₄): N = 210 columns, cond(φ) ≈ 10³-10⁴, so the
    normal equations (cond²) lose in float32 what φ itself resolves. At ridge 0 the fit is float64
    least squares (minimum norm with m = 150 < N rows): the train MSE equals it, and a target in
    the span, He₆(x₀)/√6! + x₀x₁, is recovered (the Gram pseudo-inverse left it 0.2 off)."""
    rng = np.random.default_rng(5)
    n, d = 4, 6
    x = rng.standard_normal((m, n))
    phi32 = features(jnp.asarray(x, jnp.float32), d, "hermite")
    phi = np.asarray(phi32, np.float64)
    ld = LowDegree(degree=d, basis="hermite", ridge=0.0)
    noisy = x[:, 0] * x[:, 1] + 0.2 * rng.standard_normal(m)
    coef = np.asarray(ld.fit(None, jnp.asarray(x, jnp.float32), jnp.asarray(noisy, jnp.float32))["coef"], np.float64)
    best = np.linalg.lstsq(phi, noisy, rcond=None)[0]
    mse = [np.mean((phi @ c - noisy) ** 2) for c in (coef, best)]
    assert mse[0] == pytest.approx(mse[1], rel=1e-3, abs=1e-6), mse
    if m > phi.shape[1]:
        ts = terms(n, d, "hermite")
        true = np.zeros(len(ts))
        true[ts.index((0,) * 6)] = true[ts.index((0, 1))] = 1.0
        fit = ld.fit(None, jnp.asarray(x, jnp.float32), jnp.asarray(phi @ true, jnp.float32))
        assert np.max(np.abs(np.asarray(fit["coef"]) - true)) < 1e-3


def test_random_features_at_ridge_zero_reach_the_least_squares_minimum():
    """200 ReLU features of 400 rows on the cube (rank-deficient: cond ≈ 10¹⁹): the readout's train
    MSE is float64 least squares' minimum (the Gram pseudo-inverse stopped at 0.55 against 0.31)."""
    rng = np.random.default_rng(5)
    x = rng.choice([-1.0, 1.0], size=(400, 10))
    y = x[:, 0] * x[:, 1] * x[:, 2] + 0.3 * rng.standard_normal(400)
    rf = RandomFeatures(width=200, ridge=0.0)
    params = rf.fit(jax.random.key(0), jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    feats = np.asarray(rf.features(params, jnp.asarray(x, jnp.float32)), np.float64)
    best = np.linalg.lstsq(feats, y, rcond=None)[0]
    mse = [np.mean((feats @ c - y) ** 2) for c in (np.asarray(params["c"], np.float64), best)]
    assert mse[0] == pytest.approx(mse[1], rel=1e-3), mse


def test_integer_inputs_fit_as_their_float_values():
    """±1 bits as int32 (as GF2 takes them): the same fit as float32 inputs; the Walsh features
    of ints used to cast the ridge 0.5 to 0, and random features raised on the int dtype."""
    rng = np.random.default_rng(0)
    bits = rng.choice([-1, 1], size=(40, 5)).astype(np.int32)
    y = jnp.asarray(bits[:, 0] * bits[:, 1], jnp.float32)
    as_float = jnp.asarray(bits, jnp.float32)
    for learner in (LowDegree(degree=2, basis="walsh", ridge=0.5), RandomFeatures(width=16, bias=0.5),
                    KernelRidge(ridge=0.5)):
        fits = [learner.fit(jax.random.key(0), jnp.asarray(xs), y) for xs in (bits, as_float)]
        np.testing.assert_allclose(learner.apply(fits[0], as_float), learner.apply(fits[1], as_float), atol=1e-6)
        np.testing.assert_allclose(learner.apply(fits[1], jnp.asarray(bits)), learner.apply(fits[1], as_float), atol=1e-6)


def test_a_feature_count_over_max_terms_is_refused_by_the_config_check_naming_the_degree(monkeypatch):
    """The fit's own limit on the feature count is checked with the config, not first met
    inside the run (where it raised a ValueError and a traceback)."""
    from sparselearn import config
    from sparselearn.errors import ConfigError
    from sparselearn.learners import lowdegree

    monkeypatch.setattr(lowdegree, "MAX_TERMS", 100)
    with pytest.raises(ConfigError, match="299 walsh features.*over the 100") as err:
        config.loads("target: {name: sparse_parity, n: 12, k: 3}\n"
                     "learner: {name: lowdegree, degree: 3, basis: walsh}\n"
                     "train: {loss: square}\ndata: {m: 16, test_m: 16}\n")
    assert err.value.key == "learner.degree"
