"""Parities and staircases on {±1}^n.

- `SparseParity` (``sparse_parity``): y = χ_S(x) = Π_{i∈S} x_i with |S| = k, a ±1 label.
- `Staircase` (``staircase``): y = k^{−1/2} Σ_{j≤k} Π_{i≤j} x_{s_i}, the sum of the nested
  monomials x_{s_1}, x_{s_1}x_{s_2}, …, x_{s_1}⋯x_{s_k} (a real label; unit variance under
  the uniform hypercube, since the k monomials are orthonormal there).

Both accept ``inputs="biased"`` (each coordinate +1 with probability `p`). Under a biased
measure the parity correlates with the single coordinates of S, so it becomes easy for
gradient methods; ``p = 0.5`` recovers the uniform hypercube.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from sparselearn.errors import require
from sparselearn.runtime import tiered_jit
from sparselearn.targets.inputs import LabelNoise, check_probability, labelled


def _check_common(n: int, k: int, p: float, inputs: str) -> None:
    require(inputs in ("hypercube", "biased"), "inputs", f"must be 'hypercube' or 'biased', got {inputs!r}")
    require(n >= 1, "n", f"must be ≥ 1, got {n}")
    require(1 <= k <= n, "k", f"must satisfy 1 ≤ k ≤ n = {n}, got {k}")
    check_probability(p, inputs)


def _support(key: jax.Array, n: int, k: int) -> jax.Array:
    """k distinct coordinates in random order, shape (k,) int32."""
    return jax.random.permutation(key, n)[:k].astype(jnp.int32)


@dataclass(frozen=True)
class SparseParity(LabelNoise):
    """A k-sparse parity of n bits; each label flipped with probability `noise`
    (`noise: 0.5` makes the labels independent of x: the random-label control).

    The support S is drawn by `init` (uniform among the C(n, k) subsets).

    Example:
        >>> t = SparseParity(n=30, k=3)
        >>> tp = t.init(jax.random.key(0))            # {"support": (3,) int32}
        >>> x, y = t.sample(tp, jax.random.key(1), 1024)
        >>> x.shape, y.shape, np.unique(y).tolist()
        ((1024, 30), (1024,), [-1.0, 1.0])
    """

    n: int = 30
    k: int = 3
    noise: float = 0.0
    inputs: Literal["hypercube", "biased"] = "hypercube"
    p: float = 0.5

    name: ClassVar[str] = "sparse_parity"
    task: ClassVar[str] = "classification"

    def __post_init__(self):
        _check_common(self.n, self.k, self.p, self.inputs)
        require(0.0 <= self.noise <= 0.5, "noise", f"label-flip probability must be in [0, 0.5], got {self.noise}")

    @property
    def threshold_degree(self) -> int:
        """k: the least degree of a polynomial whose sign is χ_S on every ±1 input."""
        return self.k

    @tiered_jit(static_argnums=0)
    def init(self, key: jax.Array) -> dict:
        """Teacher parameters: the support S, shape (k,) int32."""
        return {"support": _support(key, self.n, self.k)}

    def labels(self, params: dict, x: jax.Array) -> jax.Array:
        """Noiseless labels χ_S(x), shape (m,)."""
        return jnp.prod(jnp.take(x, params["support"], axis=1), axis=1)

    @tiered_jit(static_argnums=(0, 3))
    def sample(self, params: dict, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        """m labelled examples: x (m, n) float32, y (m,) float32 in {±1}."""
        return labelled(self, params, key, m)


@dataclass(frozen=True)
class Staircase(LabelNoise):
    """The degree-k staircase k^{−1/2}(x_{s_1} + x_{s_1}x_{s_2} + … + x_{s_1}⋯x_{s_k}).

    A regression target: `noise` is the standard deviation of additive Gaussian noise. The
    ordered support (s_1, …, s_k) is drawn by `init`. Its Walsh spectrum has weight 1/k on
    each of the k nested sets, so low-degree steps lead a learner up to the top monomial.

    Example:
        >>> t = Staircase(n=20, k=4)
        >>> tp = t.init(jax.random.key(0))            # {"support": (4,) int32}, ordered
        >>> x, y = t.sample(tp, jax.random.key(1), 256)    # real y
        >>> tp["support"].shape, x.shape, y.shape
        ((4,), (256, 20), (256,))
    """

    n: int = 30
    k: int = 4
    noise: float = 0.0
    inputs: Literal["hypercube", "biased"] = "hypercube"
    p: float = 0.5

    name: ClassVar[str] = "staircase"
    task: ClassVar[str] = "regression"

    def __post_init__(self):
        _check_common(self.n, self.k, self.p, self.inputs)
        require(self.noise >= 0.0, "noise", f"noise standard deviation must be ≥ 0, got {self.noise}")

    @tiered_jit(static_argnums=0)
    def init(self, key: jax.Array) -> dict:
        """Teacher parameters: the ordered support (s_1, …, s_k), shape (k,) int32."""
        return {"support": _support(key, self.n, self.k)}

    def labels(self, params: dict, x: jax.Array) -> jax.Array:
        """Noiseless labels, shape (m,)."""
        prefix = jnp.cumprod(jnp.take(x, params["support"], axis=1), axis=1)   # (m, k) nested monomials
        return jnp.sum(prefix, axis=1) / math.sqrt(self.k)

    @tiered_jit(static_argnums=(0, 3))
    def sample(self, params: dict, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        """m labelled examples: x (m, n) float32, y (m,) float32."""
        return labelled(self, params, key, m)
