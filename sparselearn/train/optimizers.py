"""Optimizers as optax transformations; hyperparameters may be traced (vmapped) scalars."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def thresholded_sign(threshold) -> optax.GradientTransformation:
    """g ↦ sign_ρ(g): 0 where |g| ≤ ρ, sign(g) elsewhere (ρ = 0 is the plain sign)."""

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: jnp.where(jnp.abs(g) <= threshold, 0.0, jnp.sign(g)), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make(name: str, lr, weight_decay=0.0, momentum: float = 0.0, sign_threshold: float = 0.0):
    """The optimizer `name` ∈ {sgd, adam, sign-sgd}.

    sgd:      w ← w − lr·(g + λw)             (momentum optional)
    sign-sgd: w ← w − lr·(sign_ρ(g) + λw)     (the decay stays outside the sign)
    adam:     AdamW, decoupled decay λ.
    """
    if name == "sgd":
        return optax.chain(optax.add_decayed_weights(weight_decay),
                           optax.sgd(lr, momentum=momentum or None))
    if name == "sign-sgd":
        return optax.chain(thresholded_sign(sign_threshold), optax.add_decayed_weights(weight_decay),
                           optax.scale_by_learning_rate(lr))
    if name == "adam":
        return optax.adamw(lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")
