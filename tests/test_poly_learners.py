"""PolyNet, polynomial-activation MLPs and single neurons: closed forms, exact parities built by
hand on the whole cube, gradients against finite differences, and short training runs."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from sparselearn import config, learners
from sparselearn.errors import ConfigError
from sparselearn.learners.neuron import Neuron, zigzag
from sparselearn.learners.polynomial import PolyMLP, PolyNet
from sparselearn.rng import key_for
from sparselearn.targets.inputs import hypercube_points
from sparselearn.train import optimizers
from sparselearn.train.loop import run_one, trajectory

ROOT = Path(__file__).resolve().parents[1]
X = jax.random.rademacher(jax.random.key(0), (16, 12), jnp.float32)


def parity(x, support):
    return jnp.prod(x[:, list(support)], axis=1)


# ---------------------------------------------------------------- closed forms

def test_polynet_is_the_product_of_its_linear_forms():
    net = PolyNet(factors=3)
    params = net.init_params(jax.random.key(1), 12)
    w = np.asarray(params["w"])
    want = np.prod(np.asarray(X) @ w.T, axis=1)
    np.testing.assert_allclose(net.apply(params, X), want, rtol=1e-5, atol=1e-6)


def test_disjoint_polynet_sees_one_block_per_factor():
    net = PolyNet(factors=3, disjoint=True)
    params = net.init_params(jax.random.key(1), 12)
    w = np.asarray(params["w"])
    assert w.shape == (3, 4)
    x = np.asarray(X)
    want = np.prod([x[:, 4 * i:4 * i + 4] @ w[i] for i in range(3)], axis=0)
    np.testing.assert_allclose(net.apply(params, X), want, rtol=1e-5, atol=1e-6)


def test_polymlp_matches_a_loop_over_units():
    net = PolyMLP(hidden=(5, 3), power=3, bias=True)
    params = net.init_params(jax.random.key(2), 12)
    x = np.asarray(X, np.float64)
    h = x
    for layer in params["layers"]:
        w, b = np.asarray(layer["w"], np.float64), np.asarray(layer["b"], np.float64)
        h = np.stack([(h @ w[:, j] + b[j]) ** 3 for j in range(w.shape[1])], axis=1)
    want = h @ np.asarray(params["readout"]["a"]) + float(params["readout"]["c"])
    np.testing.assert_allclose(net.apply(params, X), want, rtol=1e-4, atol=1e-3)
    assert net.degree == 9 and net.width == 5 and net.depth == 3 and net.first_layer(params).shape == (12, 5)


def test_sign_init_and_fixed_readout_are_plus_minus_one():
    net = PolyMLP(hidden=(64,), power=2, readout="fixed", init="sign", scale=1.0, bias=False)
    params = net.init_params(jax.random.key(3), 20)
    assert set(np.unique(params["layers"][0]["w"])) == {-1.0, 1.0}
    a = np.asarray(params["readout"]["a"])
    assert set(np.unique(a)) == {-1.0, 1.0} and 16 < (a > 0).sum() < 48
    other = net.init_params(jax.random.key(4), 20)["readout"]["a"]
    assert not np.array_equal(a, other)                     # drawn from the key


@pytest.mark.parametrize("init", ["xavier", "gaussian", "sign"])
def test_init_scales(init):
    w = PolyNet(factors=4, init=init, scale=2.0).init_params(jax.random.key(5), 400)["w"]
    std = float(jnp.std(w))
    want = {"xavier": 2.0 * math.sqrt(6 / 401) / math.sqrt(3), "gaussian": 2.0 / 20, "sign": 2.0}[init]
    assert std == pytest.approx(want, rel=0.05)


def test_neuron_closed_forms():
    x = X[:, :10]
    for activation, sigma in [("sin", lambda z: np.sin(np.pi * z / 2)), ("relu", lambda z: np.maximum(z, 0))]:
        neuron = Neuron(activation=activation)
        params = neuron.init_params(jax.random.key(6), 10)
        params["u"] = jnp.float32(-1.5)
        z = np.asarray(x) @ np.asarray(params["w"]) + float(params["b"])
        np.testing.assert_allclose(neuron.apply(params, x), -1.5 * sigma(z), rtol=1e-5, atol=1e-6)
    bare = Neuron(bias=False, readout="none")
    params = bare.init_params(jax.random.key(6), 10)
    assert set(params) == {"w"}
    np.testing.assert_allclose(bare.apply(params, x), np.sin(np.pi / 2 * (np.asarray(x) @ np.asarray(params["w"]))),
                               rtol=1e-5, atol=1e-6)


def test_zigzag_is_the_piecewise_linear_sine():
    z = jnp.arange(-12, 13, dtype=jnp.float32)
    np.testing.assert_allclose(zigzag(z), jnp.round(jnp.sin(jnp.pi * z / 2)), atol=1e-6)
    mid = z + 0.5                                   # linear between the integers
    np.testing.assert_allclose(zigzag(mid), (zigzag(z) + zigzag(z + 1)) / 2, atol=1e-6)
    np.testing.assert_allclose(zigzag(2 * z, period=8.0), zigzag(z), atol=1e-6)
    k_zigzag = Neuron(activation="zigzag", pieces=3)   # (−1)^((3 − t)/2) at t = −3, −1, 1, 3; flat beyond
    np.testing.assert_allclose(k_zigzag.sigma(jnp.array([-7.0, -3.0, -1.0, 1.0, 3.0, 3.5, 9.0])),
                               [-1, -1, 1, -1, 1, 1, 1], atol=1e-6)


# ---------------------------------------------------------------- exact parities on the whole cube

N = 8
CUBE = hypercube_points(N, 0, 1 << N)


def test_polynet_with_unit_vectors_computes_the_parity():
    support = (1, 4, 6)
    net = PolyNet(factors=3)
    w = jnp.zeros((3, N)).at[jnp.arange(3), jnp.array(support)].set(1.0)
    np.testing.assert_array_equal(net.apply({"w": w}, CUBE), parity(CUBE, support))
    disjoint = PolyNet(factors=4, disjoint=True)                # blocks {0,1} {2,3} {4,5} {6,7}
    w = jnp.zeros((4, 2)).at[:, 1].set(1.0)
    np.testing.assert_array_equal(disjoint.apply({"w": w}, CUBE), parity(CUBE, (1, 3, 5, 7)))


def test_quadratic_net_of_depth_three_computes_a_four_parity():
    net = PolyMLP(hidden=(2, 1), power=2, bias=True)
    s = 1 / math.sqrt(2)
    w1 = jnp.zeros((N, 2)).at[jnp.array([0, 2]), 0].set(s).at[jnp.array([5, 7]), 1].set(s)
    params = {"layers": [{"w": w1, "b": jnp.zeros(2)},
                         {"w": jnp.ones((2, 1)), "b": jnp.array([-2.0])}],
              "readout": {"a": jnp.array([0.5]), "c": jnp.float32(-1.0)}}
    np.testing.assert_allclose(net.apply(params, CUBE), parity(CUBE, (0, 2, 5, 7)), atol=1e-5)


def test_power_k_net_with_fixed_signs_computes_the_parity():
    """Kou et al.'s picture after training: "good" units with weights s ∘ 1_S (s ∈ {±1}^S) and
    readout a = Πs. (s·x_S)³ = 7·Σ s_i x_i + 6·Πs·χ_S on the cube; over the four sign patterns
    with Πs = +1 the linear terms cancel, leaving 24·χ_S."""
    support = (0, 3, 6)
    patterns = jnp.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], jnp.float32)
    net = PolyMLP(hidden=(4,), power=3, readout="fixed", bias=False)
    w = jnp.zeros((N, 4)).at[jnp.array(support)].set(patterns.T)
    params = {"layers": [{"w": w, "b": jnp.zeros(4)}], "readout": {"a": jnp.ones(4), "c": jnp.float32(0)}}
    np.testing.assert_allclose(net.apply(params, CUBE), 24 * parity(CUBE, support), atol=1e-4)


@pytest.mark.parametrize("activation, k", [("sin", 2), ("sin", 3), ("zigzag", 4), ("sin", 5)])
def test_neuron_with_unit_weights_computes_the_parity(activation, k):
    support = tuple(range(N - k, N))
    neuron = Neuron(activation=activation)
    params = {"w": jnp.zeros(N).at[jnp.array(support)].set(1.0), "b": jnp.float32(1 - k), "u": jnp.float32(1.0)}
    np.testing.assert_allclose(neuron.apply(params, CUBE), parity(CUBE, support), atol=1e-5)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_the_k_zigzag_neuron_computes_the_k_parity_without_a_bias(k):
    """Barak et al.'s k-zigzag: k linear pieces through the parity's values at ⟨1_S, x⟩ ∈ {−k, …, k}."""
    support = tuple(range(N - k, N))
    neuron = Neuron(activation="zigzag", pieces=k, readout="none")
    params = {"w": jnp.zeros(N).at[jnp.array(support)].set(1.0), "b": jnp.float32(0.0)}
    np.testing.assert_allclose(neuron.apply(params, CUBE), parity(CUBE, support), atol=1e-5)
    edge = jnp.array([k, k + 0.5, k + 7.0])
    assert len(set(np.asarray(neuron.sigma(edge)).round(6))) == 1 == len(set(np.asarray(neuron.sigma(-edge)).round(6)))


def test_a_polymlp_that_trains_only_a_fixed_readout_is_refused():
    with pytest.raises(ConfigError, match="nothing would train"):
        PolyMLP(hidden=(8,), power=2, readout="fixed", trained_layers=(1,))


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("net", [PolyNet(factors=3), PolyNet(factors=3, disjoint=True),
                                 PolyMLP(hidden=(4, 2), power=2), PolyMLP(hidden=(6,), power=3, readout="fixed"),
                                 Neuron(activation="sin"), Neuron(activation="zigzag", readout="none")],
                         ids=lambda net: net.name)
def test_gradients_match_finite_differences(net):
    x = X[:4]
    params = net.init_params(jax.random.key(7), 12)
    with jax.default_matmul_precision("highest"):
        check_grads(lambda p: net.apply(p, x), (params,), order=1, modes=("rev",), eps=1e-2, atol=2e-2, rtol=2e-2)


def test_fixed_readout_has_no_gradient_and_survives_weight_decay():
    net = PolyMLP(hidden=(8,), power=2, readout="fixed", init="sign", bias=False)
    params = net.init_params(jax.random.key(8), 12)
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, X)))(params)
    assert float(jnp.max(jnp.abs(grads["readout"]["a"]))) == 0.0
    signs = net.readout_weights(params)
    opt = optimizers.make("sgd", 0.5, weight_decay=1.9)        # shrinks every leaf by 0.05 per step
    state = opt.init(params)
    for _ in range(60):                                         # 0.05^60 underflows to ±0
        updates, state = opt.update(jax.tree.map(jnp.zeros_like, params), state, params)
        params = optax.apply_updates(params, updates)
    assert float(jnp.max(jnp.abs(params["readout"]["a"]))) == 0.0
    np.testing.assert_array_equal(net.readout_weights(params), signs)


def test_trained_layers_hold_the_others_at_init():
    net = PolyMLP(hidden=(4, 2), power=2)
    params = net.init_params(jax.random.key(9), 12)
    for layers in [(0,), (1,), (2,), (0, 2)]:
        alone = PolyMLP(hidden=(4, 2), power=2, trained_layers=layers)
        np.testing.assert_array_equal(alone.apply(params, X), net.apply(params, X))   # same function
        grads = jax.grad(lambda p: jnp.sum(alone.apply(p, X) ** 2))(params)
        leaves = [grads["layers"][0], grads["layers"][1], grads["readout"]]
        for i, leaf in enumerate(leaves):
            size = max(float(jnp.max(jnp.abs(v))) for v in jax.tree.leaves(leaf))
            assert (size > 0) == (i in layers), (layers, i)
    with pytest.raises(ConfigError, match="trained_layers"):
        config.loads("target: {name: sparse_parity, n: 10, k: 2}\n"
                     "learner: {name: polymlp, hidden: [4, 2], trained_layers: [3]}")


# ---------------------------------------------------------------- training from a config

def _train(text: str, seed: int = 0):
    return run_one(config.loads(text), seed=seed)


def test_polynet_learns_a_small_parity_online():
    out = _train("""
target: {name: sparse_parity, n: 10, k: 2}
learner: {name: polynet, factors: 2}
train: {optimizer: sgd, lr: 0.1, batch: 32, steps: 400, loss: hinge, eval_every: 100}
data: {online: true, test_m: 512}""")
    assert float(out["test_error"]) == 0.0


def test_sign_sgd_with_fixed_readout_learns_and_zeroes_the_noise_weights():
    exp = config.loads("""
target: {name: sparse_parity, n: 10, k: 2}
learner: {name: polymlp, hidden: [16], power: 2, readout: fixed, init: sign, bias: false}
train: {optimizer: sign-sgd, lr: 0.1, batch: 64, steps: 100, loss: correlation, weight_decay: 1.0,
        sign_threshold: 1.0, eval_every: 50}
data: {online: true, test_m: 512}""")
    out = trajectory(exp, {"seed": [0]}, observe=lambda p, p0: {"w": p["layers"][0]["w"]})
    assert float(out["test_error"][0]) == 0.0
    w = np.abs(out["trace_w"][0, -1])                               # (n, units) after training
    support = np.asarray(exp.target.init(key_for(0, "teacher"))["support"])
    noise = np.setdiff1d(np.arange(10), support)
    assert w[noise].max() < 0.05                                     # from ±1 at init
    assert np.isclose(w[support], 1.0, atol=0.05).all(axis=0).sum() >= 4   # good units keep ±1 on S


def test_sin_neuron_learns_a_small_parity():
    text = """
target: {name: sparse_parity, n: 10, k: 2}
learner: {name: neuron, activation: sin}
train: {optimizer: sgd, lr: 0.05, batch: 32, steps: 600, loss: hinge, eval_every: 100}
data: {online: true, test_m: 512}"""
    out = _train(text)
    assert float(out["test_error"]) <= 0.05


# ---------------------------------------------------------------- config errors

BASE = "target: {name: sparse_parity, n: 9, k: 3}\ndata: {online: true}\n"


@pytest.mark.parametrize("learner, key, text", [
    ("{name: polynet, factors: 10}", "learner.factors", "≤ n = 9"),
    ("{name: polynet, factors: 2, disjoint: true}", "learner.factors", "divisible"),
    ("{name: polynet, factors: 0}", "learner.factors", "≥ 1"),
    ("{name: polynet, scale: -1}", "learner.scale", "> 0"),
    ("{name: polynet, init: ones}", "learner.init", "one of"),
    ("{name: polymlp, hidden: []}", "learner.hidden", "at least one"),
    ("{name: polymlp, hidden: [4, 0]}", "learner.hidden[1]", "≥ 1"),
    ("{name: polymlp, hidden: 4}", "learner.hidden", "a list of an integer"),
    ("{name: polymlp, power: 0}", "learner.power", "≥ 1"),
    ("{name: polymlp, readout: none}", "learner.readout", "one of"),
    ("{name: neuron, activation: sin, pieces: 3}", "learner.pieces", "only with activation: zigzag"),
    ("{name: neuron, period: 0}", "learner.period", "> 0"),
    ("{name: neuron, readout: fixed}", "learner.readout", "one of"),
])
def test_config_errors_name_the_key(learner, key, text):
    with pytest.raises(ConfigError) as err:
        config.loads(BASE + f"learner: {learner}\n")
    assert err.value.key == key and text in err.value.message


def test_registry_and_shipped_configs():
    assert {"polynet", "polymlp", "neuron"} <= set(learners.names())
    for name in ("polynet", "sign_sgd_parity"):
        path = ROOT / "configs" / f"{name}.yaml"
        text = path.read_text()
        assert text.startswith("#") and "Run:" in text
        exp = config.load(path)
        assert exp.learner.kind == "gradient"
        config.smoke(exp)
