"""Matrix products with a fixed weight mask: sparse initialisation and pruning.

`masked_matmul(x, w, mask)` computes x @ (w ⊙ mask). Its gradient with respect to
w is masked as well, so weights outside the mask receive exactly zero gradient and
stay where they are under any optimiser that maps a zero gradient to a zero update.
The mask is data, not a parameter: it gets no gradient. A custom VJP: `jax.jvp` and `jacfwd`
through it raise (nothing in training uses forward mode); `jax.hessian`, forward over the
gradient, works.

Example:
    >>> x = jnp.ones((4, 3)); w = jnp.ones((3, 2)); mask = jnp.eye(3, 2, dtype=bool)
    >>> masked_matmul(x, w, mask)[0]         # each output unit sees one input
    Array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sparselearn.primitives import _checks


def _kept(w: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask, w, jnp.zeros((), w.dtype))


@jax.custom_vjp
def _masked_matmul(x, w, mask):
    return x @ _kept(w, mask)


def _masked_matmul_fwd(x, w, mask):
    # Residuals are the inputs themselves: no masked copy of w outlives the forward pass.
    return x @ _kept(w, mask), (x, w, mask)


def _masked_matmul_bwd(res, g):
    x, w, mask = res
    # each cotangent in its primal's dtype: g has the promoted dtype of x @ w
    dx = (g @ _kept(w, mask).T).astype(x.dtype)
    dw = _kept(x.T @ g, mask).astype(w.dtype)
    return dx, dw, None


_masked_matmul.defvjp(_masked_matmul_fwd, _masked_matmul_bwd)


def _check(x, w, mask) -> None:
    _checks.ndim("x", x, 2, "(m, n)")
    _checks.ndim("w", w, 2, "(n, s)")
    _checks.ndim("mask", mask, 2, "(n, s)")
    _checks.floating("x", x)
    _checks.floating("w", w)
    _checks.same("inner sizes of x (m, n) and w (n, s)", ("x.shape[1]", x.shape[1]), ("w.shape[0]", w.shape[0]))
    if mask.shape != w.shape:
        raise ValueError(f"mask must have the shape of w {w.shape}, got {mask.shape}")


def masked_matmul(x: jax.Array, w: jax.Array, mask: jax.Array) -> jax.Array:
    """x @ (w ⊙ mask) with a masked weight gradient.

    Args:
        x: (m, n) inputs.
        w: (n, s) weights.
        mask: (n, s), bool or numeric; nonzero entries are kept. Treated as a constant.

    Returns:
        (m, s) in the dtype of x @ w.

    Gradients: d/dx = g @ (w ⊙ mask)ᵀ, d/dw = (xᵀ g) ⊙ mask, none for the mask. The
    backward pass recomputes w ⊙ mask instead of keeping it from the forward pass.
    """
    _check(x, w, mask)
    mask = jax.lax.stop_gradient(mask)
    return _masked_matmul(x, w, mask.astype(bool))


def masked_matmul_reference(x: jax.Array, w: jax.Array, mask: jax.Array) -> jax.Array:
    """Plain autodiff version of `masked_matmul`: x @ where(mask, w, 0), shapes as there."""
    _check(x, w, mask)
    return x @ _kept(w, jax.lax.stop_gradient(mask).astype(bool))


def random_fan_in_mask(key: jax.Array, n: int, s: int, fan_in: int) -> jax.Array:
    """(n, s) bool mask in which each of the s columns keeps `fan_in` of the n rows,
    drawn uniformly without replacement and independently per column. fan_in is an int
    (a float is refused, not rounded), as are n and s (sizes ≥ 0)."""
    for name, size in (("n", n), ("s", s)):
        value = _checks.as_int(size)
        if value is None or value < 0:
            raise ValueError(f"{name} must be an integer ≥ 0, got {size!r}")
    if (count := _checks.as_int(fan_in)) is None:
        raise ValueError(f"fan_in must be an integer, got {fan_in!r}")
    fan_in = count
    if not 1 <= fan_in <= n:
        raise ValueError(f"fan_in must satisfy 1 ≤ fan_in ≤ n = {n}, got {fan_in}")
    noise = jax.random.uniform(key, (n, s))
    rank = jnp.argsort(jnp.argsort(noise, axis=0), axis=0)  # each column: a random permutation of 0..n-1
    return rank < fan_in
