"""Hierarchical polynomials h = g ∘ p under x ~ N(0, I_n) (Wang–Nichani–Lee 2024).

    p(x) = r^{−1/2} Σ_{i≤r} He_k(⟨v_i, x⟩)/√(k!)        v_1 … v_r orthonormal
    h(x) = (g(p(x)) − μ)/σ                                g = He_q/√(q!) or a user polynomial

He_k is the probabilists' Hermite polynomial; He_k(z)/√(k!) are orthonormal under N(0, 1), so
p has mean 0 and variance 1 for k ≥ 1 (the ⟨v_i, x⟩ are independent standard normals). p is not
Gaussian when k ≥ 2, so g(p) is centred and scaled by its exact mean μ and standard deviation σ:
the moments of p are integers over powers of √(k!·r) (He_k has integer coefficients and
E ξ^d = (d − 1)!!), so μ and σ² are computed in rational arithmetic and rounded once — the labels
have mean 0 and variance 1 up to float rounding. The default g is evaluated by the three-term
recurrence (the monomial coefficients of He_q cancel catastrophically at large q); a user g by
Horner's rule, refused when that would cancel (`monomial_condition` above MAX_CONDITION).

In the paper's notation the input dimension is d (here `n`), p has degree k and g degree q; the
three-layer learner needs about n^k samples and kernels about n^{kq}
(`theory.hierarchical_samples_three_layer`, `theory.hierarchical_samples_kernel`).
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
from fractions import Fraction
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
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
    """He_k(z)/√(k!), elementwise: orthonormal under N(0, 1). By the normalised recurrence
    h_{j+1} = (z·h_j − √j·h_{j−1})/√(j+1), which stays in float32 range where He_k itself does not
    (He_48(z) exceeds float32's largest value from |z| ≈ 8.8)."""
    prev, cur = jnp.ones_like(z), z
    if k == 0:
        return prev
    for j in range(1, k):
        prev, cur = cur, (z * cur - math.sqrt(j) * prev) / math.sqrt(j + 1)
    return cur


def hermite_coeffs(q: int) -> tuple[float, ...]:
    """Monomial coefficients (c_0, …, c_q) of He_q/√(q!), lowest degree first."""
    c = hermite_e.herme2poly([0.0] * q + [1.0]) / math.sqrt(math.factorial(q))
    return tuple(float(v) for v in c)


def _hermite_int(k: int) -> tuple[int, ...]:
    """Integer monomial coefficients of He_k, lowest degree first."""
    prev, cur = [1], [0, 1]
    if k == 0:
        return tuple(prev)
    for j in range(1, k):
        nxt = [0] + cur
        for i, c in enumerate(prev):
            nxt[i] -= j * c
        prev, cur = cur, nxt
    return tuple(cur)


def _polymul(a, b) -> list:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        if x:
            for j, y in enumerate(b):
                out[i + j] += x * y
    return out


def _convolve(a: list[int], b: list[int]) -> list[int]:
    """Moments of S + Y from those of independent S and Y: Σ_l C(j, l) a_l b_{j−l}."""
    return [sum(math.comb(j, l) * a[l] * b[j - l] for l in range(j + 1)) for j in range(len(a))]


@functools.lru_cache(maxsize=None)
def _sum_moments(k: int, r: int, order: int) -> tuple[int, ...]:
    """E[T^j] for j = 0 … order, T = Σ_{i≤r} He_k(ξ_i) with ξ_i iid N(0, 1): integers, as He_k has
    integer coefficients and E ξ^d = (d − 1)!! for even d. E[p^j] = E[T^j]/(k!·r)^{j/2}."""
    he = _hermite_int(k)
    gauss = [0 if d % 2 else math.prod(range(1, d, 2)) for d in range(k * order + 1)]
    one, power = [], [1]
    for j in range(order + 1):
        one.append(sum(c * gauss[d] for d, c in enumerate(power)))
        if j < order:
            power = _polymul(power, he)
    total, base = [1] + [0] * order, one
    while r:                                    # r-fold convolution by repeated squaring
        if r & 1:
            total = _convolve(total, base)
        r >>= 1
        if r:
            base = _convolve(base, base)
    return tuple(total)


def _to_float(x: Fraction, y: Fraction, n: int) -> float:
    """x + y/√n rounded once: when the two terms have opposite signs, as (x² − y²/n)/(x − y/√n),
    whose numerator is exact and whose denominator does not cancel."""
    if x == 0 or y == 0 or (x > 0) == (y > 0):
        return float(x) + float(y) / math.sqrt(n)
    return float(x * x - y * y / n) / (float(x) - float(y) / math.sqrt(n))


@functools.lru_cache(maxsize=None)
def feature_moments(k: int, r: int, order: int) -> tuple[float, ...]:
    """E[p^j] for j = 0 … order, where p = r^{−1/2} Σ_{i≤r} He_k(ξ_i)/√(k!) with ξ_i iid N(0, 1).

    Exact integer moments of the sum (one term's from He_k's integer coefficients, then the r-fold
    convolution E[(S + Y)^j] = Σ_l C(j, l) E[S^l] E[Y^{j−l}]), then rounded to float.

    Example:
        >>> np.allclose(feature_moments(1, 3, 4), (1, 0, 1, 0, 3))      # p ~ N(0, 1)
        True
    """
    n = math.factorial(k) * r
    return tuple(float(Fraction(m, n ** (j // 2))) / math.sqrt(n) ** (j % 2)
                 for j, m in enumerate(_sum_moments(k, r, order)))


def _expect(coeffs: tuple, moments: tuple[int, ...], n: int) -> tuple[Fraction, Fraction]:
    """E[Σ_i coeffs[i]·p^i] for rational coefficients, exactly, from the integer moments E[T^i] of
    `_sum_moments` (p = T/√n, n = k!·r): (x, y) with value x + y/√n."""
    x = y = Fraction(0)
    for i, c in enumerate(coeffs):
        if c and moments[i]:
            term = c * Fraction(moments[i], n ** (i // 2))
            x, y = (x, y + term) if i % 2 else (x + term, y)
    return x, y


@functools.lru_cache(maxsize=None)
def _exact_moments(coeffs: tuple, k: int, r: int) -> tuple[float, float]:
    """(mean, standard deviation) of g(p), g = Σ_i coeffs[i]·z^i with rational coefficients:
    computed exactly in rational arithmetic, rounded once."""
    n = math.factorial(k) * r
    moments = _sum_moments(k, r, 2 * (len(coeffs) - 1))
    a, b = _expect(coeffs, moments, n)
    c, d = _expect(_polymul(coeffs, coeffs), moments, n)
    # Var = E g² − (E g)², with E g = a + b/√n and E g² = c + d/√n
    variance = _to_float(c - a * a - b * b / n, d - 2 * a * b, n)
    return _to_float(a, b, n), math.sqrt(max(variance, 0.0))


def polynomial_moments(coeffs: tuple[float, ...], k: int, r: int) -> tuple[float, float]:
    """Exact (mean, standard deviation) of g(p) with g = Σ_i coeffs[i]·z^i and p as in
    `feature_moments`: the float coefficients are taken as the exact rationals they are."""
    return _exact_moments(tuple(Fraction(c) for c in coeffs), k, r)


def monomial_condition(coeffs: tuple[float, ...], k: int, r: int) -> float:
    """Σ_{i≥1} |c_i|·‖p^i‖₂ / std(g(p)): how far float32 Horner's rule on the coefficients of g
    cancels (the relative error of the labels is at most about this times 6e-8; the constant term,
    which only shifts the mean, is left out). 1 for a monomial of odd degree when k = 1."""
    _, std = polynomial_moments(coeffs, k, r)
    n = math.factorial(k) * r
    moments = _sum_moments(k, r, 2 * (len(coeffs) - 1))
    size = sum(abs(c) * math.sqrt(float(Fraction(moments[2 * i], n ** i))) for i, c in enumerate(coeffs) if i)
    return size / std if std > 0 else math.inf


#: a user g is refused when `monomial_condition` exceeds this (the float32 labels of He_q's own
#: monomial coefficients had relative RMS errors of 0.1–0.3 × 6e-8 × the condition: 2.5e-4 at q = 20)
MAX_CONDITION = 1e4

#: the largest degree k·q of h: up to it the default g's float32 labels stay finite and accurate
#: (checked at k·q = 48 for every split of k and q from 1·48 to 48·1, r = 1, 4, 16: relative RMS
#: error against float64 at most 2e-6 over 65,536 draws); at k = q = 12 or k = 4, q = 30 none
#: of them were finite
MAX_DEGREE = 48


@dataclass(frozen=True)
class Hierarchical(LabelNoise):
    """h = g ∘ p with a degree-k, rank-r inner polynomial p and an outer polynomial g of degree q.

    Fields: `n` (input dimension d), `k` (degree of p), `r` (number of directions, ≤ n), `q`
    (degree of g = He_q/√(q!); default 2), `g_coeffs` (a user polynomial g(z) = Σ c_i z^i, lowest
    degree first; then q, if given, must equal its degree), `directions` (random orthonormal, or
    signed coordinate axes), `noise` (std of additive Gaussian label noise), `inputs` (gaussian).

    h has degree k·q in x, at most MAX_DEGREE. Its variance is 1, but as k·q grows it sits in
    ever rarer inputs: at n = 16, r = 4 the std of 65,536 draws ranges over 8 keys from 0.61 to
    1.4 at k = q = 3, 0.06 to 1.1 at k = q = 4 and 6e-6 to 5e-3 at k = 4, q = 8; k = 1 is not
    spared (0.59–0.79 at q = 16, 0.52–0.65 at q = 24: He_q(ξ) is itself heavy-tailed), so large
    k·q teachers are nearly 0 on most samples a run sees.

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
        if self.g_coeffs is not None and not isinstance(self.g_coeffs, tuple):   # a list: jit needs it hashable
            object.__setattr__(self, "g_coeffs", tuple(self.g_coeffs))
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
        try:
            _, std = self.normalization
        except OverflowError:   # exact moments too large for a float (coefficients near 1e200)
            std = math.inf
        require(math.isfinite(std), "g_coeffs", f"the std of g(p) overflows a float: coefficients "
                f"{list(self.g_coeffs or ())} are too large (they only scale h, which is normalised: divide them)")
        require(std > 0, "g_coeffs", "g(p) is constant")
        if self.g_coeffs is not None:
            condition = monomial_condition(self.coeffs, self.k, self.r)
            require(condition <= MAX_CONDITION, "g_coeffs",
                    f"Horner's rule on these coefficients cancels: Σ|c_i|·‖p^i‖ is {condition:.3g} times the "
                    f"std of g(p), above {MAX_CONDITION:g}, so float32 labels would carry relative errors up to "
                    f"about {6e-8 * condition:.1g}; for g = He_q/√(q!) give q instead (evaluated by the Hermite "
                    f"recurrence)")

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
        """Exact (μ, σ) of g(p(x)) under N(0, I_n), up to float rounding."""
        if self.g_coeffs is None:
            mean, std = _exact_moments(_hermite_int(self.degree), self.k, self.r)
            scale = math.sqrt(math.factorial(self.degree))
            return mean / scale, std / scale
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
        mean, std = self.normalization
        if self.g_coeffs is None:       # the monomial coefficients of He_q cancel: use the recurrence
            return (hermite_normalized(z, self.degree) - mean) / std
        # Horner's rule without the constant term, which only shifts the mean (and float32 could
        # not add a small p^i to a large one)
        shifted = (0.0,) + self.coeffs[1:]
        out = jnp.zeros_like(z)
        for c in reversed(shifted):
            out = out * z + c
        return (out - polynomial_moments(shifted, self.k, self.r)[0]) / std

    @tiered_jit(static_argnums=(0, 3))
    def sample(self, params: dict, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        """m labelled examples: x (m, n) float32 ~ N(0, I_n), y (m,) float32."""
        return labelled(self, params, key, m)
