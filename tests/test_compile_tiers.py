"""Compile tiers: how much XLA optimises a group depends on how long it will run, and the tier
changes compile time, not what a run computes (beyond float rounding)."""

from __future__ import annotations

import math
import re
import threading

import jax
import numpy as np
import pytest

import sparselearn as sl
from sparselearn import runtime
from sparselearn.sweeps import grid
from sparselearn.train import loop, spec

CPU = jax.default_backend() == "cpu"


def _with(text: str, learner: str) -> sl.config.Experiment:
    """The tiny config with another learner section and the square loss (a fitted learner: no
    step settings, which it would not read)."""
    text = text.replace("learner: {name: mlp, width: 32, depth: 2}", f"learner: {learner}")
    if "mlp" not in learner:
        text = re.sub(r"train: +\{[^}]*\}", "train: {loss: square}", text)
    return sl.config.loads(text.replace("loss: hinge", "loss: square"))


def _group(exp):
    g = grid.group(grid.expand(exp))[-1]
    static = spec.static_part(g.exp)
    return static, spec.hp_arrays(g.exp, g.hps())


def test_tier_follows_the_work_of_the_group(tiny, tiny_text):
    static, arrays = _group(tiny)
    runs = len(arrays["seed"])
    assert loop.group_flops(static, runs) < loop.TINY_FLOPS and loop.compile_tier(static, runs) == "tiny"
    longer = sl.config.override(tiny, train={"steps": 5000}, learner={"width": 1024})
    per_run = loop.group_flops(longer, 1)
    assert loop.TINY_FLOPS <= loop.group_flops(longer, runs) < loop.MID_FLOPS
    assert loop.compile_tier(longer, runs) == "quick"
    assert loop.compile_tier(longer, math.ceil(loop.MID_FLOPS / per_run)) == "mid"
    assert loop.compile_tier(longer, math.ceil(loop.FULL_FLOPS / per_run)) == "full"
    fitted = _with(tiny_text, "{name: lowdegree, degree: 2}")
    assert loop.compile_tier(fitted, runs) == "fitted"


@pytest.mark.skipif(not CPU, reason="the tiers set XLA's CPU options")
def test_a_fitted_group_is_tiered_by_its_lowered_work(tiny_text):
    small = _with(tiny_text, "{name: lowdegree, degree: 2}")
    static, arrays = _group(small)
    lowered = loop.compiled_group(static).lower(arrays)
    assert loop.tier_options("fitted", lowered) == loop.TINY_COMPILE
    big = sl.config.override(small, target={"n": 24}, learner={"degree": 3}, data={"m": 4096, "test_m": 4096},
                             sweep={"seeds": 8, "grid": {}})
    static, arrays = _group(big)
    lowered = loop.compiled_group(static).lower(arrays)
    assert float(lowered.cost_analysis()["flops"]) >= loop.TINY_FLOPS
    known = runtime.known_options
    assert loop.tier_options("fitted", lowered) == known(loop.QUICK_COMPILE)
    assert loop.tier_options("full", lowered) == known(loop.FULL_COMPILE)
    assert loop.tier_options("tiny", None) == known(loop.TINY_COMPILE)


@pytest.mark.parametrize("learner", ["{name: mlp, width: 32, depth: 2}", "{name: lowdegree, degree: 2}"])
def test_the_tiny_tier_computes_the_same_runs_as_the_quick_one(tiny_text, learner):
    exp = _with(tiny_text, learner)
    static, arrays = _group(exp)
    lowered = loop.compiled_group(static).lower(arrays)
    # the tiny tier against the quick one; the fusion emitters of the mid and full tiers
    # compile too slowly for the default suite
    tiny, quick = (lowered.compile(loop.tier_options(tier, None))(arrays) for tier in ("tiny", "quick"))
    for name, value in quick.items():
        # float sums may be ordered differently by the code generators: a few ulps
        np.testing.assert_allclose(np.asarray(tiny[name], float), np.asarray(value, float), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.mark.skipif(not CPU, reason="off CPU every tier compiles one program")
def test_a_group_whose_loop_compiles_apart_trains_as_in_one_program(tiny, monkeypatch, fresh_programs):
    """From the quick tier on a group runs as three programs, its training loop compiled apart
    from its draws and final metrics (the three at once, in threads); its runs are those of the
    single program of the tiny tier. (Every tier here compiles with the tiny tier's options,
    as the structure is what is checked; test_blocks covers the full tier's blocks and
    devices.)"""
    g = grid.group(grid.expand(tiny))[-1]
    for tier in ("quick", "mid"):
        monkeypatch.setitem(loop.TIERS, tier, loop.TIERS["tiny"])
    monkeypatch.setattr(runtime, "cpu_count", lambda: 3)   # three compile threads, whatever the machine
    one = loop.run_group(g.exp, g.hps())
    assert [tier for tier, _ in fresh_programs] == ["tiny"]
    monkeypatch.setattr(loop, "compile_tier", lambda exp, runs: "mid")
    recording, started = loop.compile_lowered, threading.Barrier(3, timeout=120)

    def together(lowered, tier):  # goes on once the three compiles have started
        started.wait()
        return recording(lowered, tier)

    monkeypatch.setattr(loop, "compile_lowered", together)
    looped = loop.run_group(g.exp, g.hps())
    monkeypatch.setattr(loop, "compile_lowered", recording)
    assert sorted(tier for tier, _ in fresh_programs[1:]) == ["mid", "quick", "quick"]   # train; start, finish
    stepped = loop.run_group(g.exp, g.hps(), progress=lambda step, steps: None)
    assert [tier for tier, _ in fresh_programs][4:] == ["mid"]   # start and finish kept, advance compiled
    assert sorted(one) == sorted(looped) == sorted(stepped)
    for name, value in one.items():
        np.testing.assert_array_equal(looped[name], value, err_msg=name)
        np.testing.assert_array_equal(stepped[name], value, err_msg=name)


@pytest.fixture
def xla_without_fusion_emitters(monkeypatch):
    """This process's XLA as jax 0.11's: a compile naming `xla_cpu_use_fusion_emitters` fails."""
    from jax._src import compiler

    real = compiler.get_compile_options

    def refusing(*args, env_options_overrides=None, **kwargs):
        if env_options_overrides and "xla_cpu_use_fusion_emitters" in env_options_overrides:
            raise RuntimeError("INVALID_ARGUMENT: No such compile option: 'xla_cpu_use_fusion_emitters'")
        return real(*args, env_options_overrides=env_options_overrides, **kwargs)

    monkeypatch.setattr(compiler, "get_compile_options", refusing)
    runtime._known_option_names.cache_clear()
    yield
    runtime._known_option_names.cache_clear()


@pytest.mark.parametrize("learner, train", [
    ("{name: mlp, width: 16, depth: 2}", "{steps: 40, batch: 8, eval_every: 20, loss: square}"),
    ("{name: gf2}", "{loss: square}")])
def test_runs_compile_where_xla_lacks_an_option_of_the_tiers(xla_without_fusion_emitters, fresh_programs, learner,
                                                             train, tmp_path):
    """Every program of a run (the group, the draws of a fitted learner, a teacher's eager calls)
    compiles without the option this XLA does not know, at every tier, and the runs finish."""
    assert runtime.known_options(loop.QUICK_COMPILE) == {"xla_backend_optimization_level": 3}
    exp = sl.config.loads(f"experiment: t\ntarget: {{name: sparse_parity, n: 8, k: 2}}\nlearner: {learner}\n"
                          f"train: {train}\ndata: {{m: 64, test_m: 64}}\nsweep: {{seeds: 2}}\n")
    df = sl.run(exp, out=str(tmp_path), progress=False)
    assert set(df["status"]) == {"ok"}, df.get("error")
    assert runtime.tiered_jit(lambda x: x * 2)(jax.numpy.arange(3.0)).tolist() == [0.0, 2.0, 4.0]
