"""HP-4L/14: steps to convergence t_c vs width r, box plots over seeds — no r-fold speedup.

Barak et al. 2022, Fig. 4 left / Fig. 14: online SGD on the (40, 3) parity, 2-layer ReLU MLPs
of width r, hinge loss, batch 32, lr 0.1; t_c = first evaluation (every 100 steps) with 100%
accuracy on 8192 fresh points; widths r < k = 3 count as converged at 55% accuracy (hatched
boxes). Configs and the t_c table come from `experiments/width_tc.py` (also the exponent
table's `width_tc` rows). Left: t_c of the converged runs per width (log-log box plots; a
width where some runs did not converge within its step cap is marked converged/runs), the
median with unconverged runs counted as +∞ (drawn where at least half converged), the fitted
exponent over those widths r ≥ k, and the r-fold speedup t_c ∝ 1/r anchored at the first of
them (dashed). Right: the spread of log10 t_c (interquartile range of the converged runs) per
width. Expected: diminishing returns, no r× speedup,
lower variance at large r.

Full size: `sparselearn figs HP-4L` — r ∈ {1, 2, 3, 10, 100, 1000} with 50 seeds (30 at
r = 1000), step caps 3×10⁴ (r ≤ 10), 10⁴ (r = 100), 5000 (r = 1000), and r = 10⁴ with
10 seeds and a 3000-step cap (the paper: 1000 runs per width, widths up to 3×10⁶); 290 runs,
23.5 min wall on a 2-core AMD EPYC (Zen 4) CPU, jax 0.10.2, shared with other jobs (load
average 14–17; the runs' own shares of wall time add up to 23 min, r = 10⁴ alone ≈ 7 min);
table kept in paper_figs/data/hp-4l*.parquet.
Measured (median t_c [IQR], converged/runs): r = 1 (55%): 11.8k [5.2k, 18.1k], 50/50;
r = 2 (55%): 6.2k [2.9k, 14.1k], 50/50; r = 3: 6/50 reach 100% within 3×10⁴ (at 6.6k–18.4k;
most others stop at 12.5% error, 7 of the 8 sign patterns of the relevant bits); r = 10:
6.75k [5.9k, 8.2k]; r = 100: 2.3k [2.1k, 2.6k]; r = 1000: 800 [800, 900] (30/30); r = 10⁴:
700 for all 10. From r = 10 to 10⁴ (1000× the units) t_c falls 9.6×, and
only 1.14× from 10³ to 10⁴: diminishing returns, no r× speedup. Fit of median t_c ∝ r^α over
r ∈ {10, …, 10⁴}: α = −0.34 [−0.36, −0.33] (95% bootstrap; −0.26 [−0.28, −0.25] over r ≥ 100),
far from the −1 of an r-fold speedup. The spread shrinks with width: the IQR of log10 t_c is
0.14, 0.09, 0.05, 0.00 at r = 10, 10², 10³, 10⁴ (0.54 and 0.69 at r = 1, 2). The reference
measurement of SCIENCE.md §2 at (50, 3) (r = 1000: 1.1–1.3k; r = 100: 2.3–4.6k; r = 10:
4.4–18.6k) is consistent with these (40, 3) values.
Smoke: `sparselearn figs HP-4L --smoke` (seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting import fit_exponent
from sparselearn.plotting.style import PALETTE, panels

ID = "HP-4L"
width_tc = figures.study("width_tc", near=__file__)
experiments = width_tc.experiments


def draw(results):
    table = width_tc.tc_table(results.runs)
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
    # the median with unconverged runs counted as +inf: defined where at least half converged
    med = [np.median(np.append(d, np.full((table["width"] == r).sum() - d.size, np.inf))) for r, d in zip(widths, data)]
    med = [m if np.isfinite(m) else np.nan for m in med]
    ax.plot(pos, med, "k.-", lw=1, label="median (where ≥ half converged)")
    wide = [i for i, r in enumerate(widths) if r >= table["k"].iloc[0] and np.isfinite(med[i])]
    if wide:
        i0 = wide[0]
        ax.plot(pos[i0:], med[i0] * widths[i0] / np.asarray(widths[i0:], float), "--", color=PALETTE[3],
                label="r-fold speedup: t_c ∝ 1/r")
    for p, r in zip(pos, widths):
        part = table[table["width"] == r]
        missed = int(part["t_c"].isna().sum())
        if missed:
            ax.text(p, 0.98, f"{len(part) - missed}/{len(part)}\nconverged", ha="center", va="top", fontsize=7,
                    transform=ax.get_xaxis_transform())
    try:
        fit = fit_wide(table)
        ax.plot([], [], " ", label=f"fit (r ≥ k, ≥ half converged): t_c ∝ r^α,\n{fit.label()}")
    except ValueError:  # too few widths or converged runs to fit
        pass
    ax.set_yscale("log")
    ax.set_xticks(pos, [f"{r:g}" for r in widths])
    ax.set_xlabel("width r")
    ax.set_ylabel("t_c (steps)")
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    k = int(table["k"].iloc[0])
    ax.set_title(f"t_c per width, {len(table)} runs (hatched: r < k, 55% accuracy)\n"
                 "every run converged within its cap unless marked", fontsize=9)

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
    """Power-law fit of median t_c vs r over the widths r ≥ k (100% accuracy) where at least
    half the runs converged (the `width_tc` rows of the exponent table)."""
    part = width_tc.measured_widths(table[table["accuracy"] == 1.0]).dropna(subset=["t_c"])
    return fit_exponent(part["width"], part["t_c"])


if __name__ == "__main__":
    figures.main(__file__)
