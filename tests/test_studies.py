"""Scaling studies (experiments/*.py): runs that never reached count above the rest, docstring
and reason numbers match the kept tables, and a series a study does not know is a clear error."""

from __future__ import annotations

import re
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparselearn import figures
from sparselearn.errors import ConfigError
from sparselearn.plotting import fit_exponent

ROOT = Path(__file__).resolve().parents[1]
parity_tc = figures.study("parity_tc", near=ROOT / "paper_figs" / "x.py")
adkm_s1 = figures.study("adkm_s1", near=ROOT / "paper_figs" / "x.py")
adkm_s2 = figures.study("adkm_s2", near=ROOT / "paper_figs" / "x.py")


def test_parity_tc_summary_counts_unreached_runs_above_the_rest():
    """Two of three runs never reached 100%: the median t_c is unreached (inf), not the one
    run that did; with one of four unreached the median is that of the sorted four."""
    table = pd.DataFrame({"k": 3, "n": [10, 10, 10, 20, 20, 20, 20], "seed": [0, 1, 2, 0, 1, 2, 3],
                          "t_c": [100.0, np.nan, np.nan, 100.0, 200.0, 300.0, np.nan],
                          "eval_every": 10, "cap": 1000})
    out = parity_tc.summary(table)
    assert np.isinf(out.loc[(3, 10), "median t_c"]) and out.loc[(3, 10), "reached"] == 1
    assert out.loc[(3, 20), "median t_c"] == 250.0 and out.loc[(3, 20), "runs"] == 4


def test_parity_tc_keeps_a_diverged_run_as_unreached(monkeypatch):
    """A run whose loss went non-finite (status diverged) did not learn: it stays in the t_c table
    with t_c NaN, so the median over seeds is not that of the others alone; a failed run (an
    error, no outcome) is left out."""
    exp = parity_tc.experiments(True)[0]
    stored = pd.DataFrame({"n": 10, "k": 2, "seed": [0, 1, 2, 3], "steps": 200, "width": 32,
                           "status": ["ok", "diverged", "diverged", "failed"],
                           "steps_to_eps": pd.array([40, None, None, None], dtype="Int64")})
    monkeypatch.setattr(parity_tc, "sl", types.SimpleNamespace(run=lambda *a, **k: stored))
    table = parity_tc._tc_table([exp], "unused")
    assert table["seed"].tolist() == [0, 1, 2]
    assert np.isnan(table["t_c"].iloc[1:]).all()
    assert np.isinf(parity_tc.summary(table)["median t_c"].iloc[0])


def test_parity_tc_k2_reason_says_the_slope_is_below_k_minus_1():
    """The kept k = 2 runs grow like n^0.77: the reason must say less steep than n^(k−1) = n."""
    table = pd.read_parquet(parity_tc.KEPT_TABLE)
    part = table[table["k"] == 2]
    assert fit_exponent(part["n"], part["t_c"]).alpha < 1.0
    reason = parity_tc.reason(2)
    assert "less steep than n^(k−1)" in reason and "faster than n^(k−1)" not in reason


def test_adkm_s1_docstring_counts_the_upper_ends_of_the_kept_table():
    table = pd.read_parquet(adkm_s1.KEPT_TABLE)
    said = re.search(r"upper ends \((\d+) of the (\d+) here\)", " ".join(adkm_s1.__doc__.split()))
    assert said is not None
    assert (int(said[1]), int(said[2])) == (int(table["ci_high"].notna().sum()), len(table))


def test_adkm_s2_an_unknown_series_names_the_arm_the_known_ones_and_the_kept_table():
    """A kept table from other sweeps (here n = 16 along s) gives a ConfigError, not a bare KeyError."""
    with pytest.raises(ConfigError, match=r"adkm-s2-ntk\.parquet.*'junta k=1, vs s \(n=16\)'.*ntk arm.*"
                                          r"junta k=1, vs s \(n=12\).*delete the kept table"):
        adkm_s2.arm_theory("ntk", "junta k=1, vs s (n=16)")
    with pytest.raises(ConfigError):
        adkm_s2.arm_reason("mlp", "no such series")
