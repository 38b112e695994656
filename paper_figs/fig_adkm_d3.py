"""ADKM-D3: the Rademacher bounds for sparsely activated networks side by side (closed form).

Derived figure (no paper figure): R_S(H^{W,B}_{n,s,k}) as a function of the sample size m (left)
and the width s (right), from `sparselearn.theory`: ADKM Eq. (15) (dimension factor √n), ADKM
Conjecture 20 (√(sk/m)), the upper (Thm 2) and lower (Thm 3) bounds of Li et al. 2609.09130, and
the dense baseline s/√m. Hidden constants are 1 (Thm 2's C = 1), so compare slopes and gaps,
not levels. Defaults: n = 256, k = 4, s = 1024 (left), m = 10⁵ (right), W = B = 1, R = √n. Thm 3
holds where n ≥ q = min{⌊s/k⌋, m}, and its curve is drawn only there: the whole left panel, s ≤ 4n
= 1024 on the right (at n = 100 it would hold at no m > 100 on the left).

Full size = smoke: closed-form, well under a second. `sparselearn figs ADKM-D3`.
"""

from __future__ import annotations

import numpy as np

from sparselearn import figures, theory
from sparselearn.plotting.style import PALETTE, panels

ID = "ADKM-D3"
N, K, S, M, W, B = 256, 4, 1024, 1e5, 1.0, 1.0


def bounds(s, m, n=N, k=K, W=W, B=B) -> dict[str, np.ndarray]:
    """Every bound at (s, m) (broadcast), keyed by the legend label."""
    R = np.sqrt(n)
    return {
        "ADKM Eq. 15: √(snk log(km)/m)": theory.rademacher_adkm(n, s, k, m, W, B, R),
        "ADKM Conj. 20: √(sk/m)": theory.rademacher_conjecture20(s, k, m, W, B, R),
        "2609.09130 Thm 2 (upper)": theory.rademacher_lsjgh_upper(s, k, m, W, B, R),
        "2609.09130 Thm 3 (lower, where n ≥ min(s/k, m))": theory.rademacher_lsjgh_lower(s, k, m, W, B, R, n),
        "dense: s/√m": theory.rademacher_dense(s, m, W, B, R),
    }


def draw(results):
    del results  # closed form: nothing measured
    fig, (left, right) = panels(1, 2, 9.5, 3.6)
    m = np.geomspace(1e2, 1e8, 200)
    s = np.geomspace(8, 1e5, 200)
    styles = ["-", "-", "--", "--", ":"]
    for i, ((label, vs_m), vs_s) in enumerate(zip(bounds(S, m).items(), bounds(s, M).values())):
        left.plot(m, vs_m, styles[i], color=PALETTE[i], label=label)
        right.plot(s, vs_s, styles[i], color=PALETTE[i])
    for ax, xlabel in ((left, "samples m"), (right, "hidden units s")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Rademacher bound")
    left.set_title(f"n={N}, k={K}, s={S}, W=B=1", fontsize=9)
    right.set_title(f"n={N}, k={K}, m={M:.0e}, W=B=1", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))   # the legend below both panels, clear of every line
    fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False, fontsize=7)
    return fig


if __name__ == "__main__":
    figures.main(__file__)
