"""The training loop's edges: what a group's `hps` may hold, and a run's independence of the
other runs of its group."""

from __future__ import annotations

import numpy as np
import pytest

from sparselearn import config
from sparselearn.train import prepare_group, run_group, trajectory


def test_a_group_refuses_a_key_that_is_no_run_axis(tiny):
    for entry in (run_group, prepare_group):
        with pytest.raises(ValueError, match=r"\['learning_rate'\] are not run axes"):
            entry(tiny, {"seed": [0], "learning_rate": [0.5]})


def test_an_axis_without_one_value_per_seed_names_the_axis(tiny):
    for entry in (run_group, trajectory):
        with pytest.raises(ValueError, match=r"hps\['lr'\] holds 1 values; expected 2"):
            entry(tiny, {"seed": [0, 1], "lr": [0.1]})


def test_a_run_without_training_examples_is_refused(tiny):
    for entry in (run_group, trajectory):
        with pytest.raises(ValueError, match="m = 0 is below 1"):
            entry(tiny, {"seed": [0, 1], "m": [0, 64]})
    online = config.override(tiny, data={"online": True, "m": config.DataConfig.m}, sweep={"grid": {}})  # m unused there
    assert run_group(online, {"seed": [0], "m": [0]})["evaluated"][0] == 4


@pytest.mark.parametrize("axis, values", [("lr", [0.1, 0.3]), ("weight_decay", [0.0, 0.1]),
                                          ("init_seed", [-1, 4]), ("noise", [0.0, 0.3])])
def test_each_vmapped_value_alone_changes_the_run(tiny, axis, values):
    """Two runs equal in all but one axis train differently: the value reaches the run."""
    out = run_group(tiny, {"seed": [0, 0], axis: values})
    assert out["curve_train_loss"][0, -1] != out["curve_train_loss"][1, -1]


def test_a_run_does_not_depend_on_the_other_runs_of_its_group(tiny):
    """Run (seed 0, m 128) beside other seeds and m values, and alone with data.m = 128."""
    stopping = config.override(tiny, train={"stop_at_eps": True, "steps": 200, "lr": 0.3})
    one = run_group(stopping, {"seed": [3, 0, 9], "m": [256, 128, 16]})
    other = run_group(stopping, {"seed": [0, 5], "m": [128, 64]})
    alone = run_group(config.override(stopping, data={"m": 128}), {"seed": [0]})
    for name, value in alone.items():
        np.testing.assert_allclose(one[name][1], value[0], atol=1e-6, rtol=0, err_msg=name)
        np.testing.assert_allclose(other[name][0], value[0], atol=1e-6, rtol=0, err_msg=name)


@pytest.mark.parametrize("name, extra", [("sgd", {"momentum": 0.9}), ("adam", {}),
                                         ("sign-sgd", {"sign_threshold": 0.05})])
def test_three_optimizer_steps_follow_their_rules(name, extra):
    """Heavy-ball momentum on g + λw; Adam's bias-corrected moments with decoupled decay;
    the thresholded sign with the decay outside it."""
    import jax.numpy as jnp
    import optax

    from sparselearn.train.optimizers import make

    lr, wd = 0.1, 0.01
    grads = np.array([[0.3, -0.01, 0.0], [-0.2, 0.05, 0.1], [0.1, 0.4, -0.3]], np.float32)
    opt = make(name, lr, wd, **extra)
    w = {"w": jnp.array([1.0, -2.0, 0.5])}
    state = opt.init(w)
    v, velocity, m1, m2 = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, 1):
        updates, state = opt.update({"w": jnp.asarray(g)}, state, w)
        w = optax.apply_updates(w, updates)
        if name == "sgd":
            velocity = extra["momentum"] * velocity + g + wd * v
            v = v - lr * velocity
        elif name == "adam":
            m1, m2 = 0.9 * m1 + 0.1 * g, 0.999 * m2 + 0.001 * g * g
            v = v - lr * (m1 / (1 - 0.9 ** t) / (np.sqrt(m2 / (1 - 0.999 ** t)) + 1e-8) + wd * v)
        else:
            v = v - lr * (np.where(np.abs(g) <= extra["sign_threshold"], 0.0, np.sign(g)) + wd * v)
    np.testing.assert_allclose(w["w"], v, rtol=1e-5, atol=1e-6)


def test_a_static_noise_level_other_than_the_configs_is_refused(monkeypatch):
    """A target without `add_noise` keeps its noise static: a run's own level would be ignored."""
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))   # plugins_example.py
    exp = config.loads("target: {name: 'plugins_example:Majority', n: 9, k: 3, noise: 0.1}\n"
                       "learner: {name: mlp, width: 8}\ntrain: {steps: 4, eval_every: 2, batch: 8}\n"
                       "data: {m: 32, test_m: 32}")
    with pytest.raises(ValueError, match=r"hps\['noise'\] differs from target.noise = 0.1"):
        run_group(exp, {"seed": [0, 0], "noise": [0.1, 0.3]})
    assert run_group(exp, {"seed": [0], "noise": [0.1]})["evaluated"][0] == 3   # the config's own level
