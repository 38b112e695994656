"""A diverged net's NaN outputs and weights give NaN losses, errors and drift at every compile
tier, as numpy would: XLA on CPU leaves NaN operands out of max inside fused code
(openxla/xla#21461), which made a NaN output cost 0 under the hinge loss and a NaN first layer
drift by −inf."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn import config
from sparselearn.train import loop, run_one
from sparselearn.train.losses import LOSSES
from sparselearn.train.metrics import max_abs, pointwise_error, weighted_mean

TIERS = ("full", "quick", "tiny")
#: rows this long reduce in vector code, where the NaN was lost (rows of 256 kept it)
WIDE = 2048
#: per loss, the numpy reference ℓ(f, y)
NUMPY = {"hinge": lambda f, y: np.maximum(0.0, 1.0 - y * f), "square": lambda f, y: 0.5 * (f - y) ** 2,
         "logistic": lambda f, y: np.logaddexp(0.0, -y * f), "correlation": lambda f, y: -y * f}


def compiled(fn, *args, options):
    """`fn` vmapped over the rows of its arguments, compiled with XLA `options`, applied."""
    return np.asarray(jax.jit(jax.vmap(fn)).lower(*args).compile(options)(*args))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_nan_output_makes_every_mean_loss_nan_and_finite_outputs_keep_their_loss(name, tier):
    f = np.asarray(jax.random.normal(jax.random.key(0), (4, WIDE)), np.float32) * 2
    y = np.where(np.asarray(jax.random.bernoulli(jax.random.key(1), 0.5, (4, WIDE))), 1.0, -1.0).astype(np.float32)
    f[1, 7] = np.nan
    f[2, :] = np.nan
    got = compiled(lambda f, y: jnp.mean(LOSSES[name](f, y)), f, y, options=loop.tier_options(tier, None))
    want = NUMPY[name](f.astype(np.float64), y).mean(axis=1)
    assert np.isnan(got[1:3]).all() and np.isnan(want[1:3]).all()
    np.testing.assert_allclose(got[[0, 3]], want[[0, 3]], rtol=2e-6)


@pytest.mark.parametrize("tier", TIERS)
def test_error_and_max_abs_of_nan_are_nan(tier):
    rows = [[0.5, -2.0, 1.0, 0.0], [0.5, np.nan, 1.0, 0.0], [np.nan] * 4, [1.0, -np.inf, 0.0, 2.0]]
    v = np.tile(np.array(rows, np.float32), (1, WIDE // 4))
    y = np.ones_like(v)
    errors = compiled(lambda f, y: jnp.mean(pointwise_error(f, y, "classification")), v, y, options=loop.tier_options(tier, None))
    np.testing.assert_array_equal(errors, [0.5, np.nan, np.nan, 0.5])    # f = 0 is wrong, −inf is a sign
    np.testing.assert_array_equal(compiled(max_abs, v, options=loop.tier_options(tier, None)), [2.0, np.nan, np.nan, np.inf])


def test_weighted_mean_is_numpys_average_for_any_weights():
    """Σ w·v / Σ w for weights of any total, as numpy's average (dividing by max(Σ w, 1) halved
    the mean of weights summing to 1/2); weight-0 rows drop out even where v is NaN or inf, and
    with no weight at all the mean is 0, not NaN."""
    rng = np.random.default_rng(0)
    v, w = rng.standard_normal(64).astype(np.float32), rng.uniform(size=64).astype(np.float32)
    for scale in (1e-3, 0.5, 1.0, 40.0):
        np.testing.assert_allclose(float(weighted_mean(jnp.asarray(v), jnp.asarray(w * scale))),
                                   np.average(v, weights=w), rtol=1e-5)
    v[:8], w[:8] = np.nan, 0.0
    v[8:16], w[8:16] = np.inf, 0.0
    np.testing.assert_allclose(float(weighted_mean(jnp.asarray(v), jnp.asarray(w))),
                               np.average(v[16:], weights=w[16:]), rtol=1e-5)
    assert float(weighted_mean(jnp.asarray(v), jnp.zeros(64))) == 0.0

def test_a_diverged_group_at_a_looped_tier_stores_nan_metrics(monkeypatch):
    """At the quick tier (a loop compiled apart), a run blown up by its step size reports NaN
    test error, test loss and drift from its first curve point after the blow-up, not a hinge
    loss of 0, an error of 1 and a drift of −inf."""
    monkeypatch.setattr(loop, "TINY_FLOPS", 0.0)          # this small group compiles at the quick tier
    exp = config.loads("target: {name: sparse_parity, n: 10, k: 2}\nlearner: {name: mlp, width: 32}\n"
                       "train: {lr: 1.0e+30, batch: 16, steps: 40, loss: hinge, eval_every: 20}\n"
                       "data: {m: 256, test_m: 128}")
    assert loop.compile_tier(exp, 1) == "quick"
    out = run_one(exp, seed=0)
    assert not bool(out["finite"])
    for name in ("test_error", "test_loss", "train_loss", "train_error"):
        assert np.isnan(out[name]), name
    for name in ("test_error", "test_loss", "drift"):
        curve = out[f"curve_{name}"]
        assert np.isfinite(curve[0]) and np.isnan(curve[1:]).all(), (name, curve)
