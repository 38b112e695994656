"""One run as a pure function: determinism, group independence, one compile per group, divergence."""

from __future__ import annotations

import contextlib
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

from sparselearn import config, targets
from sparselearn.sweeps import grid
from sparselearn.schema import CURVES
from sparselearn.train import curve_steps, run_group, run_one, trajectory
from sparselearn.train.loop import compiled_group, draw_dataset, make_data
from sparselearn.train.losses import correlation, hinge, logistic, square
from sparselearn.train.optimizers import make

METRICS = ("test_error", "test_loss", "train_error", "train_loss", "steps_to_eps",
           "curve_train_loss", "curve_test_error")


def test_same_config_and_seed_give_identical_metrics(tiny):
    a = run_one(tiny, seed=3, m=128)
    compiled_group.cache_clear()  # a fresh compile must agree too
    b = run_one(tiny, seed=3, m=128)
    for name in METRICS:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


GROUP = {"seed": [0, 1, 2, 1], "m": [64, 256, 256, 128], "lr": [0.1, 0.05, 0.1, 0.2],
         "weight_decay": [0.0, 0.0, 1e-3, 0.0]}


def test_run_inside_a_group_equals_the_run_alone(tiny):
    group = run_group(tiny, GROUP)  # data drawn at m = 256, run 0 indexes only its first 64 rows
    for i, exp in [(0, config.override(tiny, data={"m": 64})), (1, tiny), (2, tiny)]:
        alone = run_one(exp, **{k: v[i] for k, v in GROUP.items()})
        for name in METRICS:
            np.testing.assert_allclose(group[name][i], alone[name], atol=1e-6, rtol=0, err_msg=f"run {i} {name}")


def test_vmapped_values_change_results(tiny):
    out = run_group(tiny, GROUP)
    assert len(set(out["train_loss"].tolist())) == 4


class _CompileCounter(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Finished XLA compilation of"):
            self.names.append(msg.split(" of ")[1].split(" in ")[0])


@contextlib.contextmanager
def _compiles():
    """A _CompileCounter listening to jax's compile log inside the block."""
    counter = _CompileCounter()
    logger = logging.getLogger("jax")
    logger.addHandler(counter)
    prev = jax.config.jax_log_compiles
    jax.config.update("jax_log_compiles", True)
    try:
        yield counter
    finally:
        jax.config.update("jax_log_compiles", prev)
        logger.removeHandler(counter)


def test_one_compile_per_shape_group(tiny):
    with _compiles() as counter:
        run_group(tiny, {"seed": [0, 1, 2], "m": [64, 128, 256], "lr": [0.1, 0.2, 0.3]})
        run_group(tiny, {"seed": [5, 6, 7], "m": [256, 64, 64], "lr": [0.01, 0.1, 0.1]})  # same shapes: cached
        assert counter.names.count("jit(run_group)") == 1
        run_group(config.override(tiny, target={"n": 12}), {"seed": [0, 1, 2]})  # new shape: one more
        assert counter.names.count("jit(run_group)") == 2


def test_host_runs_of_every_m_share_one_group_and_compile_once_per_shape():
    """GF(2) runs (numpy fits) of different m: one group draws their data at the largest m and
    computes every run's metrics in one program; each run equals itself alone. Their metrics
    were eager jnp operations, a dozen compiles for every new m (a notebook's m* search spent
    half its 25 s there)."""
    exp = config.loads("experiment: g\ntarget: {name: sparse_parity, n: 10, k: 3, noise: 0.1}\n"
                       "learner: {name: gf2, sparsest: false}\ntrain: {loss: square}\n"
                       "data: {m: 40, test_m: 64}\nsweep: {grid: {data.m: [7, 12, 40]}, seeds: 2}\n")
    runs = grid.expand(exp)
    assert len(grid.group(runs)) == 1
    hps = {"seed": [0, 1, 2, 3], "m": [7, 12, 40, 12], "noise": [0.1, 0.0, 0.1, 0.1]}
    with _compiles() as counter:
        group = run_group(exp, hps)
        first = list(counter.names)
        again = run_group(exp, {"seed": [5, 6, 7, 8], "m": [9, 10, 11, 13], "noise": [0.1] * 4})
    assert first.count("jit(data_group)") == 1 and first.count("jit(one)") == 1, first
    assert counter.names == first   # other m values, the same shapes: nothing compiles
    assert np.isfinite(again["test_error"]).all()
    for i in range(4):
        alone = run_one(config.override(exp, data={"m": hps["m"][i]}), **{k: v[i] for k, v in hps.items()})
        for name in ("test_error", "test_loss", "train_error", "train_loss", "curve_train_loss", "finite",
                     "error"):
            np.testing.assert_array_equal(group[name][i], alone[name], err_msg=f"run {i} {name}")
    # 40 noisy labels admit no parity: that run failed, with NaN metrics, beside runs that fit
    assert "noisy labels" in group["error"][2] and np.isnan(group["test_error"][2])
    assert group["error"][3] is None and group["test_error"][0] > 0 == group["test_error"][1]


@pytest.mark.parametrize("stepped", [False, True])
def test_a_prepared_group_runs_without_compiling(tiny, fresh_programs, stepped):
    from sparselearn.train import prepare_group

    hps = {"seed": [0, 1, 2], "m": [64, 128, 256]}
    pieces = 3 if stepped else 1  # start, advance and finish, or the whole group
    prepare_group(tiny, hps, progress=stepped)
    assert len(fresh_programs) == pieces
    out = run_group(tiny, hps, progress=(lambda step, steps: None) if stepped else None)
    assert len(fresh_programs) == pieces and out["test_error"].shape == (3,)
    run_group(config.override(tiny, target={"n": 12}), hps)  # another shape still compiles
    assert len(fresh_programs) == pieces + 1


def test_datasets_are_prefix_consistent():
    t = targets.get("sparse_parity", n=12, k=3)
    tp = t.init(jax.random.key(0))
    x_big, y_big = draw_dataset(t, tp, jax.random.key(1), 100)
    x, y = draw_dataset(t, tp, jax.random.key(1), 37)
    np.testing.assert_array_equal(x_big[:37], x)
    np.testing.assert_array_equal(y_big[:37], y)
    np.testing.assert_array_equal(t.labels(tp, x), y)


def test_nonfinite_loss_marks_run_diverged(tiny):
    assert bool(run_one(tiny, seed=0, m=64)["finite"])
    assert not bool(run_one(tiny, seed=0, m=64, lr=1e38)["finite"])


def test_a_divergence_in_the_last_steps_marks_the_run_diverged():
    """Each step's loss is taken before its update: a run whose final update overflows shows it
    only in the final losses, which count too."""
    exp = config.loads("target: {name: sparse_parity, n: 10, k: 2}\nlearner: {name: mlp, width: 32}\n"
                       "train: {lr: 3.0, batch: 16, steps: 4, loss: square, eval_every: 1}\n"
                       "data: {m: 512, test_m: 256}")
    out = run_one(exp, seed=0)
    assert np.isfinite(out["curve_train_loss"]).all() and not np.isfinite(out["test_loss"])
    assert not bool(out["finite"])


def test_every_entry_point_refuses_an_m_above_data_m(tiny):
    for entry in (run_group, trajectory):
        with pytest.raises(ValueError, match="exceeds the group's data.m"):
            entry(tiny, {"seed": [0, 0], "m": [64, tiny.data.m + 1]})


def test_curves_cover_steps_with_remainder(tiny):
    np.testing.assert_array_equal(curve_steps(tiny), [0, 20, 40, 50])
    out = run_one(tiny, seed=0, m=64)
    assert out["curve_test_error"].shape == (4,)
    assert out["test_error"] == out["curve_test_error"][-1]


def test_label_noise_flips_training_labels_but_not_test_labels():
    """A run's data as the loop draws them (`make_data`): about 20% of the training labels
    flipped, none of the test labels."""
    exp = config.loads("target: {name: sparse_parity, n: 20, k: 3, noise: 0.2}\nlearner: {name: mlp, width: 8}\n"
                       "data: {m: 20000, test_m: 4096}")
    teacher, x, y, x_test, y_test = jax.jit(make_data(exp))(0, 0, jnp.float32(exp.target.noise))
    t = exp.target
    assert abs(float(jnp.mean(y != t.labels(teacher, x))) - 0.2) < 0.02
    np.testing.assert_array_equal(y_test, t.labels(teacher, x_test))


def test_online_training_learns_an_easy_parity():
    exp = config.loads("""
target: {name: sparse_parity, n: 8, k: 2}
learner: {name: mlp, width: 64}
train: {steps: 600, eval_every: 100, batch: 32, lr: 0.1}
data: {online: true, test_m: 256}
""")
    out = run_one(exp, seed=0)
    assert out["test_error"] <= 0.05
    assert 0 < out["steps_to_eps"] <= 600


def test_losses_closed_form():
    f = jnp.array([2.0, 0.5, -1.0])
    y = jnp.array([1.0, 1.0, 1.0])
    np.testing.assert_allclose(hinge(f, y), [0.0, 0.5, 2.0])
    np.testing.assert_allclose(square(f, y), [0.5, 0.125, 2.0])
    np.testing.assert_allclose(logistic(f, y), np.log1p(np.exp(-np.array([2.0, 0.5, -1.0]))), rtol=1e-6)
    np.testing.assert_allclose(correlation(f, -y), [2.0, 0.5, -1.0])


@pytest.mark.parametrize("name", ["sgd", "sign-sgd", "adam"])
def test_optimizer_step_matches_its_formula(name):
    w = {"w": jnp.array([1.0, -2.0, 0.5])}
    g = {"w": jnp.array([0.3, -0.01, 0.0])}
    lr, wd = 0.1, 0.01
    opt = make(name, lr, wd, sign_threshold=0.05)
    upd, _ = opt.update(g, opt.init(w), w)
    new = optax.apply_updates(w, upd)["w"]
    if name == "sgd":
        expected = w["w"] - lr * (g["w"] + wd * w["w"])
    elif name == "sign-sgd":
        expected = w["w"] - lr * (jnp.array([1.0, 0.0, 0.0]) + wd * w["w"])
    else:  # first AdamW step: lr·sign(g) for non-zero g (bias-corrected), plus decoupled decay
        expected = w["w"] - lr * (jnp.sign(g["w"]) * (jnp.abs(g["w"]) > 0) + wd * w["w"])
    np.testing.assert_allclose(new, expected, rtol=1e-4, atol=1e-6)


def test_init_seed_shares_teacher_test_set_and_init_but_not_batches(tiny):
    shared = run_group(tiny, {"seed": [0, 1, 2], "init_seed": [7, 7, 8]})
    alone = run_one(tiny, seed=7)
    # step 0 is the untrained network on the test set: equal for equal init_seed
    np.testing.assert_array_equal(shared["curve_test_error"][0, 0], shared["curve_test_error"][1, 0])
    np.testing.assert_array_equal(shared["curve_test_error"][0, 0], alone["curve_test_error"][0])
    assert shared["curve_test_loss"][0, 0] != shared["curve_test_loss"][2, 0]
    # the training data and batches follow the run seed
    assert shared["curve_train_loss"][0, -1] != shared["curve_train_loss"][1, -1]
    # init_seed = the run's own seed changes nothing
    same = run_group(tiny, {"seed": [5], "init_seed": [5]})
    np.testing.assert_array_equal(same["test_error"], run_one(tiny, seed=5)["test_error"])


def test_drift_is_zero_at_start_and_the_max_weight_change(tiny):
    out = run_one(tiny, seed=0)
    assert out["curve_drift"][0] == 0.0 and out["curve_drift"][-1] > 0.0
    net = tiny.learner
    traced = trajectory(tiny, {"seed": [0]}, observe=lambda p, p0: {"change": jnp.max(jnp.abs(p[0]["w"] - p0[0]["w"]))})
    np.testing.assert_allclose(traced["trace_change"][0], out["curve_drift"], rtol=1e-6)
    assert net.first_layer(net.init_params(jax.random.key(0), 4)).shape == (4, net.width)


def test_trajectory_init_hook_rewinds_and_restricts(tiny):
    net = tiny.learner
    plain = trajectory(tiny, {"seed": [0, 1]})
    same = trajectory(tiny, {"seed": [0, 1]}, init=lambda key, hp: net.init_params(key, tiny.target.n))
    np.testing.assert_array_equal(plain["curve_test_loss"], same["curve_test_loss"])
    np.testing.assert_allclose(plain["test_error"], run_group(tiny, {"seed": [0, 1]})["test_error"], atol=1e-6)

    def zero_units(key, hp):  # per-run extra array: which hidden units start silenced
        params = net.init_params(key, tiny.target.n)
        keep = jnp.ones(net.width).at[hp["dead"]].set(0.0)
        return [{"w": params[0]["w"] * keep, "b": params[0]["b"] * keep}, params[1]]

    out = trajectory(tiny, {"seed": [0, 0], "dead": np.array([[0, 1], [2, 3]])}, init=zero_units)
    assert out["steps"].shape == out["curve_test_error"].shape[1:]
    assert out["curve_test_loss"][0, 0] != out["curve_test_loss"][1, 0]


def test_init_seed_grid_is_one_compile_group(tiny):
    from sparselearn.sweeps.grid import expand, group

    exp = config.override(tiny, sweep={"seeds": 3, "grid": {"train.init_seed": [0, 1]}})
    groups = group(expand(exp))
    assert len(groups) == 1 and groups[0].hps()["init_seed"] == [0, 0, 0, 1, 1, 1]


def _count_compiles(fn) -> int:
    with _compiles() as counter:
        fn()
    return counter.names.count("jit(run_group)")


def test_a_grid_over_label_noise_is_one_compiled_group_equal_to_separate_runs(tiny):
    from sparselearn.sweeps.grid import expand, group

    # n = 11 and 6 runs: a shape no other test compiles
    exp = config.override(tiny, target={"n": 11}, sweep={"seeds": 2, "grid": {"target.noise": [0.0, 0.1, 0.3]}})
    groups = group(expand(exp))
    assert len(groups) == 1 and groups[0].hps()["noise"] == [0.0, 0.0, 0.1, 0.1, 0.3, 0.3]
    box = {}
    assert _count_compiles(lambda: box.update(out=run_group(groups[0].exp, groups[0].hps()))) == 1
    out = box["out"]
    assert len(set(out["curve_train_loss"][:, -1].tolist())) == 6  # noise changes the training data
    for i, run in enumerate(groups[0].runs):
        alone = run_one(run.exp, seed=run.seed)
        for name in METRICS:
            np.testing.assert_allclose(out[name][i], alone[name], atol=1e-6, rtol=0, err_msg=f"run {i} {name}")


@pytest.mark.parametrize("name, level", [("sparse_parity", 0.2), ("staircase", 0.5)])
def test_vmapped_noise_draws_what_the_target_itself_samples(name, level):
    noisy = targets.get(name, n=8, k=3, noise=level)
    clean = targets.get(name, n=8, k=3)
    tp = clean.init(jax.random.key(0))
    key = jax.random.key(4)
    own = jax.vmap(lambda i: noisy.sample(tp, jax.random.fold_in(key, i), 1))(jnp.arange(64))
    x, y = draw_dataset(clean, tp, key, 64, noise=jnp.float32(level))  # the level as the loop passes it
    np.testing.assert_array_equal(x, own[0][:, 0, :])
    # flips are exact; real labels may differ in the last bit (another fusion of y + σ·z)
    np.testing.assert_allclose(y, own[1][:, 0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(y, clean.labels(tp, x))  # the noise did change labels


def test_instance_keys_are_the_keys_of_key_for():
    from sparselearn.rng import key_for
    from sparselearn.train.loop import instance_keys

    keys = jax.jit(instance_keys)(3, 7)
    for name, seed in [("train_data", 3), ("batches", 3), ("teacher", 7), ("test_data", 7), ("init", 7)]:
        np.testing.assert_array_equal(jax.random.key_data(keys[name]), jax.random.key_data(key_for(seed, name)))


EASY = """
target: {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 32}
train: {steps: 300, eval_every: 20, batch: 16, lr: 0.2, eps: 0.05}
data: {m: 256, test_m: 128}
"""
CURVE_OUTPUTS = tuple(f"curve_{name}" for name in CURVES)


def test_stop_at_eps_keeps_steps_to_eps_and_the_curves_up_to_the_stop():
    full_exp = config.loads(EASY)
    stop_exp = config.override(full_exp, train={"stop_at_eps": True})
    hps = {"seed": [0, 1, 2, 3], "m": [256, 256, 256, 16]}  # the last run cannot learn from 16 examples
    full, stop = run_group(full_exp, hps), run_group(stop_exp, hps)
    steps = curve_steps(full_exp)
    np.testing.assert_array_equal(stop["steps_to_eps"], full["steps_to_eps"])
    assert (full["evaluated"] == len(steps)).all()
    assert stop["steps_to_eps"][3] == -1 and stop["evaluated"][3] == len(steps)
    assert stop["evaluated"][:3].max() < len(steps) // 2
    for i, points in enumerate(stop["evaluated"]):
        if full["steps_to_eps"][i] >= 0:  # it stopped at its first point with test error ≤ eps
            assert steps[points - 1] == full["steps_to_eps"][i]
        for name in CURVE_OUTPUTS:
            np.testing.assert_array_equal(stop[name][i, :points], full[name][i, :points], err_msg=name)
            assert np.isnan(stop[name][i, points:]).all()
        assert stop["test_error"][i] == stop["curve_test_error"][i, points - 1]
    np.testing.assert_array_equal(stop["test_error"][3], full["test_error"][3])


def test_a_diverged_run_stops_where_its_test_error_turns_nan_and_the_group_stops_early():
    """A run blown up by its step size can never reach eps: it stops at its first NaN test error,
    so the others, once they have learned, stop the group as if it were not there."""
    full_exp = config.loads(EASY)
    stop_exp = config.override(full_exp, train={"stop_at_eps": True})
    hps = {"seed": [0, 1, 2, 3], "lr": [0.2, 0.2, 0.2, 1e30]}
    full, stop = run_group(full_exp, hps), run_group(stop_exp, hps)
    steps = curve_steps(full_exp)
    np.testing.assert_array_equal(stop["steps_to_eps"], full["steps_to_eps"])
    assert (full["steps_to_eps"][:3] >= 0).all() and full["steps_to_eps"][3] == -1
    assert not full["finite"][3] and not stop["finite"][3]
    first_nan = int(np.flatnonzero(np.isnan(full["curve_test_error"][3]))[0])
    assert stop["evaluated"][3] == first_nan + 1 < len(steps) // 2
    assert stop["evaluated"].max() < len(steps) // 2
    np.testing.assert_array_equal(stop["curve_test_error"][3, :first_nan + 1], full["curve_test_error"][3, :first_nan + 1])
    assert np.isnan(stop["test_error"][3])


def test_progress_comes_at_every_curve_point_with_the_same_results(tiny):
    seen = []
    out = run_group(tiny, {"seed": [0, 1]}, progress=lambda step, steps: seen.append((step, steps)))
    assert seen == [(0, 50), (20, 50), (40, 50), (50, 50)]
    plain = run_group(tiny, {"seed": [0, 1]})
    assert out.keys() == plain.keys()
    for name in plain:
        np.testing.assert_array_equal(out[name], plain[name], err_msg=name)


def test_a_group_whose_runs_all_learn_stops_early_and_compiles_once():
    exp = config.override(config.loads(EASY), train={"stop_at_eps": True})
    seen, box = [], {}

    def both():
        box["plain"] = run_group(exp, {"seed": [0, 1, 2, 3, 4]})  # 5 runs: a shape no other test compiles
        box["stepped"] = run_group(exp, {"seed": [0, 1, 2, 3, 4]}, progress=lambda step, steps: seen.append(step))
        run_group(exp, {"seed": [5, 6, 7, 8, 9]}, progress=lambda step, steps: None)  # same shapes: cached

    with _compiles() as counter:
        both()
    for name in ("run_group", "start_group", "advance_group", "finish_group"):
        assert counter.names.count(f"jit({name})") == 1, (name, counter.names)
    last = int(box["plain"]["evaluated"].max())
    assert last < len(curve_steps(exp)) // 2
    # every point the group evaluated, then its end: it stopped after its last run did
    assert seen == [int(s) for s in curve_steps(exp)[:last]] + [300]
    for name in box["plain"]:
        np.testing.assert_array_equal(box["stepped"][name], box["plain"][name], err_msg=name)


SHARDED = """
import sys, jax, numpy as np
from sparselearn import config
from sparselearn.train import run_group
exp = config.override(config.loads(sys.argv[1]), train={"stop_at_eps": True})
hps = {"seed": [0, 1, 2, 3, 4], "m": [256, 256, 256, 16, 256]}
one = run_group(exp, hps)
seen = []
two = run_group(exp, hps, devices=jax.devices(), progress=lambda s, total: seen.append(s))
assert len(jax.devices()) == 2 and seen[-1] == 300, (jax.devices(), seen)
for name in one:
    np.testing.assert_allclose(two[name], one[name], rtol=1e-6, atol=1e-6, err_msg=name)
print("ok", one["evaluated"].tolist())
"""


def test_stop_at_eps_on_two_devices_equals_one_device():
    import os
    import subprocess
    import sys

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", SHARDED, EASY], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_a_sweep_with_stop_at_eps_stores_curves_up_to_each_stop_and_shows_steps(tmp_path, capsys):
    from sparselearn import load_results
    from sparselearn.sweeps import run

    exp = config.override(config.loads(EASY), experiment="easy", train={"stop_at_eps": True},
                          sweep={"seeds": 2, "grid": {"data.m": [16, 256]}})
    df = run(exp, tmp_path, progress=True)
    runs, curves = load_results(df.attrs["path"], curves=True)
    assert not curves.isna().any().any()  # no padding stored as points
    steps = curve_steps(exp)
    for _, row in runs.iterrows():
        got = curves[curves["run_id"] == row["run_id"]].sort_values("step")
        if row["m"] == 256:  # learned: its curve ends at its first point with test error ≤ eps
            assert got["step"].iloc[-1] == row["steps_to_eps"] < exp.train.steps
        else:
            assert row["steps_to_eps"] is pd.NA or np.isnan(row["steps_to_eps"])
            assert got["step"].tolist() == steps.tolist()
        assert got["test_error"].iloc[-1] == row["test_error"]
    assert "step 20/300" in capsys.readouterr().err  # the bar shows progress within the group
