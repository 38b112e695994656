"""WNL-1: test MSE vs samples m on hierarchical polynomials h = g∘p — layerwise 3-layer vs 2-layer vs kernel.

Wang–Nichani–Lee 2024 (ICLR, arXiv 2311.13774): x ~ N(0, I_d), p(x) = d^{−1/2} Σ_i λ_i h_k(x_i) with
random signs λ_i (target `hierarchical`, directions coordinate, r = d, as in the paper's
Figure 2), g(z) = z + z² (q = 2), labels centred and scaled to unit variance. (g = z³ of the
paper's figure gives heavy-tailed labels: in trial runs at d = 32 the 2-layer net at m = 16384
and the kernel at m = 4096 stayed above MSE 1; g = z + z² has a linear term, so the degree-k
part of g∘p carries p.)
Learners: `layerwise` (stage 1: ridge on Hermite random features of degree ≤ k, width 1.5×
C(d + k, k), fitted by GD with V fixed; stage 2: a spline in the learned scalar feature), a
plain two-layer ReLU `mlp` (width 256, Adam lr 1e-3, batch 128, 2000 steps, square loss) and
`kernel` ridge with the NTK (ridge 1e-3). One panel per (d, k); median and IQR over seeds;
dashed line at d^k (three-layer rate, `theory.hierarchical_samples_three_layer`), and d^{kq}
(kernels, `theory.hierarchical_samples_kernel`) marked by an arrow: it lies beyond the axis.

Full size: `sparselearn figs WNL-1` — (d, k) ∈ {(16, 2), (32, 2), (8, 3)}, m = 2^7…2^13
(kernel ≤ 2^11: its m × m solve), 3 seeds, 171 runs: 2456 s (41 min) on a 2-core AMD EPYC
(Zen 4) CPU, jax 0.10.2, shared with other jobs (load average ≈ 15 during the run); table
kept in paper_figs/data/wnl-1*.parquet. Reduced from the figure table's d ∈ {16, 32} × k ∈
{2, 3}: k = 3 needs the inner block to span C(d + 3, 3) cubics (969 at d = 16, 6545 at d = 32)
and m well above d³, i.e. 10–10³× this run. On a cluster: write each layerwise and 2-layer
config of `experiments(False, cases=[(16, 3), (32, 3)])` to a file with `sparselearn.config.dump`
(the kernel's m × m solve stops at m ≈ 2^14 in 8 GiB) and run
`sparselearn run FILE --set "sweep.grid.data.m=[4096,8192,16384,32768,65536]" --executor slurm`.

Result (median test MSE at m = 256 / 1024 / 2048 / 8192):
    d=16, k=2   layerwise 0.88 0.39 0.26 0.065   2-layer 1.14 0.80 0.71 0.56   kernel 0.82 0.66 0.63
    d=32, k=2   layerwise 0.98 1.01 0.60 0.22    2-layer 1.26 1.16 1.02 0.72   kernel 0.95 0.81 0.74
    d=8,  k=3   layerwise 0.94 0.99 0.86 0.64    2-layer 0.95 1.04 0.79 0.67   kernel 0.86 0.88 0.74
For k = 2 the layerwise learner's error falls steadily once m passes ≈ d^k (1.4–2.1× per
doubling of m at d = 16) while the kernel and the 2-layer net improve slowly, as the d^{kq}
prediction for kernels says (here 6.6×10⁴ and 10⁶, far beyond m). At d = 32 the layerwise
curve has an interpolation peak at m = 512, where stage 1's least squares has about as many
rows as the rank of its 897 features, the C(34, 2) = 561 polynomials of degree ≤ 2 they span
(sample-wise double descent; the weight decay 1e-3 is too small to hide it). For k = 3 at d = 8
no learner gets below 0.64 by m = 16·d^k: with g(z) = z + z² the degree-≤3 part of g∘p is p
plus the degree-2 part of p², (3√2/r)·Σ_i h_2(x_i), whose variance 18/r = 2.25 exceeds p's, so
stage 1 learns mostly a feature that is not a function of p (for k = 2 the same leak has
variance 8/r = 0.5 at d = 16 and 0.25 at d = 32). The k = 3 layerwise runs were recomputed once
its inner units could span p itself (signed Hermite sums, `layerwise.hermite_signs`; before,
the n cubics with a trace were missing): their medians fell by at most 0.05 (m = 256: 0.99 →
0.94), the leak being the larger part of the error.
Smoke: `sparselearn figs WNL-1 --smoke` (d = 8, k = 2, m = 256).
"""

from __future__ import annotations

import numpy as np

from sparselearn import figures, theory
from sparselearn.plotting.style import PALETTE, panels

ID = "WNL-1"
G_COEFFS = [0, 1, 1]                      # g(z) = z + z², then centred and scaled
Q = 2                                     # its degree
FULL_CASES = [(16, 2), (32, 2), (8, 3)]   # (d, k)
FULL = {"m": [2 ** e for e in range(7, 14)], "kernel_max_m": 2 ** 11, "test_m": 4096, "seeds": 3,
        "mlp_steps": 2000, "batch": 128, "eval_every": 500}
SMOKE = {"m": [256], "kernel_max_m": 256, "test_m": 256, "seeds": 2, "mlp_steps": 200, "batch": 32, "eval_every": 100}


def layerwise_width(d: int, k: int) -> int:
    """Inner random units: 1.5× the dimension C(d + k, k) of the polynomials of degree ≤ k, so
    the inner block spans all of them (rounded up to a multiple of 64)."""
    from math import comb

    return -(-int(1.5 * comb(d + k, k)) // 64) * 64


def learners(d: int, k: int, size: dict) -> dict[str, tuple[dict, dict]]:
    """Learner label → (learner section, train section)."""
    return {
        "layerwise 3-layer": ({"name": "layerwise", "width": layerwise_width(d, k), "degree": k, "steps": 500},
                              {"loss": "square"}),
        "2-layer ReLU (Adam)": ({"name": "mlp", "width": 256, "depth": 2, "activation": "relu", "init": "standard"},
                                {"optimizer": "adam", "lr": 0.001, "batch": size["batch"], "steps": size["mlp_steps"],
                                 "loss": "square", "eval_every": size["eval_every"]}),
        "kernel (NTK ridge)": ({"name": "kernel", "kernel": "ntk", "ridge": 0.001}, {"loss": "square"}),
    }


def experiments(smoke: bool, cases=None):
    """(learner label, d, k) → config of that learner and (d, k), its grid over m."""
    size = SMOKE if smoke else FULL
    cases = cases or ([(8, 2)] if smoke else FULL_CASES)
    out = {}
    for d, k in cases:
        for label, (learner, train) in learners(d, k, size).items():
            ms = [m for m in size["m"] if not label.startswith("kernel") or m <= size["kernel_max_m"]]
            name = label.split()[0].lower().replace("2-layer", "mlp")
            out[label, d, k] = figures.config({
                "experiment": f"wnl_1{'_smoke' if smoke else ''}_{name}_d{d}_k{k}",
                "target": {"name": "hierarchical", "n": d, "k": k, "r": d, "directions": "coordinate",
                           "g_coeffs": G_COEFFS},
                "learner": learner, "train": train,
                "data": {"m": max(ms), "test_m": size["test_m"]},
                "sweep": {"seeds": size["seeds"], "grid": {"data.m": ms}}})
    return out


def draw(results):
    runs = results.runs.assign(learner_label=results.runs["label"].str[0])
    cases = sorted({(int(d), int(k)) for d, k in zip(runs["n"], runs["k"])}, key=lambda c: (c[1], c[0]))
    fig, axes = panels(1, len(cases), width=3.6 * len(cases), height=3.2, sharey=True)
    labels = list(learners(8, 2, SMOKE))
    for ax, (d, k) in zip(np.atleast_1d(axes), cases):
        cell = runs[(runs["n"] == d) & (runs["k"] == k) & (runs["status"] == "ok")]
        for label, part in cell.groupby("learner_label", sort=False):
            q = part.groupby("m")["test_error"].quantile([0.25, 0.5, 0.75]).unstack()
            color = PALETTE[labels.index(label) % len(PALETTE)]
            ax.plot(q.index, q[0.5], "o-", ms=3, color=color, label=label)
            ax.fill_between(q.index, q[0.25], q[0.75], color=color, alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo, hi = cell["m"].min() / 1.5, cell["m"].max() * 1.5
        ax.set_xlim(lo, hi)
        for value, name, style in ((float(theory.hierarchical_samples_three_layer(d, k)), "d^k", "--"),
                                   (float(theory.hierarchical_samples_kernel(d, k, Q)), "d^kq", ":")):
            text = f"{name} = {value:.3g}"
            if lo <= value <= hi:
                ax.axvline(value, color="0.3", ls=style, lw=1)
                ax.text(value, 0.98, f" {text}", transform=ax.get_xaxis_transform(), va="top", fontsize=7)
            elif value > hi:
                ax.annotate(f"{text} →", xy=(0.98, 0.90), xycoords="axes fraction", ha="right", fontsize=7,
                            color="0.3")
            else:
                ax.annotate(f"← {text}", xy=(0.02, 0.96), xycoords="axes fraction", ha="left", va="top",
                            fontsize=7, color="0.3")
        ax.set_title(f"d={d}, k={k}, q={Q}", fontsize=9)
        ax.set_xlabel("samples m")
    first = np.atleast_1d(axes)[0]
    first.set_ylabel("test MSE (unit-variance target)")
    first.legend(frameon=False, fontsize=7, loc="lower left")
    fig.suptitle(f"hierarchical targets: median test MSE, band: IQR over {runs['seed'].nunique()} seeds",
                 fontsize=10, y=1.03)
    return fig


if __name__ == "__main__":
    figures.main(__file__)
