"""The training loop's data semantics against its docs: nested datasets across m, train metrics
over a run's own rows, label noise on training labels only, online runs, init_seed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn import config
from sparselearn.contracts import sampler
from sparselearn.rng import key_for
from sparselearn.train import loop, run_group, spec, trajectory
from sparselearn.train.losses import LOSSES
from sparselearn.train.metrics import pointwise_error

BASE = """
target: {name: %s, n: 10, k: 2, noise: %s}
learner: {name: mlp, width: 16, depth: 2}
train: {lr: 0.05, batch: 8, steps: 30, eval_every: 10, loss: %s}
data: {m: 64, test_m: 256%s}
"""


def _exp(target="sparse_parity", noise=0.0, loss="hinge", data=""):
    return config.loads(BASE % (target, noise, loss, data))


def _final_params(exp, hps):
    """The outputs of `trajectory(exp, hps)` and each run's final parameters."""
    shape = exp.learner.init_params(jax.random.key(0), exp.target.n)
    out = trajectory(exp, hps, observe=lambda p, p0: {f"p{j}": leaf for j, leaf in enumerate(jax.tree.leaves(p))})
    runs = len(hps["seed"])
    params = [jax.tree.unflatten(jax.tree.structure(shape),
                                 [out[f"trace_p{j}"][i, -1] for j in range(len(jax.tree.leaves(shape)))])
              for i in range(runs)]
    return out, params


def _data(exp, seed, instance=None, noise=None):
    static = spec.static_part(exp)
    noise = exp.target.noise if noise is None else noise
    return jax.jit(loop.make_data(static))(seed, seed if instance is None else instance, jnp.float32(noise))


def test_a_smaller_m_sees_a_prefix_of_the_larger_sample_and_the_same_teacher():
    big, small = _exp(noise=0.2), config.override(_exp(noise=0.2), data={"m": 16})
    tb, xb, yb, xtb, ytb = _data(big, 3)
    ts, xs, ys, xts, yts = _data(small, 3)
    np.testing.assert_array_equal(tb["support"], ts["support"])
    np.testing.assert_array_equal(xb[:16], xs)
    np.testing.assert_array_equal(yb[:16], ys)  # the noise flips too
    np.testing.assert_array_equal(xtb, xts)
    np.testing.assert_array_equal(ytb, yts)


def test_final_train_metrics_cover_exactly_the_runs_first_m_rows():
    exp = _exp()
    out, params = _final_params(exp, {"seed": [0, 0], "m": [16, 64]})
    _, x, y, _, _ = _data(exp, 0)
    for i, m in enumerate([16, 64]):
        f = exp.learner.apply(params[i], x)
        own = (jnp.mean(pointwise_error(f[:m], y[:m], "classification")), jnp.mean(LOSSES["hinge"](f[:m], y[:m])))
        np.testing.assert_allclose([out["train_error"][i], out["train_loss"][i]], own, rtol=1e-6, atol=1e-7)
    # the m = 16 run fits its rows, not the group's other 48: all 64 rows would read otherwise
    f = exp.learner.apply(params[0], x)
    assert abs(float(jnp.mean(LOSSES["hinge"](f, y))) - float(out["train_loss"][0])) > 0.05


@pytest.mark.parametrize("target, noise, loss, task",
                         [("sparse_parity", 0.3, "hinge", "classification"), ("staircase", 0.8, "square", "regression")])
def test_test_metrics_use_clean_labels_and_train_metrics_the_noisy_ones(target, noise, loss, task):
    exp = _exp(target, noise, loss)
    out, (params,) = _final_params(exp, {"seed": [0]})
    teacher, x, y, x_test, y_test = _data(exp, 0)
    t = exp.target
    clean_test = t.labels(teacher, x_test)
    np.testing.assert_array_equal(y_test, clean_test)
    f = exp.learner.apply(params, x_test)
    np.testing.assert_allclose(out["test_error"][0], jnp.mean(pointwise_error(f, clean_test, task)), rtol=1e-6)
    # the test set drawn with the training noise would give another error
    noisy_test = sampler(spec.static_part(exp).target)(teacher, key_for(0, "test_data"), exp.data.test_m,
                                                       jnp.float32(noise))[1]
    assert abs(float(jnp.mean(pointwise_error(f, noisy_test, task))) - float(out["test_error"][0])) > 0.02
    # training labels carry the noise, and the train error is measured against them
    f_train = exp.learner.apply(params, x)
    assert float(jnp.mean(jnp.abs(y - t.labels(teacher, x)))) > 0.1
    np.testing.assert_allclose(out["train_error"][0], jnp.mean(pointwise_error(f_train, y, task)), rtol=1e-6)


def test_online_runs_ignore_m_and_report_the_last_windows_train_metrics():
    exp = config.loads((BASE % ("sparse_parity", 0.1, "hinge", ", online: true")).replace("m: 64, ", ""))
    out = run_group(exp, {"seed": [0, 0, 1], "m": [5, 64, 64]})
    for name in ("test_error", "train_error", "train_loss", "curve_train_loss", "curve_test_loss"):
        np.testing.assert_array_equal(out[name][0], out[name][1], err_msg=name)
    assert out["curve_train_loss"][0, -1] != out["curve_train_loss"][2, -1]  # the seed's batches
    np.testing.assert_array_equal(out["train_error"], out["curve_train_error"][:, -1])
    np.testing.assert_array_equal(out["train_loss"], out["curve_train_loss"][:, -1])
    # the fixed test set is the offline run's: same teacher and test key
    _, x_train, _, x_test, y_test = _data(exp, 0)
    offline = _data(config.override(exp, data={"online": False}), 0)
    assert x_train is None
    np.testing.assert_array_equal(x_test, offline[3])
    np.testing.assert_array_equal(y_test, offline[4])


def test_init_seed_moves_teacher_and_test_set_and_keeps_the_seeds_inputs_and_flips():
    exp = _exp(noise=0.3)
    t = exp.target
    (ta, xa, ya, xta, _), (tb, xb, yb, xtb, _) = _data(exp, 0, 5), _data(exp, 0, 6)
    assert not np.array_equal(ta["support"], tb["support"]) and not np.array_equal(xta, xtb)
    np.testing.assert_array_equal(xa, xb)  # the run seed's inputs
    # the run seed's label flips, on each instance's own teacher
    np.testing.assert_array_equal(ya != t.labels(ta, xa), yb != t.labels(tb, xb))
    other = _data(exp, 1, 5)
    np.testing.assert_array_equal(other[0]["support"], ta["support"])
    np.testing.assert_array_equal(other[3], xta)
    assert not np.array_equal(other[1], xa)
