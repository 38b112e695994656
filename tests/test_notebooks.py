"""Each notebook (jupytext percent .py) executes top to bottom without error through a Jupyter
kernel, at its default size, and every cell that draws a figure shows it (an image output):
importing sparselearn must not switch matplotlib to a file-only backend. What a notebook's text
claims of its results is checked on the same execution, by a probe cell appended to it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))
#: a cell that draws: it makes a figure (`fig, ax = …`, `figure()`, a pyplot call)
DRAWS = re.compile(r"^\s*fig\b.*=|\bfigure\(|\bplt\.", re.MULTILINE)
#: per notebook, a last cell printing (as one JSON line) the state its text makes claims about
PROBES = {"03_sample_complexity": 'import json\n'
          'print(json.dumps({"n": max(NS), "estimate": float(table.set_index("target.n").loc[max(NS), "estimate"])}))'}


def check_03(probe: dict) -> None:
    """The notebook says its GF(2) learner needs about n samples (m* ∝ n, next to the full-rank
    bound): the searched m* at the largest n must be of order n, not the far smaller m* of the
    sparsest-solution default."""
    assert probe["estimate"] >= 0.75 * probe["n"], probe


CLAIMS = {"03_sample_complexity": check_03}


def test_all_three_notebooks_present():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_sparse_teachers", "03_sample_complexity"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_and_shows_its_figures(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSELEARN_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own (inline) backend, as a user gets
    nb = jupytext.read(path)
    if path.stem in PROBES:
        nb.cells.append(nbformat.v4.new_code_cell(PROBES[path.stem]))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    warned = [o["text"] for c in code for o in c.get("outputs", []) if o.get("name") == "stderr" and "Warning" in o["text"]]
    assert not warned, warned   # a reader's first run shows no warnings (e.g. jax on one device of several cores)
    drawing = [c for c in code if DRAWS.search(c.source)]
    assert drawing, "every notebook draws at least one figure"
    for cell in drawing:
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"no image shown by the cell:\n{cell.source}"
    if path.stem in PROBES:
        printed = "".join(o.get("text", "") for o in code[-1].get("outputs", []) if o.output_type == "stream")
        CLAIMS[path.stem](json.loads(printed.strip().splitlines()[-1]))


def test_notebook_02_spectra_are_as_its_text_says(monkeypatch):
    """Notebook 02's text: the k = 2 teacher has no Fourier weight above degree 5 and 6.6% above
    degree 3; the dense comparison of the same s (k = s, certified at all s units active) has all
    its weight at degree p = min(n, s − 1) = 7, so it is the harder of the two for low-degree fits."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import numpy as np

    from sparselearn import analysis

    cells = [c.source for c in jupytext.read(NOTEBOOKS[1]).cells if c.cell_type == "code"]
    scope: dict = {}
    for source in cells[:2]:                 # imports, then the two teachers
        exec(compile(source, NOTEBOOKS[1].stem, "exec"), scope)
    n, s = scope["N"], scope["S"]

    def spectrum(t, p):
        coeffs = analysis.walsh_hadamard(analysis.truth_table(lambda x: t.labels(p, x), n))
        return coeffs, analysis.degree_weights(coeffs)

    coeffs, weights = spectrum(scope["sparse"], scope["sp"])
    assert np.flatnonzero(weights > 1e-9).max() == 5, weights
    assert round(analysis.tail_mass(coeffs, 3), 3) == 0.066
    assert scope["dense"].certify(scope["dp"]).max_active == s
    _, weights = spectrum(scope["dense"], scope["dp"])
    assert weights[min(n, s - 1)] > 0.999, weights
