"""Merged draws on empty shapes and under either threefry mode; teacher fields that set no scale
or no sparsity; lottery tickets narrower than their top-k."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn import config
from sparselearn.errors import ConfigError
from sparselearn.targets.sparse_mlp import SparseMLP
from sparselearn.train.threefry import merged_draws


def _assert_same_bits(fn, *args):
    got, want = jax.jit(merged_draws(fn))(*args), jax.jit(fn)(*args)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_merged_draws_of_empty_shapes_equal_plain_ones():
    key = jax.random.key(3)
    _assert_same_bits(lambda k: (jax.random.normal(k, (0,)), jax.random.uniform(jax.random.fold_in(k, 1), (5,))), key)
    _assert_same_bits(lambda k: (jax.random.bits(k, (0, 3)), jax.random.normal(jax.random.fold_in(k, 1), (0, 7))), key)
    _assert_same_bits(lambda k: (jax.random.split(k, 0), jax.random.normal(k, (2,))), key)
    _assert_same_bits(lambda seeds: jax.vmap(lambda s: jax.random.normal(jax.random.fold_in(key, s), (3,)))(seeds),
                      jnp.arange(0))


def test_merged_draws_follow_the_threefry_mode():
    key = jax.random.key(3)
    before = jax.config.jax_threefry_partitionable
    try:
        for mode in (before, not before):   # the same shapes in both modes: no stale implementation
            jax.config.update("jax_threefry_partitionable", mode)
            _assert_same_bits(lambda k: (jax.random.normal(k, (5,)), jax.random.bits(jax.random.fold_in(k, 1), (3,))),
                              key)
    finally:
        jax.config.update("jax_threefry_partitionable", before)


@pytest.mark.parametrize("fields", [dict(construction="dense", s=8, k=8),
                                    dict(construction="random", inputs="gaussian", s=4, k=4)])
def test_B_alone_on_a_teacher_without_biases_names_B(fields):
    with pytest.raises(ConfigError) as err:        # B / max|b| = B / 0 would scale u by ~1e30
        SparseMLP(n=8, B=1.0, **fields)
    assert err.value.key == "B"
    t = SparseMLP(n=8, B=1.0, W=2.0, **fields)      # with W the scale is W's
    assert t.norms(t.init(jax.random.key(0)))["W"] == pytest.approx(2.0, rel=1e-5)


def test_sparse_mlp_rejects_dictionary_inputs():
    with pytest.raises(ConfigError) as err:        # the constructions are k-sparse on the cube only
        SparseMLP(n=8, s=8, k=2, inputs="dictionary")
    assert err.value.key == "inputs"


def test_a_ticket_narrower_than_the_top_k_is_a_config_error_naming_train_rewind():
    text = ("experiment: t\ntarget: {name: sparse_parity, n: 10, k: 2}\n"
            "learner: {name: mlp, width: 16, depth: 2, activation: topk, k: 8}\n"
            "train: {steps: 4, batch: 8, eval_every: 2, rewind: 4}\ndata: {m: 64, test_m: 32}")
    with pytest.raises(ConfigError) as err:
        config.loads(text)
    assert err.value.key == "train.rewind"
    config.loads(text.replace("rewind: 4", "rewind: 8"))


def test_a_ticket_of_an_ntk_network_is_a_config_error_naming_train_rewind():
    """A width-K ntk net divides by √K, not √width: its step-0 output would be √(width / K)
    times the kept units' (4.47× at width 100, K = 5), so the ticket is refused."""
    text = ("experiment: t\ntarget: {name: sparse_parity, n: 10, k: 2}\n"
            "learner: {name: mlp, width: 100, depth: 2, parametrization: ntk}\n"
            "train: {steps: 4, batch: 8, eval_every: 2, rewind: 5}\ndata: {m: 64, test_m: 32}")
    with pytest.raises(ConfigError, match="parametrization") as err:
        config.loads(text)
    assert err.value.key == "train.rewind"
    config.loads(text.replace(", parametrization: ntk", ""))
