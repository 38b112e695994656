"""Error and loss of a predictor on a labelled set, with optional row weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def pointwise_error(f: jax.Array, y: jax.Array, task: str) -> jax.Array:
    """Per-example error: 0-1 (sign(f) ≠ y, f = 0 counts as wrong) for classification,
    squared error (f − y)² for regression."""
    if task == "classification":
        return (jnp.sign(f) != y).astype(jnp.float32)
    return jnp.square(f - y)


def weighted_mean(v: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean of `v` (N,) with row weights (N,); rows of weight 0 count for nothing, even where
    `v` is inf or NaN there."""
    if weights is None:
        return jnp.mean(v)
    return jnp.sum(jnp.where(weights > 0, v * weights, 0.0)) / jnp.maximum(jnp.sum(weights), 1.0)
