"""The trained network learners against their docstrings: `mlp` (init scales, top-k semantics,
sparse init), `moe` (init scales, routing) and `layerwise` (what its inner block spans)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sparselearn.learners.layerwise import Layerwise
from sparselearn.learners.lowdegree import hermite_table
from sparselearn.learners.mlp import MLP
from sparselearn.learners.moe import MoE
from sparselearn.primitives.topk import keep_mask

N = 12
X = jnp.sign(jax.random.normal(jax.random.key(1), (32, N)))


# ---------------------------------------------------------------- mlp


def draws(net, count: int, n: int = N):
    return jax.jit(jax.vmap(lambda k: net.init_params(k, n)))(jax.random.split(jax.random.key(0), count))


@pytest.mark.parametrize("depth", [2, 3])
def test_standard_init_variances_are_xavier_and_bias_uniform(depth):
    params = draws(MLP(width=64, depth=depth), 300)
    sizes = [N] + [64] * (depth - 1) + [1]
    for layer, fan_in, fan_out in zip(params, sizes[:-1], sizes[1:]):
        np.testing.assert_allclose(np.var(layer["w"]), 2 / (fan_in + fan_out), rtol=0.03)   # U[±c]: c²/3
        np.testing.assert_allclose(np.var(layer["b"]), 1 / (3 * fan_in), rtol=0.1)


def test_sparse_init_has_fan_in_nonzeros_per_unit_with_xavier_variance_in_the_true_fan_in():
    w = np.asarray(draws(MLP(width=64, init="sparse", fan_in=3), 300)[0]["w"])   # (draws, n, width)
    assert ((w != 0).sum(axis=1) == 3).all()
    np.testing.assert_allclose(w[w != 0].var(), 2 / (3 + 64), rtol=0.03)
    np.testing.assert_allclose((w != 0).mean(axis=(0, 2)), 3 / N, atol=0.01)   # every input equally likely


def masked_reference(net: MLP, params, x):
    """The top-k network written densely: a 0/1 mask on the top-k positions of each row."""
    h = x
    for layer in params[:-1]:
        z = h @ layer["w"] + layer["b"]
        idx = jax.lax.top_k(jax.lax.stop_gradient(z), net.k)[1]
        h = jnp.where(keep_mask(idx, z.shape[-1]), jax.nn.relu(z), 0.0)
    return h @ params[-1]["w"] + params[-1]["b"]


@pytest.mark.parametrize("depth", [2, 3])
def test_topk_network_matches_the_dense_masked_reference_in_values_and_gradients(depth):
    net = MLP(width=32, depth=depth, activation="topk", k=5)
    params = net.init_params(jax.random.key(0), N)
    loss = lambda f: lambda p: jnp.sum(jnp.sin(f(p, X)))   # noqa: E731
    np.testing.assert_allclose(net.apply(params, X), masked_reference(net, params, X), rtol=1e-5, atol=1e-6)
    got, want = jax.grad(loss(net.apply))(params), jax.grad(loss(lambda p, x: masked_reference(net, p, x)))(params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        check_grads(lambda p: net.apply(p, X[:4].astype(jnp.float64)), (p64,), order=1, modes=["rev"], eps=1e-7)


def test_topk_keeps_the_lowest_indices_on_ties_and_k_equal_to_width_is_the_relu_network():
    net = MLP(width=16, activation="topk", k=4, bias_init=1.0)   # x = 0: every pre-activation is 1
    params = net.init_params(jax.random.key(0), N)
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, jnp.zeros((3, N)))))(params)
    assert np.flatnonzero(np.asarray(grads[0]["b"])).tolist() == [0, 1, 2, 3]
    for depth in (2, 3):
        full, relu = MLP(width=16, depth=depth, activation="topk", k=16), MLP(width=16, depth=depth)
        p = relu.init_params(jax.random.key(1), N)
        np.testing.assert_allclose(full.apply(p, X), relu.apply(p, X), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- moe


def test_moe_init_scales_and_exactly_top_experts_per_input():
    net = MoE(experts=8, expert_width=16, top=2, r=4)
    p = jax.jit(jax.vmap(lambda k: net.init_params(k, 20)))(jax.random.split(jax.random.key(0), 300))
    np.testing.assert_allclose(np.var(p["router"]), 1 / 20, rtol=0.05)
    np.testing.assert_allclose(np.var(p["w"]), 1 / 20, rtol=0.03)
    np.testing.assert_allclose(np.var(p["b"]), 1 / (3 * 20), rtol=0.05)
    np.testing.assert_allclose(np.var(p["u"]), 1 / 16, rtol=0.05)
    np.testing.assert_allclose(np.linalg.norm(p["gates"], axis=1), 1.0, rtol=1e-5)
    one = jax.tree.map(lambda a: a[0], p)
    x = jax.random.normal(jax.random.key(1), (64, 20))
    assert ((net.gates(one, x) > 0).sum(axis=1) == 2).all()


# ---------------------------------------------------------------- layerwise


@pytest.mark.parametrize("degree", [3, 4])
def test_layerwise_inner_block_spans_every_polynomial_of_its_degree(degree):
    # p = Σ_i h_d(x_i)/√n: its Hermite tensor has a nonzero trace and no degree-(d−2) part, which
    # units sharing one activation on unit-norm directions cannot produce (they tie the two)
    n = 4
    x, x_test = (jax.random.normal(jax.random.key(i), (4000, n)) for i in (0, 1))
    p = lambda x: jnp.sum(hermite_table(x, degree)[..., degree], axis=1) / math.sqrt(n)   # noqa: E731
    width = math.comb(n + degree, degree) + 10
    lw = Layerwise(width=width, degree=degree, steps=2000, weight_decay=1e-6)
    feature = lw.feature(lw.fit(jax.random.key(2), x, p(x)), x_test)
    assert float(jnp.mean((feature - p(x_test)) ** 2)) < 1e-3 * float(jnp.var(p(x_test)))


def test_layerwise_signs_leave_degrees_up_to_two_as_one_shared_activation():
    """Only h_j from j = 3 need random signs: degree-≤2 fits keep the shared activation
    Σ_j h_j (their kept results stay valid); from degree 3 both signs occur in every column j ≥ 3."""
    from sparselearn.learners.layerwise import hermite_signs

    assert np.all(hermite_signs(500, 2) == 1.0)
    signs = hermite_signs(500, 4)
    assert np.all(signs[:, :2] == 1.0)
    for j in (2, 3):
        assert 200 < np.sum(signs[:, j] > 0) < 300
    np.testing.assert_array_equal(hermite_signs(500, 4), signs)   # fixed: a constant of the program
