"""Plotting layer: exponent fits against known power laws, figures from a synthetic store, and
`sparselearn plot` on stored and missing results (no training here)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sparselearn import theory
from sparselearn.cli import main
from sparselearn.plotting import (fit_exponent, first_step, grid_frame, overlay, phase_diagram, plot_results,
                                  scaling_plot, success_table)
from sparselearn.plotting.style import figure
from sparselearn.schema import CURVE_COLUMNS, RUN_COLUMNS


def _draw(rng, alpha=1.8, seeds=25, sigma=0.2):
    n = np.repeat([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], seeds)
    return n, 3.0 * n ** alpha * np.exp(rng.normal(0.0, sigma, n.size))


def test_fit_recovers_known_exponent_within_005():
    n, y = _draw(np.random.default_rng(0))
    fit = fit_exponent(n, y, n_boot=500)
    assert abs(fit.alpha - 1.8) <= 0.05
    assert fit.ci_low < fit.alpha < fit.ci_high
    assert fit.ci_high - fit.ci_low < 0.3
    assert 1.5 < fit.c < 6


def test_fit_interval_covers_truth_in_most_draws():
    rng = np.random.default_rng(1)
    draws = 40
    covered = 0
    for i in range(draws):
        fit = fit_exponent(*_draw(rng, alpha=2.5, seeds=10, sigma=0.3), n_boot=200, seed=i)
        covered += fit.ci_low <= 2.5 <= fit.ci_high
    assert covered >= 0.8 * draws


def test_bootstrap_interval_equals_a_replicate_by_replicate_reference():
    """The stratified bootstrap with brackets: each replicate draws every y once within its
    bracket and resamples the seeds of each x (a run picked twice keeps its one draw); the
    interval is the percentile interval of the slopes. Replicate by replicate here, all
    replicates of an x at once there, from the same draws: a pin of the draw order; the
    property (the brackets' width kept) is tested in test_exponent_table_review."""
    rng = np.random.default_rng(3)
    x = np.repeat([4.0, 8.0, 16.0, 32.0], 5)
    y = 7 * x ** 1.5 * np.exp(rng.normal(0, 0.3, x.size))
    low, high = y / 1.2, y * 1.1
    fit = fit_exponent(x, y, low=low, high=high, n_boot=200, seed=5)
    draw, xs = np.random.default_rng(5), np.unique(x)
    picks, draws = {}, {}
    for v in xs:   # the draws fit_exponent makes, in its order
        i = np.flatnonzero(x == v)
        picks[v] = draw.integers(0, 5, (200, 5))
        draws[v] = np.exp(draw.uniform(np.log(low[i]), np.log(high[i]), (200, 5)))
    slopes = []
    for b in range(200):
        medians = [np.median(draws[v][b][picks[v][b]]) for v in xs]
        slopes.append(np.polyfit(np.log(xs), np.log(medians), 1)[0])
    assert np.allclose(fit.ci, np.quantile(slopes, [0.025, 0.975]), rtol=0, atol=1e-9)


def test_fit_one_point_per_x_and_errors():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    fit = fit_exponent(x, 5 * x ** -0.5, n_boot=100)
    assert fit.alpha == pytest.approx(-0.5) and fit.ci_low == pytest.approx(-0.5)
    # runs that never reached the target (NaN) and non-positive values are dropped
    fit = fit_exponent(np.r_[x, 3.0], np.r_[x ** 2, np.nan], n_boot=50)
    assert fit.alpha == pytest.approx(2.0)
    with pytest.raises(ValueError):
        fit_exponent([10, 10], [1, 2])
    assert fit.label().startswith("α = 2.00 [")


def test_overlay_anchor_keeps_theory_slope():
    fig, ax = figure()
    n = np.geomspace(10, 60, 20)
    line = overlay(ax, n, theory.parity_sgd_samples(n, 3), "n^(k-1)", anchor=(10, 500))
    xs, ys = line.get_data()
    assert ys[0] == pytest.approx(500)
    assert np.polyfit(np.log(xs), np.log(ys), 1)[0] == pytest.approx(2.0)
    assert line.get_linestyle() == "--" and "scaled" in line.get_label()


def _synthetic_store(root, with_curves=True):
    """A store holding a (target.n × data.m) grid, 4 seeds, without training anything."""
    rng = np.random.default_rng(0)
    rows, curves = [], []
    for n in (10, 20, 40):
        for m in (100, 1000, 10000):
            for seed in range(4):
                rid = f"r{n}-{m}-{seed}"
                err = float(np.clip(0.5 - 0.2 * np.log10(m) + 0.01 * n + rng.normal(0, 0.05), 0, 0.5))
                row = {c: None for c in RUN_COLUMNS}
                row.update(run_id=rid, experiment="synth", config_hash="h", target="sparse_parity", learner="mlp",
                           n=n, k=3, m=m, width=100, seed=seed, lr=0.1, steps=1000, eps=0.05, status="ok",
                           grid=json.dumps({"target.n": n, "data.m": m}), test_error=err,
                           steps_to_eps=float(n ** 2 * (1 + 0.1 * seed)))
                rows.append(row)
                for step in range(0, 1001, 100):
                    e = 0.5 if step < n ** 2 else 0.0
                    curves.append({"run_id": rid, "step": step, "train_loss": e, "train_error": e,
                                   "test_error": e, "test_loss": e})
    store = root / "synth" / "h"
    store.mkdir(parents=True)
    pd.DataFrame(rows, columns=RUN_COLUMNS).to_parquet(store / "runs.parquet")
    if with_curves:
        pd.DataFrame(curves, columns=CURVE_COLUMNS).to_parquet(store / "curves.parquet")
    return store, pd.DataFrame(rows, columns=RUN_COLUMNS), pd.DataFrame(curves, columns=CURVE_COLUMNS)


def test_grid_frame_first_step_and_success_table(tmp_path):
    _, runs, curves = _synthetic_store(tmp_path)
    frame = grid_frame(runs)
    assert set(frame["target.n"]) == {10, 20, 40}
    t_c = first_step(curves, eps=0.0)
    assert t_c["r20-100-0"] == 400 and np.isnan(t_c["r40-100-0"])  # 1600 > the last step
    table = success_table(runs, "data.m", "target.n")
    assert table.shape == (3, 3) and table.to_numpy().min() >= 0 and table.to_numpy().max() <= 1
    # the fraction of each cell's 4 seeds with test error ≤ eps, counted here
    want = np.array([[np.mean(runs.loc[(runs["n"] == n) & (runs["m"] == m), "test_error"] <= 0.05)
                      for m in (100, 1000, 10000)] for n in (10, 20, 40)])
    np.testing.assert_array_equal(table.to_numpy(), want)
    assert list(table.index) == [10, 20, 40] and list(table.columns) == [100, 1000, 10000]
    assert ((want > 0) & (want < 1)).any()   # a cell where some seeds succeed: the mean matters
    # success rises with m at every n
    assert (np.diff(table.to_numpy(), axis=1) >= 0).all()
    with pytest.raises(ValueError, match="learner.width"):
        success_table(runs, "learner.width", "target.n")


def test_scaling_and_phase_figures(tmp_path):
    _, runs, _ = _synthetic_store(tmp_path)
    fig, ax, fits = scaling_plot(runs, "n", "steps_to_eps", by="m")
    assert set(fits) == {100, 1000, 10000}
    assert all(abs(f.alpha - 2.0) < 0.05 for f in fits.values())
    assert any("α = 2.00" in t.get_text() for t in ax.get_legend().get_texts())
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    fig, ax = phase_diagram(runs, "data.m", "target.n")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "1000", "10000"]


@pytest.mark.parametrize("kind", ["curve", "scaling", "phase"])
def test_plot_cli_writes_each_kind(tmp_path, kind, capsys):
    store, _, _ = _synthetic_store(tmp_path)
    out = tmp_path / "fig" / kind
    assert main(["plot", str(tmp_path / "synth"), "--kind", kind, "--out", str(out)]) == 0
    for suffix in (".png", ".pdf"):
        assert out.with_suffix(suffix).stat().st_size > 1000
    assert str(out.with_suffix(".png")) in capsys.readouterr().out
    # default location: inside the store
    assert plot_results(store, kind)[0] == store / "figures" / f"{'learnability' if kind == 'curve' else kind}.png"


def test_plot_cli_missing_or_empty_dir_exits_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "no such results directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty"), "--kind", "scaling"]) == 2
    assert "no runs.parquet" in capsys.readouterr().err


def test_plot_cli_grid_without_axes_exits_2(tmp_path, capsys):
    store, runs, curves = _synthetic_store(tmp_path)
    one = runs[(runs["n"] == 10) & (runs["m"] == 100)].assign(grid="{}")
    one.to_parquet(store / "runs.parquet")
    assert main(["plot", str(store), "--kind", "phase"]) == 2
    assert "two grid axes" in capsys.readouterr().err
    assert main(["plot", str(store), "--kind", "scaling"]) == 2


def test_error_vs_m_labels_the_grid_values_on_a_log_axis():
    """A log m axis shows the grid's m values as its labels and no colliding minor labels."""
    import matplotlib

    matplotlib.use("Agg")
    from sparselearn.plotting.curves import error_vs_m

    runs = pd.DataFrame([{"run_id": f"{m}-{s}", "m": m, "seed": s, "test_error": 0.5 / (1 + i),
                          "status": "ok", "target": "sparse_parity", "learner": "mlp", "n": 30, "k": 3,
                          "grid": json.dumps({"data.m": m})}
                         for i, m in enumerate((256, 1024, 4096)) for s in range(3)])
    fig, ax = error_vs_m(runs)
    fig.canvas.draw()
    major = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    minor = [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    assert ax.get_xscale() == "log" and major == ["256", "1024", "4096"] and minor == []


def test_curves_count_every_run_and_say_which_diverged():
    """Two runs with the same seed in one series both count; runs without a finite error are
    left out of the band and counted in the legend; when none has one, a clear error."""
    import matplotlib

    matplotlib.use("Agg")
    from sparselearn.plotting.curves import error_vs_m

    def frame(errors):
        return pd.DataFrame([{"run_id": f"r{i}", "m": m, "seed": 0, "test_error": e, "status": "ok" if np.isfinite(e)
                              else "diverged", "target": "hierarchical", "learner": "mlp", "n": 8, "k": None,
                              "grid": json.dumps({"data.m": m})} for i, (m, e) in enumerate(errors)])

    fig, ax = error_vs_m(frame([(100, 0.1), (100, 0.3), (100, 0.5), (1000, 0.05), (1000, np.nan)]))
    assert ax.lines[0].get_ydata()[0] == pytest.approx(0.3)   # the median of three runs of seed 0, not the first
    assert "1 of 5 runs without a finite test error: diverged" in ax.get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="all diverged"):
        error_vs_m(frame([(100, np.nan), (1000, np.inf)]))


def test_a_series_whose_runs_all_diverged_keeps_its_legend_entry():
    """A learning rate at which every run blew up draws nothing, but the legend still names it
    (it used to vanish from the figure without a word)."""
    import matplotlib

    matplotlib.use("Agg")
    from sparselearn.plotting.curves import error_vs_m, error_vs_steps

    rows = [{"run_id": f"r{i}", "m": m, "seed": i % 2, "lr": lr, "test_error": 0.1 if lr < 1 else np.nan,
             "status": "ok" if lr < 1 else "diverged", "target": "sparse_parity", "learner": "mlp", "n": 10,
             "k": 2, "grid": json.dumps({"data.m": m, "train.lr": lr})}
            for i, (m, lr) in enumerate([(m, lr) for m in (64, 256) for lr in (0.1, 1e30) for _ in range(2)])]
    runs = pd.DataFrame(rows)
    _, ax = error_vs_m(runs)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["lr=0.1", "lr=1e+30 (all 4 runs without a finite test error: diverged), not drawn"]
    assert [len(line.get_xdata()) for line in ax.lines] == [2, 0]
    one = runs[runs["m"] == 64]
    curves = pd.DataFrame([{"run_id": r, "step": t, "test_error": e if t == 0 else (0.1 if e == e else np.nan)}
                           for r, e in zip(one["run_id"], one["test_error"]) for t in (0, 10)])
    _, ax = error_vs_steps(one, curves)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0].endswith("lr=0.1") and "(" not in texts[0]
    assert texts[1].endswith("lr=1e+30 (all 2 runs without a finite test error: diverged), not drawn")
    with pytest.raises(ValueError, match="all diverged"):
        error_vs_m(runs[runs["lr"] > 1])


def test_plots_never_pool_grid_axes(tmp_path):
    """A third varying axis: the scaling plot draws one series per combination of the other two,
    the phase diagram (two axes only) refuses rather than average over it."""
    store, runs, _ = _synthetic_store(tmp_path)
    runs["grid"] = [json.dumps({**json.loads(g), "train.lr": lr}) for g, lr in zip(runs["grid"], [0.1, 0.2] * (len(runs) // 2))]
    runs.to_parquet(store / "runs.parquet")
    paths = plot_results(store, "scaling")
    assert paths[0].exists()
    with pytest.raises(ValueError, match="also varies train.lr"):
        plot_results(store, "phase")


def test_scaling_kind_counts_diverged_runs_as_unreached(tmp_path, monkeypatch):
    """A diverged run never reached eps (steps_to_eps null): it counts above every reached run,
    not left out, so 3 diverged of 4 at one x make that x's median unreached."""
    import sparselearn.plotting.auto as auto

    store, runs, _ = _synthetic_store(tmp_path)
    hit = (runs["n"] == 40) & (runs["seed"] > 0)
    runs.loc[hit, ["status", "steps_to_eps", "test_error"]] = ["diverged", None, np.nan]
    runs.to_parquet(store / "runs.parquet")
    drawn = {}

    def spy(table, x, y, **kwargs):
        drawn["table"] = table
        out = scaling_plot(table, x, y, **kwargs)
        drawn["labels"] = [t.get_text() for t in out[1].get_legend().get_texts()]
        return out

    monkeypatch.setattr(auto, "scaling_plot", spy)
    plot_results(store, "scaling")
    table = drawn["table"]
    assert int((table["status"] == "diverged").sum()) == int(hit.sum())
    assert all("3/12 runs unreached; 3 diverged" in t and "1 x with half the runs unreached left out" in t
               for t in drawn["labels"]), drawn["labels"]
