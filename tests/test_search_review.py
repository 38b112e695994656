"""The sample-complexity search against independent references: scipy's exact binomial interval,
a brute-force reading of success tables, exhaustive scans of the tried grid, resuming an
interrupted search, and the loop's own eps comparison."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparselearn import config
from sparselearn.errors import ConfigError
from sparselearn.schema import within_eps
from sparselearn.store import Store
from sparselearn.sweeps import search
from sparselearn.sweeps.runner import execute as real_execute
from sparselearn.sweeps.search import PointSearch, SearchResult, clopper_pearson, sample_complexity
from sparselearn.train.loop import curve_steps
from test_search import GF2, SMALL


def _fake_m(monkeypatch, success, trained: Counter):
    """Training in the m search replaced: run (m, seed) reaches eps where success(m, seed)."""
    def execute(store, runs, executor, **kwargs):
        trained.update((r.point, r.seed) for r in runs)
        return pd.DataFrame([{"run_id": r.run_id, "status": "ok",
                              "test_error": 0.0 if success(r.exp.data.m, r.seed) else 1.0} for r in runs]), None

    monkeypatch.setattr(search, "execute", execute)


def _fake_steps(monkeypatch, reach, trained: list):
    """Training in the steps search replaced: run (lr, seed) first has error ≤ eps at step
    reach(lr, seed); steps_to_eps and curves at the loop's curve points."""
    curves = []

    def execute(store, runs, executor, **kwargs):
        rows = []
        for r in runs:
            points = curve_steps(r.exp)
            trained.append((r.exp.train.lr, r.exp.train.steps))
            hit = points[points >= reach(r.exp.train.lr, r.seed)]
            rows.append({"run_id": r.run_id, "status": "ok", "steps_to_eps": int(hit[0]) if len(hit) else None})
            curves.extend({"run_id": r.run_id, "step": int(p)} for p in points)
        return pd.DataFrame(rows).astype({"steps_to_eps": "Int64"}), None

    monkeypatch.setattr(search, "execute", execute)
    monkeypatch.setattr(Store, "curves", lambda self: pd.DataFrame(curves))


def _none(v):
    return None if v is None or pd.isna(v) else int(v)


def test_clopper_pearson_matches_scipy_exact_binomial_interval():
    worst = 0.0
    for n in range(1, 26):
        for s in range(n + 1):
            for conf in (0.8, 0.95, 0.99):
                ref = stats.binomtest(s, n).proportion_ci(confidence_level=conf, method="exact")
                lo, hi = clopper_pearson(s, n, conf)
                worst = max(worst, abs(lo - ref.low), abs(hi - ref.high))
    assert worst < 1e-9


def test_table_agrees_with_a_brute_force_reading_of_random_success_tables():
    rng = np.random.default_rng(0)
    for _ in range(300):
        values = sorted(int(v) for v in rng.choice(np.arange(1, 60), size=rng.integers(1, 7), replace=False))
        n = int(rng.integers(1, 30))
        tried = {v: (int(rng.integers(0, n + 1)), n) for v in values}
        delta, conf = float(rng.choice([0.1, 0.3, 0.5])), float(rng.choice([0.9, 0.95]))
        row = SearchResult("data.m", 0.05, delta, conf, (PointSearch((), tried),), "", pd.DataFrame()).table().iloc[0]
        ok = [v for v in values if tried[v][0] / n >= 1 - delta - 1e-12]
        est = min(ok, default=None)
        below = max((v for v in values if v not in ok and (est is None or v < est)), default=None)
        ci = {v: stats.binomtest(*tried[v]).proportion_ci(confidence_level=conf, method="exact") for v in values}
        ci_high = min((v for v in values if ci[v].low >= 1 - delta), default=None)
        ci_low = max((v for v in values if ci[v].high < 1 - delta and (ci_high is None or v < ci_high)), default=None)
        got = tuple(_none(row[c]) for c in ("estimate", "below", "ci_low", "ci_high"))
        assert got == (est, below, ci_low, ci_high), tried


@pytest.mark.parametrize("monotone", [True, False])
def test_m_search_agrees_with_an_exhaustive_scan(monotone, tmp_path, monkeypatch):
    rng = np.random.default_rng(1 + monotone)
    seeds = 5
    exp = config.override(config.loads(SMALL), sweep={"seeds": seeds})
    for trial in range(60):
        lo_limit, start = int(rng.integers(16, 40)), int(rng.integers(1, 400))
        hi_limit = lo_limit + int(rng.integers(0, 300))
        delta, rtol = float(rng.choice([0.1, 0.3, 0.5])), float(rng.choice([0.0, 0.1, 0.5]))
        if monotone:  # seed s reaches eps from m = thr[s] on
            thr = rng.integers(1, 500, size=seeds)
            success = lambda m, s, thr=thr: m >= thr[s]
        else:
            table = rng.random((400, seeds)) < rng.random()
            success = lambda m, s, table=table: bool(table[m, s])
        trained = Counter()
        _fake_m(monkeypatch, success, trained)
        res = sample_complexity(exp, eps=0.05, delta=delta, out=tmp_path / str(trial), start=start,
                                min_value=lo_limit, max_value=hi_limit, rtol=rtol, progress=False)
        row = res.table().iloc[0]
        est, below, values = _none(row["estimate"]), _none(row["below"]), row["values"]
        need = math.ceil((1 - delta) * seeds - 1e-9)
        scan = [m for m in range(lo_limit, hi_limit + 1) if sum(success(m, s) for s in range(seeds)) >= need]
        assert set(trained.values()) == {1} and all(lo_limit <= v <= hi_limit for v in values)
        # the estimate is the smallest tried success; the tried value below it fails
        assert est == min((v for v in values if res.points[0].succeeds(v, 1 - delta)), default=None)
        if est is None:
            assert row["censored"] and hi_limit in values
            assert not monotone or not scan
            continue
        assert not row["censored"] and est in scan and (below is None or below not in scan)
        assert (below is None and est == lo_limit) or est / below <= 1 + rtol or est - below <= 1
        assert (_none(row["ci_low"]) or 0) < est <= (_none(row["ci_high"]) or est)
        if monotone:
            assert (below or 0) < min(scan) <= est and (rtol > 0 or est == min(scan))


def test_steps_search_agrees_with_an_exhaustive_scan_of_its_curve_points(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    seeds = 5
    exp = config.override(config.loads(SMALL), sweep={"seeds": seeds, "grid": {"train.lr": [0.1, 0.2]}})
    for trial in range(12):
        every = int(rng.integers(1, 60))
        start, first = int(rng.integers(every, 400)), int(rng.integers(1, 200))
        limit = int(rng.integers(max(first, every), 3000))
        delta = float(rng.choice([0.1, 0.3, 0.5]))
        reach_at = rng.integers(1, 2500, size=(2, seeds))
        trained = []
        _fake_steps(monkeypatch, lambda lr, s, r=reach_at: r[int(lr == 0.2), s], trained)
        res = sample_complexity(config.override(exp, train={"eval_every": every}), eps=0.05, delta=delta,
                                param="train.steps", out=tmp_path / str(trial), start=start, min_value=first,
                                max_value=limit, progress=False)
        need = math.ceil((1 - delta) * seeds - 1e-9)
        for i, lr in enumerate((0.1, 0.2)):
            row = res.table().iloc[i]
            budgets = sorted({t for x, t in trained if x == lr})
            points = curve_steps(config.override(exp, train={"eval_every": every, "steps": budgets[-1]}))
            hits = [points[points >= r][0] if (points >= r).any() else np.inf for r in reach_at[i]]
            scan = [int(t) for t in points if t > 0 and t >= first and sum(h <= t for h in hits) >= need]
            assert _none(row["estimate"]) == (scan[0] if scan else None)
            assert bool(row["censored"]) == (not scan)
            # a budget doubles only while nothing reached the target, up to the limit
            assert budgets[0] == min(max(start, first), limit) and budgets[-1] <= limit
            assert all(b == min(2 * a, limit) for a, b in zip(budgets, budgets[1:]))
            assert scan or budgets[-1] == limit


def test_steps_search_min_value_above_the_config_steps_needs_no_max_value(tmp_path, monkeypatch):
    trained = []
    _fake_steps(monkeypatch, lambda lr, s: 6000, trained)
    row = sample_complexity(config.loads(SMALL), eps=0.05, param="train.steps", out=tmp_path, min_value=5000,
                            progress=False).table().iloc[0]
    assert trained == [(0.1, 5000)] * 4 + [(0.1, 10000)] * 4 and row["estimate"] == 6000  # 10000 ≤ 16 × 5000


def test_steps_search_rejects_lottery_tickets_picked_by_their_trained_weights(tmp_path, monkeypatch):
    # their units come from the full net trained for the whole budget: the curve at step t of a
    # 300-step ticket is not a t-step ticket's (measured: test error at step 50 of 0.484 vs 0.520)
    _fake_steps(monkeypatch, lambda lr, s: 100, [])
    ticket = config.override(config.loads(SMALL), train={"rewind": 8})
    with pytest.raises(ConfigError) as info:
        sample_complexity(ticket, eps=0.05, param="train.steps", out=tmp_path, progress=False)
    assert info.value.key == "train.rewind"
    in_grid = config.override(config.loads(SMALL), sweep={"grid": {"train.rewind": [None, 8]}})
    with pytest.raises(ConfigError):
        sample_complexity(in_grid, eps=0.05, param="train.steps", out=tmp_path, progress=False)
    random = config.override(ticket, train={"rewind_pick": "random"})
    row = sample_complexity(random, eps=0.05, param="train.steps", out=tmp_path, progress=False).table().iloc[0]
    assert row["estimate"] == 100


def test_m_search_out_of_rounds_warns(tmp_path, monkeypatch):
    _fake_m(monkeypatch, lambda m, seed: m >= 1000, Counter())
    with pytest.warns(UserWarning, match="max_rounds"):
        row = sample_complexity(config.loads(SMALL), eps=0.05, out=tmp_path, start=16, rtol=0.0, max_rounds=8,
                                progress=False).table().iloc[0]
    assert row["estimate"] > row["below"] + 1  # the bracket is as wide as it was when stopped


@pytest.mark.slow
def test_interrupted_search_resumes_to_the_same_table_without_training_again(tmp_path, monkeypatch):
    exp = config.override(config.loads(GF2), sweep={"grid": {"target.k": [3]}})
    whole = sample_complexity(exp, out=tmp_path / "whole", progress=False).table()
    calls, trained = [], []

    def stopping(store, runs, executor, **kwargs):  # stored half of the second round, then killed
        calls.append(len(runs))
        if len(calls) == 2:
            real_execute(store, runs[: len(runs) // 2], executor, **kwargs)
            raise KeyboardInterrupt
        return real_execute(store, runs, executor, **kwargs)

    monkeypatch.setattr(search, "execute", stopping)
    with pytest.raises(KeyboardInterrupt):
        sample_complexity(exp, out=tmp_path / "cut", progress=False)

    def counting(store, runs, executor, **kwargs):
        done = set(store.stored_status())
        trained.extend(r.run_id for r in runs if r.run_id not in done)
        return real_execute(store, runs, executor, **kwargs)

    monkeypatch.setattr(search, "execute", counting)
    resumed = sample_complexity(exp, out=tmp_path / "cut", progress=False)
    pd.testing.assert_frame_equal(resumed.table(), whole)
    assert len(set(trained)) == len(trained) == len(resumed.runs) - calls[0] - calls[1] // 2
    trained.clear()
    again = sample_complexity(exp, out=tmp_path / "cut", progress=False)
    pd.testing.assert_frame_equal(again.table(), whole)
    assert trained == [] and len(again.runs) == len(resumed.runs)


def test_m_search_counts_an_error_equal_to_eps_in_float32_as_reached(tmp_path, monkeypatch):
    at = float(np.float32(0.05))  # 0.0500000007: how the loop's float32 error 0.05 is stored
    above = float(np.float32(0.051))   # one wrong row of 1,000 more

    def execute(store, runs, executor, **kwargs):
        return pd.DataFrame([{"run_id": r.run_id, "status": "ok",
                              "test_error": at if r.exp.data.m >= 100 else above} for r in runs]), None

    monkeypatch.setattr(search, "execute", execute)
    row = sample_complexity(config.loads(SMALL), eps=0.05, out=tmp_path, start=16, rtol=0.0,
                            progress=False).table().iloc[0]
    assert (row["estimate"], row["below"]) == (100, 99)


def test_eps_at_a_stored_error_is_reached_as_the_training_loop_decides(tmp_path):
    # 0-1 test errors are k/250 in float32, stored widened to float64: k/250 as a decimal eps lies
    # below some of them, and only a float32 comparison then agrees with the loop's steps_to_eps
    tiny = config.override(config.loads(SMALL), learner={"width": 8}, train={"steps": 60, "eval_every": 10},
                           data={"m": 64, "test_m": 250}, sweep={"seeds": 3})
    first = sample_complexity(tiny, eps=0.0, param="train.steps", out=tmp_path, start=60,
                              max_value=60, progress=False)
    curves = Store.at(first.path, tiny).curves().sort_values(["run_id", "step"])
    # a new lowest error of a run: with eps at it, the run first reaches eps exactly there
    record = curves["test_error"] < curves.groupby("run_id")["test_error"].transform(
        lambda e: e.cummin().shift(fill_value=np.inf))
    errors = curves["test_error"].astype("float64")  # stored as float32
    decimal = (errors * 250).round() / 250
    # (k/250 in float32 is k · float32(1/250) in the loop, at times one ulp above float32(k/250))
    above = curves[record & (errors > decimal) & within_eps(curves["test_error"], decimal)]
    eps = float(decimal[above.index[0]])
    res = sample_complexity(tiny, eps=eps, param="train.steps", out=tmp_path, start=60,
                            max_value=60, progress=False)
    runs, curves = res.runs, Store.at(res.path, tiny).curves()
    first_hits = {}
    for _, r in runs.iterrows():
        c = curves[curves["run_id"] == r["run_id"]].sort_values("step")
        hit = c[within_eps(c["test_error"], eps)]
        assert _none(r["steps_to_eps"]) == (int(hit["step"].iloc[0]) if len(hit) else None)
        if len(hit):
            first_hits[r["run_id"]] = float(hit["test_error"].iloc[0])  # float32 stored
    assert any(e > eps for e in first_hits.values())  # a float64 comparison would have missed it
    final = int(curves["step"].max())
    assert res.points[0].tried[final][0] == len(first_hits) == int(runs["steps_to_eps"].notna().sum())


@pytest.mark.parametrize("n", [250, 1000])
def test_k_wrong_rows_of_n_reach_eps_exactly_when_k_over_n_is_at_most_eps(n):
    """The group's mean multiplies by a rounded 1/n (120/250 gives 0.48000002): the loop and
    `within_eps` still count k wrong rows as error ≤ eps exactly when k/n ≤ eps."""
    from sparselearn.train.metrics import weighted_mean

    counts = np.arange(n + 1)
    v = (np.arange(n)[None, :] < counts[:, None]).astype(np.float32)          # k wrong rows of n
    rates = np.asarray(jax.jit(jax.vmap(weighted_mean))(jnp.asarray(v)))
    np.testing.assert_allclose(rates, counts / n, rtol=3e-7)
    for eps in (0.01, 0.02, 0.05, 0.48):
        np.testing.assert_array_equal(within_eps(rates, eps), counts <= round(eps * n))


def test_a_search_refuses_a_grid_over_eps():
    """The m search judged every point at one eps while the grid said otherwise (both rows of a
    grid over train.eps = [0.05, 0.3] reported the m of eps = 0.05)."""
    exp = config.loads(GF2.replace("grid: {target.k: [2, 3]}", "grid: {train.eps: [0.05, 0.3]}"))
    for param in ("data.m", "train.steps"):
        with pytest.raises(ConfigError) as err:
            sample_complexity(exp, param=param, out="unused", progress=False)
        assert err.value.key == "sweep.grid.train.eps"


def test_a_search_retries_the_runs_stored_as_failed_when_asked(tmp_path, monkeypatch, fail_groups):
    """A failed group (e.g. out of memory once) was stored and reused by every later search of
    the store: its seeds counted as failures for good, and the estimate stayed above it."""
    from sparselearn.sweeps import runner

    exp = config.loads(GF2.replace("grid: {target.k: [2, 3]}", "seeds: 6").replace("seeds: 3, ", ""))
    clean = sample_complexity(exp, eps=0.05, delta=0.2, out=tmp_path / "clean", max_value=64, progress=False)
    first = iter([True])   # the search's first group fails
    real = fail_groups(lambda e: next(first, False), MemoryError("RESOURCE_EXHAUSTED: once"))
    hurt = sample_complexity(exp, eps=0.05, delta=0.2, out=tmp_path / "hurt", max_value=64, progress=False)
    monkeypatch.setattr(runner, "run_group", real)
    assert hurt.points[0].failed > 0
    again = sample_complexity(exp, eps=0.05, delta=0.2, out=tmp_path / "hurt", max_value=64, progress=False)
    assert again.table()["estimate"].tolist() == hurt.table()["estimate"].tolist()   # reused by default
    retried = sample_complexity(exp, eps=0.05, delta=0.2, out=tmp_path / "hurt", max_value=64, progress=False,
                                retry_failed=True)
    assert retried.points[0].failed == 0
    assert retried.table()["estimate"].tolist() == clean.table()["estimate"].tolist()
    runs = Store.at(Path(retried.path)).runs()
    assert runs["run_id"].is_unique and (runs["status"] == "ok").all()


def test_a_steps_search_counts_a_run_that_reached_eps_before_diverging():
    """SGD on the correlation loss reaches eps within 400 steps and diverges after about 1100:
    searched at a budget of 1400, every run ended diverged and the point read censored (m* >
    1400), where a budget of 1000, or train.stop_at_eps, gives 390. The answer is the first
    hitting time whatever the budget."""
    exp = config.loads("experiment: div\ntarget: {name: sparse_parity, n: 8, k: 2}\n"
                       "learner: {name: mlp, width: 16}\ntrain: {optimizer: sgd, loss: correlation, lr: 0.1, "
                       "batch: 16, steps: 1400, eval_every: 10}\ndata: {m: 256, test_m: 256}\nsweep: {seeds: 8}\n")
    stopping = config.override(exp, train={"stop_at_eps": True})
    tables, tried = [], []
    for e in (exp, stopping):
        with tempfile.TemporaryDirectory() as out:
            res = sample_complexity(e, param="train.steps", delta=0.4, out=out, start=1400, max_value=1400,
                                    progress=False)
            tables.append(res.table().iloc[0])
            tried.append(res.points[0].tried)
            if e is exp:
                assert (res.runs["status"] == "diverged").sum() >= 6   # the budget is past their divergence
    assert tables[0]["estimate"] == tables[1]["estimate"] and not tables[0]["censored"]
    assert {t: c for t, c in tried[0].items() if t in tried[1]} == tried[1]   # equal counts at every step
