"""HP-1R: median steps to 100% accuracy (t_c) vs n for k ∈ {2, 3, 4}, with fitted exponents.

Barak et al. 2022, Fig. 1 right: online SGD on (n, k)-parities, width-100 ReLU MLP, batch 32,
lr 0.1; t_c per run from `experiments/parity_tc.py` (n on a geometric grid, evaluation every
≤ t_c/20 steps, runs stopped at t_c). Log-log axes; each k gets its median and interquartile
range over seeds, a fitted power law with a 95% bootstrap interval on the exponent (legend), and
the theory slope n^(k−1) (Fourier gap, dashed in the colour of its k, anchored at the median of
the middle n of the range). Runs that never reach 100% within the cap count above every reached
run in the medians, and are counted in the title; an n where at least half never reach is left
out of the fit (▲, a lower bound). Right (Barak et al. Fig. 2 right): the local slope d log t_c / d log n
over windows of three consecutive n (bootstrap interval over seeds) against the window's centre,
with the theory exponent k − 1 dotted and the fit over the upper half of n in the legend; open
markers: k = 3 at width 400 (the study's width check), slopes between neighbouring n.

Full size: `taskset -c 1 sparselearn figs HP-1R` (trains experiments/parity_tc.py at full size and
its width check): 1671 + 435 s (n = 452) + 127 s (width check) ≈ 37 min on one core of a 2-core
Intel Xeon shared with other jobs; tables kept in paper_figs/data/hp-1r-t_c.parquet and
hp-1r-width_check.parquet; all 707 + 30 runs reached 100%. 25 seeds per point (16 at k = 4,
n = 113 and k = 3, n = 452). Median t_c:
  k = 2, n = 10…160:  45, 60, 80, 105, 132, 186, 224, 286, 392
  k = 3, n = 10…452:  208, 336, 600, 1040, 2232, 4200, 6720, 10080, 14560, 25600, 44400, 81200
  k = 4, n = 10…113:  300, 432, 720, 1320, 2304, 6840, 14880, 102400
Fitted exponents: k = 2: 0.77 [0.74, 0.79], k = 3: 1.55 [1.52, 1.57], k = 4: 2.26 [2.18, 2.31].
Local slopes (windows of three n, lowest → highest): k = 2: 0.83, 0.81, 0.72, 0.80, 0.76, 0.63,
0.81 (flat, below 1); k = 3: 1.53, 1.63, 1.90, 1.96, 1.59, 1.28, 1.12, 1.34, 1.61, 1.67
[1.46, 1.88] (rises to ≈ 2 at n ≈ 40, dips at n ≈ 113, climbs again; the last does not cover 2);
k = 4: 1.26, 1.61, 1.68, 2.31, 2.69, 3.96 [3.78, 4.23] (past 3). Upper half of n: k = 2: 0.75
[0.70, 0.81], k = 3 (n ≥ 80): 1.44 [1.36, 1.47], k = 4 (n ≥ 40): 3.52 [3.29, 3.64].
Width check (k = 3, width 400, 10 seeds): median t_c 2065, 7200, 16000 at n = 57, 113, 226;
slope 1.83 [1.69, 2.05] over 57–113 (width 100: 1.28 [1.08, 1.60]) and 1.15 [0.97, 1.39] over
113–226 (width 100: 1.34 [1.15, 1.50]): the dip moves to larger n with the width.
Larger n (k = 4 beyond 113, ≈ 4×10⁵ steps per run at n = 160): the cluster command is in
experiments/parity_tc.py. Smoke: `sparselearn figs HP-1R --smoke` (seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import ticker

from sparselearn import figures, theory
from sparselearn.plotting import local_slopes, overlay, scaling_plot, upper_half_fit
from sparselearn.plotting.style import PALETTE, panels

ID = "HP-1R"
parity_tc = figures.study("parity_tc", near=__file__)


def experiments(smoke: bool):
    """The study's configs and those of its width check (kept together in hp-1r.yaml)."""
    return parity_tc.experiments(smoke) + parity_tc.width_check_experiments(smoke)


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"t_c": one row per run (the study's table); "width_check": the same at the study's check
    width (`parity_tc.width_check`)."""
    return {"t_c": parity_tc.measure(smoke, store), "width_check": parity_tc.width_check(smoke, store)}


def _errorbar(ax, slopes: pd.DataFrame, **style) -> None:
    ax.errorbar(slopes["x"], slopes["slope"], yerr=[slopes["slope"] - slopes["ci_low"],
                slopes["ci_high"] - slopes["slope"]], ms=4, capsize=2, **style)


def draw_local_slopes(ax, runs: pd.DataFrame, check: pd.DataFrame | None = None) -> None:
    """Local slope d log t_c / d log n (windows of three n, bootstrap interval over seeds) vs n,
    one colour per k as in the scaling panel, with the theory exponent k − 1 dotted and the fit
    over the upper half of n in the legend. `check` (runs of one k at another width): its slopes
    between consecutive n, open markers dashed in that k's colour."""
    colors = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(sorted(runs["k"].unique()))}
    for k, part in runs.groupby("k", sort=True):
        if part["n"].nunique() < 2:
            continue
        upper = upper_half_fit(part["n"], part["t_c"])
        _errorbar(ax, local_slopes(part["n"], part["t_c"]), fmt="o-", color=colors[k],
                  label=f"k={k}; upper half of n: {upper.label()}")
        ax.axhline(k - 1, color=colors[k], ls=":", lw=1.2)
    if check is not None and len(check) and check["n"].nunique() >= 2:
        (k, width), = check[["k", "width"]].drop_duplicates().itertuples(index=False)
        _errorbar(ax, local_slopes(check["n"], check["t_c"], window=2), fmt="o--", mfc="white",
                  color=colors.get(k, "0.3"), label=f"k={k} at width {width} (slope between neighbours)")
    ax.set_xscale("log")
    ax.set_xlabel("input dimension n (window centre)")
    ax.set_ylabel("local slope d log t_c / d log n")
    ax.set_title("local exponent (dotted: theory k − 1)", fontsize=9)
    rows = len(ax.get_legend_handles_labels()[1])
    low, high = ax.get_ylim()   # room for the legend, about 0.065 of the axes a row, above every bar
    ax.set_ylim(top=low + (high - low) / (1 - 0.065 * rows - 0.04))
    ax.legend(frameon=False, fontsize=7, loc="upper left")


def draw(results):
    table = results["t_c"]   # a run that never reached 100% (t_c NaN) counts above every one that did
    fig, (ax, right) = panels(1, 2, 10.0, 3.8)
    scaling_plot(table, "n", "t_c", by="k", ax=ax, xlabel="input dimension n",
                 ylabel="t_c (steps to 100% accuracy)")
    draw_local_slopes(right, table, results["width_check"])
    for i, (k, part) in enumerate(table.groupby("k", sort=True)):
        med = part["t_c"].fillna(np.inf).groupby(part["n"]).median()
        med = med[np.isfinite(med)]
        if len(med) >= 2:
            n = np.geomspace(med.index.min(), med.index.max(), 30)
            middle = med.index[len(med) // 2]  # mid-range: the slope is compared where the data are
            overlay(ax, n, theory.parity_sgd_samples(n, k), f"k={k}: n^{k - 1} (BEGKMZ gap)",
                    anchor=(middle, med.loc[middle]), color=PALETTE[i % len(PALETTE)])
    ax.legend(frameon=False, fontsize=7)
    ax.set_title(f"online SGD on sparse parities ({table['t_c'].notna().sum()}/{len(table)} runs reached 100%)",
                 fontsize=9)
    for axis in (ax, right):
        axis.set_xticks(sorted(table["n"].unique()), minor=False)
        axis.xaxis.set_major_formatter(ticker.ScalarFormatter())
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    return fig


if __name__ == "__main__":
    figures.main(__file__)
