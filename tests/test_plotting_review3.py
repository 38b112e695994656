"""What the plots do with a grid axis at 0, a True/False axis, a curve below 0, two grid keys of
one last name, several experiments in one phase diagram, and `plot --out` naming a directory
(hand-built runs and curves tables, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import sparselearn.plotting.auto as auto
from sparselearn.cli import main
from sparselearn.errors import PlotError
from sparselearn.plotting import error_vs_steps, scaling_plot
from sparselearn.plotting.curves import series_labels
from sparselearn.schema import CURVE_COLUMNS
from run_tables import run_row, runs_table

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("close_figures")


def _noise_runs() -> pd.DataFrame:
    """steps_to_eps 100·(1 + 10·p) at label noise p = 0, 0.1, 0.2, 0.4, three seeds each."""
    return runs_table([run_row(f"{p}-{s}", "ok", 0.0, {"target.noise": p}, seed=s,
                               steps_to_eps=int(100 * (1 + 10 * p)) + s)
                       for p in (0.0, 0.1, 0.2, 0.4) for s in range(3)])


def test_a_scaling_plot_leaves_out_runs_at_x_0_and_says_so():
    runs = _noise_runs()
    runs["target.noise"] = [json.loads(g)["target.noise"] for g in runs["grid"]]
    _, ax, fits = scaling_plot(runs, "target.noise", "steps_to_eps", n_boot=50)
    drawn = [float(x) for line in ax.lines if line.get_marker() == "o" for x in line.get_xdata()]
    assert drawn == [0.1, 0.2, 0.4]
    want = np.polyfit(np.log([0.1, 0.2, 0.4]), np.log([201, 301, 501]), 1)[0]   # the seed-1 medians
    assert fits[None].alpha == pytest.approx(want)
    assert "3 at target.noise ≤ 0 (left out: log axis)" in ax.get_legend().get_texts()[0].get_text()


def test_the_scaling_kind_draws_a_noise_sweep_from_0(monkeypatch, tmp_path):
    monkeypatch.setattr(auto, "load_stores", lambda path: ([Path(path)], _noise_runs(), None))
    paths = auto.plot_results(tmp_path / "store", "scaling", tmp_path / "fig")
    assert [p.name for p in paths] == ["fig.png", "fig.pdf"] and all(p.stat().st_size > 0 for p in paths)


def test_a_true_false_axis_is_no_scaling_axis(monkeypatch):
    runs = runs_table([run_row(f"{o}-{s}", "ok", 0.0, {"data.online": o}, seed=s, steps_to_eps=100 + s)
                       for o in (True, False) for s in range(4)])
    monkeypatch.setattr(auto, "load_stores", lambda path: ([Path(path)], runs, None))
    with pytest.raises(PlotError, match="needs a numeric grid axis.*data.online"):
        auto.plot_results("results/x", "scaling")


def _curves(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"run_id": rid, "step": 10 * i, **dict.fromkeys(CURVE_COLUMNS[2:], 0.5), "train_loss": v}
            for rid, vs in values.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def test_a_curve_below_0_is_drawn_inside_the_axes():
    """A correlation loss runs from −0.1 to −1.6; the test error stays clamped at 0 from below."""
    runs = runs_table([run_row("a", "ok", 0.0, steps=30), run_row("b", "ok", 0.0, steps=30, seed=1)])
    curves = _curves({"a": [-0.1, -0.6, -1.1, -1.6], "b": [-0.1, -0.6, -1.1, -1.6]})
    _, ax = error_vs_steps(runs, curves, column="train_loss")
    low, high = ax.get_ylim()
    assert low <= -1.6 and high >= -0.1
    _, ax = error_vs_steps(runs, curves)
    assert ax.get_ylim()[0] == 0


def test_two_grid_keys_of_one_last_name_are_labelled_in_full():
    runs = runs_table([run_row(f"{a}{b}", grid={"target.k": a, "learner.k": b, "data.m": 64})
                       for a in (2, 8) for b in (2, 3)])
    assert series_labels(runs).tolist() == [f"m=64, learner.k={b}, target.k={a}" for a in (2, 8) for b in (2, 3)]
    assert series_labels(runs, exclude=("learner.k",)).tolist() == ["m=64, target.k=2"] * 2 + ["m=64, target.k=8"] * 2
    alone = runs_table([run_row("a", grid={"target.k": 2})])
    assert series_labels(alone).tolist() == ["k=2"]


def test_a_phase_diagram_of_two_experiments_names_both(monkeypatch):
    rows = [run_row(f"{e}{m}{s}", "ok", 0.0 if m > 100 else 0.5, {"data.m": m, "learner.width": w},
                    experiment=e, m=m, seed=s)
            for e, w in (("gfa", 16), ("gfb", 64)) for m in (100, 400) for s in range(2)]
    figs = []
    monkeypatch.setattr(auto, "load_stores", lambda path: ([Path(path)] * 2, runs_table(rows), None))
    monkeypatch.setattr(auto, "save", lambda fig, out: figs.append(fig) or [])
    auto.plot_results("results/x", "phase")
    assert figs[0].axes[0].get_title() == "gfa, gfb"


@pytest.mark.parametrize("slash", [False, True])
def test_plot_out_naming_a_directory_writes_inside_it(monkeypatch, tmp_path, slash):
    monkeypatch.setattr(auto, "load_stores", lambda path: ([Path(path)], _noise_runs(), None))
    out = tmp_path / "figs"
    if not slash:
        out.mkdir()
    assert main(["plot", str(tmp_path / "store"), "--kind", "scaling", "--out", f"{out}/" if slash else str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["scaling.pdf", "scaling.png"]
    assert not (tmp_path / "figs.png").exists()
