"""The `mlp` learner's sparse options: top-k activation, sparse initialisation, routing."""

from __future__ import annotations

import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparselearn import learners
from sparselearn.errors import ConfigError
from sparselearn.learners.mlp import MLP

N = 12
X = jnp.sign(jax.random.normal(jax.random.key(1), (32, N)))
Y = X[:, 0] * X[:, 1]


def first_layer(net: MLP, params) -> jax.Array:
    """(n, width) whatever the storage layout."""
    return net.first_layer(params)


def frozen_original(key, x, n, width, depth):
    """The ReLU MLP exactly as it was before the sparse options existed."""
    sizes = [n] + [width] * (depth - 1) + [1]
    layers = []
    for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
        kw, kb = jax.random.split(jax.random.fold_in(key, i))
        c = math.sqrt(6.0 / (fi + fo))
        w = jax.random.uniform(kw, (fi, fo), jnp.float32, -c, c)
        b = jax.random.uniform(kb, (fo,), jnp.float32, -1 / math.sqrt(fi), 1 / math.sqrt(fi))
        layers.append({"w": w, "b": b})
    layers[-1] = {"w": layers[-1]["w"][:, 0], "b": layers[-1]["b"][0]}
    h = x
    for layer in layers[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
    return layers, h @ layers[-1]["w"] + layers[-1]["b"]


@pytest.mark.parametrize("depth", [2, 3])
def test_default_relu_network_is_bit_for_bit_unchanged(depth):
    net = MLP(width=16, depth=depth)
    key = jax.random.key(7)
    params = net.init_params(key, N)
    want_params, want = frozen_original(key, X, N, 16, depth)
    for got_layer, want_layer in zip(params, want_params):
        for name in ("w", "b"):
            np.testing.assert_array_equal(got_layer[name], want_layer[name])
    np.testing.assert_array_equal(net.apply(params, X), want)


@pytest.mark.parametrize("fields, key", [
    ({"activation": "topk"}, "k"),
    ({"activation": "topk", "k": 0}, "k"),
    ({"activation": "topk", "k": 65}, "k"),
    ({"k": 4}, "k"),
    ({"init": "sparse"}, "fan_in"),
    ({"init": "sparse", "fan_in": 0}, "fan_in"),
    ({"fan_in": 3}, "fan_in"),
    ({"routed": True}, "routed"),
    ({"router_rank": 0}, "router_rank"),
    ({"k": "4", "activation": "topk"}, "k"),
    ({"routed": "yes"}, "routed"),
    ({"activation": "softmax"}, "activation"),
    ({"init": "lottery"}, "init"),
])
def test_impossible_fields_are_config_errors_naming_the_key(fields, key):
    with pytest.raises(ConfigError) as e:
        learners.get("mlp", width=64, **fields)
    assert e.value.key == key


def test_fan_in_above_n_is_rejected_by_check_and_init():
    net = learners.get("mlp", width=8, init="sparse", fan_in=13)
    with pytest.raises(ConfigError) as e:
        net.check(SimpleNamespace(n=N), SimpleNamespace(m=100))
    assert e.value.key == "fan_in"
    with pytest.raises(ConfigError, match="fan_in"):
        net.init_params(jax.random.key(0), N)
    learners.get("mlp", width=8, init="sparse", fan_in=12).check(SimpleNamespace(n=N), None)


def test_sparse_init_gives_each_unit_exactly_fan_in_inputs_differing_across_units_and_seeds():
    net = MLP(width=64, init="sparse", fan_in=3)
    keys = jax.random.split(jax.random.key(0), 2)
    w = jax.jit(jax.vmap(lambda k: net.init_params(k, N)))(keys)[0]["w"]  # (2, n, width)
    nonzero = np.asarray(w != 0)
    assert (nonzero.sum(axis=1) == 3).all()
    assert len({tuple(np.flatnonzero(col)) for col in nonzero[0].T}) > 20
    assert (nonzero[0] != nonzero[1]).any()
    bound = math.sqrt(6 / (3 + 64))
    assert float(jnp.abs(w).max()) <= bound


def train(net: MLP, opt, steps: int = 30):
    params = net.init_params(jax.random.key(3), N)

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            grads = jax.grad(lambda p: jnp.mean(jax.nn.relu(1 - Y * net.apply(p, X))))(params)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        return jax.lax.scan(step, (params, opt.init(params)), None, length=steps)[0][0]

    return params, run(params)


OPTIMIZERS = {
    "sgd+momentum+decay": optax.chain(optax.add_decayed_weights(1e-2), optax.sgd(0.1, momentum=0.9)),
    "adamw": optax.adamw(1e-2, weight_decay=0.1),
    "sign-sgd+decay": optax.chain(optax.scale_by_sign(), optax.add_decayed_weights(1e-2), optax.sgd(0.01)),
}


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=list(OPTIMIZERS))
@pytest.mark.parametrize("routed, depth", [(False, 2), (True, 2), (True, 3)], ids=["masked", "routed", "routed-3"])
def test_sparse_connectivity_survives_training(opt, routed, depth):
    kw = {"activation": "topk", "k": 8, "routed": True} if routed else {}
    net = MLP(width=32, depth=depth, init="sparse", fan_in=3, **kw)
    before, after = train(net, OPTIMIZERS[opt])
    w0, w1 = first_layer(net, before), first_layer(net, after)
    np.testing.assert_array_equal(np.asarray(w1 != 0), np.asarray(w0 != 0))
    assert not np.allclose(w0, w1)  # the kept weights did train


def test_free_connectivity_trains_the_zero_weights_of_a_sparse_init():
    net = MLP(width=32, init="sparse", fan_in=3, connectivity="free")
    before, after = train(net, optax.sgd(0.1))
    w0, w1 = first_layer(net, before), first_layer(net, after)
    assert int((w0 != 0).sum(axis=0).max()) == 3  # the initialisation is sparse
    assert bool(jnp.any((w0 == 0) & (w1 != 0)))  # and the zeros are free to move
    dense = MLP(width=32)  # with free connectivity the network is the plain dense one
    np.testing.assert_allclose(net.apply(before, X), dense.apply(before, X), rtol=1e-6)


def test_fixed_connectivity_below_k_is_rejected_for_parities():
    from sparselearn import config

    text = """
experiment: x
target: {name: sparse_parity, n: 20, k: 3}
learner: {name: mlp, width: 8, init: sparse, fan_in: 2%s}
"""
    with pytest.raises(ConfigError, match="connectivity: free"):
        config.loads(text % "")
    assert config.loads(text % ", connectivity: free").learner.connectivity == "free"


def test_a_top_k_net_of_fan_in_1_can_represent_a_2_parity_so_its_fan_in_is_not_rejected():
    """Which units top-k keeps depends on every unit, so a fan-in-1 top-2 net is not a sum of
    one-input functions: this one sign-represents x1·x2 on {±1}²."""
    import itertools

    from sparselearn import targets

    net = MLP(width=6, activation="topk", k=2, init="sparse", fan_in=1)
    w = np.zeros((2, 6), np.float32)
    w[[1, 0, 0, 1, 1, 0], range(6)] = [-0.482, 0.591, -2.01, 2.006, 2.196, -1.232]
    params = [{"w": jnp.asarray(w), "b": jnp.asarray([0.01, 1.216, 0.479, -0.018, -0.007, 0.784])},
              {"w": jnp.asarray([-1.02, 0.122, -0.668, -0.137, 0.485, 1.188]), "b": jnp.float32(0)}]
    x = jnp.asarray(list(itertools.product([-1.0, 1.0], repeat=2)))
    np.testing.assert_array_equal(np.sign(net.apply(params, x)), x[:, 0] * x[:, 1])
    parity = targets.get("sparse_parity", n=2, k=2)
    net.check(parity, None)
    with pytest.raises(ConfigError, match="connectivity"):   # the ReLU net of the same mask cannot
        MLP(width=6, init="sparse", fan_in=1).check(parity, None)


def test_router_rank_is_used_only_when_routed():
    with pytest.raises(ConfigError) as info:
        MLP(width=8, activation="topk", k=2, router_rank=3)
    assert info.value.key == "router_rank"
    assert MLP(width=8, activation="topk", k=2, routed=True, router_rank=3).router_rank == 3
    assert MLP(width=8, router_rank=8).router_rank == 8   # the default, written out (configs/topk.yaml)


def test_connectivity_needs_sparse_init():
    with pytest.raises(ConfigError, match="connectivity"):
        MLP(width=8, connectivity="free")


def test_topk_network_keeps_at_most_k_units_and_matches_a_dense_formula():
    net = MLP(width=32, activation="topk", k=5)
    p = jax.jit(net.init_params, static_argnums=1)(jax.random.key(0), N)
    z = X @ p[0]["w"] + p[0]["b"]
    kth = jnp.sort(z, axis=1)[:, -5][:, None]
    h = jnp.where(z >= kth, jax.nn.relu(z), 0.0)  # no ties in continuous pre-activations
    assert int((h > 0).sum(axis=1).max()) <= 5
    np.testing.assert_allclose(net.apply(p, X), h @ p[1]["w"] + p[1]["b"], rtol=1e-5, atol=1e-6)


def test_depth_three_topk_with_sparse_init_runs_under_jit_vmap_grad():
    net = MLP(width=16, depth=3, activation="topk", k=4, init="sparse", fan_in=2, bias=False)
    params = jax.jit(jax.vmap(lambda k: net.init_params(k, N)))(jax.random.split(jax.random.key(0), 3))
    loss = jax.jit(jax.vmap(jax.value_and_grad(lambda p: jnp.mean((net.apply(p, X) - Y) ** 2))))
    values, grads = loss(params)
    assert values.shape == (3,) and np.isfinite(values).all()
    assert not np.asarray(grads[0]["w"])[np.asarray(params[0]["w"] == 0)].any()
    assert not np.asarray(grads[0]["b"]).any()  # bias=False: biases get no gradient


@pytest.mark.parametrize("depth", [2, 3])
def test_routed_with_full_rank_router_equals_the_topk_network(depth):
    dense = MLP(width=32, depth=depth, activation="topk", k=6)
    routed = MLP(width=32, depth=depth, activation="topk", k=6, routed=True, router_rank=N)
    key = jax.random.key(5)
    pd, pr = dense.init_params(key, N), routed.init_params(key, N)
    np.testing.assert_array_equal(pr[0]["w"], pd[0]["w"].T)

    @jax.jit
    def outputs_and_grads(pd, pr):
        return [(net.apply(p, X), jax.grad(lambda p: jnp.sum(net.apply(p, X) ** 2))(p))
                for net, p in ((dense, pd), (routed, pr))]

    (fd, gd), (fr, gr) = outputs_and_grads(pd, pr)
    np.testing.assert_allclose(fr, fd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gr[0]["w"].T, gd[0]["w"], rtol=1e-4, atol=1e-5)
    for a, b in zip(jax.tree.leaves(gr[1:]), jax.tree.leaves(gd[1:])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_new_options_train_through_the_training_loop_and_the_example_config():
    from sparselearn import config
    from sparselearn.train.loop import run_one

    exp = config.loads("""
target: {name: sparse_parity, n: 8, k: 2}
learner: {name: mlp, width: 64, activation: topk, k: 16, init: sparse, fan_in: 4, routed: true, router_rank: 4}
train: {steps: 300, eval_every: 100, batch: 32, lr: 0.1}
data: {m: 1024, test_m: 256}
""")
    out = run_one(exp, seed=0)
    assert np.isfinite(out["train_loss"]) and out["test_error"] <= 0.25
    cfg = config.load("configs/topk.yaml")
    assert cfg.learner.activation == "topk" and cfg.learner.init == "sparse"


@pytest.mark.parametrize("routed", [False, True], ids=["topk", "routed"])
def test_first_layer_is_n_by_width_and_recorders_count_k_active_units(routed):
    from sparselearn.train.record import State, active_fraction, unit_norms

    net = MLP(width=32, depth=2, activation="topk", k=4, routed=routed, **({"router_rank": N} if routed else {}))
    params = net.init_params(jax.random.key(0), N)
    assert net.first_layer(params).shape == (N, 32)
    state = State(net, None, params, params, None, X)
    assert unit_norms(state).shape == (32,)
    assert float(active_fraction(state)) == pytest.approx(4 / 32)  # k of width units on every input
