"""Top-k activation sparsity: keep the k largest pre-activations of each row.

Ties are broken towards the lower unit index (the order `jax.lax.top_k` uses), so
exactly k entries survive in every row and the choice is deterministic. `lax.top_k`
compares in IEEE total order, though: -0.0 ranks below +0.0, and a NaN ranks above +inf
or below -inf by its sign bit (x86 CPUs make negative NaNs from 0/0 and inf - inf), while
`topk_reference` counts ±0 as a tie and ranks every NaN last.

No custom VJP here: the kept set is a piecewise-constant function of z, so plain
autodiff of `where(keep, z, 0)` already sends the gradient only through the kept
entries and stores a boolean mask; a custom rule would save nothing and would lose
forward-mode differentiation (jvp, hessian).

Example:
    >>> topk(jnp.array([[3., 1., 2.]]), 2)
    Array([[3., 0., 2.]], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sparselearn.primitives import _checks


def _check(z, k) -> int:
    if jnp.ndim(z) < 1:
        raise ValueError(f"z must have shape (..., s), got a scalar of shape {jnp.shape(z)}")
    _checks.floating("z", z)
    return _checks.k_in_range(k, z.shape[-1])


def topk_indices(z: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The k largest entries of each row and their positions.

    Args:
        z: (..., s) scores or pre-activations.
        k: static int, 1 ≤ k ≤ s.

    Returns:
        values (..., k) in decreasing order, idx (..., k) int32; equal values are
        listed lower index first. Gradients flow to z through `values`.
    """
    k = _check(z, k)
    return jax.lax.top_k(z, k)


def keep_mask(idx: jax.Array, s: int) -> jax.Array:
    """(..., s) bool, True at the positions listed in idx (..., k)."""
    hits = jnp.zeros(idx.shape[:-1] + (s,), bool)
    return jnp.put_along_axis(hits, idx, True, axis=-1, inplace=False)


def topk(z: jax.Array, k: int) -> jax.Array:
    """z with all but the k largest entries of each row set to zero.

    Args:
        z: (..., s) pre-activations, any float dtype.
        k: static int, 1 ≤ k ≤ s.

    Returns:
        (..., s), same dtype as z. The gradient is g on kept entries and 0 elsewhere.
    """
    k = _check(z, k)
    _, idx = jax.lax.top_k(jax.lax.stop_gradient(z), k)
    return jnp.where(keep_mask(idx, z.shape[-1]), z, jnp.zeros((), z.dtype))


def topk_reference(z: jax.Array, k: int) -> jax.Array:
    """`topk` by a stable sort instead of `lax.top_k`: rank every entry, keep ranks < k."""
    k = _check(z, k)
    order = jnp.argsort(-jax.lax.stop_gradient(z), axis=-1, stable=True)
    rank = jnp.argsort(order, axis=-1)
    return jnp.where(rank < k, z, jnp.zeros((), z.dtype))
