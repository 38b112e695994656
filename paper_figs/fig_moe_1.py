"""MOE-1: test MSE vs active neurons k — dense and routed students on dense and mixture-of-experts teachers.

The secret-mixture-of-experts question (Boix-Adserà, Secret mixtures of experts inside your LLM, arXiv 2512.18452) in a controlled
synthetic setting. Two teachers on n = 16 inputs, both `moe` with 8 experts of 4 ReLU units
(s = 32 units, unit output variance): the sparse teacher routes each input to its top-1
expert through a rank-4 router (at most 4 active units), the dense teacher uses all 8
experts on every input (`top: 8`, no routing: an ordinary one-hidden-layer ReLU net). Each
is learned by two students with the same number k of active hidden units per input:
a dense `mlp` of width k (relu), and a routed top-k `mlp` of width 128 (`activation: topk,
routed: true`, rank-8 router built from its own first layer). Adam, square loss, m = 8192
samples. Rows: hypercube and Gaussian inputs; median and IQR over seeds.

Full size: `sparselearn figs MOE-1` — k ∈ {2, 4, 8, 16, 32}, 2000 Adam steps (lr 1e-3, batch
64), m = 8192, 2 seeds, 80 runs: 2463 s (41 min) on a 2-core AMD EPYC (Zen 4) CPU, jax 0.10.2,
shared with other jobs (load average ≈ 15 during the run); table kept in
paper_figs/data/moe-1*.parquet. Median test MSE at k = 2 / 8 / 32:
    hypercube  sparse teacher   dense student 0.64 0.57 0.48   routed student 0.50 0.41 0.38
               dense teacher    dense student 0.25 0.13 0.039  routed student 0.12 0.067 0.031
    gaussian   sparse teacher   dense student 0.70 0.63 0.56   routed student 0.56 0.46 0.42
               dense teacher    dense student 0.26 0.16 0.043  routed student 0.14 0.078 0.036
What the runs show: (1) at equal active units the routed student beats the dense one on every
teacher and input law, by about 2× at k = 2 on the dense teacher, less as k grows (it also has 128
units to choose from, so this compares equal compute per input, not equal parameters); (2) the
routed teacher is far harder than the dense one for both students — neither's median gets below MSE
0.37 on it (best seed 0.30), while the dense teacher is fitted to 0.03–0.04 at k = 32 — so a student
with routing of its own does not find the teacher's routing from 8192 samples in 2000 steps;
(3) Gaussian and hypercube inputs give nearly the same picture (Gaussian a little worse on the
sparse teacher). The Gaussian failure in Boix-Adserà's theory is about approximating a given
dense MLP by a mixture of experts; nothing like it shows up in this learning setting.
Smoke: `sparselearn figs MOE-1 --smoke` (n = 8, 4 experts of 2 units, k = 2, hypercube, sparse teacher).
"""

from __future__ import annotations

import json

import numpy as np

from sparselearn import figures
from sparselearn.plotting.style import PALETTE, panels

ID = "MOE-1"

FULL = {"n": 16, "experts": 8, "expert_width": 4, "r": 4, "ks": [2, 4, 8, 16, 32], "routed_width": 128,
        "steps": 2000, "batch": 64, "eval_every": 500, "m": 8192, "test_m": 2048, "seeds": 2}
SMOKE = {"n": 8, "experts": 4, "expert_width": 2, "r": 2, "ks": [2], "routed_width": 32,
         "steps": 100, "batch": 16, "eval_every": 100, "m": 256, "test_m": 256, "seeds": 2}
#: the smoke draws the sparse teacher on the hypercube only (fewer compiled programs)
SMOKE_TEACHERS = ("sparse teacher (top-1 of 8 experts)",)
SMOKE_INPUTS = ("hypercube",)
TEACHERS = {"sparse teacher (top-1 of 8 experts)": 1, "dense teacher (all 8 experts)": None}
STUDENTS = ("dense student (width k)", "routed top-k student (width {rw})")
INPUTS = ("hypercube", "gaussian")


def student(label: str, size: dict) -> tuple[dict, str]:
    """(learner section, the grid key that sets the active units k) of a student."""
    if label.startswith("routed"):
        return ({"name": "mlp", "width": size["routed_width"], "depth": 2, "activation": "topk", "k": 2,
                 "routed": True, "router_rank": min(8, size["n"])}, "learner.k")
    return {"name": "mlp", "width": 32, "depth": 2, "activation": "relu", "init": "standard"}, "learner.width"


def experiments(smoke: bool):
    """(teacher label, student label, inputs) → config; the grid runs over k (the dense
    student's width, the routed student's top-k)."""
    size = SMOKE if smoke else FULL
    out = {}
    for inputs in SMOKE_INPUTS if smoke else INPUTS:
        for teacher, top in TEACHERS.items():
            if smoke and teacher not in SMOKE_TEACHERS:
                continue
            top = top or size["experts"]
            for label in STUDENTS:
                learner, key = student(label, size)
                out[teacher, label.format(rw=size["routed_width"]), inputs] = figures.config({
                    "experiment": f"moe_1{'_smoke' if smoke else ''}_{inputs}_top{top}_"
                                  f"{'routed' if key == 'learner.k' else 'dense'}",
                    "target": {"name": "moe", "n": size["n"], "experts": size["experts"],
                               "expert_width": size["expert_width"], "r": size["r"], "top": top, "inputs": inputs},
                    "learner": learner,
                    "train": {"optimizer": "adam", "lr": 0.001, "batch": size["batch"], "steps": size["steps"],
                              "loss": "square", "eval_every": size["eval_every"]},
                    "data": {"m": size["m"], "test_m": size["test_m"]},
                    "sweep": {"seeds": size["seeds"], "grid": {key: size["ks"]}}})
    return out


def labelled(runs):
    """`runs` with teacher, student, inputs (from the label) and active: the units active per input."""
    routed = runs["label"].str[1].str.startswith("routed")
    return runs.assign(teacher=runs["label"].str[0], student=runs["label"].str[1], inputs=runs["label"].str[2],
                       active=np.where(routed, runs["grid"].map(lambda g: json.loads(g).get("learner.k", 0)),
                                       runs["width"]))


def draw(results):
    runs = labelled(results.runs)
    teachers = [t for t in TEACHERS if t in set(runs["teacher"])]
    rows = [i for i in INPUTS if i in set(runs["inputs"])]
    fig, axes = panels(len(rows), len(teachers), width=4.0 * len(teachers), height=3.0 * len(rows), sharey="row")
    axes = np.asarray(axes).reshape(len(rows), len(teachers))
    students = list(dict.fromkeys(runs["student"]))
    for row, inputs in enumerate(rows):
        for col, teacher in enumerate(teachers):
            ax = axes[row, col]
            cell = runs[(runs["inputs"] == inputs) & (runs["teacher"] == teacher) & (runs["status"] == "ok")]
            for student, part in cell.groupby("student", sort=False):
                q = part.groupby("active")["test_error"].quantile([0.25, 0.5, 0.75]).unstack()
                color = PALETTE[students.index(student) % len(PALETTE)]
                ax.plot(q.index, q[0.5], "o-", ms=3, color=color, label=student)
                ax.fill_between(q.index, q[0.25], q[0.75], color=color, alpha=0.2, lw=0)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{teacher}, {inputs} inputs", fontsize=8)
            if row == len(rows) - 1:
                ax.set_xlabel("active hidden units per input k")
            if col == 0:
                ax.set_ylabel("test MSE (unit-variance target)")
    axes[0, 0].legend(frameon=False, fontsize=7)
    fig.suptitle(f"dense and routed students with k active units: median test MSE, band: IQR over "
                 f"{runs['seed'].nunique()} seeds", fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
