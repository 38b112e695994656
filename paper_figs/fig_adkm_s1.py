"""ADKM-S1: measured sample complexity m* of a ReLU MLP on certified sparse teachers vs s and vs k.

The measured counterpart of ADKM Theorem 17 (Õ(k·s·n/ε²) samples for the sparsely activated
class H_{n,s,k}) against the dense baseline Õ(s²/ε²). m* per teacher from
`experiments/adkm_s1.py`: the smallest m with test MSE ≤ 0.1 (10% of the label variance) on
≥ 2/3 of 10 seeds, by `sl.sample_complexity` to a factor 1.25. Left: s grows at k = 2; right: k
grows at s = 32 (n = 12, `sparse_mlp` construction random, certified by enumerating {±1}^12;
width-256 Adam student, up to 8000 steps, stopping at ε). Error bars: the Clopper–Pearson
bracket of m*; solid: fitted power law (exponent and 95% interval in the legend: the
least-squares t-interval over the points, widened by the slopes the m* brackets allow); dashed:
the theory rates (constants unknown, anchored at the first point). The ADKM-S2 figure sets these
sparse teachers against the dense parity net.

Full size: `sparselearn figs ADKM-S1` (runs experiments/adkm_s1.py: 10 searches, 10 seeds each,
m ≤ 65536): 204 s wall on one core of a 2-core AMD EPYC, jax 0.10.2, the other core busy;
table kept in paper_figs/data/adkm-s1-m_star.parquet. Measured m*:
    s = 4, 8, 16, 32, 64, 128 at k = 2:   215, 362, 609, 1024, 1722, 2896    α = 0.75 [0.41, 0.96]
    k = 1, 2, 4, 8 at s = 32:             1024, 1024, 861, 609               α = −0.25 [−0.74, 0.29]
(theory: 1 and 1.21 for ADKM, its log factor included; 2 and 0 for the dense rate). Growing s at
fixed k, m* grows as s^0.75 over 1.5 decades, below the k·s·n bound and far below s² (the dense
rate's interval would need 2; the measured one ends at 0.96). The number of Walsh characters the
teacher's groups can use, N_d(12) with d = log₂(s/k) + 2 address bits per group (a unit's value reads
every bit, but ≥ 99.3% of the teacher's variance lies at degree ≤ d, enumerated at s = 4, 16, 32 and
128; the rest at degree d + 1), has about the same overall
slope (0.72 over s = 4–128) but not the same shape: its local slopes fall from 1.41 to 0.20 as it
nears 2¹², where m*'s stay near 0.75 (m*/N_d between 0.38 and 0.76). Growing k at fixed s, m* falls (1024 to 609 over
k = 1–8; over four points the interval still holds the dense rate's 0, but excludes ADKM's 1.21):
the ADKM rate bounds the whole class H_{n,s,k}, which grows with k, while this construction gets
simpler as k grows (s/k units per group on log₂(s/k) + 2 address bits: k = 1 is one 32-ball function
of 7 bits, k = 8 a sum of eight 4-ball functions of 4 bits). With 2000 steps instead of 8000 the
largest teachers were step-limited (s = 128 not learned by m = 65536; s = 64 at 5793): the step
budget, not the sample, bound them; at 8000 steps the slowest run at m* stops by step 7250.
Smoke: `sparselearn figs ADKM-S1 --smoke` (seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures, theory
from sparselearn.plotting import fit_exponent, overlay
from sparselearn.plotting.style import PALETTE, panels

ID = "ADKM-S1"
adkm_s1 = figures.study("adkm_s1", near=__file__)
experiments = adkm_s1.experiments


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"m_star": one row per teacher (the study's table)."""
    return {"m_star": adkm_s1.measure(smoke, store)}


def _rates(sweep: str, part: pd.DataFrame, grid: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(label, curve) of the ADKM and dense rates along the grown quantity."""
    n, s, k = int(part["n"].iloc[0]), part["s"].to_numpy(), part["k"].to_numpy()
    R, eps, delta = np.sqrt(n), adkm_s1.EPS, adkm_s1.DELTA
    if sweep.startswith("s"):
        sparse = theory.sample_complexity_sparse(n, grid, k[0], eps, delta, 1.0, 1.0, R)
        dense = theory.sample_complexity_dense(grid, eps, delta, 1.0, 1.0, R)
    else:
        sparse = theory.sample_complexity_sparse(n, s[0], grid, eps, delta, 1.0, 1.0, R)
        dense = theory.sample_complexity_dense(np.full_like(grid, s[0]), eps, delta, 1.0, 1.0, R)
    return [("ADKM Thm 17: k·s·n", sparse), ("dense: s²", dense)]


def draw(results):
    table = results["m_star"]
    sweeps = list(dict.fromkeys(table["sweep"]))
    fig, axes = panels(1, len(sweeps), width=4.2 * len(sweeps), height=4.2)
    for i, (ax, sweep) in enumerate(zip(np.atleast_1d(axes), sweeps)):
        part = table[table["sweep"] == sweep].sort_values("size")
        ok = part.dropna(subset=["m_star"])
        color = PALETTE[i % len(PALETTE)]
        try:
            fit = fit_exponent(ok["size"], ok["m_star"], low=ok["ci_low"], high=ok["ci_high"])
            label = f"measured m*: {fit.label()}"
        except ValueError:
            fit, label = None, "measured m* (too few points to fit)"
        lo = (ok["m_star"] - ok["ci_low"].fillna(ok["m_star"])).clip(lower=0)
        hi = (ok["ci_high"].fillna(ok["m_star"]) - ok["m_star"]).clip(lower=0)
        ax.errorbar(ok["size"], ok["m_star"], yerr=[lo, hi], fmt="o", color=color, ms=5, capsize=3, label=label)
        if fit is not None:
            grid = np.geomspace(ok["size"].min(), ok["size"].max(), 40)
            ax.plot(grid, fit(grid), "-", color=color, lw=1)
            for j, (name, curve) in enumerate(_rates(sweep, part, grid)):
                overlay(ax, grid, curve, name, anchor=(grid[0], ok["m_star"].iloc[0]), color=("0.2", "0.6")[j])
        censored = part[part["m_star"].isna()]
        for x in censored["size"]:
            ax.axvline(x, color="0.8", lw=0.8)
        grown = "s (hidden units)" if sweep.startswith("s") else "k (active units)"
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(grown)
        ax.set_title(f"{sweep}, n={int(part['n'].iloc[0])}" + (f" ({len(censored)} censored)" if len(censored) else ""),
                     fontsize=9)
        # below the axes: inside, it covered the data of one panel or the other
        ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    np.atleast_1d(axes)[0].set_ylabel(f"m* (test MSE ≤ {adkm_s1.EPS:g})")
    fig.suptitle("sample complexity m* on certified sparse teachers; bars: Clopper–Pearson bracket of m*", fontsize=9)
    return fig


if __name__ == "__main__":
    figures.main(__file__)
