"""Sample-complexity search: agrees with a dense grid, stores and reuses its runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparselearn import config
from sparselearn.config import config_hash, grid_points, with_point
from sparselearn.errors import ConfigError
from sparselearn.store import Store
from sparselearn.sweeps import run, search
from sparselearn.sweeps.grid import Run, run_id
from sparselearn.sweeps.runner import execute
from sparselearn.sweeps.search import PointSearch, SearchResult, clopper_pearson, sample_complexity

SMALL = """
experiment: search
target: {name: sparse_parity, n: 8, k: 2}
learner: {name: mlp, width: 32}
train: {steps: 300, eval_every: 50, batch: 16, lr: 0.1}
data: {m: 32, test_m: 256}
sweep: {seeds: 4}
"""


#: a host learner: a search over it trains in well under a second
GF2 = """
experiment: shared
target: {name: sparse_parity, n: 8, k: 2}
learner: {name: gf2}
train: {loss: square, eps: 0.05}
data: {m: 32, test_m: 64}
sweep: {seeds: 3, grid: {target.k: [2, 3]}}
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
    assert (row["ci_low"] or 0) < grid_m and (row["ci_high"] is None or grid_m <= row["ci_high"])
    assert row["below"] is None or rates[row["below"]] < 0.5
    trained = len(res.runs)
    again = sample_complexity(exp, eps=0.05, delta=0.5, out=tmp_path, start=16, rtol=0.25, progress=False)
    assert len(again.runs) == trained and again.table().iloc[0]["estimate"] == row["estimate"]
    est = res.estimates()
    assert list(est.columns) == [k for k, _ in res.points[0].point] + ["m_star", "ci_low", "ci_high", "censored",
                                                                      "floored"]
    assert est["m_star"].dtype == float and est["censored"].dtype == bool
    assert est["m_star"].iloc[0] == row["estimate"]
    for col in ("ci_low", "ci_high"):
        assert np.isnan(est[col].iloc[0]) if row[col] is None else est[col].iloc[0] == row[col]


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
    assert (row["ci_low"] or 0) < grid_m <= (row["ci_high"] or max(row["values"]))


def _table(tried: dict, delta: float) -> pd.Series:
    return SearchResult("data.m", 0.05, delta, 0.95, (PointSearch((), tried),), "", pd.DataFrame()).table().iloc[0]


def test_bracket_lower_end_is_the_largest_value_sure_to_fail_below_the_upper_end():
    # 128 fails clearly, 256 succeeds clearly (40 of 40: interval above 0.9): 128 < m* ≤ 256
    row = _table({128: (0, 40), 256: (40, 40)}, 0.1)
    assert (row["ci_low"], row["ci_high"], row["estimate"]) == (128, 256, 256)
    # 181 fails (34 of 40) but not surely: its interval reaches 0.9, so m* may lie below it
    row = _table({64: (0, 40), 128: (2, 40), 181: (34, 40), 256: (40, 40)}, 0.1)
    assert (row["ci_low"], row["ci_high"], row["below"]) == (128, 256, 181)
    row = _table({256: (40, 40), 512: (40, 40)}, 0.1)  # nothing below is sure to fail
    assert row["ci_low"] is None and row["ci_high"] == 256


def test_success_rate_at_the_target_counts_as_success():
    assert PointSearch((), {10: (3, 10)}).succeeds(10, 1 - 0.7)  # 1 − 0.7 = 0.30000000000000004
    assert not PointSearch((), {10: (2, 10)}).succeeds(10, 1 - 0.7)
    assert PointSearch((), {3: (2, 3)}).succeeds(3, 2 / 3)


def test_failed_and_diverged_runs_count_as_seeds_that_did_not_reach_eps(tmp_path, monkeypatch):
    def execute(store, runs, executor, **kwargs):  # trains nothing: the outcome of each run by (m, seed)
        def outcome(m, seed):
            if m < 64:
                return "ok", 1.0
            return ("diverged", 0.0) if seed < 5 else ("failed", np.nan) if seed < 7 else ("ok", 0.0)

        rows = [dict(zip(("status", "test_error"), outcome(r.exp.data.m, r.seed)), run_id=r.run_id) for r in runs]
        return pd.DataFrame(rows), None

    monkeypatch.setattr(search, "execute", execute)
    exp = config.loads(SMALL.replace("seeds: 4", "seeds: 10"))
    res = sample_complexity(exp, eps=0.05, delta=0.5, out=tmp_path, start=16, min_value=16, max_value=256,
                            progress=False)
    row = res.table().iloc[0]
    # 3 of 10 seeds reach eps from m = 64 on: never 1 − δ = 0.5 of them
    assert row["censored"] and row["estimate"] is None and row["values"] == [16, 32, 64, 128, 256]
    assert res.points[0].tried[64] == (3, 10) and row["failed"] == 2 * 3 and row["diverged"] == 5 * 3


def test_searches_from_other_starts_share_their_runs(tmp_path):
    first = sample_complexity(config.loads(GF2), out=tmp_path, progress=False)
    again = sample_complexity(config.loads(GF2.replace("m: 32", "m: 8")), out=tmp_path, progress=False)
    assert again.path == first.path
    values = [set(a) | set(b) for a, b in zip(first.table()["values"], again.table()["values"])]
    assert len(again.runs) == 3 * sum(len(v) for v in values)  # each (point, m, seed) trained once
    assert list(again.table()["estimate"]) == list(first.table()["estimate"])


def test_a_store_written_with_the_start_value_in_its_ids_is_resumed(tmp_path):
    exp = config.loads(GF2)
    done = sample_complexity(exp, out=tmp_path / "now", progress=False)
    # the store an earlier search left: its hash holds data.m, its ids the point in grid order
    h = config_hash(exp)
    runs = []
    for point, values in zip(grid_points(exp), done.table()["values"]):
        for m in values:
            full = point + (("data.m", m),)
            runs += [Run(run_id(h, full, s, ordered=True), h, full, s, with_point(exp, full)) for s in exp.sweep.seeds]
    earlier = Store.at(tmp_path / "then" / "shared" / f"search-data.m-{h}", exp)
    execute(earlier, runs, exp.executor, progress=False, round_m=True)
    res = sample_complexity(exp, out=tmp_path / "then", progress=False)
    assert res.path == str(earlier.path) and len(res.runs) == len(runs)  # nothing trained again
    assert list(res.table()["estimate"]) == list(done.table()["estimate"])


def test_steps_search_trains_longer_only_the_points_that_need_it(tmp_path):
    exp = config.override(config.loads(SMALL), data={"m": 256}, sweep={"grid": {"train.lr": [0.1, 1e-6]}})
    res = sample_complexity(exp, eps=0.05, delta=0.5, param="train.steps", out=tmp_path, max_value=600,
                            progress=False)
    t = res.table().set_index("train.lr")
    assert t.loc[0.1, "estimate"] is not None and t.loc[1e-6, "censored"]
    assert sorted(res.runs.groupby("lr")["steps"].apply(list).loc[1e-6]) == [300] * 4 + [600] * 4
    assert res.runs.loc[res.runs["lr"] == 0.1, "steps"].tolist() == [300] * 4
