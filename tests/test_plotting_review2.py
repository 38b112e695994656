"""What the plots draw where a run diverged after reaching eps, where a theory curve is anchored
outside its points, where a phase-diagram axis is categorical, and on a short log step axis
(hand-built runs and curves tables, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.contour import ContourSet

from sparselearn.errors import PlotError
from sparselearn.plotting import error_vs_steps, overlay, phase_diagram, scaling_plot, success_table
from sparselearn.plotting.style import figure
from sparselearn.schema import CURVE_COLUMNS
from run_tables import run_row as _run
from run_tables import runs_table as _runs

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("close_figures")


#: steps_to_eps per n: (value, status); the diverged run reached eps at step 50 before it diverged
STEPS = {10: [(100, "ok"), (None, "ok"), (50, "diverged")],
         20: [(400, "ok"), (420, "ok"), (None, "ok")],
         40: [(1600, "ok"), (1700, "ok"), (1650, "ok")]}


def _diverged_after_eps() -> pd.DataFrame:
    return _runs([_run(f"{n}-{i}", status, 0.0 if status == "ok" and s is not None else np.nan,
                       {"target.n": n}, n=n, seed=i, steps_to_eps=s)
                  for n, vals in STEPS.items() for i, (s, status) in enumerate(vals)])


def _points(ax):
    """(x, y) of the medians drawn (o) and of the lower bounds (^)."""
    return {m: [(float(x), float(y)) for line in ax.lines if line.get_marker() == m
                for x, y in zip(line.get_xdata(), line.get_ydata())] for m in ("o", "^")}


def test_a_run_that_diverged_after_reaching_eps_counts_as_unreached_in_a_scaling_plot():
    """At n=10: 100 (ok), unreached (ok), 50 (diverged): two of three never learned, so the median
    is unreached and n=10 is a lower bound (▲ at 100, its largest reached run) left out of the
    fit, as success_table counts that run a failure."""
    runs = _diverged_after_eps()
    runs["target.n"] = runs["n"]
    _, ax, fits = scaling_plot(runs, "target.n", "steps_to_eps", n_boot=50)
    points = _points(ax)
    assert points["o"] == [(20.0, 420.0), (40.0, 1650.0)]   # medians with unreached above every value
    assert points["^"] == [(10.0, 100.0)]
    fit = fits[None]
    assert fit.censored == (10.0,)
    assert fit.alpha == pytest.approx(np.log(1650 / 420) / np.log(2))
    label = ax.get_legend().get_texts()[0].get_text()
    assert "3/9 runs unreached; 1 diverged" in label
    table = success_table(runs, "target.n", "k", eps=0.05)
    assert table[10].iloc[0] == pytest.approx(1 / 3)        # the same run: a failure there too


def test_the_scaling_kind_counts_a_run_that_diverged_after_eps_as_unreached(monkeypatch):
    import sparselearn.plotting.auto as auto

    drawn = {}

    def spy(table, x, y, **kwargs):
        fig, ax, fits = scaling_plot(table, x, y, n_boot=50, **kwargs)
        drawn.update(y=y, points=_points(ax), fits=fits)
        return fig, ax, fits

    monkeypatch.setattr(auto, "load_stores", lambda path: ([Path(path)], _diverged_after_eps(), None))
    monkeypatch.setattr(auto, "scaling_plot", spy)
    monkeypatch.setattr(auto, "save", lambda fig, out: [])
    auto.plot_results("results/x", "scaling")
    assert drawn["y"] == "steps_to_eps"
    assert drawn["points"]["o"] == [(20.0, 420.0), (40.0, 1650.0)]
    assert drawn["fits"][None].censored == (10.0,)


def test_overlay_anchored_outside_its_points_needs_the_theory_function():
    n = np.array([10.0, 20.0, 40.0])
    _, ax = figure()
    with pytest.raises(PlotError, match="outside the curve's x range"):
        overlay(ax, n, n ** 2, "n^2", anchor=(80, 6400))
    line = overlay(ax, n, lambda x: x ** 2, "n^2", anchor=(80, 6400))   # 80² = 6400: no rescaling
    np.testing.assert_allclose(line.get_ydata(), [100, 400, 1600])
    line = overlay(ax, n, lambda x: x ** 2, "n^2", anchor=(5, 50))      # twice n²
    np.testing.assert_allclose(line.get_ydata(), [200, 800, 3200])
    assert line.get_label() == "n^2 (scaled)"
    np.testing.assert_allclose(overlay(ax, n[::-1], n[::-1] ** 2, "n^2", anchor=(40, 3200)).get_ydata(),
                               [3200, 800, 200])   # inside the range, values still do


def _phase_runs(names) -> pd.DataFrame:
    """Success at m = 100, 400, 1600 rising from 0 to 1; one learner worse than the other."""
    rows = []
    for j, name in enumerate(names):
        for mi, m in enumerate((100, 400, 1600)):
            for s in range(2):
                err = 0.0 if mi + s - j >= 1 else 0.5
                rows.append(_run(f"{name}{m}{s}", "ok", err, {"learner.name": name, "data.m": m}, m=m, seed=s))
    return _runs(rows)


def _contours(ax):
    return [c for c in ax.collections if isinstance(c, ContourSet)]


def test_a_phase_diagram_draws_no_contour_between_categories():
    runs = _phase_runs(["gf2", "lowdegree"])
    _, ax = phase_diagram(runs, "data.m", "learner.name")
    # cells: hand count of runs within eps, rows gf2 then lowdegree
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.5, 1, 1], [0, 0.5, 1]])
    assert _contours(ax) == []
    assert [t.get_text() for t in ax.get_yticklabels()] == ["gf2", "lowdegree"]
    numeric = runs.assign(grid=[json.dumps({"learner.width": 64 if g.startswith("gf2") else 128, "data.m": int(m)})
                                for g, m in zip(runs["run_id"], runs["m"])])
    _, ax = phase_diagram(numeric, "data.m", "learner.width")
    (contour,) = _contours(ax)
    assert list(contour.levels) == [0.5]


def test_the_phase_kind_of_a_pooled_store_draws_no_contour_between_learners(monkeypatch):
    import sparselearn.plotting.auto as auto

    figs = []
    monkeypatch.setattr(auto, "load_stores", lambda path: ([Path(path), Path(path)],
                                                         _phase_runs(["gf2", "lowdegree"]), None))
    monkeypatch.setattr(auto, "save", lambda fig, out: figs.append(fig) or [])
    auto.plot_results("results/compare_parity", "phase")
    (ax, _) = figs[0].axes   # the diagram and its colour bar
    assert ax.get_ylabel() == "learner.name" and ax.images and _contours(ax) == []


def _tick_labels(ax, minor: bool):
    ax.figure.canvas.draw()
    low, high = sorted(ax.get_xlim())
    ticks = ax.xaxis.get_minor_ticks() if minor else ax.xaxis.get_major_ticks()
    return [t.label1.get_text() for t in ticks if low <= t.get_loc() <= high and t.label1.get_visible()]


@pytest.mark.parametrize("last, majors", [(200, ["20", "50", "100", "200"]),
                                          (100000, ["$\\mathdefault{10^{2}}$", "$\\mathdefault{10^{3}}$",
                                                    "$\\mathdefault{10^{4}}$", "$\\mathdefault{10^{5}}$"])])
def test_a_log_step_axis_labels_no_minor_ticks(last, majors):
    """The HP-16 smoke range (steps 20 … 200) labelled 3×10¹ and 4×10¹ side by side."""
    steps = np.geomspace(20, last, 10).round()
    runs = _runs([_run(f"r{i}", "ok", 0.0, seed=i) for i in range(2)])
    curves = pd.DataFrame([{"run_id": f"r{i}", "step": s, "train_loss": e, "train_error": e, "test_error": e,
                            "test_loss": e, "drift": 0.0}
                           for i in range(2) for s, e in zip(steps, np.linspace(0.5, 0, steps.size))],
                          columns=CURVE_COLUMNS)
    _, ax = error_vs_steps(runs, curves, logx=True)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), steps)
    assert [t for t in _tick_labels(ax, minor=True) if t] == []
    assert _tick_labels(ax, minor=False) == majors
