"""The primitives at their edges: float64 gradients through the Pallas kernels, a k that is not an
integer, hand-made MeasuredWin entries, and the order of ties and NaNs in top-k."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sparselearn import primitives as P


def test_pallas_paths_pass_check_grads_in_float64():
    # under x64 the kernels' lane offsets were int64 and the row_dots kernel's division by k
    # (int32) raised a TypeError; first-order gradients only (pallas_call has no second order)
    with jax.enable_x64(True):
        m, n, s, k = 3, 4, 7, 3
        keys = jax.random.split(jax.random.key(0), 4)
        x, w1 = jax.random.normal(keys[0], (m, n), jnp.float64), jax.random.normal(keys[1], (s, n), jnp.float64)
        w2 = jax.random.normal(keys[2], (s, 2), jnp.float64)
        b1 = 10.0 + jnp.arange(s, dtype=jnp.float64)   # every unit active, no ties in routing
        router = (jnp.zeros((n, 1)), jnp.zeros((1, s)))  # scores = b1: routing fixed by the biases
        check_grads(jax.jit(lambda x, w1, b1, w2: P.routed_mlp(x, router, w1, b1, w2, k, impl="pallas")),
                    (x, w1, b1, w2), order=1, modes=("rev",), eps=1e-3)
        values = jax.random.normal(keys[3], (4, 3), jnp.float64)
        idx = jnp.array([[0, 3, 6], [1, 2, 3], [6, 5, 4], [0, 1, 2]])
        check_grads(jax.jit(lambda v, w: P.gather_matmul(v, idx, w, impl="pallas")), (values, w2),
                    order=1, modes=("rev",))


@pytest.mark.parametrize("k", [2.5, 2.0, True])
def test_k_that_is_not_an_integer_is_an_error_not_truncated(k):
    z = jnp.arange(10.0).reshape(2, 5)
    with pytest.raises(ValueError, match="static Python int"):
        P.topk(z, k)
    with pytest.raises(ValueError, match="static Python int"):
        P.routed_layer(jnp.ones((2, 3)), (jnp.ones((3, 1)), jnp.ones((1, 5))), jnp.ones((5, 3)), jnp.ones(5), k)


def test_numpy_and_concrete_integer_k_are_accepted():
    z = jnp.arange(10.0).reshape(2, 5)
    for k in (np.int64(2), np.int32(2), jnp.array(2)):
        np.testing.assert_array_equal(P.topk(z, k), P.topk(z, 2))


def test_topk_and_topk_indices_keep_the_same_units_on_signed_zeros_and_nans():
    # both rank by lax.top_k, so the gradient reaches the same units whichever is used;
    # -0.0 ranks below +0.0 and a NaN by its sign bit (documented in primitives.topk)
    negative_nan = np.array([0xFFC00000], np.uint32).view(np.float32)[0]
    z = jnp.array([[-0.0, 0.0, -1.0, 1.0], [1.0, np.nan, 2.0, 0.0], [1.0, negative_nan, 0.0, -1.0]])
    k = 2
    kept_topk = np.asarray(jax.grad(lambda z: P.topk(z, k).sum())(z)) != 0
    kept_indices = np.asarray(P.keep_mask(P.topk_indices(z, k)[1], 4))
    np.testing.assert_array_equal(kept_indices, [[0, 1, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0]])
    np.testing.assert_array_equal(kept_topk, kept_indices)


def test_a_measured_win_for_an_unknown_primitive_is_an_error():
    from sparselearn.primitives import pallas

    with pytest.raises(ValueError, match="primitive must be one of"):
        pallas.MeasuredWin("routed_mlp", max_density=1 / 32, speedup=2.0, device="test", source="test")
    with pytest.raises(ValueError, match="max_density"):
        pallas.MeasuredWin("routed", max_density=32, speedup=2.0, device="test", source="test")
    with pytest.raises(ValueError, match="speedup must be > 1"):
        pallas.MeasuredWin("routed", max_density=1 / 32, speedup=0.8, device="test", source="test")


def test_route_and_router_refuse_counts_that_are_not_unit_counts():
    import jax
    import jax.numpy as jnp

    from sparselearn.primitives.routed import route, router_from_weights

    w1 = jax.random.normal(jax.random.key(0), (16, 8))
    x, b1 = jnp.ones((4, 8)), jnp.zeros(16)
    router = router_from_weights(w1, 2)
    assert route(x, router, b1, 3).shape == (4, 3)
    for k in (0, 17, 2.5):
        with pytest.raises(ValueError, match="k must"):
            route(x, router, b1, k)
    for rank in (0, 2.5, True):
        with pytest.raises(ValueError, match="rank must be an integer"):
            router_from_weights(w1, rank)
