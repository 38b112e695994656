"""Bias-induced sparsity: the `mlp` learner's NTK parametrisation and constant bias
initialisation, and the bias-generalized kernels they converge to."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import ndtr

from sparselearn import config, runtime
from sparselearn.errors import ConfigError
from sparselearn.fields import to_dict
from sparselearn.learners import kernels
from sparselearn.learners.mlp import MLP

N = 10
X = jax.random.rademacher(jax.random.key(3), (24, N), dtype=jnp.float32)   # ‖x‖² = n: x/√n on the sphere


# ---------------------------------------------------------------- the learner


def test_new_fields_leave_existing_configs_and_their_hashes_unchanged():
    assert "parametrization" not in to_dict(MLP()) and "bias_init" not in to_dict(MLP())
    assert to_dict(MLP(parametrization="ntk", bias_init=-1.0))["bias_init"] == -1.0
    assert config.config_hash(config.load("configs/quickstart.yaml")) == "e86cd382762f"
    yaml = "target: {name: sparse_parity, n: 8, k: 2}\nlearner: {name: mlp, width: 16}\n"
    plain = config.config_hash(config.loads(yaml))
    ntk = config.loads(yaml, ["learner.parametrization=ntk", "learner.bias_init=-1.5"])
    assert ntk.learner == MLP(width=16, parametrization="ntk", bias_init=-1.5)
    assert config.config_hash(ntk) != plain
    assert config.config_hash(config.loads(yaml, ["learner.parametrization=standard"])) == plain


@pytest.mark.parametrize("fields, key", [
    ({"parametrization": "ntk", "activation": "topk", "k": 2}, "parametrization"),
    ({"parametrization": "ntk", "init": "sparse", "fan_in": 2}, "parametrization"),
    ({"bias_init": -1.0, "bias": False}, "bias_init"),
    ({"bias_init": float("nan")}, "bias_init"),
])
def test_bad_combinations_name_the_key(fields, key):
    with pytest.raises(ConfigError) as err:
        MLP(width=8, **fields)
    assert err.value.key == key


@pytest.mark.parametrize("depth", [2, 3])
def test_ntk_forward_is_the_formula(depth):
    net = MLP(width=32, depth=depth, parametrization="ntk", bias_init=-0.7)
    params = net.init_params(jax.random.key(0), N)
    p = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in params]
    h = np.asarray(X, np.float64)
    for layer in p[:-1]:
        h = np.maximum(h @ layer["w"] / math.sqrt(h.shape[1]) + layer["b"], 0.0)
    want = h @ p[-1]["w"] / math.sqrt(h.shape[1])                     # no output bias
    np.testing.assert_allclose(net.apply(params, X), want, rtol=1e-4, atol=1e-5)
    # the output bias is zero and not used: moving it changes nothing
    moved = params[:-1] + [{**params[-1], "b": jnp.float32(5.0)}]
    np.testing.assert_array_equal(net.apply(moved, X), net.apply(params, X))


def test_bias_init_sets_every_hidden_bias_and_nothing_else():
    for net in (MLP(width=16, depth=3, parametrization="ntk", bias_init=-2.0),
                MLP(width=16, depth=3, bias_init=-2.0)):
        params = net.init_params(jax.random.key(1), N)
        for layer in params[:-1]:
            np.testing.assert_array_equal(layer["b"], np.full(16, -2.0, np.float32))
        free = MLP(width=16, depth=3, parametrization=net.parametrization).init_params(jax.random.key(1), N)
        for got, want in zip(params, free):
            np.testing.assert_array_equal(got["w"], want["w"])   # same weights, only the biases differ
        np.testing.assert_array_equal(params[-1]["b"], free[-1]["b"])
    ntk = MLP(width=4096, parametrization="ntk").init_params(jax.random.key(2), N)
    assert float(ntk[-1]["b"]) == 0.0
    assert abs(float(jnp.std(ntk[0]["w"])) - 1.0) < 0.02 and abs(float(jnp.std(ntk[0]["b"])) - 1.0) < 0.05


def test_ntk_output_variance_at_init_does_not_depend_on_width():
    u = X[:1] / math.sqrt(N)
    cases = [(beta, width) for beta in (0.0, 1.5) for width in (8, 512)]
    nets = [MLP(width=width, parametrization="ntk", bias_init=-beta) for beta, width in cases]
    # every case in one program, at the full tier (the tests compile their own eager operations cheaply)
    outputs = runtime.tiered_jit(jax.vmap(lambda s: [net.apply(net.init_params(jax.random.key(s), N), X[:4])
                                                     for net in nets]))(jnp.arange(20_000))
    for (beta, width), f in zip(cases, outputs):
        want = float(kernels.shifted_arccos1(u, u, beta)[0, 0])          # E[relu(w·u − β)²], any width
        assert abs(float(jnp.mean(f)) / math.sqrt(want)) < 0.03, (beta, width)           # E f = 0
        np.testing.assert_allclose(float(jnp.mean(f * f)), want, rtol=0.06,             # pooled over the 4 inputs
                                   err_msg=f"beta={beta}, width={width}")


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_active_fraction_at_init_is_phi_of_minus_beta(beta):
    net = MLP(width=8192, parametrization="ntk", bias_init=-beta)
    params = net.init_params(jax.random.key(4), N)
    z = X @ params[0]["w"] / math.sqrt(N) + params[0]["b"]
    frac = float(jnp.mean(z > 0))
    want = float(ndtr(-beta))
    assert abs(frac - want) < 4 * math.sqrt(want * (1 - want) / 8192) + 1e-3


# ---------------------------------------------------------------- the bias-generalized kernels


def _mixed_rows():
    """Rows of assorted norms, with a repeated, a doubled and an opposite row."""
    z = jax.random.normal(jax.random.key(5), (5, 4))
    return jnp.concatenate([z, z[:1], 2.0 * z[1:2], -z[2:3]])


@pytest.mark.parametrize("beta", [0.5, 1.5, 2.5])
def test_shifted_kernels_match_monte_carlo(beta):
    u = _mixed_rows()
    w = jax.random.normal(jax.random.key(6), (u.shape[1], 400_000))
    z = u @ w - beta
    step, ramp = (z > 0).astype(jnp.float32), jax.nn.relu(z)
    np.testing.assert_allclose(kernels.shifted_arccos0(u, u, beta), step @ step.T / w.shape[1], atol=4e-3)
    mc1 = ramp @ ramp.T / w.shape[1]
    np.testing.assert_allclose(kernels.shifted_arccos1(u, u, beta), mc1, atol=4e-3 * float(mc1.max()) + 2e-3)


def test_shifted_kernels_reduce_to_arccos_at_zero_and_their_diagonal_is_closed_form():
    u = _mixed_rows()
    # for parallel rows (θ = 0 or π) float32 knows cos θ to an ulp and so θ only to about √ε:
    # there both kernels meet the closed form to that accuracy, elsewhere each other exactly
    u64 = np.asarray(u, np.float64)
    norms = np.linalg.norm(u64, axis=1)
    cos = (u64 @ u64.T) / np.outer(norms, norms)
    parallel = np.isclose(np.abs(cos), 1.0)
    closed = {"0": np.where(cos > 0, 0.5, 0.0), "1": np.where(cos > 0, np.outer(norms, norms) / 2, 0.0)}
    for name, atol in (("0", 1e-6), ("1", 1e-5)):
        shifted = np.asarray(getattr(kernels, f"shifted_arccos{name}")(u, u, 0.0))
        plain = np.asarray(getattr(kernels, f"arccos{name}")(u, u))
        np.testing.assert_allclose(shifted[~parallel], plain[~parallel], atol=atol)
        for k in (shifted, plain):
            np.testing.assert_allclose(k[parallel], closed[name][parallel], rtol=3e-4, atol=1e-4)
    sphere = X / math.sqrt(N)
    for beta in (0.5, 2.0, 3.0):
        q, phi = float(ndtr(-beta)), math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
        np.testing.assert_allclose(np.diag(kernels.shifted_arccos0(sphere, sphere, beta)), q, rtol=1e-4)
        np.testing.assert_allclose(np.diag(kernels.shifted_arccos1(sphere, sphere, beta)),
                                   (1 + beta * beta) * q - beta * phi, rtol=1e-3)
        # the kernels fall as β grows, and stay positive semi-definite
        gram = np.asarray(kernels.bias_ntk(sphere, sphere, beta), np.float64)
        assert np.linalg.eigvalsh(gram).min() > -1e-5


def _empirical_ntk(net: MLP, params, x):
    jac = jax.jacrev(net.apply)(params, x)
    flat = jnp.concatenate([leaf.reshape(len(x), -1) for leaf in jax.tree.leaves(jac)], axis=1)
    return flat @ flat.T


@pytest.mark.parametrize("beta", [0.0, 1.5])
def test_bias_ntk_is_the_wide_limit_of_the_mlps_empirical_ntk(beta):
    exact = np.asarray(kernels.bias_ntk(X / math.sqrt(N), X / math.sqrt(N), beta))
    errors = {}
    for width in (256, 16384):
        net = MLP(width=width, parametrization="ntk", bias_init=-beta)
        emp = np.mean([_empirical_ntk(net, net.init_params(jax.random.key(s), N), X) for s in range(2)], axis=0)
        errors[width] = np.linalg.norm(emp - exact) / np.linalg.norm(exact)
    # the error falls like (active units)^{-1/2} = (Φ(−β)·width)^{-1/2}: 8× from 256 to 16384 units
    assert errors[16384] < 3 / math.sqrt(float(ndtr(-beta)) * 16384) and errors[16384] < errors[256] / 3
