"""Learners, in three kinds told apart by the class attribute `kind` (contracts and their
optional hooks: `sparselearn.contracts`):

- "gradient": `init_params(key, n) -> params`, `apply(params, x) -> (m,)`; trained by
  the loop in `sparselearn.train` (the field `init` names the initialisation scheme).
- "fitted": `fit(key, x, y, weights) -> params`, `apply(params, x) -> (m,)`; solved in
  jit+vmap like a training run (x: (M, n), weights: (M,) 0/1 marking the run's m rows).
- "host": `fit(key, x, y) -> params` and `apply` in numpy on the run's m rows (e.g. GF(2)
  elimination); raising `sparselearn.errors.FitFailed` stores the run as failed with the reason.

Any learner may define `check(target, data)` raising ConfigError(key=<its field>) for limits
that depend on the target (checked when the config loads, for every grid point).
A user's own learner: `@sparselearn.learners.register` on the class, or
`learner: {name: "package.module:ClassName"}` in a config.

Example:
    >>> net = sparselearn.learners.get("mlp", width=256, depth=2)
"""

from __future__ import annotations

from sparselearn.contracts import Registry, validate_learner
from sparselearn.fields import build

#: name → class, or "module:Class" for the built-in ones (imported on first lookup, so
#: naming and listing them needs no jax)
REGISTRY: dict[str, type | str] = {
    "mlp": "sparselearn.learners.mlp:MLP",
    "lowdegree": "sparselearn.learners.lowdegree:LowDegree",
    "kernel": "sparselearn.learners.kernels:KernelRidge",
    "random_features": "sparselearn.learners.kernels:RandomFeatures",
    "gf2": "sparselearn.learners.gf2:GF2",
    "layerwise": "sparselearn.learners.layerwise:Layerwise",
    "polynet": "sparselearn.learners.polynomial:PolyNet",
    "polymlp": "sparselearn.learners.polynomial:PolyMLP",
    "neuron": "sparselearn.learners.neuron:Neuron",
    "moe": "sparselearn.learners.moe:MoE",
    "wnl_net": "sparselearn.learners.wnl_net:WNLNet",
}


_registry = Registry("learner", validate_learner, REGISTRY)


def register(cls: type) -> type:
    """Register a learner class under its `name` (usable as a class decorator); checks the
    contract and raises ConfigError naming what is missing."""
    return _registry.register(cls)


def lookup(name: str) -> type:
    """The learner class called `name`: a registered name or `package.module:ClassName`;
    ConfigError naming the choices (or what is wrong with the class) otherwise."""
    return _registry.lookup(name)


def spelled(obj) -> str:
    """The name a config uses for this learner: its registered name, else `module:Class`."""
    return _registry.spelled(obj)


def get(name: str, **kwargs):
    """Construct the learner `name` with its fields set from kwargs (checked like a config)."""
    return build(lookup(name), kwargs)


def names() -> list[str]:
    """The registered names, sorted."""
    return _registry.names()
