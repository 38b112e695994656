"""Synthetic teachers. A target is a frozen dataclass with

    init(key) -> params                      teacher parameters (a pytree; vmappable)
    sample(params, key, m) -> (x, y)         x: (m, n) float32, y: (m,) float32
    labels(params, x) -> y                   noiseless labels

and class attributes `name` and `task` ("classification": y in {±1}, error is 0-1;
"regression": real y, error is mean squared error). Every target has fields `n` and
`noise`; the test set is drawn with `noise=0`. The contract and its optional hooks (e.g.
`add_noise`, which makes noise a vmapped value) are in `sparselearn.contracts`. A user's own
target: `@sparselearn.targets.register` on the class, or `target: {name:
"package.module:ClassName"}` in a config.

Example:
    >>> t = sparselearn.targets.get("sparse_parity", n=30, k=3)
"""

from __future__ import annotations

from sparselearn.contracts import Registry, validate_target
from sparselearn.fields import build

#: name → class, or "module:Class" for the built-in ones (imported on first lookup, so
#: naming and listing them needs no jax)
REGISTRY: dict[str, type | str] = {
    "sparse_parity": "sparselearn.targets.parity:SparseParity",
    "staircase": "sparselearn.targets.parity:Staircase",
    "sparse_mlp": "sparselearn.targets.sparse_mlp:SparseMLP",
    "sparse_mlp_sign": "sparselearn.targets.sparse_mlp:SparseMLPSign",
    "hierarchical": "sparselearn.targets.hierarchical:Hierarchical",
    "moe": "sparselearn.targets.moe:MoE",
}


_registry = Registry("target", validate_target, REGISTRY)


def register(cls: type) -> type:
    """Register a target class under its `name` (usable as a class decorator); checks the
    contract and raises ConfigError naming what is missing."""
    return _registry.register(cls)


def lookup(name: str) -> type:
    """The target class called `name`: a registered name or `package.module:ClassName`;
    ConfigError naming the choices (or what is wrong with the class) otherwise."""
    return _registry.lookup(name)


def spelled(obj) -> str:
    """The name a config uses for this target: its registered name, else `module:Class`."""
    return _registry.spelled(obj)


def get(name: str, **kwargs):
    """Construct the target `name` with its fields set from kwargs (checked like a config)."""
    return build(lookup(name), kwargs)


def names() -> list[str]:
    """The registered names, sorted."""
    return _registry.names()
