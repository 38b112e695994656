"""Pallas kernels for the gather and routed paths, and the rule by which `impl="auto"` picks them.

`kernels` (imported on first use: it loads `jax.experimental.pallas`) holds `row_dots`,
`row_combine` and `row_scatter_add` with the signatures and results of those in `_rows`,
written as Triton kernels. `impl="pallas"` in `gather_matmul`, `routed_layer` and
`routed_mlp` runs them: compiled by Triton in programs for a CUDA or ROCm GPU, and in
Pallas interpret mode everywhere else (CPU, TPU), where they give the same values slowly
(for tests, not for speed). Gradients are first order only: the backward pass runs these
kernels, which JAX cannot differentiate again, so grad-of-grad through `impl="pallas"`
raises a NotImplementedError naming the kernel; use "sparse" or "dense" for second order.

`impl="auto"` takes them only in programs compiled for a CUDA GPU, and only for shapes that
a GPU measurement covers: a cell of `MEASURED_WINS`. The table is empty because the one GPU
measurement (`benchmarks/device_check.sh` on an H200, `benchmarks/results/primitives-gpu.json`)
found the kernels slower than dense at s = 4096, density 1/64: 0.89× for `gather_matmul`, 0.64×
for the routed MLP (the table gradient's sort and scatter dominate; benchmarks/README.md). Until
a cell is added from a run where they win, `auto` never selects the kernels and keeps the dense
path on GPUs.

Example:
    >>> prefers_pallas("gather_matmul", k=64, s=4096)      # slower than dense where measured
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Primitive = Literal["gather_matmul", "routed"]


@dataclass(frozen=True)
class MeasuredWin:
    """One measured case where the kernels beat the dense path on a GPU.

    primitive: "gather_matmul" (second layer) or "routed" (routed_layer / routed_mlp).
    max_density: the kernels are taken at k/s ≤ this.
    speedup: dense time / kernel time measured there (forward + backward).
    device: the GPU measured (its `device_kind`), source: the results file.
    """

    primitive: Primitive
    max_density: float
    speedup: float
    device: str
    source: str

    def __post_init__(self):
        # the table is edited by hand: a misspelt primitive would match nothing, silently
        if self.primitive not in get_args(Primitive):
            raise ValueError(f"MeasuredWin.primitive must be one of {get_args(Primitive)}, got {self.primitive!r}")
        if not 0 < self.max_density <= 1:
            raise ValueError(f"MeasuredWin.max_density must be in (0, 1], got {self.max_density}")
        if not self.speedup > 1:
            raise ValueError(f"MeasuredWin.speedup must be > 1 (a win over the dense path), got {self.speedup}")


# Empty: on the H200 measured the kernels lost to dense for both primitives. Fill from
# benchmarks/results/primitives-gpu.json, one cell per primitive whose speedup is > 1.
MEASURED_WINS: tuple[MeasuredWin, ...] = ()


def prefers_pallas(primitive: Primitive, k: int, s: int, wins: tuple[MeasuredWin, ...] | None = None) -> bool:
    """Whether `impl="auto"` takes the kernels on a CUDA GPU for k of s units: some cell of
    `wins` (default `MEASURED_WINS`) for this primitive has k/s ≤ its max_density."""
    table = MEASURED_WINS if wins is None else wins
    return any(w.primitive == primitive and k / s <= w.max_density for w in table)


__all__ = ["MEASURED_WINS", "MeasuredWin", "prefers_pallas"]
