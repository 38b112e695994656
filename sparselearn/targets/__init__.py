"""Synthetic teachers. A target is a frozen dataclass with

    init(key) -> params                      teacher parameters (a pytree; vmappable)
    sample(params, key, m) -> (x, y)         x: (m, n) float32, y: (m,) float32
    labels(params, x) -> y                   noiseless labels

and class attributes `name` and `task` ("classification": y in {±1}, error is 0-1;
"regression": real y, error is mean squared error). Every target has fields `n` and
`noise`; the test set is drawn with `noise=0`.

Example:
    >>> t = sparselearn.targets.get("sparse_parity", n=30, k=3)
"""

from __future__ import annotations

from sparselearn import fields
from sparselearn.fields import build
from sparselearn.targets.hierarchical import Hierarchical
from sparselearn.targets.moe import MoE
from sparselearn.targets.parity import SparseParity, Staircase
from sparselearn.targets.sparse_mlp import SparseMLP, SparseMLPSign

REGISTRY: dict[str, type] = {
    SparseParity.name: SparseParity,
    Staircase.name: Staircase,
    SparseMLP.name: SparseMLP,
    SparseMLPSign.name: SparseMLPSign,
    Hierarchical.name: Hierarchical,
    MoE.name: MoE,
}


def lookup(name: str) -> type:
    """The target class registered as `name`; ConfigError naming the choices otherwise."""
    return fields.lookup(REGISTRY, "target", name)


def get(name: str, **kwargs):
    """Construct the target `name` with its fields set from kwargs (checked like a config)."""
    return build(lookup(name), kwargs)


def names() -> list[str]:
    return sorted(REGISTRY)
