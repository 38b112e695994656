"""ADKM-D2: average sensitivity AS(h) and noise sensitivity NS_ρ(h) of random k-sparse ReLU
teachers vs n, against the bounds of ADKM Lemma 9 and Lemma 10.

Derived figure (no paper figure). Teachers: `sparse_mlp` (construction `random`, s = 16 units,
hypercube inputs, unit output variance), k ∈ {1, 2, 4}, 5 random teachers per (n, k). AS and NS_ρ
(ρ = 0.9) are exact, from the truth table over all 2ⁿ inputs (`sparselearn.analysis`); the bounds
(`sparselearn.theory`, hidden constants 1) use each teacher's own W and B (`norms`), median over
teachers. The third panel checks Claim 2.1 (Klivans–O'Donnell–Servedio) on the same teachers: the
Fourier mass above degree d = 2, exact, against 2·NS_ρ/(1 − ρ^d). Expected: the measured values
grow slowly with n (AS ∝ √n up to logs at most) and lie far below the Lemma 9/10 bounds, whose
level is set by k⁴W²; the tail lies below its bound.

Measured: AS does not grow with n over 8–16 (log-log slopes of the medians −0.01, 0.05 and 0.14
for k = 1, 2, 4, against √n's 0.5), at least 460× below Lemma 9 for every teacher, and NS_ρ at least 9500×
below Lemma 10. The mass above degree 2 is 0.27–0.72 (medians) and every teacher's lies below
Claim 2.1's bound, by a factor 1.9–3.5 in the medians (at most 0.53 of it for any teacher).

No training, so it bypasses the sweep store; the table is kept as
paper_figs/data/adkm-d2-sensitivity.parquet.
Full size: `sparselearn figs ADKM-D2` (n ∈ {8, 10, 12, 14, 16}; 31 s wall on one core of a 2-core
AMD EPYC, the other busy; table kept; delete it to recompute).
Smoke: `sparselearn figs ADKM-D2 --smoke` (n ∈ {6, 8}, k = 2, 2 teachers).
"""

from __future__ import annotations

import jax
import pandas as pd

from sparselearn import analysis, figures, targets, theory
from sparselearn.plotting.style import PALETTE, panels

ID = "ADKM-D2"
S, RHO = 16, 0.9
TAIL_DEGREE = 2   # Claim 2.1's d: the Fourier mass above it against 2·NS_ρ/(1 − ρ^d)
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
                ns = analysis.noise_sensitivity_exact(values, RHO)
                rows.append({"n": n, "k": k, "seed": seed, "AS": analysis.average_sensitivity_exact(values),
                             "NS": ns, "W": norms["W"], "B": norms["B"],
                             "AS_bound": float(theory.as_bound_lemma9(n, S, k, norms["W"], norms["B"])),
                             "NS_bound": float(theory.ns_bound_lemma10(n, S, k, norms["W"], norms["B"], RHO)),
                             "tail": analysis.tail_mass(analysis.walsh_hadamard(values), TAIL_DEGREE),
                             "tail_bound": float(theory.tail_bound_claim21(ns, RHO, TAIL_DEGREE))})
    return {"sensitivity": pd.DataFrame(rows)}


def draw(results):
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    table = results["sensitivity"]
    fig, axes = panels(1, 3, 13.5, 3.6)
    for ax, col, name, bound_name in (
            (axes[0], "AS", "average sensitivity AS(h)", "ADKM Lemma 9 (C=1)"),
            (axes[1], "NS", f"noise sensitivity NS_ρ(h), ρ = {RHO}", "ADKM Lemma 10 (C=1)"),
            (axes[2], "tail", f"Fourier mass above degree {TAIL_DEGREE}", "Claim 2.1 bound")):
        for i, (k, part) in enumerate(table.groupby("k")):
            q = part.groupby("n")[col].quantile([0.25, 0.5, 0.75]).unstack()
            bound = part.groupby("n")[f"{col}_bound"].median()
            color = PALETTE[i % len(PALETTE)]
            ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt="o-", ms=4,
                        capsize=2, color=color, label=f"k={k} measured")
            ax.plot(bound.index, bound, "--", color=color, label=f"k={k} {bound_name}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(table["n"].unique()))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("input dimension n")
        ax.set_ylabel(name)
    # below the bounds, above the measured lines; each panel names its own bound
    for ax in axes[:2]:
        ax.legend(frameon=False, fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 0.16))
    axes[0].set_title("dashed: ADKM Lemma 9 bound on AS (C = 1)", fontsize=8)
    axes[1].set_title("dashed: ADKM Lemma 10 bound on NS_ρ (C = 1)", fontsize=8)
    axes[2].set_ylim(bottom=0.08)                # room below the lines for the legend
    axes[2].legend(frameon=False, fontsize=7, ncol=2, loc="lower center")
    axes[2].set_title(f"Claim 2.1: mass above d ≤ 2·NS_ρ/(1 − ρ^d), d = {TAIL_DEGREE}", fontsize=8)
    fig.suptitle(f"random sparse ReLU teachers (s = {S}, exact over 2ⁿ inputs, median and IQR over teachers)",
                 fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
