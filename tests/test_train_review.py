"""Training pieces against independent references: the optimizers against numpy updates from
their textbook definitions (per run and vmapped), lottery-ticket runs against the units their
docstring names, and the recorders against a direct numpy computation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparselearn import config, learners, targets
from sparselearn.errors import ConfigError
from sparselearn.train import optimizers, run_group, trajectory
from sparselearn.train.loop import instance_keys, make_data
from sparselearn.train.record import State, active_fraction, unit_norms
from sparselearn.train.rewind import RANDOM_STREAM, restrict

# (name, hyperparameters besides lr and weight decay)
CASES = [("sgd", {}), ("sgd", {"momentum": 0.9}), ("adam", {}), ("sign-sgd", {}),
         ("sign-sgd", {"sign_threshold": 0.3})]
#: (lr, weight decay) of three runs
RUNS = [(0.1, 0.0), (0.05, 0.01), (0.02, 0.3)]


def numpy_step(name, hp, p, g, state, t, lr, wd):
    """One update of parameter array p (float64) with gradient g, from the textbook rules:
    SGD with coupled decay and heavy-ball momentum, AdamW (β = 0.9, 0.999, ε = 1e-8 outside the
    root, decay λ·w scaled by lr), and sign-SGD with ρ-thresholded sign and the decay outside."""
    if name == "sgd":
        state["buf"] = hp.get("momentum", 0.0) * state.get("buf", 0.0) + g + wd * p
        return p - lr * state["buf"]
    if name == "sign-sgd":
        sign = np.where(np.abs(g) <= hp.get("sign_threshold", 0.0), 0.0, np.sign(g))
        return p - lr * (sign + wd * p)
    state["m"] = 0.9 * state.get("m", 0.0) + 0.1 * g
    state["v"] = 0.999 * state.get("v", 0.0) + 0.001 * g ** 2
    m_hat, v_hat = state["m"] / (1 - 0.9 ** t), state["v"] / (1 - 0.999 ** t)
    return p - lr * (m_hat / (np.sqrt(v_hat) + 1e-8) + wd * p)


@pytest.mark.parametrize("name, hp", CASES)
def test_optimizers_follow_their_textbook_rules_per_run_and_vmapped(name, hp):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    a = a @ a.T / 5 + 0.1 * np.eye(5)
    c = rng.normal(size=5)
    w0 = rng.normal(size=5).astype(np.float32)

    def grad(w):  # of the quadratic ½ wᵀAw − cᵀw
        return a @ w - c

    def run(lr, wd, steps=6):
        opt = optimizers.make(name, lr, weight_decay=wd, **hp)
        w = jnp.asarray(w0)
        state = opt.init(w)
        for _ in range(steps):
            update, state = opt.update(jnp.asarray(a, jnp.float32) @ w - jnp.asarray(c, jnp.float32), state, w)
            w = optax.apply_updates(w, update)
        return w

    vmapped = jax.jit(jax.vmap(run))(*(jnp.asarray(v, jnp.float32) for v in zip(*RUNS)))
    for i, (lr, wd) in enumerate(RUNS):
        w, state, w_plain, state_plain = w0.astype(np.float64), {}, w0.astype(np.float64), {}
        for t in range(1, 7):
            w = numpy_step(name, hp, w, grad(w), state, t, lr, wd)
            w_plain = numpy_step(name, {}, w_plain, grad(w_plain), state_plain, t, lr, wd)
        np.testing.assert_allclose(run(lr, wd), w, atol=2e-5, err_msg=f"{name} {hp} lr={lr} wd={wd}")
        np.testing.assert_allclose(vmapped[i], run(lr, wd), atol=1e-6, err_msg="traced hyperparameters")
        if hp and i == 0:  # the hyperparameter changes the updates on this problem
            assert np.abs(w - w_plain).max() > 1e-3


NET = """
target: {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 8}
train: {optimizer: %s, steps: 7, eval_every: 3, batch: 4, lr: 0.1, loss: hinge%s}
data: {m: 32, test_m: 16}
"""
#: per-run values of a group: traced lr and weight decay, and a smaller m
GROUP = {"seed": [0, 1, 2], "lr": [0.1, 0.05, 0.02], "weight_decay": [0.0, 0.01, 0.1], "m": [32, 20, 32]}


def _params(p, p0):
    return {"w": p[0]["w"], "b": p[0]["b"], "a": p[1]["w"], "c": p[1]["b"]}


def numpy_training(exp, seed, lr, wd, m):
    """The parameters of run `seed` of a depth-2 ReLU net on the hinge loss after every step,
    backpropagated and updated in float64 on the run's own data and mini-batch indices."""
    tr = exp.train
    _, x_train, y_train, _, _ = make_data(exp)(seed, seed, 0.0)
    x_train, y_train = np.asarray(x_train, np.float64), np.asarray(y_train, np.float64)
    keys = instance_keys(seed, seed)
    p0 = exp.learner.init_params(keys["init"], exp.target.n)
    params = [np.asarray(v, np.float64) for v in (p0[0]["w"], p0[0]["b"], p0[1]["w"], p0[1]["b"])]
    states = [{} for _ in params]
    hp = {"momentum": tr.momentum, "sign_threshold": tr.sign_threshold}
    after = [list(params)]
    for t in range(tr.steps):
        rows = np.asarray(jax.random.randint(jax.random.fold_in(keys["batches"], t), (tr.batch,), 0, m))
        x, y = x_train[rows], y_train[rows]
        w, b, a, c = params
        z = x @ w + b
        h = np.maximum(z, 0.0)
        df = np.where(1 - y * (h @ a + c) > 0, -y, 0.0) / len(y)
        dz = np.outer(df, a) * (z > 0)
        grads = [x.T @ dz, dz.sum(0), h.T @ df, df.sum()]
        params = [numpy_step(tr.optimizer, hp, p, g, s, t + 1, lr, wd) for p, g, s in zip(params, grads, states)]
        after.append(list(params))
    return after


@pytest.mark.slow
@pytest.mark.parametrize("name, extra", [("sgd", ", momentum: 0.9"), ("adam", ""),
                                         ("sign-sgd", ", sign_threshold: 0.01")])
def test_a_group_trains_each_run_as_numpy_backprop_with_its_own_lr_and_decay(name, extra):
    exp = config.loads(NET % (name, extra))
    out = trajectory(exp, GROUP, observe=_params)
    for i, seed in enumerate(GROUP["seed"]):
        ref = numpy_training(exp, seed, GROUP["lr"][i], GROUP["weight_decay"][i], GROUP["m"][i])
        for c, step in enumerate(out["steps"]):
            got = [out[f"trace_{k}"][i, c] for k in "wbac"]
            for g, r in zip(got, ref[int(step)]):
                np.testing.assert_allclose(g, r, atol=5e-5, err_msg=f"{name} run {i} step {step}")


TICKET = """
target: {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 10}
train: {steps: 12, eval_every: 4, batch: 4, lr: 0.1, loss: hinge, rewind: 3, record: [first_layer]}
data: {m: 32, test_m: 16}
"""


@pytest.mark.slow
@pytest.mark.parametrize("pick", ["largest", "random"])
def test_a_ticket_trains_exactly_the_named_units_from_their_initial_weights(pick):
    ticket = config.loads(TICKET, overrides=[f"train.rewind_pick={pick}"])
    parent = config.override(ticket, train={"rewind": None, "rewind_pick": "largest", "record": ()})
    hps = {"seed": [0, 1], "lr": [0.1, 0.2], "weight_decay": [0.0, 0.01]}
    out = run_group(ticket, hps)
    full = trajectory(parent, hps, observe=_params)
    units = []
    for i, seed in enumerate(hps["seed"]):
        if pick == "largest":  # the largest |a_j|·‖w_j‖ of the trained full network
            score = np.abs(full["trace_a"][i, -1]) * np.linalg.norm(full["trace_w"][i, -1], axis=0)
            units.append(np.argsort(-score)[:3])
        else:
            key = jax.random.fold_in(instance_keys(seed, seed)["init"], RANDOM_STREAM)
            units.append(np.asarray(jax.random.choice(key, 10, (3,), replace=False)))
    # the width-3 nets of those units alone, from their initial weights, trained on the same runs
    alone = trajectory(config.override(parent, learner={"width": 3}), {**hps, "units": np.stack(units)},
                       observe=_params, init=lambda key, hp: restrict(parent.learner.init_params(key, 6), hp["units"]))
    for i, seed in enumerate(hps["seed"]):
        start = parent.learner.init_params(instance_keys(seed, seed)["init"], 6)
        np.testing.assert_allclose(out["trace_first_layer"][i, 0], np.asarray(start[0]["w"])[:, units[i]], atol=1e-7)
        np.testing.assert_allclose(out["trace_first_layer"][i], alone["trace_w"][i], atol=1e-6)
        np.testing.assert_allclose(out["curve_test_loss"][i], alone["curve_test_loss"][i], atol=1e-6)


def test_unit_recorders_read_each_learners_units_inputs_first():
    target = targets.get("sparse_parity", n=8, k=2)
    teacher = target.init(jax.random.key(0))
    x, _ = target.sample(teacher, jax.random.key(1), 64)
    xn = np.asarray(x)

    polynet = learners.get("polynet", factors=3)   # kept as (factors, n): a unit per row
    p = polynet.init_params(jax.random.key(2), 8)
    np.testing.assert_allclose(unit_norms(State(polynet, target, p, p, teacher, x)),
                               np.linalg.norm(np.asarray(p["w"]), axis=1), rtol=1e-6)

    moe = learners.get("moe", experts=4, expert_width=3, top=1, r=2)   # (E, width, n)
    p = moe.init_params(jax.random.key(2), 8)
    state = State(moe, target, p, p, teacher, x)
    w = np.asarray(p["w"])
    np.testing.assert_allclose(unit_norms(state), np.linalg.norm(w, axis=2), rtol=1e-6)
    fires = np.einsum("mn,ehn->meh", xn, w) - np.asarray(p["b"]) > 0        # (inputs, E, width)
    chosen = np.asarray(moe.routes(p, x))[:, 0]
    active = fires & (np.arange(4)[None, :, None] == chosen[:, None, None])  # units of the chosen expert that fire
    assert active.mean() < 0.25  # one expert of four
    np.testing.assert_allclose(active_fraction(state), active.mean(), atol=1e-6)

    mlp = learners.get("mlp", width=8)   # (n, width), width = n: the columns still
    p = mlp.init_params(jax.random.key(2), 8)
    state = State(mlp, target, p, p, teacher, x)
    np.testing.assert_allclose(unit_norms(state), np.linalg.norm(np.asarray(p[0]["w"]), axis=0), rtol=1e-6)
    live = ((xn @ np.asarray(p[0]["w"]) + np.asarray(p[0]["b"])) > 0) & (np.asarray(p[1]["w"]) != 0)
    np.testing.assert_allclose(active_fraction(state), live.mean(), atol=1e-6)


STOPPING = """
experiment: stopping
target: {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 32}
train: {steps: 100, eval_every: 20, batch: 16, lr: 0.2, eps: 0.05, record: [unit_norms, influence]}
data: {m: 256, test_m: 128}
sweep: {seeds: 2, grid: {data.m: [16, 256]}}
"""


def test_a_sweep_that_stops_at_eps_stores_the_full_runs_steps_to_eps_and_traces_up_to_the_stop(tmp_path):
    import sparselearn as sl
    from sparselearn.store import load_traces, trace_array

    full_exp = config.loads(STOPPING)
    runs = {}
    for stop in (False, True):
        exp = config.override(full_exp, train={"stop_at_eps": stop})
        df = sl.run(exp, str(tmp_path / str(stop)), progress=False).sort_values(["m", "seed"])
        _, curves = sl.load_results(df.attrs["path"], curves=True)
        runs[stop] = (df, curves, load_traces(df.attrs["path"]))
    (full, _, full_traces), (stopped, curves, traces) = runs[False], runs[True]
    np.testing.assert_array_equal(stopped["steps_to_eps"].fillna(-1), full["steps_to_eps"].fillna(-1))
    assert full["steps_to_eps"].notna().sum() >= 1 and full["steps_to_eps"].isna().sum() >= 1
    for a, b in zip(full["run_id"], stopped["run_id"]):
        steps = sorted(curves[curves["run_id"] == b]["step"])
        reached = stopped.set_index("run_id")["steps_to_eps"].fillna(-1)[b]
        assert steps[-1] == (100 if reached < 0 else reached)
        for name in ("unit_norms", "influence"):
            assert sorted(traces[(traces["run_id"] == b) & (traces["name"] == name)]["step"]) == steps
            _, _, want = trace_array(full_traces, name, run_ids=[a])
            _, _, got = trace_array(traces, name, run_ids=[b])
            np.testing.assert_array_equal(got[0, :len(steps)], want[0, :len(steps)])


def test_every_learners_first_layer_puts_the_inputs_first():
    n = 12
    seen = []
    for name in learners.names():
        learner = learners.get(name)
        if learner.kind != "gradient" or not hasattr(learner, "first_layer"):
            continue
        params = learner.init_params(jax.random.key(0), n)
        assert learner.first_layer(params).shape[0] == n, name
        seen.append(name)
    assert {"mlp", "polynet", "polymlp", "moe", "neuron", "wnl_net"} <= set(seen)


TINY_RUN = """
experiment: hps
target:  {name: sparse_parity, n: 8, k: 2}
learner: {name: mlp, width: 8, depth: 2}
train:   {optimizer: sgd, lr: 0.1, batch: 8, steps: 4, loss: hinge, eval_every: 2}
data:    {m: 32, test_m: 16}
"""


@pytest.mark.parametrize("axis, bad, key", [("lr", -0.5, "train.lr"), ("lr", float("nan"), "train.lr"),
                                            ("weight_decay", -1.0, "train.weight_decay"),
                                            ("init_seed", -7, "train.init_seed")])
def test_run_group_refuses_the_run_values_the_config_refuses(axis, bad, key):
    """The Python API checks each run's values by the config's own rules: an lr of −0.5 was
    gradient ascent and a negative init_seed silently meant "the run seed"."""
    exp = config.loads(TINY_RUN)
    with pytest.raises(ConfigError, match=f"hps\\['{axis}'\\] holds") as err:
        run_group(exp, {"seed": [0, 1], axis: [0.1 if axis != "init_seed" else 3, bad]})
    assert err.value.key == key


def test_run_group_refuses_a_run_whose_m_is_below_its_batch_as_the_config_does():
    """m = 3 with batch 8 trained silently on 3 rows drawn with replacement."""
    exp = config.loads(TINY_RUN)
    with pytest.raises(ConfigError, match=rf"hps\['m'\] holds 3: batch = {exp.train.batch} exceeds") as err:
        run_group(exp, {"seed": [0, 1], "m": [exp.data.m, 3]})
    assert err.value.key == "train.batch"
    with pytest.raises(ConfigError, match="batch") as err:
        config.loads(TINY_RUN, [f"data.m={3}"])
    assert err.value.key == "train.batch"


def test_run_group_refuses_a_label_flip_probability_above_one_half():
    exp = config.loads(TINY_RUN.replace("k: 2}", "k: 2, noise: 0.1}"))
    with pytest.raises(ConfigError, match=r"hps\['noise'\] holds 0.9:") as err:
        run_group(exp, {"seed": [0], "noise": [0.9]})
    assert err.value.key == "target.noise"


def test_run_group_reads_none_as_an_unset_init_seed_and_names_a_missing_seed():
    exp = config.loads(TINY_RUN)
    unset = run_group(exp, {"seed": [3, 1], "init_seed": [None, 1]})
    same = run_group(exp, {"seed": [3, 1], "init_seed": [3, 1]})
    np.testing.assert_array_equal(np.asarray(unset["test_loss"]), np.asarray(same["test_loss"]))
    zero = run_group(exp, {"seed": [3, 1], "init_seed": [0, 1]})   # None is the run seed, not 0
    assert np.asarray(unset["test_loss"])[0] != np.asarray(zero["test_loss"])[0]
    with pytest.raises(ValueError, match="no 'seed'"):
        run_group(exp, {"m": [64]})
