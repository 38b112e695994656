"""HP-1L: training curves of online SGD on the (50, 3) parity — a long plateau, then an abrupt drop.

Barak et al. 2022, Fig. 1 left: a 2-layer ReLU MLP of width r ∈ {100, 1000}, hinge loss, batch 32,
lr 0.1, a fresh batch every step, 5 seeds. Left: test error (on 8192 fresh points) vs step on a
log axis, median and interquartile band over seeds; right: training loss. The paper also shows
PolyNet and a single sinusoidal neuron; those learners are not in the toolkit yet.

Full size: `sparselearn figs HP-1L` (2 compiled groups × 5 seeds × 10k steps): run on the shared
2-core CPU sandbox in 57 s wall; table kept in paper_figs/data/hp-1l*.parquet (+ .yaml), so the
figure redraws without training (delete those files to retrain). Result: every seed reaches 0
test error, width 1000 at ≈1.2k steps and width 100 at ≈3.6k, after a flat plateau at ½. Smoke: `sparselearn figs HP-1L --smoke` (seconds; n = 10, k = 2, width 32).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_figs import common  # noqa: E402
from sparselearn.plotting import error_vs_steps  # noqa: E402
from sparselearn.plotting.style import panels  # noqa: E402

ID = "HP-1L"

FULL = """
experiment: hp_1l
target:  {name: sparse_parity, n: 50, k: 3}
learner: {name: mlp, width: 100, depth: 2, activation: relu, init: standard}
train:   {optimizer: sgd, lr: 0.1, batch: 32, steps: 10000, loss: hinge, eval_every: 100, eps: 0.0}
data:    {online: true, test_m: 8192}
sweep:   {seeds: 5, grid: {learner.width: [100, 1000]}}
"""

SMOKE = f"""
experiment: hp_1l_smoke
target:  {common.SMOKE_TARGET}
learner: {common.SMOKE_LEARNER}
train:   {{{common.SMOKE_TRAIN}, eps: 0.0}}
data:    {{online: true, test_m: 256}}
sweep:   {{seeds: 2}}
"""


def configs(smoke: bool = False):
    return [common.experiment(SMOKE if smoke else FULL, "hp_1l")]


def draw(runs, curves):
    fig, (left, right) = panels(1, 2, 9, 3.4)
    runs = runs.assign(label="width " + runs["width"].astype(int).astype(str))
    error_vs_steps(runs, curves, ax=left, logx=True, series="label", title="test error (fresh inputs)")
    error_vs_steps(runs, curves, ax=right, logx=True, series="label", column="train_loss",
                   title="training loss (hinge)")
    right.set_ylim(bottom=0)
    r = runs.iloc[0]
    fig.suptitle(f"online SGD on a ({int(r['n'])}, {int(r['k'])})-parity, batch {int(r['batch'])}, "
                 f"lr {r['lr']:g}: plateau, then a sudden drop", fontsize=10)
    return fig


def main(smoke: bool = False, results="results", out=None) -> list[Path]:
    runs, curves = common.collect(ID, configs(smoke), smoke, results)
    return common.save_figure(ID, draw(runs, curves), out)


if __name__ == "__main__":
    common.main(main, __doc__)
