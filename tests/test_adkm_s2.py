"""ADKM-S2's studies (experiments/adkm_s2*.py): the teachers need the degree the low-degree arm
fits them at, a search that runs out of budget is censored at the budget, and the theory
exponents are those of the rates they name."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from sparselearn import analysis, figures, theory

ROOT = Path(__file__).resolve().parents[1]
base = figures.study("adkm_s2", near=ROOT / "paper_figs" / "x.py")


@pytest.mark.parametrize("arm", ["lowdegree", "ntk", "mlp"])
def test_each_point_fits_its_teacher_at_its_fourier_degree(arm):
    """The degree of a point is the largest Fourier degree of its teachers (every seed drawn):
    log₂(s/k) at most for a junta (a random function of its bits may have lower degree), p
    exactly for the parity net. Checked by the exact Walsh spectrum at smoke size."""
    for point, exp in zip(base.points(arm, True), base.arm_experiments(arm, True).values()):
        target = exp.target
        degrees, ks = [], []
        for seed in range(4):
            params = target.init(jax.random.key(seed))
            spectrum = analysis.spectrum(lambda x, p=params: target.labels(p, x), target.n)
            degrees.append(int(analysis.set_sizes(target.n)[np.abs(spectrum) > 1e-5].max(initial=0)))
            ks.append(target.certify(params).max_active)
        if point["teacher"].startswith("dense"):
            assert set(degrees) == {point["degree"]} == {min(point["n"], point["s"] - 1)}
            assert set(ks) == {point["degree"] + 1}           # dense: every unit fires on some input
        else:
            assert max(degrees) == point["degree"] == int(np.log2(point["s"] // point["k"]))
            assert max(ks) <= point["k"]


def test_a_search_out_of_budget_is_censored_at_the_budget(tmp_path, monkeypatch):
    """A parity on 6 bits needs all 64 characters of degree ≤ 6: with m ≤ 16 no seed fits it,
    so the row is censored, m_star NaN and the budget the largest m tried."""
    smoke = {"seeds": 2, "max_m": 16, "rounds": 3,
             "sweeps": {"vs s": ("s", ("n", 6), {"dense parity": [7], "junta k=1": [2]})}}
    monkeypatch.setitem(base.ARMS, "lowdegree", {**base.ARMS["lowdegree"], "smoke": smoke})
    table = base.arm_measure("lowdegree", smoke=True, store=str(tmp_path))
    dense = table[table["teacher"] == "dense parity"].iloc[0]
    junta = table[table["teacher"] == "junta k=1"].iloc[0]
    assert dense["censored"] and np.isnan(dense["m_star"]) and dense["budget"] == 16
    assert not junta["censored"] and 1 <= junta["m_star"] <= 16     # one bit: two characters
    assert list(base.censored_rows(table)["teacher"]) == ["dense parity"]


def test_theory_exponents():
    """Thm 17 (at fixed WR + B) is linear in s and in n; the fitted learners' parity bound
    N_p(n) grows like n^p for n ≫ p and stops at 2ⁿ once p = n; SGD's is n^(p−1)."""
    assert base.arm_theory("lowdegree", "junta k=1, vs s (n=12)")[0] == pytest.approx(1.0, abs=0.01)
    assert base.arm_theory("lowdegree", "junta k=2, vs n (s=4)")[0] == pytest.approx(1.0, abs=0.01)
    assert base.arm_theory("mlp", "dense parity, vs n (s=4)")[0] == pytest.approx(2.0)
    n = np.array([1000.0, 2000.0])
    _, alpha = theory.fit_power_law(n, base.parity_bound(n, 4, "ntk"))
    assert alpha == pytest.approx(3.0, abs=0.01)
    assert base.parity_bound(12, np.array([13, 64]), "lowdegree") == pytest.approx([4096, 4096])
    # along s the dense row's bound is fitted only where the teacher still changes (s ≤ n + 1)
    alpha, theorem = base.arm_theory("lowdegree", "dense parity, vs s (n=12)")
    values = [s for s in base.FULL["vs s"][2]["dense parity"] if s <= 13]
    assert alpha == pytest.approx(theory.fit_power_law(values, theory.num_features(12, np.array(values) - 1))[1])
    assert "parity" in theorem


def test_exponent_rows_of_a_separated_table():
    """A table shaped like the study's gives one row per series; a censored point leaves the
    fit and counts as not reached."""
    ntk = figures.study("adkm_s2_ntk", near=ROOT / "paper_figs" / "x.py")
    s = np.array([4, 8, 16, 32])
    table = pd.DataFrame({"series": "junta k=1, vs s (n=12)", "size": s, "m_star": 50.0 * s * [1.0, 1.1, 0.9, 1.0],
                          "censored": False})
    dense = pd.DataFrame({"series": "dense parity, vs s (n=12)", "size": [3, 4, 5, 6],
                          "m_star": [80.0, 300.0, 800.0, np.nan], "censored": [False, False, False, True]})
    rows = [figures.exponent_row(ntk, v, part) for v, part in pd.concat([table, dense]).groupby("series")]
    by = {r["series"].split("=", 1)[1]: r for r in rows}
    sparse, parity = by["junta k=1, vs s (n=12)"], by["dense parity, vs s (n=12)"]
    assert sparse["exponent"] == pytest.approx(1.0, abs=0.1) and sparse["verdict"] == "agrees"
    assert parity["reached"] == "3/4" and parity["exponent"] > 3
    assert (sparse["learner"], parity["learner"]) == ("kernel", "kernel")


def test_floor_points_are_upper_bounds_not_censored():
    """A point learned at the search's floor keeps its bound in m_upper and is neither fitted nor
    drawn as censored; an unreached, uncensored point (a smoke search cut short) is."""
    table = pd.DataFrame({"m_star": [np.nan, 100.0, np.nan, np.nan], "censored": [False, False, True, False],
                          "floor": [True, False, False, False], "m_upper": [64.0, np.nan, np.nan, np.nan]})
    assert base.censored_rows(table).index.tolist() == [2, 3]
