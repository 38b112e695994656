"""Review of the study drivers in experiments/: configs against their docstrings and the kept
tables, reductions of small tables, the degree the low-degree arm fits a teacher at."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.targets.sparse_mlp import SparseMLP

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "paper_figs" / "data"


def study(name):
    return figures.study(name, near=ROOT / "paper_figs" / "x.py")


def test_adkm_s2_degree_is_the_teachers_own_even_past_n(monkeypatch):
    """A junta reads ⌊log₂(s/k)⌋ address bits, at most n: at n = 6, s = 128 the teacher has degree
    6, not log₂ 128 = 7; a non-power s/k floors (s = 12 → 3); the parity has p = min(n, s − 1)."""
    base = study("adkm_s2")
    sweeps = {"vs s": ("s", ("n", 6), {"junta k=1": [12, 128], "dense parity": [5, 16]})}
    monkeypatch.setitem(base.ARMS["lowdegree"], "sweeps", sweeps)
    got = {(p["construction"], p["s"]): p["degree"] for p in base.points("lowdegree", False)}
    assert got == {("junta", 12): 3, ("junta", 128): 6, ("parity", 5): 4, ("parity", 16): 6}
    for (construction, s), degree in got.items():
        k = 1 if construction == "junta" else s
        assert SparseMLP(n=6, s=s, k=k, construction=construction).layout.bits == degree


def test_adkm_s2_full_points_keep_their_degrees():
    """The declared sweeps: log₂(s/k) for the power-of-two juntas, min(n, s − 1) for the parity."""
    base = study("adkm_s2")
    for arm in base.ARMS:
        for p in base.points(arm, False):
            want = min(p["n"], p["s"] - 1) if p["construction"] == "parity" else math.log2(p["s"] / p["k"])
            assert p["degree"] == want


def test_adkm_s1_configs_are_the_docstrings():
    """n = 12, width 256, Adam 10⁻³, batch 64, ≤ 8000 steps evaluated every 250 and stopped at
    ε = 0.1, 10 seeds; s ∈ {4…128} at k = 2 and k ∈ {1, 2, 4, 8} at s = 32, each a teacher whose
    k groups fit (k ≤ n, s/k ≥ 1)."""
    s1 = study("adkm_s1")
    exps = s1.experiments(False)
    assert set(exps) == {"s at k=2", "k at s=32"}
    for label, exp in exps.items():
        assert exp.target.n == 12 and exp.target.construction == "random"
        assert (exp.learner.width, exp.learner.depth) == (256, 2)
        t = exp.train
        assert (t.optimizer, t.lr, t.batch, t.steps, t.eval_every, t.loss) == ("adam", 0.001, 64, 8000, 250, "square")
        assert t.eps == s1.EPS == 0.1 and t.stop_at_eps and len(exp.sweep.seeds) == 10
    grid_s = dict(exps["s at k=2"].sweep.grid)["target.s"]
    grid_k = dict(exps["k at s=32"].sweep.grid)["target.k"]
    assert list(grid_s) == [4, 8, 16, 32, 64, 128] and exps["s at k=2"].target.k == 2
    assert list(grid_k) == [1, 2, 4, 8] and exps["k at s=32"].target.s == 32


def test_kou_summary_is_the_kept_table_of_the_kept_tries():
    """`summarise` of the kept per-batch tries gives the kept per-(k, d) table: the fewest T*·B,
    its batch and steps, the bracket B·T*, the paper batch's T*·B."""
    kou = study("kou_samples")
    tried = pd.read_parquet(DATA / "kou-s-tried.parquet")
    kept = pd.read_parquet(kou.KEPT_TABLE)
    pd.testing.assert_frame_equal(kou.summarise(tried), kept, check_dtype=False)
    assert (kept["samples"] == kept["batch"] * kept["steps"]).all()
    assert (kept["paper_batch"] == [kou.paper_batch(k, d) for k, d in zip(kept["k"], kept["n"])]).all()


def test_kou_summary_counts_a_point_without_success_as_censored():
    kou = study("kou_samples")
    tried = pd.DataFrame({"k": [2, 2, 2], "n": [10, 10, 14], "batch": [24, 12, 37], "paper_batch": [24, 24, 37],
                          "steps": [16.0, 40.0, np.nan], "steps_low": [14.0, 30.0, np.nan],
                          "steps_high": [np.nan] * 3, "censored": [False, False, True]})
    tried["samples"] = tried["steps"] * tried["batch"]
    out = kou.summarise(tried).set_index("n")
    assert out.loc[10, "samples"] == 384 and out.loc[10, "batch"] == 24 and out.loc[10, "smallest_batch"] == 12
    assert out.loc[10, "ci_low"] == 24 * 14 and not out.loc[10, "censored"]
    assert out.loc[14, "censored"] and np.isnan(out.loc[14, "samples"])


def test_width_tc_parts_are_the_kept_runs():
    """Every kept HP-4L run has the width, criterion, cap and seed count of its part, and the
    widths with a median (more than half converged) leave out r = 3 (6/50)."""
    wtc = study("width_tc")
    runs = pd.read_parquet(wtc.KEPT)
    plan = {w: (eps, steps, seeds) for widths, eps, steps, seeds in wtc.PARTS.values() for w in widths}
    got = runs.groupby("width").agg(eps=("eps", "first"), steps=("steps", "max"), seeds=("seed", "nunique"))
    assert {w: (r.eps, r.steps, r.seeds) for w, r in got.iterrows()} == plan
    table = wtc.tc_table(runs)
    assert sorted(wtc.measured_widths(table)["width"].unique()) == [1, 2, 10, 100, 1000, 10000]
    assert table.loc[table["width"] == 3, "t_c"].notna().sum() == 6


def test_width_tc_median_counts_unconverged_runs():
    wtc = study("width_tc")
    table = pd.DataFrame({"width": [5] * 4 + [7] * 4, "seed": list(range(4)) * 2,
                          "t_c": [100.0, 200.0, np.nan, np.nan, 100.0, 200.0, 300.0, np.nan]})
    assert wtc.measured_widths(table)["width"].unique().tolist() == [7]
    summary = wtc.summary(table)
    assert summary.loc[5, "median t_c"] == np.inf and summary.loc[7, "median t_c"] == 250.0


def test_wnl_widths_and_starts_are_the_kept_and_documented_ones():
    """width = 1.6·C(d + 2, 2) up to a multiple of 64 (128 at d = 8 … 1984 at d = 48), the first m
    the power of two at or below 3·C(d + 2, 2)/ε, and the kept table's widths and spans."""
    wnl = study("wnl_samples")
    kept = pd.read_parquet(wnl.KEPT_TABLE)
    assert kept["width"].tolist() == [wnl.width(d) for d in wnl.FULL["d"]]
    assert kept["quadratics"].tolist() == [math.comb(d + 2, 2) for d in wnl.FULL["d"]]
    assert (wnl.width(8), wnl.width(48)) == (128, 1984)
    for d in wnl.FULL["d"]:
        first = wnl.start(d, wnl.FULL)
        assert first <= 3 * math.comb(d + 2, 2) / wnl.EPS < 2 * first and first & (first - 1) == 0


def test_parity_tc_plan_evaluates_every_estimate_25_times_under_its_cap():
    ptc = study("parity_tc")
    exps = ptc.experiments(False)
    assert len(exps) == sum(len(v) for v in ptc.FIRST_ESTIMATE.values())
    for exp in exps:
        k, n = exp.target.k, exp.target.n
        est = ptc.FIRST_ESTIMATE[k][n]
        assert exp.train.eval_every == max(1, est // 25) and exp.train.steps == min(ptc.CAP_FACTOR[k] * est, 300_000)
        assert (exp.learner.width, exp.train.batch, exp.train.lr, exp.train.loss) == (100, 32, 0.1, "hinge")
        assert exp.data.online and exp.data.test_m == 8192 and exp.train.eps == 0.0
        assert len(exp.sweep.seeds) == ptc.SEEDS.get((k, n), 25)
