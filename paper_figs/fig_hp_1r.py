"""HP-1R: median steps to 100% accuracy (t_c) vs n for k ∈ {2, 3, 4}, with fitted exponents.

Barak et al. 2022, Fig. 1 right: online SGD on (n, k)-parities, width-100 ReLU MLP, batch 32,
lr 0.1, 25 seeds; t_c per run from `experiments/parity_tc.py`. Log-log axes; each k gets its
median and interquartile range over seeds, a fitted power law with a 95% bootstrap interval on
the exponent (legend), and the theory slope n^(k−1) (Fourier gap, dashed in the colour of its
k, anchored at the median of the middle n of the range). Runs that never reach 100% within the cap are left out of the fit
and counted in the title. Right (Barak et al. Fig. 2 right): the local slope d log t_c / d log n
over windows of three consecutive n (bootstrap interval over seeds) against the window's
centre, with the theory exponent k − 1 dotted and the fit over the upper half of n in the legend.

Full size: `sparselearn figs HP-1R` (trains experiments/parity_tc.py at full size): 297 s on a
2-core AMD EPYC CPU, table kept in paper_figs/data/hp-1r-t_c.parquet; all 450 runs reached 100%.
Median t_c for n = 10…60: k = 3: 0.3, 0.6, 1.3, 2.2, 3.7, 4.6k; k = 4: 0.3, 0.8, 1.4, 2.4, 4.1,
6.8k (the reference measurement of SCIENCE.md §2 gives 0.3, 0.6, 1.0, 2.1, 3.9, 4.1k and 0.3,
0.8, 1.6, 2.6, 4.8, 7.2k). Fitted exponents: k = 3: 1.59 [1.55, 1.81], k = 4: 1.69 [1.50, 1.78];
k = 2 is at the 100-step evaluation resolution (t_c ∈ {100, 200, 300}), so its exponent means
little. Local slopes over n = 10–30 … 40–60: k = 3: 1.30, 1.88, 2.04, 1.84 (the last [1.36, 2.06]
covers 2); k = 4: 1.40, 1.57, 2.09, 2.56 [1.95, 2.99], rising towards 3. Upper half (n ≥ 40):
k = 3: 1.84 [1.36, 2.06], k = 4: 2.56 [1.95, 2.99]. The exponent table calls both pre-asymptotic.
Smoke: `sparselearn figs HP-1R --smoke` (seconds).
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
experiments = parity_tc.experiments


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"t_c": one row per run (the study's table)."""
    return {"t_c": parity_tc.measure(smoke, store)}


def draw_local_slopes(ax, reached: pd.DataFrame) -> None:
    """Local slope d log t_c / d log n (windows of three n, bootstrap interval over seeds) vs n,
    one colour per k as in the scaling panel, with the theory exponent k − 1 dotted and the fit
    over the upper half of n in the legend."""
    for i, (k, part) in enumerate(reached.groupby("k", sort=True)):
        color = PALETTE[i % len(PALETTE)]
        if part["n"].nunique() < 2:
            continue
        slopes = local_slopes(part["n"], part["t_c"])
        upper = upper_half_fit(part["n"], part["t_c"])
        ax.errorbar(slopes["x"], slopes["slope"], yerr=[slopes["slope"] - slopes["ci_low"],
                    slopes["ci_high"] - slopes["slope"]], fmt="o-", color=color, ms=4, capsize=2,
                    label=f"k={k}; upper half of n: {upper.label()}")
        ax.axhline(k - 1, color=color, ls=":", lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("input dimension n (window centre)")
    ax.set_ylabel("local slope d log t_c / d log n")
    ax.set_title("local exponent (dotted: theory k − 1)", fontsize=9)
    ax.set_ylim(top=ax.get_ylim()[1] + 0.7)  # room for the legend above the theory lines
    ax.legend(frameon=False, fontsize=7, loc="upper left")


def draw(results):
    table = results["t_c"]
    reached = table.dropna(subset=["t_c"])
    fig, (ax, right) = panels(1, 2, 10.0, 3.8)
    scaling_plot(reached, "n", "t_c", by="k", ax=ax, xlabel="input dimension n",
                 ylabel="t_c (steps to 100% accuracy)")
    draw_local_slopes(right, reached)
    for i, (k, part) in enumerate(reached.groupby("k", sort=True)):
        med = part.groupby("n")["t_c"].median()
        if len(med) >= 2:
            n = np.geomspace(med.index.min(), med.index.max(), 30)
            middle = med.index[len(med) // 2]  # mid-range: the slope is compared where the data are
            overlay(ax, n, theory.parity_sgd_samples(n, k), f"k={k}: n^{k - 1} (BEGKMZ gap)",
                    anchor=(middle, med.loc[middle]), color=PALETTE[i % len(PALETTE)])
    ax.legend(frameon=False, fontsize=7)
    ax.set_title(f"online SGD on sparse parities ({len(reached)}/{len(table)} runs reached 100%)", fontsize=9)
    for axis in (ax, right):
        axis.set_xticks(sorted(reached["n"].unique()), minor=False)
        axis.xaxis.set_major_formatter(ticker.ScalarFormatter())
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    return fig


if __name__ == "__main__":
    figures.main(__file__)
