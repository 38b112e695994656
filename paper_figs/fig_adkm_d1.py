"""ADKM-D1: test error of low-degree regression vs its degree d, sparse teachers vs dense ones.

Derived figure (no paper figure) for ADKM Lemma 7 / Theorem 8: least squares on all Walsh
characters of degree ≤ d (`lowdegree`, basis walsh) fitted to m samples of a teacher on {±1}ⁿ.
Teachers (`sparse_mlp`, unit output variance): the junta construction (member (a)) and random
Hamming-ball constructions with k active units, against a dense random network (k = s, every
unit may fire). Median test MSE and IQR over seeds, one line per teacher. Expected: the sparse
teachers' error falls to ≈ 0 by small d (d = log₂(s/k) for juntas), the dense one's decays slowly.

Full size: `sparselearn figs ADKM-D1` — n = 16, s = 16, d ∈ {0,…,4}, m = 5×10⁴, 3 seeds: 144 s
on a 2-core AMD EPYC CPU, table kept in paper_figs/data/adkm-d1*.parquet. Measured median test
MSE at d = 1 / 2 / 3 / 4:
    junta (k=1)            0.81  0.067 0.067 0      (exact at d = log₂ s = 4)
    index (k=1)            0.87  0.50  0.13  0      (exact at d = 4: 3 address bits + 1 data bit)
    dense-weight Γ (k=1)   0.89  0.53  0.28  0.093
    Hamming-ball k = 2     0.80  0.55  0.25  0.067
    dense Gaussian (k = s) 0.26  0.023 0.023 0.007
So the juntas and Index are exactly low-degree, but the dense comparison does not decay slower:
a random dense ReLU net with zero biases is smooth (most of its Fourier weight at degree ≤ 2),
while the sparse constructions' units are localised and carry high-degree weight. The theory's
dense lower bounds concern worst-case dense nets (which can compute parities), not random ones.
Not yet in the figure: n ∈ {12, 20} and s ∈ {4, 64} of SCIENCE.md §7.
Smoke: `sparselearn figs ADKM-D1 --smoke` (n = 8, s = 8, d ∈ {1, 2}).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paper_figs import common  # noqa: E402
from sparselearn.plotting.style import PALETTE, panels  # noqa: E402

ID = "ADKM-D1"

#: label → target fields (n, s filled in by the size)
TEACHERS = {
    "junta (k=1)": {"construction": "junta", "k": 1},
    "index (k=1)": {"construction": "index", "k": 1},
    "dense-weight Γ (k=1)": {"construction": "dense_weight", "k": 1},
    "sparse random (k=2)": {"construction": "random", "k": 2},
    "dense random (k=s)": {"construction": "dense", "k": None},
}
#: n → degrees fitted (n = 20 stops at d = 3: its 6196 degree-4 features cost ≈ 6× the n = 16 fit)
FULL = {"n": (12, 16, 20), "s": (4, 16, 64), "m": 50000, "test_m": 8192, "seeds": 3,
        "degrees": {12: [0, 1, 2, 3, 4], 16: [0, 1, 2, 3, 4], 20: [0, 1, 2, 3]}}
SMOKE = {"n": (8,), "s": (8,), "m": 512, "test_m": 256, "seeds": 2, "degrees": {8: [1, 2]}}
SMOKE_TEACHERS = ("sparse random (k=2)", "dense random (k=s)")


def configs(smoke: bool = False):
    """[(teacher label, n, s, Experiment)], one config per teacher and (n, s), its grid over d."""
    size = SMOKE if smoke else FULL
    exps = []
    for n in size["n"]:
        for s in size["s"]:
            for label, fields in TEACHERS.items():
                if smoke and label not in SMOKE_TEACHERS:
                    continue
                k = fields["k"] or s
                text = f"""
experiment: adkm_d1{'_smoke' if smoke else ''}_{fields['construction']}_k{k}_n{n}_s{s}
target:  {{name: sparse_mlp, n: {n}, s: {s}, k: {k}, construction: {fields['construction']}}}
learner: {{name: lowdegree, degree: 1, basis: walsh, ridge: 0.0001}}
train:   {{loss: square}}
data:    {{m: {size['m']}, test_m: {size['test_m']}}}
sweep:   {{seeds: {size['seeds']}, grid: {{learner.degree: {size['degrees'][n]}}}}}
"""
                exps.append((label, n, s, common.experiment(text, "adkm_d1")))
    return exps


def draw(runs):
    ns, ss = sorted(runs["n"].unique()), sorted(runs["s"].unique())
    fig, axes = panels(len(ns), len(ss), width=3.3 * len(ss), height=2.6 * len(ns), sharey=True)
    axes = np.asarray(axes).reshape(len(ns), len(ss))
    labels = list(dict.fromkeys(runs["teacher"]))
    for (n, s), cell in runs.groupby(["n", "s"]):
        ax = axes[ns.index(n), ss.index(s)]
        for label, part in cell.groupby("teacher", sort=False):
            degree = part["grid"].map(lambda g: json.loads(g)["learner.degree"])
            q = part.groupby(degree)["test_error"].quantile([0.25, 0.5, 0.75]).unstack()
            ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt="o-", ms=3, capsize=2,
                        color=PALETTE[labels.index(label) % len(PALETTE)], label=label)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(f"n={int(n)}, s={int(s)}", fontsize=9)
        if ns.index(n) == len(ns) - 1:
            ax.set_xlabel("degree d")
        if ss.index(s) == 0:
            ax.set_ylabel("test MSE")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=min(len(names), 5), frameon=False, fontsize=7,
               bbox_to_anchor=(0.5, 1.0 + 0.06 / len(ns)))
    fig.suptitle(f"low-degree regression on Walsh features, m={int(runs['m'].iloc[0])}", y=1.0 + 0.12 / len(ns))
    return fig


def main(smoke: bool = False, results="results", out=None) -> list[Path]:
    labelled = configs(smoke)
    runs, _ = common.collect(ID, [e for *_, e in labelled], smoke, results)
    names = {e.experiment: label for label, _, _, e in labelled}
    runs = runs.assign(teacher=runs["experiment"].map(names))
    return common.save_figure(ID, draw(runs), out)


if __name__ == "__main__":
    common.main(main, __doc__)
