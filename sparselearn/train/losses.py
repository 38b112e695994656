"""Per-example losses ℓ(f, y) for outputs f (m,) and labels y (m,)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def hinge(f: jax.Array, y: jax.Array) -> jax.Array:
    """max(0, 1 − y·f), labels in {±1}."""
    return jnp.maximum(0.0, 1.0 - y * f)


def square(f: jax.Array, y: jax.Array) -> jax.Array:
    """½(f − y)²."""
    return 0.5 * jnp.square(f - y)


def logistic(f: jax.Array, y: jax.Array) -> jax.Array:
    """log(1 + exp(−y·f)), labels in {±1}."""
    return jax.nn.softplus(-y * f)


def correlation(f: jax.Array, y: jax.Array) -> jax.Array:
    """−y·f: the correlation loss of the sign-SGD and PolyNet analyses (unbounded below, so
    its value is a score, not a fit; labels in {±1})."""
    return -y * f


LOSSES = {"hinge": hinge, "square": square, "logistic": logistic, "correlation": correlation}
