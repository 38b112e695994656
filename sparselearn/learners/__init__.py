"""Learners. Two kinds, told apart by the class attribute `kind`:

- "gradient": `init_params(key, n) -> params`, `apply(params, x) -> (m,)`; trained by
  the loop in `sparselearn.train` (the field `init` names the initialisation scheme).
- "fitted": `fit(key, x, y) -> params`, `apply(params, x) -> (m,)`; solved directly.

Example:
    >>> net = sparselearn.learners.get("mlp", width=256, depth=2)
"""

from __future__ import annotations

from sparselearn.errors import ConfigError
from sparselearn.fields import build, suggest
from sparselearn.learners.mlp import MLP

REGISTRY: dict[str, type] = {
    MLP.name: MLP,
}


def lookup(name: str) -> type:
    """The learner class registered as `name`; ConfigError naming the choices otherwise."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown learner {name!r}{suggest(name, REGISTRY)}; known: {', '.join(sorted(REGISTRY))}",
                          key="name")
    return REGISTRY[name]


def get(name: str, **kwargs):
    """Construct the learner `name` with its fields set from kwargs (checked like a config)."""
    return build(lookup(name), kwargs)


def names() -> list[str]:
    return sorted(REGISTRY)
