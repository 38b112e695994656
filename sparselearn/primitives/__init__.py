"""Sparse building blocks for the learners, each next to a dense reference.

- `masked_matmul(x, w, mask)`: x @ (w ⊙ mask) with a masked weight gradient.
- `topk(z, k)`: keep the k largest pre-activations per row, zero the rest.
- `gather_matmul(values, idx, w2)`: second layer over the k active units only
  (dense where that is faster, `gather_prefers_sparse`).
- `routed_layer(x, router, w1, b1, k)` and `routed_mlp(x, router, w1, b1, w2, k)`:
  a low-rank router picks k units per example and only those are computed.

All are pure functions of arrays that work under `jit`, `vmap` and `grad`; shapes
and k are checked while tracing. `impl="auto"` chooses between the sparse and the dense
path by rules measured on a CPU, and takes the dense path in programs compiled for a
GPU or TPU, where nothing has been measured yet; `impl="sparse"` runs there too, with
the rows gathered in large vectorised blocks instead of CPU-cache-sized loops, and
`impl="pallas"` runs the gather and routed paths as Triton kernels (`primitives.pallas`;
in interpret mode off GPUs). The `*_reference` versions compute the same thing with
dense matrices and plain autodiff, for tests and benchmarks.
"""

from sparselearn.primitives.gather import (
    GATHER_MAX_DENSITY,
    GATHER_MAX_ROW_ELEMENTS,
    GATHER_MID_DENSITY,
    GATHER_MID_ROW_ELEMENTS,
    dense_rows,
    gather_matmul,
    gather_matmul_reference,
    gather_prefers_sparse,
)
from sparselearn.primitives.masked import masked_matmul, masked_matmul_reference, random_fan_in_mask
from sparselearn.primitives.routed import (
    SPARSE_MAX_DENSITY,
    SPARSE_MAX_ROW_ELEMENTS,
    prefers_sparse,
    route,
    routed_layer,
    routed_layer_reference,
    routed_mlp,
    routed_mlp_reference,
    router_from_weights,
    topk_mlp_reference,
)
from sparselearn.primitives.topk import keep_mask, topk, topk_indices, topk_reference

__all__ = [
    "GATHER_MAX_DENSITY",
    "GATHER_MAX_ROW_ELEMENTS",
    "GATHER_MID_DENSITY",
    "GATHER_MID_ROW_ELEMENTS",
    "SPARSE_MAX_DENSITY",
    "SPARSE_MAX_ROW_ELEMENTS",
    "dense_rows",
    "gather_matmul",
    "gather_matmul_reference",
    "gather_prefers_sparse",
    "keep_mask",
    "masked_matmul",
    "masked_matmul_reference",
    "prefers_sparse",
    "random_fan_in_mask",
    "route",
    "routed_layer",
    "routed_layer_reference",
    "routed_mlp",
    "routed_mlp_reference",
    "router_from_weights",
    "topk",
    "topk_indices",
    "topk_mlp_reference",
    "topk_reference",
]
