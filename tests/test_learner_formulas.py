"""Learner formulas against exact answers: bases by quadrature or enumeration, kernels by
Monte Carlo, and the ridge-free solve on singular systems."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn.learners import kernels
from sparselearn.learners.kernels import KernelRidge, RandomFeatures
from sparselearn.learners.layerwise import Layerwise
from sparselearn.learners.lowdegree import LowDegree, feature_count, features, hermite_table


def test_normalised_hermite_polynomials_are_orthonormal_under_the_gaussian():
    nodes, weights = np.polynomial.hermite_e.hermegauss(30)            # exact to degree 59
    weights = weights / weights.sum()
    table = np.asarray(hermite_table(jnp.asarray(nodes, jnp.float32), 6))
    np.testing.assert_allclose((table * weights[:, None]).T @ table, np.eye(7), atol=1e-6)
    grid = np.array(list(itertools.product(nodes, repeat=2)), np.float32)
    mass = np.prod(np.array(list(itertools.product(weights, repeat=2))), axis=1)
    phi = np.asarray(features(jnp.asarray(grid), 3, "hermite"))
    assert phi.shape[1] == feature_count(2, 3, "hermite") == 10
    np.testing.assert_allclose((phi * mass[:, None]).T @ phi, np.eye(10), atol=1e-6)


def test_walsh_characters_are_orthonormal_on_the_whole_cube():
    cube = np.array(list(itertools.product([-1.0, 1.0], repeat=6)), np.float32)
    phi = np.asarray(features(jnp.asarray(cube), 3, "walsh"))
    assert phi.shape[1] == feature_count(6, 3, "walsh") == 1 + 6 + 15 + 20
    np.testing.assert_allclose(phi.T @ phi / len(cube), np.eye(phi.shape[1]), atol=1e-6)


@pytest.mark.parametrize("bias", [0.0, 1.0])
def test_arccos1_and_ntk_match_monte_carlo(bias):
    x = jax.random.rademacher(jax.random.key(0), (6, 7), dtype=jnp.float32)
    u = kernels.augment(x, bias)
    w = jax.random.normal(jax.random.key(1), (u.shape[1], 400_000))
    pre = u @ w
    relu, step = jax.nn.relu(pre), (pre > 0).astype(jnp.float32)
    k1, k0 = relu @ relu.T / w.shape[1], step @ step.T / w.shape[1]
    np.testing.assert_allclose(kernels.arccos1(u, u), k1, atol=1e-2)
    np.testing.assert_allclose(kernels.ntk(u, u), k1 + (u @ u.T) * k0, atol=1e-2)


def _repeated_rows(n=10, m=40):
    """±1 rows with repeats (the first rows appear twice) and a 3-parity label."""
    x = jax.random.rademacher(jax.random.key(2), (m - 5, n), dtype=jnp.float32)
    x = jnp.concatenate([x, x[:5]])
    return x, x[:, 0] * x[:, 1] * x[:, 2]


@pytest.mark.parametrize("learner", [KernelRidge(kernel="ntk", ridge=0.0), KernelRidge(kernel="poly", degree=3, ridge=0.0),
                                     LowDegree(degree=2, basis="walsh", ridge=0.0),      # 56 features > 40 rows: dual
                                     LowDegree(degree=1, basis="walsh", ridge=0.0),      # 11 features: primal
                                     RandomFeatures(width=60, ridge=0.0),
                                     Layerwise(width=16, steps=20, outer_width=64, outer_ridge=0.0)],
                         ids=lambda l: l.name)
def test_ridge_free_fits_on_repeated_rows_are_finite_least_squares(learner):
    # ridge 0 on a sample with repeated rows (or fewer rows than features) is singular:
    # the answer is the minimum-norm least-squares fit, not NaN
    x, y = _repeated_rows()
    out = learner.apply(learner.fit(jax.random.key(0), x, y), x)
    assert bool(jnp.all(jnp.isfinite(out))), learner.name
    if learner.name in ("kernel", "random_features") or learner == LowDegree(degree=2, basis="walsh", ridge=0.0):
        np.testing.assert_allclose(out, y, atol=1e-3)                   # interpolates consistent repeats


def test_ridge_free_lowdegree_is_the_same_fit_alone_and_padded():
    # the run's 40 rows alone take the dual system (56 features > 40 rows); padded to 100 rows
    # they take the primal one: both must give the minimum-norm solution
    x, y = _repeated_rows()
    extra = jax.random.rademacher(jax.random.key(3), (60, 10), dtype=jnp.float32)
    xp, yp = jnp.concatenate([x, extra]), jnp.concatenate([y, jnp.ones(60)])
    w = (jnp.arange(100) < 40).astype(jnp.float32)
    ld = LowDegree(degree=2, basis="walsh", ridge=0.0)
    alone, padded = ld.fit(None, x, y)["coef"], ld.fit(None, xp, yp, w)["coef"]
    np.testing.assert_allclose(padded, alone, atol=1e-3)
    np.testing.assert_allclose(features(x, 2, "walsh") @ alone, y, atol=1e-3)


def _exact_ridge_predictions(phi, y, ridge, phi_test):
    """Predictions of the float64 ridge fit (1/m)‖φc − y‖² + ridge‖c‖² (min-norm at ridge 0)."""
    phi, y, phi_test = (np.asarray(a, np.float64) for a in (phi, y, phi_test))
    if ridge == 0:
        return phi_test @ np.linalg.pinv(phi) @ y
    return phi_test @ np.linalg.solve(phi.T @ phi / len(y) + ridge * np.eye(phi.shape[1]), phi.T @ y / len(y))


@pytest.mark.parametrize("ridge", [1e-12, 1e-9, 1e-8])
@pytest.mark.parametrize("learner", [KernelRidge(kernel="ntk"), KernelRidge(kernel="poly", degree=3),
                                     RandomFeatures(width=60), RandomFeatures(width=1024)], ids=lambda l: l.name)
def test_a_ridge_below_float32_resolution_on_repeated_rows_is_finite_least_squares(learner, ridge):
    # the float32 Cholesky of these singular-in-float32 systems is NaN (ntk, random features:
    # ridge ≤ 1e-9; poly: ≤ 1e-8); the fit must stay close to the ridge-free one and interpolate
    x, y = _repeated_rows()
    x_test = jax.random.rademacher(jax.random.key(7), (200, 10), dtype=jnp.float32)
    learner = type(learner)(**{**learner.__dict__, "ridge": ridge})
    free = type(learner)(**{**learner.__dict__, "ridge": 0.0})
    params = learner.fit(jax.random.key(0), x, y)
    out, free_out = learner.apply(params, x_test), free.apply(free.fit(jax.random.key(0), x, y), x_test)
    assert bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_allclose(out, free_out, atol=2e-3)
    np.testing.assert_allclose(learner.apply(params, x), y, atol=1e-3)


def test_padded_primal_ridge_below_float32_resolution_is_least_squares():
    # 60 random features on 100 padded rows take the primal system, of rank ≤ 35 with the run's
    # 40 rows: at ridge 1e-8 its Cholesky is NaN, at 3e-8 finite but off by 0.65 on ±1 labels
    x, y = _repeated_rows()
    extra = jax.random.rademacher(jax.random.key(3), (60, 10), dtype=jnp.float32)
    xp, yp = jnp.concatenate([x, extra]), jnp.concatenate([y, jnp.ones(60)])
    w = (jnp.arange(100) < 40).astype(jnp.float32)
    x_test = jax.random.rademacher(jax.random.key(7), (200, 10), dtype=jnp.float32)
    for ridge in (1e-8, 3e-8):
        rf = RandomFeatures(width=60, ridge=ridge)
        params = rf.fit(jax.random.key(0), xp, yp, w)
        exact = _exact_ridge_predictions(rf.features(params, x), y, ridge, rf.features(params, x_test))
        np.testing.assert_allclose(rf.apply(params, x_test), exact, atol=1e-2)


@pytest.mark.parametrize("ridge", [1e-3, 1e-1])
def test_well_conditioned_ridge_fits_match_float64(ridge):
    x = jax.random.rademacher(jax.random.key(4), (64, 12), dtype=jnp.float32)      # distinct rows
    y = x[:, 0] * x[:, 1]
    x_test = jax.random.rademacher(jax.random.key(5), (100, 12), dtype=jnp.float32)
    kr = KernelRidge(kernel="ntk", ridge=ridge)
    gram, test = (np.asarray(kr.gram(a, x), np.float64) for a in (x, x_test))
    exact = test @ np.linalg.solve(gram + ridge * len(y) * np.eye(len(y)), np.asarray(y, np.float64))
    np.testing.assert_allclose(kr.apply(kr.fit(None, x, y), x_test), exact, atol=1e-5)
    rf = RandomFeatures(width=32, ridge=ridge)                                       # primal
    params = rf.fit(jax.random.key(0), x, y)
    exact = _exact_ridge_predictions(rf.features(params, x), y, ridge, rf.features(params, x_test))
    np.testing.assert_allclose(rf.apply(params, x_test), exact, atol=1e-4)


def test_a_degenerate_run_in_a_vmapped_group_gets_its_own_answer():
    # runs 0 and 1 repeat rows (their tiny-ridge Cholesky is NaN), runs 2 (padded) and 3 do not:
    # the fallback the first two take inside the vmapped group leaves each run its answer alone
    x0, y0 = _repeated_rows()
    xs = jnp.stack([x0] + [jax.random.rademacher(jax.random.key(10 + i), (40, 10), dtype=jnp.float32)
                           * jnp.concatenate([jnp.ones((40, 9)), jnp.full((40, 1), 1.0 + i)], axis=1)
                           for i in range(3)])
    ys = xs[:, :, 0] * xs[:, :, 1]
    w = jnp.stack([jnp.ones(40), jnp.ones(40), (jnp.arange(40) < 30).astype(jnp.float32), jnp.ones(40)])
    kr = KernelRidge(kernel="ntk", ridge=1e-9)
    fit = lambda x, y, w: kr.fit(None, x, y, w)["alpha"]                          # noqa: E731
    group = jax.jit(jax.vmap(fit))(xs, ys, w)
    assert bool(jnp.all(jnp.isfinite(group)))
    for i in range(len(xs)):
        np.testing.assert_allclose(group[i], jax.jit(fit)(xs[i], ys[i], w[i]), rtol=1e-5, atol=1e-5)
