"""PF-2R: steps to success vs sample size m, one line per width — the data-vs-time trade-off.

Edelman et al. 2023 (Pareto frontiers), Fig. 2 right: the runs of PF-1/4 (the same configs and
the same stored results — nothing is retrained), multi-pass SGD on the (50, 3) parity with
coupled weight decay 0.01, success = test error ≤ 10% on 10⁴ held-out points. For each
(init, width, m): the median over seeds of the first evaluated step with success, a failed
run counting as +∞ — so a median is drawn only where more than half the seeds succeed — and
the successful runs as faint dots. Expected: near the frontier (small m) success takes many
more steps (data traded for time, grokking-like), far from it (large m) few.

Full size: `sparselearn figs PF-2R` reads the kept PF-1/4 table (paper_figs/data/pf-1.parquet;
if it is missing this trains PF-1/4, see its docstring for the wall time; redrawing takes
seconds). The m grid {200, 500, 700, 1000, 1500, 2000, 3000, 10⁴} is denser around the frontier
(m = 700–2000) than the paper's; T = 2×10⁴, evaluations every 500 steps.
Measured median steps to success (dense / sparse s = 2; – where half or fewer succeed):

    m        700        1000        1500        2000        3000        10⁴
    r = 10   –/–        –/–         –/–         14.3k/–     8.8k/5.5k   4.5k/3.5k
    r = 100  –/–        –/3.8k      8.0k/2.0k   4.0k/1.5k   2.0k/1.0k   2.0k/1.0k
    r = 10³  –/15.5k    7.5k/2.0k   3.0k/1.3k   2.0k/1.0k   1.5k/1.0k   1.5k/1.0k
    r = 10⁴  7.0k/–     (m = 500 fails for both; r = 10⁴ has only m ∈ {500, 700}, 3 seeds)
At every width the steps to success grow as m falls toward the frontier — 5× (dense r = 10³,
m = 10⁴ → 1000) and 15× (sparse r = 10³, 10⁴ → 700) — so data trades against time. Wider
nets and s = 2 need fewer steps, or as many (sparse r = 100 and 10³ both at 1.0k from m = 3000),
wherever both have a median, with one exception: at r = 10, m = 2000 dense succeeds in 5 of 8
seeds and s = 2 in only 3 of 8. No sample-wise double descent is resolved at this
T and seed count (the one non-monotone cell, sparse r = 10 at m = 1500 vs 2000, 3/6 vs 3/8
successes, is within seed noise).
Smoke: `sparselearn figs PF-2R --smoke` (reuses the PF-1/4 smoke runs; seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting.style import PALETTE, panels

ID = "PF-2R"
pf_1 = figures.figure("PF-1", near=__file__)
experiments = pf_1.experiments
KEPT_AS = pf_1.ID  # the runs and kept tables of PF-1/4


def steps_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (init, width, m): runs, successes, and the median steps to success with failures
    counted as +∞ (NaN unless more than half the seeds succeed: with exactly half it lies
    between the slowest success and +∞)."""
    runs = pf_1.with_init(runs)
    steps = runs["steps_to_eps"].astype(float).where(runs["success"] > 0, np.inf)
    runs = runs.assign(steps_to_success=steps)
    table = runs.groupby(["init", "width", "m"]).agg(runs=("success", "size"), successes=("success", "sum"),
                                                     median_steps=("steps_to_success", "median"))
    table["median_steps"] = table["median_steps"].replace(np.inf, np.nan)
    return table.reset_index()


def draw(results):
    runs = results.runs
    table = steps_table(runs)
    dots = pf_1.with_init(runs)
    dots = dots[dots["success"] > 0]
    fig, axes = panels(1, 2, 9.0, 3.6, sharey=True)
    widths = sorted(table["width"].unique())
    for ax, init in zip(axes, ("dense", "sparse")):
        for i, r in enumerate(widths):
            color = PALETTE[i % len(PALETTE)]
            part = table[(table["init"] == init) & (table["width"] == r)].sort_values("m")
            # wider nets drawn on top with smaller markers: where two widths' medians coincide
            # (sparse r = 100 and 1000 at m ≥ 3000) the narrower one rings the wider
            ax.plot(part["m"], part["median_steps"], "o-", color=color, label=f"r = {r}", ms=max(9 - 2.5 * i, 3.5))
            d = dots[(dots["init"] == init) & (dots["width"] == r)]
            ax.plot(d["m"] * np.exp(np.random.default_rng(i).uniform(-0.06, 0.06, len(d))), d["steps_to_eps"],
                    ".", color=color, alpha=0.3, ms=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ms = sorted(table["m"].unique())
        ax.set_xticks(ms, [f"{int(m)}" for m in ms], fontsize=7, rotation=45)
        ax.minorticks_off()
        ax.set_xlabel("sample size m")
        ax.set_title("dense init" if init == "dense" else "sparse init, s = 2", fontsize=10)
    axes[0].set_ylabel("steps to test error ≤ 10%\n(median over seeds; dots: runs)")
    axes[0].legend(frameon=False, fontsize=7)
    r = runs.iloc[0]
    fig.suptitle(f"PF-2R: ({int(r['n'])}, {int(r['k'])})-parity, steps to success vs data "
                 f"(a point only where > half the seeds succeed within {int(r['steps'])} steps)", fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
