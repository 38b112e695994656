"""ADKM-D2: average sensitivity AS(h) and noise sensitivity NS_ρ(h) of random k-sparse ReLU
teachers vs n, against the bounds of ADKM Lemma 9 and Lemma 10.

Derived figure (no paper figure). Teachers: `sparse_mlp` (construction `random`, s = 16 units,
hypercube inputs, unit output variance), k ∈ {1, 2, 4}, 5 random teachers per (n, k). AS and NS_ρ
(ρ = 0.9) are exact, from the truth table over all 2ⁿ inputs (`sparselearn.analysis`); the bounds
(`sparselearn.theory`, hidden constants 1) use each teacher's own W and B (`norms`), median over
teachers. Expected: the measured values grow slowly with n (AS ∝ √n up to logs at most) and lie
far below the bounds, whose level is set by k⁴W².

No training, so it bypasses the sweep store; the table is kept as
paper_figs/data/adkm-d2-sensitivity.parquet.
Full size: `sparselearn figs ADKM-D2` (n ∈ {8, 10, 12, 14, 16}; run on the shared 2-core CPU
sandbox: 57 s wall, table kept; delete it to recompute).
Smoke: `sparselearn figs ADKM-D2 --smoke` (n ∈ {6, 8}, k = 2, 2 teachers).
"""

from __future__ import annotations

import jax
import pandas as pd

from sparselearn import analysis, figures, targets, theory
from sparselearn.plotting.style import PALETTE, panels

ID = "ADKM-D2"
S, RHO = 16, 0.9
FULL = {"n": (8, 10, 12, 14, 16), "k": (1, 2, 4), "teachers": 5}
SMOKE = {"n": (6, 8), "k": (2,), "teachers": 2}


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"sensitivity": one row per teacher: n, k, seed, AS, NS_ρ, W, B and the Lemma 9/10 bounds."""
    del store  # exact sums over the hypercube, nothing trained
    size = SMOKE if smoke else FULL
    n_values, k_values, teachers = size["n"], size["k"], size["teachers"]
    rows = []
    for k in k_values:
        for n in n_values:
            target = targets.get("sparse_mlp", n=n, s=S, k=k, construction="random")
            for seed in range(teachers):
                params = target.init(jax.random.key(seed))
                values = analysis.truth_table(lambda x: target.labels(params, x), n)
                norms = target.norms(params)
                rows.append({"n": n, "k": k, "seed": seed, "AS": analysis.average_sensitivity_exact(values),
                             "NS": analysis.noise_sensitivity_exact(values, RHO), "W": norms["W"], "B": norms["B"],
                             "AS_bound": float(theory.as_bound_lemma9(n, S, k, norms["W"], norms["B"])),
                             "NS_bound": float(theory.ns_bound_lemma10(n, S, k, norms["W"], norms["B"], RHO))})
    return {"sensitivity": pd.DataFrame(rows)}


def draw(results):
    table = results["sensitivity"]
    fig, (left, right) = panels(1, 2, 9.5, 3.6)
    for ax, col, name, lemma in ((left, "AS", "average sensitivity AS(h)", "Lemma 9"),
                                 (right, "NS", f"noise sensitivity NS_ρ(h), ρ = {RHO}", "Lemma 10")):
        for i, (k, part) in enumerate(table.groupby("k")):
            q = part.groupby("n")[col].quantile([0.25, 0.5, 0.75]).unstack()
            bound = part.groupby("n")[f"{col}_bound"].median()
            color = PALETTE[i % len(PALETTE)]
            ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt="o-", ms=4,
                        capsize=2, color=color, label=f"k={k} measured")
            ax.plot(bound.index, bound, "--", color=color, label=f"k={k} ADKM {lemma} (C=1)")
        ax.set_yscale("log")
        ax.set_xticks(sorted(table["n"].unique()))
        ax.set_xlabel("input dimension n")
        ax.set_ylabel(name)
    left.legend(frameon=False, fontsize=7)
    fig.suptitle(f"random sparse ReLU teachers (s = {S}, exact over 2ⁿ inputs, median and IQR over teachers)",
                 fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
