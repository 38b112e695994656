"""Blocks of runs: a large group advances a block of its runs at a time (`loop.run_block`),
with stop_at_eps only the runs still training, and each block steps exactly as a group of its
own runs would. For a parity, whose data and final metrics do not depend on the group, every
output of a run is then the same as in a group of its block's size."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from sparselearn import config, runtime
from sparselearn.train import loop, spec
from sparselearn.train.loop import BLOCK_BYTES, compile_tier, run_block, run_group, step_bytes

#: the overhead benchmark's sweep: 3-parity on {±1}^20, width 200, 3,000 steps
BENCH = config.loads("""
experiment: blocks
target:  {name: sparse_parity, n: 20, k: 3}
learner: {name: mlp, width: 200, depth: 2}
train:   {optimizer: sgd, lr: 0.1, batch: 32, steps: 3000, loss: hinge, eval_every: 50, eps: 0.0}
data:    {m: 1000, test_m: 1000}
""")

#: 6 runs of a small group, stopping at eps so that blocks also freeze runs that have stopped,
#: with a recorder so that blocks carry traces too
SMALL = """
experiment: blocks_small
target:  {name: sparse_parity, n: 10, k: 2}
learner: {name: mlp, width: 32, depth: 2}
train:   {optimizer: sgd, lr: 0.2, batch: 16, steps: 120, loss: hinge, eval_every: 20, eps: 0.05,
          stop_at_eps: true, record: [unit_norms]}
data:    {m: 256, test_m: 128}
"""
#: blocks are for CPU caches: elsewhere a group advances all at once
CPU_ONLY = pytest.mark.skipif(not runtime.tiers_apply(), reason="blocks apply on CPU only")

HPS = {"seed": np.arange(6), "m": np.array([64, 256, 256, 128, 256, 192]),
       "lr": np.array([0.2, 0.1, 0.3, 0.2, 0.3, 1e-9])}   # the last run never learns


def test_a_full_tier_group_advances_in_blocks_that_fit_the_budget():
    static = spec.static_part(BENCH)
    if not runtime.tiers_apply():
        assert run_block(static, 256) == 256
        return
    assert compile_tier(static, 256) == "full" and compile_tier(static, 16) != "full"
    size = step_bytes(static)
    for shards in (1, 2, 4):
        block = run_block(static, 256, shards)
        share = block // shards
        assert block % shards == 0 and (256 // shards) % share == 0 and share * size <= BLOCK_BYTES
        assert 2 * share * size > BLOCK_BYTES or share == 256 // shards  # the largest such share
    assert run_block(static, 256) == 4          # as run_block's docstring says
    assert run_block(static, 16) == 16          # a mid-tier group that trains every run to the end: all at once
    assert run_block(static, 255, 2) == 255     # runs not split evenly over the devices: all at once
    wide = spec.static_part(config.override(BENCH, learner={"width": 8192}))
    assert step_bytes(wide) > BLOCK_BYTES and run_block(wide, 64) == 64   # no gain from blocks of one run


def test_a_mid_tier_group_advances_in_blocks_from_stop_flops_whether_it_stops_or_not():
    static = spec.static_part(BENCH)
    stopping = spec.static_part(config.override(BENCH, train={"stop_at_eps": True}))
    if not runtime.tiers_apply():
        assert run_block(stopping, 64) == 64
        return
    assert compile_tier(stopping, 64) == "mid" and loop.group_flops(stopping, 64) >= loop.STOP_FLOPS
    assert run_block(stopping, 64) == 4 and run_block(stopping, 64, 2) == 8   # the blocks skip stopped runs
    assert loop.group_flops(stopping, 16) < loop.STOP_FLOPS and run_block(stopping, 16) == 16
    # stopping or not, a group advances alike: a run stops exactly where its full-length twin reaches eps
    for runs, shards in ((16, 1), (64, 1), (64, 2), (256, 1), (256, 2)):
        assert run_block(static, runs, shards) == run_block(stopping, runs, shards)


@pytest.fixture
def blocked(monkeypatch, fresh_programs):
    """Every group of the small config is of the full tier (its loop, start and finish
    compiled with the tiny tier's options, which are quicker to compile and change nothing
    here), with a budget of two runs' step per block: six runs advance as three blocks, a
    group of two all at once."""
    static = spec.static_part(config.loads(SMALL))
    monkeypatch.setattr(loop, "compile_tier", lambda exp, runs: "full")
    for tier in ("full", "quick"):
        monkeypatch.setitem(loop.TIERS, tier, loop.TIERS["tiny"])
    monkeypatch.setattr(loop, "BLOCK_BYTES", 2 * step_bytes(static))
    for cached in (loop.compiled_group, loop.group_pieces):
        cached.cache_clear()
    yield static
    for cached in (loop.compiled_group, loop.group_pieces):
        cached.cache_clear()


@CPU_ONLY
@pytest.mark.parametrize("progress", [False, True], ids=["in one loop", "point by point"])
def test_each_run_trains_as_in_a_group_of_its_blocks_size(blocked, progress):
    assert run_block(blocked, 6) == 2 and run_block(blocked, 2) == 2
    report = (lambda step, steps: None) if progress else None
    whole = run_group(blocked, HPS, progress=report)
    points = len(loop.curve_steps(blocked))
    assert whole["trace_unit_norms"].shape == (6, points, 32)
    assert whole["evaluated"][4] < points == whole["evaluated"][5]   # a block of a stopped run and a running one
    assert whole["evaluated"][:4].max() < points   # and runs that stop while others train on
    for first in (0, 2, 4):
        alone = run_group(blocked, {k: v[first:first + 2] for k, v in HPS.items()}, progress=report)
        for name, value in alone.items():
            np.testing.assert_array_equal(whole[name][first:first + 2], value, err_msg=f"block {first // 2} {name}")


SHARDED = """
import sys, jax, numpy as np
from sparselearn import config, runtime
from sparselearn.train import loop, spec
assert len(jax.devices()) == 2, jax.devices()
static = spec.static_part(config.loads(sys.argv[1]))
loop.compile_tier = lambda exp, runs: "full"
loop.TIERS["full"] = loop.TIERS["quick"] = loop.TIERS["tiny"]
loop.BLOCK_BYTES = 2 * loop.step_bytes(static)   # a share of two runs per device
hps = {"seed": np.arange(8)}
assert loop.run_block(static, 8, 2) == 4
whole = loop.run_group(static, hps, devices=jax.devices())
stepped = loop.run_group(static, hps, devices=jax.devices(), progress=lambda step, steps: None)
for name, value in whole.items():   # point by point, as the command line runs: the same runs
    np.testing.assert_array_equal(stepped[name], value, err_msg=name)
start, train, finish, _ = loop._programs(static, spec.hp_arrays(static, hps), jax.devices(), False)[2]
for program in (start.as_text(), train.as_text(), finish.as_text()):
    for moves in ("all-gather", "all-to-all", "collective-permute"):   # no run changes device
        assert moves not in program, moves
for j in range(2):   # runs 2j, 2j + 1 of each device's half: block j until runs stop
    rows = np.array([2 * j, 2 * j + 1, 4 + 2 * j, 5 + 2 * j])
    alone = loop.run_group(static, {"seed": rows}, devices=jax.devices())
    for name, value in alone.items():
        if "train_loss" in name:   # a mean over a device's runs' batches: its last bit may differ
            np.testing.assert_allclose(whole[name][rows], value, rtol=1e-6, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(whole[name][rows], value, err_msg=f"block {j} {name}")
print("ok")
"""


def test_blocks_take_the_same_share_of_each_devices_runs(tmp_path):
    """Two host devices, each holding four of eight runs: each block of four is two runs of each
    device's half (no run moves between devices) and trains as those four runs would on their
    own, split over the devices; point by point (with progress) the group trains the same runs."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "SPARSELEARN_CACHE": "off",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SHARDED, SMALL], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
