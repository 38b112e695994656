"""A kept table carries what it was made from (`figures.made_from`, in its parquet schema
metadata) and a figure or study refuses it, naming the file, the setting, the kept and the current
value, once its configs or constants say otherwise; a table kept without that record is still
read. The exponent table reads seeds from the tables, and its interval columns and verdicts print
the same rounded numbers. No training: tiny tables made by hand or by a `measure` that returns one."""

from __future__ import annotations

import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparselearn import figures
from sparselearn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "paper_figs" / "data"

FIGURE = '''"""FAKE: a figure whose table is measured from module constants."""
import pandas as pd
from sparselearn import figures

ID = "FAKE"
S, RHO = {s}, 0.9
SMOKE = {{"n": {smoke}}}
TITLE = "{title}"
DRAWING_CONSTANTS = ("TITLE",)
CALLS = []


def experiments(smoke):
    base = {{"target": {{"name": "sparse_parity", "n": 10, "k": 2}}, "learner": {{"name": "gf2"}}}}
    return {{"a": figures.config(base, experiment="fake_a", sweep={{"seeds": {seeds}}})}}


def measure(smoke, store):
    CALLS.append(smoke)
    return {{"times": pd.DataFrame({{"n": [4, 6], "s": [S, S], "rho": [RHO, RHO]}})}}


def draw(results):
    return results["times"]
'''


def _figure(folder: Path, s=16, seeds=3, smoke=4, title="a title"):
    """A fake figure file in folder/paper_figs (a fresh module each time: a new folder)."""
    (folder / "paper_figs").mkdir(parents=True, exist_ok=True)
    path = folder / "paper_figs" / "fig_fake.py"
    path.write_text(FIGURE.format(s=s, seeds=seeds, smoke=smoke, title=title))
    return figures.load(path)


def test_a_changed_constant_refuses_the_kept_table_naming_file_setting_and_values(tmp_path):
    data = tmp_path / "data"
    kept = _figure(tmp_path / "a")
    assert figures.collect(kept, data=data)["times"]["s"].tolist() == [16, 16]      # measured and kept
    assert figures.recorded(data / "fake-times.parquet")["fig_fake.S"] == 16
    # the same constants (a new module from the same text): read, not measured
    same = _figure(tmp_path / "b")
    assert figures.collect(same, data=data)["times"]["s"].tolist() == [16, 16] and same.CALLS == []
    changed = _figure(tmp_path / "c", s=32)
    with pytest.raises(ConfigError) as err:
        figures.collect(changed, data=data)
    message = str(err.value)
    assert "fake-times.parquet" in message and "fig_fake.S: kept 16, now 32" in message
    assert "delete" in message and "sparselearn figs FAKE" in message and "\n" not in message
    assert changed.CALLS == []


def test_smoke_sizes_and_drawing_constants_are_not_part_of_the_record(tmp_path):
    data = tmp_path / "data"
    figures.collect(_figure(tmp_path / "a"), data=data)
    other = _figure(tmp_path / "b", smoke=8, title="another title")
    assert figures.collect(other, data=data)["times"]["s"].tolist() == [16, 16]
    assert not any("SMOKE" in k or "TITLE" in k for k in figures.recorded(data / "fake-times.parquet"))


def test_a_changed_config_refuses_the_kept_table(tmp_path):
    data = tmp_path / "data"
    figures.collect(_figure(tmp_path / "a", seeds=3), data=data)
    with pytest.raises(ConfigError, match=r"fake-times\.parquet.*config fake_a\.sweep\.seeds: kept \[0, 1, 2\], "
                                          r"now \[0, 1, 2, 3, 4\]"):
        figures.collect(_figure(tmp_path / "b", seeds=5), data=data)


def test_a_config_field_added_since_at_its_default_is_no_difference(tmp_path):
    """A table recorded before a config field existed: the kept config is read as a config now,
    so the field at its default does not refuse it (and a changed value still does)."""
    data = tmp_path / "data"
    fig = _figure(tmp_path / "a")
    settings = figures.made_from(fig)
    del settings["config fake_a"]["train"]["eval_every"]            # as if kept before eval_every existed
    figures._write_kept(pd.DataFrame({"n": [4]}), data / "fake-times.parquet", settings)
    assert figures.collect(fig, data=data)["times"]["n"].tolist() == [4]
    settings["config fake_a"]["target"]["n"] = 12
    figures._write_kept(pd.DataFrame({"n": [4]}), data / "fake-times.parquet", settings)
    with pytest.raises(ConfigError, match=r"config fake_a\.target\.n: kept 12, now 10"):
        figures.collect(fig, data=data)


def test_a_table_kept_without_a_record_is_still_read(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"n": [4, 6], "s": [99, 99]}).to_parquet(data / "fake-times.parquet", index=False)
    assert figures.recorded(data / "fake-times.parquet") is None
    fig = _figure(tmp_path / "a", s=32)
    assert figures.collect(fig, data=data)["times"]["s"].tolist() == [99, 99] and fig.CALLS == []


STUDY = '''
from pathlib import Path
import pandas as pd
from sparselearn import figures

TARGET, LEARNER = "sparse_parity", "gf2"
X, Y, BY = "n", "t_c", "k"
KEPT_TABLE = Path(__file__).resolve().parents[1] / "paper_figs" / "data" / "fake-m_star.parquet"
EPS = {eps}


def experiments(smoke):
    return [figures.config({{"target": {{"name": "sparse_parity", "n": 10, "k": 2}}, "learner": {{"name": "gf2"}},
                            "experiment": "fake_study", "sweep": {{"seeds": 4}}}})]


def measure(smoke, store):
    return pd.DataFrame({{"n": [10, 20, 40], "k": 2, "t_c": [1.0, 2.0, 4.0], "eps": EPS}})


def theory_exponent(k):
    return 1.0, "t ~ n"
'''

SHARING = '''"""FAKE: a figure drawn from a study's kept table."""
from sparselearn import figures

ID = "FAKE"
study = figures.study("fake_study", near=__file__)


def measure(smoke, store):
    return {"m_star": study.measure(smoke, store)}


def draw(results):
    return results["m_star"]
'''


def _checkout(root: Path, eps: float) -> Path:
    """A checkout with the study experiments/fake_study.py and the figure paper_figs/fig_fake.py
    that holds it, both loaded afresh."""
    for folder in ("experiments", "paper_figs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "experiments" / "fake_study.py").write_text(STUDY.format(eps=eps))
    (root / "paper_figs" / "fig_fake.py").write_text(SHARING)
    for name in [n for n in sys.modules if n.startswith("sparselearn_figures_fake_study_")
                 or n.startswith("sparselearn_figures_fig_fake_")]:
        del sys.modules[name]
    return root


def test_a_study_table_and_the_figure_sharing_it_refuse_a_changed_study_constant(tmp_path, capsys):
    root = _checkout(tmp_path, eps=0.1)
    figures.study_main(root / "experiments" / "fake_study.py", ["--results", str(tmp_path / "r")])
    kept = root / "paper_figs" / "data" / "fake-m_star.parquet"
    assert figures.recorded(kept)["fake_study.EPS"] == 0.1 and f"kept: {kept}" in capsys.readouterr().out
    assert figures.study_table(figures.study("fake_study", near=root / "paper_figs" / "x"))["eps"].eq(0.1).all()
    assert figures.collect(figures.load(root / "paper_figs" / "fig_fake.py"))["m_star"]["eps"].eq(0.1).all()
    _checkout(tmp_path, eps=0.2)
    with pytest.raises(ConfigError, match=r"fake-m_star\.parquet.*fake_study\.EPS: kept 0\.1, now 0\.2.*delete it"):
        figures.study_table(figures.study("fake_study", near=root / "paper_figs" / "x"))
    with pytest.raises(ConfigError, match=r"fake-m_star\.parquet.*fake_study\.EPS: kept 0\.1, now 0\.2"):
        figures.collect(figures.load(root / "paper_figs" / "fig_fake.py"))
    with pytest.raises(ConfigError, match=r"fake_study\.EPS: kept 0\.1, now 0\.2"):
        figures.exponents(root, out=tmp_path / "out")


def test_study_table_keeps_what_a_measured_table_was_made_from(tmp_path):
    root = _checkout(tmp_path, eps=0.1)
    study = figures.study("fake_study", near=root / "paper_figs" / "x")
    figures.study_table(study)                                     # measured and kept
    assert figures.recorded(study.KEPT_TABLE)["config fake_study"]["sweep"]["seeds"] == [0, 1, 2, 3]


# ------------------------------------------------------------------ the repository's own figures
def _copy(src: Path, dest: Path, old: str, new: str) -> None:
    text = src.read_text()
    assert text.count(old) == 1, old
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text.replace(old, new))


def test_adkm_t1_with_another_s_refuses_its_kept_table(tmp_path):
    """The review's case: S = 32 in fig_adkm_t1.py over a table measured with s = 16."""
    (tmp_path / "paper_figs" / "data").mkdir(parents=True)
    shutil.copy(DATA / "adkm-t1-times.parquet", tmp_path / "paper_figs" / "data")
    _copy(ROOT / "paper_figs" / "fig_adkm_t1.py", tmp_path / "paper_figs" / "fig_adkm_t1.py",
          "S, EPS, RIDGE = 16, 0.05, 1e-4", "S, EPS, RIDGE = 32, 0.05, 1e-4")
    with pytest.raises(ConfigError, match=r"adkm-t1-times\.parquet.*fig_adkm_t1\.S: kept 16, now 32.*delete"):
        figures.collect(figures.load(tmp_path / "paper_figs" / "fig_adkm_t1.py"))


def test_adkm_s2_ntk_with_more_seeds_refuses_its_kept_table(tmp_path):
    """The review's case: the NTK arm at 20 seeds over a table searched with 10."""
    (tmp_path / "paper_figs" / "data").mkdir(parents=True)
    shutil.copy(DATA / "adkm-s2-ntk.parquet", tmp_path / "paper_figs" / "data")
    exps = tmp_path / "experiments"
    _copy(ROOT / "experiments" / "adkm_s2.py", exps / "adkm_s2.py", '"seeds": 10, "max_m": 4096,',
          '"seeds": 20, "max_m": 4096,')
    shutil.copy(ROOT / "experiments" / "adkm_s2_ntk.py", exps)
    with pytest.raises(ConfigError, match=r"adkm-s2-ntk\.parquet.*adkm_s2\.ARMS\.ntk\.seeds: kept 10, now 20"):
        figures.study_table(figures.study("adkm_s2_ntk", near=tmp_path / "paper_figs" / "x"))


def test_every_kept_table_records_what_it_was_made_from_and_matches_the_code():
    """Each paper_figs/data/*.parquet carries its record, and every figure and study reads its
    kept tables without a ConfigError (what they were made from is what the code declares)."""
    unrecorded = [p.name for p in sorted(DATA.glob("*.parquet")) if figures.recorded(p) is None]
    assert unrecorded == []
    for fig_id, path in figures.discover(ROOT).items():
        fig = figures.load(path)
        for name, kept in figures._kept_paths(DATA, getattr(fig, "KEPT_AS", fig.ID).lower()).items():
            figures._check_made_from(kept, figures.recorded(kept), fig, "delete it")
    for study in figures.studies(ROOT).values():
        kept = getattr(study, "KEPT_TABLE", None)
        if kept is not None and Path(kept).exists():
            figures._check_made_from(Path(kept), figures.recorded(kept), study, "delete it")


# ------------------------------------------------------------------ the exponent table
def _study(seeds: int):
    return types.SimpleNamespace(
        __file__="made_up.py", TARGET="t", LEARNER="l", X="size", Y="m_star", BY="series",
        theory_exponent=lambda v: (2.931, "a theorem"), reason=lambda v: None,
        experiments=lambda smoke: [figures.config({"target": {"name": "sparse_parity", "n": 10, "k": 2},
                                                   "learner": {"name": "gf2"}, "experiment": "made_up",
                                                   "sweep": {"seeds": seeds}})])


def test_seeds_come_from_the_table_not_from_the_current_configs():
    s = np.array([8.0, 12, 16, 24])
    part = pd.DataFrame({"size": s, "m_star": 10 * s ** 3, "seeds": 10})
    assert figures.exponent_row(_study(seeds=20), "x", part)["seeds"] == "10"       # its seeds column
    # no seeds column: the seeds of the configs the table records
    study = _study(seeds=20)
    kept = {"made_up.experiments": ["made_up"],
            "config made_up": {"sweep": {"seeds": list(range(10)), "grid": {}}}}
    assert figures.exponent_row(study, "x", part.drop(columns="seeds"), kept=kept)["seeds"] == "10"
    assert figures.exponent_row(study, "x", part.drop(columns="seeds"))["seeds"] == "20"   # no record: configs


def test_an_interval_column_and_its_verdict_print_the_same_numbers(monkeypatch):
    """One rounding, to the printed decimals: ci_high 3.3949 is 3.39 in the CSV, the column, the
    verdict and a figure's legend (once the column printed [2.17, 3.40] and the verdict
    [2.17, 3.39]; then both 3.40, twice rounded, against the legend's 3.39)."""
    import sparselearn.plotting as plotting
    from sparselearn.plotting import PowerLaw

    fit = PowerLaw(2.78, 1.0, 2.1694, 3.3949, 0.95, 4)
    monkeypatch.setattr(plotting, "fit_exponent", lambda *a, **k: fit)
    monkeypatch.setattr(plotting, "upper_half_fit", lambda *a, **k: fit)
    monkeypatch.setattr(plotting, "local_slopes", lambda *a, **k: pd.DataFrame(
        {"slope": [2.9604, 2.9655], "ci_low": np.nan, "ci_high": np.nan}))
    s = np.array([8.0, 12, 16, 24])
    row = figures.exponent_row(_study(seeds=10), "x", pd.DataFrame({"size": s, "m_star": s ** 3, "seed": 0}))
    assert (row["ci_low"], row["ci_high"], row["last_slope"]) == (2.17, 3.39, 2.97)
    assert "[2.17, 3.39]" in fit.label()      # the legend's digits
    line = figures._markdown_table([row])[2]
    column = re.search(r"\| 2\.78 (\[[^]]+\]) \|", line).group(1)
    assert row["verdict"] == "agrees" and row["reason"] == f"2.93 ∈ {column}"


def test_the_record_is_what_the_file_said_before_measuring_not_an_edit_made_meanwhile(tmp_path):
    """A long measurement during which the figure file is edited keeps the constants it ran with."""
    fig = _figure(tmp_path / "a")
    path = Path(fig.__file__)
    measure = fig.measure

    def edited_while_measuring(smoke, store):
        path.write_text(path.read_text().replace("S, RHO = 16, 0.9", "S, RHO = 32, 0.9"))
        return measure(smoke, store)

    fig.measure = edited_while_measuring
    assert figures.collect(fig, data=tmp_path / "data")["times"]["s"].tolist() == [16, 16]
    assert figures.recorded(tmp_path / "data" / "fake-times.parquet")["fig_fake.S"] == 16


def test_two_labels_of_one_experiment_name_are_refused_before_anything_trains(tmp_path):
    fig = _figure(tmp_path / "a")
    base = {"target": {"name": "sparse_parity", "n": 10, "k": 2}, "learner": {"name": "gf2"}}
    declared = {"k=2": figures.config(base, experiment="same"),
                "k=3": figures.config(base, experiment="same", target={"k": 3})}
    fig.experiments = lambda smoke: declared
    del fig.measure       # runs would be swept, then labelled by experiment name
    with pytest.raises(ConfigError, match="'k=2' and 'k=3' under one experiment name, 'same'"):
        figures.collect(fig, smoke=True, store=tmp_path / "results")
    assert not (tmp_path / "results").exists()
