"""Kernel ridge regression with closed-form infinite-width kernels, and random features.

Both learners are "fitted": `fit(key, x, y, weights)` solves a weighted ridge problem in
closed form inside jit+vmap, where rows with weight 0 (padding beyond the run's m) have no
effect on the answer at all.

Inputs enter every kernel through the augmented, scaled vector

    ũ(x) = (x/√n, bias)             so ‖ũ‖² = 1 + bias² on the hypercube

which is the first-layer input of the network f(x) = r^{−1/2} Σ_j a_j relu(⟨w_j, x⟩/√n + bias·b_j)
with a_j, w_j, b_j ~ N(0, 1). For θ the angle between ũ and ṽ:

    arccos1(x, x') = E_w[relu(w·ũ) relu(w·ṽ)] = ‖ũ‖‖ṽ‖ (sin θ + (π − θ) cos θ) / (2π)
    arccos0(x, x') = E_w[1{w·ũ > 0} 1{w·ṽ > 0}] = (π − θ) / (2π)
    ntk(x, x')     = arccos1 + ⟨ũ, ṽ⟩ · arccos0            (both layers trained)
    poly(x, x')    = ⟨ũ, ṽ⟩^degree                         (degree ≤ `degree`; homogeneous at bias 0)

`arccos1` is the kernel of `random_features` as its width grows (Cho–Saul's first-order
arc-cosine kernel divided by 2); `ntk` is the neural tangent kernel of the network above.

The bias-generalized kernels (Yang et al., JMLR 2024) are those of a network whose biases all
start at the same constant −β instead of being random, f(x) = r^{−1/2} Σ_j a_j relu(w_j·u − β),
u = x/√n (the `mlp` learner with parametrization: ntk, bias_init: −β). For unit-norm u and v
at angle θ, ρ = cos θ, and (Z, Z') standard normals with correlation ρ:

    shifted_arccos0(u, v, β) = P(Z > β, Z' > β)                 (= arccos0 at β = 0)
    shifted_arccos1(u, v, β) = E[relu(Z − β) relu(Z' − β)]      (= arccos1 at β = 0)
    bias_ntk(u, v, β)        = shifted_arccos1 + (⟨u, v⟩ + 1) · shifted_arccos0

(other norms: thresholds β/‖u‖ and β/‖v‖, and shifted_arccos1 scales by ‖u‖‖v‖). The orthant
probability has no elementary form for β ≠ 0; it is the one-dimensional integral
Φ(−β)² + (1/2π) ∫_0^{arcsin ρ} exp(−β²/(1 + sin t)) dt, evaluated by Gauss–Legendre quadrature.
A unit is active on a unit-norm input with probability shifted_arccos0(u, u, β) = Φ(−β).
Without a bias, `arccos1` and `ntk` have no odd Fourier components of degree ≥ 3 on the
hypercube, so they cannot fit a 3-sparse parity (keep `bias > 0` for odd parities), while
`arccos0` = 1/4 + arcsin(ρ)/2π is odd in ρ but for its constant: no even components of
degree ≥ 2.

The ridge objective, for the run's m rows (weights w ∈ {0, 1}, m = Σ w):

    (1/m) Σ_i w_i (f(x_i) − y_i)² + ridge · ‖f‖²

`ridge_solve` picks the primal (features × features) or the dual (rows × rows) system
from the static shapes, whichever is smaller; both give the same answer. Where float32 does
not resolve the system's Cholesky factor (a ridge below its resolution), and always at
ridge = 0, it solves from the features' SVD instead: at ridge = 0 the minimum-norm
least-squares solution, also with repeated rows or fewer rows than features.

Example:
    >>> x = jax.random.rademacher(jax.random.key(1), (64, 10)).astype(jnp.float32)
    >>> y = x[:, 0] * x[:, 3]
    >>> k = KernelRidge(kernel="ntk", ridge=1e-3)
    >>> params = jax.jit(k.fit)(jax.random.key(0), x, y, jnp.ones(len(y)))
    >>> jax.jit(k.apply)(params, x[:5]).shape
    (5,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_factor, cho_solve
from jax.scipy.special import ndtr

from sparselearn.errors import ConfigError, require
from sparselearn.runtime import one_at_a_time, tiered_jit

KERNELS = ("ntk", "arccos1", "arccos0", "poly")
BYTES = 4  # float32

# ---------------------------------------------------------------- weighted ridge solvers


def _mass(weights: jax.Array) -> jax.Array:
    return jnp.maximum(jnp.sum(weights), 1.0)


def _eps(x: jax.Array) -> float:
    return float(jnp.finfo(x.dtype).eps)


def _cholesky(system: jax.Array, rhs: jax.Array, count: jax.Array) -> tuple[tuple, jax.Array, jax.Array]:
    """(factor, system⁻¹·rhs, resolved) by Cholesky for a symmetric positive definite system (N, N).
    Resolved: the solution is finite and every pivot L_kk² exceeds count·eps·system_kk, the most
    rounding moves it by (`count`: the side of the system, or the rows in use for a dual one).
    Each pivot against its own diagonal entry: with rows of very different norms (Hermite
    features on Gaussian inputs) a floor from the largest one (4.8) took pivots from 0.12 up,
    over a ridge shift of 0.08, for rounding."""
    factor = cho_factor(system, lower=True)
    x = cho_solve(factor, rhs)
    pivots = jnp.diagonal(factor[0]) ** 2
    resolved = jnp.all(pivots > count * _eps(system) * jnp.diagonal(system)) & jnp.all(jnp.isfinite(x))
    return factor, x, resolved


@one_at_a_time
def _pinv_solve(system: jax.Array, rhs: jax.Array, count: jax.Array) -> jax.Array:
    """pinv(system)·rhs for a symmetric system (N, N) by its eigendecomposition, eigenvalues
    below count·eps times the largest dropped: the minimum-norm least-squares solution."""
    lam, vecs = jnp.linalg.eigh(system)
    keep = jnp.abs(lam) > count * _eps(system) * jnp.max(jnp.abs(lam))
    return vecs @ (jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0) * (vecs.T @ rhs))


@one_at_a_time
def _psd_solve(system: jax.Array, rhs: jax.Array, count: jax.Array) -> jax.Array:
    """system⁻¹·rhs for a symmetric positive definite system (N, N) by Cholesky, else
    `_pinv_solve` where the factor is not resolved (`_cholesky`). Run by run (`one_at_a_time`),
    so the fallback runs only for the runs that need it.

    A ridge below float32 resolution leaves a system singular whenever rows repeat or are fewer
    than the features, and its Cholesky factor NaN or with pivots at rounding level: such a
    system goes to `_pinv_solve`, which solves it exactly in its well-resolved directions and
    drops the rest."""
    _, x, resolved = _cholesky(system, rhs, count)
    return jax.lax.cond(resolved, lambda: x, lambda: _pinv_solve(system, rhs, count))


@one_at_a_time
def _svd_solve(a: jax.Array, b: jax.Array, shift: jax.Array, rows: jax.Array) -> jax.Array:
    """c (N,) minimising ‖a·c − b‖² + shift·‖c‖² for a (M, N), from the SVD of a:
    V·diag(σ/(σ² + shift))·Uᵀb, the minimum-norm least-squares solution at shift 0. Singular
    values under max(rows, N)·eps·σ_max (`rows` in use) are dropped, as a does not resolve them.
    Resolved on a itself: its Gram matrix squares the condition number, which in float32 loses
    directions a still resolves."""
    u, sv, vt = jnp.linalg.svd(a, full_matrices=False)
    keep = sv > jnp.maximum(rows, a.shape[1]) * _eps(a) * sv[0]
    sv = jnp.where(keep, sv, 1.0)
    return vt.T @ jnp.where(keep, (u.T @ b) / (sv + shift / sv), 0.0)


@one_at_a_time
def _feature_solve(system: jax.Array, rhs: jax.Array, a: jax.Array, b: jax.Array, shift: jax.Array,
                   rows: jax.Array) -> jax.Array:
    """c (N,) minimising ‖a·c − b‖² + shift·‖c‖² for a (M, N): by Cholesky on `system`, the
    primal (aᵀa + shift·I)/rows (N, N) or the dual a·aᵀ + shift·I (M, M, then c = aᵀα), with
    one step of refinement; from the SVD of a (`_svd_solve`) where the factor is not resolved
    (`_cholesky`). The system is primal when its side is N (`ridge_solve` takes the dual only
    for N > M)."""
    primal = system.shape[0] == a.shape[1]
    factor, x, resolved = _cholesky(system, rhs, jnp.asarray(a.shape[1], a.dtype) if primal else rows)
    # the residual from a itself, not from the system: its float32 products cost the solution
    # up to cond·eps (0.6% of a degree-6 Hermite fit), which one step takes back
    if primal:
        residual = (a.T @ (b - a @ x) - shift * x) / rows
    else:
        residual = b - a @ (a.T @ x) - shift * x
    x = x + cho_solve(factor, residual)
    c = x if primal else a.T @ x
    return jax.lax.cond(resolved, lambda: c, lambda: _svd_solve(a, b, shift, rows))


def _weighted(phi: jax.Array, y: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(√w·φ (M, N), √w·y (M,), m): the rows as the least-squares objective weighs them."""
    root = jnp.sqrt(weights)
    return phi * root[:, None], root * y, _mass(weights)


def dual_solve(gram: jax.Array, y: jax.Array, weights: jax.Array, ridge: float) -> jax.Array:
    """Dual coefficients α (M,) of weighted kernel ridge regression, f(x) = Σ_i α_i k(x, x_i).

    gram: (M, M) kernel matrix of the rows; weights (M,) in {0, 1}. Solves
    (D K D + ridge·m·I) α = D y with D = diag(weights), in which zero-weight rows are decoupled
    and never the system's largest scale: α = 0 exactly on them and the rest is the ridge
    solution on the weighted rows alone (at ridge = 0 the minimum-norm one).
    """
    d = weights
    m = _mass(d)
    system = gram * d[:, None] * d[None, :] + ridge * m * jnp.eye(len(d), dtype=gram.dtype)
    alpha = _pinv_solve(system, d * y, m) if ridge == 0 else _psd_solve(system, d * y, m)
    return jnp.where(d > 0, alpha, 0.0)


def primal_solve(phi: jax.Array, y: jax.Array, weights: jax.Array, ridge: float,
                 live: jax.Array | None = None) -> jax.Array:
    """Coefficients c (N,) minimising (1/m) Σ w_i (φ_i·c − y_i)² + ridge ‖c‖², by the N×N
    normal equations (`_feature_solve`). Zero-weight rows drop out of both sides. `live` (N,)
    bool, if given, marks the columns in use: the others must be zero and get coefficient 0
    (their diagonal is set to 1). At ridge = 0: the minimum-norm least-squares solution."""
    a, b, m = _weighted(phi, y, weights)
    diag = jnp.full(phi.shape[1], ridge, phi.dtype)
    if live is not None:
        diag = jnp.where(live, diag, 1.0)
    system, rhs = a.T @ a / m + jnp.diag(diag), a.T @ b / m
    if ridge == 0:
        return _pinv_solve(system, rhs, jnp.asarray(phi.shape[1], phi.dtype))
    c = _feature_solve(system, rhs, a, b, ridge * m, m)
    return c if live is None else jnp.where(live, c, 0.0)


def ridge_solve(phi: jax.Array, y: jax.Array, weights: jax.Array, ridge: float,
                live: jax.Array | None = None) -> jax.Array:
    """Weighted ridge coefficients c (N,) on features phi (M, N): by Cholesky on the primal
    system when N ≤ M, else on the dual one (c = φᵀ D α), chosen from the static shapes
    (`_feature_solve`); where float32 does not resolve that factor, and always at ridge = 0,
    from the SVD of the weighted features (`_svd_solve`: the minimum-norm least-squares
    solution at ridge 0), as a system of products would lose the directions of singular values
    under √(N·eps)·σ_max (cond(φ) ≈ 10³ left a noise-free degree-6 Hermite fit 0.2 off).
    `live` as in `primal_solve`."""
    rows, feats = phi.shape
    if ridge > 0 and feats <= rows:
        return primal_solve(phi, y, weights, ridge, live)
    a, b, m = _weighted(phi, y, weights)
    if ridge == 0:
        c = _svd_solve(a, b, jnp.zeros((), a.dtype), m)
    else:
        shift = ridge * m
        c = _feature_solve(a @ a.T + shift * jnp.eye(rows, dtype=a.dtype), b, a, b, shift, m)
    return c if live is None else jnp.where(live, c, 0.0)


def solve_bytes(rows: int, feats: int, test_rows: int = 0, per_row: int = 0) -> int:
    """Peak memory in bytes, bounded from above, of a fit by `ridge_solve` on a (rows, feats)
    feature matrix and the evaluations that follow it (on `test_rows` points and on the rows).
    From XLA's memory analysis of that program: the rows' features are held about five times
    (the features, their weighted copy, the SVD's operand and factors, the training
    predictions' features) and a (side, feats) block more, side = min(rows, feats): with fewer
    rows than features the Cholesky path and its SVD fallback are held at once (5.85 copies
    measured); the system of that side four times (the system, its diagonal, the factor, the
    products around it), the test features once; `per_row` counts what the feature map holds
    per input row besides (the inputs, their tables). Increasing in rows, as the m search's
    bisection of the refused range needs."""
    side = min(rows, feats)
    return BYTES * (5 * rows * feats + side * feats + test_rows * feats + 4 * side * side
                    + (rows + test_rows) * per_row)


def kernel_bytes(rows: int, test_rows: int = 0) -> int:
    """As `solve_bytes` for kernel ridge on `rows` rows: six (rows, rows) arrays (the Gram
    matrix, the system, its diagonal, the factor, the eigenvectors, the training kernel) and
    three (test_rows, rows) ones (the test kernel and its cosines and norms)."""
    return BYTES * (6 * rows * rows + 3 * test_rows * rows)


def check_memory(needed: int, limit_gb: float, what: str, key: str) -> None:
    """ConfigError(key) when `needed` bytes exceed `limit_gb` GiB."""
    if needed > limit_gb * 2**30:
        raise ConfigError(f"{what} needs about {needed / 2**30:.3g} GiB per run, over the limit "
                          f"max_memory_gb = {limit_gb:g}", key=key)


# ---------------------------------------------------------------- closed-form kernels


def augment(x: jax.Array, bias: float) -> jax.Array:
    """ũ(x) = (x/√n, bias), shape (m, n + 1)."""
    u = x / math.sqrt(x.shape[-1])
    return jnp.concatenate([u, jnp.full(x.shape[:-1] + (1,), bias, u.dtype)], axis=-1)


def _norms_and_cos(u: jax.Array, v: jax.Array):
    dot = u @ v.T
    nu = jnp.sqrt(jnp.sum(u * u, axis=1))
    nv = jnp.sqrt(jnp.sum(v * v, axis=1))
    scale = nu[:, None] * nv[None, :]
    cos = jnp.clip(dot / jnp.where(scale > 0, scale, 1.0), -1.0, 1.0)
    return dot, scale, cos


def arccos0(u: jax.Array, v: jax.Array) -> jax.Array:
    """E_w[1{w·u > 0}·1{w·v > 0}] for w ~ N(0, I): (π − θ)/(2π), shape (len(u), len(v))."""
    _, _, cos = _norms_and_cos(u, v)
    return (jnp.pi - jnp.arccos(cos)) / (2 * jnp.pi)


def arccos1(u: jax.Array, v: jax.Array) -> jax.Array:
    """E_w[relu(w·u)·relu(w·v)] for w ~ N(0, I): ‖u‖‖v‖(sin θ + (π − θ) cos θ)/(2π)."""
    _, scale, cos = _norms_and_cos(u, v)
    theta = jnp.arccos(cos)
    return scale * (jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0)) + (jnp.pi - theta) * cos) / (2 * jnp.pi)


def ntk(u: jax.Array, v: jax.Array) -> jax.Array:
    """Neural tangent kernel of r^{−1/2} Σ_j a_j relu(w_j·u), a, w ~ N(0, 1), both layers
    trained, as r → ∞: arccos1(u, v) + (u·v)·arccos0(u, v)."""
    dot, scale, cos = _norms_and_cos(u, v)
    theta = jnp.arccos(cos)
    k1 = scale * (jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0)) + (jnp.pi - theta) * cos) / (2 * jnp.pi)
    k0 = (jnp.pi - theta) / (2 * jnp.pi)
    return k1 + dot * k0


#: Gauss–Legendre nodes and weights on [−1, 1] for the orthant integral of the shifted kernels
#: (its integrand is smooth, so 64 nodes give float32 accuracy). The moment M built from it is a
#: difference of terms that nearly cancel at large thresholds: against float64 quadrature its
#: relative error is ≤ 1e-5 at β ≤ 3 on unit inputs, 3e-4 at β = 5, ρ = 0.5 and 1.2e-3 at β = 5,
#: ρ = 0.999 (bias_ntk, dominated by its (u·v + 1)·L term, stays within 4e-5). At anti-correlated
#: inputs both carry an absolute floor (5e-10 at β = 2, ρ = −0.9, where they are below 1e-20)
_NODES, _WEIGHTS = (np.asarray(a, np.float32) for a in np.polynomial.legendre.leggauss(64))
#: correlations within this of 1 are read as exactly 1 (float32 rounding of u·u/‖u‖²)
_PARALLEL = 1e-6


@tiered_jit  # one program per shape (β is traced): called eagerly, its ~60 ops compiled one by one
def _shifted_parts(u: jax.Array, v: jax.Array, beta: float):
    """(L, M, dot) for the rows of u (a, d) and v (b, d): L = P(Z > h, Z' > k) and M =
    E[(Z − h)₊(Z' − k)₊] for standard normals of correlation ρ = cos θ(u, v), thresholds
    h = β/‖u‖ and k = β/‖v‖; dot = u·vᵀ. Each (a, b)."""
    dot, scale, rho = _norms_and_cos(u, v)
    rho = jnp.where(rho > 1.0 - _PARALLEL, 1.0, rho)
    h = (beta / jnp.sqrt(jnp.sum(u * u, axis=1)))[:, None]
    k = (beta / jnp.sqrt(jnp.sum(v * v, axis=1)))[None, :]
    top = jnp.arcsin(rho)
    t = 0.5 * top[..., None] * (_NODES + 1.0)                    # (a, b, nodes) in [0, arcsin ρ]
    # (h² − 2hk sin t + k²)/(2cos² t), written without the cancellation of 1 − sin t near t = π/2
    hh, kk = h[..., None], k[..., None]
    expo = (hh - kk) ** 2 / (2.0 * jnp.cos(t) ** 2) + hh * kk / (1.0 + jnp.sin(t))
    orthant = ndtr(-h) * ndtr(-k) + top * jnp.sum(_WEIGHTS * jnp.exp(-expo), axis=-1) / (4.0 * jnp.pi)
    s = jnp.maximum(jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0)), 1e-12)
    phi = lambda z: jnp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # noqa: E731
    # at ρ = 1 the conditional P(Z' > k | Z = h) is a step in k − h, ½ at h = k; thresholds equal
    # up to rounding (XLA may compute h and k with different instructions) are read as equal
    tied = (rho >= 1.0) & (jnp.abs(h - k) <= 1e-5 * (jnp.abs(h) + jnp.abs(k)))
    a_term = phi(h) * ndtr(jnp.where(tied, 0.0, -(k - rho * h) / s))   # E[Z 1{Z > h, Z' > k}] = a + ρ b
    b_term = phi(k) * ndtr(jnp.where(tied, 0.0, -(h - rho * k) / s))
    d2 = jnp.maximum(h * h - 2.0 * rho * h * k + k * k, 0.0) / (s * s)
    moment = (rho + h * k) * orthant - k * a_term - h * b_term + s * phi(jnp.sqrt(d2)) / math.sqrt(2.0 * math.pi)
    return orthant, jnp.maximum(moment, 0.0) * scale, dot


def shifted_arccos0(u: jax.Array, v: jax.Array, beta: float) -> jax.Array:
    """E_w[1{w·u > β}·1{w·v > β}] for w ~ N(0, I): the fraction of units of bias −β active on
    both inputs, shape (len(u), len(v)). On unit-norm inputs the diagonal is Φ(−β).

    Example:
        >>> u = jnp.eye(2)
        >>> shifted_arccos0(u, u, 0.0)          # = arccos0(u, u)
        Array([[0.5 , 0.25], [0.25, 0.5 ]], dtype=float32)
    """
    return _shifted_parts(u, v, beta)[0]


def shifted_arccos1(u: jax.Array, v: jax.Array, beta: float) -> jax.Array:
    """E_w[relu(w·u − β)·relu(w·v − β)] for w ~ N(0, I), shape (len(u), len(v)); arccos1 at β = 0."""
    return _shifted_parts(u, v, beta)[1]


def bias_ntk(u: jax.Array, v: jax.Array, beta: float) -> jax.Array:
    """The bias-generalized NTK: the neural tangent kernel, as the width r → ∞, of
    r^{−1/2} Σ_j a_j relu(w_j·u + b_j) with a_j, w_j ~ N(0, 1) and every b_j = −β at
    initialisation, all of a, w, b trained: shifted_arccos1 + (u·v + 1)·shifted_arccos0.
    For the `mlp` learner (parametrization: ntk, bias_init: −β) pass u = x/√n.

    Example:
        >>> x = jnp.ones((5, 4))                 # (m, n)
        >>> bias_ntk(x / math.sqrt(4), x / math.sqrt(4), 1.5).shape
        (5, 5)
    """
    orthant, moment, dot = _shifted_parts(u, v, beta)
    return moment + (dot + 1.0) * orthant


def kernel_matrix(name: str, x: jax.Array, z: jax.Array, *, bias: float = 1.0, degree: int = 2) -> jax.Array:
    """The kernel `name` (one of KERNELS) between the rows of x (a, n) and z (b, n): (a, b).

    Example:
        >>> kernel_matrix("ntk", jnp.ones((5, 3)), jnp.ones((2, 3))).shape
        (5, 2)
    """
    u, v = augment(x, bias), augment(z, bias)
    if name == "ntk":
        return ntk(u, v)
    if name == "arccos1":
        return arccos1(u, v)
    if name == "arccos0":
        return arccos0(u, v)
    if name == "poly":
        return (u @ v.T) ** degree
    raise ValueError(f"unknown kernel {name!r}; expected one of {KERNELS}")


def _fit_inputs(x: jax.Array, y: jax.Array, weights: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """(x, weights) for a fit: integer or boolean x (±1 bits) as float32, so features and the
    ridge keep their fractions; weights all 1 when None. Checks that the shapes agree (static,
    so it works on tracers)."""
    x = jnp.asarray(x)
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    weights = jnp.ones(x.shape[0], x.dtype) if weights is None else weights
    if x.ndim != 2:
        raise ValueError(f"x must have shape (m, n), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("empty training set (m = 0)")
    if y.shape != (x.shape[0],) or weights.shape != (x.shape[0],):
        raise ValueError(f"x {x.shape}, y {y.shape} and weights {weights.shape} disagree on the number of rows")
    return x, weights


# ---------------------------------------------------------------- learners


@dataclass(frozen=True)
class KernelRidge:
    """Kernel ridge regression with an exact (Cholesky) solve on the run's m rows.

    Fields: `kernel` (ntk, arccos1, arccos0, poly), `ridge` (≥ 0, on the mean squared error),
    `bias` (the constant coordinate of ũ; 0 gives the bias-free kernels), `degree` (poly only),
    `max_memory_gb` (config-time limit on the m × m system and the test kernel).

    Example:
        >>> x, y, w = jnp.eye(3), jnp.ones(3), jnp.ones(3)
        >>> jax.eval_shape(KernelRidge(kernel="ntk", ridge=1e-3).fit, jax.random.key(0), x, y, w)["alpha"].shape
        (3,)
    """

    kernel: Literal["ntk", "arccos1", "arccos0", "poly"] = "ntk"
    ridge: float = 1e-3
    bias: float = 1.0
    degree: int = 2
    max_memory_gb: float = 8.0

    name: ClassVar[str] = "kernel"
    kind: ClassVar[str] = "fitted"

    def __post_init__(self):
        require(self.kernel in KERNELS, "kernel", f"must be one of {', '.join(KERNELS)}; got {self.kernel!r}")
        require(math.isfinite(self.ridge) and self.ridge >= 0, "ridge", f"must be a finite number ≥ 0, got {self.ridge}")
        require(math.isfinite(self.bias) and self.bias >= 0, "bias", f"must be a finite number ≥ 0, got {self.bias}")
        require(self.degree >= 1, "degree", f"must be ≥ 1, got {self.degree}")
        require(self.kernel == "poly" or self.degree == KernelRidge.degree, "degree",
                f"is used only with kernel: poly, got kernel: {self.kernel} and degree {self.degree}")
        require(self.max_memory_gb > 0, "max_memory_gb", f"must be > 0, got {self.max_memory_gb}")

    def check(self, target, data) -> None:
        """The m × m kernel system and the test_m × m test kernel must fit in memory."""
        m = data.m
        check_memory(kernel_bytes(m, data.test_m), self.max_memory_gb,
                     f"kernel ridge on m = {m} rows ({m}×{m} system)", "max_memory_gb")

    def gram(self, x: jax.Array, z: jax.Array) -> jax.Array:
        return kernel_matrix(self.kernel, x, z, bias=self.bias, degree=self.degree)

    def fit(self, key: jax.Array, x: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> dict:
        """{"x": the training rows (M, n), "alpha": dual coefficients (M,), 0 on zero-weight rows}."""
        x, weights = _fit_inputs(x, y, weights)
        alpha = dual_solve(self.gram(x, x), y, weights, self.ridge)
        return {"x": x, "alpha": alpha}

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        """f(x) = Σ_i α_i k(x, x_i), shape (m,)."""
        return self.gram(x, params["x"]) @ params["alpha"]


@dataclass(frozen=True)
class RandomFeatures:
    """A frozen random ReLU first layer (drawn from the fit key) with a ridge-fitted readout:
    f(x) = c · relu(ũ(x) W)/√width. As width → ∞ it becomes kernel ridge with `arccos1`.

    Fields: `width` (random features), `ridge` (≥ 0), `bias` (constant coordinate of ũ),
    `max_memory_gb` (config-time limit).

    Example:
        >>> x, y, w = jnp.eye(3), jnp.ones(3), jnp.ones(3)   # n = 3
        >>> params = jax.jit(RandomFeatures(width=2048).fit)(jax.random.key(0), x, y, w)
        >>> jax.tree.map(jnp.shape, params)                  # w: (n + 1, width)
        {'c': (2048,), 'w': (4, 2048)}
    """

    width: int = 1024
    ridge: float = 1e-3
    bias: float = 1.0
    max_memory_gb: float = 8.0

    name: ClassVar[str] = "random_features"
    kind: ClassVar[str] = "fitted"

    def __post_init__(self):
        require(self.width >= 1, "width", f"must be ≥ 1, got {self.width}")
        require(math.isfinite(self.ridge) and self.ridge >= 0, "ridge", f"must be a finite number ≥ 0, got {self.ridge}")
        require(math.isfinite(self.bias) and self.bias >= 0, "bias", f"must be a finite number ≥ 0, got {self.bias}")
        require(self.max_memory_gb > 0, "max_memory_gb", f"must be > 0, got {self.max_memory_gb}")

    def check(self, target, data) -> None:
        check_memory(solve_bytes(data.m, self.width, data.test_m, 2 * (target.n + 1)), self.max_memory_gb,
                     f"random features (width {self.width}) on m = {data.m} rows", "width")

    def features(self, params: dict, x: jax.Array) -> jax.Array:
        return jax.nn.relu(augment(x, self.bias) @ params["w"]) / math.sqrt(self.width)

    def fit(self, key: jax.Array, x: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> dict:
        """{"w": first layer (n + 1, width) drawn from key, "c": readout (width,)}."""
        x, weights = _fit_inputs(x, y, weights)
        w = jax.random.normal(key, (x.shape[1] + 1, self.width), x.dtype)   # W ~ N(0, I)
        phi = self.features({"w": w}, x)
        return {"w": w, "c": ridge_solve(phi, y, weights, self.ridge)}

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        return self.features(params, x) @ params["c"]
