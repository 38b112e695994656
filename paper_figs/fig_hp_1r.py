"""HP-1R: median steps to 100% accuracy (t_c) vs n for k ∈ {2, 3, 4}, with fitted exponents.

Barak et al. 2022, Fig. 1 right: online SGD on (n, k)-parities, width-100 ReLU MLP, batch 32,
lr 0.1, 25 seeds; t_c per run from `experiments/parity_tc.py`. Log-log axes; each k gets its
median and interquartile range over seeds, a fitted power law with a 95% bootstrap interval on
the exponent (legend), and the theory slope n^(k−1) (Fourier gap, dashed, anchored at the
median of the smallest n). Runs that never reach 100% within the cap are left out of the fit
and counted in the title.

Full size: `sparselearn figs HP-1R` (trains experiments/parity_tc.py at full size; estimated
20–40 min on 2 CPU cores; not yet run — no table under paper_figs/data/ yet).
Smoke: `sparselearn figs HP-1R --smoke` (seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_figs import common  # noqa: E402
from sparselearn import theory  # noqa: E402
from sparselearn.plotting import overlay, scaling_plot  # noqa: E402

ID = "HP-1R"


def draw(table: pd.DataFrame):
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


def main(smoke: bool = False, results: str | Path = "results", out: str | Path | None = None) -> list[Path]:
    data = common.data_paths(ID)[0]
    if not smoke and data.exists():
        table = pd.read_parquet(data)
    else:
        study = common.study("parity_tc")
        table = study.measure(smoke=smoke, results=results)
        if not smoke:
            data.parent.mkdir(parents=True, exist_ok=True)
            table.to_parquet(data, index=False)
            common.data_paths(ID)[2].write_text("\n---\n".join(
                __import__("sparselearn").config.dump(e) for e in study.configs(False)))
    return common.save_figure(ID, draw(table), out)


if __name__ == "__main__":
    common.main(main, __doc__)
