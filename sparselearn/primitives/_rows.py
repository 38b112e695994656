"""Per-example row gathers, the work shared by `gather_matmul` and `routed_mlp`.

Every example i touches k rows `table[idx[i]]` of a (s, d) table. Gathering all of
them at once would write an (m, k, d) array to memory, which on CPU costs as much
as the dense product it replaces. So the batch is walked in chunks small enough
for the gathered block to stay in cache: `lax.map` for products, `lax.scan` with
an accumulator for scatter-adds. Small problems (m·k·d under one chunk) run in one
vectorised step. Accumulation is in float32 at least, whatever the input dtype.

`row_combine` never materialises the gathered rows: it walks the k slots in groups
of `_UNROLL` and adds coef[:, j] · table[idx[:, j]] for the slots of a group in one
expression, which XLA fuses into a single loop that reads each gathered row once and
keeps the (m, d) sum in cache (on a 2-core CPU at m = 256, k = 64, d = 512 about 1.3×
faster than gather-then-contract inside a training step, 2–4× faster alone).
The reductions over d in `row_dots` do not fuse that way; it takes long rows one example
at a time as a vector-matrix product (which XLA fuses with the gather) and short rows in
chunks.

All of this is tuned for CPU caches. Compiled for an accelerator, where every step of a
loop is a kernel launch, the same functions gather rows in large vectorised blocks
(`_ACCEL_BLOCK` elements) instead (`jax.lax.platform_dependent` picks the branch when
the program is lowered).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Elements of one gathered (chunk, k, d) block: 32k floats = 128 KiB, inside L2.
_BLOCK = 1 << 15
# Slots that `row_combine` adds in one fused expression (16 was fastest of 4…64 on CPU).
_UNROLL = 16
# Elements of `row_combine`'s running sum per chunk of examples: 128k floats = 512 KiB.
_SUM_BLOCK = 1 << 17
# Elements of one gathered block on an accelerator: 16M floats = 64 MiB.
_ACCEL_BLOCK = 1 << 24


def cpu_else(cpu, other, *args):
    """cpu(*args) in a program compiled for a CPU, other(*args) for any other platform."""
    return jax.lax.platform_dependent(*args, cpu=cpu, default=other)


#: the values of the primitives' `impl` argument
IMPLS = ("auto", "sparse", "dense", "pallas")


def by_impl(impl: str, sparse_wins: bool, sparse, dense, *args, pallas=None, pallas_wins: bool = False):
    """sparse(*args), dense(*args) or pallas(*args) as `impl` (one of `IMPLS`) says.

    "auto" takes sparse where the measured CPU rule `sparse_wins` holds and the program is
    compiled for a CPU, pallas where the measured GPU rule `pallas_wins` holds (see
    `primitives.pallas.prefers_pallas`) and the program is compiled for a CUDA GPU, and
    dense otherwise. `pallas` (a callable) must be given when impl is "pallas" or
    pallas_wins is true.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, IMPLS))}; got {impl!r}")
    if impl == "pallas":
        return pallas(*args)
    if impl == "auto":
        cpu = sparse if sparse_wins else dense
        if pallas_wins:
            return jax.lax.platform_dependent(*args, cpu=cpu, cuda=pallas, default=dense)
        return cpu_else(sparse, dense, *args) if sparse_wins else dense(*args)
    return sparse(*args) if impl == "sparse" else dense(*args)


def as_arrays(*arrays) -> tuple[jax.Array, ...]:
    """The arguments as JAX arrays: NumPy inputs lack the `.at` the gathers and scatters use."""
    return tuple(jnp.asarray(a) for a in arrays)


def _acc_dtype(*arrays) -> jnp.dtype:
    return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)


def chunk_size(m: int, k: int, d: int, block: int | None = None) -> int:
    """Examples per chunk: as many as fit in one block (default `_BLOCK` elements), at
    least 1, at most m."""
    return int(min(m, max(1, (_BLOCK if block is None else block) // max(1, k * d))))


def _chunked(arrays, c: int, fill=0):
    """Split the leading axis m into (⌈m/c⌉, c, ...), padding the last chunk with `fill`."""
    m = arrays[0].shape[0]
    pad = (-m) % c
    out = []
    for a in arrays:
        if pad:
            a = jnp.concatenate([a, jnp.full((pad,) + a.shape[1:], fill, a.dtype)])
        out.append(a.reshape((-1, c) + a.shape[1:]))
    return out


def _map_rows(block, a: jax.Array, idx: jax.Array, table: jax.Array, width: int, size: int | None = None) -> jax.Array:
    """block(a, idx) over row chunks whose gathered rows fit in `size` elements (default
    `_BLOCK`, so that they stay in cache); a and idx share their leading dimension m, the
    result is (m, width)."""
    m, k = idx.shape
    c = chunk_size(m, k, table.shape[1], size)
    if c >= m:
        return block(a, idx)
    parts, ids = _chunked([a, idx], c)
    return jax.lax.map(lambda p: block(*p), (parts, ids)).reshape(-1, width)[:m]


def row_dots(x: jax.Array, table: jax.Array, idx: jax.Array) -> jax.Array:
    """out[i, j] = table[idx[i, j]] · x[i].  x (m, d), table (s, d), idx (m, k) → (m, k)."""
    return cpu_else(_row_dots_cpu, _row_dots_vector, *as_arrays(x, table, idx))


def _gather_contract(spec: str, a, idx, table, width: int, size: int | None = None):
    """einsum(spec, a[chunk], table[idx[chunk]]) over chunks of examples whose gathered
    rows fit in `size` elements (see `_map_rows`); (m, width) in the dtype of a and table."""
    acc = _acc_dtype(a, table)

    def block(ab, ib):
        return jnp.einsum(spec, ab, table[ib], preferred_element_type=acc)

    return _map_rows(block, a, idx, table, width, size).astype(jnp.result_type(a, table))


def _row_dots_vector(x, table, idx):
    return _gather_contract("cd,ckd->ck", x, idx, table, idx.shape[1], _ACCEL_BLOCK)


def _row_dots_cpu(x, table, idx):
    m, k = idx.shape
    acc = _acc_dtype(x, table)
    if chunk_size(m, k, table.shape[1]) == 1:
        # One example's rows fill a block: take them one example at a time as the
        # vector-matrix product x[i] @ table[idx[i]]ᵀ, which XLA fuses with the gather
        # into one loop. The batched form gathers the block first and hands it to a
        # separate matrix-vector call: 1.8× slower at k = 64, 2.5× at k = 256 (d = 512).
        def one(p):
            xi, ii = p
            return jnp.dot(xi, table[ii].T, preferred_element_type=acc)

        return jax.lax.map(one, (x, idx)).astype(jnp.result_type(x, table))
    return _gather_contract("cd,ckd->ck", x, idx, table, k)


def _add_slots(total: jax.Array, coef: jax.Array, idx: jax.Array, table: jax.Array) -> jax.Array:
    """total + Σ_j coef[:, j] · table[idx[:, j]] over the few slots j of coef, idx (c, u),
    written as one sum so that XLA fuses the gathers into the additions."""
    acc = total.dtype
    for j in range(idx.shape[1]):
        row = table.at[idx[:, j]].get(mode="promise_in_bounds").astype(acc)
        total = total + coef[:, j, None].astype(acc) * row
    return total


def row_combine(coef: jax.Array, idx: jax.Array, table: jax.Array) -> jax.Array:
    """out[i] = Σ_j coef[i, j] · table[idx[i, j]].  coef, idx (m, k), table (s, d) → (m, d)."""
    return cpu_else(_row_combine_cpu, _row_combine_vector, *as_arrays(coef, idx, table))


def _row_combine_vector(coef, idx, table):
    return _gather_contract("ck,ckd->cd", coef, idx, table, table.shape[1], _ACCEL_BLOCK)


def _row_combine_cpu(coef, idx, table):
    m, k = idx.shape
    d = table.shape[1]
    acc = _acc_dtype(coef, table)
    # Taken one column at a time, idx could be simplified into column slices of whatever
    # produced it; when that is `lax.top_k`, XLA on CPU then no longer recognises the
    # top-k and sorts every row in full (25× slower at s = 1024, k = 16). The barrier
    # keeps idx whole.
    idx = jax.lax.optimization_barrier(idx)
    u = min(k, _UNROLL)
    whole = k - k % u  # slots in full groups of u; the k % u left over are added at the end

    def block(cb, ib):
        c = ib.shape[0]
        total = jnp.zeros((c, d), acc)
        if whole > u:
            groups = (cb[:, :whole].reshape(c, whole // u, u).transpose(1, 0, 2),
                      ib[:, :whole].reshape(c, whole // u, u).transpose(1, 0, 2))
            total, _ = jax.lax.scan(lambda t, g: (_add_slots(t, *g, table), None), total, groups)
        elif whole:
            total = _add_slots(total, cb[:, :whole], ib[:, :whole], table)
        return _add_slots(total, cb[:, whole:], ib[:, whole:], table)

    c = int(min(m, max(1, _SUM_BLOCK // max(1, d))))
    if c >= m:
        out = block(coef, idx)
    else:
        parts, ids = _chunked([coef, idx], c)
        out = jax.lax.map(lambda p: block(*p), (parts, ids)).reshape(-1, d)[:m]
    return out.astype(jnp.result_type(coef, table))


def row_scatter_add(s: int, idx: jax.Array, coef: jax.Array, x: jax.Array, dtype) -> jax.Array:
    """out[u] = Σ_{i, j: idx[i, j] = u} coef[i, j] · x[i].  idx, coef (m, k), x (m, d) → (s, d).

    The transpose of `row_dots` with respect to the table; `dtype` is the result's.
    """
    m, k = idx.shape
    d = x.shape[1]
    # On CPU at least two examples per step: each step's scatter is split across threads,
    # and with one example per step that overhead costs 5–20% (m = 256, k = 64–256, d = 512).
    return cpu_else(lambda *a: _scatter_rows(s, *a, dtype, max(chunk_size(m, k, d), min(m, 2))),
                    lambda *a: _scatter_rows(s, *a, dtype, chunk_size(m, k, d, _ACCEL_BLOCK)),
                    *as_arrays(idx, coef, x))


def _scatter_rows(s: int, idx, coef, x, dtype, c: int):
    """`row_scatter_add` in chunks of c examples."""
    m, k = idx.shape
    d = x.shape[1]
    acc = _acc_dtype(coef, x)

    def add(total, cb, ib, xb):
        upd = (cb[:, :, None].astype(acc) * xb[:, None, :].astype(acc)).reshape(cb.shape[0] * cb.shape[1], d)
        return total.at[ib.reshape(-1)].add(upd, mode="promise_in_bounds")

    zeros = jnp.zeros((s, d), acc)
    if c >= m:
        return add(zeros, coef, idx, x).astype(dtype)
    cs, ids, xs = _chunked([coef, idx, x], c)  # padded rows have coef 0: they add nothing

    def step(total, a):
        return add(total, *a), None

    total, _ = jax.lax.scan(step, zeros, (cs, ids, xs))
    return total.astype(dtype)


def scatter_add_1d(s: int, idx: jax.Array, coef: jax.Array, dtype) -> jax.Array:
    """out[u] = Σ_{i, j: idx[i, j] = u} coef[i, j].  idx, coef (m, k) → (s,)."""
    idx, coef = as_arrays(idx, coef)
    acc = _acc_dtype(coef)
    total = jnp.zeros((s,), acc).at[idx.reshape(-1)].add(coef.reshape(-1).astype(acc), mode="promise_in_bounds")
    return total.astype(dtype)
