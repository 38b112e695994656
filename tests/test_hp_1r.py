"""HP-1R (experiments/parity_tc.py, paper_figs/fig_hp_1r.py): the full-size plan evaluates often
enough to resolve t_c and reaches the sizes the exponent rows need; the kept table was measured
under that plan and resolves every median; runs stop at t_c; the local-slope panel shows a known
changing exponent in the colour of its k."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from sparselearn import figures
from sparselearn.plotting.style import PALETTE

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
study = figures.study("parity_tc", near=ROOT / "paper_figs" / "x")
fig = figures.load(ROOT / "paper_figs" / "fig_hp_1r.py")


def test_the_full_plan_resolves_t_c_stops_early_and_reaches_large_n():
    exps = study.experiments(smoke=False)
    assert len({e.experiment for e in exps}) == len(exps)
    for e in exps:
        k, n = e.target.k, e.target.n
        assert e.train.stop_at_eps and e.train.eps == 0.0
        assert e.train.eval_every <= study.FIRST_ESTIMATE[k][n] / 20
        assert e.train.steps >= 2 * study.FIRST_ESTIMATE[k][n]
        assert len(e.sweep.seeds) >= 10 and e.sweep.grid == ()
    for e in study.width_check_experiments(smoke=False):
        assert e.learner.width > max(study.CHECK_N) and e.train.stop_at_eps
        assert e.train.eval_every <= study.FIRST_ESTIMATE[e.target.k][e.target.n] / 40
    largest = {k: max(ns) for k, ns in study.FIRST_ESTIMATE.items()}
    assert largest[3] >= 100 and largest[4] >= 60
    for ns in study.FIRST_ESTIMATE.values():   # a geometric grid: each window of three n spans ≈ 2×
        ratios = np.diff(np.log(sorted(ns)))
        assert np.allclose(ratios, np.log(2) / 2, atol=0.03)


@pytest.mark.skipif(not study.KEPT_TABLE.exists(), reason="no kept full-size table")
def test_the_kept_table_follows_the_plan_and_resolves_every_median():
    table = pd.read_parquet(study.KEPT_TABLE)
    planned = {(e.target.k, e.target.n): e for e in study.experiments(smoke=False)}
    per_point = table.groupby(["k", "n"])
    assert set(per_point.groups) == set(planned)
    for (k, n), part in per_point:
        exp = planned[(k, n)]
        assert (part["eval_every"] == exp.train.eval_every).all() and (part["cap"] == exp.train.steps).all()
        assert sorted(part["seed"]) == list(exp.sweep.seeds)
        assert part["t_c"].notna().mean() > 0.5                        # the median is defined
        assert part["t_c"].median() >= 20 * exp.train.eval_every       # and resolved to 5%
        reached = part["t_c"].dropna()
        assert (reached % exp.train.eval_every == 0).all() and (reached <= exp.train.steps).all()


def test_smoke_runs_stop_at_t_c(tmp_path):
    table = study.measure(smoke=True, store=str(tmp_path))
    assert list(table.columns) == ["n", "k", "seed", "t_c", "eval_every", "cap"]
    assert table["t_c"].notna().all()
    assert (table["t_c"] % table["eval_every"] == 0).all() and (table["t_c"] <= table["cap"]).all()
    curves = pd.concat(pd.read_parquet(p) for p in tmp_path.glob("*/*/curves.parquet"))
    last = curves.dropna(subset=["test_error"]).groupby("run_id")["step"].max()
    assert sorted(last) == sorted(table["t_c"].astype(int))        # nothing evaluated after t_c


def test_local_slope_panel_shows_a_changing_exponent_per_k():
    """t_c = n^(k−1) up to n = 40, then n^k: each k's local slopes rise from k − 1 to k, in its colour."""
    rng = np.random.default_rng(0)
    n = np.array([10, 14, 20, 28, 40, 57, 80, 113, 160])
    rows = []
    for k in (2, 3):
        log_t = np.where(n <= 40, (k - 1) * np.log(n), (k - 1) * np.log(n) + np.log(n / 40))
        for seed in range(12):
            rows.append(pd.DataFrame({"n": n, "k": k, "seed": seed,
                                      "t_c": np.exp(log_t + 0.05 * rng.standard_normal(n.size))}))
    table = pd.concat(rows, ignore_index=True)
    check = table[(table["k"] == 3) & table["n"].isin([20, 40, 80])].assign(width=400)
    figure = fig.draw(figures.Results({"t_c": table, "width_check": check}))
    right = figure.axes[1]
    lines = [line for line in right.get_lines() if line.get_marker() == "o"]
    assert len(lines) == 3
    for k, line in zip((2, 3), lines):
        assert to_hex(line.get_color()) == to_hex(PALETTE[k - 2])
        slopes = line.get_ydata()
        assert slopes[0] == pytest.approx(k - 1, abs=0.2) and slopes[-1] == pytest.approx(k, abs=0.2)
    # the check: one slope per pair of neighbouring n, open markers in k = 3's colour
    assert lines[2].get_ydata() == pytest.approx([2, 3], abs=0.2)
    assert to_hex(lines[2].get_color()) == to_hex(PALETTE[1]) and lines[2].get_markerfacecolor() == "white"
