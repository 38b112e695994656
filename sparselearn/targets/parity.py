"""k-sparse parities on the hypercube: y = χ_S(x) = Π_{i∈S} x_i with |S| = k."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from sparselearn.errors import require
from sparselearn.targets.inputs import draw


@dataclass(frozen=True)
class SparseParity:
    """A k-sparse parity of n bits; each label flipped with probability `noise`.

    The support S is drawn by `init` (uniform among the C(n, k) subsets).

    Example:
        >>> t = SparseParity(n=30, k=3)
        >>> tp = t.init(jax.random.key(0))            # {"support": (3,) int32}
        >>> x, y = t.sample(tp, jax.random.key(1), 1024)   # (1024, 30), (1024,) in {±1}
    """

    n: int = 30
    k: int = 3
    noise: float = 0.0
    inputs: Literal["hypercube"] = "hypercube"

    name: ClassVar[str] = "sparse_parity"
    task: ClassVar[str] = "classification"

    def __post_init__(self):
        require(self.n >= 1, "n", f"must be ≥ 1, got {self.n}")
        require(1 <= self.k <= self.n, "k", f"must satisfy 1 ≤ k ≤ n = {self.n}, got {self.k}")
        require(0.0 <= self.noise < 0.5, "noise", f"label-flip probability must be in [0, 0.5), got {self.noise}")

    def init(self, key: jax.Array) -> dict:
        """Teacher parameters: the support S, shape (k,) int32."""
        return {"support": jax.random.permutation(key, self.n)[: self.k].astype(jnp.int32)}

    def labels(self, params: dict, x: jax.Array) -> jax.Array:
        """Noiseless labels χ_S(x), shape (m,)."""
        return jnp.prod(jnp.take(x, params["support"], axis=1), axis=1)

    def sample(self, params: dict, key: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
        """m labelled examples: x (m, n) float32, y (m,) float32 in {±1}."""
        x = draw(self.inputs, jax.random.fold_in(key, 0), m, self.n)
        y = self.labels(params, x)
        if self.noise > 0:
            flip = jax.random.bernoulli(jax.random.fold_in(key, 1), self.noise, (m,))
            y = jnp.where(flip, -y, y)
        return x, y
