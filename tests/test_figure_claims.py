"""The numbers the figure docstrings quote are the ones their kept tables give: each test recomputes
a quoted value from paper_figs/data/ and looks for it, formatted as quoted, in the docstring."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "paper_figs" / "data"


def _doc(stem: str) -> str:
    """The module docstring of paper_figs/fig_<stem>.py, whitespace collapsed."""
    return " ".join(ast.get_docstring(ast.parse((ROOT / "paper_figs" / f"fig_{stem}.py").read_text())).split())


def _table(name: str) -> pd.DataFrame:
    return pd.read_parquet(DATA / f"{name}.parquet")


def _k(steps: float) -> str:
    return f"{steps / 1000:.1f}k"


def _first(curves: pd.DataFrame, column: str) -> pd.Series:
    """Per run: the first evaluated step with `column` == 0 (runs that never reach it left out)."""
    return curves[curves[column] <= 0].groupby("run_id")["step"].min()


def test_act_1_quotes_the_drawn_test_loss_as_half_the_mse():
    runs = _table("act-1")
    assert np.allclose(runs["test_error"], 2 * runs["test_loss"], rtol=1e-4)
    final = runs.groupby(["teacher", "student"])["test_loss"].median()
    doc = _doc("act_1")
    assert "final test loss ½·MSE)" in doc and "right: test loss ½·MSE over training" in doc
    assert f"{final.max():.2f}" in doc and f"{final.iloc[0] * 1e4:.1f}·10⁻⁴" in doc


def test_adkm_s1_theory_exponents_are_the_exponent_tables():
    theory = pd.read_csv(DATA / "exponents.csv").query("study == 'adkm_s1'").set_index("series")["theory"]
    along_s, along_k = theory["sweep=s at k=2"], theory["sweep=k at s=32"]
    doc = _doc("adkm_s1")
    assert f"(theory: {along_s:.0f} and {along_k:.2f} for ADKM" in doc
    assert f"excludes ADKM's {along_k:.2f})" in doc


def test_adkm_s1_quoted_m_star_match_the_kept_table():
    table = _table("adkm-s1-m_star")
    doc = _doc("adkm_s1")
    for sweep in ("s at k=2", "k at s=32"):
        values = ", ".join(f"{v:.0f}" for v in table[table["sweep"] == sweep]["m_star"])
        assert values in doc, (sweep, values)


def test_hp_15_grokking_steps_match_the_kept_table():
    runs, curves = _table("hp-15"), _table("hp-15-curves")
    runs = runs.set_index("run_id")
    train0, test0 = _first(curves, "train_error"), _first(curves, "test_error")
    cell = runs[(runs["m"] == 3000) & (runs["weight_decay"] == 1e-3)].index
    grok = runs[(runs["m"] == 3000) & (runs["weight_decay"] == 1e-2)].index
    reached = sorted(test0.reindex(cell).dropna())
    doc = _doc("hp_15")
    assert f"median train error 0 at {_k(train0.reindex(cell).median())} steps" in doc
    assert f"test error 0 at {_k(reached[0])} and {_k(reached[1])} in {len(reached)} of {len(cell)} seeds" in doc
    span = test0.reindex(grok)
    assert f"generalises at {_k(span.median())} (median; {span.min() / 1000:.1f}–{_k(span.max())})" in doc


def test_hp_15_largest_weight_decay_fits_no_sample():
    runs = _table("hp-15")
    strong = runs[runs["weight_decay"] == 0.1]
    small = strong[strong["m"] == 300]["train_error"]
    large = strong[strong["m"] > 300]["train_error"]
    doc = _doc("hp_15")
    assert f"final train error {small.min():.2f}–{small.max():.2f} at m = 300, " \
           f"{large.min():.2f}–{large.max():.2f} above" in doc
    assert (strong["test_error"] > 0.2).all()
    stalled = strong[(strong["m"] >= 3000) & (strong["test_error"] < 0.45)]["test_error"]
    assert f"{len(stalled)} of 6 seeds at m ≥ 3000 stall at test error " \
           f"{stalled.min():.2f}–{stalled.max():.2f}" in doc


def test_hp_1l_polynet_large_batch_steps_match_the_kept_table():
    runs = _table("hp-1l")
    steps = runs[(runs["learner"] == "polynet") & (runs["batch"] >= 16)].groupby("batch")["steps_to_eps"]
    medians = steps.median()
    doc = _doc("hp_1l")
    assert (f"B ≥ 16 with η = 0.1: {medians.min():.0f}–{medians.max():.0f} "
            f"({steps.min().min():.0f}–{steps.max().max():.0f}) steps") in doc


def test_hp_1r_quoted_median_t_c_match_the_kept_table():
    table = _table("hp-1r-t_c")
    doc = _doc("hp_1r")
    for k, part in table.groupby("k"):
        values = ", ".join(f"{v:.0f}" for v in part.groupby("n")["t_c"].median())
        assert values in doc, (k, values)


def test_hp_3_final_drift_at_batch_1_matches_the_kept_table():
    runs, curves = _table("hp-3"), _table("hp-3-curves")
    end = curves[curves["step"] == curves["step"].max()].merge(runs[["run_id", "batch", "noise"]], on="run_id")
    rho = end[end["batch"] == 1].groupby("noise")["drift"].median()
    assert f"({rho[0.0]:.2f} vs {rho[0.5]:.2f} at the end)" in _doc("hp_3")


def test_moe_1_sparse_teacher_floor_matches_the_kept_table():
    runs = _table("moe-1")
    sparse = runs[runs["experiment"].str.contains("top1")]
    medians = sparse.groupby(["experiment", "grid"])["test_error"].median()  # grid: the student's size
    doc = _doc("moe_1")
    assert f"{np.floor(medians.min() * 100) / 100:.2f} on it (best seed {sparse['test_error'].min():.2f})" in doc


def test_moe_2_quoted_ratios_match_the_kept_table():
    medians = _table("moe-2").groupby("experiment")["test_error"].median()
    rank1 = medians["moe_2_dictionary1_k1_r1"] / medians["moe_2_dictionary1_k1_r8"]
    rank2 = medians["moe_2_dictionary1_k1_r2"] / medians["moe_2_dictionary1_k1_r8"]
    one_atom = medians["moe_2_dictionary1_k1_r8"] / medians["moe_2_dictionary1_k16_r8"]
    doc = _doc("moe_2")
    assert f"r = 1 is {rank1:.1f}× worse, r = 2 {rank2:.1f}×" in doc
    assert f"{one_atom:.1f}× on one-atom" in doc


def test_pf_1_small_samples_quoted_errors_match_the_kept_table():
    runs = _table("pf-1")
    small = runs[runs["m"] <= 500]
    narrow = small[small["width"] <= 100]["test_error"]
    wide = small[small["width"] >= 1000]["test_error"]
    doc = _doc("pf_1")
    assert f"training error ≤ {small['train_error'].max() * 100:.1f}%" in doc
    assert f"test error stays at {narrow.min() * 100:.0f}–{narrow.max() * 100:.0f}% up to r = 100" in doc
    assert f"r ≥ 10³ it is down to {wide.min() * 100:.0f}–{wide.max() * 100:.0f}% at T" in doc


def test_pf_5_quoted_reach_counts_match_the_kept_table():
    runs = _table("pf-5")
    reached = runs.groupby("arm")["steps_to_eps"].agg(["count", "size", "median"])
    doc = _doc("pf_5")
    for arm, label in (("top-5 units, rewound", "rewound top-5 tickets"),
                       ("random 5 units, rewound", "random 5 units rewound")):
        row = reached.loc[arm]
        assert f"{label} {int(row['count'])}/{int(row['size'])} ({row['median'] / 1000:g}k)" in doc, arm


def test_hp_15_quotes_the_one_seed_that_groks_at_m_1000():
    runs, curves = _table("hp-15"), _table("hp-15-curves")
    runs = runs.set_index("run_id")
    cell = runs[(runs["m"] == 1000) & (runs["weight_decay"] == 1e-2)]
    train0, test0 = _first(curves, "train_error").reindex(cell.index), _first(curves, "test_error").reindex(cell.index)
    grokked = test0.dropna()
    doc = _doc("hp_15")
    assert len(grokked) == 1 and f"one seed groks (train error 0 at {_k(train0[grokked.index[0]])} steps, test " \
                                  f"error 0 at {_k(grokked.iloc[0])})" in doc
    rest = sorted(cell.drop(grokked.index)["test_error"])
    assert f"one ends at test error {rest[0]:.2f} and one at chance" in doc and abs(rest[1] - 0.5) < 0.01


def test_adkm_d2_every_teacher_is_within_claim_2_1_and_the_quoted_slopes_match():
    table = _table("adkm-d2-sensitivity")
    assert (table["tail"] <= table["tail_bound"]).all() and (table["tail"] > 0).all()
    doc = _doc("adkm_d2")
    medians = table.groupby(["k", "n"])[["AS", "tail", "tail_bound"]].median()
    slopes = [np.polyfit(np.log(m.index.get_level_values("n")), np.log(m["AS"]), 1)[0] for _, m in medians.groupby("k")]
    assert "log-log slopes of the medians " + f"{slopes[0]:.2f}, {slopes[1]:.2f} and {slopes[2]:.2f}".replace("-", "−") in doc
    ratio = medians["tail_bound"] / medians["tail"]
    assert f"by a factor {ratio.min():.1f}–{ratio.max():.1f} in the medians" in doc
    assert f"at most {(table['tail'] / table['tail_bound']).max():.2f} of it for any teacher" in doc
    assert f"is {medians['tail'].min():.2f}–{medians['tail'].max():.2f} (medians)" in doc
