"""ACT-1: how sparsely trained students fire — ReLU and top-k students on a sparse and a dense teacher.

A figure of our own: the sparse-vs-dense separation seen from the student's side.
Teachers on {±1}^16 with s = 16 hidden units: a sparsely activated junta (`sparse_mlp`,
construction junta, k = 2 active units on every input) and the dense parity net (construction
parity: the parity of 15 bits written as ramps, up to 16 units active). Students: width-256
depth-2 networks, plain ReLU and top-k (k = 16 of 256 units kept per input). Square loss, Adam
(lr 3·10⁻³), batch 64, m = 4096, 3000 steps, 3 seeds. The fraction of hidden units active per
test input is recorded at every curve point (`train.record: [active_fraction]`: a unit counts as
active on an input when the output's gradient with respect to its incoming weights is non-zero)
and read from the store's traces.

Left: active fraction over training (median over seeds); right: test loss ½·MSE over training.

Full size: `sparselearn figs ACT-1`, 31 s on a 2-core Intel Xeon; tables kept in
paper_figs/data/act-1*.parquet. Result (median of 3 seeds, active fraction at step 0 → 3000, final
test loss ½·MSE): junta / ReLU 0.503 → 0.484, 4.2·10⁻⁴; junta / top-16 0.062 (fixed), 1.8·10⁻⁴;
parity / ReLU 0.503 → 0.426, 0.18; parity / top-16 0.062, 0.42. Both students learn the sparse
teacher, the top-16 one with a sixteenth of the units firing; neither learns the dense parity net in
3000 steps, and the top-16 student does worst there. A ReLU student does not become sparse by itself
on the sparse teacher (it stays near half active); on the dense teacher it drifts to 43%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting.style import PALETTE, panels
from sparselearn.store import trace_array

ID = "ACT-1"

TEACHERS = {"junta (k = 2 of 16 active)": {"name": "sparse_mlp", "n": 16, "s": 16, "k": 2, "construction": "junta"},
            "parity net (dense, s = 16)": {"name": "sparse_mlp", "n": 16, "s": 16, "k": 16, "construction": "parity"}}
STUDENTS = {"ReLU": {"name": "mlp", "width": 256, "depth": 2, "activation": "relu"},
            "top-16": {"name": "mlp", "width": 256, "depth": 2, "activation": "topk", "k": 16}}
FULL = {"steps": 3000, "eval_every": 100, "seeds": 3, "m": 4096}
SMOKE = {"steps": 100, "eval_every": 50, "seeds": 2, "m": 256}


def experiments(smoke: bool) -> dict:
    """One experiment per (teacher, student), labelled "<teacher> / <student>"."""
    size = SMOKE if smoke else FULL
    out = {}
    for (t_label, target), t_id in zip(TEACHERS.items(), ("junta", "parity")):
        for s_label, learner in STUDENTS.items():
            name = f"act_1{'_smoke' if smoke else ''}_{t_id}_{learner['activation']}"
            out[f"{t_label} / {s_label}"] = figures.config(
                {"experiment": name, "target": target, "learner": learner,
                 "train": {"optimizer": "adam", "lr": 0.003, "batch": 64, "steps": size["steps"], "loss": "square",
                           "eval_every": size["eval_every"], "eps": 0.01, "record": ["active_fraction"]},
                 "data": {"m": size["m"], "test_m": 1024},
                 "sweep": {"seeds": size["seeds"]}})
    return out


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """Runs (with teacher and student labels), curves, and "active": the active fraction of every
    run at every curve point, from the traces."""
    declared = experiments(smoke)
    runs, curves, traces = figures.sweep(declared, store, traces=True)
    label = {exp.experiment: key for key, exp in declared.items()}
    runs["teacher"] = runs["experiment"].map(lambda e: label[e].split(" / ")[0])
    runs["student"] = runs["experiment"].map(lambda e: label[e].split(" / ")[1])
    ids, steps, active = trace_array(traces, "active_fraction", list(runs["run_id"]))
    active = pd.DataFrame({"run_id": np.repeat(ids, len(steps)), "step": np.tile(steps, len(ids)),
                           "active": active.reshape(-1)}).dropna()
    return {"runs": runs, "curves": curves, "active": active}


def draw(results):
    runs, curves, active = results.runs, results.curves, results["active"]
    fig, (left, right) = panels(1, 2, 10.0, 3.8)
    styles = {"ReLU": "-", "top-16": "--"}
    for i, teacher in enumerate(TEACHERS):
        for student, style in styles.items():
            ids = runs[(runs["teacher"] == teacher) & (runs["student"] == student)]["run_id"]
            label = f"{teacher} / {student}"
            frac = active[active["run_id"].isin(ids)].groupby("step")["active"].median()
            left.plot(frac.index, frac.values, style, color=PALETTE[i], label=label)
            loss = curves[curves["run_id"].isin(ids)].groupby("step")["test_loss"].median()
            right.plot(loss.index, loss.values, style, color=PALETTE[i], label=label)
    left.axhline(16 / 256, color="0.6", lw=0.8, ls=":")
    left.set_ylim(0, 1)
    left.set_xlabel("training step")
    left.set_ylabel("fraction of hidden units active per input")
    left.set_title("activation sparsity of the student (dotted: top-k's 16/256;\n"
                   "both top-16 students lie on it, their dashed lines coincide)", fontsize=9)
    right.set_yscale("log")
    right.set_xlabel("training step")
    right.set_ylabel("test loss ½·MSE")
    right.set_title("test loss", fontsize=9)
    right.legend(frameon=False, fontsize=7)
    fig.suptitle("width-256 students on a sparsely activated and a dense teacher (n = 16, s = 16), median of seeds",
                 fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
