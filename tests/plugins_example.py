"""A user's own target and learner, written against the bare contracts (no base class, no
registration): the plug-in tests name them in configs as `plugins_example:Majority` and
`plugins_example:LeastSquares`. The broken classes below each break one rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Majority:
    """y = sign(Σ_{i∈S} x_i) for a random set S of k (odd) coordinates of x ∈ {±1}^n; each
    label flipped with probability `noise`."""

    n: int = 9
    k: int = 3
    noise: float = 0.0

    name: ClassVar[str] = "majority"
    task: ClassVar[str] = "classification"

    def __post_init__(self):
        if self.k % 2 == 0 or not 1 <= self.k <= self.n:
            raise ValueError(f"k must be odd and in [1, n], got {self.k}")

    def init(self, key):
        return {"support": jax.random.permutation(key, self.n)[: self.k]}

    def labels(self, params, x):
        return jnp.sign(jnp.sum(jnp.take(x, params["support"], axis=1), axis=1))

    def sample(self, params, key, m):
        kx, ky = jax.random.split(key)
        x = jnp.where(jax.random.bernoulli(kx, 0.5, (m, self.n)), 1.0, -1.0)
        y = self.labels(params, x)
        return x, jnp.where(jax.random.bernoulli(ky, self.noise, (m,)), -y, y)


@dataclass(frozen=True)
class LeastSquares:
    """A fitted learner: weighted ridge regression on (1, x), solved in closed form."""

    ridge: float = 1e-3

    name: ClassVar[str] = "least_squares"
    kind: ClassVar[str] = "fitted"

    def fit(self, key, x, y, weights):
        feats = jnp.concatenate([jnp.ones((x.shape[0], 1)), x], axis=1) * weights[:, None]
        gram = feats.T @ feats + self.ridge * jnp.eye(feats.shape[1])
        return jnp.linalg.solve(gram, feats.T @ (y * weights))

    def apply(self, params, x):
        return params[0] + x @ params[1:]


@dataclass(frozen=True)
class BiasedMajority(Majority):
    """A majority over inputs whose coordinates are +1 with probability `s`: a field named like
    the sparsity column of the results that is not an integer."""

    s: float = 0.5

    name: ClassVar[str] = "biased_majority"

    def sample(self, params, key, m):
        kx, ky = jax.random.split(key)
        x = jnp.where(jax.random.bernoulli(kx, self.s, (m, self.n)), 1.0, -1.0)
        y = self.labels(params, x)
        return x, jnp.where(jax.random.bernoulli(ky, self.noise, (m,)), -y, y)


@dataclass(frozen=True)
class TwoLayer:
    """A gradient learner: a two-layer ReLU network of `width` units."""

    width: int = 16

    name: ClassVar[str] = "two_layer"
    kind: ClassVar[str] = "gradient"

    def init_params(self, key, n):
        k1, k2 = jax.random.split(key)
        return {"w": jax.random.normal(k1, (n, self.width)) / jnp.sqrt(n),
                "v": jax.random.normal(k2, (self.width,)) / jnp.sqrt(self.width)}

    def apply(self, params, x):
        return jax.nn.relu(x @ params["w"]) @ params["v"]


@dataclass(frozen=True)
class FittedNamedMlp(LeastSquares):
    """A fitted learner whose short name is a trained built-in's."""

    name: ClassVar[str] = "mlp"


@dataclass(frozen=True)
class NoLabels:
    """Breaks the target contract: no `labels` method."""

    n: int = 4
    noise: float = 0.0
    name: ClassVar[str] = "no_labels"
    task: ClassVar[str] = "classification"

    def init(self, key):
        return {}

    def sample(self, params, key, m):
        return jnp.ones((m, self.n)), jnp.ones(m)


@dataclass(frozen=True)
class WrongTask(Majority):
    """Breaks the target contract: a task the package does not know."""

    task: ClassVar[str] = "ranking"


@dataclass
class NotFrozen:
    """Breaks the target contract: a mutable dataclass."""

    n: int = 4
    noise: float = 0.0
    name: ClassVar[str] = "not_frozen"
    task: ClassVar[str] = "classification"
    init = Majority.init
    labels = Majority.labels
    sample = Majority.sample


@dataclass(frozen=True)
class NoFit:
    """Breaks the fitted-learner contract: no `fit`."""

    name: ClassVar[str] = "no_fit"
    kind: ClassVar[str] = "fitted"

    def apply(self, params, x):
        return x[:, 0]
