"""The sparse primitives agree with their dense references: values, gradients, vmap.

Shapes, k and dtypes are drawn by hypothesis; bfloat16 results are compared with the
float32 reference on the same (rounded) inputs at a looser tolerance. Finite-difference
checks (`check_grads`) run in float64 on inputs kept away from the top-k and ReLU kinks.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from sparselearn import primitives as P
from sparselearn.primitives import _rows

FEW = settings(max_examples=6, deadline=None, derandomize=True)
DTYPES = st.sampled_from([jnp.float32, jnp.bfloat16])


def tol(dtype) -> dict:
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == jnp.float32 else {"rtol": 3e-2, "atol": 3e-2}


def close(a, b, dtype=jnp.float32):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), **tol(dtype))


def normal(seed: int, shape, dtype=jnp.float32):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32).astype(dtype)


def distinct(seed: int, shape, scale: float = 1.0):
    """Entries that differ pairwise by at least `scale` along the last axis (no near-ties)."""
    perm = jax.random.permutation(jax.random.key(seed), shape[-1] * int(np.prod(shape[:-1])))
    return (perm.reshape(shape).astype(jnp.float32) - shape[-1] / 2) * scale


@st.composite
def sizes(draw):
    # Few distinct shapes, so compiled programs are reused across examples.
    s = draw(st.sampled_from([1, 3, 8]))
    return {"m": draw(st.sampled_from([1, 4])), "n": draw(st.sampled_from([2, 5])), "s": s,
            "k": draw(st.integers(1, s)), "seed": draw(st.integers(0, 2**16))}


def f32(*arrays):
    return [a.astype(jnp.float32) for a in arrays]


# ---------------------------------------------------------------- masked_matmul

def masked_case(d, dtype):
    x = normal(d["seed"], (d["m"], d["n"]), dtype)
    w = normal(d["seed"] + 1, (d["n"], d["s"]), dtype)
    mask = jax.random.bernoulli(jax.random.key(d["seed"] + 2), 0.5, (d["n"], d["s"]))
    return x, w, mask


@jax.jit
def masked_both(x, w, mask, g):
    def pullback(fn, x, w):
        out, pull = jax.vjp(lambda x, w: fn(x, w, mask), x, w)
        return out, pull(g.astype(x.dtype))

    return pullback(P.masked_matmul, x, w), pullback(P.masked_matmul_reference, *f32(x, w))


@FEW
@given(sizes(), DTYPES)
def test_masked_matmul_matches_reference(d, dtype):
    x, w, mask = masked_case(d, dtype)
    g = normal(d["seed"] + 3, (d["m"], d["s"]), dtype)
    (out, got), (out_ref, want) = masked_both(x, w, mask, g)
    close(out, out_ref, dtype)
    for a, b in zip(got, want):
        close(a, b, dtype)
    assert not np.any(np.asarray(got[1], np.float32)[~np.asarray(mask)])  # no gradient off the mask


def test_masked_matmul_float_mask_and_no_mask_gradient():
    x, w = normal(0, (3, 4)), normal(1, (4, 5))
    mask = (normal(2, (4, 5)) > 0).astype(jnp.float32)
    close(P.masked_matmul(x, w, mask), x @ (w * mask))
    d_mask = jax.grad(lambda m: P.masked_matmul(x, w, m).sum())(mask)
    assert not np.any(np.asarray(d_mask))


def test_masked_matmul_check_grads():
    with jax.enable_x64(True):
        x = normal(0, (3, 4)).astype(jnp.float64)
        w = normal(1, (4, 5)).astype(jnp.float64)
        mask = normal(2, (4, 5)) > 0
        check_grads(jax.jit(lambda x, w: P.masked_matmul(x, w, mask)), (x, w), order=2, modes=("rev",))


def test_masked_matmul_gradients_keep_the_input_dtypes():
    mask = normal(2, (4, 5)) > 0
    for dx, dw in ((jnp.bfloat16, jnp.float32), (jnp.float32, jnp.bfloat16)):
        x, w = normal(0, (3, 4), dx), normal(1, (4, 5), dw)
        gx, gw = jax.grad(lambda x, w: P.masked_matmul(x, w, mask).astype(jnp.float32).sum(), (0, 1))(x, w)
        assert (gx.dtype, gw.dtype) == (x.dtype, w.dtype)
        close(gx, jnp.ones((3, 5)) @ jnp.where(mask, w, 0).astype(jnp.float32).T, jnp.bfloat16)


# ---------------------------------------------------------------- topk

@partial(jax.jit, static_argnums=2)
def topk_all(z, g, k):
    out, pull = jax.vjp(lambda z: P.topk(z, k), z)
    return out, P.topk_reference(z, k), P.keep_mask(P.topk_indices(z, k)[1], z.shape[-1]), pull(g)[0]


@FEW
@given(sizes(), DTYPES, st.booleans())
def test_topk_matches_sort_reference_including_ties(d, dtype, ties):
    shape = (d["m"], d["s"])
    z = (jax.random.randint(jax.random.key(d["seed"]), shape, -2, 3).astype(dtype) if ties
         else normal(d["seed"], shape, dtype))
    g = normal(d["seed"] + 1, shape, dtype)
    got, want, kept, dz = topk_all(z, g, d["k"])
    np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))
    kept = np.asarray(kept)
    assert (kept.sum(-1) == d["k"]).all()
    np.testing.assert_array_equal(np.asarray(dz, np.float32), np.where(kept, np.asarray(g, np.float32), 0))


def test_topk_ties_keep_lower_index():
    z = jnp.array([[1.0, 2.0, 2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(P.topk(z, 2), [[0.0, 2.0, 2.0, 0.0, 0.0]])


def test_topk_batched_leading_axes_and_indices_order():
    z = normal(0, (2, 3, 7))
    values, idx = P.topk_indices(z, 3)
    assert values.shape == idx.shape == (2, 3, 3)
    assert np.all(np.diff(np.asarray(values), axis=-1) <= 0)
    close(P.topk(z, 3), P.topk_reference(z, 3))


def test_topk_check_grads_both_modes():
    with jax.enable_x64(True):
        z = distinct(0, (3, 6)).astype(jnp.float64)
        check_grads(jax.jit(lambda z: P.topk(z, 2)), (z,), order=2, modes=("fwd", "rev"), eps=1e-3)


# ---------------------------------------------------------------- gather_matmul

def gather_case(d, dtype, out):
    values = normal(d["seed"], (d["m"], d["k"]), dtype)
    idx = jax.vmap(lambda key: jax.random.permutation(key, d["s"])[: d["k"]])(
        jax.random.split(jax.random.key(d["seed"] + 1), d["m"]))
    w2 = normal(d["seed"] + 2, (d["s"],) if out is None else (d["s"], out), dtype)
    return values, idx, w2


@partial(jax.jit, static_argnums=4)
def gather_both(values, idx, w2, g, impl):
    got, pull = jax.vjp(lambda v, w: P.gather_matmul(v, idx, w, impl=impl), values, w2)
    want, pull_ref = jax.vjp(lambda v, w: P.gather_matmul_reference(v, idx, w), *f32(values, w2))
    return got, want, pull(g), pull_ref(g.astype(jnp.float32))


@FEW
@given(sizes(), DTYPES, st.sampled_from([None, 3]), st.sampled_from(["sparse", "dense"]))
def test_gather_matmul_matches_reference(d, dtype, out, impl):
    values, idx, w2 = gather_case(d, dtype, out)
    g = normal(d["seed"] + 3, (d["m"],) if out is None else (d["m"], out), dtype)
    got, want, got_g, want_g = gather_both(values, idx, w2, g, impl)
    assert got.shape == want.shape == g.shape
    close(got, want, dtype)
    for a, b in zip(got_g, want_g):
        close(a, b, dtype)


@pytest.mark.parametrize("impl", ["sparse", "auto"])
@pytest.mark.parametrize("m, k, out", [(0, 40, 3), (0, 40, None), (6, 3, 0), (0, 3, 0)])
def test_gather_matmul_of_empty_shapes_matches_the_reference(impl, m, k, out):
    """No examples with k ≥ 32 (the unrolled groups of the sparse sum) and an output of width 0
    (its weight gradient) raised ZeroDivisionError in reshapes of size-0 arrays."""
    s = max(k, 8)
    values, idx = normal(0, (m, k)), jnp.tile(jnp.arange(k, dtype=jnp.int32), (m, 1))
    w2 = normal(1, (s,) if out is None else (s, out))

    def loss(f):
        return lambda v, w: jnp.sum(f(v, idx, w))

    got = P.gather_matmul(values, idx, w2, impl=impl)
    want = P.gather_matmul_reference(values, idx, w2)
    assert got.shape == want.shape
    grads = jax.grad(loss(partial(P.gather_matmul, impl=impl)), argnums=(0, 1))(values, w2)
    for a, b in zip(grads, jax.grad(loss(P.gather_matmul_reference), argnums=(0, 1))(values, w2)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_gather_matmul_chunked_path_and_repeated_indices():
    # m·k·out above one block: the per-chunk lax.map / lax.scan path; idx repeats units.
    m, k, s, out = 40, 8, 12, 128
    values = normal(0, (m, k))
    idx = jax.random.randint(jax.random.key(1), (m, k), 0, s)
    w2 = normal(2, (s, out))
    assert _rows.chunk_size(m, k, out) < m
    close(P.gather_matmul(values, idx, w2), P.gather_matmul_reference(values, idx, w2))
    g = normal(3, (m, out))
    got, want = jax.jit(lambda v, w, g: [jax.vjp(lambda v, w: fn(v, idx, w), v, w)[1](g)
                                         for fn in (P.gather_matmul, P.gather_matmul_reference)])(values, w2, g)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_gather_matmul_auto_path_follows_the_rule_and_changes_nothing():
    # the rule: gather when k/s ≤ 1/32, or k/s ≤ 1/16 and k·out ≤ 2^17, or k·out ≤ 2^14
    assert P.gather_prefers_sparse(64, 4096, 512)         # density 1/64
    assert P.gather_prefers_sparse(256, 4096, 512)        # density 1/16, rows of 2^17
    assert not P.gather_prefers_sparse(1024, 16384, 512)  # density 1/16, longer rows
    assert P.gather_prefers_sparse(1024, 4096, 1)         # density 1/4, scalar output
    assert not P.gather_prefers_sparse(1024, 4096, 64)
    m, s, k, out = 5, 64, 32, 1024                        # auto takes the dense path here
    assert not P.gather_prefers_sparse(k, s, out)
    values = normal(0, (m, k))
    idx = jax.random.randint(jax.random.key(1), (m, k), 0, s)  # repeated units add up on both paths
    w2, g = normal(2, (s, out)), normal(3, (m, out))
    results = {}
    for impl in ("auto", "sparse", "dense"):
        out_, pull = jax.vjp(lambda v, w, impl=impl: P.gather_matmul(v, idx, w, impl=impl), values, w2)
        results[impl] = (out_, *pull(g))
    for impl in ("auto", "dense"):
        for a, b in zip(results[impl], results["sparse"]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=impl)


def test_gather_matmul_check_grads():
    with jax.enable_x64(True):
        values = normal(0, (4, 3)).astype(jnp.float64)
        w2 = normal(1, (7, 2)).astype(jnp.float64)
        idx = jnp.array([[0, 3, 6], [1, 2, 3], [6, 5, 4], [0, 1, 2]])
        for impl in ("sparse", "dense"):
            check_grads(jax.jit(lambda v, w, impl=impl: P.gather_matmul(v, idx, w, impl=impl)), (values, w2),
                        order=2, modes=("rev",))


def test_gather_matmul_check_grads_on_numpy_inputs():
    # check_grads hands the function NumPy arrays; the sparse path must accept them unjitted
    with jax.enable_x64(True):
        values = np.asarray(normal(0, (4, 3)), np.float64)
        w2 = np.asarray(normal(1, (7, 2)), np.float64)
        idx = np.array([[0, 3, 6], [1, 2, 3], [6, 5, 4], [0, 1, 2]])
        check_grads(lambda v, w: P.gather_matmul(v, idx, w, impl="sparse"), (values, w2), order=2, modes=("rev",))


@pytest.mark.parametrize("impl", _rows.IMPLS)
def test_numpy_inputs_give_the_values_and_gradients_of_jax_inputs(impl):
    m, n, s, k = 3, 4, 8, 2
    x, router, w1, b1, w2 = routed_case({"m": m, "n": n, "s": s, "seed": 0}, jnp.float32, out=2)
    values, idx = normal(6, (m, k)), jax.lax.top_k(normal(7, (m, s)), k)[1]

    def run(np_inputs):
        cast = (lambda a: np.asarray(a)) if np_inputs else (lambda a: a)
        xv, w1v, b1v, w2v, vv, iv = map(cast, (x, w1, b1, w2, values, idx))
        gather = lambda v, w: P.gather_matmul(v, iv, w, impl=impl)  # noqa: E731
        layer = lambda x, w1, b1: P.routed_layer(x, router, w1, b1, k, impl=impl)[0]  # noqa: E731
        mlp = lambda x, w1, b1, w2: P.routed_mlp(x, router, w1, b1, w2, k, impl=impl)  # noqa: E731
        out = []
        for fn, args in ((gather, (vv, w2v)), (layer, (xv, w1v, b1v)), (mlp, (xv, w1v, b1v, w2v))):
            out.append(fn(*args))
            out.extend(jax.grad(lambda *a, fn=fn: fn(*a).sum(), tuple(range(len(args))))(*args))
            # a NumPy operand closed over keeps its type into the backward pass
            out.append(jax.grad(lambda a0, fn=fn, args=args: fn(a0, *args[1:]).sum())(jnp.asarray(args[0])))
        return out

    for a, b in zip(run(True), run(False)):
        close(a, b)


@pytest.mark.parametrize("block, unroll, sum_block", [(1, 1, 1), (7, 2, 12), (64, 16, 1 << 17)])
def test_row_helpers_match_dense_at_every_chunk_size(monkeypatch, block, unroll, sum_block):
    # chunks of 1, a few or all examples; row_combine's slots one by one, in groups of 2
    # with one left over (k = 5), and all in one group
    monkeypatch.setattr(_rows, "_BLOCK", block)
    monkeypatch.setattr(_rows, "_UNROLL", unroll)
    monkeypatch.setattr(_rows, "_SUM_BLOCK", sum_block)
    m, k, s, d = 9, 5, 11, 5
    x, coef, table = normal(0, (m, d)), normal(1, (m, k)), normal(2, (s, d))
    idx = jax.random.randint(jax.random.key(3), (m, k), 0, s)
    onehot = jax.nn.one_hot(idx, s)  # (m, k, s)
    got = jax.jit(lambda x, coef, table, idx: (  # traced here, so with this test's block size
        _rows.row_dots(x, table, idx), _rows.row_combine(coef, idx, table),
        _rows.row_scatter_add(s, idx, coef, x, jnp.float32), _rows.scatter_add_1d(s, idx, coef, jnp.float32)))(
        x, coef, table, idx)
    close(got[0], jnp.einsum("md,sd,mks->mk", x, table, onehot))
    close(got[1], jnp.einsum("mk,mks,sd->md", coef, onehot, table))
    close(got[2], jnp.einsum("mk,mks,md->sd", coef, onehot, x))
    close(got[3], jnp.einsum("mk,mks->s", coef, onehot))


@pytest.mark.parametrize("accel_block", [1, 12, 1 << 24])
def test_row_helpers_accelerator_branch_matches_dense(monkeypatch, accel_block):
    # the branch `cpu_else` takes outside CPUs, called directly: chunks of 1, a few or all examples
    monkeypatch.setattr(_rows, "_ACCEL_BLOCK", accel_block)
    m, k, s, d = 9, 5, 11, 5
    x, coef, table = normal(0, (m, d)), normal(1, (m, k)), normal(2, (s, d))
    idx = jax.random.randint(jax.random.key(3), (m, k), 0, s)
    onehot = jax.nn.one_hot(idx, s)
    c = _rows.chunk_size(m, k, d, accel_block)
    close(_rows._row_dots_vector(x, table, idx), jnp.einsum("md,sd,mks->mk", x, table, onehot))
    close(_rows._row_combine_vector(coef, idx, table), jnp.einsum("mk,mks,sd->md", coef, onehot, table))
    close(_rows._scatter_rows(s, idx, coef, x, jnp.float32, c), jnp.einsum("mk,mks,md->sd", coef, onehot, x))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="which branch a CPU program takes")
def test_auto_takes_the_sparse_path_on_cpu_where_the_rule_says_so():
    m, s, k, d = 8, 256, 4, 16                          # density 1/64
    assert P.gather_prefers_sparse(k, s, d) and P.prefers_sparse(k, s, d)
    values, w2 = normal(0, (m, k)), normal(1, (s, d))
    idx = jax.lax.top_k(normal(2, (m, s)), k)[1]
    x, router, w1, b1, _ = routed_case({"m": m, "n": d, "s": s, "seed": 3}, jnp.float32)
    programs = {
        "gather_matmul": (lambda v, w: P.gather_matmul(v, idx, w).sum(), (values, w2)),
        "routed_mlp": (lambda w1, w2: P.routed_mlp(x, router, w1, b1, w2, k).sum(), (w1, w2)),
    }
    for name, (fn, args) in programs.items():
        text = jax.jit(jax.value_and_grad(fn, argnums=(0, 1))).lower(*args).compile().as_text()
        dots = [line for line in text.splitlines() if " dot(" in line]
        # the dense path multiplies a whole (s, d) weight matrix, forward and backward
        assert not any(f"f32[{s},{d}]" in line for line in dots), (name, dots)


# ---------------------------------------------------------------- routed_mlp

def routed_case(d, dtype, rank=2, out=None):
    m, n, s = d["m"], d["n"], d["s"]
    seed = d["seed"]
    x = normal(seed, (m, n), dtype)
    router = (normal(seed + 1, (n, rank), dtype), normal(seed + 2, (rank, s), dtype))
    w1, b1 = normal(seed + 3, (s, n), dtype), normal(seed + 4, (s,), dtype)
    w2 = normal(seed + 5, (s,) if out is None else (s, out), dtype)
    return x, router, w1, b1, w2


@partial(jax.jit, static_argnums=(6, 7))
def routed_both(x, router, w1, b1, w2, g, k, impl):
    router32 = tuple(f32(*router))
    same_route = jnp.all(P.route(x, router, b1, k) == P.route(*f32(x), router32, *f32(b1), k))
    got, pull = jax.vjp(lambda *a: P.routed_mlp(a[0], router, *a[1:], k, impl=impl), x, w1, b1, w2)
    want, pull_ref = jax.vjp(lambda *a: P.routed_mlp_reference(a[0], router32, *a[1:], k), *f32(x, w1, b1, w2))
    return same_route, got, want, pull(g), pull_ref(g.astype(jnp.float32))


@settings(max_examples=6, deadline=None, derandomize=True)
@given(sizes(), DTYPES, st.sampled_from(["sparse", "dense"]), st.sampled_from([None, 2]))
def test_routed_mlp_matches_reference(d, dtype, impl, out):
    x, router, w1, b1, w2 = routed_case(d, dtype, out=out)
    g = normal(d["seed"] + 9, (d["m"],) if out is None else (d["m"], out), dtype)
    same_route, got, want, got_g, want_g = routed_both(x, router, w1, b1, w2, g, d["k"], impl)
    # bfloat16 scores may order near-tied units differently from float32 ones
    assume(bool(same_route))
    close(got, want, dtype)
    for a, b in zip(got_g, want_g):
        close(a, b, dtype)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(sizes(), DTYPES, st.sampled_from(["sparse", "dense"]))
def test_routed_layer_matches_the_routed_columns_of_the_dense_layer(d, dtype, impl):
    x, router, w1, b1, _ = routed_case(d, dtype)
    router32 = tuple(f32(*router))
    k = d["k"]
    g = normal(d["seed"] + 9, (d["m"], k), dtype)

    def both(x, w1, b1):
        z, idx = P.routed_layer(x, router, w1, b1, k, impl=impl)
        _, pull = jax.vjp(lambda *a: P.routed_layer(a[0], router, *a[1:], k, impl=impl)[0], x, w1, b1)
        x32, w32, b32 = f32(x, w1, b1)
        want, idx32 = P.routed_layer_reference(x32, router32, w32, b32, k)
        _, pull_ref = jax.vjp(lambda *a: P.routed_layer_reference(a[0], router32, *a[1:], k)[0], x32, w32, b32)
        # the reference, written out: the routed columns of the dense layer
        dense = jnp.take_along_axis(x32 @ w32.T + b32, idx32, axis=1)
        return idx, idx32, z, want, dense, pull(g), pull_ref(g.astype(jnp.float32))

    idx, idx32, z, want, dense, got_g, want_g = jax.jit(both)(x, w1, b1)
    # bfloat16 scores may order near-tied units differently from float32 ones
    assume(bool(jnp.all(idx == idx32)))
    close(z, want, dtype)
    close(want, dense)
    for a, b in zip(got_g, want_g):
        close(a, b, dtype)


def test_routed_layer_check_grads():
    with jax.enable_x64(True):
        m, n, s, k = 3, 4, 7, 3
        x, w1 = normal(0, (m, n)).astype(jnp.float64), normal(1, (s, n)).astype(jnp.float64)
        b1 = distinct(3, (s,)).astype(jnp.float64)
        router = (jnp.zeros((n, 1)), jnp.zeros((1, s)))  # scores = b1: routing fixed by the biases
        check_grads(jax.jit(lambda x, w1, b1: P.routed_layer(x, router, w1, b1, k, impl="sparse")[0]),
                    (x, w1, b1), order=2, modes=("rev",), eps=1e-3)


def test_routed_mlp_equals_dense_topk_mlp_with_an_exact_router():
    m, n, s, k = 6, 5, 16, 4
    x, w1, b1, w2 = normal(0, (m, n)), normal(1, (s, n)), normal(2, (s,)), normal(3, (s, 2))
    exact = (jnp.eye(n), w1.T)  # scores = x @ w1ᵀ + b1: the true pre-activations
    want = P.topk_mlp_reference(x, w1, b1, w2, k)
    for impl in ("sparse", "dense", "auto"):
        close(P.routed_mlp(x, exact, w1, b1, w2, k, impl=impl), want)


def test_low_rank_router_ranks_truly_active_units_first_for_low_rank_weights():
    # w1 of rank 3 in n = 12: a rank-3 router built from w1 recovers the exact ranking.
    m, n, s, k, r = 20, 12, 64, 5, 3
    w1 = normal(0, (s, r)) @ normal(1, (r, n))
    x, b1, w2 = normal(2, (m, n)), normal(3, (s,)), normal(4, (s,))
    router = P.router_from_weights(w1, r, seed=5)
    np.testing.assert_array_equal(P.route(x, router, b1, k), jax.lax.top_k(x @ w1.T + b1, k)[1])
    close(P.routed_mlp(x, router, w1, b1, w2, k), P.topk_mlp_reference(x, w1, b1, w2, k), jnp.bfloat16)
    np.testing.assert_allclose(P.routed_mlp(x, router, w1, b1, w2, k), P.topk_mlp_reference(x, w1, b1, w2, k),
                               rtol=1e-4, atol=1e-4)


def ill_conditioned(seed: int, s: int, n: int, cond: float) -> jax.Array:
    """(s, n) weights with singular values spread log-evenly from 1 down to 1/cond."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((s, n)))[0]
    v = np.linalg.qr(rng.standard_normal((n, n)))[0]
    return jnp.asarray((u * np.logspace(0, -np.log10(cond), n)) @ v.T, jnp.float32)


@pytest.mark.parametrize("rank", [30, 40])
def test_router_from_weights_at_full_rank_is_exact_for_ill_conditioned_weights(rank):
    m, n, s, k = 500, 30, 256, 4
    w1 = ill_conditioned(0, s, n, 1e3)
    x = jnp.asarray(np.random.default_rng(1).choice([-1.0, 1.0], (m, n)), jnp.float32)
    b1, w2 = 0.01 * normal(2, (s,)), normal(3, (s,))
    router = P.router_from_weights(w1, rank)
    got = jnp.sort(P.route(x, router, b1, k), axis=1)
    want = jnp.sort(jax.lax.top_k(x @ w1.T + b1, k)[1], axis=1)
    np.testing.assert_array_equal(got, want)
    for impl in ("sparse", "dense"):
        np.testing.assert_allclose(P.routed_mlp(x, router, w1, b1, w2, k, impl=impl),
                                   P.topk_mlp_reference(x, w1, b1, w2, k), rtol=1e-5, atol=1e-6)


def test_router_from_weights_below_full_rank_has_an_orthonormal_basis():
    n, s = 30, 256
    w1 = ill_conditioned(0, s, n, 1e3)
    sv = np.linalg.svd(np.asarray(w1), compute_uv=False)
    for r in (5, 20, 29):
        u, v = P.router_from_weights(w1, r)
        assert u.shape == (n, r) and v.shape == (r, s)
        np.testing.assert_allclose(u.T @ u, np.eye(r), atol=1e-5)
        # the projection x Q Qᵀ w1ᵀ misses little more than the best rank-r approximation
        assert np.linalg.norm(np.asarray(u @ v - w1.T), 2) < 1.5 * sv[r]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="about how XLA on CPU lowers lax.top_k")
def test_routing_stays_a_top_k_not_a_full_sort():
    # k = 16 slots in one fused group once made XLA see column slices of the top-k and sort
    # every row in full instead (25x slower at s = 1024)
    m, n, s, k = 4, 8, 64, 16
    x, router, w1, b1, w2 = routed_case({"m": m, "n": n, "s": s, "seed": 0}, jnp.float32)

    def loss(w1, b1, w2):
        return P.routed_mlp(x, router, w1, b1, w2, k, impl="sparse").sum()

    def loss_gather(z, w2):  # the topk activation of the mlp learner
        values, idx = P.topk_indices(z, k)
        return P.gather_matmul(jax.nn.relu(values), idx, w2, impl="sparse").sum()

    for fn, args in ((loss, (w1, b1, w2)), (loss_gather, (normal(1, (m, s)), w2))):
        text = jax.jit(jax.value_and_grad(fn, argnums=tuple(range(len(args))))).lower(*args).compile().as_text()
        assert " sort(" not in text


def test_routed_mlp_gives_the_router_no_gradient():
    x, router, w1, b1, w2 = routed_case({"m": 3, "n": 4, "s": 8, "seed": 0}, jnp.float32)
    g = jax.grad(lambda r: P.routed_mlp(x, r, w1, b1, w2, 2).sum())(router)
    assert all(not np.any(np.asarray(a)) for a in g)


def test_routed_mlp_chunked_path_matches_reference():
    d = {"m": 33, "n": 300, "s": 40, "seed": 1}
    x, router, w1, b1, w2 = routed_case(d, jnp.float32, rank=3, out=4)
    k = 16
    assert _rows.chunk_size(33, k, 300) < 33

    def loss(fn, *a):
        return jnp.sum(fn(*a) ** 2)

    got, want = jax.jit(lambda *a: [
        jax.grad(lambda *a: loss(lambda *b: P.routed_mlp(b[0], router, *b[1:], k, impl="sparse"), *a),
                 argnums=(0, 1, 2, 3))(*a),
        jax.grad(lambda *a: loss(lambda *b: P.routed_mlp_reference(b[0], router, *b[1:], k), *a),
                 argnums=(0, 1, 2, 3))(*a)])(x, w1, b1, w2)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_routed_mlp_check_grads():
    with jax.enable_x64(True):
        m, n, s, k = 3, 4, 7, 3
        x = normal(0, (m, n)).astype(jnp.float64)
        w1 = normal(1, (s, n)).astype(jnp.float64)
        w2 = normal(2, (s, 2)).astype(jnp.float64)
        b1 = 10.0 + distinct(3, (s,)).astype(jnp.float64)  # every unit active, no ties in routing
        router = (jnp.zeros((n, 1)), jnp.zeros((1, s)))      # scores = b1: routing fixed by the biases
        check_grads(jax.jit(lambda x, w1, b1, w2: P.routed_mlp(x, router, w1, b1, w2, k, impl="sparse")),
                    (x, w1, b1, w2), order=2, modes=("rev",), eps=1e-3)


# ---------------------------------------------------------------- vmap, jit

def test_vmap_equals_python_loop_for_every_primitive():
    b, m, n, s, k = 3, 4, 5, 9, 3
    xs, ws, w1s = normal(0, (b, m, n)), normal(1, (b, n, s)), normal(2, (b, s, n))
    masks = normal(3, (b, n, s)) > 0
    zs, b1s, w2s = normal(4, (b, m, s)), normal(5, (b, s)), normal(6, (b, s, 2))
    idxs = jax.lax.top_k(zs, k)[1]
    vals = normal(7, (b, m, k))
    router = (normal(8, (n, 2)), normal(9, (2, s)))
    cases = {
        "masked_matmul": (P.masked_matmul, (xs, ws, masks)),
        "topk": (lambda z: P.topk(z, k), (zs,)),
        "gather_matmul": (P.gather_matmul, (vals, idxs, w2s)),
        "gather_matmul dense": (partial(P.gather_matmul, impl="dense"), (vals, idxs, w2s)),
        "routed_mlp": (lambda x, w1, b1, w2: P.routed_mlp(x, router, w1, b1, w2, k, impl="sparse"),
                       (xs, w1s, b1s, w2s)),
        "routed_layer": (lambda x, w1, b1: P.routed_layer(x, router, w1, b1, k, impl="sparse")[0],
                         (xs, w1s, b1s)),
    }
    for name, (fn, args) in cases.items():
        value_and_grad = jax.jit(lambda *a, fn=fn: (fn(*a), jax.grad(lambda *b: fn(*b).sum())(*a)))
        batched = jax.jit(jax.vmap(value_and_grad))(*args)
        looped = [value_and_grad(*(a[i] for a in args)) for i in range(b)]
        for j, what in enumerate(("value", "gradient")):
            np.testing.assert_allclose(batched[j], jnp.stack([out[j] for out in looped]), rtol=1e-5, atol=1e-5,
                                       err_msg=f"{name} {what}")


def test_jit_equals_eager():
    x, router, w1, b1, w2 = routed_case({"m": 5, "n": 4, "s": 12, "seed": 3}, jnp.float32)
    fn = lambda x, w1, b1, w2: P.routed_mlp(x, router, w1, b1, w2, 3, impl="sparse")  # noqa: E731
    close(jax.jit(fn)(x, w1, b1, w2), fn(x, w1, b1, w2))
    close(jax.jit(lambda z: P.topk(z, 2))(w1), P.topk(w1, 2))


# ---------------------------------------------------------------- errors at trace time

@pytest.mark.parametrize("call, message", [
    (lambda: P.masked_matmul(jnp.ones((2, 3)), jnp.ones((4, 5)), jnp.ones((4, 5), bool)), "inner sizes"),
    (lambda: P.masked_matmul(jnp.ones((2, 3)), jnp.ones((3, 5)), jnp.ones((5, 3), bool)), "mask must have the shape"),
    (lambda: P.masked_matmul(jnp.ones(3), jnp.ones((3, 5)), jnp.ones((3, 5), bool)), "x must have shape"),
    (lambda: P.topk(jnp.ones((2, 3)), 4), "1 ≤ k ≤ s = 3"),
    (lambda: P.topk(jnp.ones((2, 3)), 0), "1 ≤ k ≤ s = 3"),
    (lambda: P.topk(jnp.ones((2, 3), jnp.int32), 1), "float"),
    (lambda: jax.jit(lambda k: P.topk(jnp.ones((2, 3)), k))(2), "static Python int"),
    (lambda: P.gather_matmul(jnp.ones((2, 3)), jnp.zeros((2, 3), jnp.int32), jnp.ones((2, 4))), "1 ≤ k ≤ s = 2"),
    (lambda: P.gather_matmul(jnp.ones((2, 3)), jnp.zeros((2, 2), jnp.int32), jnp.ones((5, 4))), "same shape"),
    (lambda: P.gather_matmul(jnp.ones((2, 3)), jnp.zeros((2, 3)), jnp.ones((5, 4))), "integer"),
    (lambda: P.gather_matmul(jnp.ones((2, 3)), jnp.zeros((2, 3), jnp.int32), jnp.ones((5, 4)), impl="fast"),
     "impl must be"),
    (lambda: P.routed_mlp(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.ones((5, 3)),
                          jnp.ones(5), jnp.ones(5), 6), "1 ≤ k ≤ s = 5"),
    (lambda: P.routed_mlp(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.ones((5, 4)),
                          jnp.ones(5), jnp.ones(5), 2), "input sizes n"),
    (lambda: P.routed_mlp(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 6))), jnp.ones((5, 3)),
                          jnp.ones(5), jnp.ones(5), 2), "hidden sizes s"),
    (lambda: P.routed_mlp(jnp.ones((2, 3)), jnp.ones((3, 5)), jnp.ones((5, 3)), jnp.ones(5), jnp.ones(5), 2),
     "router must be a pair"),
    (lambda: P.routed_mlp(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.ones((5, 3)),
                          jnp.ones(5), jnp.ones(5), 2, impl="fast"), "impl must be"),
    (lambda: P.routed_layer(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.ones((5, 3)),
                            jnp.ones(4), 2), "hidden sizes s"),
    (lambda: P.routed_layer(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.ones((5, 3)),
                            jnp.ones(5), 6), "1 ≤ k ≤ s = 5"),
    (lambda: P.random_fan_in_mask(jax.random.key(0), 3, 4, 5), "fan_in"),
    (lambda: P.gather_matmul(jnp.ones((1, 3)), jnp.zeros((1, 3), jnp.int32), jnp.ones((2, 2))),
     r"got k = 3 \(k = idx.shape\[1\], s = w2.shape\[0\]\)"),
    (lambda: P.route(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.zeros(1), 2), "hidden sizes s"),
    (lambda: P.route(jnp.ones((2, 4)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.zeros(5), 2), "input sizes n"),
    (lambda: P.route(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.zeros(5, jnp.int32), 2),
     "b1 must be a float"),
    (lambda: P.router_from_weights(jnp.ones((6, 5), jnp.int32), 2), "w1 must be a float"),
])
def test_bad_arguments_fail_at_trace_time_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_random_fan_in_mask_has_exact_fan_in_per_unit():
    mask = P.random_fan_in_mask(jax.random.key(0), 10, 50, 3)
    assert mask.shape == (10, 50) and mask.dtype == bool
    assert (np.asarray(mask).sum(0) == 3).all()
    assert len({tuple(np.flatnonzero(c)) for c in np.asarray(mask).T}) > 10  # units differ
