"""The low-degree algorithm: least squares on every monomial of degree ≤ q.

On ±1 inputs (hypercube, biased) the features are the Walsh characters χ_T(x) = Π_{i∈T} x_i
for all sets |T| ≤ q: Σ_{j≤q} C(n, j) of them, orthonormal under the uniform cube, so the
fitted coefficients estimate the Fourier coefficients f̂(T). On Gaussian inputs they are the
products of normalised Hermite polynomials Π_i h_{α_i}(x_i), h_j = He_j/√(j!), over all
multi-indices with |α| ≤ q: C(n + q, q) of them, orthonormal under N(0, I_n). Either way the
span is all polynomials of degree ≤ q (on the cube, x_i² = 1), and the fit is

    c = argmin (1/m) Σ_i w_i (Φ(x_i)·c − y_i)² + ridge‖c‖²        (weights w ∈ {0, 1})

solved exactly (`kernels.ridge_solve`: primal or dual, whichever system is smaller).

Choosing the basis. The learner never sees the target, so `basis` says which one to use:
``walsh`` or ``hermite`` explicitly, or ``auto`` (default), which decides from the training
rows themselves: Walsh when every weighted entry is ±1, Hermite otherwise. ``auto`` lays out
the Hermite index set (C(n + q, q) columns) and, on ±1 data, sets the columns of repeated
indices to zero, so it costs a little more than ``walsh`` on the cube (for n = 30, q = 3:
5456 columns instead of 4526); configs that know their inputs may name the basis. The config
check rejects a basis that does not fit the target's inputs.

Feature maps are built without loops over samples: each monomial is a product of at most q
factors h_j(x_i), gathered from a per-coordinate table (m, n, q + 1), one gather per factor.

Options: `keep` refits least squares on the `keep` largest coefficients only (a support
selection for sparse targets); `clip` clips the output to [−clip, clip] (the paper's C_H).

Example:
    >>> x = jax.random.rademacher(jax.random.key(1), (512, 10)).astype(jnp.float32)
    >>> y = x[:, 0] * x[:, 4] * x[:, 7]
    >>> ld = LowDegree(degree=3, basis="walsh")
    >>> params = jax.jit(ld.fit)(jax.random.key(0), x, y, jnp.ones(len(y)))
    >>> round(float(dict(zip(ld.terms(10), params["coef"]))[(0, 4, 7)]), 3)     # estimate of f̂({0, 4, 7})
    1.0
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np

from sparselearn.contracts import input_distribution
from sparselearn.errors import ConfigError, require
from sparselearn.learners.kernels import _fit_inputs, check_memory, ridge_solve, solve_bytes

BASES = ("auto", "walsh", "hermite")
#: Most monomials `features` will enumerate (a guard for direct calls; configs are checked by memory).
MAX_TERMS = 5_000_000


def feature_count(n: int, degree: int, basis: str) -> int:
    """Number of monomials: Σ_{j≤q} C(n, j) for walsh, C(n + q, q) for hermite and auto."""
    if basis == "walsh":
        return sum(math.comb(n, j) for j in range(min(degree, n) + 1))
    return math.comb(n + degree, degree)


@functools.lru_cache(maxsize=16)
def terms(n: int, degree: int, basis: str) -> tuple[tuple[int, ...], ...]:
    """The monomials in feature order: sorted coordinate tuples, by degree then lexicographic.
    Walsh: sets, e.g. (0, 4, 7) = x_0 x_4 x_7. Hermite/auto: multisets, e.g. (0, 0, 3) =
    h_2(x_0) h_1(x_3); () is the constant."""
    make = itertools.combinations if basis == "walsh" else itertools.combinations_with_replacement
    return tuple(t for j in range(degree + 1) for t in make(range(n), j))


@functools.lru_cache(maxsize=16)
def factor_table(n: int, degree: int, basis: str) -> np.ndarray:
    """(N, degree) int32: feature t is Π_s table[:, idx[t, s]] of the flattened per-coordinate
    factor table (m, n·(degree + 1)), column i·(degree + 1) + j holding h_j(x_i); unused slots
    point at column 0 (h_0 = 1)."""
    rows = []
    for term in terms(n, degree, basis):
        slots = [i * (degree + 1) + c for i, c in sorted(_counts(term).items())]
        rows.append(slots + [0] * (degree - len(slots)))
    return np.asarray(rows, dtype=np.int32).reshape(-1, degree)


@functools.lru_cache(maxsize=16)
def repeated(n: int, degree: int, basis: str) -> np.ndarray:
    """(N,) bool: the terms with a repeated coordinate (0 on ±1 inputs under ``auto``)."""
    return np.asarray([len(set(t)) < len(t) for t in terms(n, degree, basis)], dtype=bool)


def _counts(term: tuple[int, ...]) -> dict[int, int]:
    out: dict[int, int] = {}
    for i in term:
        out[i] = out.get(i, 0) + 1
    return out


def hermite_table(x: jax.Array, degree: int) -> jax.Array:
    """h_j(x) = He_j(x)/√(j!) for j = 0 … degree, shape x.shape + (degree + 1,)."""
    he = [jnp.ones_like(x), x]
    for j in range(1, degree):
        he.append(x * he[j] - j * he[j - 1])
    he = he[: degree + 1]
    return jnp.stack([h / math.sqrt(math.factorial(j)) for j, h in enumerate(he)], axis=-1)


def walsh_table(x: jax.Array, degree: int) -> jax.Array:
    """(1, x, 0, …, 0) per entry, shape x.shape + (degree + 1,): powers above 1 vanish."""
    zeros = [jnp.zeros_like(x)] * (degree - 1)
    return jnp.stack([jnp.ones_like(x), x] + zeros, axis=-1)[..., : degree + 1]


def on_cube(x: jax.Array, weights: jax.Array) -> jax.Array:
    """True when every entry of the weighted rows is ±1 (a traced bool)."""
    return jnp.all((jnp.abs(x) == 1.0) | (weights[:, None] == 0))


def features(x: jax.Array, degree: int, basis: str, cube: jax.Array | bool = False) -> jax.Array:
    """The monomial features of x (m, n), shape (m, feature_count(n, degree, basis)).

    `cube` (used by ``auto`` only; may be traced): factor entries are Walsh (1, x, 0 …)
    instead of Hermite, so the multiset terms with a repeated index are 0.

    Example:
        >>> features(jnp.array([[1., -1.]]), 2, "walsh")      # 1, x0, x1, x0·x1
        Array([[ 1.,  1., -1., -1.]], dtype=float32)
    """
    m, n = x.shape
    count = feature_count(n, degree, basis)
    if count > MAX_TERMS:
        raise ValueError(f"degree {degree} on n = {n} gives {count:,} {basis} features, over MAX_TERMS = {MAX_TERMS:,}")
    if degree == 0:
        return jnp.ones((m, 1), x.dtype)
    if basis == "walsh":
        table = walsh_table(x, degree)
    elif basis == "hermite":
        table = hermite_table(x, degree)
    else:
        table = jnp.where(cube, walsh_table(x, degree), hermite_table(x, degree))
    flat = table.reshape(m, n * (degree + 1))
    idx = factor_table(n, degree, basis)
    out = jnp.take(flat, idx[:, 0], axis=1)
    for s in range(1, degree):
        out = out * jnp.take(flat, idx[:, s], axis=1)
    return out


@dataclass(frozen=True)
class LowDegree:
    """Least squares (optionally ridge) on all monomials of degree ≤ `degree`.

    Fields: `degree` (q ≥ 0), `basis` (auto, walsh, hermite; see the module docstring),
    `ridge` (≥ 0; 0 is plain least squares, its minimum-norm solution where m < the number of
    features or rows repeat),
    `keep` (refit on the `keep` largest |coefficients|; None keeps all), `clip` (clip outputs
    to [−clip, clip]; None does not), `max_memory_gb` (the config check's per-run limit).

    Example:
        >>> x, y, w = jnp.ones((8, 30)), jnp.ones(8), jnp.ones(8)      # n = 30
        >>> jax.eval_shape(LowDegree(degree=3, basis="walsh").fit, jax.random.key(0), x, y, w)["coef"].shape
        (4526,)
    """

    degree: int = 2
    basis: Literal["auto", "walsh", "hermite"] = "auto"
    ridge: float = 1e-4
    keep: int | None = None
    clip: float | None = None
    max_memory_gb: float = 8.0

    name: ClassVar[str] = "lowdegree"
    kind: ClassVar[str] = "fitted"

    def __post_init__(self):
        require(self.degree >= 0, "degree", f"must be ≥ 0, got {self.degree}")
        require(self.basis in BASES, "basis", f"must be one of {', '.join(BASES)}; got {self.basis!r}")
        require(math.isfinite(self.ridge) and self.ridge >= 0, "ridge", f"must be a finite number ≥ 0, got {self.ridge}")
        require(self.keep is None or self.keep >= 1, "keep", f"must be ≥ 1 (or null for all), got {self.keep}")
        require(self.clip is None or self.clip > 0, "clip", f"must be > 0 (or null), got {self.clip}")
        require(self.max_memory_gb > 0, "max_memory_gb", f"must be > 0, got {self.max_memory_gb}")

    def terms(self, n: int) -> tuple[tuple[int, ...], ...]:
        """The monomial of each coefficient, in order (see `terms`)."""
        return terms(n, self.degree, self.basis)

    def check(self, target, data) -> None:
        """Degree vs n, basis vs the target's inputs, `keep` vs the feature count, and memory."""
        n, inputs = target.n, input_distribution(target)
        discrete = inputs in ("hypercube", "biased")
        if self.basis == "walsh":
            require(self.degree <= n, "degree", f"Walsh characters have degree ≤ n = {n}, got degree {self.degree}")
            require(inputs is None or discrete, "basis",
                    f"walsh is for ±1 inputs; target {target.name} has {inputs} inputs: use hermite or auto")
        if self.basis == "hermite":
            require(inputs is None or not discrete, "basis",
                    f"hermite is for Gaussian inputs; target {target.name} has {inputs} (±1) inputs: use walsh or auto")
        count = feature_count(n, self.degree, self.basis)
        formula = f"Σ_(j≤{self.degree}) C({n}, j)" if self.basis == "walsh" else f"C({n}+{self.degree}, {self.degree})"
        require(count <= MAX_TERMS, "degree",
                f"{self.degree} on n = {n} gives {count:,} {self.basis} features ({formula}), over the "
                f"{MAX_TERMS:,} a fit builds: lower the degree")
        require(self.keep is None or self.keep <= count, "keep",
                f"keeps {self.keep} coefficients but there are only {count:,} features")
        try:
            check_memory(solve_bytes(data.m, count, data.test_m, n * (self.degree + 2)), self.max_memory_gb,
                         f"degree {self.degree} on n = {n} gives {count:,} features ({formula}); with m = {data.m}"
                         " rows that", "degree")
        except ConfigError as e:
            raise ConfigError(e.message + " (lower the degree or m, or raise max_memory_gb)", key=e.key) from None

    def _phi(self, x: jax.Array, cube) -> jax.Array:
        return features(x, self.degree, self.basis, cube)

    def fit(self, key: jax.Array, x: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> dict:
        """{"coef": (N,) coefficients in `terms` order, "cube": bool (auto's choice of basis)}."""
        x, weights = _fit_inputs(x, y, weights)
        if self.basis == "walsh" and self.degree > x.shape[1]:
            raise ValueError(f"degree {self.degree} exceeds n = {x.shape[1]} (Walsh characters)")
        cube = on_cube(x, weights) if self.basis == "auto" else jnp.bool_(self.basis == "walsh")
        phi = self._phi(x, cube)
        if self.keep is not None and self.keep > phi.shape[1]:
            raise ValueError(f"keep = {self.keep} exceeds the {phi.shape[1]} features")
        live = ~(cube & jnp.asarray(repeated(x.shape[1], self.degree, self.basis))) if self.basis == "auto" else None
        coef = ridge_solve(phi, y, weights, self.ridge, live)
        if self.keep is not None and self.keep < phi.shape[1]:
            _, top = jax.lax.top_k(jnp.abs(coef), self.keep)
            # dead columns (zero on the cube) can be among the kept ones when keep exceeds
            # the live count: without their mask a ridge-free refit would be singular
            kept_live = None if live is None else live[top]
            refit = ridge_solve(jnp.take(phi, top, axis=1), y, weights, self.ridge, kept_live)
            coef = jnp.zeros_like(coef).at[top].set(refit)
        return {"coef": coef, "cube": cube}

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        out = self._phi(x, params["cube"]) @ params["coef"]
        return out if self.clip is None else jnp.clip(out, -self.clip, self.clip)
