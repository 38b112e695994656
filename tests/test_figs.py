"""Every paper figure in --smoke mode writes a non-empty PNG and PDF, through the CLI as users run
it, and redraws at full size from its kept tables without training; the exponent table lists the
scaling studies next to their theory exponents. The smoke figures share one results root, so tiny
shapes compile once for all of them."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import sparselearn as sl
from sparselearn import figures
from sparselearn.cli import main
from sparselearn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FIGURES = figures.discover(ROOT)


def halves(ids: list[str]) -> tuple[list[str], list[str]]:
    """Every figure in one of two lists, alternating, a figure that reuses another's runs
    (`KEPT_AS`) in the list of that figure."""
    first, second = ids[0::2], ids[1::2]
    for fig_id in ids:
        source = getattr(figures.load(FIGURES[fig_id]), "KEPT_AS", fig_id)
        if source != fig_id and (fig_id in first) != (source in first):
            (first if fig_id in first else second).remove(fig_id)
            (first if source in first else second).append(fig_id)
    return first, second


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Every figure in --smoke mode through the command line, `sparselearn figs ID … --smoke`
    in two processes at once (half the figures each, one results root: the worker running
    this fixture would otherwise leave a core idle for minutes). Returns (results dir, out
    dir, the processes' exit codes)."""
    base = tmp_path_factory.mktemp("figs")
    results, out = base / "results", base / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-m", "sparselearn.cli", "figs", *half, "--smoke", "--results",
                               str(results), "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for half in halves(list(FIGURES))]
    logs = [proc.communicate(timeout=1800)[0] for proc in procs]
    return results, out, [proc.returncode for proc in procs], logs


def test_every_figure_in_smoke_mode_exits_0(drawn):
    assert drawn[2] == [0, 0], "\n".join(log[-3000:] for log in drawn[3])
    first, second = halves(list(FIGURES))
    assert sorted(first + second) == sorted(FIGURES) and not set(first) & set(second)
    assert halves(["PF-1", "PF-2R", "HP-2"]) == (["PF-1", "HP-2", "PF-2R"], [])  # PF-2R reads PF-1's runs


@pytest.mark.parametrize("fig_id", list(FIGURES))
def test_each_figure_writes_png_and_pdf(drawn, fig_id):
    out = drawn[1]
    for suffix in (".png", ".pdf"):
        path = out / f"{fig_id.lower()}{suffix}"
        assert path.is_file() and path.stat().st_size > 2000, path


def test_trained_figures_are_stored_and_resumable(drawn, capsys):
    results, out = drawn[0], drawn[1]
    stored = {p.parent.parent.name for p in results.glob("*/*/runs.parquet")}
    assert {"hp_1l_smoke", "hp_15_smoke", "hp_16_smoke", "parity_tc_smoke_k2"} <= stored
    before = {p: p.stat().st_mtime_ns for p in results.glob("*/*/runs.parquet")}
    assert main(["figs", "hp_1l", "--smoke", "--results", str(results), "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in results.glob("*/*/runs.parquet")} == before  # nothing retrained
    assert "HP-1L:" in capsys.readouterr().out


@pytest.mark.parametrize("fig_id", list(FIGURES))
def test_each_figure_redraws_from_its_kept_tables(tmp_path, fig_id):
    """At full size every figure draws from paper_figs/data/ alone: its store stays empty."""
    store = tmp_path / "results"
    paths = figures.make(FIGURES[fig_id], smoke=False, store=store, out=tmp_path / "out")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 2000 for p in paths)
    assert not store.exists()


@pytest.mark.parametrize("fig_id", list(FIGURES))
def test_each_figure_follows_the_contract(fig_id):
    """ID, draw(results) and the declared hooks; no sys.path edits, no hand-derived keys, no
    training outside `sparselearn.figures`, no YAML text templates."""
    path = FIGURES[fig_id]
    source = path.read_text()
    fig = figures.load(path)
    assert fig.ID == fig_id and callable(fig.draw)
    assert ast.get_docstring(ast.parse(source)), "module docstring: title, what it shows, full-size command"
    for forbidden in ("sys.path", "key_for", "sparselearn.train", "import trajectory", "{{", "common."):
        assert forbidden not in source, forbidden
    assert 'if __name__ == "__main__":\n    figures.main(__file__)' in source
    if hasattr(fig, "experiments"):
        for smoke in (False, True):
            declared = fig.experiments(smoke)
            exps = list(declared.values()) if isinstance(declared, dict) else declared
            assert all(isinstance(e, sl.config.Experiment) for e in exps)


def _kept_configs(path: Path) -> list[str]:
    """Config hashes of the YAML documents in a kept configs file (resolved with today's defaults)."""
    return [sl.config.config_hash(sl.config.from_dict(doc)) for doc in yaml.safe_load_all(path.read_text())]


KEPT_CONFIGS = [f for f, p in FIGURES.items() if (p.parent / "data" / f"{f.lower()}.yaml").exists()]


@pytest.mark.parametrize("fig_id", KEPT_CONFIGS)
def test_kept_configs_are_the_declared_ones(fig_id):
    """paper_figs/data/<id>.yaml holds the configs of the figure's full-size experiments."""
    declared = figures.load(FIGURES[fig_id]).experiments(False)
    exps = list(declared.values()) if isinstance(declared, dict) else declared
    kept = _kept_configs(ROOT / "paper_figs" / "data" / f"{fig_id.lower()}.yaml")
    assert kept == [sl.config.config_hash(e) for e in exps]


def test_pf_1_cluster_configs_are_kept():
    for exp in figures.load(FIGURES["PF-1"]).experiments(False):
        if "part" not in exp.experiment:
            init = exp.experiment.removeprefix("pf_1_")
            assert _kept_configs(ROOT / "paper_figs" / "data" / f"pf-1-{init}.yaml") == [sl.config.config_hash(exp)]


def test_a_study_that_breaks_the_protocol_is_a_clear_error(tmp_path):
    (tmp_path / "paper_figs").mkdir()
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "half.py").write_text('TARGET, LEARNER = "sparse_parity", "mlp"\n')
    with pytest.raises(ConfigError, match=r"half\.py.*missing: X, Y, BY, experiments, measure, theory_exponent"):
        figures.studies(tmp_path)


def test_exponent_table(drawn):
    results, out = drawn[0], drawn[1]
    assert main(["figs", "exponents", "--smoke", "--results", str(results), "--out", str(out)]) == 0
    table = pd.read_csv(out / "exponents.csv")
    row = table[(table["study"] == "parity_tc") & (table["series"] == "k=2")].iloc[0]
    assert row["theory"] == pytest.approx(1.0)  # n^(k-1)
    assert row["ci_low"] <= row["exponent"] <= row["ci_high"]
    text = (out / "exponents.md").read_text()
    assert "| parity_tc | sparse_parity | mlp | t_c vs n | k=2 |" in text


def test_list_figs_and_bad_names(capsys, tmp_path, monkeypatch):
    assert main(["list", "figs"]) == 0
    listed = capsys.readouterr().out
    for fig_id in FIGURES:
        assert fig_id in listed
    assert "exponents" in listed
    assert main(["figs", "HP-99", "--smoke"]) == 2
    assert "unknown figure" in capsys.readouterr().err
    assert main(["figs"]) == 2
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)  # outside any checkout: one line saying what to do
    assert main(["figs", "HP-15", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no paper_figs/ folder" in err and "checkout" in err


def test_exponent_table_adkm_s1(drawn):
    results, out = drawn[0], drawn[1]
    if not (out / "exponents.csv").exists():
        assert main(["figs", "exponents", "--smoke", "--results", str(results), "--out", str(out)]) == 0
    table = pd.read_csv(out / "exponents.csv")
    rows = table[table["study"] == "adkm_s1"]
    assert set(rows["series"]) == {"sweep=s at k=2", "sweep=k at s=8"}
    assert (rows["target"] == "sparse_mlp").all() and (rows["learner"] == "mlp").all()
    assert rows["theory"].between(0.9, 1.25).all()  # Õ(k·s·n): linear in s and in k, up to the log
    wnl = table[(table["study"] == "wnl_samples") & (table["series"] == "k=2")].iloc[0]
    assert (wnl["target"], wnl["learner"], wnl["theory"]) == ("hierarchical", "layerwise", pytest.approx(2.0))


def test_exponent_table_covers_width(drawn):
    results, out = drawn[0], drawn[1]
    assert main(["figs", "exponents", "--smoke", "--results", str(results), "--out", str(out)]) == 0
    table = pd.read_csv(out / "exponents.csv")
    rows = table[table["study"] == "width_tc"]
    assert not rows.empty and (rows["theory"] == -1.0).all()  # the r-fold speedup hypothesis t_c ∝ 1/r


def test_readme_lists_every_figure_with_a_thumbnail():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Figures"):readme.index("## Notebooks")]
    for fig_id, path in FIGURES.items():
        assert f"[{fig_id}](paper_figs/{path.name})" in section, fig_id
        assert (ROOT / "paper_figs" / "thumbs" / f"{fig_id.lower()}.png").is_file(), fig_id
