"""A single neuron f(x) = u·σ(⟨w, x⟩ + b): the width-1 models of Barak et al., "Hidden
progress in deep learning" (configurations (vii), (ix), (x) with a trained second layer u,
(xi), (xiii), (xiv) without one; the degree-k oscillating polynomial of (viii) and (xii) is not
built here), and the sinusoidal neuron of their Figures 1, 3 and 13.

Choices made here (the paper's text available to us does not fix them):

- Frequency. σ = sin is σ(z) = sin(2πz/period) with period 4 by default, i.e. sin(πz/2).
  On {±1}ⁿ the sum ⟨1_S, x⟩ = k − 2j (j = number of −1s among S) moves in steps of 2, so
  half a period per step makes the sign alternate with j: sin(π/2·(⟨1_S, x⟩ + 1 − k)) =
  (−1)^j = χ_S(x). Unit weights on S and the bias b = 1 − k represent the k-parity exactly;
  for odd k, b = 0 also works up to the sign of u, which is why odd k needs no bias here.
- Zigzag. `zigzag` is the triangle wave with the same period and phase as the sine (equal
  to it at every integer z, linear in between): Barak's ∞-zigzag (ix). With `pieces: k` it is
  the k-zigzag (vii): σ(t) = (−1)^((k − t)/2) at t ∈ {−k, −k + 2, …, k} (in units of
  period/4), linear in between, flat beyond, so unit weights on S and b = 0 give χ_S (the
  k + 1 values of ⟨1_S, x⟩ take all k pieces). The phase 1 − k that the sine and the ∞-zigzag
  need in their bias is inside this activation: with it in the bias instead, the clip would
  flatten the ends of ⟨1_S, x⟩ + 1 − k for k ≥ 2.
- Initialisation. w as every affine map here (see `polynomial.draw_weights`: Xavier-uniform
  U[±scale·√(6/(n+1))] by default), b ~ U[±1/√n] (as the MLP's biases), and u = 1, so the
  neuron without a readout is the trained-readout neuron at step 0.

Example:
    >>> neuron = Neuron(activation="sin", bias=True, readout="none")
    >>> params = neuron.init_params(jax.random.key(0), 30)
    >>> jax.tree.map(jnp.shape, params)
    {'b': (), 'w': (30,)}
    >>> neuron.apply(params, jnp.ones((8, 30))).shape
    (8,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp

from sparselearn.errors import require
from sparselearn.learners.polynomial import Init, check_scale, draw_weights


def zigzag(z: jax.Array, period: float = 4.0) -> jax.Array:
    """The triangle wave in [−1, 1] that equals sin(2πz/period) at z = j·period/4 (j integer)."""
    phase = jnp.mod(4.0 * z / period - 1.0, 4.0)    # 0 at a crest
    return jnp.abs(phase - 2.0) - 1.0


@dataclass(frozen=True)
class Neuron:
    """f(x) = u·σ(⟨w, x⟩ + b) with σ ∈ {sin, zigzag, relu}; shapes x (m, n) → (m,).

    Parameters: {"w": (n,)} plus "b": () when `bias`, and "u": () when `readout: trained`
    (`readout: none` fixes u = 1). `first_layer(params)` is w. `period` sets the frequency
    of sin and zigzag (unused by relu); `pieces` (zigzag only) makes it a k-zigzag.

    Example:
        >>> Neuron(activation="zigzag", pieces=3).init_params(jax.random.key(0), 10)["w"].shape
        (10,)
    """

    activation: Literal["sin", "zigzag", "relu"] = "sin"
    period: float = 4.0
    pieces: int | None = None
    bias: bool = True
    readout: Literal["trained", "none"] = "trained"
    init: Init = "xavier"
    scale: float = 1.0

    name: ClassVar[str] = "neuron"
    kind: ClassVar[str] = "gradient"

    def __post_init__(self):
        require(math.isfinite(self.period) and self.period > 0, "period",
                f"must be a finite number > 0, got {self.period}")
        require(self.activation != "relu" or self.period == 4.0, "period",
                f"is used only with activation: sin or zigzag, got activation: relu and period {self.period}")
        if self.pieces is not None:
            require(self.activation == "zigzag", "pieces",
                    f"is used only with activation: zigzag, got activation: {self.activation}")
            require(self.pieces >= 1, "pieces", f"must be ≥ 1, got {self.pieces}")
        check_scale(self.scale)

    def init_params(self, key: jax.Array, n: int) -> dict:
        kw, kb = jax.random.split(key)
        params = {"w": draw_weights(kw, self.init, self.scale, (n,), n, 1)}
        if self.bias:
            params["b"] = jax.random.uniform(kb, (), jnp.float32, -1 / math.sqrt(n), 1 / math.sqrt(n))
        if self.readout == "trained":
            params["u"] = jnp.ones((), jnp.float32)
        return params

    def first_layer(self, params: dict) -> jax.Array:
        return params["w"]

    def sigma(self, z: jax.Array) -> jax.Array:
        """The activation."""
        if self.activation == "sin":
            return jnp.sin((2 * math.pi / self.period) * z)
        if self.activation == "zigzag":
            if self.pieces is not None:  # the k-zigzag: k pieces on [−k, k], in phase with χ_S there
                edge = self.pieces * self.period / 4
                z = jnp.clip(z, -edge, edge) + (1 - self.pieces) * self.period / 4
            return zigzag(z, self.period)
        return jax.nn.relu(z)

    def apply(self, params: dict, x: jax.Array) -> jax.Array:
        """Output for x (m, n): shape (m,)."""
        z = x @ params["w"]
        if self.bias:
            z = z + params["b"]
        out = self.sigma(z)
        return out * params["u"] if self.readout == "trained" else out
