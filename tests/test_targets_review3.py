"""Targets, third review: B alone on random Hamming balls that can draw antipodal codewords, the
sample count of a sampled certificate, moe's unused dictionary fields, the class balance of
sparse_mlp_sign on Gaussian inputs, and the unused `SparseMLP.certified`."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from sparselearn.errors import ConfigError
from sparselearn.targets import sparse_mlp
from sparselearn.targets.inputs import certify_max
from sparselearn.targets.moe import MoE
from sparselearn.targets.sparse_mlp import SparseMLP, SparseMLPSign


# ----------------------------------------------------------------------------- B alone, random
@pytest.mark.parametrize("fields", [
    dict(n=3, s=2, k=1),                # default bits = 3, 2 codewords: antipodal w.p. 1/7 (NaN on 5 of 40 seeds)
    dict(n=6, s=2, k=1, bits=5),
    dict(n=8, s=5, k=2, bits=3),        # s/k = 2 with a remainder
])
def test_b_alone_where_antipodal_codewords_can_zero_every_bias_is_a_config_error(fields):
    with pytest.raises(ConfigError) as err:
        SparseMLP(construction="random", B=1.0, **fields)
    assert err.value.key == "B" and "antipodal" in str(err.value) and "W" in str(err.value)
    SparseMLP(construction="random", B=1.0, W=1.0, **fields)      # with W it is a config


@pytest.mark.parametrize("fields", [
    dict(n=2, s=2, k=1),                # bits = 2 (even): an antipodal pair has bias 1
    dict(n=6, s=2, k=1, bits=4),
    dict(n=3, s=3, k=1),                # 3 codewords: never all pairwise antipodal
    dict(n=4, s=6, k=2),
])
def test_b_alone_that_is_allowed_scales_every_draw_to_B(fields):
    t = SparseMLP(construction="random", B=1.0, **fields)
    tp = jax.vmap(t.init)(jax.random.split(jax.random.key(0), 64))
    scale = np.asarray(tp["scale"])
    assert np.all(np.isfinite(scale)) and np.all(scale > 0)
    bmax = np.max(np.abs(np.asarray(tp["u"])), axis=1) * np.max(np.abs(np.asarray(tp["b"])), axis=1)
    np.testing.assert_allclose(bmax, 1.0, rtol=1e-5)


# ----------------------------------------------------------------------------- certify samples
def _positive(_, x):
    return (x > 0).sum(1)


@pytest.mark.parametrize("samples", [0, -1])
def test_a_sampled_certificate_needs_at_least_one_sample(samples):
    with pytest.raises(ValueError, match="samples"):
        certify_max(_positive, None, 30, "gaussian", k=30, samples=samples)
    assert certify_max(_positive, None, 30, "gaussian", k=30, samples=1).n_inputs == 1


# ----------------------------------------------------------------------------- moe
def test_moe_dictionary_fields_on_other_inputs_say_they_are_unused():
    with pytest.raises(ConfigError) as err:
        MoE(n=8, atoms=2, nonzeros=3)                   # out of range too: unused is the error
    assert err.value.key in ("atoms", "nonzeros") and "inputs='dictionary'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        MoE(n=8, inputs="dictionary", atoms=2, nonzeros=3)
    assert err.value.key == "nonzeros" and "≤ atoms = 2" in str(err.value)


# ----------------------------------------------------------------------------- sign balance
def test_sign_teacher_whose_labels_are_nearly_one_class_on_gaussian_inputs_is_refused():
    """A common high threshold: h = 0 on ~99.9% of the Gaussian inputs, so a constant predictor
    would pass eps = 0.05."""
    with pytest.raises(ConfigError) as err:
        SparseMLPSign(n=8, s=32, k=2, inputs="gaussian")
    assert err.value.key == "k" and "rarer label has mass 0.0" in str(err.value)


def test_a_balanced_gaussian_sign_teacher_is_measured_once_per_config():
    t = SparseMLPSign(n=8, s=8, k=8, construction="dense", inputs="gaussian")
    mass = t.probe_minority()
    assert sparse_mlp.MIN_MINORITY <= mass <= 0.5
    tp = t.init(jax.random.key(5))
    x, y = t.sample(tp, jax.random.key(6), 4096)
    assert abs(float(np.mean(np.asarray(y) > 0)) - 0.5) < 0.1
    assert float(t.minority(tp, x)) == pytest.approx(min(np.mean(np.asarray(y) > 0), np.mean(np.asarray(y) < 0)))
    before = len(sparse_mlp._MINORITY)
    assert SparseMLPSign(n=8, s=8, k=8, construction="dense", inputs="gaussian", noise=0.1).probe_minority() == mass
    assert len(sparse_mlp._MINORITY) == before         # label noise is not part of the probe


# ----------------------------------------------------------------------------- removed
def test_sparse_mlp_has_no_unused_certified_property():
    assert not hasattr(SparseMLP, "certified")
