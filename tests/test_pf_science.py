"""Science checks of the Pareto-frontier figures (Edelman et al. 2023) at smoke size."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import sparselearn as sl
from sparselearn import figures

fig_pf_1 = figures.load(Path(__file__).resolve().parents[1] / "paper_figs" / "fig_pf_1.py")


def test_pf1_smoke_success_grows_with_width(tmp_path):
    """PF-1/4: averaged over inits, sample sizes and seeds (fixed), the success probability at the
    largest width of the smoke grid is at least that at the smallest, and width helps somewhere."""
    runs = pd.concat([sl.run(exp, str(tmp_path), progress=False) for exp in fig_pf_1.experiments(smoke=True)],
                     ignore_index=True)
    table = fig_pf_1.success_table(runs)
    by_width = table.groupby("width")["p_success"].mean().sort_index()
    assert len(by_width) >= 2
    assert by_width.iloc[-1] > by_width.iloc[0]   # width helps (0.17 → 1.0 at seed 0…2)
    assert by_width.iloc[-1] >= 0.5  # the widest net learns the smoke parity in most cells
    assert set(table["init"]) == {"dense", "sparse"}
