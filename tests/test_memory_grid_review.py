"""Checks of the memory plan and the grid against independent references: the estimate of a
fitted group against XLA's own memory analysis, runs_per_call against a brute-force search,
grid expansion against itertools.product."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from sparselearn import config
from sparselearn.sweeps import memory
from sparselearn.sweeps.grid import expand, group
from sparselearn.train.loop import compile_at, compile_tier, compiled_group
from sparselearn.train.spec import group_key, hp_arrays, static_part

FITTED = """
experiment: fitted
target:  {name: sparse_parity, n: 12, k: 2}
learner: {name: %s}
data:    {m: %d, test_m: %d}
sweep:   {seeds: 1}
"""


@pytest.mark.parametrize("learner, m, test_m", [("kernel", 1000, 512), ("random_features, width: 2048", 1000, 256)])
def test_a_one_run_fitted_group_is_not_underestimated_twofold(learner, m, test_m):
    """A call of one fitted run holds its Gram or feature matrix several times over (fit, both
    evaluations, the solve's system and factor): XLA measured 3.7× the former estimate of 2×
    the largest array of the fit alone for kernel ridge."""
    g = group(expand(config.loads(FITTED % (learner, m, test_m))))[0]
    static = static_part(g.exp)
    compiled = compile_at(compiled_group(static), compile_tier(static, 1), hp_arrays(g.exp, g.hps()))
    stats = compiled.memory_analysis()
    actual = stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
    assert actual / 2 <= memory.estimate(g.exp).total <= 3 * actual, (memory.estimate(g.exp).total, actual)


def _reference(total: int, cap: int, free: float, devices: int, per_device: bool) -> int:
    """The most runs R ≤ cap one call may take, tried one by one: R runs on D devices are padded
    to a multiple of D (or, R < D, take R devices, one run each); every device's share fits
    HEADROOM × free (per_device) or all of them together do (host)."""
    budget = memory.HEADROOM * free
    best = 0
    for r in range(1, cap + 1):
        used = min(r, devices)
        if r >= devices and r % devices:
            continue  # a padded call: the runner never asks for it
        share = -(-r // used)  # runs on each device
        need = share * total if per_device else share * used * total
        if need <= budget:
            best = r
    return best


def test_runs_per_call_matches_a_brute_force_search(monkeypatch):
    total = 1000
    monkeypatch.setattr(memory, "estimate", lambda exp: memory.Estimate(total, 0, 0))
    checked = 0
    for devices, per_device, cap in itertools.product((1, 2, 3, 4, 8), (False, True), (1, 2, 3, 5, 7, 8, 16, 30)):
        for runs_fit in (1, 1.5, 2, 3, 4.99, 5, 7, 8, 9, 17, 40):
            free = runs_fit * total / memory.HEADROOM
            expected = _reference(total, cap, free, devices, per_device)
            assert memory.runs_per_call(None, cap, free, devices, per_device) == expected, (
                devices, per_device, cap, runs_fit)
            checked += 1
    assert checked == 5 * 2 * 8 * 11
    with pytest.raises(config.ConfigError, match="one run needs about"):
        memory.runs_per_call(None, 8, 0.99 * total / memory.HEADROOM, 4, True)


GRID = """
experiment: grid
target:  {name: sparse_parity, n: 10, k: 2}
learner: {name: mlp, width: 16}
train:   {batch: 8, steps: 20, eval_every: 10}
data:    {m: 64, test_m: 32}
sweep:   {seeds: [3, 7], grid: {%s}}
"""
KEYS = {"data.m": "[32, 64, 128]", "train.lr": "[0.1, 0.2]", "target.n": "[10, 12]", "learner.width": "[8, 16]"}


def _grid(order) -> config.Experiment:
    return config.loads(GRID % ", ".join(f"{k}: {KEYS[k]}" for k in order))


@pytest.mark.parametrize("order", [list(KEYS), list(reversed(KEYS)), ["train.lr", "data.m", "learner.width", "target.n"]])
def test_expand_and_group_match_the_product_of_the_grid(order):
    exp = _grid(order)
    runs = expand(exp)
    grid = dict(exp.sweep.grid)
    product = [dict(zip(order, combo)) for combo in itertools.product(*(grid[k] for k in order))]
    expected = sorted((tuple(sorted(p.items())), s) for p in product for s in (3, 7))
    assert sorted((tuple(sorted(r.point)), r.seed) for r in runs) == expected  # every combination once
    assert len(runs) == 3 * 2 * 2 * 2 * 2 and len({r.run_id for r in runs}) == len(runs)
    for r in runs:  # each run's config holds its point
        for key, value in r.point:
            section, _, name = key.partition(".")
            assert getattr(getattr(r.exp, section), name) == value
    groups = group(runs)
    assert sorted(r.run_id for g in groups for r in g.runs) == sorted(r.run_id for r in runs)
    for g in groups:  # one compiled shape: the group's config at each run's m
        assert {static_part(replace(r.exp, data=replace(r.exp.data, m=g.exp.data.m))) for r in g.runs} == {
            static_part(g.exp)}
        assert g.exp.data.m == max(r.exp.data.m for r in g.runs)
    assert len({group_key(g.exp) for g in groups}) == len(groups) == 4  # target.n × learner.width


def test_run_and_group_ids_do_not_depend_on_grid_key_order():
    a, b = _grid(list(KEYS)), _grid(list(reversed(KEYS)))
    ids = [{(tuple(sorted(r.point)), r.seed): r.run_id for r in expand(e)} for e in (a, b)]
    assert ids[0] == ids[1]
    groups = [{g.group_id: sorted(r.run_id for r in g.runs) for g in group(expand(e))} for e in (a, b)]
    assert groups[0] == groups[1] and len(groups[0]) == 4
    assert [r.run_id for r in expand(a)] == [r.run_id for r in expand(_grid(list(KEYS)))]  # stable
