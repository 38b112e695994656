"""Hierarchical polynomials h = g ∘ p under x ~ N(0, I_n) (Wang–Nichani–Lee 2024).

    p(x) = r^{−1/2} Σ_{i≤r} He_k(⟨v_i, x⟩)/√(k!)        v_1 … v_r orthonormal
    h(x) = (g(p(x)) − μ)/σ                                g = He_q/√(q!) or a user polynomial

He_k is the probabilists' Hermite polynomial; He_k(z)/√(k!) are orthonormal under N(0, 1), so
p has mean 0 and variance 1 for k ≥ 1 (the ⟨v_i, x⟩ are independent standard normals). p is not
Gaussian when k ≥ 2, so g(p) is centred and scaled by its exact mean μ and standard deviation σ,
computed from the moments of p (Gauss–Hermite quadrature for one term, then the binomial
convolution for the sum of r terms) — so the labels have mean 0 and variance 1 exactly.

In the paper's notation the input dimension is d (here `n`), p has degree k and g degree q; the
three-layer learner needs about n^k samples and kernels about n^{kq} (`theory.hierarchical_samples`).
The setup of the paper's Figure 2 is ``k=3, q=3, r=n, directions="coordinate",
g_coeffs=[0, 0, 0, 1]`` (p = Σ λ_i He₃(x_i) with random signs λ_i, g(z) ∝ z³).

Example:
    >>> t = Hierarchical(n=16, k=2, r=4, q=2)
    >>> tp = t.init(jax.random.key(0))                 # {"v": (16, 4)} orthonormal columns
    >>> x, y = t.sample(tp, jax.random.key(1), 1024)   # Gaussian x, real y
    >>> tp["v"].shape, x.shape, y.shape, t.feature(tp, x).shape    # feature: the inner p(x)
    ((16, 4), (1024, 16), (1024,), (1024,))
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial import hermite_e

from sparselearn.errors import require
from sparselearn.runtime import tiered_jit
from sparselearn.targets.inputs import LabelNoise, draw_many, labelled, orthonormal_columns

HIGHEST = jax.lax.Precision.HIGHEST


def hermite(z: jax.Array, k: int) -> jax.Array:
    """Probabilists' Hermite polynomial He_k(z), elementwise, by the three-term recurrence
    He_{j+1}(z) = z·He_j(z) − j·He_{j−1}(z).

    Example:
        >>> hermite(jnp.array([2.0]), 3)        # 2³ − 3·2 = 2
        Array([2.], dtype=float32)
    """
    prev, cur = jnp.ones_like(z), z
    if k == 0:
        return prev
    for j in range(1, k):
        prev, cur = cur, z * cur - j * prev
    return cur


def hermite_normalized(z: jax.Array, k: int) -> jax.Array:
    """He_k(z)/√(k!): orthonormal under N(0, 1)."""
    return hermite(z, k) / math.sqrt(math.factorial(k))


def hermite_coeffs(q: int) -> tuple[float, ...]:
    """Monomial coefficients (c_0, …, c_q) of He_q/√(q!), lowest degree first."""
    c = hermite_e.herme2poly([0.0] * q + [1.0]) / math.sqrt(math.factorial(q))
    return tuple(float(v) for v in c)


@functools.lru_cache(maxsize=None)
def feature_moments(k: int, r: int, order: int) -> tuple[float, ...]:
    """E[p^j] for j = 0 … order, where p = r^{−1/2} Σ_{i≤r} He_k(ξ_i)/√(k!) with ξ_i iid N(0, 1).

    One term's moments by Gauss–Hermite quadrature (exact for these polynomial degrees), then
    r-fold convolution E[(S + Y)^j] = Σ_l C(j, l) E[S^l] E[Y^{j−l}].

    Example:
        >>> np.allclose(feature_moments(1, 3, 4), (1, 0, 1, 0, 3))      # p ~ N(0, 1)
        True
    """
    nodes, weights = hermite_e.hermegauss(k * order // 2 + 2)
    weights = weights / weights.sum()
    term = hermite_e.hermeval(nodes, [0.0] * k + [1.0]) / math.sqrt(math.factorial(k) * r)
    one = np.array([np.sum(weights * term ** j) for j in range(order + 1)])
    binom = np.array([[math.comb(j, l) for l in range(order + 1)] for j in range(order + 1)], dtype=float)
    total = np.zeros(order + 1)
    total[0] = 1.0
    for _ in range(r):
        total = np.array([np.sum(binom[j, : j + 1] * total[: j + 1] * one[j::-1]) for j in range(order + 1)])
    return tuple(float(v) for v in total)


def polynomial_moments(coeffs: tuple[float, ...], k: int, r: int) -> tuple[float, float]:
    """Exact (mean, standard deviation) of g(p) with g = Σ_i coeffs[i]·z^i and p as in `feature_moments`."""
    c = np.asarray(coeffs, float)
    moments = np.asarray(feature_moments(k, r, 2 * (len(c) - 1)))
    mean = float(np.sum(c * moments[: len(c)]))
    second = float(sum(c[i] * c[j] * moments[i + j] for i in range(len(c)) for j in range(len(c))))
    return mean, math.sqrt(max(second - mean ** 2, 0.0))


#: the largest degree k·q of h: up to it float32 labels stay finite (checked at k·q = 48 for
#: every split of k and q from 1·48 to 48·1); at k = q = 12 or k = 4, q = 30 none of them were
MAX_DEGREE = 48


@dataclass(frozen=True)
class Hierarchical(LabelNoise):
    """h = g ∘ p with a degree-k, rank-r inner polynomial p and an outer polynomial g of degree q.

    Fields: `n` (input dimension d), `k` (degree of p), `r` (number of directions, ≤ n), `q`
    (degree of g = He_q/√(q!); default 2), `g_coeffs` (a user polynomial g(z) = Σ c_i z^i, lowest
    degree first; then q, if given, must equal its degree), `directions` (random orthonormal, or
    signed coordinate axes), `noise` (std of additive Gaussian label noise), `inputs` (gaussian).

    h has degree k·q in x, at most MAX_DEGREE. Its variance is 1, but as k·q grows it sits in
    ever rarer inputs: the std of 65,536 draws is 0.73 at k = q = 3, 0.11 at k = q = 4 and 3e-4
    at k = 4, q = 8 (while k = 1 or q = 1 stay near 1), so large k·q teachers are nearly 0 on
    any sample a run sees.

    Example:
        >>> Hierarchical(n=32, k=3, r=32, q=3, directions="coordinate", g_coeffs=(0, 0, 0, 1))
        Hierarchical(n=32, k=3, r=32, q=3, g_coeffs=(0, 0, 0, 1), directions='coordinate', ...)
    """

    n: int = 16
    k: int = 2
    r: int = 4
    q: int | None = None
    g_coeffs: tuple[float, ...] | None = None
    directions: Literal["random", "coordinate"] = "random"
    noise: float = 0.0
    inputs: Literal["gaussian"] = "gaussian"

    name: ClassVar[str] = "hierarchical"
    task: ClassVar[str] = "regression"

    def __post_init__(self):
        require(self.inputs == "gaussian", "inputs",
                f"hierarchical targets are defined for 'gaussian' inputs; got {self.inputs!r}")
        require(self.directions in ("random", "coordinate"), "directions",
                f"must be 'random' or 'coordinate'; got {self.directions!r}")
        require(self.n >= 1, "n", f"must be ≥ 1, got {self.n}")
        require(self.k >= 1, "k", f"degree of p must be ≥ 1, got {self.k}")
        require(1 <= self.r <= self.n, "r", f"must satisfy 1 ≤ r ≤ n = {self.n}, got {self.r}")
        require(self.q is None or self.q >= 1, "q", f"degree of g must be ≥ 1, got {self.q}")
        require(self.noise >= 0.0, "noise", f"noise standard deviation must be ≥ 0, got {self.noise}")
        require(self.k <= MAX_DEGREE, "k", f"degree of p must be ≤ {MAX_DEGREE} (float32 labels), got {self.k}")
        if self.g_coeffs is not None:
            degree = self.degree
            require(degree >= 1, "g_coeffs", f"g must be a non-constant polynomial, got {list(self.g_coeffs)}")
            require(self.q is None or self.q == degree, "q",
                    f"must equal the degree of g_coeffs ({degree}), got {self.q}")
        require(self.k * self.degree <= MAX_DEGREE, "q" if self.g_coeffs is None else "g_coeffs",
                f"h = g∘p has degree k·q = {self.k}·{self.degree} = {self.k * self.degree}, above {MAX_DEGREE}: "
                f"its float32 labels overflow")
        _, std = self.normalization
        require(std > 0, "g_coeffs", "g(p) is constant")

    @property
    def degree(self) -> int:
        """Degree q of the outer polynomial g."""
        if self.g_coeffs is None:
            return 2 if self.q is None else self.q
        nonzero = [i for i, c in enumerate(self.g_coeffs) if c != 0]
        return nonzero[-1] if nonzero else 0

    @property
    def coeffs(self) -> tuple[float, ...]:
        """Monomial coefficients of g, lowest degree first."""
        if self.g_coeffs is None:
            return hermite_coeffs(self.degree)
        return tuple(float(c) for c in self.g_coeffs[: self.degree + 1])

    @property
    def normalization(self) -> tuple[float, float]:
        """Exact (μ, σ) of g(p(x)) under N(0, I_n)."""
        return polynomial_moments(self.coeffs, self.k, self.r)

    @tiered_jit(static_argnums=0)
    def init(self, key: jax.Array) -> dict:
        """Teacher parameters: {"v": (n, r)} with orthonormal columns."""
        if self.directions == "coordinate":
            order, flips = draw_many("uniform", jax.random.fold_in(key, 1), (self.n,), (self.r,))
            axes = jnp.argsort(order)[: self.r]
            signs = jnp.where(flips < 0.5, 1.0, -1.0).astype(jnp.float32)
            return {"v": jnp.zeros((self.n, self.r), jnp.float32).at[axes, jnp.arange(self.r)].set(signs)}
        g = jax.random.normal(jax.random.fold_in(key, 0), (self.n, self.r), jnp.float32)
        return {"v": orthonormal_columns(g)}

    def feature(self, params: dict, x: jax.Array) -> jax.Array:
        """The inner polynomial p(x), shape (m,): mean 0, variance 1."""
        z = jnp.matmul(x, params["v"], precision=HIGHEST)
        return jnp.sum(hermite_normalized(z, self.k), axis=1) / math.sqrt(self.r)

    def labels(self, params: dict, x: jax.Array) -> jax.Array:
        """Noiseless labels (g(p(x)) − μ)/σ, shape (m,)."""
        z = self.feature(params, x)
        out = jnp.zeros_like(z)
        for c in reversed(self.coeffs):          # Horner
            out = out * z + c
        mean, std = self.normalization
        return (out - mean) / std

    @tiered_jit(static_argnums=(0, 3))
    def sample(self, params: dict, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        """m labelled examples: x (m, n) float32 ~ N(0, I_n), y (m,) float32."""
        return labelled(self, params, key, m)
