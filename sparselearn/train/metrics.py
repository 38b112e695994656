"""Error and loss of a predictor on a labelled set, with optional row weights, and the
correlation of two features."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def pointwise_error(f: jax.Array, y: jax.Array, task: str) -> jax.Array:
    """Per-example error: 0-1 (sign(f) ≠ y, f = 0 counts as wrong) for classification,
    squared error (f − y)² for regression. A NaN output (a diverged net) has no sign: its error
    is NaN in both, as its loss is, so a diverged classifier's error is not 1 but undefined."""
    if task == "classification":
        return jnp.where(jnp.isnan(f), jnp.nan, (jnp.sign(f) != y).astype(jnp.float32))
    return jnp.square(f - y)


def max_abs(v: jax.Array) -> jax.Array:
    """max |v| over every entry of `v`; NaN when an entry is NaN (XLA on CPU leaves NaN operands
    out of a max reduction, openxla/xla#21461: a diverged net's weights would read −inf)."""
    return jnp.where(jnp.any(jnp.isnan(v)), jnp.nan, jnp.max(jnp.abs(v)))


def weighted_mean(v: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean of `v` (N,) with row weights (N,) ≥ 0, Σ w·v / Σ w; rows of weight 0 count for
    nothing, even where `v` is inf or NaN there, and with every weight 0 the mean is 0."""
    if weights is None:
        return jnp.mean(v)
    total = jnp.sum(weights)
    return jnp.sum(jnp.where(weights > 0, v * weights, 0.0)) / jnp.where(total > 0, total, 1.0)


def pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pearson correlation of a (N,) and b (N,), (); 0 where either is constant (it carries no
    information about the other), not NaN. Each is scaled to a largest |entry| of 1 first, so
    that float32 sums of squares neither underflow nor overflow at any scale of the features."""

    def unit(v):
        top = jnp.max(jnp.abs(v))
        v = v / jnp.where(top > 0, top, 1.0)
        return v - jnp.mean(v)

    a, b = unit(a), unit(b)
    return jnp.sum(a * b) / jnp.maximum(jnp.sqrt(jnp.sum(a * a)) * jnp.sqrt(jnp.sum(b * b)), 1e-30)
