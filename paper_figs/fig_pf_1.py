"""PF-1/4: success probability over width r × sample size m, dense vs sparse (s = 2) init.

Edelman et al. 2023 (Pareto frontiers), Fig. 1/4: multi-pass SGD on a fixed sample of m
examples of the (50, 3) parity; 2-layer ReLU MLP, hinge loss, batch 32, lr 0.1, coupled weight
decay 0.01. A run succeeds when its test error on 10⁴ held-out points is ≤ 10% at some
evaluation (every 500 steps) within T steps (`steps_to_eps` is set). Two panels, dense
(Xavier) and sparse init (`init: sparse, fan_in: 2, connectivity: free`: each hidden unit
starts connected to 2 random inputs, and all weights train, as in the paper; with the fixed
connectivity a 2-sparse net cannot represent a 3-parity at all); colour = fraction of seeds
that succeed, cells laid out evenly in m, black line = the 50% contour (the frontier).
Expected: the frontier moves to smaller m as r grows, success is monotone in r, s = 2 is at
least as good as dense.

Reduced full size (what is kept): `sparselearn figs PF-1` — T = 2×10⁴ (the paper: 10⁵),
r ∈ {10, 100, 1000} × m ∈ {200, 500, 1000, 2000, 3000, 10⁴} with 8 seeds, m ∈ {700, 1500} with
6 seeds, and r = 10⁴ × m ∈ {500, 700} with 3 seeds (≈ 1 ms per run-step), both inits; 2-core
AMD EPYC (Zen 4) CPU, jax 0.10.2, shared with other jobs: 35.6 min wall for the r ≤ 1000 main
grid (load average 14–17), 4.4 min for m ∈ {700, 1500} (load 5–10), 14.8 min for r = 10⁴
(load 5–7; ≈ 7.4 min per init);
tables in paper_figs/data/pf-1*.parquet. m and the seeds are vmapped, so each
(init, width, part) is one compiled group.
Measured success fraction (dense / sparse s = 2):

    m        200   500   700        1000       1500       2000       3000       10⁴
    r = 10   0/0   0/0   0/0        .12/.12    .33/.50    .62/.38    .88/1      .88/1
    r = 100  0/0   0/0   0/.17      .12/1      .83/1      1/1        1/1        1/1
    r = 10³  0/0   0/0   .33/.67    1/1        1/1        1/1        1/1        1/1
    r = 10⁴              0/0   1/.33  (3 seeds; not run at other m)
The 50% frontier sits between m = 1500 and 2000 for r = 10 (dense), between 1000 and 1500 for
dense r = 100 but between 700 and 1000 for sparse r = 100, and between 700 and 1000 (dense) or
below 700 (sparse) for r = 10³; dense r = 10⁴ succeeds at m = 700 in 3/3 runs (r = 10³: 2/6).
Width buys data, and s = 2 buys about as much as a 10× wider dense net (sparse r = 100 matches
dense r = 10³ at m = 1000). Success is non-decreasing in r in every column except sparse at
m = 700, where r = 10⁴ gets 1/3 against 4/6 at r = 10³ (3 seeds; its two failures are at 39%
and 42% test error at T, still falling). m ≤ 500 fails at every width within this T (the runs
fit the sample, training error ≤ 1.4%, while the test error stays at 48–51% up to r = 100; at
r ≥ 10³ it is down to 25–51% at T).
An earlier reference measurement (T = 10⁵, 3 seeds) agrees where it overlaps: m ≥
3000 succeeds within 2–3k steps at r ∈ {100, 1000} (here in 1–2k steps in the median, 1.0–4.5k
per run); m = 1000 at r = 100 gives 1/3
(2/3 with s = 2) there, 1/8 (8/8 with s = 2) here; r = 1000 at m = 1000 gives 3/3 at 7–10k
steps there, 8/8 with median 7.5k here; m = 200 fails at every width in both; m = 500 at
r = 10⁴ needs 21–59k steps there, beyond this T.

The paper-size grid (T = 10⁵, r ∈ {10, 30, 100, …, 10⁴}, 10 seeds; ≈ 5 h of this CPU idle) is the
same configs with overrides, run on a cluster through the SLURM or Ray executor, one compiled
group per job, all writing to one results store:

    for init in dense sparse; do
      sparselearn run paper_figs/data/pf-1-$init.yaml --executor slurm \\
        --set train.steps=100000 --set sweep.seeds=10 \\
        --set "sweep.grid.learner.width=[10, 30, 100, 300, 1000, 3000, 10000]" \\
        --set executor.partition=gpu --set executor.gpus=1 --set executor.time_min=240
    done

(`--executor ray --set executor.address=HOST:PORT` for a Ray cluster; the two YAML files are
kept next to the tables.) Smoke: `sparselearn figs PF-1 --smoke` — the (10, 2) parity,
r ∈ {2, 32}, m ∈ {64, 256}, 3 seeds, 200 steps (seconds); there success grows with width
(tests/test_pf_science.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import patheffects

from sparselearn import figures
from sparselearn.plotting.style import panels

ID = "PF-1"
INITS = {"dense": {"init": "standard"}, "sparse": {"init": "sparse", "fan_in": 2, "connectivity": "free"}}

FULL = {"target": {"name": "sparse_parity", "n": 50, "k": 3},
        "learner": {"name": "mlp", "width": 100, "depth": 2, "activation": "relu"},
        "train": {"optimizer": "sgd", "lr": 0.1, "batch": 32, "steps": 20000, "loss": "hinge", "weight_decay": 0.01,
                  "eval_every": 500, "eps": 0.1},
        "data": {"m": 10000, "test_m": 10000}}

#: (widths, sample sizes, seeds) of the full-size parts of each init's grid
PARTS = [([10, 100, 1000], [200, 500, 1000, 2000, 3000, 10000], 8),
         ([10, 100, 1000], [700, 1500], 6),  # denser m near the frontier (for PF-2R)
         ([10000], [500, 700], 3)]  # the widest nets, where the data limit should move

SMOKE = {"target": {"n": 10, "k": 2}, "learner": {"width": 32},
         "train": {"batch": 16, "steps": 200, "eval_every": 20}, "data": {"m": 256, "test_m": 512},
         "sweep": {"seeds": 3, "grid": {"learner.width": [2, 32], "data.m": [64, 256]}}}


def experiments(smoke: bool):
    """One config per (init, part of the grid); the experiment name says the init. The main
    part of each init's grid is also kept as paper_figs/data/pf-1-<init>.yaml (the cluster command)."""
    if smoke:
        return [figures.config(FULL, experiment=f"pf_1_smoke_{i}", **{**SMOKE, "learner": {"width": 32, **init}})
                for i, init in INITS.items()]
    return [figures.config(FULL, experiment=f"pf_1_{i}" + ("" if j == 0 else f"_part{j + 1}"), learner=init,
                           sweep={"seeds": seeds, "grid": {"learner.width": widths, "data.m": ms}})
            for i, init in INITS.items() for j, (widths, ms, seeds) in enumerate(PARTS)]


def with_init(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with `init` (dense/sparse, from the experiment name) and `success` (test error
    ≤ eps reached within the steps; failed or diverged runs count as failures)."""
    init = runs["experiment"].str.contains("sparse").map({True: "sparse", False: "dense"})
    success = (runs["status"] == "ok") & runs["steps_to_eps"].notna()
    return runs.assign(init=init, success=success.astype(float))


def success_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean success and run count per (init, width, m)."""
    runs = with_init(runs)
    return (runs.groupby(["init", "width", "m"])["success"].agg(["mean", "count"]).reset_index()
            .rename(columns={"mean": "p_success", "count": "runs"}))


def _phase(ax, table: pd.DataFrame, title: str):
    grid = table.pivot(index="width", columns="m", values="p_success").sort_index().sort_index(axis=1)
    counts = table.pivot(index="width", columns="m", values="runs").reindex_like(grid)
    values = grid.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            dark = v < 0.6   # white text with a dark halo, black text with a white one: the contour passes under
            ax.text(j, i, f"{v:.2f}\n({int(counts.iloc[i, j])})", ha="center", va="center", fontsize=6.5,
                    color="white" if dark else "black",
                    path_effects=[patheffects.withStroke(linewidth=1.5, foreground="black" if dark else "white")])
    if min(grid.shape) >= 2 and np.nanmin(values) < 0.5 < np.nanmax(values):
        contour = ax.contour(np.arange(grid.shape[1]), np.arange(grid.shape[0]), values, levels=[0.5],
                             colors="k", linewidths=1.5)
        ax.clabel(contour, fmt={0.5: "50%"}, fontsize=7, manual=[_label_spot(ax, contour, values)])
    ax.set_xticks(range(grid.shape[1]), [f"{int(v)}" for v in grid.columns], fontsize=7, rotation=45)
    ax.set_yticks(range(grid.shape[0]), [f"{int(v)}" for v in grid.index])
    ax.set_xlabel("sample size m")
    ax.set_title(title, fontsize=10)
    return image


def _label_spot(ax, contour, values: np.ndarray) -> tuple[float, float]:
    """The point of the 50% contour farthest, on the page, from every cell's text (at the cell
    centres), half a cell or more from the line's ends: there its label covers no number and
    leaves the line on both sides."""
    lines = [line for path in contour.get_paths() for line in path.to_polygons(closed_only=False) if len(line)]
    inner = []
    for line in lines:
        along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
        inner.append(line[(along >= 0.5) & (along <= along[-1] - 0.5)])
    points = np.concatenate(inner) if sum(map(len, inner)) else np.concatenate(lines)
    centres = np.argwhere(np.isfinite(values))[:, ::-1].astype(float)     # (x, y) = (column, row)
    page = ax.transData.transform
    gaps = np.linalg.norm(page(points)[:, None, :] - page(centres)[None, :, :], axis=2).min(axis=1)
    return tuple(points[np.argmax(gaps)])


def draw(results):
    runs = results.runs
    table = success_table(runs)
    fig, axes = panels(1, 2, 9.0, 3.6, sharey=True)
    for ax, init in zip(axes, ("dense", "sparse")):
        image = _phase(ax, table[table["init"] == init], "dense init" if init == "dense" else "sparse init, s = 2")
    axes[0].set_ylabel("width r")
    fig.colorbar(image, ax=list(axes), label="P[test error ≤ 10% within T]")
    r = runs.iloc[0]
    fig.suptitle(f"PF-1/4: ({int(r['n'])}, {int(r['k'])})-parity, T = {int(r['steps'])} steps, "
                 "success fraction (seeds per cell)", fontsize=10, y=1.03)
    return fig


if __name__ == "__main__":
    figures.main(__file__)
