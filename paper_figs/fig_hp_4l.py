"""HP-4L/14: steps to convergence t_c vs width r, box plots over seeds — no r-fold speedup.

Barak et al. 2022, Fig. 4 left / Fig. 14: online SGD on the (40, 3) parity, 2-layer ReLU MLPs
of width r, hinge loss, batch 32, lr 0.1; t_c = first evaluation (every 100 steps) with 100%
accuracy on 8192 fresh points; widths r < k = 3 count as converged at 55% accuracy (hatched
boxes). Configs and the t_c table come from `experiments/width_tc.py` (also the exponent
table's `width_tc` rows). Left: t_c per width (log-log box plots; the count of runs that did
not converge within the width's step cap is written above each box), with the median line and
the r-fold speedup t_c ∝ 1/r anchored at r = 3 (dashed) for comparison. Right: the spread
of log10 t_c (interquartile range) per width. Expected: diminishing returns, no r× speedup,
lower variance at large r.

Full size: `sparselearn figs HP-4L` — r ∈ {1, 2, 3, 10, 100, 1000} with 50 seeds (30 at
r = 1000), step caps 3×10⁴ (r ≤ 10), 10⁴ (r = 100), 5000 (r = 1000), and r = 10⁴ with
10 seeds and a 3000-step cap (the paper: 1000 runs per width, widths up to 3×10⁶);
RESULTS_PLACEHOLDER
Smoke: `sparselearn figs HP-4L --smoke` (seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_figs import common  # noqa: E402
from sparselearn.plotting import fit_exponent  # noqa: E402
from sparselearn.plotting.style import PALETTE, panels  # noqa: E402

ID = "HP-4L"


def draw(table: pd.DataFrame):
    widths = sorted(table["width"].unique())
    reached = table.dropna(subset=["t_c"])
    fig, (ax, ax2) = panels(1, 2, 10.0, 3.8, gridspec_kw={"width_ratios": [2, 1]})
    data = [reached.loc[reached["width"] == r, "t_c"].to_numpy() for r in widths]
    pos = np.log10(widths)
    boxes = ax.boxplot([d if d.size else [np.nan] for d in data], positions=pos, widths=0.25, patch_artist=True,
                       showfliers=True, flierprops={"markersize": 2})
    for r, patch in zip(widths, boxes["boxes"]):
        narrow = table.loc[table["width"] == r, "accuracy"].iloc[0] < 1.0
        patch.set(facecolor=PALETTE[1] if narrow else PALETTE[0], alpha=0.5, hatch="//" if narrow else None)
    med = [np.median(d) if d.size else np.nan for d in data]
    ax.plot(pos, med, "k.-", lw=1, label="median")
    wide = [i for i, r in enumerate(widths) if r >= table["k"].iloc[0] and np.isfinite(med[i])]
    if wide:
        i0 = wide[0]
        ax.plot(pos[i0:], med[i0] * widths[i0] / np.asarray(widths[i0:], float), "--", color=PALETTE[3],
                label="r-fold speedup: t_c ∝ 1/r")
    for p, r in zip(pos, widths):
        part = table[table["width"] == r]
        missed = int(part["t_c"].isna().sum())
        ax.text(p, 1.0, f"{len(part) - missed}/{len(part)}", ha="center", va="bottom", fontsize=7,
                transform=ax.get_xaxis_transform())
    ax.set_yscale("log")
    ax.set_xticks(pos, [f"{r:g}" for r in widths])
    ax.set_xlabel("width r")
    ax.set_ylabel("t_c (steps)")
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    k = int(table["k"].iloc[0])
    ax.set_title("t_c per width (hatched: r < k, 55% accuracy)\nconverged/runs above each box", fontsize=9)

    iqr = [np.subtract(*np.quantile(np.log10(d), [0.75, 0.25])) if d.size >= 3 else np.nan for d in data]
    ax2.plot(pos, iqr, "o-", color=PALETTE[2])
    ax2.set_xticks(pos, [f"{r:g}" for r in widths])
    ax2.set_xlabel("width r")
    ax2.set_ylabel("IQR of log10 t_c")
    ax2.set_ylim(bottom=0)
    ax2.set_title("spread across seeds", fontsize=9)
    fig.suptitle(f"HP-4L/14: online SGD on a sparse parity (k = {k}), t_c vs width", fontsize=10)
    fig.tight_layout()
    return fig


def fit_wide(table: pd.DataFrame):
    """Power-law fit of t_c vs r over the widths r ≥ k (100% accuracy), converged runs only."""
    part = table[(table["accuracy"] == 1.0)].dropna(subset=["t_c"])
    return fit_exponent(part["width"], part["t_c"])


def main(smoke: bool = False, results="results", out=None) -> list[Path]:
    study = common.study("width_tc")
    runs, _ = common.collect(ID, study.configs(smoke), smoke, results)
    table = study.tc_table(runs)
    return common.save_figure(ID, draw(table), out)


if __name__ == "__main__":
    common.main(main, __doc__)
