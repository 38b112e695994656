"""Kou-S: the sample rate of sign SGD on k-sparse parities — the fewest fresh samples with which it
learns the parity exactly, vs d, for k = 2, 3, 4 — and why k = 4 fell short in Kou-T3.

Kou, Chen, Gu, Kakade 2024: sign SGD on a two-layer network with 2^Θ(k) units of power k learns a
k-sparse parity from Õ(d^(k−1)) samples. The network and training are Kou-T3's (fixed ±1 readout,
±1 initialisation, correlation loss, η = 0.1, λ = 1, ρ = k!/2, a fresh batch every step) with
2^(k+4) units instead of 2^(k+2). Samples = T*·B: for each d, experiments/kou_samples.py halves the
batch from the paper's B(d) = d^(k−1)·ln d while training still succeeds (then one geometric
midpoint), and at each batch T* is the first step (evaluated every 2, at most 100) by which ≥ 9 of
10 seeds are exact on 4096 fresh inputs (`sl.sample_complexity` over train.steps, runs stopped at
test error 0). Left: the smallest T*·B over the tried batches (filled; solid: fitted power law,
exponent and 95% interval in the legend: t-interval over the d values, widened by the slopes the
points' brackets allow; dashed: d^(k−1) through the middle point) and T*·B(d) at the paper's
batch (open). Middle: the smallest batch that still succeeds, and B(d) dotted. Right: the k = 4
diagnosis at d = 10 (20 seeds, B(10) = 2303, 100 steps): runs exact per setting (bars) and runs
that the initialisation alone predicts exact (diamonds, `kou_samples.exact_after_training`).

Measured (exponent of the fewest samples, 95% interval: the least-squares t-interval over the d
values widened by the range of slopes the points' brackets allow, against k − 1; T* is 14–46
steps at the chosen batches):
    k = 2, d = 10, 14, 20, 28, 40:          128, 396, 660, 1058, 884          α = 1.39 [−0.13, 2.76]
    k = 3, d = 10, 14, 20, 28, 40:          2934, 3660, 11980, 14344, 35400   α = 1.84 [1.01, 2.75]
    k = 4, d = 10, 12, 14, 17, 20, 24, 28:  32242, 42920, 72420, 104400, 191712, 208658, 491378
                                                                              α = 2.54 [1.63, 3.23]
k = 3 and 4 agree with d^(k−1); k = 2's interval covers 1 and 0 alike (unresolved: 884 samples
at d = 40 against 1058 at d = 28). k = 4's 2.54 lies below 3, but its interval [1.63, 3.23] holds 3
(the local slope over three consecutive d runs 2.38, 2.52, 2.70, 1.98, 2.73, within the brackets'
noise). At
the paper's batch T*·B(d) grows faster (α = 1.64, 2.61, 3.80 for k = 2, 3, 4): B(d) itself grows as
d^(1.32, 2.34, 3.36) over these d (the ln d adds about 0.34) and T* stays at 14–28 steps. The
smallest batch that succeeds grows as d^1.35, d^1.04 and d^2.42: as B(d) for k = 2, more slowly for
k = 3 and 4, where B(d) is generous at the larger d and T*·B is smallest near that threshold. The
minimum over batches is resolved to about a factor 1.4 in B and 2 steps in T*, so single points
scatter (k = 2: 1058 at d = 28, 884 at d = 40).

Why k = 4 fell short in Kou-T3 (0.93–0.94 mean accuracy): the width, not the readout's balance,
ρ or λ. A unit keeps its feature weights iff a_j·Π_{i∈S} w_ji⁽⁰⁾ = +1 (the sign its population
gradient gives every feature weight), so the trained net is Σ_good a_j⟨w_j,S, x_S⟩^k. For k = 4
that is χ_S(x)·(256·N₄(x) − 16·N₂(x)), with N₄(x) the good units whose signs on S equal ±x_S and
N₂(x) those agreeing in 3 of 4 places (≈ G/2 of the G good units): every one of the 2^(k−1) = 8
classes of x_S needs more than about G/32 aligned units, G/8 on average. With 2^(k+2) = 64 units
(G ≈ 32) a class with at most one aligned unit occurs in about 4 of 10 initialisations. Measured:
    predicted failure over 20000 initialisations (`coverage_failure`), 64 / 128 / 256 units:
        random readout 0.42 / 0.073 / 0.002;  exactly balanced readout 0.36 / 0.051 / 0.001
    trained, d = 10, 20 seeds (exact runs; predicted from the initialisation; mean accuracy):
        64 units, ρ = 12, λ = 1 (Kou-T3)   10/20; 10; 0.913      128 units   17/20; 17; 0.981
        ρ = 6                              10/20; 10; 0.923      256 units   20/20; 20; 1.000
        ρ = 24                              0/20; 10; 0.522      λ = 0.5      8/20; 10; 0.923
        λ = 2                               0/20; 10; 0.562
The prediction from the initialisation matches all 80 trained runs with λ = 1 and ρ ≤ k!/2. ρ = 6 changes nothing; ρ = 24 exceeds the feature weights' own gradient (4! = 24 at ±1) and
λ = 2 pulls them to 1/2, where their gradient (3) is below ρ, so every weight decays (accuracy
≈ chance); λ = 0.5 learns more slowly (2 of the 10 predicted runs not exact within 100 steps).
An exactly balanced readout removes few failures. Hence 2^(k+4) units here; Kou-T3 still uses
2^(k+2).

Full size: `sparselearn figs Kou-S` (17 searches of 3–6 batches, 10 seeds each, and the 7
diagnosis settings × 20 seeds): 22 min wall, 7.5 min of CPU, from an empty results directory
(compilation cache warm), pinned to one core (`taskset -c 0`) of a 2-core Intel Xeon shared with
other jobs (load average 4–10), jax 0.10.2. Kept: paper_figs/data/kou-s*.parquet and kou-s.yaml;
a rerun gave the same T* at every tried batch, and so did remaking kou-s-samples with the search as
it is now (`python experiments/kou_samples.py`, 10 min wall on one core of a 2-core AMD EPYC): the
same samples at every d, with the brackets' lower ends strictly below them, so wider intervals. k = 4 at d = 40 is left out (its batches reach
236089 inputs, about 10× the CPU time and memory of d = 28: several GB per group on this shared
machine); per batch B, halving from B(d) while it succeeds:
    python -c "from sparselearn import config, figures; kou = figures.study('kou_samples', near='.'); \\
               print(config.dump(kou.net(4, 40, kou.paper_batch(4, 40))))" > kou_k4_d40.yaml
    sparselearn search kou_k4_d40.yaml --param train.steps --eps 0 --delta 0.1 --max 100 \\
        --set executor.name=slurm --set train.batch=B --out DIR   # or ray; B = 236089, 118044, …
(`sparselearn search` has no --executor flag: --set executor.name=ray|slurm does what `--executor
ray|slurm` does for `sparselearn run`). Then add 40 to `kou_samples.FULL["ds"][4]`, delete the kept
tables and run `sparselearn figs Kou-S --results DIR`, which reuses the stored runs.
Smoke: `sparselearn figs Kou-S --smoke` (seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter, ScalarFormatter

import sparselearn as sl
from sparselearn import figures
from sparselearn.plotting import fit_exponent, overlay
from sparselearn.plotting.style import PALETTE, panels

ID = "Kou-S"

kou = figures.study("kou_samples", near=__file__)

#: the k = 4 diagnosis: label → (units, ρ, λ) at d = 10, the paper's batch, 20 seeds
DIAGNOSIS = {"64 units (Kou-T3)": (64, 12.0, 1.0), "ρ = 6": (64, 6.0, 1.0), "ρ = 24": (64, 24.0, 1.0),
             "λ = 0.5": (64, 12.0, 0.5), "λ = 2": (64, 12.0, 2.0), "128 units": (128, 12.0, 1.0),
             "256 units (used)": (256, 12.0, 1.0)}
SMOKE_DIAGNOSIS = {"16 units": (16, 1.0, 1.0), "64 units (used)": (64, 1.0, 1.0)}


def _diagnosis_configs(smoke: bool) -> dict[str, sl.config.Experiment]:
    k, d = (2, 6) if smoke else (4, 10)
    return {label: kou.net(k, d, kou.paper_batch(k, d), smoke, width=width, rho=rho, weight_decay=lam,
                           seeds=2 if smoke else 20, name=f"kou_s_diagnosis_{i}")
            for i, (label, (width, rho, lam)) in enumerate((SMOKE_DIAGNOSIS if smoke else DIAGNOSIS).items())}


def experiments(smoke: bool) -> list[sl.config.Experiment]:
    """The study's configs at the paper's batch, then the diagnosis runs."""
    return [*kou.experiments(smoke), *_diagnosis_configs(smoke).values()]


def diagnosis(smoke: bool, store: str) -> pd.DataFrame:
    """One row per diagnosis run: setting, seed, exact (test error 0), predicted (exact by
    `kou.exact_after_training` from its initial weights), good units, test accuracy."""
    rows = []
    for label, exp in _diagnosis_configs(smoke).items():
        runs = sl.run(exp, str(store), progress=False)
        for _, r in runs[runs["status"] != "failed"].iterrows():
            a, w = kou.initial_support_weights(exp, int(r["seed"]))
            rows.append({"setting": label, "k": exp.target.k, "d": exp.target.n, "units": exp.learner.width, "rho": exp.train.sign_threshold,
                         "weight_decay": exp.train.weight_decay, "seed": int(r["seed"]),
                         "exact": bool(r["test_error"] == 0), "accuracy": 1 - float(r["test_error"]),
                         "predicted": bool(kou.exact_after_training(a, w, exp.learner.power)),
                         "good": int(kou.good_units(a, w).sum())})
    return pd.DataFrame(rows)


def coverage(smoke: bool) -> pd.DataFrame:
    """Predicted failure probability (`kou.coverage_failure`) per k, units 2^(k+2…k+4), readout."""
    trials = 200 if smoke else 20000
    return pd.DataFrame([{"k": k, "units": 2 ** (k + c), "readout": "balanced" if bal else "random",
                          "failure": kou.coverage_failure(k, 2 ** (k + c), bal, trials)}
                         for k in (2, 3, 4) for c in (2, 3, 4) for bal in (False, True)])


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"samples" (the study's table), "tried" (every tried batch), "diagnosis", "coverage"."""
    tried = kou.search_all(smoke, store)
    return {"samples": kou.summarise(tried), "tried": tried, "diagnosis": diagnosis(smoke, store),
            "coverage": coverage(smoke)}


def _log_axes(ax, values: pd.DataFrame, ds):
    """Log-log axes ticked at the d values, where the panel has a positive value to draw (a
    censored smoke run has none)."""
    if np.isfinite(values.to_numpy(dtype=float)).any():
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(set(ds)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())


def _samples_panel(ax, table: pd.DataFrame):
    for i, (k, part) in enumerate(table.groupby("k", sort=True)):
        color = PALETTE[i % len(PALETTE)]
        ok = part.dropna(subset=["samples"]).sort_values("n")
        try:
            fit = fit_exponent(ok["n"], ok["samples"], low=ok["ci_low"], high=ok["ci_high"])
            label = f"k = {k}: {fit.label()}"
        except ValueError:
            fit, label = None, f"k = {k}"
        ax.plot(ok["n"], ok["samples"], "o", color=color, ms=5, label=label)
        paper = part.dropna(subset=["paper_samples"]).sort_values("n")
        ax.plot(paper["n"], paper["paper_samples"], "o", mfc="none", color=color, ms=6)
        if fit is not None:
            grid = np.geomspace(ok["n"].min(), ok["n"].max(), 40)
            ax.plot(grid, fit(grid), "-", color=color, lw=1)
            mid = len(ok) // 2
            overlay(ax, grid, grid ** (k - 1.0), f"d^{k - 1}", anchor=(ok["n"].iloc[mid], ok["samples"].iloc[mid]),
                    color=color)
    ax.plot([], [], "o", mfc="none", color="0.4", label="at the paper's batch d^(k−1)·ln d")
    _log_axes(ax, table[["samples", "paper_samples"]], table["n"])
    ax.set_xlabel("input dimension d")
    ax.set_ylabel("samples T*·B to 100% test accuracy (9/10 seeds)")
    ax.set_title("fewest samples vs d")
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))


def _batch_panel(ax, table: pd.DataFrame):
    for i, (k, part) in enumerate(table.groupby("k", sort=True)):
        color = PALETTE[i % len(PALETTE)]
        part = part.sort_values("n")
        ax.plot(part["n"], part["smallest_batch"], "o-", color=color, ms=5, label=f"k = {k}: smallest batch")
        ax.plot(part["n"], part["paper_batch"], ":", color=color, lw=1.2)
    ax.plot([], [], ":", color="0.4", label="paper's batch d^(k−1)·ln d")
    _log_axes(ax, table[["smallest_batch", "paper_batch"]], table["n"])
    ax.set_xlabel("input dimension d")
    ax.set_ylabel("batch B")
    ax.set_title("smallest batch that still succeeds")
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))


def _diagnosis_panel(ax, table: pd.DataFrame):
    settings = list(dict.fromkeys(table["setting"]))
    counts = table.groupby("setting", sort=False).agg(exact=("exact", "sum"), predicted=("predicted", "sum"),
                                                      runs=("exact", "size")).loc[settings]
    y = np.arange(len(settings))
    ax.barh(y, counts["exact"], color=PALETTE[0], alpha=0.8, label="runs exact after training")
    ax.plot(counts["predicted"], y, "D", color=PALETTE[1], ms=6, label="predicted exact from the initialisation")
    ax.set_yticks(y, settings, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, counts["runs"].max() + 0.5)
    ax.set_xlabel(f"runs out of {int(counts['runs'].max())}")
    ax.set_title(f"k = {table['k'].iloc[0]}, d = {table['d'].iloc[0]}: runs exact per setting", fontsize=10)
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))


def draw(results):
    fig, (left, middle, right) = panels(1, 3, 14.0, 4.2)
    _samples_panel(left, results["samples"])
    _batch_panel(middle, results["samples"])
    _diagnosis_panel(right, results["diagnosis"])
    fig.suptitle("sign SGD on k-sparse parities: fewest fresh samples for exact learning "
                 f"(2^(k+{kou.WIDTH}) units of power k)", fontsize=10, y=1.02)
    return fig


if __name__ == "__main__":
    figures.main(__file__)
