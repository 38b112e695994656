"""GF(2) elimination against a plain rank computation, and frozen polymlp layers through the
training loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn import config, theory
from sparselearn.learners.gf2 import GF2, _lightest, pack, solve
from sparselearn.train.loop import trajectory


def _gf2_rank(bits: np.ndarray) -> int:
    """Rank over GF(2) of a 0/1 matrix by plain row reduction (one row at a time)."""
    a = bits.astype(np.uint8).copy()
    r = 0
    for col in range(a.shape[1]):
        rows = r + np.flatnonzero(a[r:, col])
        if rows.size == 0:
            continue
        a[[r, rows[0]]] = a[[rows[0], r]]
        hit = a[:, col].astype(bool)
        hit[r] = False
        a[hit] ^= a[r]
        r += 1
        if r == a.shape[0]:
            break
    return r


@pytest.mark.parametrize("n", [1, 63, 64, 65, 128])
def test_gf2_rank_and_support_on_word_boundaries_with_repeated_rows(n):
    rng = np.random.default_rng(n)
    m = int(theory.gf2_samples(n, 2.0 ** -10))
    assert m == n + 10 or n == 1                            # n = 1: 1 − 2^−m ≥ 1 − 2^−10 at m = 10
    for k in (0, n // 2, n):
        support = np.sort(rng.permutation(n)[:k])
        x = rng.choice([-1.0, 1.0], size=(m, n))
        x = np.concatenate([x, x[: m // 2]])                   # repeated rows add no rank
        y = np.prod(x[:, support], axis=1)
        params = GF2().fit(None, x, y)
        assert params["rank"] == _gf2_rank(x < 0)
        if params["rank"] == n:
            np.testing.assert_array_equal(params["support"], support)
        np.testing.assert_array_equal(GF2().apply(params, x), y)


@pytest.mark.parametrize("block", [0, 2, 5, 16])
def test_gf2_chunked_enumeration_returns_the_first_lightest_solution(block):
    """Every block size gives what a full enumeration in index order gives, ties included."""
    rng = np.random.default_rng(block)
    for n in (7, 70):
        for count in (1, 4, 7):
            start = rng.random(n) < 0.5
            vectors = rng.random((count, n)) < 0.3
            combos = np.array([[(i >> j) & 1 for j in range(count)] for i in range(2 ** count)], bool)
            every = start ^ (combos.astype(np.uint8) @ vectors.astype(np.uint8) % 2).astype(bool)
            first = every[np.argmin(every.sum(axis=1))]
            got = _lightest(pack(start[None])[0], pack(vectors), n, block=block)
            np.testing.assert_array_equal(got, first)


def test_gf2_sparsest_enumeration_memory_stays_bounded_at_a_large_nullity():
    """Nullity 20 on 1000 bits: 2^20 candidates of 16 words would hold 128 MiB at once (twice
    that while doubling); enumerated in blocks the peak stays near 2^16 rows."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n, k = 1000, 3
    x = rng.choice([-1.0, 1.0], size=(n - 20, n))
    y = np.prod(x[:, :k], axis=1)
    tracemalloc.start()
    params = solve(x, y, max_nullity=20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert params["nullity"] >= 20
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"
    np.testing.assert_array_equal(np.prod(x[:, params["support"]], axis=1), y)
    assert len(params["support"]) <= k


@pytest.mark.parametrize("optimizer", ["adam", "sign-sgd", "sgd"])
def test_frozen_polymlp_layers_are_unchanged_by_training(optimizer):
    exp = config.loads(
        "target: {name: sparse_parity, n: 10, k: 2}\n"
        "learner: {name: polymlp, hidden: [4, 2], power: 2, trained_layers: [1]}\n"
        f"train: {{optimizer: {optimizer}, lr: 0.001, batch: 16, steps: 40, eval_every: 20, loss: square}}\n"
        "data: {m: 64, test_m: 64}")

    def moved(p, p0):
        diff = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), p, p0)
        return {"frozen": jnp.maximum(jnp.max(jnp.stack(jax.tree.leaves(diff["layers"][0]))),
                                      jnp.max(jnp.stack(jax.tree.leaves(diff["readout"])))),
                "trained": diff["layers"][1]["w"]}

    out = trajectory(exp, {"seed": [0]}, observe=moved)
    assert float(out["trace_frozen"][0, -1]) == 0.0
    assert float(out["trace_trained"][0, -1]) > 0.0



@pytest.mark.parametrize("where", ["train", "grid"])
def test_trained_layers_with_weight_decay_is_a_config_error(where):
    """Frozen layers would shrink under weight decay (it acts on every leaf): refused, naming the key."""
    from sparselearn import config
    from sparselearn.errors import ConfigError

    raw = {"experiment": "frozen", "target": {"name": "sparse_parity", "n": 6, "k": 2},
           "learner": {"name": "polymlp", "hidden": [4, 2], "power": 2, "trained_layers": [1]},
           "train": {"optimizer": "sgd", "lr": 0.01, "steps": 10, "eval_every": 5, "loss": "square"},
           "data": {"m": 64, "test_m": 64}}
    config.from_dict(raw)  # no decay: fine
    if where == "train":
        raw["train"]["weight_decay"] = 0.01
    else:
        raw["sweep"] = {"grid": {"train.weight_decay": [0.0, 0.01]}}
    with pytest.raises(ConfigError) as e:
        config.from_dict(raw)
    assert e.value.key == "train.weight_decay"


def test_a_relu_neuron_refuses_a_period_it_would_not_read():
    from sparselearn import learners
    from sparselearn.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        learners.get("neuron", activation="relu", period=2.0)
    assert err.value.key == "period"
    learners.get("neuron", activation="relu")
    learners.get("neuron", activation="sin", period=2.0)
