"""HP-15: grokking on a fixed sample — a grid of sample size m × weight decay λ.

Barak et al. 2022, Fig. 15 / 4 right (App. C.5): width-100 ReLU MLP, hinge loss, batch 32, lr 0.1,
multi-pass SGD over m samples of the (50, 3) parity, coupled weight decay λ: each step shrinks the
weights by the factor 1 − ηλ (as PyTorch's SGD does), so with η = 0.1 our λ is 10× the λ of an
update written θ ← (1 − λ)θ − η∇ (SCIENCE's Eq. 1: our λ = 0.1 is its 0.01). One panel per
(m, λ): median train and test error vs step over seeds. Expected: small m fails, large m
generalises as soon as it fits, in between the test error falls long after the train error
(grokking); λ widens the working range, too large a λ stops training. m and λ are vmapped, so the
whole grid is one compiled group.

Full size: `sparselearn figs HP-15` — m ∈ {300, 1000, 3000, 10⁴}, λ ∈ {0, 1e-3, 1e-2, 1e-1},
3 seeds, 20k steps: 36 s on a 2-core AMD EPYC CPU (one compiled group of 48 runs), table kept
in paper_figs/data/hp-15*.parquet. Measured: m = 300 and 1000 memorise and stay at chance in the median
(λ ≤ 1e-2), except at m = 1000, λ = 1e-2, where one seed groks (train error 0 at 7.4k steps, test
error 0 at 11.0k), one ends at test error 0.36 and one at chance; m = 3000 with λ = 1e-3 groks (median train
error 0 at 4.4k steps; test error 0 at 13.8k and 14.4k in 2 of 3 seeds, the third ends at 0.06%),
with λ = 1e-2 it generalises at 3.0k (median; 2.2–4.6k); m = 10⁴ generalises as soon as it fits;
λ = 0.1 fits no sample (final train error 0.03–0.05 at m = 300, 0.24–0.50 above) and generalises at
no m (3 of 6 seeds at m ≥ 3000 stall at test error 0.25–0.27, the rest at chance).
Smoke: `sparselearn figs HP-15 --smoke` (seconds).
"""

from __future__ import annotations

from sparselearn import figures
from sparselearn.plotting.style import PALETTE, panels

ID = "HP-15"

FULL = {"experiment": "hp_15",
        "target": {"name": "sparse_parity", "n": 50, "k": 3},
        "learner": {"name": "mlp", "width": 100, "depth": 2, "activation": "relu", "init": "standard"},
        "train": {"optimizer": "sgd", "lr": 0.1, "batch": 32, "steps": 20000, "loss": "hinge", "eval_every": 200,
                  "eps": 0.0},
        "data": {"m": 10000, "test_m": 8192},
        "sweep": {"seeds": 3, "grid": {"data.m": [300, 1000, 3000, 10000],
                                       "train.weight_decay": [0.0, 0.001, 0.01, 0.1]}}}


def experiments(smoke: bool):
    if not smoke:
        return [figures.config(FULL)]
    return [figures.config(FULL, experiment="hp_15_smoke", **figures.SMOKE, data={"m": 256, "test_m": 256},
                           sweep={"seeds": 2, "grid": {"data.m": [64, 256], "train.weight_decay": [0.0, 0.01]}})]


def draw(results):
    from matplotlib.ticker import FuncFormatter

    runs, curves = results.runs, results.curves
    ms = sorted(runs["m"].dropna().astype(int).unique())
    lams = sorted(runs["weight_decay"].dropna().astype(float).unique())
    fig, axes = panels(len(ms), len(lams), 2.4 * len(lams), 1.9 * len(ms), sharex=True, sharey=True)
    axes = axes.reshape(len(ms), len(lams))
    merged = curves.merge(runs[["run_id", "m", "weight_decay"]], on="run_id")
    for i, m in enumerate(ms):
        for j, lam in enumerate(lams):
            ax = axes[i, j]
            cell = merged[(merged["m"] == m) & (merged["weight_decay"] == lam)]
            med = cell.groupby("step")[["train_error", "test_error"]].median()
            ax.plot(med.index, med["train_error"], color=PALETTE[1], label="train")
            ax.plot(med.index, med["test_error"], color=PALETTE[0], label="test")
            ax.set_ylim(-0.02, 0.75)
            if i == 0:
                ax.set_title(f"λ = {lam:g}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"m = {m}\nerror", fontsize=9)
            if i == len(ms) - 1:
                ax.set_xlabel("step")
    axes[0, -1].legend(frameon=False, fontsize=7)
    # "5k" for 5000: five-digit step labels nearly touch in panels this narrow
    axes[-1, 0].xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x else "0"))
    r = runs.iloc[0]
    fig.suptitle(f"multi-pass SGD on a ({int(r['n'])}, {int(r['k'])})-parity: sample size × weight decay "
                 "(median over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
