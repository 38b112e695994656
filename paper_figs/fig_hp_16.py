"""HP-16: online SGD still learns the (50, 3) parity under label noise — it only takes longer.

Barak et al. 2022, Fig. 16 (App. C.6): each training label flipped with probability p
(`target.noise`), width-100 ReLU MLP, hinge loss, lr 0.1, batch 32 and 1024, 5 seeds; accuracy on
the noiseless distribution (the store's test labels are always clean). One line per p: median
clean test error vs step, interquartile band over seeds. Each p is its own compiled group.

Full size: `sparselearn figs HP-16` — p ∈ {0, 0.2, 0.4}, 5 seeds, batch 32 for 50k steps and
batch 1024 for 20k steps: 47 s + 230 s on a 2-core AMD EPYC CPU, table kept in
paper_figs/data/hp-16*.parquet. Measured median steps to 0 clean test error: batch 32: 4.0k, 7.5k,
18.5k; batch 1024: 2.1k, 3.9k, 12.2k (p = 0.4: 4 of 5 seeds within 20k, the fifth counted
above every step). p = 0.49 needs ≥ 10⁶
steps and a GPU (`--set` a larger train.steps on the FULL config).
Smoke: `sparselearn figs HP-16 --smoke` (seconds).
"""

from __future__ import annotations

from sparselearn import figures
from sparselearn.plotting import error_vs_steps
from sparselearn.plotting.style import panels

ID = "HP-16"

FULL = {"experiment": "hp_16",
        "target": {"name": "sparse_parity", "n": 50, "k": 3, "noise": 0.0},
        "learner": {"name": "mlp", "width": 100, "depth": 2, "activation": "relu", "init": "standard"},
        "train": {"optimizer": "sgd", "lr": 0.1, "batch": 32, "steps": 50000, "loss": "hinge", "eval_every": 500,
                  "eps": 0.0},
        "data": {"online": True, "test_m": 8192},
        "sweep": {"seeds": 5, "grid": {"target.noise": [0.0, 0.2, 0.4]}}}


def experiments(smoke: bool):
    """Batch 32, and the paper's large-batch panel: the same runs with batch 1024 (fewer, costlier steps)."""
    if not smoke:
        return [figures.config(FULL), figures.config(FULL, experiment="hp_16_b1024",
                                                     train={"batch": 1024, "steps": 20000, "eval_every": 100})]
    # one seed per level: two runs, the shape of HP-1L's smoke group (compiled once for both)
    smoke = figures.config(FULL, experiment="hp_16_smoke", **figures.SMOKE, data={"test_m": 256},
                           sweep={"seeds": 1, "grid": {"target.noise": [0.0, 0.2]}})
    return [smoke, figures.config(smoke, experiment="hp_16_b1024_smoke", train={"batch": 64})]


def draw(results):
    runs, curves = results.runs, results.curves
    runs = runs.assign(label="p = " + runs["noise"].astype(float).map("{:g}".format))
    batches = sorted(runs["batch"].dropna().astype(int).unique())
    fig, axes = panels(1, len(batches), 4.6 * len(batches), 3.4, sharey=True)
    for ax, batch in zip(axes, batches):
        part = runs[runs["batch"] == batch]
        error_vs_steps(part, curves[curves["run_id"].isin(part["run_id"])], ax=ax, logx=True, series="label",
                       title=f"batch {batch}")
    axes[0].set_ylabel("test error on clean labels")
    for ax in axes[1:]:
        ax.set_ylabel("")
    r = runs.iloc[0]
    fig.suptitle(f"({int(r['n'])}, {int(r['k'])})-parity, labels flipped w.p. p; width {int(r['width'])}; "
                 f"median and IQR band over {runs['seed'].nunique()} seeds", y=1.04)
    return fig


if __name__ == "__main__":
    figures.main(__file__)
