"""The weighted ridge solves against float64: degree-6 Hermite features of Gaussian rows (squared
row norms from 20 to 5·10⁴ on the 800 rows here, median 150) with more features than rows,
padded, and vmapped; zero-weight rows in kernel ridge."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn.learners.kernels import KernelRidge, dual_solve, primal_solve, ridge_solve
from sparselearn.learners.lowdegree import LowDegree, features

N_FEATURES = math.comb(6 + 6, 6)   # degree ≤ 6 on n = 6: 924


@functools.cache
def _gaussian(rows: int, seed: int = 0):
    """(x (rows, 6), y) Gaussian inputs with y = h_1 h_1 + h_2 terms of degree 2."""
    x = np.random.default_rng(seed).standard_normal((rows, 6)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] + (x[:, 2] ** 2 - 1) / math.sqrt(2)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def _ridge64(phi, y, ridge):
    """float64 minimiser of (1/m)‖φc − y‖² + ridge‖c‖², from the SVD of φ (m, N)."""
    phi, y = np.asarray(phi, np.float64), np.asarray(y, np.float64)
    u, s, vt = np.linalg.svd(phi, full_matrices=False)
    return vt.T @ (s / (s * s + len(y) * ridge) * (u.T @ y))


def _rel(c, ref):
    return np.linalg.norm(np.asarray(c, np.float64) - ref) / np.linalg.norm(ref)


@pytest.mark.parametrize("basis, ridge", [("hermite", 1e-4), ("auto", 1e-6)])
def test_lowdegree_with_more_features_than_rows_on_gaussian_inputs_is_the_ridge_solution(basis, ridge):
    # 800 rows, 924 features: the dual system, 800 × 800. Its Cholesky factor was taken for
    # unresolved against a floor set by the largest row, and the fit 27% (ridge 1e-4) and 39%
    # (1e-6) off
    x, y = _gaussian(800)
    x_test, y_test = _gaussian(2000, seed=1)
    ld = LowDegree(degree=6, basis=basis, ridge=ridge)
    coef = jax.jit(ld.fit)(jax.random.key(0), x, y)["coef"]
    phi = features(x, 6, "hermite")
    assert phi.shape == (800, N_FEATURES)
    ref = _ridge64(phi, y, ridge)
    assert _rel(coef, ref) < 1e-3
    phi_test, y_test = np.asarray(features(x_test, 6, "hermite"), np.float64), np.asarray(y_test, np.float64)
    mse, ref_mse = (np.mean((phi_test @ np.asarray(c, np.float64) - y_test) ** 2) for c in (coef, ref))
    assert abs(mse - ref_mse) < 1e-3 * ref_mse, (mse, ref_mse)


def test_primal_and_kernel_systems_with_rows_of_very_different_norms_give_the_ridge_solution():
    # the same problem through the public solvers: the kernel matrix φφᵀ (what kernel ridge
    # passes) and the 924 × 924 normal equations (singular but for the ridge)
    x, y = _gaussian(800)
    phi, w, ridge = features(x, 6, "hermite"), jnp.ones(800), 1e-4
    ref = _ridge64(phi, y, ridge)
    dual = phi.T @ (w * dual_solve(phi @ phi.T, y, w, ridge))
    assert _rel(dual, ref) < 1e-3
    assert _rel(primal_solve(phi, y, w, ridge), ref) < 1e-3


def test_padded_and_vmapped_fits_are_each_the_ridge_solution_of_their_own_rows():
    # 1100 rows, 924 features, ridge 1e-6: the primal system. For a run of all 1100 rows float32
    # resolves its Cholesky factor; for a run of 800 (300 rows of weight 0) it does not, and
    # that run alone is solved from the SVD of its features; vmapped, each run takes its own way
    x, y = _gaussian(1100)
    phi, ridge = features(x, 6, "hermite"), 1e-6
    weights = jnp.stack([(jnp.arange(1100) < 800).astype(jnp.float32), jnp.ones(1100)])
    coefs = jax.jit(jax.vmap(lambda w: ridge_solve(phi, y, w, ridge)))(weights)
    for coef, rows in zip(coefs, (800, 1100)):
        assert _rel(coef, _ridge64(phi[:rows], y[:rows], ridge)) < 1e-3, rows
    alone = jax.jit(lambda p, t: ridge_solve(p, t, jnp.ones(800), ridge))(phi[:800], y[:800])   # the dual
    np.testing.assert_allclose(coefs[0], alone, atol=1e-3 * float(jnp.max(jnp.abs(alone))))


@pytest.mark.parametrize("ridge", [0.0, 1e-3])
@pytest.mark.parametrize("kernel", ["arccos1", "poly"])
def test_zero_weight_rows_get_exactly_zero_dual_coefficients_and_change_nothing(kernel, ridge):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.choice([-1.0, 1.0], (30, 6)).astype(np.float32))
    y = x[:, 0] * x[:, 1]
    w = jnp.asarray((rng.random(30) < 0.8).astype(np.float32))
    kept = np.flatnonzero(np.asarray(w))
    kr = KernelRidge(kernel=kernel, ridge=ridge)
    alpha = np.asarray(kr.fit(None, x, y, w)["alpha"])
    assert np.all(alpha[np.asarray(w) == 0] == 0.0)
    gram = np.asarray(kr.gram(x[kept], x[kept]), np.float64)
    system = gram + ridge * len(kept) * np.eye(len(kept))
    ref = np.linalg.pinv(system, rcond=1e-6, hermitian=True) @ np.asarray(y[kept], np.float64)
    np.testing.assert_allclose(gram @ alpha[kept], gram @ ref, atol=1e-4)       # the fit on its rows
