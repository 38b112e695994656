"""A damaged kept table is a one-line error naming the file and what to run; the PF-2R and HP-4L
captions state the rule their medians follow (failures as +∞: a finite median needs more than
half the seeds to succeed)."""

from __future__ import annotations

import types
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from sparselearn import figures
from sparselearn.errors import ConfigError

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]


def test_a_corrupt_kept_table_names_the_file_and_the_command(tmp_path):
    (tmp_path / "paper_figs" / "data").mkdir(parents=True)
    fig_file = tmp_path / "paper_figs" / "fig_tiny.py"
    fig_file.write_text('"""TINY: a figure."""\nID = "TINY"\n\ndef draw(results):\n    return results.runs\n')
    pd.DataFrame({"run_id": ["a"]}).to_parquet(tmp_path / "paper_figs" / "data" / "tiny-curves.parquet")
    (tmp_path / "paper_figs" / "data" / "tiny.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(ConfigError) as err:
        figures.collect(figures.load(fig_file))
    message = str(err.value)
    assert "tiny.parquet" in message and "sparselearn figs TINY" in message and "\n" not in message


def test_a_corrupt_kept_study_table_names_the_file(tmp_path):
    kept = tmp_path / "study-m_star.parquet"
    kept.write_bytes(b"PAR1 truncated")
    study = types.SimpleNamespace(KEPT_TABLE=kept, __file__=str(tmp_path / "study.py"),
                                  measure=lambda smoke, store: pytest.fail("measured instead of reading"))
    with pytest.raises(ConfigError, match=r"study-m_star\.parquet.*delete it and run `python .*study\.py`"):
        figures.study_table(study)


def _runs(successes: list[bool]) -> pd.DataFrame:
    """PF-1-shaped runs of one (init, width, m) cell, one per seed."""
    return pd.DataFrame({"experiment": "pf_1_dense", "status": "ok", "width": 10, "m": 700, "n": 50, "k": 3,
                         "steps": 20000, "seed": range(len(successes)),
                         "steps_to_eps": [1000.0 * (i + 1) if ok else np.nan for i, ok in enumerate(successes)]})


def test_pf_2r_title_states_the_rule_of_its_median():
    pf_2r = figures.load(ROOT / "paper_figs" / "fig_pf_2r.py")
    half = _runs([True, False, True, False])
    assert np.isnan(pf_2r.steps_table(half)["median_steps"].iloc[0])      # exactly half: no point
    assert pf_2r.steps_table(_runs([True, True, False]))["median_steps"].iloc[0] == 2000.0
    fig = pf_2r.draw(figures.Results({"runs": half}))
    title = fig._suptitle.get_text()
    assert "> half" in title and "< half" not in title
    assert "at least half" not in pf_2r.__doc__ and "fewer than half" not in pf_2r.__doc__


def test_hp_4l_median_label_states_its_rule():
    source = (ROOT / "paper_figs" / "fig_hp_4l.py").read_text()
    # np.median of [t, +inf] is +inf: with exactly half converged nothing is drawn
    assert np.median([800.0, np.inf]) == np.inf
    assert "median (where ≥ half converged)" not in source and "drawn where at least half" not in source
    # drawn: at r = 300 exactly half converge, so neither the median line nor the fit has a point there
    hp_4l = figures.load(ROOT / "paper_figs" / "fig_hp_4l.py")
    t_c = {3: [400, 500, 600, np.nan], 30: [40, 50, 60, 70], 300: [5, 6, np.nan, np.nan]}
    runs = pd.DataFrame([{"experiment": "hp_4l", "status": "ok", "width": r, "k": 3, "seed": s, "eps": 0.0,
                          "steps": 1000, "steps_to_eps": t} for r, ts in t_c.items() for s, t in enumerate(ts)])
    lr = pd.DataFrame({"part": "sweep", "lr": [0.1] * 4 + [1.0] * 4, "seed": list(range(4)) * 2, "width": 3, "k": 3,
                       "cap": 1000, "status": "ok", "t_c": [100, np.nan, 300, np.nan, 50, 60, 70, np.nan]})
    fig = hp_4l.draw(figures.Results({"runs": runs, "lr": lr}))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    median = next(line for line in fig.axes[0].lines if line.get_label().startswith("median"))
    assert np.isnan(median.get_ydata()[-1]) and hp_4l.fit_wide(hp_4l.width_tc.tc_table(runs)).points == 8   # r = 3, 30
    assert [text.startswith("median (where > half") for text in labels].count(True) == 1
    assert [text.startswith("fit (r ≥ k, > half converged)") for text in labels].count(True) == 1
    assert not any("≥ half" in text for text in labels)


def test_width_medians_count_runs_that_never_converged():
    """HP-4L / width_tc: 4 of 6 runs converge at r = 10 (t_c 100..400), all 6 at r = 100. The
    median at r = 10 is that of all six runs with the two failures as +inf (350), not of the four
    that converged (250); half converged is no finite median at all."""
    import sys

    sys.path.insert(0, str(ROOT / "experiments"))
    sys.path.insert(0, str(ROOT / "paper_figs"))
    import fig_hp_4l
    import width_tc
    from sparselearn.plotting.scaling import fit_exponent

    t_c = [100, 200, 300, 400, np.nan, np.nan] + [10, 20, 30, 40, 50, 60] + [5, 6, 7, np.nan, np.nan, np.nan]
    table = pd.DataFrame({"width": [10] * 6 + [100] * 6 + [1000] * 6, "accuracy": 1.0, "t_c": t_c})
    summary = width_tc.summary(table)
    assert summary.loc[10, "median t_c"] == 350 and np.isinf(summary.loc[1000, "median t_c"])
    assert summary.loc[10, "reached"] == 4 and summary.loc[1000, "runs"] == 6
    assert sorted(width_tc.measured_widths(table)["width"].unique()) == [10, 100]
    fit = fig_hp_4l.fit_wide(table)
    assert fit.alpha == pytest.approx(np.log10(35 / 350))   # medians 350 at r = 10, 35 at r = 100
    assert fit.alpha == pytest.approx(fit_exponent(table["width"][:12], table["t_c"][:12]).alpha)


def test_width_tc_keeps_a_diverged_run_as_unconverged():
    import sys

    sys.path.insert(0, str(ROOT / "experiments"))
    import width_tc

    runs = pd.DataFrame({"status": ["ok", "diverged", "failed"], "width": 10, "k": 3, "seed": [0, 1, 2],
                         "eps": 0.0, "steps": 1000, "steps_to_eps": pd.array([40, None, None], dtype="Int64")})
    table = width_tc.tc_table(runs)
    assert table["seed"].tolist() == [0, 1] and table["t_c"].isna().tolist() == [False, True]


def test_the_full_size_exponent_table_with_out_leaves_the_repository_alone(tmp_path):
    """`sparselearn figs exponents --out DIR`: the table in DIR only; the kept copies and the
    README's block are written by the default command alone."""
    from sparselearn.cli import main

    paths = (ROOT / "README.md", ROOT / "paper_figs/data/exponents.md", ROOT / "paper_figs/data/exponents.csv")
    written = {p: p.stat().st_mtime_ns for p in paths}   # a rewrite with the same text shows here
    assert main(["figs", "exponents", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "exponents.csv").read_bytes() == paths[2].read_bytes()
    assert {p: p.stat().st_mtime_ns for p in paths} == written
