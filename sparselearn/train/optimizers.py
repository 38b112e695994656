"""Optimizers as optax transformations, in one registry; hyperparameters may be traced
(vmapped) scalars.

`OPTIMIZERS` maps each name to its builder and the `train.*` hyperparameters it reads
besides lr and weight_decay; config validation, the CLI and the docs read the names from it,
and a hyperparameter an optimizer does not read must stay at its default. Adding an
optimizer is one entry here (plus a TrainConfig field for a new hyperparameter). optax is
imported when an optimizer is built, not when the names are read.

Example:
    >>> opt = make("sgd", 0.1, weight_decay=1e-4, momentum=0.9)
    >>> exp = sparselearn.config.load("configs/quickstart.yaml")
    >>> opt = for_config(exp.train, 0.1, 0.0)      # what training builds (lr, weight_decay per run)
    >>> OPTIMIZERS["sign-sgd"].uses
    ('sign_threshold',)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def thresholded_sign(threshold):
    """g ↦ sign_ρ(g): 0 where |g| ≤ ρ, sign(g) elsewhere (ρ = 0 is the plain sign)."""
    import jax
    import jax.numpy as jnp
    import optax

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: jnp.where(jnp.abs(g) <= threshold, 0.0, jnp.sign(g)), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _sgd(lr, weight_decay, momentum=0.0):
    import optax

    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(lr, momentum=momentum or None))


def _sign_sgd(lr, weight_decay, sign_threshold=0.0):
    import optax

    return optax.chain(thresholded_sign(sign_threshold), optax.add_decayed_weights(weight_decay),
                       optax.scale_by_learning_rate(lr))


def _adam(lr, weight_decay):
    import optax

    return optax.adamw(lr, weight_decay=weight_decay)


@dataclass(frozen=True)
class Optimizer:
    """build(lr, weight_decay, **{h: value for h in uses}) → an optax transformation;
    `uses`: the TrainConfig fields it reads besides lr and weight_decay; `rule`: the update."""

    build: Callable
    uses: tuple[str, ...]
    rule: str


OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(_sgd, ("momentum",), "w ← w − lr·(g + λw), with heavy-ball momentum if set"),
    "adam": Optimizer(_adam, (), "AdamW: decoupled weight decay λ"),
    "sign-sgd": Optimizer(_sign_sgd, ("sign_threshold",), "w ← w − lr·(sign_ρ(g) + λw), the decay outside the sign"),
}
NAMES: tuple[str, ...] = tuple(OPTIMIZERS)
#: every hyperparameter some optimizer reads besides lr and weight_decay
HYPERPARAMETERS: tuple[str, ...] = tuple(dict.fromkeys(h for o in OPTIMIZERS.values() for h in o.uses))


def make(name: str, lr, weight_decay=0.0, momentum: float = 0.0, sign_threshold: float = 0.0):
    """The optimizer `name` with learning rate `lr` and weight decay λ; the hyperparameters
    it does not use (see `OPTIMIZERS`) are ignored. Training builds it with `for_config`."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(NAMES)}")
    given = {"momentum": momentum, "sign_threshold": sign_threshold}
    opt = OPTIMIZERS[name]
    return opt.build(lr, weight_decay, **{h: given[h] for h in opt.uses})


def for_config(train, lr, weight_decay):
    """The optimizer of a TrainConfig, with lr and weight_decay given (traced, per run)."""
    opt = OPTIMIZERS[train.optimizer]
    return opt.build(lr, weight_decay, **{h: getattr(train, h) for h in opt.uses})
