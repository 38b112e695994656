"""Primitives, third review: indices outside [0, s) clipped alike on every path and in the
gradient, hessians through the routed layer, NumPy integers as Pallas block sizes, and sizes of a
fan-in mask checked."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn import primitives as P
from sparselearn.primitives.pallas import kernels as K

IMPLS = ("sparse", "dense", "pallas")


@pytest.mark.parametrize("bad", [4, -1, 9])
def test_an_index_outside_the_units_is_clipped_on_every_path_forward_and_backward(bad):
    w2 = jnp.arange(12.0).reshape(4, 3)
    values = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    idx = jnp.array([[0, bad], [1, 2]])
    row = min(max(bad, 0), 3)
    want_out = np.array([w2[0] + 2 * w2[row], 3 * w2[1] + 4 * w2[2]])
    want_grad = np.zeros((4, 3))                 # d sum(out) / d w2: each example's values on its rows
    for (i, j), v in np.ndenumerate(np.asarray(values)):
        want_grad[[0, row, 1, 2][2 * i + j]] += v
    for impl in IMPLS:
        out = P.gather_matmul(values, idx, w2, impl=impl)
        grad = jax.grad(lambda w: P.gather_matmul(values, idx, w, impl=impl).sum())(w2)
        np.testing.assert_allclose(out, want_out, err_msg=impl)
        np.testing.assert_allclose(grad, want_grad, err_msg=impl)
    np.testing.assert_allclose(P.gather_matmul_reference(values, idx, w2), want_out)


def test_a_hessian_through_the_routed_mlp_equals_the_reference():
    with jax.enable_x64(True):
        m, n, s, k = 3, 4, 6, 2
        keys = jax.random.split(jax.random.key(1), 4)
        x = jax.random.normal(keys[0], (m, n), jnp.float64)
        w1, w2 = jax.random.normal(keys[1], (s, n), jnp.float64), jax.random.normal(keys[2], (s,), jnp.float64)
        b1 = jnp.arange(s, dtype=jnp.float64)
        router = (jax.random.normal(keys[3], (n, 2), jnp.float64), jax.random.normal(keys[3], (2, s), jnp.float64))

        def loss(fn):
            return lambda w1, w2: jnp.sum(jnp.sin(fn(x, router, w1, b1, w2, k)))

        got = jax.jit(jax.hessian(loss(lambda *a: P.routed_mlp(*a, impl="sparse")), (0, 1)))(w1, w2)
        want = jax.jit(jax.hessian(loss(P.routed_mlp_reference), (0, 1)))(w1, w2)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_numpy_integer_block_sizes_are_block_sizes():
    coef, idx, table = jnp.ones((2, 1)), jnp.zeros((2, 1), jnp.int32), jnp.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(K.row_combine(coef, idx, table, block_rows=np.int64(32)),
                               K.row_combine(coef, idx, table, block_rows=32))
    for bad in (24, True, 32.0):
        with pytest.raises(ValueError, match="block_rows must be a power of two"):
            K.row_combine(coef, idx, table, block_rows=bad)


@pytest.mark.parametrize("n, s, name", [(4, -1, "s"), (4.0, 3, "n"), (True, 3, "n")])
def test_a_fan_in_mask_names_a_bad_size(n, s, name):
    with pytest.raises(ValueError, match=f"^{name} must be an integer ≥ 0"):
        P.random_fan_in_mask(jax.random.key(0), n, s, 1)
