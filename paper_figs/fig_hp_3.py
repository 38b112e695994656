"""HP-3/13: hidden progress — a sinusoidal neuron's relevant weights grow long before its loss
moves, and ρ = ‖w_t − w_0‖_∞ tells true labels from random ones during the plateau.

Barak et al. 2022, Figs. 3 and 13: one neuron sin(π/2·(⟨w, x⟩ + b)) with a bias and no second
layer, online SGD (hinge, lr 0.01) on the (30, 3) parity. Left: the weights w_i(t) of one run
(batch 32), the k relevant coordinates in colour, the n − k others in grey. Middle: ρ(t), the
largest change of any weight since initialisation (recorded for every stored run as the `drift`
curve), for true labels and for random labels (`noise: 0.5`, independent of x), median over
seeds, per batch size. Right: test error with true labels on the same step axis.

The weights of the left panel are the stored run's own: every run records its first layer and
the teacher's influence per coordinate (`train.record: [first_layer, influence]`, the traces
table of the store); the panel shows seed 0 with true labels.

Full size: `sparselearn figs HP-3` (5 seeds × batch {1, 32, 1024} × {true, random} labels ×
5k steps): 3 min 46 s wall on the 2-core AMD EPYC (Zen 4) CPU, jax 0.10.2, shared with other jobs
(load average about 14); tables kept in paper_figs/data/hp-3*.parquet (delete them to retrain).
They equal, value for value, the tables made before the weights were stored, when one run was
traced again outside the store.
Result: with batch 32 and 1024 every seed reaches test error 0 (median t_c 1.3k and 1.65k
steps); the three relevant weights leave the irrelevant ones from about step 500 and reach ±1
while the irrelevant ones decay to 0. Median ρ at step 500, true vs random labels: 0.16 vs 0.10
(batch 32), 0.12 vs 0.017 (batch 1024), while the test error is still 0.5 — ρ separates the two
before the loss moves, and more clearly the larger the batch. With batch 1 (lr 0.01) no seed
learns in 5k steps and ρ is the same for true and random labels (1.86 vs 1.78 at the end):
the single-example gradient noise swamps the signal there.
Smoke: `sparselearn figs HP-3 --smoke` (seconds; n = 10, k = 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting.curves import _band
from sparselearn.plotting.style import PALETTE, panels
from sparselearn.store import trace_array

ID = "HP-3"

FULL = {"experiment": "hp_3",
        "target": {"name": "sparse_parity", "n": 30, "k": 3},
        "learner": {"name": "neuron", "activation": "sin", "bias": True, "readout": "none"},
        "train": {"optimizer": "sgd", "lr": 0.01, "batch": 32, "steps": 5000, "loss": "hinge", "eval_every": 50,
                  "eps": 0.0, "record": ["first_layer", "influence"]},
        "data": {"online": True, "test_m": 8192},
        "sweep": {"seeds": 5, "grid": {"train.batch": [1, 32, 1024], "target.noise": [0.0, 0.5]}}}

SMOKE = {"experiment": "hp_3_smoke", "target": {"n": 10, "k": 2},
         "train": {"lr": 0.05, "batch": 16, "steps": 200, "eval_every": 20}, "data": {"test_m": 256},
         "sweep": {"seeds": 2, "grid": {"target.noise": [0.0, 0.5]}}}

TRACED_BATCH = 32


def traced_batch(runs: pd.DataFrame) -> int:
    """The batch of the run whose weights are drawn: TRACED_BATCH, or the smallest batch when it
    was not run."""
    return TRACED_BATCH if (runs["batch"] == TRACED_BATCH).any() else int(runs["batch"].min())


def experiments(smoke: bool):
    return [figures.config(FULL, **SMOKE) if smoke else figures.config(FULL)]


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """The runs and curves of the sweep, and "weights": w_i(t) of one stored run (`weights`)."""
    runs, curves, traces = figures.sweep(experiments(smoke), store, traces=True)
    return {"runs": runs, "curves": curves, "weights": weights(runs, traces)}


def weights(runs: pd.DataFrame, traces: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The weights w_i(t) of the run with true labels, batch TRACED_BATCH (the smallest batch
    when it was not run) and `seed`, from its traces: long table (step, coordinate, weight,
    relevant)."""
    batch = traced_batch(runs)
    (run_id,) = runs.loc[(runs["noise"] == 0) & (runs["batch"] == batch) & (runs["seed"] == seed), "run_id"]
    _, steps, w = trace_array(traces, "first_layer", [run_id])                # (1, P, n)
    relevant = trace_array(traces, "influence", [run_id])[2][0, 0] > 0.5     # the parity's support
    n = w.shape[2]
    return pd.DataFrame({"step": np.repeat(steps, n), "coordinate": np.tile(np.arange(n), len(steps)),
                         "weight": w[0].ravel(), "relevant": np.tile(relevant, len(steps))})


def _median_band(ax, runs, curves, column, label, color):
    merged = curves.merge(runs[["run_id", "seed"]], on="run_id")
    merged = merged[merged["step"] > 0]
    table = merged.pivot_table(index="step", columns="seed", values=column, aggfunc="first").sort_index()
    _band(ax, table.index.to_numpy(dtype=float), table, label, color)


def draw(results):
    runs, curves, weights = results.runs, results.curves, results["weights"]
    fig, (left, middle, right) = panels(1, 3, 13, 3.5)
    for relevant, part in weights.groupby("relevant"):
        for i, (_, coord) in enumerate(part.groupby("coordinate")):
            left.plot(coord["step"], coord["weight"], lw=1.4 if relevant else 0.6,
                      color=PALETTE[3] if relevant else "0.7",
                      label=("relevant (i ∈ S)" if relevant else "irrelevant") if i == 0 else None)
    left.set_xlabel("training step")
    left.set_ylabel("weight w_i")
    left.set_title(f"one run, batch {traced_batch(runs)}")
    left.legend(frameon=False, loc="center right", bbox_to_anchor=(1.0, 0.7))

    runs = runs[runs["status"] == "ok"]
    batches = sorted(runs["batch"].unique())
    for j, batch in enumerate(batches):
        color = PALETTE[j % len(PALETTE)]
        for noise, style in ((0.0, "true"), (0.5, "random")):
            part = runs[(runs["batch"] == batch) & (runs["noise"] == noise)]
            if part.empty:
                continue
            _median_band(middle, part, curves, "drift", f"batch {batch}, {style} labels", color)
            if style == "true":
                _median_band(right, part, curves, "test_error", f"batch {batch}", color)
    for line in middle.lines:
        if "random" in line.get_label():
            line.set_linestyle("--")
            line.set_markerfacecolor("white")
    for ax in (middle, right):
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.legend(frameon=False, fontsize=7)
    middle.set_ylabel(r"$\rho = \|w_t - w_0\|_\infty$")
    middle.set_title("ρ: true (solid, filled) vs random (dashed, hollow)", fontsize=10)
    right.set_ylabel("test error (true labels)")
    right.set_ylim(bottom=0)
    right.set_title("the loss moves later")
    r = runs.iloc[0]
    fig.suptitle(f"hidden progress of a sinusoidal neuron on the ({int(r['n'])}, {int(r['k'])})-parity, "
                 f"lr {r['lr']:g}; median and IQR over seeds", fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
