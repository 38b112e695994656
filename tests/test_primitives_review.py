"""Review of the primitives against float64 NumPy versions written out here: top-k on edge rows,
masked products with non-finite masked-out weights, every impl of the gather and routed paths
(Pallas in interpret mode included) at k = 1, k = s and batch 1, empty operands, vmap with
shared operands, `impl="auto"` on CPU, and the argument checks of the mask and router helpers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sparselearn import primitives as P
from sparselearn.primitives.pallas import kernels as K

IMPLS = ("sparse", "dense", "auto", "pallas")


def rand(seed: int, *shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def np_topk(z: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest of each row, equal values lower index first, in float64."""
    z = np.asarray(z, np.float64)
    out = np.zeros_like(z)
    for i in np.ndindex(z.shape[:-1]):
        keep = sorted(range(z.shape[-1]), key=lambda j: (-z[i][j], j))[:k]
        out[i][keep] = z[i][keep]
    return out


def np_gather(values, idx, w2) -> np.ndarray:
    w2 = np.asarray(w2, np.float64)
    return np.einsum("mk,mk...->m...", np.asarray(values, np.float64), w2[np.asarray(idx)])


# ---------------------------------------------------------------- topk

ROWS = {
    "normal": lambda shape: rand(0, *shape),
    "zeros": lambda shape: np.zeros(shape, np.float32),
    "negative": lambda shape: -np.abs(rand(1, *shape)) - 1,
    "ties": lambda shape: np.random.default_rng(2).integers(-1, 2, shape).astype(np.float32),
    "infinite": lambda shape: np.where(rand(3, *shape) > 0, np.inf, -np.inf).astype(np.float32),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ROWS)
def test_topk_keeps_the_float64_lower_index_choice_on_edge_rows(kind):
    for shape in [(1, 1), (1, 5), (6,), (2, 3, 4)]:
        s = shape[-1]
        z = ROWS[kind](shape)
        for k in sorted({1, (s + 1) // 2, s}):
            want = np_topk(z, k)
            grad = jax.grad(lambda z, k=k: jnp.sum(P.topk(z, k) * jnp.arange(1.0, s + 1)))(jnp.asarray(z))
            for got in (P.topk(z, k), P.topk_reference(z, k), jax.jit(P.topk, static_argnums=1)(z, k)):
                np.testing.assert_array_equal(np.asarray(got, np.float64), want, err_msg=f"{shape} k={k}")
            # the backward pass sends g through exactly the k units the forward pass chose
            kept = np.asarray(P.keep_mask(P.topk_indices(z, k)[1], s))
            assert (kept.sum(-1) == k).all()
            np.testing.assert_array_equal(np.asarray(grad), np.where(kept, np.arange(1.0, s + 1), 0))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_topk_in_low_precision_and_on_transposed_numpy_input(dtype):
    z = rand(4, 7, 5).T                       # (5, 7), not C-contiguous
    assert not z.flags.c_contiguous
    low = jnp.asarray(z, dtype)               # rounding makes ties
    got = P.topk(low, 3)
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got, np.float64), np_topk(np.asarray(low, np.float32), 3))
    np.testing.assert_array_equal(P.topk(z, 3), np_topk(z, 3).astype(np.float32))


# ---------------------------------------------------------------- masked_matmul

@pytest.mark.parametrize("m, n, s", [(1, 1, 1), (1, 4, 3), (5, 3, 7)])
def test_masked_matmul_against_float64_numpy_with_every_kind_of_mask(m, n, s):
    x, w, g = rand(5, m, n), rand(6, n, s), rand(7, m, s)
    for mask in (np.zeros((n, s), bool), np.ones((n, s), bool), rand(8, n, s) > 0):
        kept = np.where(mask, w.astype(np.float64), 0)
        out, pull = jax.vjp(lambda x, w, mask=mask: P.masked_matmul(x, w, mask), x, w)
        dx, dw = pull(g)
        np.testing.assert_allclose(out, x @ kept, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dx, g @ kept.T, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dw, np.where(mask, x.T.astype(np.float64) @ g, 0), rtol=1e-5, atol=1e-6)


def test_masked_out_weights_get_exactly_zero_gradient_even_when_not_finite():
    # the docstring: weights outside the mask receive exactly zero gradient; a masked-out inf
    # or NaN weight is never read, and a NaN input does not reach masked-out weights
    x = jnp.array([[1.0, np.nan], [2.0, 3.0]])
    w = jnp.array([[1.0, np.inf], [np.nan, 2.0]])
    mask = jnp.array([[True, False], [False, True]])
    for fn in (P.masked_matmul, P.masked_matmul_reference):
        out, pull = jax.vjp(lambda x, w, fn=fn: fn(x, w, mask), x, w)
        dx, dw = pull(jnp.ones((2, 2)))
        np.testing.assert_array_equal(out[1], [2.0, 6.0])
        np.testing.assert_array_equal(dx, [[1.0, 2.0], [1.0, 2.0]])
        assert dw[0, 1] == 0 and dw[1, 0] == 0, fn.__name__


def test_masked_matmul_check_grads_in_float64_at_empty_and_full_masks():
    with jax.enable_x64(True):
        x, w = jnp.asarray(rand(9, 3, 4), jnp.float64), jnp.asarray(rand(10, 4, 5), jnp.float64)
        for mask in (np.zeros((4, 5), bool), np.ones((4, 5), bool)):
            check_grads(lambda x, w, mask=mask: P.masked_matmul(x, w, mask), (x, w), order=2, modes=("rev",))
            assert P.masked_matmul(x, w, mask).dtype == jnp.float64
    assert jnp.zeros(1).dtype == jnp.float32  # x64 is back off


@pytest.mark.parametrize("fan_in", [2.5, 2.0, True])
def test_random_fan_in_mask_refuses_a_fan_in_that_is_not_an_integer(fan_in):
    # 2.5 kept 3 rows per column (rank < 2.5), silently
    with pytest.raises(ValueError, match="fan_in must be an integer"):
        P.random_fan_in_mask(jax.random.key(0), 5, 4, fan_in)
    assert (np.asarray(P.random_fan_in_mask(jax.random.key(0), 5, 4, np.int64(2))).sum(0) == 2).all()


# ---------------------------------------------------------------- gather_matmul

@pytest.mark.slow
@pytest.mark.parametrize("m, k, s, out", [(1, 1, 1, None), (1, 3, 3, 2), (4, 1, 5, None), (6, 5, 5, 3)])
def test_gather_matmul_every_impl_against_float64_numpy(m, k, s, out):
    rng = np.random.default_rng(11)
    values, w2 = rand(12, m, k), rand(13, *((s,) if out is None else (s, out)))
    idx = rng.integers(0, s, (m, k))                          # repeats add up
    g = rand(14, *((m,) if out is None else (m, out)))
    gm, wm = g.reshape(m, -1).astype(np.float64), w2.reshape(s, -1).astype(np.float64)
    want_dw = np.zeros_like(wm)
    np.add.at(want_dw, idx.reshape(-1), (values[:, :, None] * gm[:, None, :]).reshape(m * k, -1))
    for impl in IMPLS:
        got, pull = jax.vjp(lambda v, w, impl=impl: P.gather_matmul(v, idx, w, impl=impl), values, w2)
        dv, dw = pull(g)
        np.testing.assert_allclose(got, np_gather(values, idx, w2), rtol=1e-5, atol=1e-5, err_msg=impl)
        np.testing.assert_allclose(dv, np.einsum("mo,mko->mk", gm, wm[idx]), rtol=1e-5, atol=1e-5, err_msg=impl)
        np.testing.assert_allclose(np.asarray(dw).reshape(s, -1), want_dw, rtol=1e-5, atol=1e-5, err_msg=impl)


def test_gather_matmul_on_transposed_numpy_inputs():
    values, w2 = rand(15, 2, 5).T, rand(16, 3, 8).T          # (5, 2) and (8, 3), not C-contiguous
    idx = np.random.default_rng(17).integers(0, 8, (2, 5)).T
    for impl in ("sparse", "dense", "pallas"):
        np.testing.assert_allclose(P.gather_matmul(values, idx, w2, impl=impl), np_gather(values, idx, w2),
                                   rtol=1e-5, atol=1e-6, err_msg=impl)


def test_sparse_paths_never_read_rows_no_example_selects():
    # documented: only the dense path multiplies them, so only its output turns NaN
    w2 = jnp.array([[1.0, 2.0], [np.inf, np.nan], [3.0, 4.0]])
    values, idx = jnp.array([[1.0, 2.0]]), jnp.array([[0, 2]])
    for impl in ("sparse", "pallas"):
        np.testing.assert_array_equal(P.gather_matmul(values, idx, w2, impl=impl), [[7.0, 10.0]])
    assert np.isnan(np.asarray(P.gather_matmul(values, idx, w2, impl="dense"))).all()


# ---------------------------------------------------------------- routed_layer, routed_mlp

@pytest.mark.slow
@pytest.mark.parametrize("m, n, s, r, k, out", [(1, 1, 1, 1, 1, None), (1, 3, 4, 2, 4, 2), (5, 4, 6, 2, 1, None)])
def test_routed_every_impl_against_float64_numpy(m, n, s, r, k, out):
    x, u, v = rand(20, m, n), rand(21, n, r), rand(22, r, s)
    w1, b1, w2 = rand(23, s, n), rand(24, s), rand(25, *((s,) if out is None else (s, out)))
    scores = (x @ u) @ v + b1
    idx = np.array([sorted(range(s), key=lambda j, i=i: (-scores[i, j], j))[:k] for i in range(m)])
    z = x.astype(np.float64) @ w1.T + b1
    keep = np.zeros((m, s), bool)
    np.put_along_axis(keep, idx, True, 1)
    h = np.where(keep, np.maximum(z, 0), 0)
    g = rand(26, *((m,) if out is None else (m, out)))
    gm, wm = g.reshape(m, -1).astype(np.float64), w2.reshape(s, -1).astype(np.float64)
    dz = np.where(keep & (z > 0), gm @ wm.T, 0)
    for impl in IMPLS:
        zk, got_idx = P.routed_layer(x, (u, v), w1, b1, k, impl=impl)
        np.testing.assert_array_equal(got_idx, idx)
        np.testing.assert_allclose(zk, np.take_along_axis(z, idx, 1), rtol=1e-5, atol=1e-5, err_msg=impl)
        got, pull = jax.vjp(lambda *a, impl=impl: P.routed_mlp(a[0], (u, v), *a[1:], k, impl=impl), x, w1, b1, w2)
        np.testing.assert_allclose(got, (h @ wm).reshape(got.shape), rtol=1e-5, atol=1e-5, err_msg=impl)
        want = (dz @ w1, dz.T @ x, dz.sum(0), (h.T @ gm).reshape(w2.shape))
        for a, b in zip(pull(g), want):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=impl)


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["sparse", "dense", "pallas"])   # auto is dense at these densities
def test_every_impl_passes_check_grads_in_float64_at_k_1_and_k_s(impl):
    with jax.enable_x64(True):
        n, s = 3, 4
        x, w1 = jnp.asarray(rand(30, 1, n), jnp.float64), jnp.asarray(rand(31, s, n), jnp.float64)
        b1 = 5.0 + jnp.arange(s, dtype=jnp.float64)          # every unit active, routing fixed by b1
        w2 = jnp.asarray(rand(32, s), jnp.float64)
        router = (jnp.zeros((n, 1)), jnp.zeros((1, s)))
        values = jnp.asarray(rand(33, 3, s), jnp.float64)
        idx = jnp.array([[0, 1, 2, 3], [3, 3, 3, 3], [2, 0, 2, 1]])  # k = s, repeats
        order = 1 if impl == "pallas" else 2                     # pallas_call has no second order
        for k in (1, s):
            check_grads(jax.jit(lambda *a, k=k: P.routed_mlp(a[0], router, *a[1:], k, impl=impl)),
                        (x, w1, b1, w2), order=order, modes=("rev",), eps=1e-4)
        check_grads(jax.jit(lambda v, w: P.gather_matmul(v, idx, w, impl=impl)), (values, w2), order=order,
                    modes=("rev",))
    assert jnp.zeros(1).dtype == jnp.float32


def test_routed_layer_ties_in_the_router_pick_lower_units_on_every_impl():
    x, w1 = jnp.ones((2, 3)), jnp.asarray(rand(34, 5, 3))
    router, b1 = (jnp.zeros((3, 1)), jnp.zeros((1, 5))), jnp.zeros(5)   # every score ties
    for impl in IMPLS:
        z, idx = P.routed_layer(x, router, w1, b1, 2, impl=impl)
        np.testing.assert_array_equal(idx, [[0, 1], [0, 1]])
        np.testing.assert_allclose(z, np.asarray(x @ w1[:2].T), rtol=1e-6, err_msg=impl)


def test_a_non_finite_row_not_routed_reaches_only_the_dense_gradient():
    # documented in routed_layer: the dense path multiplies the cotangent's zeros into every row
    x, router, b1 = jnp.ones((2, 3)), (jnp.zeros((3, 1)), jnp.zeros((1, 4))), jnp.array([3.0, 2.0, 1.0, 0.0])
    w1 = jnp.ones((4, 3)).at[3, 0].set(jnp.inf)                 # unit 3 is never routed at k = 2
    grads = {impl: jax.grad(lambda x, impl=impl: P.routed_layer(x, router, w1, b1, 2, impl=impl)[0].sum())(x)
             for impl in ("sparse", "dense", "pallas")}
    np.testing.assert_array_equal(grads["sparse"], np.full((2, 3), 2.0))
    np.testing.assert_array_equal(grads["pallas"], grads["sparse"])
    assert np.isnan(np.asarray(grads["dense"][:, 0])).all()


def test_router_from_weights_with_rank_between_s_and_n_is_exact_of_rank_s():
    w1 = jnp.asarray(rand(35, 4, 16))                         # s = 4 < rank = 8 < n = 16
    u, v = P.router_from_weights(w1, 8)
    assert u.shape == (16, 4) and v.shape == (4, 4)
    x = jnp.asarray(rand(36, 5, 16))
    np.testing.assert_allclose(x @ u @ v, x @ w1.T, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- empty operands

@pytest.mark.parametrize("impl", IMPLS)
def test_empty_batches_and_widths_give_empty_or_zero_results_on_every_impl(impl):
    # impl="pallas" raised a TypeError inside Pallas for any zero-size operand
    got = P.gather_matmul(jnp.zeros((0, 2)), jnp.zeros((0, 2), jnp.int32), jnp.ones((4, 3)), impl=impl)
    assert got.shape == (0, 3)
    d_w2 = jax.grad(lambda w: P.gather_matmul(jnp.zeros((0, 2)), jnp.zeros((0, 2), jnp.int32), w,
                                              impl=impl).sum())(jnp.ones((4, 3)))
    np.testing.assert_array_equal(d_w2, np.zeros((4, 3)))
    assert P.gather_matmul(jnp.ones((2, 2)), jnp.zeros((2, 2), jnp.int32), jnp.ones((4, 0)), impl=impl).shape == (2, 0)
    router = (jnp.ones((3, 1)), jnp.ones((1, 4)))
    assert P.routed_mlp(jnp.zeros((0, 3)), router, jnp.ones((4, 3)), jnp.zeros(4), jnp.ones(4), 2,
                        impl=impl).shape == (0,)
    # n = 0: z is the bias alone
    got = P.routed_mlp(jnp.ones((2, 0)), (jnp.ones((0, 1)), jnp.ones((1, 4))), jnp.ones((4, 0)),
                       jnp.arange(4.0), jnp.ones(4), 2, impl=impl)
    np.testing.assert_array_equal(got, [5.0, 5.0])


def test_pallas_kernels_on_empty_operands_return_zeros_of_their_shape():
    one = jnp.ones((4, 3))
    assert K.row_combine(jnp.zeros((0, 2)), jnp.zeros((0, 2), jnp.int32), one).shape == (0, 3)
    assert K.row_dots(jnp.zeros((0, 3)), one, jnp.zeros((0, 2), jnp.int32)).shape == (0, 2)
    np.testing.assert_array_equal(K.row_dots(jnp.zeros((2, 0)), jnp.ones((4, 0)), jnp.zeros((2, 2), jnp.int32)),
                                  np.zeros((2, 2)))
    scattered = K.row_scatter_add(4, jnp.zeros((0, 2), jnp.int32), jnp.zeros((0, 2)), jnp.zeros((0, 3)), jnp.bfloat16)
    assert scattered.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(scattered, np.float32), np.zeros((4, 3)))


# ---------------------------------------------------------------- vmap with shared operands, auto on CPU

@pytest.mark.slow
@pytest.mark.parametrize("impl", ["sparse", "pallas"])
def test_vmap_with_shared_operands_equals_a_loop_and_jit_equals_eager(impl):
    runs, m, n, s, k = 2, 4, 3, 7, 2
    values, idx = jnp.asarray(rand(40, runs, m, k)), jnp.asarray(np.random.default_rng(41).integers(0, s, (runs, m, k)))
    w2, xs = jnp.asarray(rand(42, s, 2)), jnp.asarray(rand(43, runs, m, n))
    w1s, b1s = jnp.asarray(rand(44, runs, s, n)), jnp.asarray(rand(45, runs, s))
    router = (jnp.asarray(rand(46, n, 2)), jnp.asarray(rand(47, 2, s)))
    cases = [
        ("gather, w2 shared", lambda v, i, impl: jax.value_and_grad(
            lambda v, w: jnp.sum(jnp.sin(P.gather_matmul(v, i, w, impl=impl))), (0, 1))(v, w2), (values, idx)),
        ("routed_mlp, router and w2 shared", lambda x, w1, b1, impl: jax.value_and_grad(
            lambda *a: jnp.sum(jnp.sin(P.routed_mlp(a[0], router, *a[1:], k, impl=impl))), (0, 1, 2, 3))(x, w1, b1, w2),
         (xs, w1s, b1s)),
    ]
    for name, fn, args in cases:
        batched = jax.jit(jax.vmap(lambda *a, fn=fn: fn(*a, impl)))(*args)
        for r in range(runs):
            for jit in (True, False) if r == 0 else (True,):     # eager once: it is slow in interpret mode
                one = (jax.jit(fn, static_argnums=len(args)) if jit else fn)(*(a[r] for a in args), impl)
                for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(one)):
                    np.testing.assert_allclose(np.asarray(a)[r], b, rtol=2e-5, atol=2e-5,
                                               err_msg=f"{name} {impl} run {r} jit={jit}")


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="which branch a CPU program takes")
def test_auto_on_cpu_follows_the_rules_in_both_directions():
    def dense_dots(fn, args, shape):
        text = jax.jit(jax.value_and_grad(fn, argnums=tuple(range(len(args))))).lower(*args).compile().as_text()
        return [line for line in text.splitlines() if " dot(" in line and f"f32[{shape}]" in line]

    m, n = 4, 8
    out = 2100                                                # k·out > 2^14 at k = 8
    for s, k in ((256, 4), (32, 8)):                          # density 1/64: sparse; 1/4: dense
        assert P.prefers_sparse(k, s, n) == P.gather_prefers_sparse(k, s, out) == (s == 256)
        x, w1, b1 = jnp.asarray(rand(50, m, n)), jnp.asarray(rand(51, s, n)), jnp.asarray(rand(52, s))
        router = (jnp.asarray(rand(53, n, 2)), jnp.asarray(rand(54, 2, s)))
        layer = dense_dots(lambda w1, b1: P.routed_layer(x, router, w1, b1, k)[0].sum(), (w1, b1), f"{s},{n}")
        assert bool(layer) == (s == 32), layer
        values, w2 = jnp.asarray(rand(55, m, k)), jnp.asarray(rand(56, s, out))
        idx = jax.lax.top_k(jnp.asarray(rand(57, m, s)), k)[1]
        gather = dense_dots(lambda v, w: P.gather_matmul(v, idx, w).sum(), (values, w2), f"{s},{out}")
        assert bool(gather) == (s == 32), gather
