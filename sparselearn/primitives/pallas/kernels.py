"""Triton kernels (Pallas) for the per-example row gathers: `row_dots`, `row_combine` and
`row_scatter_add`, with the signatures and results of those in `_rows`.

    row_combine      out[i] = Σ_j coef[i, j] · table[idx[i, j]]            (m, d)
    row_dots         out[i, j] = table[idx[i, j]] · x[i]                    (m, k)
    row_scatter_add  out[u] = Σ_{i, j: idx[i, j] = u} coef[i, j] · x[i]      (s, d)

Each program gathers whole tiles of rows by index (a (rows, cols) load whose row
offsets come from idx) and accumulates in float32. The scatter-add needs no atomics:
the (example, slot) pairs are sorted by unit first (a stable argsort of the m·k indices,
outside the kernel), and one program sums the pairs of one unit for a block of columns
and writes that row once. So every result is deterministic, and interpret mode computes
exactly what the GPU does.

Triton wants every tile's size to be a power of two, so block sizes other than powers of
two ≥ 16 are refused; shapes that are not multiples of a block are handled by masked loads
and stores. An empty operand (m, k or d of 0) launches
no kernel: the result is zeros of its shape.

On CUDA and ROCm the kernels are compiled by Triton; on any other platform (CPU, TPU)
they run in Pallas interpret mode: correct and slow, for tests. The choice is made when
the program is lowered (`jax.lax.platform_dependent`).

Example:
    >>> row_combine(jnp.ones((1, 2)), jnp.array([[0, 2]]), jnp.arange(6.0).reshape(3, 2))
    Array([[4., 6.]], dtype=float32)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from sparselearn.primitives import _checks

# Default tile sizes (powers of two) of each kernel. Rows: examples per program of
# row_combine; pairs: (example, slot) pairs per program of row_dots and per loop step of
# row_scatter_add; cols: columns of d per tile. The fastest of a scan on an H200 at the GPU
# check's size (s = 4096, k = 64, m = 256, d = 512, float32; benchmarks/bench_pallas_tiles.py,
# results/pallas-tiles-gpu.json): row_combine 0.025 ms (0.035 at the 16 × 64 first chosen),
# row_scatter_add 0.080 ms (0.104 at 32 × 64); row_dots kept at 32 × 64, 0.020 ms, within
# noise of the best of its 24 tiles.
COMBINE_ROWS, COMBINE_COLS = 16, 32
DOTS_PAIRS, DOTS_COLS = 32, 64
SCATTER_PAIRS, SCATTER_COLS = 16, 512
# Triton compiler parameters: they also select the Triton lowering over Mosaic GPU.
_TRITON = plgpu.CompilerParams(num_warps=4)


def _acc_dtype(*arrays) -> jnp.dtype:
    return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)


def _tile(n: int, block: int) -> int:
    """A power-of-two tile of at most `block`, no larger than needed for n, at least 16."""
    return max(16, min(block, pl.next_power_of_2(n)))


def _check_blocks(**blocks: int) -> tuple[int, ...]:
    """The block sizes as ints, in order; ValueError naming the argument unless each is a power
    of two ≥ 16 (Triton refuses other tiles, and only when lowering for a GPU: interpret mode
    would not tell). NumPy integers count as integers, bools do not."""
    sizes = []
    for name, block in blocks.items():
        size = _checks.as_int(block)
        if size is None or size < 16 or size & (size - 1):
            raise ValueError(f"{name} must be a power of two ≥ 16 (a Triton tile), got {block!r}")
        sizes.append(size)
    return tuple(sizes)


def _per_platform(name: str, fn, *args, **options):
    """fn(*args, **options, interpret=False) on CUDA and ROCm GPUs, interpret=True elsewhere; its
    derivatives raise a NotImplementedError naming the kernel (JAX cannot differentiate a
    Pallas call: the primitives' custom VJPs call the kernels, never differentiate them).
    One jitted function per (fn, options), so eager calls of a shape reuse its program."""
    return _platform_kernel(name, fn, tuple(sorted(options.items())))(*args)


@functools.lru_cache(maxsize=None)
def _platform_kernel(name: str, fn, options: tuple):
    bound = functools.partial(fn, **dict(options))
    compiled = functools.partial(bound, interpret=False)

    @jax.custom_jvp
    def kernel(*args):
        return jax.lax.platform_dependent(*args, cuda=compiled, rocm=compiled,
                                          default=functools.partial(bound, interpret=True))

    @kernel.defjvp
    def no_derivative(primals, tangents):
        raise NotImplementedError(f"{name} (impl='pallas') has first derivatives only, through the primitives' "
                                  f"custom VJPs: for second order (grad of grad, hessian) use impl='sparse' "
                                  f"or impl='dense'")

    return jax.jit(kernel)


# ---------------------------------------------------------------- row_combine

def _combine_kernel(coef_ref, idx_ref, table_ref, out_ref, *, k, rows_per, cols_per, acc):
    m, d = out_ref.shape
    rows = pl.program_id(0) * rows_per + jnp.arange(rows_per, dtype=jnp.int32)
    cols = pl.program_id(1) * cols_per + jnp.arange(cols_per, dtype=jnp.int32)
    row_ok = rows < m
    ok = row_ok[:, None] & (cols < d)[None, :]

    def add_slot(j, total):
        unit = plgpu.load(idx_ref.at[rows, j], mask=row_ok, other=0)
        c = plgpu.load(coef_ref.at[rows, j], mask=row_ok, other=0).astype(acc)
        w = plgpu.load(table_ref.at[unit[:, None], cols[None, :]], mask=ok, other=0).astype(acc)
        return total + c[:, None] * w

    total = jax.lax.fori_loop(0, k, add_slot, jnp.zeros((rows_per, cols_per), acc))
    plgpu.store(out_ref.at[rows[:, None], cols[None, :]], total.astype(out_ref.dtype), mask=ok)


def _combine(coef, idx, table, *, rows_per, cols_per, interpret):
    m, k = idx.shape
    d = table.shape[1]
    rows_per, cols_per = _tile(m, rows_per), _tile(d, cols_per)
    kernel = functools.partial(_combine_kernel, k=k, rows_per=rows_per, cols_per=cols_per,
                               acc=_acc_dtype(coef, table))
    return pl.pallas_call(
        kernel, out_shape=jax.ShapeDtypeStruct((m, d), jnp.result_type(coef, table)),
        grid=(pl.cdiv(m, rows_per), pl.cdiv(d, cols_per)), interpret=interpret,
        compiler_params=_TRITON, name="row_combine",
    )(coef, idx, table)


def row_combine(coef: jax.Array, idx: jax.Array, table: jax.Array, *,
                block_rows: int = COMBINE_ROWS, block_cols: int = COMBINE_COLS) -> jax.Array:
    """out[i] = Σ_j coef[i, j] · table[idx[i, j]].  coef, idx (m, k), table (s, d) → (m, d)."""
    block_rows, block_cols = _check_blocks(block_rows=block_rows, block_cols=block_cols)
    if 0 in idx.shape + table.shape[1:]:
        return jnp.zeros((idx.shape[0], table.shape[1]), jnp.result_type(coef, table))
    return _per_platform("row_combine", _combine, coef, idx.astype(jnp.int32), table, rows_per=block_rows,
                         cols_per=block_cols)


# ---------------------------------------------------------------- row_dots

def _dots_kernel(x_ref, table_ref, idx_ref, out_ref, *, k, pairs_per, cols_per, acc):
    pairs = idx_ref.shape[0]
    d = x_ref.shape[1]
    p = pl.program_id(0) * pairs_per + jnp.arange(pairs_per, dtype=jnp.int32)  # flat (example, slot) pairs
    p_ok = p < pairs
    unit = plgpu.load(idx_ref.at[p], mask=p_ok, other=0)
    example = jax.lax.div(p, jnp.int32(k))

    def add_cols(c, total):
        cols = c * cols_per + jnp.arange(cols_per, dtype=jnp.int32)
        ok = p_ok[:, None] & (cols < d)[None, :]
        w = plgpu.load(table_ref.at[unit[:, None], cols[None, :]], mask=ok, other=0).astype(acc)
        xv = plgpu.load(x_ref.at[example[:, None], cols[None, :]], mask=ok, other=0).astype(acc)
        return total + jnp.sum(w * xv, axis=1)

    total = jax.lax.fori_loop(0, pl.cdiv(d, cols_per), add_cols, jnp.zeros((pairs_per,), acc))
    plgpu.store(out_ref.at[p], total.astype(out_ref.dtype), mask=p_ok)


def _dots(x, table, idx, *, pairs_per, cols_per, interpret):
    m, k = idx.shape
    pairs_per, cols_per = _tile(m * k, pairs_per), _tile(x.shape[1], cols_per)
    kernel = functools.partial(_dots_kernel, k=k, pairs_per=pairs_per, cols_per=cols_per,
                               acc=_acc_dtype(x, table))
    flat = pl.pallas_call(
        kernel, out_shape=jax.ShapeDtypeStruct((m * k,), jnp.result_type(x, table)),
        grid=(pl.cdiv(m * k, pairs_per),), interpret=interpret,
        compiler_params=_TRITON, name="row_dots",
    )(x, table, idx.reshape(-1))
    return flat.reshape(m, k)


def row_dots(x: jax.Array, table: jax.Array, idx: jax.Array, *,
             block_pairs: int = DOTS_PAIRS, block_cols: int = DOTS_COLS) -> jax.Array:
    """out[i, j] = table[idx[i, j]] · x[i].  x (m, d), table (s, d), idx (m, k) → (m, k)."""
    block_pairs, block_cols = _check_blocks(block_pairs=block_pairs, block_cols=block_cols)
    if 0 in idx.shape + x.shape[1:]:
        return jnp.zeros(idx.shape, jnp.result_type(x, table))
    return _per_platform("row_dots", _dots, x, table, idx.astype(jnp.int32), pairs_per=block_pairs,
                         cols_per=block_cols)


# ---------------------------------------------------------------- row_scatter_add

def _scatter_kernel(starts_ref, order_ref, coef_ref, x_ref, out_ref, *, k, pairs_per, cols_per, acc):
    d = out_ref.shape[1]
    unit = pl.program_id(0)
    cols = pl.program_id(1) * cols_per + jnp.arange(cols_per, dtype=jnp.int32)
    col_ok = cols < d
    start, end = starts_ref[unit], starts_ref[unit + 1]  # this unit's pairs: order[start:end]

    def add_pairs(t, total):
        q = start + t * pairs_per + jnp.arange(pairs_per, dtype=jnp.int32)
        q_ok = q < end
        pair = plgpu.load(order_ref.at[q], mask=q_ok, other=0)
        c = plgpu.load(coef_ref.at[pair], mask=q_ok, other=0).astype(acc)
        ok = q_ok[:, None] & col_ok[None, :]
        xv = plgpu.load(x_ref.at[jax.lax.div(pair, jnp.int32(k))[:, None], cols[None, :]], mask=ok, other=0).astype(acc)
        return total + jnp.sum(c[:, None] * xv, axis=0)

    steps = (end - start + pairs_per - 1) // pairs_per
    total = jax.lax.fori_loop(0, steps, add_pairs, jnp.zeros((cols_per,), acc))
    plgpu.store(out_ref.at[unit, cols], total.astype(out_ref.dtype), mask=col_ok)


def _scatter(starts, order, coef, x, *, s, k, dtype, pairs_per, cols_per, interpret):
    d = x.shape[1]
    pairs_per, cols_per = _tile(order.shape[0], pairs_per), _tile(d, cols_per)
    kernel = functools.partial(_scatter_kernel, k=k, pairs_per=pairs_per, cols_per=cols_per,
                               acc=_acc_dtype(coef, x))
    return pl.pallas_call(
        kernel, out_shape=jax.ShapeDtypeStruct((s, d), dtype),
        grid=(s, pl.cdiv(d, cols_per)), interpret=interpret,
        compiler_params=_TRITON, name="row_scatter_add",
    )(starts, order, coef, x)


def pairs_by_unit(idx: jax.Array, s: int) -> tuple[jax.Array, jax.Array]:
    """(order, starts): the flat (example, slot) pairs of idx (m, k) sorted by unit, stably, and
    where each unit's run begins: unit u's pairs are order[starts[u]:starts[u + 1]]; int32,
    shapes (m·k,) and (s + 1,)."""
    flat = idx.reshape(-1).astype(jnp.int32)
    order = jnp.argsort(flat, stable=True).astype(jnp.int32)
    starts = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(jnp.bincount(flat, length=s)).astype(jnp.int32)])
    return order, starts


def row_scatter_add(s: int, idx: jax.Array, coef: jax.Array, x: jax.Array, dtype, *,
                    block_pairs: int = SCATTER_PAIRS, block_cols: int = SCATTER_COLS) -> jax.Array:
    """out[u] = Σ_{i, j: idx[i, j] = u} coef[i, j] · x[i].  idx, coef (m, k), x (m, d) → (s, d).

    The transpose of `row_dots` with respect to the table; `dtype` is the result's. Each
    unit's pairs are summed in the order of their flat index i·k + j.
    """
    block_pairs, block_cols = _check_blocks(block_pairs=block_pairs, block_cols=block_cols)
    m, k = idx.shape
    if 0 in (s, m, k, x.shape[1]):
        return jnp.zeros((s, x.shape[1]), dtype)
    order, starts = pairs_by_unit(idx, s)
    return _per_platform("row_scatter_add", _scatter, starts, order, coef.reshape(-1), x, s=s, k=k,
                         dtype=jnp.dtype(dtype), pairs_per=block_pairs, cols_per=block_cols)


__all__ = ["COMBINE_COLS", "COMBINE_ROWS", "DOTS_COLS", "DOTS_PAIRS", "SCATTER_COLS", "SCATTER_PAIRS", "pairs_by_unit",
           "row_combine", "row_dots", "row_scatter_add"]
