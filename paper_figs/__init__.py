"""Paper figures: one `fig_<id>.py` per figure of SCIENCE.md §7, each declaring its experiment
configs, running them through `sparselearn.run` (stored under results/, resumable) and drawing
paper_figs/out/<id>.png and .pdf. `sparselearn figs --all [--smoke]` runs them all;
`sparselearn figs exponents` writes the exponent table of the scaling studies in experiments/.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

#: figures drawn first by `figs --all` (the cheapest); the rest follow in file-name order
_FIRST = ("ADKM-D3", "ADKM-D2", "ADKM-D1", "HP-1L", "HP-1R", "HP-15", "HP-16")


def _discover() -> dict[str, str]:
    """figure id → module name, from the `ID = "..."` line of every paper_figs/fig_*.py."""
    found = {}
    for path in sorted(Path(__file__).parent.glob("fig_*.py")):
        match = re.search(r'^ID = "([^"]+)"', path.read_text(), flags=re.MULTILINE)
        if match:
            found[match.group(1)] = path.stem
    first = [f for f in _FIRST if f in found]
    return {f: found[f] for f in first + [f for f in found if f not in first]}


#: figure id → module, in the order `figs --all` draws them
FIGURES = _discover()


def _key(name: str) -> str:
    return name.lower().replace("fig_", "").replace("-", "").replace("_", "")


def lookup(name: str) -> str:
    """The figure id for `name`, matched loosely: 'HP-1L', 'hp_1l', 'fig_hp_1l' all name HP-1L."""
    from sparselearn.errors import ConfigError

    for fig_id in FIGURES:
        if _key(fig_id) == _key(name):
            return fig_id
    raise ConfigError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}, exponents", key="figs")


def module(fig_id: str):
    return importlib.import_module(f"paper_figs.{FIGURES[lookup(fig_id)]}")


def title(fig_id: str) -> str:
    """The first line of the figure script's docstring."""
    return (module(fig_id).__doc__ or "").strip().splitlines()[0]


def make(fig_id: str, smoke: bool = False, results: str | Path = "results", out: str | Path | None = None) -> list[Path]:
    """Run (or reuse) a figure's experiments and draw it; returns the .png and .pdf paths."""
    return module(fig_id).main(smoke=smoke, results=results, out=out)


def exponents(smoke: bool = False, results: str | Path = "results", out: str | Path | None = None) -> list[Path]:
    """Write out/exponents.md and .csv from the scaling studies in experiments/."""
    from paper_figs import common

    return common.exponent_table(smoke=smoke, results=results, out=out)
