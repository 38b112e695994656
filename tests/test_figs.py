"""Every paper figure in --smoke mode writes a non-empty PNG and PDF, through the CLI as users run
it; the exponent table lists the scaling study next to its theory exponent. The figures share one
results root, so tiny shapes compile once for all of them."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from sparselearn.cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import paper_figs  # noqa: E402


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Run `sparselearn figs --all --smoke` once; return (results dir, out dir, exit code, stdout)."""
    base = tmp_path_factory.mktemp("figs")
    results, out = base / "results", base / "out"
    code = main(["figs", "--all", "--smoke", "--results", str(results), "--out", str(out)])
    return results, out, code


def test_figs_all_smoke_exit_0(drawn):
    assert drawn[2] == 0


@pytest.mark.parametrize("fig_id", list(paper_figs.FIGURES))
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


def test_exponent_table(drawn):
    results, out = drawn[0], drawn[1]
    assert main(["figs", "exponents", "--smoke", "--results", str(results), "--out", str(out)]) == 0
    table = pd.read_csv(out / "exponents.csv")
    row = table[(table["study"] == "parity_tc") & (table["series"] == "k=2")].iloc[0]
    assert row["theory"] == pytest.approx(1.0)  # n^(k-1)
    assert row["ci_low"] <= row["exponent"] <= row["ci_high"]
    text = (out / "exponents.md").read_text()
    assert "| parity_tc | sparse_parity | mlp | t_c vs n | k=2 |" in text


def test_list_figs_and_bad_names(capsys):
    assert main(["list", "figs"]) == 0
    listed = capsys.readouterr().out
    for fig_id in paper_figs.FIGURES:
        assert fig_id in listed
    assert "exponents" in listed
    assert main(["figs", "HP-99", "--smoke"]) == 2
    assert "unknown figure" in capsys.readouterr().err
    assert main(["figs"]) == 2


def test_exponent_table_adkm_s1(drawn):
    results, out = drawn[0], drawn[1]
    if not (out / "exponents.csv").exists():
        assert main(["figs", "exponents", "--smoke", "--results", str(results), "--out", str(out)]) == 0
    table = pd.read_csv(out / "exponents.csv")
    rows = table[table["study"] == "adkm_s1"]
    assert set(rows["series"]) == {"sweep=s at k=2", "sweep=k at s=8"}
    assert (rows["target"] == "sparse_mlp").all() and (rows["learner"] == "mlp").all()
    assert rows["theory"].between(0.9, 1.2).all()  # Õ(k·s·n): linear in s and in k, up to the log
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
    for fig_id, module in paper_figs.FIGURES.items():
        assert f"[{fig_id}](paper_figs/{module}.py)" in section, fig_id
        assert (ROOT / "paper_figs" / "thumbs" / f"{fig_id.lower()}.png").is_file(), fig_id
