"""The exponent table's rows say which x values they fit, keep every width's runs, and print
intervals that do not depend on the bootstrap's seed."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting import fit_exponent

ROOT = Path(__file__).resolve().parents[1]
width_tc = figures.study("width_tc", near=ROOT / "paper_figs" / "x.py")


def _study():
    return types.SimpleNamespace(
        __file__="made_up.py", TARGET="t", LEARNER="l", X="width", Y="t_c", BY="accuracy",
        theory_exponent=lambda v: (-1.0, "a hypothesis"), reason=lambda v: None,
        experiments=lambda smoke: [figures.config({"target": {"name": "sparse_parity", "n": 10, "k": 2},
                                                   "learner": {"name": "mlp"}, "experiment": "made_up",
                                                   "sweep": {"seeds": 10}})])


def test_the_range_names_the_fitted_widths_and_reached_counts_every_run():
    """Width 3 with 2 of 10 runs converged is censored: out of the fit and of the range, while
    the reached column counts its runs (it read 'width ∈ [3, 1000]' and left its runs out)."""
    rng = np.random.default_rng(0)
    rows = []
    for width, reached in ((3, 2), (10, 10), (100, 10), (1000, 10)):
        t = 5000 * width ** -0.4 * np.exp(0.1 * rng.standard_normal(10))
        t[reached:] = np.nan
        rows += [{"width": width, "seed": s, "t_c": v} for s, v in enumerate(t)]
    part = pd.DataFrame(rows)
    row = figures.exponent_row(_study(), 1.0, part)
    assert row["range"] == "width ∈ [10, 1000]"
    assert row["reached"] == "32/40"
    assert fit_exponent(part["width"], part["t_c"]).censored == (3.0,)


def test_the_width_study_keeps_its_censored_width():
    """r = 3 reaches 100% in 6 of 50 runs: its runs stay in the study table (the fit censors it)."""
    table = width_tc.measure()
    full = table[table["accuracy"] == 1.0]
    assert 3 in set(full["width"]) and full.loc[full["width"] == 3, "t_c"].notna().sum() == 6
    assert len(full) == 190 and full["t_c"].notna().sum() == 146


def test_the_ridge_memory_bound_grows_with_the_rows():
    """The m search bisects the range of m a config accepts: the bound may not fall as m passes
    the feature count (it fell from 10.06 to 9.07 GiB at m = 16384 for 16384 random features)."""
    from sparselearn.learners.kernels import solve_bytes

    needed = [solve_bytes(m, 16384, test_rows=1024) for m in range(15000, 18000, 64)]
    assert np.all(np.diff(needed) > 0)


def test_interval_ends_barely_move_with_the_bootstrap_seed():
    """HP-1R's k = 4 series (25 runs at each of 7 n): the interval's ends moved by 0.005 over six
    bootstrap seeds at 1000 replicates; the default replicates hold them within 0.004."""
    d = pd.read_parquet(ROOT / "paper_figs" / "data" / "hp-1r-t_c.parquet")
    part = d[d["k"] == 4]
    ends = np.array([fit_exponent(part["n"], part["t_c"], seed=s).ci for s in range(4)])
    assert 0 < np.ptp(ends, axis=0).max() < 0.004   # seeds 0–3: 0.0023; other sets of four exceed 0.003 ~1%


def test_the_range_holds_an_x_whose_median_is_reached_though_some_runs_are_at_zero():
    """x = 10 with runs [0, 50, 70, unreached] has median 60: the fit uses it, so the range
    starts there (a rule counting only positive reached runs left it out)."""
    part = pd.DataFrame({"width": [10] * 4 + [20] * 3 + [40] * 3,
                         "t_c": [0, 50, 70, np.inf, 40, 42, 44, 30, 31, 33], "seed": range(10)})
    assert figures.exponent_row(_study(), 1.0, part)["range"] == "width ∈ [10, 40]"


def test_bracketed_intervals_keep_the_bracket_width_of_each_run():
    """A run picked twice in a resample keeps its one draw within the bracket: drawing each copy
    apart averaged the brackets away (5 x × 5 seeds, brackets [y/2, y]: widths 0.61 → 0.47)."""
    rng = np.random.default_rng(0)
    x = np.repeat(10 * 2.0 ** np.arange(5), 5)
    y = 3 * x ** 1.5 * np.exp(0.2 * rng.standard_normal(x.size))
    lo, hi = fit_exponent(x, y, low=y / 2, high=y, n_boot=4000).ci
    # replicate by replicate: every run drawn once, then the seeds of each x resampled
    draw, xs, slopes = np.random.default_rng(1), np.unique(x), []
    for _ in range(4000):
        yb = np.exp(draw.uniform(np.log(y / 2), np.log(y)))
        medians = [np.median(yb[np.flatnonzero(x == v)][draw.integers(0, 5, 5)]) for v in xs]
        slopes.append(np.polyfit(np.log(xs), np.log(medians), 1)[0])
    ref_lo, ref_hi = np.quantile(slopes, [0.025, 0.975])
    assert abs((hi - lo) - (ref_hi - ref_lo)) < 0.03
