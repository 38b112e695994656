"""The dense comparison teachers of `sparse_mlp`: the parity net (labels are the parity on every
input, certificate and norms) and the bias-shifted random net (its active fraction is the one asked
for); new fields leave the hashes of existing configs unchanged."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparselearn as sl
from sparselearn.errors import ConfigError
from sparselearn.targets.inputs import draw, hypercube_points
from sparselearn.targets.sparse_mlp import SparseMLP, parity_ramps


def all_points(n):
    return hypercube_points(n, 0, 1 << n)


def support(params) -> np.ndarray:
    """The coordinates every unit of a parity teacher reads."""
    w = np.asarray(params["w"])
    assert np.all((w == 0) | (w == 1)) and np.all(w == w[0])
    return np.flatnonzero(w[0])


@pytest.mark.parametrize("n, s, p", [(6, 4, 3), (8, 16, 8), (10, 11, 10), (12, 8, 7), (13, 64, 13)])
def test_parity_teacher_labels_are_the_parity_on_every_input(n, s, p):
    t = SparseMLP(n=n, s=s, k=s, construction="parity")
    params = t.init(jax.random.key(n + s))
    S = support(params)
    assert len(S) == p == t.layout.bits and t.layout.units == p + 1 <= s
    x = all_points(n)
    chi = np.prod(np.asarray(x)[:, S], axis=1)
    assert abs(float(params["scale"]) - 1.0) < 1e-5            # a ±1 function has unit variance
    np.testing.assert_allclose(np.asarray(t.labels(params, x)), chi, atol=1e-4)
    # on c = Σ_S x_i = −p + 2i exactly units 0 … i fire, never within ½ of the kink
    active = np.asarray(t.active_units(params, x))
    plus = (np.asarray(x)[:, S] > 0).sum(1)
    np.testing.assert_array_equal(active, plus + 1)
    pre = np.asarray(x @ params["w"].T - params["b"])
    assert np.abs(pre).min() >= 0.5 - 1e-6
    cert = t.certify(params)
    assert cert.exact and cert.max_active == p + 1 and cert.holds


def test_parity_teacher_with_sampled_scale_and_a_chosen_size():
    t = SparseMLP(n=16, s=64, k=64, construction="parity", bits=5)
    params = t.init(jax.random.key(3))
    S = support(params)
    assert len(S) == 5
    x = draw("hypercube", jax.random.key(4), 4096, 16)
    chi = np.prod(np.asarray(x)[:, S], axis=1)
    scale = float(params["scale"])
    assert abs(scale - 1.0) < 0.05                       # estimated from 2^14 reference draws
    np.testing.assert_allclose(np.asarray(t.labels(params, x)) / scale, chi, atol=1e-4)
    assert t.certify(params).max_active == 6


def test_parity_ramps_are_bounded_and_alternate():
    for p in (1, 2, 7, 19, 40):
        b, u = parity_ramps(p)
        assert np.all(np.abs(u) <= 4) and np.all(np.sign(u[1:]) == -np.sign(u[:-1]))
        c = -p + 2.0 * np.arange(p + 1)
        values = np.maximum(c[:, None] - b[None, :], 0) @ u
        np.testing.assert_allclose(values, (-1.0) ** (p - np.arange(p + 1)), atol=1e-4)


def test_parity_norms_are_reported():
    t = SparseMLP(n=12, s=16, k=16, construction="parity", W=2.0)
    params = t.init(jax.random.key(0))
    norms = t.norms(params)
    p = t.layout.bits
    umax = float(jnp.max(jnp.abs(params["u"])))
    assert norms["W"] == pytest.approx(2.0, rel=1e-5) == pytest.approx(umax * math.sqrt(p), rel=1e-5)
    assert norms["B"] == pytest.approx(umax * (p + 1), rel=1e-5)     # the largest |bias| is p + 1
    S = support(params)
    x = all_points(12)
    np.testing.assert_allclose(np.asarray(t.labels(params, x)) / float(params["scale"]),
                               np.prod(np.asarray(x)[:, S], axis=1), atol=1e-4)


@pytest.mark.parametrize("q", [1 / 64, 0.1, 0.5])
def test_biased_net_active_fraction_is_the_parameter_on_the_enumerated_cube(q):
    """n ≤ 14: each unit's threshold is cut on the whole cube, so every unit fires on a fraction q
    of the inputs up to the cube's granularity 2^−n."""
    t = SparseMLP(n=12, s=64, k=64, construction="biased", active=q)
    params = t.init(jax.random.key(1))
    x = all_points(12)
    per_unit = np.asarray(jnp.mean(x @ params["w"].T - params["b"] > 0, axis=0))
    assert np.all(np.abs(per_unit - q) <= 1.5 / 4096)
    assert np.mean(np.asarray(t.active_units(params, x))) / 64 == pytest.approx(q, abs=1.5 / 4096)
    # the output is scaled to unit variance on the cube, exactly: it is the reference here
    assert float(params["scale"]) > 0
    assert float(jnp.var(t.labels(params, x))) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("q", [0.05, 0.3])
def test_biased_net_active_fraction_matches_within_sampling_error(q):
    """n = 20: thresholds from 2^14 reference draws, fractions measured on 2^16 fresh draws; each
    unit's fraction is within 5 standard errors of q, the mean over units within 5 of the mean's."""
    s, ref, m = 64, 1 << 14, 1 << 16
    t = SparseMLP(n=20, s=s, k=s, construction="biased", active=q)
    params = t.init(jax.random.key(2))
    x = draw("hypercube", jax.random.key(7), m, 20)
    per_unit = np.asarray(jnp.mean(x @ params["w"].T - params["b"] > 0, axis=0))
    se = math.sqrt(q * (1 - q) * (1 / ref + 1 / m))
    assert np.all(np.abs(per_unit - q) < 5 * se)
    assert abs(per_unit.mean() - q) < 5 * se / math.sqrt(s) + 2 / ref


def test_biased_nets_sweep_the_certified_sparsity_at_fixed_s():
    ks = []
    for q in (1 / 64, 1 / 16, 1 / 4, 1 / 2):
        t = SparseMLP(n=10, s=64, k=64, construction="biased", active=q)
        cert = t.certify(t.init(jax.random.key(0)))
        assert cert.exact
        ks.append(cert.max_active)
    assert ks == sorted(ks) and ks[0] < ks[-1] and ks[-1] <= 64
    assert ks[0] < 16                     # about one active unit per input: a sparse net


def test_biased_net_on_gaussian_inputs():
    t = SparseMLP(n=16, s=32, k=32, construction="biased", active=0.2, inputs="gaussian")
    params = t.init(jax.random.key(0))
    x = draw("gaussian", jax.random.key(5), 1 << 15, 16)
    assert float(jnp.mean(t.active_units(params, x))) / 32 == pytest.approx(0.2, abs=0.02)


@pytest.mark.parametrize("fields, key", [
    (dict(construction="parity", k=2), "k"),
    (dict(construction="parity", k=1, s=1), "s"),
    (dict(construction="parity", bits=16), "bits"),
    (dict(construction="biased"), "active"),
    (dict(construction="biased", active=1.0), "active"),
    (dict(construction="dense", active=0.5), "active"),
    (dict(construction="random", k=2, active=0.5), "active"),
    (dict(construction="parity", inputs="gaussian"), "construction"),
])
def test_bad_fields_name_the_key(fields, key):
    base = dict(n=12, s=16, k=16)
    with pytest.raises(ConfigError) as err:
        sl.targets.get("sparse_mlp", **{**base, **fields})
    assert err.value.key == key


def test_the_new_field_leaves_existing_config_hashes_unchanged():
    """A sparse_mlp config that does not set `active` resolves, dumps and hashes as before the
    field existed (the hash below was computed then)."""
    text = """
target:  {name: sparse_mlp, n: 16, s: 64, k: 4, construction: random, inputs: hypercube}
learner: {name: mlp, width: 256, depth: 2}
train:   {optimizer: adam, lr: 0.003, batch: 64, steps: 2000, loss: square, weight_decay: 0.0,
          eval_every: 100, eps: 0.1}
data:    {m: 4096, test_m: 2048}
sweep:   {seeds: 4, grid: {data.m: [256, 1024, 4096]}}
"""
    exp = sl.config.loads(text, name="sparse_mlp")
    assert "active" not in sl.config.to_plain(exp)["target"]
    assert sl.config.config_hash(exp) == "65d38e28fb8c"
    biased = sl.config.override(exp, target={"construction": "biased", "k": 64, "active": 0.25})
    assert sl.config.to_plain(biased)["target"]["active"] == 0.25
    assert sl.config.config_hash(sl.config.loads(sl.config.dump(biased))) == sl.config.config_hash(biased)


def test_adkm_d1_shared_fits_are_the_lowdegree_learners_fits():
    """ADKM-D1 fits every teacher and degree from one Walsh transform of the sample; the
    coefficients are those `LowDegree.fit` finds on the same rows."""
    from pathlib import Path

    from sparselearn import analysis, figures
    from sparselearn.learners.lowdegree import LowDegree

    fig = figures.load(Path(__file__).resolve().parents[1] / "paper_figs" / "fig_adkm_d1.py")
    n, m = 6, 300
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 1 << n))
    idx = rng.integers(0, 1 << n, m)
    fits = fig.shared_fits(values, idx, [1, 3])
    x = all_points(n)[idx]
    for d, coef in fits.items():
        order = {int(mask): i for i, mask in enumerate(fig.basis(n, d))}
        learner = LowDegree(degree=d, basis="walsh", ridge=fig.RIDGE)
        for t in range(2):
            ref = np.asarray(learner.fit(jax.random.key(0), x, jnp.asarray(values[t, idx], jnp.float32))["coef"])
            mine = np.array([coef[t, order[analysis.mask_of(term)]] for term in learner.terms(n)])
            np.testing.assert_allclose(mine, ref, atol=2e-4)
