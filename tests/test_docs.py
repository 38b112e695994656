"""The documentation a user reads first says what the code does: README commands parse with the
CLI, the paths and columns they name exist, its code runs as written, its benchmark figures are
those of the stored results (the notebooks' claims: test_notebooks.py)."""

from __future__ import annotations

import ast
import builtins
import glob
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: placeholders the README uses on purpose (the header template of a config)
PLACEHOLDER_CONFIGS = {"configs/x.yaml"}


def _command_lines() -> list[str]:
    """Every concrete `sparselearn …` command of the README: shell lines (`$ sparselearn …`) and
    inline code; the synopsis lines (with `[` or `|`) are left out."""
    found = re.findall(r"`(sparselearn [^`]+)`", README)
    found += re.findall(r"^\$ (sparselearn .+)$", README, re.MULTILINE)
    found += re.findall(r"^pip install [^&]+&& (sparselearn .+)$", README, re.MULTILINE)
    found += [m.split(";")[0].strip() for m in re.findall(r"do (sparselearn [^;`]+;)", README)]
    lines = {" ".join(c.split()) for c in found if "[" not in c and "|" not in c and "..." not in c}
    # prose naming a command that takes a path ("`sparselearn run` expands its grid") is no command line
    return sorted(c for c in lines if c.split()[1:] not in (["run"], ["search"], ["plot"]))


def test_readme_names_commands():
    assert "sparselearn run configs/quickstart.yaml" in _command_lines()


@pytest.mark.parametrize("line", _command_lines())
def test_readme_command_parses_and_names_existing_configs(line):
    from sparselearn.cli import _parser

    argv = shlex.split(line)[1:]
    try:
        _parser().parse_args(argv)           # exits 2 on a flag or choice the CLI lacks
    except SystemExit as stop:                # --help exits 0
        assert stop.code == 0, f"{line!r} does not parse"
    for token in argv:
        if token.startswith("configs/") and token not in PLACEHOLDER_CONFIGS:
            assert glob.glob(str(ROOT / token)), f"{line!r} names {token}, which does not exist"


def test_readme_config_paths_exist():
    for path in set(re.findall(r"configs/[\w/*.-]+\.yaml", README)) - PLACEHOLDER_CONFIGS:
        assert glob.glob(str(ROOT / path)), path


def _free_names(source: str) -> set[str]:
    """Names a snippet reads but never binds (imports, assignments, defs, arguments) — a rough
    check that a copied snippet does not stop at a NameError."""
    tree = ast.parse(source)
    bound, read = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound


@pytest.mark.parametrize("index", range(len(re.findall(r"```python\n", README))))
def test_readme_python_block_binds_every_name_it_uses(index):
    block = re.findall(r"```python\n(.*?)```", README, re.DOTALL)[index]
    assert not _free_names(block), block


def test_readme_curve_columns_are_the_schema():
    from sparselearn.schema import CURVE_COLUMNS

    line = re.search(r"`curves\.parquet/` — parts as above: `([^`]+)`", README).group(1)
    assert [c.strip() for c in line.split(",")] == list(CURVE_COLUMNS)


def test_readme_learner_table_lists_every_learner_with_its_kind():
    from sparselearn import learners

    table = dict(re.findall(r"^\| `(\w+)` \| (\w+) \|", README.split("| learner | kind |")[1], re.MULTILINE))
    for name in learners.REGISTRY:
        assert name in table, f"learner {name} is missing from the README's learner table"
        assert table[name] == learners.get(name).kind, name


def test_benchmarks_readme_lists_every_script():
    text = (ROOT / "benchmarks" / "README.md").read_text()
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        assert f"`{script.name}`" in text, f"{script.name} is not described in benchmarks/README.md"


def test_readme_benchmark_figures_are_the_stored_results():
    section = README.split("## Benchmarks")[1].split("## ")[0]
    train = {r["name"]: r["seconds"] for r in json.loads((ROOT / "benchmarks/results/train.json").read_text())["results"]}
    start = json.loads((ROOT / "benchmarks/results/overhead.json").read_text())["start"]
    figures = [train["ours_2_devices"], train["ours"], train["jax_step_loop"], train["torch_loop"], start["help_s"]]
    for seconds in figures:
        assert f"{seconds:.2f} s" in section, f"{seconds:.2f} s (benchmarks/results) is not the README's figure"


def test_shipped_text_cites_no_file_outside_the_repository():
    """Docstrings, configs and docs cite papers, not notes a clone does not have (SCIENCE.md,
    DESIGN.md and STYLE.md live beside the repository, not in it)."""
    outside = re.compile(r"\b(SCIENCE|DESIGN|STYLE)(\.md)?\s*§|\b(SCIENCE|DESIGN|STYLE)\.md\b")
    shipped = [p for pattern in ("sparselearn/**/*.py", "paper_figs/*.py", "experiments/*.py", "notebooks/*.py",
                                 "benchmarks/*.py", "configs/**/*.yaml", "*.md", "benchmarks/*.md")
               for p in ROOT.glob(pattern)]
    assert len(shipped) > 100
    found = [f"{p.relative_to(ROOT)}:{i}" for p in shipped
             for i, line in enumerate(p.read_text().splitlines(), 1) if outside.search(line)]
    assert not found, found
