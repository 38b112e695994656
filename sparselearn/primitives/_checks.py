"""Trace-time argument checks shared by the primitives.

Shapes are static under `jit`, so every check here runs once while tracing and
fails with a message that names the argument, never deep inside XLA.
"""

from __future__ import annotations

import operator

import jax.numpy as jnp


def ndim(name: str, a, expected: int | tuple[int, ...], layout: str) -> None:
    """Raise ValueError unless `a` has one of the `expected` numbers of axes."""
    allowed = (expected,) if isinstance(expected, int) else expected
    if jnp.ndim(a) not in allowed:
        raise ValueError(f"{name} must have shape {layout}, got shape {jnp.shape(a)}")


def same(what: str, *pairs: tuple[str, int]) -> None:
    """Raise ValueError unless every (label, size) pair has the same size."""
    sizes = {size for _, size in pairs}
    if len(sizes) > 1:
        listed = ", ".join(f"{label}={size}" for label, size in pairs)
        raise ValueError(f"{what} disagree: {listed}")


def as_int(value) -> int | None:
    """`value` as a Python int where it is one (an int or a NumPy integer), else None (a bool,
    a float, a tracer): sizes and counts that fix shapes must be static integers."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def k_in_range(k, s: int, source: str = "") -> int:
    """`k` as a Python int with 1 ≤ k ≤ s (k must be static: it fixes output shapes);
    `source` says where k and s come from when the caller did not pass them."""
    if (static := as_int(k)) is None:
        raise ValueError(f"k must be a static Python int (it fixes shapes), got {k!r}")
    k = static
    if not 1 <= k <= s:
        raise ValueError(f"k must satisfy 1 ≤ k ≤ s = {s}, got k = {k}" + (f" ({source})" if source else ""))
    return k


def integer(name: str, a) -> None:
    """Raise ValueError unless `a` holds integers (unit indices)."""
    if not jnp.issubdtype(jnp.result_type(a), jnp.integer):
        raise ValueError(f"{name} must hold integer unit indices, got dtype {jnp.result_type(a)}")


def floating(name: str, a) -> None:
    """Raise ValueError unless `a` is a float array."""
    if not jnp.issubdtype(jnp.result_type(a), jnp.floating):
        raise ValueError(f"{name} must be a float array, got dtype {jnp.result_type(a)}")
