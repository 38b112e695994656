"""HP-16: online SGD still learns the (50, 3) parity under label noise — it only takes longer.

Barak et al. 2022, Fig. 16 (App. C.6): each training label flipped with probability p
(`target.noise`), width-100 ReLU MLP, hinge loss, lr 0.1, batch 32, 5 seeds; accuracy measured on
the noiseless distribution (the store's test labels are always clean). One line per p: median
clean test error vs step, interquartile band over seeds. Each p is its own compiled group.

Full size: `sparselearn figs HP-16` — p ∈ {0, 0.2, 0.4} capped at 50k steps: 47 s on a 2-core
AMD EPYC CPU, table kept in paper_figs/data/hp-16*.parquet. Measured: median clean test error
reaches 0 at about 4k (p = 0), 6k (p = 0.2) and 15k steps (p = 0.4). p = 0.49 needs ≥ 10⁶ steps and a GPU (`--set` a larger
train.steps on the FULL config). Batch 1024 (the paper's second panel) is a second config to add.
Smoke: `sparselearn figs HP-16 --smoke` (seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_figs import common  # noqa: E402
from sparselearn.plotting import error_vs_steps  # noqa: E402
from sparselearn.plotting.style import figure  # noqa: E402

ID = "HP-16"

FULL = """
experiment: hp_16
target:  {name: sparse_parity, n: 50, k: 3, noise: 0.0}
learner: {name: mlp, width: 100, depth: 2, activation: relu, init: standard}
train:   {optimizer: sgd, lr: 0.1, batch: 32, steps: 50000, loss: hinge, eval_every: 500, eps: 0.0}
data:    {online: true, test_m: 8192}
sweep:   {seeds: 5, grid: {target.noise: [0.0, 0.2, 0.4]}}
"""

SMOKE = f"""
experiment: hp_16_smoke
target:  {common.SMOKE_TARGET}
learner: {common.SMOKE_LEARNER}
train:   {{{common.SMOKE_TRAIN}, eps: 0.0}}
data:    {{online: true, test_m: 256}}
sweep:   {{seeds: 2, grid: {{target.noise: [0.0, 0.2]}}}}
"""


def configs(smoke: bool = False):
    return [common.experiment(SMOKE if smoke else FULL, "hp_16")]


def draw(runs, curves):
    runs = runs.assign(label="p = " + runs["noise"].astype(float).map("{:g}".format))
    fig, ax = figure(5, 3.4)
    error_vs_steps(runs, curves, ax=ax, logx=True, series="label")
    ax.set_ylabel("test error on clean labels")
    r = runs.iloc[0]
    ax.set_title(f"({int(r['n'])}, {int(r['k'])})-parity, labels flipped w.p. p; width {int(r['width'])}")
    return fig


def main(smoke: bool = False, results="results", out=None) -> list[Path]:
    runs, curves = common.collect(ID, configs(smoke), smoke, results)
    return common.save_figure(ID, draw(runs, curves), out)


if __name__ == "__main__":
    common.main(main, __doc__)
