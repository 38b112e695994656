"""ADKM-S2: the separation in samples — m* of three learners on sparse juntas vs the dense parity net.

Derived figure (no paper figure) for ADKM's separation (Thm 17 against the dense contrast of §1.3).
m* = the smallest m with test MSE ≤ 0.1 on ≥ 2/3 of 10 seeds (`sl.sample_complexity`, bracket
within a factor 1.25), for low-degree regression at the degree each teacher needs, NTK ridge, and
a width-256 ReLU net trained by Adam that stops once it has learned (rows; studies
experiments/adkm_s2.py, adkm_s2_ntk.py, adkm_s2_mlp.py). Left: s grows at n = 12 (juntas k = 1,
s = 4…128; the parity net p = s − 1 for s = 3…8, where the 4096-point cube allows it, and at s = 16,
p = n = 12, for low-degree; NTK: s ≤ 6, its budget of 4096 rows). Right: n grows at s = 4 (the
junta k = 2, linear in two bits; the parity of p = 3 bits). Filled markers: m* with its
Clopper–Pearson bracket (ci_low to ci_high); open markers with an arrow: censored, not learned
within the arm's budget (drawn at the budget, a lower bound); triangles with a downward arrow:
learned at the smallest m the search tries (the batch, 64, for the net), an upper bound left out of
the fit; solid lines: fitted power law (exponent and 95% interval in the legend: the
least-squares t-interval over the points, widened by the slopes the m* brackets allow); dashed:
ADKM Thm 17 (k·s·n) anchored at the first junta point, dotted: the parity bound of the arm (N_p(n)
characters for the fitted learners, n^(p−1) samples for SGD) anchored at the first parity point.

Full size: `python experiments/adkm_s2.py` (and adkm_s2_ntk.py, adkm_s2_mlp.py) from an empty
results directory, one after the other on one core of a 2-core AMD EPYC, the other core busy, jax
0.10.2: low-degree 15.2 min, NTK 5.6 min, the net 3.5 min of wall time (or `sparselearn figs
ADKM-S2` with no table kept); tables kept in paper_figs/data/adkm-s2-{lowdegree,ntk,mlp}.parquet,
delete them to recompute.
Measured m* (—: censored at the arm's budget 8192 / 4096 / 8192; ≤: at the net's floor m = 64):
    n = 12, s =                3     4     5     6     8    16    32    64   128   α [95% CI]
    low-degree  junta k=1           79               299   944  1886  3550  5553   1.21 [0.80, 1.65]
                parity        79   299   794  1886  5553     —                     4.37 [3.81, 4.92]
    NTK ridge   junta k=1          133               211  1335  2243  2896     —   1.23 [0.38, 2.20]
                parity       223  1691     —     —                                 7.04 [5.23, 8.84]
    ReLU net    junta k=1          108               152   256   362   512   861   0.59 [0.32, 0.82]
                parity       128   256   362   609  1024                           2.12 [0.82, 2.63]
    s = 4, n =                 8    12    16    24    32   α [95% CI]
    low-degree  junta k=2      9    13    17    25    33   0.94 [0.53, 1.10]
                parity       111   299   697  2325         2.78 [2.17, 3.39]
    NTK ridge   junta k=2     15    26    29    50    66   1.05 [0.51, 1.69]
                parity       442  1691     —     —         3.31 [2.45, 4.59]
    ReLU net    junta k=2    ≤64   ≤64    76   128   152   1.02 [−1.97, 4.26]
                parity       108   256   512  1218         2.22 [0.95, 2.56]
Theory: Thm 17 (at fixed WR + B) 1 in s and in n; the parity bound N_p(n) has slope 3.86 (s ∈ [3, 8],
n = 12; 4.35 over NTK's s ∈ [3, 6]) and 2.93 (n ∈ [8, 24], p = 3); SGD's n^(p−1): 2 in n, 12.6 in s.
Sparse and dense intervals are disjoint in both directions for low-degree regression and NTK
ridge. For the net they meet along s ([0.32, 0.82] against [0.82, 2.63]), and the levels separate
instead: the parity needs 2.4× (s = 4) to 6.7× (s = 8) the junta's m*; along n the net's junta has
three learned points over n = 16–32 (two more sit at the floor, m* ≤ 64) with brackets spanning a
factor 1.4 (n = 16, from the floor 64) to 2.8 (n = 24), so its interval [−1.97, 4.26] contains the parity's [0.95, 2.56]: there too the
levels separate, the parity needing 7–10× the junta's m* at n = 16 and 24. NTK's dense rows have
two reached points (two censored) and lie a factor 13–65 above the junta at equal s and n. At
equal s the juntas need 4× (s = 4) to 19× (s = 8) fewer samples than the parity for low-degree
regression, and the parity at s = 16 (p = n = 12) is not learned by 8192. The sparse intervals
cover 1 for low-degree and NTK along s (where N_d(12), d = log₂ s, happens to grow like s^1.06)
and for all three learners along n (low-degree: m* = n + 1, the number of characters of degree
≤ 1, slope 0.94 here; NTK 1.05 [0.51, 1.69]; the net's interval is wide and covers 0 too:
unresolved); the net along s gives 0.59 [0.32, 0.82]: below Thm 17, which is an upper bound for
ERM. The dense fitted rows follow the parity bound (2.78 [2.17, 3.39] and NTK's 3.31 [2.45, 4.59]
cover 2.93 along n; along s 4.37 [3.81, 4.92] covers 3.86, and the distinct-draws correction of
the 4096-point cube, 4.53); the net on the parity grows like n^2.2 (its interval [0.95, 2.56]
holds n^(p−1)'s 2; n^(p−1)·log n: 2.39) and, at n = 12, like s^2.1, far below 12^(s−2): m* ≤ 1024
= a quarter of the cube.
The brackets are those of the search as it is now (ci_low the largest tried m whose
Clopper–Pearson interval lies below 2/3, strictly below m*); remaking the tables with it widened
the intervals (the parity along s for low-degree: [4.03, 4.73] before, which left out 3.86) and
moved the fitted learners' m* by 0–2 samples.
Smoke: `sparselearn figs ADKM-S2 --smoke` (n ≤ 6, 2 seeds, one round of the search).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from sparselearn import figures
from sparselearn.plotting import fit_exponent, overlay
from sparselearn.plotting.style import PALETTE, panels

ID = "ADKM-S2"
STUDIES = {"lowdegree": "adkm_s2", "ntk": "adkm_s2_ntk", "mlp": "adkm_s2_mlp"}
#: only drawn: left out of what the kept tables record (`figures.made_from`)
DRAWING_CONSTANTS = ("TITLES",)
TITLES = {"lowdegree": "low-degree regression", "ntk": "NTK ridge", "mlp": "2-layer ReLU net (Adam)"}
base = figures.study("adkm_s2", near=__file__)


def experiments(smoke: bool):
    """Every arm's configs, labelled '<arm>: <series> | <size>'."""
    return {f"{arm}: {label}": exp for arm in STUDIES for label, exp in base.arm_experiments(arm, smoke).items()}


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """One table per arm (its study's m* table), named by the arm."""
    return {arm: figures.study(name, near=__file__).measure(smoke, store) for arm, name in STUDIES.items()}


def _theory(arm: str, part: pd.DataFrame, grid: np.ndarray) -> tuple[str, np.ndarray, str]:
    """(label, curve along `grid`, line style) of the series' theory rate."""
    row = part.iloc[0]
    grown = "s" if "vs s" in row["series"] else "n"
    n, s = (grid, row["s"]) if grown == "n" else (row["n"], grid)
    if row["teacher"].startswith("dense"):
        return ("parity: n^(p−1)" if arm == "mlp" else "parity: N_p(n)"), base.parity_bound(n, s, arm), ":"
    return "Thm 17: k·s·n", base.thm17(n, s, row["k"]), "--"


def _series(ax, arm: str, part: pd.DataFrame, color: str) -> None:
    """One teacher's m* along the grown quantity: brackets, censored points, fit and theory."""
    part = part.sort_values("size")
    ok = part.dropna(subset=["m_star"])
    teacher = part["teacher"].iloc[0]
    label = teacher
    if len(ok) >= 2:
        fit = fit_exponent(ok["size"], ok["m_star"], low=ok["ci_low"], high=ok["ci_high"])
        label += f": {fit.label()}"
        grid = np.geomspace(ok["size"].min(), ok["size"].max(), 40)
        ax.plot(grid, fit(grid), "-", color=color, lw=1)
        if teacher.startswith("dense") and "vs s" in part["series"].iloc[0]:
            # p = s − 1 is an integer, and the bound stops growing at s = n + 1
            grid = np.arange(ok["size"].min(), min(ok["size"].max(), part["n"].iloc[0] + 1) + 1, dtype=float)
        name, curve, style = _theory(arm, part, grid)
        line = overlay(ax, grid, curve, name, anchor=(grid[0], ok["m_star"].iloc[0]), color=color)
        line.set_linestyle(style)
        line.set_alpha(0.6)
    lo = (ok["m_star"] - ok["ci_low"].fillna(ok["m_star"])).clip(lower=0)
    hi = (ok["ci_high"].fillna(ok["m_star"]) - ok["m_star"]).clip(lower=0)
    ax.errorbar(ok["size"], ok["m_star"], yerr=[lo, hi], fmt="o", color=color, ms=4, capsize=2, label=label)
    floor = part[part["floor"]]
    if len(floor):                                       # learned at the smallest m tried: m* ≤ m_upper
        ax.plot(floor["size"], floor["m_upper"], "v", color=color, ms=5,
                label=f"{teacher}: m* ≤ {int(floor['m_upper'].min())} (floor)")
        for x, y in zip(floor["size"], floor["m_upper"]):
            ax.annotate("", (x, y / 1.7), (x, y), arrowprops={"arrowstyle": "->", "color": color, "lw": 1})
    cens = base.censored_rows(part)
    if len(cens):
        ax.plot(cens["size"], cens["budget"], "o", mfc="none", color=color, ms=6,
                label=f"{teacher}: censored at m = {int(cens['budget'].max())}")
        for x, y in zip(cens["size"], cens["budget"]):
            ax.annotate("", (x, y * 1.7), (x, y), arrowprops={"arrowstyle": "->", "color": color, "lw": 1})


def draw(results):
    arms = list(STUDIES)      # every arm: a missing table is an error, not a row left out
    fig, axes = panels(len(arms), 2, width=10.0, height=4.3 * len(arms))
    axes = np.asarray(axes).reshape(len(arms), 2)
    for r, arm in enumerate(arms):
        table = results[arm]
        for c, sweep in enumerate(("vs s", "vs n")):
            ax = axes[r, c]
            rows = table[table["series"].str.contains(sweep, regex=False)]
            for i, (_, part) in enumerate(rows.groupby("teacher", sort=False)):
                _series(ax, arm, part, PALETTE[0] if part["teacher"].iloc[0].startswith("junta") else PALETTE[3])
            if rows.empty:
                continue
            fixed = rows["series"].iloc[0].split("(")[-1].rstrip(")")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())    # labelled minor ticks collide on short ranges
            ax.set_xlabel(f"{sweep.split()[-1]} ({fixed})")
            ax.set_title(f"{TITLES[arm]}, {sweep}", fontsize=9)
            # the data and the arrows of censored and floor points set the range, not the overlays
            shown = pd.concat([rows["m_star"], rows["ci_high"], 2.2 * base.censored_rows(rows)["budget"],
                               rows["m_upper"] / 2.2]).dropna()
            if len(shown):
                ax.set_ylim(shown.min() / 1.5, shown.max() * 1.5)
            ax.legend(frameon=False, fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
        axes[r, 0].set_ylabel(f"m* (test MSE ≤ {base.EPS:g}, P ≥ 2/3)")
    fig.suptitle("sample complexity m*, sparse juntas vs the dense parity net; bars: Clopper–Pearson bracket of m*",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return fig


if __name__ == "__main__":
    figures.main(__file__)
