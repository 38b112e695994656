"""Sample-complexity search: agrees with a dense grid, stores and reuses its runs."""

from __future__ import annotations

import numpy as np
import pytest

from sparselearn import config
from sparselearn.errors import ConfigError
from sparselearn.sweeps import run
from sparselearn.sweeps.search import clopper_pearson, sample_complexity

SMALL = """
experiment: search
target: {name: sparse_parity, n: 8, k: 2}
learner: {name: mlp, width: 32}
train: {steps: 300, eval_every: 50, batch: 16, lr: 0.1}
data: {m: 32, test_m: 256}
sweep: {seeds: 4}
"""


def _grid_estimate(exp, values, eps, target, out):
    df = run(config.override(exp, sweep={"grid": {"data.m": values}}), out, progress=False)
    rates = df.groupby("m")["test_error"].apply(lambda e: float(np.mean(e <= eps)))
    ok = [m for m in values if rates[m] >= target]
    return min(ok) if ok else None, rates


def test_clopper_pearson_matches_closed_forms():
    lo, hi = clopper_pearson(8, 8, 0.95)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 8), rel=1e-9)
    lo, hi = clopper_pearson(0, 10, 0.9)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.05 ** (1 / 10), rel=1e-9)
    lo, hi = clopper_pearson(5, 10)
    assert lo < 0.5 < hi and lo == pytest.approx(1 - hi, rel=1e-9)


def test_search_brackets_the_dense_grid_and_reuses_its_runs(tmp_path):
    exp = config.loads(SMALL)
    res = sample_complexity(exp, eps=0.05, delta=0.5, out=tmp_path, start=16, rtol=0.25, progress=False)
    row = res.table().iloc[0]
    assert not row["censored"] and row["estimate"] is not None
    values = sorted(set(row["values"]))
    grid_m, rates = _grid_estimate(exp, values, 0.05, 0.5, tmp_path)
    assert grid_m == row["estimate"]  # same runs, same seeds: the same answer on the tried values
    assert row["ci_low"] <= grid_m and (row["ci_high"] is None or grid_m <= row["ci_high"])
    assert row["below"] is None or rates[row["below"]] < 0.5
    trained = len(res.runs)
    again = sample_complexity(exp, eps=0.05, delta=0.5, out=tmp_path, start=16, rtol=0.25, progress=False)
    assert len(again.runs) == trained and again.table().iloc[0]["estimate"] == row["estimate"]
    est = res.estimates()
    assert list(est.columns) == [k for k, _ in res.points[0].point] + ["m_star", "ci_low", "ci_high", "censored"]
    assert est["m_star"].dtype == float and est["censored"].dtype == bool
    assert est["m_star"].iloc[0] == row["estimate"] and est["ci_low"].iloc[0] == row["ci_low"]
    assert np.isnan(est["ci_high"].iloc[0]) if row["ci_high"] is None else est["ci_high"].iloc[0] == row["ci_high"]


def test_steps_search_reads_curves_without_retraining(tmp_path):
    exp = config.override(config.loads(SMALL), data={"m": 256})
    res = sample_complexity(exp, eps=0.05, delta=0.5, param="train.steps", out=tmp_path, progress=False)
    row = res.table().iloc[0]
    assert len(res.runs) == 4  # one training per seed
    t = row["estimate"]
    assert t is not None and t % 50 == 0
    assert (res.runs["steps_to_eps"].astype(float) <= t).mean() >= 0.5


@pytest.mark.parametrize("kwargs, key", [({"param": "data.n"}, "--param"), ({"delta": 1.5}, "--delta"),
                                         ({"eps": -0.1}, "--eps")])
def test_bad_search_arguments(kwargs, key, tmp_path):
    with pytest.raises(ConfigError) as info:
        sample_complexity(config.loads(SMALL), out=tmp_path, **kwargs)
    assert info.value.key == key


@pytest.mark.slow
def test_search_on_3_parity_n12_brackets_a_dense_grid(tmp_path):
    exp = config.loads(SMALL.replace("n: 8, k: 2", "n: 12, k: 3").replace("steps: 300", "steps: 1000")
                       .replace("width: 32", "width: 64").replace("seeds: 4", "seeds: 8"))
    res = sample_complexity(exp, eps=0.05, delta=0.5, out=tmp_path, start=64, progress=False)
    row = res.table().iloc[0]
    dense = sorted({int(v) for v in np.geomspace(64, 1024, 17).round()} | set(row["values"]))
    grid_m, _ = _grid_estimate(exp, dense, 0.05, 0.5, tmp_path)
    assert row["ci_low"] <= grid_m <= (row["ci_high"] or max(row["values"]))
