"""Merged draws against jax.random (every kind of draw the package makes, under vmap, in
loops, for other key implementations, under a threefry mode set inside the function), and the
keys of `sparselearn.rng`: distinct per (seed, purpose), the same in every process and mode."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn.rng import PURPOSES, key_for, seed_key
from sparselearn.train.loop import instance_keys, instance_seed
from sparselearn.train.threefry import merged_draws


def _assert_same_bits(fn, *args):
    got, want = jax.jit(merged_draws(fn))(*args), jax.jit(fn)(*args)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert a.shape == b.shape and a.dtype == b.dtype, jax.tree_util.keystr(path)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))


def _every_kind(key, shape):
    """One draw of each kind the package makes (and a few it may), from split keys."""
    k = jax.random.split(key, 8)
    return {"uniform": jax.random.uniform(k[0], shape, minval=-1.0), "normal": jax.random.normal(k[1], shape),
            "bernoulli": jax.random.bernoulli(k[2], 0.3, shape), "randint": jax.random.randint(k[3], shape, -5, 1000),
            "permutation": jax.random.permutation(k[4], 11), "choice": jax.random.choice(k[5], 20, (4,), replace=False),
            "rademacher": jax.random.rademacher(k[6], shape),
            "truncated": jax.random.truncated_normal(k[7], -1.5, 2.0, shape),
            "bytes": jax.random.bits(jax.random.fold_in(key, 3), shape, jnp.uint8)}


def test_every_kind_of_draw_merged_equals_jax_random_scalar_batched_and_vmapped():
    def draws(seeds):
        def one(seed):
            key = jax.random.fold_in(jax.random.key(5), seed)
            return _every_kind(key, ()), _every_kind(jax.random.fold_in(key, 1), (2, 3))
        return jax.vmap(one)(seeds), _every_kind(jax.random.key(9), (3,))
    _assert_same_bits(draws, jnp.arange(2))


def test_merged_draws_keep_the_threefry_mode_set_inside_the_function():
    # split and random_bits follow the mode the draw was traced under, not the global one
    mode = jax.config.jax_threefry_partitionable

    def draws(key):
        with jax.threefry_partitionable(not mode):
            inner = jax.random.normal(key, (5,)), jax.random.split(key, 3), jax.random.bits(key, (4,))
        return inner, jax.random.bits(jax.random.fold_in(key, 1), (4,))
    _assert_same_bits(draws, jax.random.key(3))


def test_draws_inside_loops_and_conditionals_stay_as_they_are():
    def draws(key):
        def body(carry, i):
            k = jax.random.fold_in(key, i)
            return carry + jax.random.normal(k, (3,)), jax.random.split(k, 2)
        total, keys = jax.lax.scan(body, jnp.zeros(3), jnp.arange(4))
        bits = jax.lax.fori_loop(0, 3, lambda i, a: a ^ jax.random.bits(jax.random.fold_in(key, i), (2,)),
                                 jnp.zeros(2, jnp.uint32))
        flip = jax.lax.cond(total[0] > 0, lambda k: jax.random.uniform(k, (2,)), lambda k: jnp.zeros(2), keys[0, 1])
        return total, keys, bits, flip, jax.random.normal(keys[1, 0], (3,))
    _assert_same_bits(draws, jax.random.key(2))


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg", "threefry2x32"])
def test_other_key_implementations_are_left_to_jax(impl):
    def draws(key):
        ints = jax.random.randint(jax.random.fold_in(key, 4), (5,), 0, 9)
        return jax.random.normal(key, (3,)), jax.random.split(key, 2), ints
    _assert_same_bits(draws, jax.random.key(3, impl=impl))


def test_a_function_with_effects_is_evaluated_as_it_is():
    seen = []

    def draws(key):
        x = jax.random.normal(key, (3,))
        jax.debug.callback(lambda v: seen.append(np.asarray(v)), x)
        return x, jax.random.uniform(jax.random.fold_in(key, 1), (2,))
    _assert_same_bits(draws, jax.random.key(1))
    assert len(seen) == 2 and np.array_equal(seen[0], seen[1])   # once merged, once plain


# ------------------------------------------------------------------------ keys by purpose

#: key_data of key_for(seed, purpose), computed once; a change here reshuffles every stored run
KNOWN = {(3, "init"): (831513028, 69952697), (0, "teacher"): (4165894930, 804218099)}


def _words(keys) -> np.ndarray:
    data = np.asarray(jax.random.key_data(keys)).astype(np.uint64)
    return data[..., 0] << np.uint64(32) | data[..., 1]


def test_keys_of_different_seeds_and_purposes_never_collide():
    seeds = jnp.arange(1000)
    per_purpose = jax.jit(lambda s: [jax.vmap(seed_key)(s)] + [jax.vmap(lambda x, p=p: key_for(x, p))(s)
                                                              for p in PURPOSES])(seeds)
    words = np.concatenate([_words(k) for k in per_purpose])
    assert words.size == 1000 * (len(PURPOSES) + 1) and np.unique(words).size == words.size
    assert len(set(PURPOSES.values())) == len(PURPOSES)


def test_keys_are_the_same_traced_or_not_in_either_threefry_mode_and_in_a_fresh_process():
    for (seed, purpose), want in KNOWN.items():
        for mode in (True, False):
            with jax.threefry_partitionable(mode):
                assert tuple(np.asarray(jax.random.key_data(key_for(seed, purpose))).tolist()) == want
                traced = jax.jit(lambda s, p=purpose: key_for(s, p))(jnp.int32(seed))
                assert tuple(np.asarray(jax.random.key_data(traced)).tolist()) == want
    code = ("import jax; from sparselearn.rng import key_for; "
            "print([[int(v) for v in jax.random.key_data(key_for(s, p))] for s, p in %r])" % (list(KNOWN),))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "JAX_PLATFORMS": "cpu", "JAX_THREEFRY_PARTITIONABLE": "0"})
    assert eval(out.stdout) == [list(v) for v in KNOWN.values()]


def test_instance_keys_follow_init_seed_for_the_teacher_test_set_and_init_only():
    assert int(instance_seed({"seed": jnp.int32(4), "init_seed": jnp.int32(-1)})) == 4
    assert int(instance_seed({"seed": jnp.int32(4)})) == 4
    assert int(instance_seed({"seed": jnp.int32(4), "init_seed": jnp.int32(0)})) == 0
    keys = instance_keys(3, 7)
    for name, owner in {"train_data": 3, "batches": 3, "teacher": 7, "test_data": 7, "init": 7}.items():
        np.testing.assert_array_equal(_words(keys[name]), _words(key_for(owner, name)), err_msg=name)
