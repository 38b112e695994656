"""The figure machinery against independent computations: the series a figure draws from its kept
tables, recomputed here with plain pandas from paper_figs/data/ and compared with the drawn Line2D
data; kept tables that would be silently dropped (runs of undeclared experiments, a missing table
of a multi-table figure) are errors; a diverged run counts as a run that did not reach t_c."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from sparselearn import figures
from sparselearn.errors import ConfigError

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "paper_figs" / "data"


def _fig(name: str):
    return figures.load(figures.find(ROOT, name))


def _table(name: str) -> pd.DataFrame:
    return pd.read_parquet(DATA / f"{name}.parquet")


def _line(ax, label: str):
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


# ------------------------------------------------------------------ kept tables that would be dropped
TINY = '''"""TINY: a figure with labelled experiments."""
from sparselearn import figures

ID = "TINY"


def experiments(smoke):
    base = {"target": {"name": "sparse_parity", "n": 10, "k": 2}, "learner": {"name": "mlp", "width": 8}}
    return {"a": figures.config(base, experiment="tiny_a"), "b": figures.config(base, experiment="tiny_b")}


def draw(results):
    return results.runs
'''


def test_kept_runs_of_an_undeclared_experiment_are_an_error(tmp_path):
    """A kept run whose experiment the figure no longer declares would get no label and drop out
    of every labelled series; collect names it and the command that recomputes the tables."""
    (tmp_path / "paper_figs" / "data").mkdir(parents=True)
    (tmp_path / "paper_figs" / "fig_tiny.py").write_text(TINY)
    data = tmp_path / "paper_figs" / "data"
    pd.DataFrame({"run_id": ["1", "2"], "experiment": ["tiny_a", "tiny_b"]}).to_parquet(data / "tiny.parquet")
    pd.DataFrame({"run_id": ["1"], "step": [0]}).to_parquet(data / "tiny-curves.parquet")
    fig = figures.load(tmp_path / "paper_figs" / "fig_tiny.py")
    assert figures.collect(fig).runs["label"].tolist() == ["a", "b"]
    pd.DataFrame({"run_id": ["1", "2"], "experiment": ["tiny_a", "tiny_old"]}).to_parquet(data / "tiny.parquet")
    with pytest.raises(ConfigError) as err:
        figures.collect(fig)
    message = str(err.value)
    assert "tiny_old" in message and "tiny_a" not in message and "sparselearn figs TINY" in message


def test_adkm_s2_with_an_arm_table_missing_is_an_error(tmp_path):
    """Kept tables of two arms only (the NTK one deleted to recompute it): an error naming the
    missing table, not a figure with the NTK row left out."""
    for arm in ("lowdegree", "mlp"):
        shutil.copy(DATA / f"adkm-s2-{arm}.parquet", tmp_path)
    fig = _fig("ADKM-S2")
    results = figures.collect(fig, data=tmp_path)
    assert sorted(results.tables) == ["lowdegree", "mlp"]
    with pytest.raises(ConfigError, match="no table 'ntk'"):
        fig.draw(results)


def test_hp_1r_without_its_width_check_table_is_an_error(tmp_path):
    shutil.copy(DATA / "hp-1r-t_c.parquet", tmp_path)
    fig = _fig("HP-1R")
    with pytest.raises(ConfigError, match="no table 'width_check'"):
        fig.draw(figures.collect(fig, data=tmp_path))


def test_wnl_2_correlation_table_missing_or_short():
    """Without the correlation table: the figures' ConfigError (not a bare KeyError); a run without
    a correlation row still counts in the test-error median."""
    fig = _fig("WNL-2")
    full = figures.collect(fig)
    with pytest.raises(ConfigError, match="no table 'correlation'"):
        fig.draw(figures.Results({k: v for k, v in full.tables.items() if k != "correlation"}))
    runs, correlation = full.runs, full["correlation"]
    joint16 = runs[(runs["n"] == 16) & runs["experiment"].str.contains("joint")]
    dropped = joint16[joint16["m"] == joint16["m"].max()]["run_id"].iloc[:2]
    drawn = fig.draw(figures.Results({**full.tables, "correlation": correlation[~correlation["run_id"].isin(dropped)]}))
    x, y = _line(drawn.axes[0], "d=16, joint Adam (wnl_net)")
    want = joint16.groupby("m")["test_error"].median()
    np.testing.assert_array_equal(x, want.index.to_numpy(float))
    np.testing.assert_allclose(y, want.to_numpy(), rtol=1e-12)


def test_hp_2_counts_a_diverged_run_as_not_reached():
    """Two of the 2000 initialisation runs diverged (no t_c), one failed (no outcome): the title
    counts the diverged ones as not reached and the histogram holds the 1997 that reached."""
    fig = _fig("HP-2")
    runs = _table("hp-2")
    inits = runs.index[runs["experiment"].str.endswith("inits")]
    runs.loc[inits[:2], ["status", "steps_to_eps"]] = ["diverged", pd.NA]
    runs.loc[inits[2], ["status", "steps_to_eps"]] = ["failed", pd.NA]
    drawn = fig.draw(figures.Results({"runs": runs}))
    assert "; 2 not reached by 4000)" in drawn.axes[0].get_title()
    bars = drawn.axes[0].containers[0]
    assert sum(p.get_height() for p in bars) == 1997 == len(inits) - 3


# ------------------------------------------------------------------ drawn series vs the kept tables
def test_hp_15_cells_are_the_median_curves_of_their_runs():
    runs, curves = _table("hp-15"), _table("hp-15-curves")
    fig = _fig("HP-15")
    drawn = fig.draw(figures.collect(fig))
    ms, lams = sorted(runs["m"].unique()), sorted(runs["weight_decay"].unique())
    axes = np.asarray(drawn.axes[: len(ms) * len(lams)]).reshape(len(ms), len(lams))
    for i, m in enumerate(ms):
        for j, lam in enumerate(lams):
            ids = runs.loc[(runs["m"] == m) & (runs["weight_decay"] == lam), "run_id"]
            assert len(ids) == 3
            want = curves[curves["run_id"].isin(ids)].groupby("step")[["train_error", "test_error"]].median()
            for label, column in (("train", "train_error"), ("test", "test_error")):
                x, y = _line(axes[i, j], label)
                np.testing.assert_array_equal(x, want.index.to_numpy(float))
                np.testing.assert_allclose(y, want[column].to_numpy(), rtol=1e-6)


def test_pf_2r_medians_count_failures_as_never():
    runs = _table("pf-1")
    fig = _fig("PF-2R")
    drawn = fig.draw(figures.collect(fig))
    for ax, init in zip(drawn.axes, ("dense", "sparse")):
        mine = runs[runs["experiment"].str.contains("sparse") == (init == "sparse")]
        for r, part in mine.groupby("width"):
            t = part["steps_to_eps"].astype(float).where(part["status"] == "ok").fillna(np.inf)
            med = t.groupby(part["m"]).median()
            x, y = _line(ax, f"r = {r}")
            np.testing.assert_array_equal(x, med.index.to_numpy(float))
            np.testing.assert_array_equal(y, med.where(np.isfinite(med)).to_numpy())
    assert np.isnan(_line(drawn.axes[1], "r = 10000")[1]).all()    # sparse r = 10⁴: ≤ half succeed anywhere


def test_hp_4l_median_line_counts_unconverged_runs():
    runs = _table("hp-4l")
    fig = _fig("HP-4L")
    drawn = fig.draw(figures.collect(fig))
    x, y = _line(drawn.axes[0], "median (where > half converged)")
    t = runs["steps_to_eps"].astype(float).fillna(np.inf)
    med = t.groupby(runs["width"]).median()
    np.testing.assert_allclose(x, np.log10(med.index.to_numpy(float)))
    np.testing.assert_array_equal(y, med.where(np.isfinite(med)).to_numpy())
    assert np.isnan(y[list(med.index).index(3)])                    # r = k: 6 of 50 converge


def test_act_1_lines_are_the_median_active_fraction_and_test_loss():
    runs, curves, active = _table("act-1"), _table("act-1-curves"), _table("act-1-active")
    fig = _fig("ACT-1")
    left, right = fig.draw(figures.collect(fig)).axes[:2]
    for (teacher, student), part in runs.groupby(["teacher", "student"]):
        label = f"{teacher} / {student}"
        for ax, table, column in ((left, active, "active"), (right, curves, "test_loss")):
            want = table[table["run_id"].isin(part["run_id"])].groupby("step")[column].median()
            x, y = _line(ax, label)
            np.testing.assert_array_equal(x, want.index.to_numpy(float))
            np.testing.assert_allclose(y, want.to_numpy(), rtol=1e-6)


def test_moe_1_panels_are_the_median_test_error_per_active_units():
    runs = _table("moe-1")
    fig = _fig("MOE-1")
    drawn = fig.draw(figures.collect(fig))
    titles = {ax.get_title(): ax for ax in drawn.axes}
    checked = 0
    for teacher, top in fig.TEACHERS.items():
        for inputs in fig.INPUTS:
            ax = titles[f"{teacher}, {inputs} inputs"]
            cell = runs[runs["experiment"].str.contains(f"_{inputs}_top{top or 8}_")]
            for kind, label in (("dense", fig.STUDENTS[0]), ("routed", fig.STUDENTS[1].format(rw=128))):
                part = cell[cell["experiment"].str.endswith(kind)]
                active = part["grid"].map(lambda g: json.loads(g)["learner.k"]) if kind == "routed" else part["width"]
                want = part["test_error"].groupby(active.astype(int).to_numpy()).median()
                x, y = _line(ax, label)
                np.testing.assert_array_equal(x, want.index.to_numpy(float))
                np.testing.assert_allclose(y, want.to_numpy(), rtol=1e-6)
                checked += 1
    assert checked == 8


def test_adkm_d1_errorbars_are_the_median_error_per_degree():
    runs = _table("adkm-d1")
    fig = _fig("ADKM-D1")
    drawn = fig.draw(figures.collect(fig))
    ns, ss = sorted(runs["n"].unique()), sorted(runs["s"].unique())
    checked = 0
    for i, n in enumerate(ns):
        for j, s in enumerate(ss):
            ax = drawn.axes[i * len(ss) + j]
            bars = {c.get_label(): c.lines[0] for c in ax.containers}
            for label, fields in fig.TEACHERS.items():
                k = fields["k"] or s
                name = f"adkm_d1_{fields['construction']}_k{k}_n{n}_s{s}"
                part = runs[runs["experiment"] == name]
                if part.empty:
                    assert label not in bars
                    continue
                want = part.groupby("degree")["test_error"].median()
                np.testing.assert_array_equal(np.asarray(bars[label].get_xdata(), float), want.index.to_numpy(float))
                np.testing.assert_allclose(np.asarray(bars[label].get_ydata(), float), want.to_numpy(), rtol=1e-12)
                checked += 1
    assert checked == len(runs["experiment"].unique()) == 51   # 33 juntas and parity nets, 9 index, 9 dense-weight


def test_kou_t3_left_panel_is_the_mean_accuracy_per_k():
    runs = _table("kou-t3")
    fig = _fig("Kou-T3")
    left = fig.draw(figures.collect(fig)).axes[0]
    for d, part in runs.groupby("n"):
        want = 1 - part.groupby("k")["test_error"].mean()
        x, y = _line(left, f"d = {d}: mean of 10 seeds")
        np.testing.assert_array_equal(x, want.index.to_numpy(float))
        np.testing.assert_allclose(y, want.to_numpy(), rtol=1e-12)
