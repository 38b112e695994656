"""Threefry on CPU (sparselearn.train.threefry): the straight-line lowering and the merged
draws give JAX's bits exactly, and merging leaves XLA fewer copies of the hash to compile."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparselearn import config
from sparselearn.train import loop, spec, threefry
from sparselearn.train.threefry import merged_draws

def test_threefry_keeps_its_published_known_answers():
    # threefry lowers on CPU without a loop (use_straight_line_lowering): the same bits
    from jax.extend.random import threefry_2x32

    def hashed(key, count):
        return [int(v) for v in jax.jit(threefry_2x32)(jnp.array(key, jnp.uint32), jnp.array(count, jnp.uint32))]

    assert hashed([0x13198A2E, 0x03707344], [0x243F6A88, 0x85A308D3]) == [0xC4923A9C, 0x483DF7A0]
    assert hashed([0, 0], [0, 0]) == [0x6B200159, 0x99BA4EFE]


def _threefry_reference(k1, k2, x1, x2):
    """Threefry-2x32 (20 rounds) in numpy uint32 arithmetic, on broadcast operands."""
    k1, k2, x1, x2 = (a.astype(np.uint32) for a in np.broadcast_arrays(k1, k2, x1, x2))
    ks = [k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA)]
    x = [x1 + ks[0], x2 + ks[1]]
    for block in range(5):
        for d in ((13, 15, 26, 6), (17, 29, 16, 24))[block % 2]:
            x[0] = x[0] + x[1]
            x[1] = x[0] ^ ((x[1] << np.uint32(d)) | (x[1] >> np.uint32(32 - d)))
        x = [x[0] + ks[(block + 1) % 3], x[1] + ks[(block + 2) % 3] + np.uint32(block + 1)]
    return x


@pytest.mark.parametrize("key_shape,count_shape", [((), (7,)), ((5, 1), (1, 9)), ((3, 1, 1), (3, 4, 2)), ((6,), (6,))])
def test_threefry_lowering_equals_a_numpy_reference_under_broadcasting(key_shape, count_shape):
    from jax._src.random.threefry2x32 import threefry2x32_p

    rng = np.random.default_rng(len(key_shape) + len(count_shape))
    k1, k2 = (rng.integers(0, 2**32, key_shape, dtype=np.uint32) for _ in range(2))
    x1, x2 = (rng.integers(0, 2**32, count_shape, dtype=np.uint32) for _ in range(2))
    ours = jax.jit(lambda *a: threefry2x32_p.bind(*a))(k1, k2, x1, x2)
    with np.errstate(over="ignore"):
        for got, want in zip(ours, _threefry_reference(k1, k2, x1, x2)):
            np.testing.assert_array_equal(np.asarray(got), want)



def _many_draws(seeds):
    """Draws of every kind a run makes, at several dependency depths, for a batch of seeds."""
    def one(seed):
        root = jax.random.fold_in(jax.random.key(0), seed)
        a, b = jax.random.split(jax.random.fold_in(root, 1))
        rows = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(a, i), (3,)))(jnp.arange(5))
        return {"rows": rows, "uniform": jax.random.uniform(b, (4, 2)), "bits": jax.random.bits(root, (7,)),
                "ints": jax.random.randint(jax.random.fold_in(b, 9), (6,), 0, 1000),
                "perm": jax.random.permutation(jax.random.fold_in(root, 2), 8),
                "flips": jax.random.bernoulli(a, 0.3, (2, 3)), "key": jax.random.key_data(b)}
    return jax.vmap(one)(seeds)


def _hash_copies(fn, *args) -> int:
    """Copies of the hash in the compiled program: each one has 20 rotations (shift-left ops)."""
    return jax.jit(fn).lower(*args).compile().as_text().count("shift-left") // 20


def test_merged_draws_give_the_same_bits_and_fewer_hashes_to_compile():
    seeds = jnp.arange(4)
    want, got = jax.jit(_many_draws)(seeds), jax.jit(merged_draws(_many_draws))(seeds)
    for name in want:
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want[name]), err_msg=name)
    plain, merged = _hash_copies(_many_draws, seeds), _hash_copies(merged_draws(_many_draws), seeds)
    assert merged <= plain / 2, (plain, merged)   # XLA did not fuse the merged hash back into each use


@settings(max_examples=4, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple), min_size=1, max_size=3),
       runs=st.integers(1, 3))
def test_merged_draws_equal_plain_ones_for_any_shapes(shapes, runs):
    def draws(seeds):
        def one(seed):
            key = jax.random.fold_in(jax.random.key(1), seed)
            keys = jax.random.split(key, len(shapes))
            return [jax.random.normal(k, s) for k, s in zip(keys, shapes)] + [jax.random.bits(key, shapes[0])]
        return jax.vmap(one)(seeds)

    seeds = jnp.arange(runs)
    for got, want in zip(jax.jit(merged_draws(draws))(seeds), jax.jit(draws)(seeds)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_a_function_without_draws_is_evaluated_as_it_is():
    fn = merged_draws(lambda x: {"y": jnp.sin(x) * 2})
    np.testing.assert_array_equal(jax.jit(fn)(jnp.arange(3.0))["y"], jnp.sin(jnp.arange(3.0)) * 2)


GROUPS = {
    "parity": "target: {name: sparse_parity, n: 10, k: 2}\nlearner: {name: mlp, width: 16, depth: 2}",
    "online, noisy": "target: {name: sparse_parity, n: 10, k: 2, noise: 0.1}\nlearner: {name: mlp, width: 16, depth: 2}"
                     "\ndata: {test_m: 64, online: true}",
    "gaussian": "target: {name: hierarchical, n: 8, k: 2, r: 3}\nlearner: {name: mlp, width: 16, depth: 3}",
    "sparse teacher": "target: {name: sparse_mlp, n: 12, s: 6, k: 2, construction: random}"
                      "\nlearner: {name: mlp, width: 16, depth: 2}",
}


@pytest.mark.parametrize("name", list(GROUPS))
def test_a_group_starts_from_the_same_data_and_weights(name, monkeypatch):
    text = "experiment: t\n" + GROUPS[name] + (
        "\ntrain: {optimizer: sgd, lr: 0.1, batch: 8, steps: 4, eval_every: 2, loss: "
        + ("hinge" if "parity" in GROUPS[name] else "square") + "}"
        + ("" if "data:" in GROUPS[name] else "\ndata: {m: 64, test_m: 32}") + "\nsweep: {seeds: 3}")
    exp = spec.static_part(config.loads(text))
    hps = spec.hp_arrays(exp, {"seed": [0, 1, 5]})
    def start():  # at the tier small groups compile with
        return loop.compile_at(jax.jit(loop.make_train_run(exp).start), "tiny", hps)(hps)

    merged = start()
    monkeypatch.setattr(threefry, "merged_draws", lambda fn: fn)
    plain = start()
    for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(merged), jax.tree.leaves(plain)):
        if jnp.issubdtype(got.dtype, jax.dtypes.prng_key):
            got, want = jax.random.key_data(got), jax.random.key_data(want)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=jax.tree_util.keystr(path))
