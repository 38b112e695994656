"""Per-example losses ℓ(f, y) for outputs f (m,) and labels y (m,), in one registry.

`LOSSES` maps each name to the loss and the tasks it fits (a margin loss needs ±1 labels);
config validation, the CLI and the docs read it.

Example:
    >>> f, y = jnp.array([2.0, 0.5, -1.0]), jnp.ones(3)      # outputs and labels, (m,)
    >>> LOSSES["hinge"](f, y), LOSSES["hinge"].tasks
    (Array([0. , 0.5, 2. ], dtype=float32), ('classification',))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # jax is imported when a loss is evaluated, not when the names are read
    import jax


def hinge(f: jax.Array, y: jax.Array) -> jax.Array:
    """max(0, 1 − y·f), labels in {±1}; NaN where f is NaN (a diverged net)."""
    import jax.numpy as jnp

    margin = 1.0 - y * f
    # XLA on CPU drops a NaN operand of max inside fused code (openxla/xla#21461): a NaN output
    # would cost 0, as if fitted, and a diverged run would pass for a converged one
    return jnp.where(jnp.isnan(margin), margin, jnp.maximum(0.0, margin))


def square(f: jax.Array, y: jax.Array) -> jax.Array:
    """½(f − y)²."""
    import jax.numpy as jnp

    return 0.5 * jnp.square(f - y)


def logistic(f: jax.Array, y: jax.Array) -> jax.Array:
    """log(1 + exp(−y·f)), labels in {±1}."""
    import jax

    return jax.nn.softplus(-y * f)


def correlation(f: jax.Array, y: jax.Array) -> jax.Array:
    """−y·f: the correlation loss of the sign-SGD and PolyNet analyses (unbounded below, so
    its value is a score, not a fit; labels in {±1})."""
    return -y * f


@dataclass(frozen=True)
class Loss:
    """A per-example loss `fn(f, y)` (called as the Loss itself) and the tasks it fits."""

    fn: Callable
    tasks: tuple[str, ...]

    def __call__(self, f: jax.Array, y: jax.Array) -> jax.Array:
        return self.fn(f, y)


_MARGIN = ("classification",)
LOSSES: dict[str, Loss] = {
    "hinge": Loss(hinge, _MARGIN),
    "square": Loss(square, ("classification", "regression")),
    "logistic": Loss(logistic, _MARGIN),
    "correlation": Loss(correlation, _MARGIN),
}
NAMES: tuple[str, ...] = tuple(LOSSES)
