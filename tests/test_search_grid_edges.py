"""Search edges with training replaced by synthetic outcomes: bounds, start values, no value
trained twice, the Clopper–Pearson bracket's coverage."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from sparselearn import config
from sparselearn.errors import ConfigError
from sparselearn.store import Store
from sparselearn.sweeps import search
from sparselearn.sweeps.search import PointSearch, SearchResult, sample_complexity
from test_search import SMALL  # the 2-parity search config of the search tests


def _fake_m(monkeypatch, success, trained: Counter):
    """Replace training in the m search: a run succeeds where success(m, seed) holds."""
    def execute(store, runs, executor, **kwargs):
        trained.update(r.exp.data.m for r in runs)
        return pd.DataFrame([{"run_id": r.run_id, "status": "ok",
                              "test_error": 0.0 if success(r.exp.data.m, r.seed) else 1.0} for r in runs]), None

    monkeypatch.setattr(search, "execute", execute)


def _fake_steps(monkeypatch, reach, trained: list):
    """Replace training in the steps search: run `seed` first reaches eps at step reach(seed)."""
    curves = []

    def execute(store, runs, executor, **kwargs):
        rows = []
        for r in runs:
            budget, every = r.exp.train.steps, r.exp.train.eval_every
            trained.append(budget)
            t = reach(r.seed)
            rows.append({"run_id": r.run_id, "status": "ok", "steps": budget,
                         "steps_to_eps": t if t <= budget else None})
            curves.extend({"run_id": r.run_id, "step": s} for s in range(0, budget + 1, every))
        return pd.DataFrame(rows), None

    monkeypatch.setattr(search, "execute", execute)
    monkeypatch.setattr(Store, "curves", lambda self: pd.DataFrame(curves))


def test_m_search_success_at_the_first_value_halves_down_to_the_minimum(tmp_path, monkeypatch):
    trained = Counter()
    _fake_m(monkeypatch, lambda m, seed: True, trained)
    row = sample_complexity(config.loads(SMALL), eps=0.05, out=tmp_path, start=100, min_value=20,
                            progress=False).table().iloc[0]
    assert row["values"] == [20, 25, 50, 100] and row["estimate"] == 20 and not row["censored"]
    assert set(trained.values()) == {4}  # every m trained once, all seeds


def test_m_search_brackets_to_rtol_without_training_a_value_twice(tmp_path, monkeypatch):
    trained = Counter()
    _fake_m(monkeypatch, lambda m, seed: m >= 1000, trained)
    res = sample_complexity(config.loads(SMALL), eps=0.05, out=tmp_path, start=16, rtol=0.05, progress=False)
    row = res.table().iloc[0]
    assert row["estimate"] >= 1000 and row["below"] < 1000 and row["estimate"] / row["below"] <= 1.05
    assert set(trained.values()) == {4}


def test_m_search_failing_at_the_maximum_is_censored(tmp_path, monkeypatch):
    trained = Counter()
    _fake_m(monkeypatch, lambda m, seed: False, trained)
    row = sample_complexity(config.loads(SMALL), eps=0.05, out=tmp_path, start=16, max_value=100,
                            progress=False).table().iloc[0]
    assert row["censored"] and row["estimate"] is None and row["values"] == [16, 32, 64, 100]


def test_m_search_stops_each_grid_point_at_its_own_batch(tmp_path, monkeypatch):
    """m ≥ train.batch point by point: batch 128 halves to 128 (its floor), batch 16 to 16,
    even with min_value below both."""
    trained = Counter()
    _fake_m(monkeypatch, lambda m, seed: True, trained)
    cfg = config.loads(SMALL.replace("seeds: 4}", "seeds: 4, grid: {train.batch: [16, 128]}}").replace("m: 32,", "m: 512,"))
    for min_value in (None, 4):
        table = sample_complexity(cfg, eps=0.05, out=tmp_path, start=512, min_value=min_value, progress=False).table()
        assert table["estimate"].tolist() == [16, 128] and table["values"].iloc[1] == [128, 256, 512]


def test_m_search_is_censored_where_a_fitted_learner_caps_m(tmp_path, monkeypatch):
    """Kernel ridge refuses m whose m×m system is over learner.max_memory_gb: the search stops at
    the largest m it accepts, censored, with a warning naming the key, instead of raising."""
    trained = Counter()
    _fake_m(monkeypatch, lambda m, seed: False, trained)
    cfg = config.loads(SMALL.replace("{name: mlp, width: 32}", "{name: kernel, kernel: ntk, max_memory_gb: 0.01}")
                       .replace("train: {steps: 300, eval_every: 50, batch: 16, lr: 0.1}", "train: {loss: square}"))
    with pytest.warns(UserWarning, match="learner.max_memory_gb: the search stops at data.m = ") as info:
        row = sample_complexity(cfg, eps=0.05, out=tmp_path, start=256, progress=False).table().iloc[0]
    cap = int(str(info[0].message).split("data.m = ")[1].split(",")[0])
    assert row["censored"] and row["values"][-1] == cap == max(trained) and cap < 2 * row["values"][-2]
    config.with_point(cfg, (("data.m", cap),))
    with pytest.raises(ConfigError, match="max_memory_gb"):
        config.with_point(cfg, (("data.m", cap + 1),))


def test_m_search_refuses_online_grid_points(tmp_path, monkeypatch):
    _fake_m(monkeypatch, lambda m, seed: True, Counter())
    cfg = config.loads(SMALL.replace("seeds: 4}", "seeds: 4, grid: {data.online: [false, true]}}"))
    with pytest.raises(ConfigError) as info:
        sample_complexity(cfg, eps=0.05, out=tmp_path, progress=False)
    assert info.value.key == "sweep.grid.data.online"


@pytest.mark.parametrize("param", ["data.m", "train.steps"])
def test_min_value_above_max_value_is_an_error(param, tmp_path, monkeypatch):
    _fake_m(monkeypatch, lambda m, seed: True, Counter())
    with pytest.raises(ConfigError) as info:
        sample_complexity(config.loads(SMALL), eps=0.05, param=param, out=tmp_path, min_value=40, max_value=20,
                          progress=False)
    assert info.value.key == "max_value"


def test_steps_search_starts_at_start_and_tries_steps_from_min_value(tmp_path, monkeypatch):
    trained = []
    _fake_steps(monkeypatch, lambda seed: 500 + 50 * seed, trained)
    res = sample_complexity(config.loads(SMALL), eps=0.05, delta=0.5, param="train.steps", out=tmp_path,
                            start=600, min_value=400, progress=False)
    row = res.table().iloc[0]
    assert trained == [600] * 4  # one training at the start budget, not at train.steps = 300
    assert min(row["values"]) == 400 and max(row["values"]) == 600
    assert row["estimate"] == 550 and row["below"] == 500  # 2 of 4 seeds by 550


def test_steps_search_never_trains_past_max_value(tmp_path, monkeypatch):
    trained = []
    _fake_steps(monkeypatch, lambda seed: 10**6, trained)
    row = sample_complexity(config.loads(SMALL), eps=0.05, param="train.steps", out=tmp_path, max_value=200,
                            progress=False).table().iloc[0]
    assert trained == [200] * 4 and row["censored"]


def test_clopper_pearson_bracket_covers_m_star_of_a_synthetic_curve(tmp_path, monkeypatch):
    # P[success at m] = 1 − exp(−m / 100): with δ = 0.1, m* = ⌈100 ln 10⌉ = 231
    rng = np.random.default_rng(0)
    draws = {}

    def success(m, seed):
        u = draws.setdefault(seed, rng.random())  # one uniform per seed: success is monotone in m
        return u < 1 - np.exp(-m / 100)

    _fake_m(monkeypatch, success, Counter())
    m_star, misses, found = 231, 0, 0
    for trial in range(20):
        exp = config.override(config.loads(SMALL), sweep={"seeds": list(range(200 * trial, 200 * trial + 200))})
        row = sample_complexity(exp, eps=0.05, delta=0.1, out=tmp_path / str(trial), start=16,
                                progress=False).table().iloc[0]
        lo, hi = row["ci_low"], row["ci_high"]
        misses += (lo is not None and lo >= m_star) or (hi is not None and hi < m_star)
        found += lo is not None
    assert misses <= 2 and found >= 15


def test_clopper_pearson_bracket_misses_m_star_rarely():
    # the same curve, 40 seeds at fixed values around m* = 231: each end misses ≤ 2.5% + slack
    rng = np.random.default_rng(1)
    values = np.array([100, 160, 200, 231, 260, 320, 500])
    p = 1 - np.exp(-values / 100)
    low_miss = high_miss = 0
    for _ in range(400):
        tried = {int(v): (int(s), 40) for v, s in zip(values, rng.binomial(40, p))}
        row = SearchResult("data.m", 0.05, 0.1, 0.95, (PointSearch((), tried),), "", pd.DataFrame()).table().iloc[0]
        low_miss += row["ci_low"] is not None and row["ci_low"] >= 231
        high_miss += row["ci_high"] is not None and row["ci_high"] < 231
    assert low_miss <= 20 and high_miss <= 20
