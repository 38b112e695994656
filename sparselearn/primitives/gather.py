"""Second layer over the k active units only.

After a top-k first layer, each example has k nonzero hidden values at known unit
indices. `gather_matmul(values, idx, w2)` multiplies them by the k matching rows of
w2, so forward and backward cost O(m·k·out) instead of the dense O(m·s·out).

On CPU a gathered row costs far more per multiply-add than a dense matrix product,
which reuses every weight across the batch (benchmarks/results/primitives.json:
at n = out = 512 the gather wins at density k/s = 1/64, mostly wins at 1/16 and
loses at 1/4).
With `impl="auto"` (the default) the product is computed densely, with the same
values and gradients, unless `gather_prefers_sparse(k, s, out)`. The sparse and pallas paths
are custom VJPs: `jax.jvp` and `jacfwd` through them raise, while the dense path is plain jnp
and takes every mode. So under "auto" forward mode works exactly where
`gather_prefers_sparse` is false, and changes with k and s: pass `impl="dense"` for forward
mode through a top-k or sparse-init MLP's output layer. `jax.hessian` (forward over the
gradient) works on the sparse path too; the pallas path raises for any second derivative.

Example:
    >>> w2 = jnp.arange(6.0).reshape(3, 2)                  # s = 3 units, out = 2
    >>> gather_matmul(jnp.array([[1.0]]), jnp.array([[2]]), w2)
    Array([[4., 5.]], dtype=float32)
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp

from sparselearn.primitives import _checks, _rows
from sparselearn.primitives.pallas import prefers_pallas

# `impl="auto"` gathers when the active units are few (k/s ≤ GATHER_MAX_DENSITY), or
# fairly few with rows of moderate length (k/s ≤ GATHER_MID_DENSITY and
# k·out ≤ GATHER_MID_ROW_ELEMENTS), or the gathered rows are short (k·out ≤
# GATHER_MAX_ROW_ELEMENTS). Measured on 2-core CPUs, batch 256 (forward + backward,
# dense time / gather time): at density 1/16 the gather won 1.3–2.1× for k·out from
# 2^13 to 2^17 (1.11–1.21× at the last run) and lost (0.9×; 0.75×) at s = 16384, k = 1024,
# out = 512; at density 1/4 it lost (0.2–0.5×) unless the rows were short (out = 1 or 16
# won even there).
GATHER_MAX_DENSITY = 1 / 32
GATHER_MID_DENSITY = 1 / 16
GATHER_MID_ROW_ELEMENTS = 1 << 17
GATHER_MAX_ROW_ELEMENTS = 1 << 14


def gather_prefers_sparse(k: int, s: int, out: int) -> bool:
    """Whether `gather_matmul(impl="auto")` gathers rows (out = 1 for a vector w2): see
    the GATHER_* limits above."""
    density, row = k / s, k * out
    return (density <= GATHER_MAX_DENSITY or row <= GATHER_MAX_ROW_ELEMENTS
            or (density <= GATHER_MID_DENSITY and row <= GATHER_MID_ROW_ELEMENTS))


def gather_vjp(rows):
    """The gather product as a custom_vjp function of (values, idx, w2) built from the row
    helpers of `rows` (`_rows`, or `pallas.kernels` for the Pallas path)."""

    @jax.custom_vjp
    def product(values, idx, w2):
        return rows.row_combine(values, idx, w2)

    def fwd(values, idx, w2):
        return rows.row_combine(values, idx, w2), (values, idx, w2)

    def bwd(res, g):
        values, idx, w2 = res
        d_values = rows.row_dots(g, w2, idx).astype(values.dtype)
        d_w2 = rows.row_scatter_add(w2.shape[0], idx, values, g, w2.dtype)
        return d_values, None, d_w2

    product.defvjp(fwd, bwd)

    def apply(values, idx, w2):
        return product(*_rows.as_arrays(values, idx, w2))

    return apply


_gather_matmul = gather_vjp(_rows)


@functools.cache
def _gather_matmul_pallas():
    from sparselearn.primitives.pallas import kernels  # loads jax.experimental.pallas

    return gather_vjp(kernels)


def _pallas(values, idx, w2):
    return _gather_matmul_pallas()(values, idx, w2)


def _check(values, idx, w2) -> None:
    _checks.ndim("values", values, 2, "(m, k)")
    _checks.ndim("idx", idx, 2, "(m, k)")
    _checks.ndim("w2", w2, (1, 2), "(s,) or (s, out)")
    _checks.floating("values", values)
    _checks.floating("w2", w2)
    _checks.integer("idx", idx)
    if values.shape != idx.shape:
        raise ValueError(f"values and idx must have the same shape (m, k), got {values.shape} and {idx.shape}")
    _checks.k_in_range(idx.shape[1], w2.shape[0], "k = idx.shape[1], s = w2.shape[0]")


def gather_matmul(values: jax.Array, idx: jax.Array, w2: jax.Array, *,
                  impl: Literal["auto", "sparse", "dense", "pallas"] = "auto") -> jax.Array:
    """Σ_j values[i, j] · w2[idx[i, j]] for every example i.

    Args:
        values: (m, k) hidden values of the active units (e.g. relu of the top-k).
        idx: (m, k) int unit indices in [0, s); one outside is clipped into it (−1 reads
            row 0, s reads row s − 1), on every path and in the gradient alike; k ≤ s.
        w2: (s, out) second-layer weights, or (s,) for a scalar output.
        impl: "sparse" (gather the k rows per example; custom VJP that scatters back
            into them), "dense" (`gather_matmul_reference`: scatter values into an
            (m, s) matrix, then one matrix product), "pallas" (the sparse path as
            Triton kernels, `primitives.pallas`; off GPUs in interpret mode, slowly)
            or "auto": sparse where `gather_prefers_sparse(k, s, out)` and the program
            is compiled for a CPU (the rule's measurements are from CPUs), pallas where
            `pallas.prefers_pallas("gather_matmul", k, s)` and it is compiled for a
            CUDA GPU (never so far: slower than dense on the GPU measured), dense otherwise. All give the
            same values and gradients while w2 is finite: the dense path also multiplies
            the rows no example selects, so an inf or NaN there makes its output NaN.
            A NaN in an example's values reaches every row of w2's gradient on the dense
            path, only its k rows on the others.

    Returns:
        (m, out), or (m,) when w2 is (s,).

    Gradients: values and w2 (scatter-added into the k touched rows per example);
    idx gets none. Equals `dense_rows(values, idx, s) @ w2`.
    """
    _check(values, idx, w2)
    values, idx, w2 = _rows.as_arrays(values, idx, w2)
    vector = w2.ndim == 1
    w2m = w2[:, None] if vector else w2
    k, s = idx.shape[1], w2m.shape[0]
    sparse_wins = gather_prefers_sparse(k, s, w2m.shape[1])
    idx = _in_range(idx.astype(jnp.int32), s)
    out = _rows.by_impl(impl, sparse_wins, _gather_matmul, _dense, values, idx, w2m,
                        pallas=_pallas, pallas_wins=prefers_pallas("gather_matmul", k, s))
    return out[:, 0] if vector else out


def _in_range(idx, s: int):
    """`idx` clipped into [0, s): one row per index on every path, forward and backward alike."""
    return jnp.clip(idx, 0, max(s - 1, 0))


def _dense(values, idx, w2):
    return dense_rows(values, idx, w2.shape[0]) @ w2


def dense_rows(values: jax.Array, idx: jax.Array, s: int) -> jax.Array:
    """(m, s) array holding values[i, j] at column idx[i, j] and zeros elsewhere
    (repeated indices add up)."""
    rows = jnp.arange(values.shape[0])[:, None]
    return jnp.zeros((values.shape[0], s), values.dtype).at[rows, idx].add(values)


def gather_matmul_reference(values: jax.Array, idx: jax.Array, w2: jax.Array) -> jax.Array:
    """`gather_matmul` the dense way: scatter values into (m, s), then multiply by w2 (an
    index outside [0, s) clipped into it, as there)."""
    _check(values, idx, w2)
    return _dense(values, _in_range(jnp.asarray(idx), w2.shape[0]), w2)
