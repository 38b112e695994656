"""ADKM-T1 draws what its searches did: a stop at the feature limit names the limit the search
used (smoke: 16), a search that fitted every degree without reaching ε is not called stopped, a
stopped junta is drawn without a projection, and the smoke size reaches the stop; HP-3's left
title names the batch of the run it draws; figure docstrings state what their kept tables hold."""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.learners.lowdegree import feature_count

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "paper_figs" / "data"


def _fig(name: str):
    return figures.load(figures.find(ROOT, name))


def _doc(name: str) -> str:
    return " ".join(ast.get_docstring(ast.parse(figures.find(ROOT, name).read_text())).split())


def _search(teacher: str, n: int, seed: int, errors: list[float], limit: int) -> list[dict]:
    """Rows of one search that fitted degrees 0 … len(errors) − 1 with these test errors."""
    return [{"teacher": teacher, "n": n, "seed": seed, "degree": d, "features": feature_count(n, d, "walsh"),
             "m": 256, "fit_s": 0.01 * (d + 1), "test_error": e, "max_features": limit}
            for d, e in enumerate(errors)]


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_adkm_t1_stop_names_the_search_limit_and_projects():
    t1 = _fig("ADKM-T1")
    rows = (_search("dense parity", 4, 0, [1.0, 1.0, 1.0, 1.0, 0.0], 16)
            + _search("dense parity", 5, 0, [1.0, 1.0, 1.0], 16)          # next degree: 26 > 16 features
            + _search("junta k=1", 4, 0, [1.0, 0.5, 0.01], 16)
            + _search("junta k=1", 5, 0, [1.0, 0.7, 0.5], 16))           # a stopped junta: no projection
    fig = t1.draw(types_results({"times": pd.DataFrame(rows)}))
    legend = _legend(fig)
    assert "dense parity: stopped, next degree > 16 features (time so far)" in legend
    assert not any("4096" in text for text in legend)
    projected = [line for line in fig.axes[0].lines if line.get_marker() == "x"]
    assert len(projected) == 1 and np.isfinite(projected[0].get_ydata()).all()


def test_adkm_t1_search_that_fits_every_degree_is_not_called_stopped():
    t1 = _fig("ADKM-T1")
    rows = (_search("dense parity", 4, 0, [1.0, 1.0, 1.0, 1.0, 0.0], 4096)
            + _search("dense parity", 6, 0, [1.0] * 6 + [0.06], 4096))     # d = n fitted, MSE > ε
    table = t1.outcomes(pd.DataFrame(rows))
    assert not table.set_index("n").loc[6, "stopped"] and not table.set_index("n").loc[6, "reached"]
    legend = _legend(t1.draw(types_results({"times": pd.DataFrame(rows)})))
    assert "dense parity: every degree fitted, MSE > 0.05" in legend
    assert not any("stopped" in text or "projected" in text for text in legend)


def test_adkm_t1_smoke_reaches_the_stop():
    t1 = _fig("ADKM-T1")
    n = max(t1.SMOKE["n"])
    assert feature_count(n, t1.needed_degree("dense parity", n), "walsh") > t1.SMOKE["max_features"]
    assert (pd.read_parquet(DATA / "adkm-t1-times.parquet")["max_features"] == t1.FULL["max_features"]).all()


def types_results(tables):
    return figures.Results(tables, "test")


def test_hp_3_left_title_names_the_batch_it_draws():
    hp3 = _fig("HP-3")
    runs = pd.DataFrame({"run_id": ["a", "b"], "batch": [1, 64], "noise": [0.0, 0.0], "seed": [0, 0],
                         "status": ["ok", "ok"], "n": [10, 10], "k": [2, 2], "lr": [0.1, 0.1]})
    curves = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "step": [10, 20, 10, 20], "drift": [0.1, 0.2, 0.1, 0.2],
                           "test_error": [0.5, 0.4, 0.5, 0.3]})
    weights = pd.DataFrame({"step": [0, 10, 0, 10], "coordinate": [0, 0, 1, 1], "weight": [0.1, 0.5, 0.1, 0.0],
                            "relevant": [True, True, False, False]})
    fig = hp3.draw(types_results({"runs": runs, "curves": curves, "weights": weights}))
    assert hp3.traced_batch(runs) == 1
    assert fig.axes[0].get_title() == "one run, batch 1"


def test_moe_1_docstring_states_its_sample_size():
    moe = _fig("MOE-1")
    doc = _doc("MOE-1")
    assert "16384" not in doc and doc.count(f"m = {moe.FULL['m']}") == 2
    assert (pd.read_parquet(DATA / "moe-1.parquet")["m"] == moe.FULL["m"]).all()


def test_wnl_2_docstring_median_matches_the_kept_table():
    runs = pd.read_parquet(DATA / "wnl-2.parquet")
    joint = runs[runs["experiment"].str.contains("joint") & (runs["n"] == 16) & (runs["m"] == 1024)]
    assert f"16 joint {joint['test_error'].median():.2f} / " in _doc("WNL-2")


def test_bntk_1_active_units_after_training_match_the_kept_table():
    bntk = _fig("BNTK-1")
    results = figures.collect(bntk)
    runs, active = results.runs, results["active"]
    last = active[active["step"] == active["step"].max()].merge(runs.loc[runs["scaled"], ["run_id", "beta"]])
    units = last[last["beta"] == 2.5]["active"].median() * 2048
    assert f"to {round(units)} (after training) of the 2048 units" in _doc("BNTK-1")


def test_hp_c7_docstring_reports_its_diverged_run():
    runs = pd.read_parquet(DATA / "hp-c7.parquet")
    diverged = runs[runs["status"] == "diverged"]
    assert len(diverged) == 1 and "layer1" in diverged["experiment"].iloc[0]
    doc = _doc("HP-C7")
    assert "No run diverged" not in doc and f"seed {int(diverged['seed'].iloc[0])}, diverged" in doc


def test_adkm_t1_smoke_draws_the_projection(tmp_path):
    paths = figures.make(figures.find(ROOT, "ADKM-T1"), smoke=True, store=tmp_path / "results", out=tmp_path / "out")
    assert all(p.stat().st_size > 2000 for p in paths)
