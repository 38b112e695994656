"""The jointly trained three-layer net of Wang–Nichani–Lee (`wnl_net`), the paper's target
h = C_d·p³ with p = Σ λ_i h₃(x_i), and the `feature_correlation` recorder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sparselearn import figures
from sparselearn.errors import ConfigError
from sparselearn.learners import get
from sparselearn.learners.wnl_net import WNLNet
from sparselearn.targets.hierarchical import Hierarchical


def paper_target(d: int) -> Hierarchical:
    return Hierarchical(n=d, k=3, r=d, q=3, directions="coordinate", g_coeffs=(0, 0, 0, 1))


def test_shapes_and_default_inner_width():
    net = get("wnl_net", m2=7)
    params = net.init_params(jax.random.key(0), 5)
    assert {k: v.shape for k, v in params.items()} == {"v": (5, 25), "u": (25,), "w": (5,), "c": (7,),
                                                       "b": (7,), "a": (7,)}
    x = jax.random.normal(jax.random.key(1), (11, 5))
    assert net.apply(params, x).shape == (11,)
    assert net.feature(params, x).shape == (11,)
    assert net.first_layer(params).shape == (5, 25)
    assert WNLNet(m1=3).init_params(jax.random.key(0), 5)["v"].shape == (5, 3)


def test_bad_widths_are_config_errors():
    with pytest.raises(ConfigError) as e:
        get("wnl_net", m2=0)
    assert e.value.key == "m2"
    with pytest.raises(ConfigError) as e:
        get("wnl_net", m1=0)
    assert e.value.key == "m1"


def test_skip_term_is_the_linear_part_of_the_feature():
    net, plain = WNLNet(m1=4, m2=3), WNLNet(m1=4, m2=3, skip=False)
    params = net.init_params(jax.random.key(0), 3)
    params = {**params, "w": jnp.array([1.0, -2.0, 0.5])}
    x = jax.random.normal(jax.random.key(1), (6, 3))
    np.testing.assert_allclose(net.feature(params, x) - plain.feature(params, x),
                               x @ params["w"] / np.sqrt(3), rtol=1e-5, atol=1e-6)


def test_gradients_match_finite_differences():
    net = WNLNet(m1=6, m2=5)
    params = jax.tree.map(lambda a: a.astype(jnp.float64) if jax.config.jax_enable_x64 else a,
                          net.init_params(jax.random.key(0), 3))
    params = {**params, "w": jnp.array([0.3, -0.2, 0.1]), "b": params["b"] + 0.5}   # away from ReLU kinks
    x = jax.random.normal(jax.random.key(1), (4, 3))
    check_grads(lambda p: net.apply(p, x), (params,), order=1, modes=("rev",), atol=5e-2, rtol=5e-2, eps=1e-3)
    check_grads(lambda p: net.feature(p, x), (params,), order=2, modes=("rev",), atol=5e-2, rtol=5e-2, eps=1e-3)


def _scale(a):
    return float(jnp.sqrt(jnp.mean(a ** 2)))


def _one_adam_step(net, params, x, y, lr):
    """Adam's first step: −lr·sign(grad) on every parameter."""
    grads = jax.grad(lambda p: jnp.mean((net.apply(p, x) - y) ** 2))(params)
    return jax.tree.map(lambda p, g: p - lr * jnp.sign(g), params, grads)


@pytest.mark.parametrize("which", ["m1", "m2"])
def test_mup_scaling_is_width_independent(which):
    """µP: at init the feature and output shrink like width^(−1/2); the change one Adam step
    makes to them is Θ(1), the same for a small and a 16× wider network."""
    d = 6
    t = paper_target(d)
    x, y = t.sample(t.init(jax.random.key(0)), jax.random.key(1), 2048)
    init_scale, moved = {}, {}
    for width in (128, 2048):
        net = WNLNet(m1=width, m2=64) if which == "m1" else WNLNet(m1=64, m2=width)
        at = net.feature if which == "m1" else net.apply
        sq_init, sq_moved = [], []
        for seed in range(6):   # the output at init is nearly one random constant: average over inits
            params = net.init_params(jax.random.key(seed), d)
            after = _one_adam_step(net, params, x, y, 1e-3)
            sq_init.append(_scale(at(params, x)) ** 2 * width)
            sq_moved.append(_scale(at(after, x) - at(params, x)) ** 2)
        init_scale[width], moved[width] = np.sqrt(np.mean(sq_init)), np.sqrt(np.mean(sq_moved))
    assert 0.6 < init_scale[2048] / init_scale[128] < 1.6, init_scale
    assert 0.7 < moved[2048] / moved[128] < 1.4, moved
    assert moved[2048] > 1e-4                       # the step moves it at all


def test_paper_target_has_unit_second_moment_and_is_a_cube_of_p():
    t = paper_target(16)
    tp = t.init(jax.random.key(0))
    x, y = t.sample(tp, jax.random.key(1), 400_000)
    assert abs(float(jnp.mean(y ** 2)) - 1.0) < 0.05       # E[h²] = 1 (heavy tails: p³)
    assert abs(float(jnp.mean(y))) < 0.02
    p = t.feature(tp, x)
    ratio = y / p ** 3                                      # h = C_d·p³: one constant
    assert float(jnp.std(ratio[jnp.abs(p) > 0.1]) / jnp.abs(jnp.mean(ratio))) < 1e-3
    v = tp["v"]                                             # signed coordinate axes: p = Σ λ_i h₃(x_i)
    assert sorted(np.abs(np.asarray(v)).sum(0).tolist()) == [1.0] * 16


def test_trains_on_a_tiny_hierarchical_target():
    """Joint Adam training in smoke size fits h = C·p³ with p = ±x_i (k = 1, d = 4) and learns a
    feature correlated with p. (The feature need not be ∝ p here: the cubic units can carry g too,
    e.g. a feature ∝ p³ has |corr| = 3/√15 ≈ 0.77; at the paper's k = 3 they cannot.)"""
    from sparselearn.store import trace_array

    exp = figures.config({
        "experiment": "wnl_net_tiny",
        "target": {"name": "hierarchical", "n": 4, "k": 1, "r": 1, "directions": "coordinate",
                   "g_coeffs": [0, 0, 0, 1]},
        "learner": {"name": "wnl_net", "m2": 64},
        "train": {"optimizer": "adam", "lr": 0.01, "batch": 128, "steps": 400, "loss": "square", "eval_every": 200,
                  "record": ["feature_correlation"]},
        "data": {"m": 2048, "test_m": 1024}, "sweep": {"seeds": 2}})
    runs, _, traces = figures.sweep([exp], _tmp_store(), traces=True)
    assert (runs["test_error"] < 0.05).all(), runs["test_error"].tolist()
    _, steps, corr = trace_array(traces, "feature_correlation", list(runs["run_id"]))
    assert steps[0] == 0 and np.all(np.abs(corr[:, -1]) > 0.7), corr
    assert np.all(np.abs(corr[:, -1]) > np.abs(corr[:, 0]) + 0.3)


def test_feature_correlation_needs_features():
    """Refused when the config is read, naming train.record and the part without a feature."""
    with pytest.raises(ConfigError) as e:
        figures.config({
            "experiment": "no_feature", "target": {"name": "sparse_parity", "n": 6, "k": 2},
            "learner": {"name": "wnl_net", "m2": 8},
            "train": {"optimizer": "adam", "lr": 0.01, "batch": 8, "steps": 10, "loss": "square",
                      "eval_every": 10, "record": ["feature_correlation"]},
            "data": {"m": 32, "test_m": 32}})
    assert e.value.key == "train.record" and "target sparse_parity" in str(e.value)
    assert "learner" not in str(e.value).split(";")[1]


_STORES = []


def _tmp_store() -> str:
    import tempfile

    _STORES.append(tempfile.TemporaryDirectory())
    return _STORES[-1].name


def test_fitted_feature_correlation_of_layerwise_runs():
    """The second arm's correlation: a layerwise fit on many rows recovers p (k = 2, d = 5), on
    few rows less so."""
    from sparselearn.learners.wnl_net import fitted_feature_correlation

    exp = figures.config({
        "experiment": "layerwise_corr",
        "target": {"name": "hierarchical", "n": 5, "k": 2, "r": 5, "directions": "coordinate", "g_coeffs": [0, 1, 1]},
        "learner": {"name": "layerwise", "width": 64, "degree": 2, "steps": 200},
        "train": {"loss": "square"}, "data": {"m": 2048, "test_m": 1024}})
    corr = fitted_feature_correlation(exp, {"seed": [0, 1, 0], "m": [2048, 2048, 16]})
    assert corr.shape == (3,) and np.all(corr <= 1.0 + 1e-6)
    assert np.all(corr[:2] > 0.9) and corr[2] < corr[0], corr


def test_fitted_feature_correlation_refits_each_run_at_its_own_noise():
    """Runs differing in target.noise were refitted at the config's noise: a run at noise 3
    reported the clean run's 0.90 instead of its own 0.12."""
    import pandas as pd

    from sparselearn.learners.wnl_net import fitted_feature_correlation

    def config(noise):
        return figures.config({
            "experiment": "layerwise_noise",
            "target": {"name": "hierarchical", "n": 6, "k": 2, "r": 3, "q": 2, "noise": noise},
            "learner": {"name": "layerwise", "width": 32, "degree": 2, "steps": 100},
            "train": {"loss": "square"}, "data": {"m": 200, "test_m": 512}})

    table = pd.DataFrame({"seed": [0, 0], "m": [200, 200], "noise": [0.0, 3.0], "lr": [np.nan, np.nan],
                          "init_seed": pd.array([None, None], dtype="Int64")})   # as a store holds them
    both = fitted_feature_correlation(config(0.0), table)
    alone = [fitted_feature_correlation(config(v), {"seed": [0], "m": [200]})[0] for v in (0.0, 3.0)]
    np.testing.assert_allclose(both, alone, rtol=1e-5)
    assert both[1] < both[0] - 0.3, both


def test_pearson_is_numpys_and_zero_for_a_constant_feature():
    """The one correlation of the recorder and of `fitted_feature_correlation`: numpy's Pearson
    coefficient, and 0 (no information), not NaN, when a feature is constant (a dead net)."""
    from sparselearn.train.metrics import pearson

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(512), rng.standard_normal(512)
    b = 0.6 * a + b
    np.testing.assert_allclose(float(pearson(jnp.asarray(a), jnp.asarray(b))), np.corrcoef(a, b)[0, 1], rtol=1e-5)
    assert float(pearson(jnp.full(512, 3.0), jnp.asarray(b))) == 0.0
    assert float(pearson(jnp.asarray(a), jnp.zeros(512))) == 0.0


@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1e15, 1e19, 1e30])
def test_pearson_holds_at_every_scale_of_the_features(scale):
    """A product of the two sums of squares underflows at features of size 1e-12 in float32 (a
    correlation of 4e9) and overflows from 1e15 (0, then NaN); each feature's own scale does not."""
    from sparselearn.train.metrics import pearson

    rng = np.random.default_rng(0)
    a = rng.standard_normal(4096)
    b = 0.7 * a + 0.7 * rng.standard_normal(4096)
    got = float(pearson(jnp.asarray(a * scale, jnp.float32), jnp.asarray(b * scale, jnp.float32)))
    np.testing.assert_allclose(got, np.corrcoef(a, b)[0, 1], rtol=1e-5)
