"""The numbers the plots draw, against pandas / scipy / textbook computations from hand-built
runs and curves tables: learnability medians and IQR bands, first steps, phase-diagram cells,
and the Fisher and log-rank tests of two arms (no training here)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparselearn.plotting.curves import error_vs_m, error_vs_steps, first_step
from sparselearn.plotting.phase import phase_diagram, success_table
from sparselearn.plotting.significance import compare_reach
from sparselearn.schema import CURVE_COLUMNS
from run_tables import run_row as _run
from run_tables import runs_table as _runs

matplotlib.use("Agg")




def _curves(points) -> pd.DataFrame:
    """points: (run_id, step, test_error) → a curves table (the other curves equal test_error)."""
    return pd.DataFrame([{"run_id": r, "step": s, "train_loss": e, "train_error": e, "test_error": e,
                          "test_loss": e, "drift": 0.0} for r, s, e in points], columns=CURVE_COLUMNS)


def _band(ax, i):
    """(x, median, q25, q75) of the i-th series drawn."""
    x, med = ax.lines[i].get_data()
    verts = ax.collections[i].get_paths()[0].vertices
    lo = [verts[verts[:, 0] == v, 1].min() for v in x]
    hi = [verts[verts[:, 0] == v, 1].max() for v in x]
    return np.asarray(x, float), np.asarray(med, float), np.asarray(lo), np.asarray(hi)


def _grid_runs():
    """Two grid axes (target.n, train.lr; lr with one value) × data.m, 5 seeds, with ties,
    NaN and inf errors (diverged) and failed runs."""
    rng = np.random.default_rng(4)
    rows, i = [], 0
    for n in (10, 20):
        for m in (100, 400, 1600):
            for seed in range(5):
                err, status = float(rng.choice([0.0, 0.1, 0.1, 0.25, 0.5])), "ok"
                if i % 7 == 3:
                    err, status = np.nan, "diverged"
                elif i % 13 == 2:
                    err, status = np.inf, "diverged"
                elif i % 11 == 5:
                    err, status = np.nan, "failed"
                rows.append(_run(f"r{i}", status, err, {"target.n": n, "data.m": m, "train.lr": 0.1},
                                 n=n, m=m, seed=seed))
                i += 1
    return _runs(rows)


def test_error_vs_m_draws_the_median_and_iqr_of_the_finite_runs():
    runs = _grid_runs()
    fig, ax = error_vs_m(runs)
    kept = runs[runs["status"] != "failed"]
    kept = kept.assign(e=kept["test_error"].where(np.isfinite(kept["test_error"])))
    assert len(ax.lines) == 2
    for i, (n, part) in enumerate(kept.groupby("n")):
        want = part.groupby("m")["e"].quantile([0.25, 0.5, 0.75]).unstack()
        x, med, lo, hi = _band(ax, i)
        np.testing.assert_array_equal(x, want.index.to_numpy(float))
        np.testing.assert_allclose(med, want[0.5], rtol=0, atol=1e-12)
        np.testing.assert_allclose(lo, want[0.25], rtol=0, atol=1e-12)
        np.testing.assert_allclose(hi, want[0.75], rtol=0, atol=1e-12)
        bad = int((~np.isfinite(part["test_error"].astype(float))).sum())
        failed = int(((runs["n"] == n) & (runs["status"] == "failed")).sum())
        total = len(part) + failed
        notes = ([f"{failed} of {total} runs failed"] if failed else []) + [
            f"{bad} of {total} runs without a finite test error: diverged"]
        assert ax.lines[i].get_label() == f"n={n}, lr=0.1 ({'; '.join(notes)})"


def test_error_vs_steps_band_matches_pandas_with_a_diverged_run():
    runs = _runs([_run(f"r{i}", "diverged" if i == 3 else "ok", seed=i) for i in range(4)])
    errors = {0: [0.5, 0.4, 0.1, 0.0], 1: [0.5, 0.5, 0.2, 0.2], 2: [0.5, 0.3, 0.2, 0.1], 3: [0.5, 0.5, np.nan, np.inf]}
    curves = _curves([(f"r{i}", s, e) for i, es in errors.items() for s, e in zip((0, 100, 200, 1000), es)])
    fig, ax = error_vs_steps(runs, curves)
    table = curves.pivot(index="step", columns="run_id", values="test_error")
    want = table.where(np.isfinite(table)).quantile([0.25, 0.5, 0.75], axis=1).T
    x, med, lo, hi = _band(ax, 0)
    np.testing.assert_array_equal(x, [0, 100, 200, 1000])
    np.testing.assert_allclose(np.c_[lo, med, hi], want.to_numpy(), rtol=0, atol=1e-12)
    assert "(1 of 4 runs without a finite test error: diverged)" in ax.lines[0].get_label()


def test_error_vs_steps_holds_runs_that_stopped_at_eps():
    """With train.stop_at_eps a run's curve ends where it reached eps: it counts at that value
    afterwards, so two of three runs at error 0 keep the median at 0 (not the third run's 0.5)."""
    runs = _runs([_run(f"r{i}", seed=i) for i in range(3)])
    points = [(f"r{i}", s, 0.0 if s >= 200 else 0.5) for i in (0, 1) for s in range(0, 201, 100)]
    points += [("r2", s, 0.5) for s in range(0, 1001, 100)]
    fig, ax = error_vs_steps(runs, _curves(points))
    x, med, lo, hi = _band(ax, 0)
    np.testing.assert_array_equal(x, np.arange(0, 1001, 100))
    np.testing.assert_array_equal(med, [0.5, 0.5] + [0.0] * 9)
    np.testing.assert_array_equal(hi, [0.5, 0.5] + [0.25] * 9)
    # a run that ran its full budget, or ended early above eps, is not extended
    short = _runs([_run("a", steps=200), _run("b", steps=1000), _run("c", steps=1000)])
    points = [("a", s, 0.0) for s in (0, 100, 200)] + [("b", s, 0.5) for s in range(0, 1001, 100)]
    points += [("c", s, 0.3) for s in range(0, 401, 100)]
    fig, ax = error_vs_steps(short, _curves(points))
    x, med, _, _ = _band(ax, 0)
    np.testing.assert_array_equal(med[x > 400], 0.5)


def test_first_step_is_the_first_evaluated_step_within_eps():
    curves = _curves([("a", 0, 0.5), ("a", 100, np.float32(0.05)), ("a", 200, 0.0),
                      ("b", 0, 0.5), ("b", 100, np.nan), ("b", 200, 0.06),
                      ("c", 0, 0.0), ("c", 100, 0.0)])
    got = first_step(curves, eps=0.05)
    assert got.to_dict() == pytest.approx({"a": 100.0, "b": np.nan, "c": 0.0}, nan_ok=True)
    assert first_step(curves, eps=0.0).to_dict() == pytest.approx({"a": 200.0, "b": np.nan, "c": 0.0}, nan_ok=True)


def test_success_table_and_image_are_the_fraction_of_ok_runs_within_eps():
    runs = _grid_runs()
    runs.loc[runs.index[:3], "test_error"] = float(np.float32(0.05))   # stored float32: within eps
    runs["eps"] = 0.05
    table = success_table(runs, "data.m", "train.lr")        # train.lr: one value
    kept = runs["status"] != "failed"    # failed runs are left out, diverged ones count as not learned
    ok = (runs["status"] == "ok") & (runs["test_error"].astype(np.float32) <= np.float32(0.05))
    want = ok[kept].astype(float).groupby(runs["m"][kept]).mean()
    assert table.shape == (1, 3) and list(table.index) == [0.1]
    np.testing.assert_allclose(table.to_numpy()[0], want.to_numpy(), rtol=0, atol=1e-12)
    both = success_table(runs, "data.m", "target.n", eps=0.1)
    hit = ((runs["status"] == "ok") & (runs["test_error"] <= 0.1))[kept].astype(float)
    want = hit.groupby([runs["n"][kept], runs["m"][kept]]).mean()
    np.testing.assert_allclose(both.to_numpy(), want.unstack().to_numpy(), rtol=0, atol=1e-12)
    fig, ax = phase_diagram(runs, "data.m", "target.n", eps=0.1)
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), want.unstack().to_numpy(), rtol=0, atol=1e-12)
    # every cell where a run diverged carries a ×, and a key says what it means
    diverged = (runs["status"] == "diverged").groupby([runs["n"], runs["m"]]).any().unstack().to_numpy()
    marked = {(round(t.get_position()[1]), round(t.get_position()[0])) for t in ax.texts if t.get_text() == "×"}
    assert marked == {(int(i), int(j)) for i, j in np.argwhere(diverged)} and marked
    failed = (~kept).groupby([runs["n"], runs["m"]]).any().unstack().to_numpy()
    marked = {(round(t.get_position()[1]), round(t.get_position()[0])) for t in ax.texts if t.get_text() == "†"}
    assert marked == {(int(i), int(j)) for i, j in np.argwhere(failed)} and marked
    assert any(t.get_text() == "× runs diverged, † runs failed (left out)" for t in ax.texts)
    _, ax = phase_diagram(runs[runs["status"] != "diverged"], "data.m", "target.n", eps=0.1)
    assert not [t for t in ax.texts if "×" in t.get_text()]


def _logrank(a, b, cap):
    """Textbook log-rank test (two-sided): unreached runs censored at the cap, an event and a
    censoring at one time with the censored run still at risk."""
    t = np.r_[a, b]
    event = np.isfinite(t)
    t = np.where(event, t, cap)
    first = np.r_[np.ones(len(a), bool), np.zeros(len(b), bool)]
    o = e = v = 0.0
    for u in np.unique(t[event]):
        risk = t >= u
        n, n1 = risk.sum(), (risk & first).sum()
        d, d1 = (event & (t == u)).sum(), (event & (t == u) & first).sum()
        o, e = o + d1, e + d * n1 / n
        v += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1) if n > 1 else 0.0
    return 2 * stats.norm.sf(abs(o - e) / np.sqrt(v)) if v > 0 else np.nan


def test_compare_reach_matches_scipy_fisher_and_the_textbook_logrank():
    rng = np.random.default_rng(7)
    values = np.array([0, 100, 300, 1000, np.nan, np.inf])   # ties, a reach at the cap, both kinds of unreached
    checked = 0
    for _ in range(300):
        a, b = (rng.choice(values, size) for size in rng.integers(1, 8, 2))
        c = compare_reach(a, b, cap=1000)
        ha, hb = int(np.isfinite(a).sum()), int(np.isfinite(b).sum())
        assert c.reached == (ha, hb) and c.runs == (a.size, b.size)
        assert c.fisher_p == pytest.approx(stats.fisher_exact([[ha, a.size - ha], [hb, b.size - hb]]).pvalue,
                                           rel=1e-12)
        want = _logrank(a, b, 1000)
        assert c.logrank_p == pytest.approx(want, rel=1e-9, nan_ok=True)
        checked += np.isfinite(want)
    assert checked > 200


def test_compare_reach_refuses_negative_steps():
    """-1 is the training loop's raw 'not reached': taken as a step it would be the fastest reach."""
    with pytest.raises(ValueError, match="negative"):
        compare_reach([-1, -1, 500], [400, 600, 700], cap=1000)
    assert compare_reach([0, 500], [np.nan, np.inf], cap=1000).reached == (2, 0)   # step 0 is a reach


def test_series_follow_the_grid_values_not_their_text():
    rows, points = [], []
    for i, m in enumerate((2048, 128, 512)):
        rows.append(_run(f"r{i}", test_error=0.1, m=m, grid={"data.m": m, "train.lr": 0.1}))
        points += [(f"r{i}", s, 0.5 / (1 + i)) for s in (0, 100)]
    fig, ax = error_vs_steps(_runs(rows), _curves(points))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["m=128, lr=0.1", "m=512, lr=0.1", "m=2048, lr=0.1"]


def _scaling_drawn(monkeypatch, runs):
    """plot_results(kind="scaling") over `runs` (as load_stores returns them): what it drew."""
    import sparselearn.plotting.auto as auto
    from sparselearn.plotting import scaling_plot

    drawn = {}

    def spy(table, x, y, **kwargs):
        fig, ax, fits = scaling_plot(table, x, y, **kwargs)
        drawn.update(x=x, y=y, by=kwargs.get("by"), rows=len(table),
                     labels=[t.get_text() for t in ax.get_legend().get_texts()])
        return fig, ax, fits

    monkeypatch.setattr(auto, "load_stores", lambda path: ([Path(path)], runs, None))
    monkeypatch.setattr(auto, "scaling_plot", spy)
    monkeypatch.setattr(auto, "save", lambda fig, out: [])
    auto.plot_results("results/x", "scaling")
    return drawn


def test_a_scaling_plot_with_a_fitted_learner_draws_the_error_that_every_learner_has(monkeypatch):
    """An SGD store beside a gf2 store (configs/compare/parity_*): gf2 stores no steps, so a
    steps_to_eps axis would call its exact recoveries unreached."""
    rows = [_run(f"{name}{m}{s}", "ok", err, {"learner.name": name, "data.m": m}, learner=name, m=m, seed=s,
                 steps=None if name == "gf2" else 1000, steps_to_eps=None if name == "gf2" or m == 64 else 500)
            for name, err in (("gf2", 0.0), ("mlp", 0.25)) for m in (64, 1024, 8192) for s in range(3)]
    drawn = _scaling_drawn(monkeypatch, _runs(rows))
    assert (drawn["x"], drawn["y"], drawn["by"]) == ("data.m", "test_error", "learner.name")
    assert not any("unreached" in label for label in drawn["labels"] if "gf2" in label)


def test_a_scaling_plot_keeps_experiments_apart_and_counts_diverged_and_failed_runs(monkeypatch):
    """Two experiments of one results root (load_stores puts `experiment` in the grid): one
    series each, never pooled; on the test-error axis diverged and failed runs are counted."""
    rows = []
    for e, err in (("a", 0.1), ("b", 0.4)):
        for n in (8, 16, 32):
            for s in range(4):
                status = "diverged" if (e, n, s) == ("a", 32, 0) else "failed" if (e, n, s) == ("b", 8, 1) else "ok"
                rows.append(_run(f"{e}{n}{s}", status, np.nan if status != "ok" else err * n / 8,
                                 {"experiment": e, "target.n": n}, experiment=e, n=n, seed=s, steps_to_eps=None))
    drawn = _scaling_drawn(monkeypatch, _runs(rows))
    assert (drawn["x"], drawn["y"], drawn["by"]) == ("target.n", "test_error", "experiment")
    assert drawn["rows"] == 24
    a, b = drawn["labels"]
    assert a.startswith("experiment=a: ") and "1/12 runs unreached; 1 diverged" in a and "failed" not in a
    assert b.startswith("experiment=b: ") and "1 failed (left out)" in b and "unreached" not in b


def test_a_log_step_axis_keeps_runs_that_stopped_at_step_0():
    """stop_at_eps: three runs within eps at step 0 (one curve point), two still at 0.5."""
    runs = _runs([_run(f"r{i}", "ok", 0.0 if i < 3 else 0.5, seed=i, steps=1000, eps=0.05) for i in range(5)])
    points = [(f"r{i}", 0, 0.0) for i in range(3)] + [(f"r{i}", s, 0.5) for i in (3, 4) for s in (0, 250, 500, 1000)]
    for logx in (False, True):
        _, ax = error_vs_steps(runs, _curves(points), logx=logx)
        x, med, lo, hi = _band(ax, 0)
        np.testing.assert_array_equal(x, [250, 500, 1000] if logx else [0, 250, 500, 1000])
        np.testing.assert_array_equal(med, np.zeros(len(x)))   # 3 of the 5 runs at 0


def test_curves_say_how_many_runs_failed_even_when_all_of_a_series_did():
    runs = _runs([_run(f"{name}{m}{s}", "failed" if name == "gf2" or (m, s) == (100, 0) else "ok", 0.2,
                       {"learner.name": name, "data.m": m}, m=m, seed=s)
                  for name in ("gf2", "mlp") for m in (100, 400, 1600) for s in range(3)])
    _, ax = error_vs_m(runs)
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["name=gf2 (all 9 runs failed), not drawn", "name=mlp (1 of 9 runs failed)"]
    points = [(r, s, 0.2) for r in runs.loc[runs["status"] == "ok", "run_id"] for s in (0, 100)]
    _, ax = error_vs_steps(runs[runs["m"] == 400], _curves(points))
    assert [line.get_label() for line in ax.lines] == ["m=400, name=gf2 (all 3 runs failed), not drawn", "m=400, name=mlp"]
