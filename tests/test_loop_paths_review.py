"""One group along every execution path of `loop.run_group`: one whole-group program, three
programs with the loop compiled apart (`LOOPED_TIERS`), point by point with a progress callback
(`_stepped`), blocks of runs (`run_block`) and two host devices (`_shard`, padded). Every path
compiles with the tiny tier's options here, so what is compared is the path, not XLA's
options; on one device every output agrees bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from sparselearn import config, runtime
from sparselearn.train import loop, spec

CPU_ONLY = pytest.mark.skipif(not runtime.tiers_apply(), reason="tiers and blocks apply on CPU only")

PARITY = """
experiment: paths
target:  {name: sparse_parity, n: 8, k: 2}
learner: {name: mlp, width: 16, depth: 2}
train:   {optimizer: sgd, lr: 0.05, batch: 16, steps: 70, loss: hinge, eval_every: 10, eps: 0.1,
          stop_at_eps: true, record: [unit_norms]}
data:    {m: 128, test_m: 64}
"""
REGRESSION = """
experiment: paths_reg
target:  {name: sparse_mlp, n: 8, s: 8, k: 2, construction: random, inputs: hypercube}
learner: {name: mlp, width: 16, depth: 2}
train:   {optimizer: adam, lr: 0.01, batch: 16, steps: 60, loss: square, eval_every: 20, eps: 0.9,
          record: [unit_norms]}
data:    {m: 128, test_m: 64}
"""
#: runs of one group with different m and lr (scaled from the config's)
RUNS = {"seed": np.array([0, 1, 2]), "m": np.array([64, 128, 96]), "lr": np.array([1.0, 2.0, 0.5])}

#: path → (compile tier, blocks of how many runs' step bytes, progress)
PATHS = {"whole": ("tiny", None, False), "looped": ("quick", None, False), "stepped": ("tiny", None, True),
         "stepped apart": ("quick", None, True), "blocks": ("full", 2, False),
         "blocks stepped": ("full", 2, True)}


def _static(text: str, **train) -> config.Experiment:
    return spec.static_part(config.override(config.loads(text), train=train) if train else config.loads(text))


def _hps(static) -> dict:
    return {**RUNS, "lr": RUNS["lr"] * static.train.lr}


@pytest.fixture(scope="module")
def trained() -> dict:
    """What `along` computed in this module, by (static, path, hps): the same group along the
    same path gives the same outputs in every test that asks for it."""
    return {}


@pytest.fixture
def along(monkeypatch, fresh_programs, trained):
    """`along(static, path, hps)`: run_group's outputs along `path` (a key of PATHS) and the
    steps it reported to its progress callback (None without one)."""
    for tier in ("quick", "mid", "full"):
        monkeypatch.setitem(loop.TIERS, tier, loop.TIERS["tiny"])

    def run(static, path, hps):
        tier, block, progress = PATHS[path]
        for cached in (loop.compiled_group, loop.group_pieces):
            cached.cache_clear()
        monkeypatch.setattr(loop, "compile_tier", lambda exp, runs: tier)
        monkeypatch.setattr(loop, "BLOCK_BYTES", int((block or 0) * loop.step_bytes(static)) or loop.BLOCK_BYTES)
        key = (static, path, tuple((name, np.asarray(v).tobytes()) for name, v in sorted(hps.items())))
        if key not in trained:
            reported = []
            out = loop.run_group(static, hps,
                                 progress=(lambda step, steps: reported.append(step)) if progress else None)
            trained[key] = out, (reported if progress else None)
        return trained[key]

    yield run
    for cached in (loop.compiled_group, loop.group_pieces):
        cached.cache_clear()


def _assert_same(out, ref, label):
    assert sorted(out) == sorted(ref), label
    for name, value in ref.items():
        np.testing.assert_array_equal(out[name], value, err_msg=f"{label}: {name}")


@CPU_ONLY
def test_a_stopping_group_reports_every_point_it_evaluated(along):
    """Point by point, a group whose runs all stop at eps reports each point it evaluated, up to
    its last, then the end (it reported neither its last point nor the step before the end)."""
    static = _static(PARITY)
    out, reported = along(static, "stepped", _hps(static))
    points, last = loop.curve_steps(static), out["evaluated"].max()
    assert last < len(points)   # every run stopped early
    assert reported == [*points[:last].tolist(), static.train.steps]


@CPU_ONLY
@pytest.mark.parametrize("path, like", [("looped", "whole"), ("stepped", "whole"), ("blocks stepped", "blocks")])
def test_a_stopping_group_trains_alike_along_every_path(along, path, like):
    """Runs of different m and lr that stop at eps at different points: every output, curves,
    steps_to_eps and traces included, is the same bit for bit along `path` as along `like`.
    (Blocks of one run may round a mean's last bit unlike the whole group: a group of one.)"""
    static = _static(PARITY)
    hps = _hps(static)
    ref, _ = along(static, like, hps)
    assert len(set(ref["evaluated"].tolist())) > 1
    out, _ = along(static, path, hps)
    assert loop.run_block(static, 3) == (1 if "blocks" in path else 3)
    _assert_same(out, ref, path)


@CPU_ONLY
def test_a_stopping_run_is_its_full_length_twin_cut_at_eps(along):
    """With stop_at_eps a run's curves and traces are those of the run trained to the end, up to
    the point where it reached eps, with the same steps_to_eps; the rest is NaN."""
    stopping = _static(PARITY)
    full = _static(PARITY, stop_at_eps=False)
    hps = _hps(stopping)
    cut, _ = along(stopping, "whole", hps)
    whole, _ = along(full, "whole", hps)
    np.testing.assert_array_equal(cut["steps_to_eps"], whole["steps_to_eps"])
    points = loop.curve_steps(full)
    for i, evaluated in enumerate(cut["evaluated"]):
        assert points[evaluated - 1] == whole["steps_to_eps"][i]
        for name in [k for k in cut if k.startswith(("curve_", "trace_"))]:
            np.testing.assert_array_equal(cut[name][i, :evaluated], whole[name][i, :evaluated], err_msg=name)
            assert np.isnan(cut[name][i, evaluated:]).all(), name


SHARDED = """
import sys, jax, numpy as np
from sparselearn import config
from sparselearn.train import loop, spec
assert len(jax.devices()) == 2, jax.devices()
static = spec.static_part(config.loads(sys.argv[1]))
for tier in ("quick", "mid", "full"):
    loop.TIERS[tier] = loop.TIERS["tiny"]
hps = {"seed": np.array([0, 1, 2]), "m": np.array([64, 128, 96]), "lr": np.array([1.0, 2.0, 0.5]) * static.train.lr}
outs = {}
for tier, block in (("tiny", None), ("quick", None)):
    loop.compile_tier = lambda exp, runs, tier=tier: tier
    loop.BLOCK_BYTES = 2 * loop.step_bytes(static) if block else 1 << 20
    loop.compiled_group.cache_clear(); loop.group_pieces.cache_clear()
    for progress in (None, lambda step, steps: None):
        outs[tier, progress is None] = loop.run_group(static, hps, devices=jax.devices(), progress=progress)
ref = outs["tiny", True]
assert all(len(v) == 3 for v in ref.values())
for key, out in outs.items():
    for name, value in ref.items():
        np.testing.assert_array_equal(out[name], value, err_msg=f"{key} {name}")
print("ok")
"""


@CPU_ONLY
@pytest.mark.slow
@pytest.mark.parametrize("text", [PARITY, REGRESSION], ids=["parity, stopping", "regression, adam"])
def test_a_padded_sharded_group_trains_alike_along_every_path(tmp_path, text):
    """Three runs on two host devices (one copy added): the whole program and the loop apart,
    each in one call and point by point, give the same outputs bit for bit."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "SPARSELEARN_CACHE": "off",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SHARDED, text], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
