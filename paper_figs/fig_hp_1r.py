"""HP-1R: median steps to 100% accuracy (t_c) vs n for k ∈ {2, 3, 4}, with fitted exponents.

Barak et al. 2022, Fig. 1 right: online SGD on (n, k)-parities, width-100 ReLU MLP, batch 32,
lr 0.1, 25 seeds; t_c per run from `experiments/parity_tc.py`. Log-log axes; each k gets its
median and interquartile range over seeds, a fitted power law with a 95% bootstrap interval on
the exponent (legend), and the theory slope n^(k−1) (Fourier gap, dashed, anchored at the
median of the smallest n). Runs that never reach 100% within the cap are left out of the fit
and counted in the title.

Full size: `sparselearn figs HP-1R` (trains experiments/parity_tc.py at full size): 297 s on a
2-core AMD EPYC CPU, table kept in paper_figs/data/hp-1r-t_c.parquet; all 450 runs reached 100%.
Median t_c for n = 10…60: k = 3: 0.3, 0.6, 1.3, 2.2, 3.7, 4.6k; k = 4: 0.3, 0.8, 1.4, 2.4, 4.1,
6.8k (the reference measurement of SCIENCE.md §2 gives 0.3, 0.6, 1.0, 2.1, 3.9, 4.1k and 0.3,
0.8, 1.6, 2.6, 4.8, 7.2k). Fitted exponents: k = 3: 1.59 [1.55, 1.81], k = 4: 1.69 [1.50, 1.78];
k = 2 is at the 100-step evaluation resolution (t_c ∈ {100, 200}), so its exponent means little.
Smoke: `sparselearn figs HP-1R --smoke` (seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures, theory
from sparselearn.plotting import overlay, scaling_plot

ID = "HP-1R"
parity_tc = figures.study("parity_tc", near=__file__)
experiments = parity_tc.experiments


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"t_c": one row per run (the study's table)."""
    return {"t_c": parity_tc.measure(smoke, store)}


def draw(results):
    table = results["t_c"]
    reached = table.dropna(subset=["t_c"])
    fig, ax, fits = scaling_plot(reached, "n", "t_c", by="k", xlabel="input dimension n",
                                 ylabel="t_c (steps to 100% accuracy)")
    for k, part in reached.groupby("k"):
        med = part.groupby("n")["t_c"].median()
        if len(med) >= 2:
            n = np.geomspace(med.index.min(), med.index.max(), 30)
            overlay(ax, n, theory.parity_sgd_samples(n, k), f"k={k}: n^{k - 1} (BEGKMZ gap)",
                    anchor=(med.index.min(), med.iloc[0]))
    ax.legend(frameon=False, fontsize=7)
    ax.set_title(f"online SGD on sparse parities ({len(reached)}/{len(table)} runs reached 100%)")
    return fig


if __name__ == "__main__":
    figures.main(__file__)
