"""Two-sample tests of reached / not reached runs (`sparselearn.plotting.significance`) against
p-values computed here from their definitions, and the figures that use them (PF-5's tickets vs
controls, HP-4L's success per learning rate)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sparselearn import figures
from sparselearn.plotting.significance import compare_reach
from sparselearn.sweeps.grid import expand, group

NAN = np.nan


def fisher_two_sided(a_hit: int, a_n: int, b_hit: int, b_n: int) -> float:
    """Sum of the hypergeometric probabilities of every table (same margins) no more likely
    than the observed one."""
    hits, total = a_hit + b_hit, a_n + b_n

    def prob(x):
        return math.comb(a_n, x) * math.comb(b_n, hits - x) / math.comb(total, hits)

    observed = prob(a_hit)
    xs = range(max(0, hits - b_n), min(a_n, hits) + 1)
    return sum(prob(x) for x in xs if prob(x) <= observed * (1 + 1e-9))


def logrank_by_hand(a, b, cap):
    """(O − E)² / V over the distinct reach times, each run at risk until it reaches (or the cap)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ta, tb = np.where(np.isnan(a), np.inf, a), np.where(np.isnan(b), np.inf, b)
    o_minus_e = var = 0.0
    for t in np.unique(np.concatenate([ta, tb])[np.isfinite(np.concatenate([ta, tb]))]):
        na, nb = (ta >= t).sum(), (tb >= t).sum()
        da, d, n = (ta == t).sum(), (ta == t).sum() + (tb == t).sum(), (ta >= t).sum() + (tb >= t).sum()
        o_minus_e += da - d * na / n
        var += d * (na / n) * (nb / n) * (n - d) / max(n - 1, 1)
    return float(stats.chi2.sf(o_minus_e**2 / var, df=1))


def test_fisher_matches_the_hypergeometric_sum():
    c = compare_reach([1, 2, 3, 4], [NAN] * 4, cap=10)   # 4/4 vs 0/4: 2 / C(8, 4)
    assert c.reached == (4, 0) and c.runs == (4, 4)
    assert c.fisher_p == pytest.approx(2 / 70)
    a = [5.0] * 7 + [NAN] * 3
    b = [6.0] * 2 + [NAN] * 8
    assert compare_reach(a, b, cap=30).fisher_p == pytest.approx(fisher_two_sided(7, 10, 2, 10))
    assert compare_reach(a, b, cap=30).fisher_p == pytest.approx(0.0698, abs=1e-4)


def test_logrank_matches_the_hand_computation_with_censoring():
    a = [250, 500, 500, 1250, 2000, NAN, NAN]
    b = [750, 1500, NAN, NAN, NAN, NAN]
    c = compare_reach(a, b, cap=3000)
    assert c.logrank_p == pytest.approx(logrank_by_hand(a, b, 3000), rel=1e-9)
    assert 0 < c.logrank_p < 0.2


def test_speed_separates_arms_that_reach_equally_often():
    fast, slow = [100, 110, 120, 130, 140, 150, 160, 170], [900, 910, 920, 930, 940, 950, 960, 970]
    c = compare_reach(fast, slow, cap=1000)
    assert c.fisher_p == pytest.approx(1.0)   # 8/8 vs 8/8
    assert c.logrank_p < 0.01


def test_symmetric_and_null_cases():
    a, b = [100, 300, NAN, NAN, 700], [200, NAN, 400, NAN, NAN]
    ab, ba = compare_reach(a, b, cap=800), compare_reach(b, a, cap=800)
    assert (ab.fisher_p, ab.logrank_p) == pytest.approx((ba.fisher_p, ba.logrank_p))
    same = compare_reach(a, a, cap=800)
    assert same.fisher_p == pytest.approx(1.0) and same.logrank_p == pytest.approx(1.0)
    none = compare_reach([NAN] * 3, [NAN] * 4, cap=800)
    assert none.fisher_p == pytest.approx(1.0) and math.isnan(none.logrank_p)
    assert "0/3" in none.label("x", "y") and "n/a" in none.label()


def test_bad_input():
    with pytest.raises(ValueError, match="cap"):
        compare_reach([1200], [NAN], cap=1000)
    with pytest.raises(ValueError, match="at least one run"):
        compare_reach([], [1], cap=10)


# ------------------------------------------------------------------ the figures that use them
ROOT = Path(__file__).resolve().parents[1]


def test_pf5_tests_tickets_against_both_controls():
    fig = figures.load(ROOT / "paper_figs" / "fig_pf_5.py")
    steps = {"ticket": [1000, 2000, 3000, NAN], "random": [NAN, NAN, NAN, 5000], "fresh": [NAN] * 4,
             "parent": [500] * 4}
    runs = pd.DataFrame([{"arm": fig.ARMS[arm], "steps": 6000, "steps_to_eps": s}
                         for arm, values in steps.items() for s in values])
    runs["steps_to_eps"] = runs["steps_to_eps"].astype("Int64")
    tests = fig.reach_tests(runs)
    assert set(tests) == {"random", "fresh"}
    assert tests["random"].reached == (3, 1) and tests["fresh"].reached == (3, 0)
    assert tests["fresh"].fisher_p == pytest.approx(fisher_two_sided(3, 4, 0, 4))


def test_hp4l_learning_rates_share_one_program_and_get_exact_intervals():
    fig = figures.load(ROOT / "paper_figs" / "fig_hp_4l.py")
    for smoke in (True, False):
        exp = fig.lr_experiment(smoke)
        assert exp.learner.width == exp.target.k
        lrs = fig.LR_SMOKE["lrs"] if smoke else fig.LR_SWEEP["lrs"]
        assert len(lrs) >= 5 and math.log10(max(lrs) / min(lrs)) >= 1.5
        assert len(group(expand(exp))) == 1            # the lr is a vmapped run value
        confirm = fig.confirm_experiment(smoke)         # the best η again, on seeds the sweep did not use
        assert confirm.train.lr in lrs and not set(confirm.sweep.seeds) & set(exp.sweep.seeds)
    table = pd.DataFrame({"lr": [0.1] * 4 + [1.0] * 4, "cap": 100, "k": 3,
                          "t_c": [10, 50, NAN, NAN, 90, NAN, NAN, NAN]})
    ok = fig.lr_success(table).set_index("lr")
    assert ok.loc[0.1, "reached"] == 2 and ok.loc[1.0, "reached"] == 1
    assert fig.lr_success(table, within=60).set_index("lr").loc[1.0, "reached"] == 0
    # exact binomial bounds: P(X ≥ 2 | p = lo) = 0.025 and P(X ≤ 2 | p = hi) = 0.025 for 2 of 4
    lo, hi = ok.loc[0.1, ["ci_low", "ci_high"]]
    assert stats.binom.sf(1, 4, lo) == pytest.approx(0.025) and stats.binom.cdf(2, 4, hi) == pytest.approx(0.025)
