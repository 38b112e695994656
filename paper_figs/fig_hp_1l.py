"""HP-1L: training curves of online SGD on the (50, 3) parity — a long plateau, then an abrupt drop.

Barak et al. 2022, Fig. 1 left and Fig. 6 row 2. Left and middle: a 2-layer ReLU MLP of width
r ∈ {100, 1000} (hinge loss, batch 32, lr 0.1) and a single sinusoidal neuron
u·sin(π/2·(⟨w, x⟩ + b)) with trained u and b (`neuron`, lr 0.01, batch 32); test error on 8192
fresh points and the training loss vs step on a log axis, median and interquartile band over 5
seeds, a fresh batch every step. Right: PolyNet f = ⟨w₁,x⟩⟨w₂,x⟩⟨w₃,x⟩ (`polynet`, Xavier-uniform
start, hinge loss) at all six (B, η) pairs of Fig. 6 row 2: (1, .005), (4, .01), (16, .1),
(64, .1), (256, .1), (1024, .1), 5 seeds each.

Full size: `sparselearn figs HP-1L` (9 compiled groups, 45 runs of 10k steps): 310 s wall on
the 2-core AMD EPYC Zen 4 sandbox (jax 0.10.2 CPU) while other jobs kept the load average near
18, so expect about a third of that on a quiet machine; tables kept in paper_figs/data/hp-1l*.parquet
(+ .yaml), so the figure redraws without training (delete those files to retrain).
Result: all 45 runs reach 0 test error; the MLPs, the sin neuron and PolyNet at B = 1 and 4 after a
flat plateau at ½, while PolyNet at B ≥ 16 drops within the first 100–200 steps, where an
evaluation every 50 steps resolves no plateau (some seeds are at 0.27–0.38 by step 50). Median t_c (range over seeds):
ReLU width 1000: 1.2k (1.1–1.3k) steps, width 100: 3.7k (2.7–4.2k); sin neuron: 1.8k (1.0–3.5k);
PolyNet B = 1: 6.2k (3.0–8.1k), B = 4: 1.85k (1.1–3.9k), B ≥ 16 with η = 0.1: 150–200 (100–300)
steps (its plateau is short at large batches, as in Fig. 6, where it is shorter than the MLP's too).
Smoke: `sparselearn figs HP-1L --smoke` (seconds; n = 10, k = 2, width 32, PolyNet with 2 factors).
"""

from __future__ import annotations

from sparselearn import figures
from sparselearn.plotting.style import PALETTE, panels

ID = "HP-1L"

FULL = {"experiment": "hp_1l",
        "target": {"name": "sparse_parity", "n": 50, "k": 3},
        "learner": {"name": "mlp", "width": 100, "depth": 2, "activation": "relu", "init": "standard"},
        "train": {"optimizer": "sgd", "lr": 0.1, "batch": 32, "steps": 10000, "loss": "hinge", "eval_every": 100,
                  "eps": 0.0},
        "data": {"online": True, "test_m": 8192},
        "sweep": {"seeds": 5, "grid": {"learner.width": [100, 1000]}}}

#: PolyNet f = Π⟨w_i, x⟩ at the batch sizes and learning rates of Fig. 6 row 2: (1, .005),
#: (4, .01), then lr 0.1 for batch 16…1024; one config per learning rate
POLYNET = {"learner": {"name": "polynet", "factors": 3, "init": "xavier"}, "train": {"eval_every": 50}}
POLYNET_PARTS = {"_b1": (0.005, [1]), "_b4": (0.01, [4]), "": (0.1, [16, 64, 256, 1024])}

#: a single sinusoidal neuron u·sin(π/2·(⟨w, x⟩ + b)) with a trained u, lr 0.01
NEURON = {"learner": {"name": "neuron", "activation": "sin", "bias": True, "readout": "trained"},
          "train": {"lr": 0.01}}


def experiments(smoke: bool):
    if smoke:
        small = figures.config(FULL, experiment="hp_1l_smoke", **figures.SMOKE, data={"test_m": 256},
                               sweep={"seeds": 2, "grid": {}})
        return [small,
                figures.config(small, experiment="hp_1l_polynet_smoke", learner={"name": "polynet", "factors": 2}),
                figures.config(small, experiment="hp_1l_sin_smoke", learner={"name": "neuron", "activation": "sin"},
                               train={"lr": 0.05})]
    polynets = [figures.config(FULL, experiment=f"hp_1l_polynet{tag}", learner=POLYNET["learner"],
                               train={**POLYNET["train"], "lr": lr}, sweep={"seeds": 5, "grid": {"train.batch": b}})
                for tag, (lr, b) in POLYNET_PARTS.items()]
    neuron = figures.config(FULL, experiment="hp_1l_sin", **NEURON, sweep={"seeds": 5, "grid": {}})
    return [figures.config(FULL), *polynets, neuron]


def _label(r) -> str:
    if r["learner"] == "mlp":
        return f"ReLU MLP, width {int(r['width'])}, lr {r['lr']:g}"
    if r["learner"] == "neuron":
        return f"sin neuron, lr {r['lr']:g}"
    return f"B = {int(r['batch'])}, lr {r['lr']:g}"


def _median_lines(ax, runs, curves, column: str = "test_error"):
    """One line per label (in the order of `runs`): median over seeds, interquartile band."""
    merged = curves[curves["step"] > 0].merge(runs[["run_id", "label", "seed"]], on="run_id")
    for i, label in enumerate(dict.fromkeys(runs["label"])):
        table = merged[merged["label"] == label].pivot_table(index="step", columns="seed", values=column)
        q = table.quantile([0.25, 0.5, 0.75], axis=1).T
        color = PALETTE[i % len(PALETTE)]
        ax.plot(table.index, q[0.5], "-", color=color, label=label, lw=1.4)
        ax.fill_between(table.index, q[0.25], q[0.75], color=color, alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("training step")
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)


def draw(results):
    runs, curves = results.runs, results.curves
    runs = runs[runs["status"] != "failed"].sort_values(["learner", "width", "batch"])
    runs = runs.assign(label=runs.apply(_label, axis=1))
    fig, (left, middle, right) = panels(1, 3, 13.5, 3.6)
    nets = runs[runs["learner"] != "polynet"]
    _median_lines(left, nets, curves)
    left.set_ylim(0, 0.75)   # the legend above the plateau, clear of the drops
    left.set_yticks([0, 0.1, 0.2, 0.3, 0.4, 0.5])
    left.legend(frameon=False, loc="upper left", fontsize=7.5)
    left.set_ylabel("test error (fresh inputs)")
    left.set_title("MLPs (B = 32) and one sin neuron")
    _median_lines(middle, nets, curves, column="train_loss")
    middle.get_legend().remove()
    middle.set_ylabel("training loss (hinge)")
    middle.set_title("training loss (lines as on the left)")
    _median_lines(right, runs[runs["learner"] == "polynet"], curves)
    right.set_ylim(0, 0.75)
    right.set_yticks([0, 0.1, 0.2, 0.3, 0.4, 0.5])
    right.legend(frameon=False, loc="upper left", bbox_to_anchor=(0.04, 1.0), ncol=2, fontsize=7.5)
    right.set_ylabel("test error (fresh inputs)")
    right.set_title("PolyNet Π⟨wᵢ, x⟩, batch B")
    r = runs.iloc[0]
    fig.suptitle(f"online SGD on a ({int(r['n'])}, {int(r['k'])})-parity, hinge loss: plateau, then a sudden drop\n"
                 "(PolyNet at B ≥ 16: a drop with no plateau resolved; median and interquartile band over seeds)",
                 fontsize=10, y=1.05)
    return fig


if __name__ == "__main__":
    figures.main(__file__)
