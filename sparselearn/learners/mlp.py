"""Fully connected ReLU networks with a scalar output, trained by gradient steps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from sparselearn.errors import require


def _xavier_uniform(key: jax.Array, fan_in: int, fan_out: int) -> jax.Array:
    c = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -c, c)


def _bias_uniform(key: jax.Array, fan_in: int, shape: tuple[int, ...]) -> jax.Array:
    c = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -c, c)


@dataclass(frozen=True)
class MLP:
    """A depth-2 (one hidden layer) or depth-3 ReLU network f: R^n → R.

    `init="standard"`: Xavier-uniform weights U[±√(6/(fan_in+fan_out))] and biases
    U[±1/√fan_in], the setup of the Hidden Progress experiments.

    Example:
        >>> net = MLP(width=256, depth=2)
        >>> params = net.init(jax.random.key(0), 30)
        >>> net.apply(params, jnp.ones((8, 30))).shape
        (8,)
    """

    width: int = 256
    depth: Literal[2, 3] = 2
    activation: Literal["relu"] = "relu"
    init: Literal["standard"] = "standard"
    bias: bool = True

    name: ClassVar[str] = "mlp"
    kind: ClassVar[str] = "gradient"

    def __post_init__(self):
        require(self.width >= 1, "width", f"must be ≥ 1, got {self.width}")

    def init_params(self, key: jax.Array, n: int) -> list[dict]:
        """Parameters: one {"w": (fan_in, fan_out), "b": (fan_out,)} per layer; the last
        layer has w (width,) and b () so the output is a vector of shape (m,).
        With `bias=False` the biases are zeros that `apply` ignores."""
        sizes = [n] + [self.width] * (self.depth - 1) + [1]
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            kw, kb = jax.random.split(jax.random.fold_in(key, i))
            w = _xavier_uniform(kw, fan_in, fan_out)
            b = _bias_uniform(kb, fan_in, (fan_out,)) if self.bias else jnp.zeros((fan_out,), jnp.float32)
            layers.append({"w": w, "b": b})
        layers[-1] = {"w": layers[-1]["w"][:, 0], "b": layers[-1]["b"][0]}
        return layers

    def apply(self, params: list[dict], x: jax.Array) -> jax.Array:
        """Network output for x (m, n): shape (m,)."""
        h = x
        for layer in params[:-1]:
            h = h @ layer["w"] + layer["b"] if self.bias else h @ layer["w"]
            h = jax.nn.relu(h)
        out = h @ params[-1]["w"]
        return out + params[-1]["b"] if self.bias else out
