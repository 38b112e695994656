"""Input distributions: every target draws its x through `draw`.

Example:
    >>> x = draw("hypercube", jax.random.key(0), 8, 30)    # (8, 30) float32 in {±1}
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

INPUTS = ("hypercube", "gaussian", "biased")


def draw(inputs: str, key: jax.Array, m: int, n: int, p: float = 0.5) -> jax.Array:
    """m inputs in R^n, shape (m, n) float32.

    hypercube: uniform on {±1}^n; gaussian: N(0, I_n); biased: independent
    coordinates, +1 with probability p and −1 otherwise.
    """
    if inputs == "hypercube":
        return jax.random.rademacher(key, (m, n), dtype=jnp.float32)
    if inputs == "gaussian":
        return jax.random.normal(key, (m, n), dtype=jnp.float32)
    if inputs == "biased":
        return jnp.where(jax.random.bernoulli(key, p, (m, n)), 1.0, -1.0).astype(jnp.float32)
    raise ValueError(f"unknown inputs {inputs!r}; expected one of {INPUTS}")
