"""Layerwise training of a three-layer network for hierarchical targets h = g ∘ p
(the two-stage procedure of Wang, Nichani, Lee, Learning Hierarchical Polynomials with
Three-Layer Neural Networks, ICLR 2024, arXiv 2311.13774).

The network has a width-1 bottleneck between two blocks:

    feature(x) = u_0 + Σ_a u_a σ1(⟨v_a, x⟩)          inner block, V fixed at its random init
    f(x)       = c · ψ((feature(x) − μ)/s)            outer block on the scalar feature

- V (n, width): random unit directions drawn from the fit key, never trained.
- σ1 of unit a is Σ_{1≤j≤degree} ε_aj h_j(z), with h_j = He_j/√(j!) the normalised Hermite
  polynomials and ε_aj fixed signs (`hermite_signs`: +1 for j ≤ 2, random ±1 from j = 3), so
  the inner block spans polynomials of degree ≤ `degree` (given enough width: at least
  C(n + degree, degree) units) and nothing of higher degree. The random signs are needed from
  degree 3 on: h_j(⟨v, x⟩) has the Hermite tensor v^{⊗j}, whose trace is v^{⊗(j−2)} for a
  unit-norm v, so with one activation shared by all units the trace of the degree-j part
  would equal the degree-(j−2) part and the span would miss Σ_{1≤i≤degree−2} C(n + i − 1, i)
  directions (at degree 3: n of them, which p = Σ_i h_3(⟨v_i, x⟩) uses). The bias u_0 is
  needed for the same reason at degree 2: with unit-norm directions the constant of
  h_2(⟨v, x⟩) is tied to its trace Σ_i (x_i² − 1), so without u_0 the span misses one
  direction — one that p itself uses. (Leaving h_0 out of σ1 keeps the units centred, which
  keeps the stage-1 problem well conditioned.)
- Stage 1 trains u by `steps` full-batch gradient steps (Nesterov momentum) on the weighted
  square loss with weight decay, V fixed. The objective is strongly convex in u; its
  minimiser is the best degree-≤k fit of the labels, which for the targets of the theory is
  a multiple of p plus a constant (the degree-≤k projection of g∘p is ∝ p). So stage 1
  recovers the feature p up to an affine map. Step size: `lr` / L, L the largest curvature
  (power iteration on the weighted Gram matrix).
- Stage 2 standardises the learned feature over the training rows and fits the outer layer
  by ridge regression on the 1-D features ψ(z) = (1, z, relu(z − b_1), …, relu(z − b_J))
  with J = `outer_width` knots b_j at evenly spaced quantiles of the training feature: a
  linear spline in the feature, which can represent g.
- `split=True` uses the even rows of the run's sample for stage 1 and the odd rows for
  stage 2 (sample splitting, as the theory probably assumes [U]); default: all rows for both.

Design choices that are ours, not the paper's [U]: the signed Hermite-sum activation (the
paper's experiment uses σ1(z) = z³ with a skip connection), GD with momentum run long rather
than a fixed small number of steps (the default 500 reach the ridge solution at degree 2; at
degree 3, n = 12 and width 512 u is still 31% from it, the feature 5%: raise `steps` there),
and the spline outer layer fitted in closed form.

Everything runs inside jit+vmap as a fitted learner: both stages are pure JAX with static
shapes (`lax.fori_loop` for the gradient steps), and zero-weight rows never enter.

Example:
    >>> x = jax.random.normal(jax.random.key(1), (256, 8))
    >>> y = x[:, 0] * x[:, 1]                     # p(x) = x_0·x_1, g(z) = z
    >>> lw = Layerwise(width=64, degree=2, steps=50)
    >>> params = jax.jit(lw.fit)(jax.random.key(0), x, y, jnp.ones(len(y)))
    >>> f = lw.feature(params, x)                 # the learned scalar feature, ≈ a·p(x) + b
    >>> f.shape, bool(abs(np.corrcoef(f, y)[0, 1]) > 0.9)
    ((256,), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from sparselearn.errors import require
from sparselearn.learners.kernels import _fit_inputs, check_memory, ridge_solve, solve_bytes
from sparselearn.learners.lowdegree import hermite_table

POWER_ITERATIONS = 50
SIGN_SEED = 0   # the signs ε of the inner units: a constant of the program, like the width


def hermite_signs(width: int, degree: int) -> np.ndarray:
    """ε (width, degree) ∈ {±1}: the sign of h_j (column j − 1) in the activation of each inner
    unit; +1 for j ≤ 2, where no trace ties degrees together (the bias u_0 frees the constant)."""
    signs = np.random.default_rng(SIGN_SEED).choice(np.array([-1.0, 1.0]), size=(width, degree))
    signs[:, :2] = 1.0
    return signs


def _weighted_mean_std(z: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    total = jnp.maximum(jnp.sum(w), 1.0)
    mean = jnp.sum(w * z) / total
    std = jnp.sqrt(jnp.sum(w * (z - mean) ** 2) / total)
    return mean, jnp.where(std > 0, std, 1.0)


def _weighted_quantiles(z: jax.Array, w: jax.Array, count: int) -> jax.Array:
    """`count` values of z at evenly spaced quantiles (j + ½)/count of the weighted rows."""
    ordered = jnp.sort(jnp.where(w > 0, z, jnp.inf))
    m = jnp.maximum(jnp.sum(w > 0), 1)
    ranks = ((jnp.arange(count) + 0.5) / count * m).astype(jnp.int32)
    return ordered[jnp.clip(ranks, 0, m - 1)]


def outer_features(z: jax.Array, knots: jax.Array) -> jax.Array:
    """(1, z, relu(z − b_j)) for the scalar features z (m,): shape (m, len(knots) + 2)."""
    return jnp.concatenate([jnp.ones_like(z)[:, None], z[:, None], jax.nn.relu(z[:, None] - knots[None, :])], axis=1)


@dataclass(frozen=True)
class Layerwise:
    """Three-layer network trained layerwise: stage 1 learns the feature, stage 2 fits g.

    Fields (defaults): `width` (512, inner random units), `degree` (2, degree of the inner
    activation: set it to the degree k of p), `steps` (500, stage-1 gradient steps), `lr`
    (1.0, step size in units of 1/curvature; stable below 2(1 + μ)/(1 + 2μ) ≈ 1.36 for the
    default momentum μ = 0.9), `momentum` (0.9), `weight_decay` (1e-3,
    stage-1 ridge), `outer_width` (64, spline knots of the outer layer), `outer_ridge`
    (1e-3), `split` (false: both stages use all rows).

    Example:
        >>> x, y, w = jnp.ones((8, 3)), jnp.ones(8), jnp.ones(8)
        >>> jax.eval_shape(Layerwise(width=256).fit, jax.random.key(0), x, y, w)["u"].shape
        (257,)
    """

    width: int = 512
    degree: int = 2
    steps: int = 500
    lr: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 1e-3
    outer_width: int = 64
    outer_ridge: float = 1e-3
    split: bool = False
    max_memory_gb: float = 8.0

    name: ClassVar[str] = "layerwise"
    kind: ClassVar[str] = "fitted"

    def __post_init__(self):
        require(self.width >= 1, "width", f"must be ≥ 1, got {self.width}")
        require(self.degree >= 1, "degree", f"must be ≥ 1, got {self.degree}")
        require(self.steps >= 1, "steps", f"must be ≥ 1, got {self.steps}")
        require(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")
        stable = 2 * (1 + self.momentum) / (1 + 2 * self.momentum)   # Nesterov on a quadratic
        require(math.isfinite(self.lr) and 0 < self.lr < stable, "lr",
                f"must be in (0, {stable:.3g}) (units of 1/curvature; the stable range with momentum "
                f"{self.momentum:g}), got {self.lr}")
        require(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
                f"must be a finite number ≥ 0, got {self.weight_decay}")
        require(self.outer_width >= 1, "outer_width", f"must be ≥ 1, got {self.outer_width}")
        require(math.isfinite(self.outer_ridge) and self.outer_ridge >= 0, "outer_ridge",
                f"must be a finite number ≥ 0, got {self.outer_ridge}")
        require(self.max_memory_gb > 0, "max_memory_gb", f"must be > 0, got {self.max_memory_gb}")

    def check(self, target, data) -> None:
        check_memory(solve_bytes(data.m, self.width, data.test_m, self.width * (self.degree + 1)), self.max_memory_gb,
                     f"layerwise (width {self.width}) on m = {data.m} rows", "width")

    def inner(self, v: jax.Array, x: jax.Array) -> jax.Array:
        """(1, σ1(x V)): (m, width + 1) inner features, a constant (bias) unit first."""
        signs = jnp.asarray(hermite_signs(v.shape[1], self.degree), x.dtype)
        units = jnp.sum(hermite_table(x @ v, self.degree)[..., 1:] * signs, axis=-1)
        return jnp.concatenate([jnp.ones_like(units[:, :1]), units], axis=1)

    def feature(self, params: dict, x: jax.Array) -> jax.Array:
        """The learned scalar feature u_0 + Σ_a u_a σ1(⟨v_a, x⟩), shape (m,) (before standardising)."""
        return self.inner(params["v"], x) @ params["u"]

    def _stage1(self, phi: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
        """u after `steps` Nesterov steps from 0 on (1/2m) Σ w (φu − y)² + (λ/2)‖u‖²."""
        m = jnp.maximum(jnp.sum(w), 1.0)
        wphi = phi * w[:, None]

        def hess(vec):
            return wphi.T @ (phi @ vec) / m + self.weight_decay * vec

        def power(_, vec):
            out = hess(vec)
            return out / jnp.maximum(jnp.linalg.norm(out), 1e-30)

        top = jax.lax.fori_loop(0, POWER_ITERATIONS, power, jnp.ones(phi.shape[1], phi.dtype) / math.sqrt(phi.shape[1]))
        curvature = jnp.maximum(jnp.vdot(top, hess(top)), 1e-30) * 1.05   # a little above the estimate
        eta = self.lr / curvature
        rhs = wphi.T @ y / m

        def step(_, state):
            u, vel = state
            ahead = u + self.momentum * vel
            vel = self.momentum * vel - eta * (hess(ahead) - rhs)
            return u + vel, vel

        zero = jnp.zeros(phi.shape[1], phi.dtype)
        u, _ = jax.lax.fori_loop(0, self.steps, step, (zero, zero))
        return u

    def fit(self, key: jax.Array, x: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> dict:
        """{"v": (n, width), "u": (width + 1,), "mean", "std": feature standardisation,
        "knots": (outer_width,), "c": (outer_width + 2,) outer coefficients}."""
        x, weights = _fit_inputs(x, y, weights)
        v = jax.random.normal(jax.random.fold_in(key, 0), (x.shape[1], self.width), x.dtype)
        v = v / jnp.linalg.norm(v, axis=0, keepdims=True)
        if self.split:
            even = (jnp.arange(x.shape[0]) % 2 == 0).astype(weights.dtype)
            w1, w2 = weights * even, weights * (1 - even)
        else:
            w1 = w2 = weights
        phi = self.inner(v, x)
        u = self._stage1(phi, y, w1)
        raw = phi @ u
        mean, std = _weighted_mean_std(raw, w2)
        z = (raw - mean) / std
        knots = _weighted_quantiles(z, w2, self.outer_width)
        c = ridge_solve(outer_features(z, knots), y, w2, self.outer_ridge)
        return {"v": v, "u": u, "mean": mean, "std": std, "knots": knots, "c": c}

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        z = (self.feature(params, x) - params["mean"]) / params["std"]
        return outer_features(z, params["knots"]) @ params["c"]
