"""ADKM-T1: wall time of the low-degree algorithm to reach test MSE ε, sparse vs dense teachers, vs n.

Derived figure (no paper figure) for the time side of ADKM's separation (Theorem 8 against the
dense contrast of §1.3). The algorithm does not know the degree a teacher needs: it fits `lowdegree`
(Walsh basis, ridge 10⁻⁴) at d = 0, 1, 2, … on m_d = max(256, 4·N_d) fresh samples (N_d = Σ_{j≤d}
C(n, j) features) until the exact population MSE (Parseval, over all 2ⁿ inputs) is ≤ ε = 0.05; the
time is the sum of the fits' wall times (compiled ahead, so compilation is left out), which grows
like Σ_d m_d·N_d². Teachers, s = 16 units, unit output variance: juntas with k = 1 and k = 4 (Fourier
degree log₂(s/k) = 4 and 2, so N_d grows like n⁴ and n²) and the dense parity net (`parity`: the
parity of p = min(n, 15) bits, so for n ≤ 15 the algorithm must reach d = n, all 2ⁿ characters).
A search stops unreached (open circle, its time a lower bound) when the next degree would need more
than 4096 features; one that fits every degree up to n without reaching ε is an open square. Median
over 3 seeds; the right panel shows the features of the degree reached.

Full size: `sparselearn figs ADKM-T1` (n ∈ {4, 6, …, 16}; 5 min 45 s wall, 379 s of CPU time, on a
2-core AMD EPYC (Zen 4) CPU, jax 0.10.2, shared with other jobs (load average 2–3), so single fit
times carry up to a factor ~5 of noise; table kept in paper_figs/data/adkm-t1-times.parquet, delete
it to recompute).
Measured (median seconds of the search over 3 seeds; features of the degree reached):
    n                     4       8       10      12      14           16
    junta k=4 (d = 2)     0.006   0.007   0.010   0.010   0.010        0.011     (11 → 137 features)
    junta k=1 (d ≤ 4)     0.011   0.024   0.073   0.27    0.31         0.67      (16 → 697)
    dense parity (d = n)  0.012   0.19    4.9     58      ≥ 2.7 (stop) ≥ 1.0 (stop)  (16 → 4096)
Projected from the fits' cost per m·N² (the dashed line): the parity net needs ≈ 4×10³ s at n = 14
and ≈ 3×10⁵ s at n = 16 (16384 and 65535 features), growing like 8ⁿ (m·N² with N ≈ 2ⁿ) until
n = s − 1 = 15, after which p stays 15 and the cost is polynomial, n^{3·15}. The juntas' degree stays
log₂(s/k) (or lower, for a junta whose random function has lower degree), so their cost grows like
n^{3·log₂(s/k)}: a factor 2–60 from n = 4 to 16, against 5000 for the parity net by n = 12.
Smoke: `sparselearn figs ADKM-T1 --smoke` (n ∈ {4, 5}, 1 seed, a 16-feature limit, so that the
parity net at n = 5 is stopped and projected).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from sparselearn import analysis, figures, learners, targets
from sparselearn.learners.lowdegree import feature_count
from sparselearn.plotting.style import PALETTE, panels
from sparselearn.targets.inputs import draw as draw_inputs

ID = "ADKM-T1"
S, EPS, RIDGE = 16, 0.05, 1e-4
#: rows per feature: with all 2ⁿ characters the fit interpolates the points it saw, and a point goes
#: unseen with probability e^(−m/2ⁿ), so m = 3·2ⁿ leaves an error ≈ e^(−3) ≈ ε; 4 is clear of it
RATIO = 4
#: label → target fields (k None means k = s)
TEACHERS = {
    "junta k=1": {"construction": "junta", "k": 1},
    "junta k=4": {"construction": "junta", "k": 4},
    "dense parity": {"construction": "parity", "k": None},
}
MAX_FEATURES = 4096
FULL = {"n": (4, 6, 8, 10, 12, 14, 16), "seeds": 3, "max_features": MAX_FEATURES}
#: smoke: the 16-feature limit stops the parity net at n = 5 (2⁵ = 32 features), to draw the projection
SMOKE = {"n": (4, 5), "seeds": 1, "max_features": 16}


def samples(features: int) -> int:
    """Training rows for a fit on `features` characters."""
    return max(256, RATIO * features)


def search(target, params, n: int, key: jax.Array, max_features: int) -> list[dict]:
    """Fit degrees 0, 1, … until the population MSE is ≤ EPS or the next degree needs more than
    `max_features` features; one row per fit: degree, features, m, fit_s, test_error."""
    coeffs = analysis.spectrum(lambda x: target.labels(params, x), n)
    total = float(np.sum(coeffs ** 2))
    rows = []
    for d in range(n + 1):
        count = feature_count(n, d, "walsh")
        if count > max_features:
            break
        learner = learners.get("lowdegree", degree=d, basis="walsh", ridge=RIDGE)
        m = samples(count)
        x = draw_inputs("hypercube", jax.random.fold_in(key, d), m, n)
        y, w = target.labels(params, x), jnp.ones(m, jnp.float32)
        fit = jax.jit(learner.fit).lower(key, x, y, w).compile()
        start = time.perf_counter()
        coef = np.asarray(jax.block_until_ready(fit(key, x, y, w))["coef"], np.float64)
        elapsed = time.perf_counter() - start
        masks = np.array([analysis.mask_of(term) for term in learner.terms(n)], dtype=np.int64)
        error = total - float(np.sum(coeffs[masks] ** 2)) + float(np.sum((coef - coeffs[masks]) ** 2))
        rows.append({"degree": d, "features": count, "m": m, "fit_s": elapsed, "test_error": error})
        if error <= EPS:
            break
    return rows


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"times": one row per fit (teacher, n, seed, degree, features, m, fit_s, test_error, and
    max_features, the search's feature limit)."""
    del store  # fitted in closed form and timed here, nothing stored
    size = SMOKE if smoke else FULL
    rows = []
    for label, fields in TEACHERS.items():
        for n in size["n"]:
            target = targets.get("sparse_mlp", n=n, s=S, k=fields["k"] or S, construction=fields["construction"])
            for seed in range(size["seeds"]):
                params = target.init(jax.random.key(seed))
                for row in search(target, params, n, jax.random.key(1000 + seed), size["max_features"]):
                    rows.append({"teacher": label, "n": n, "seed": seed, **row,
                                 "max_features": size["max_features"]})
    return {"times": pd.DataFrame(rows)}


def outcomes(times: pd.DataFrame) -> pd.DataFrame:
    """One row per search (teacher, n, seed): total fit time, the last degree fitted, its
    features, whether it reached EPS, and whether it `stopped` unreached at the feature limit
    (rather than after fitting every degree up to n)."""
    ordered = times.sort_values("degree")
    last = ordered.groupby(["teacher", "n", "seed"], sort=False).tail(1).set_index(["teacher", "n", "seed"])
    total = times.groupby(["teacher", "n", "seed"])["fit_s"].sum()
    return pd.DataFrame({"seconds": total, "degree": last["degree"], "features": last["features"],
                         "reached": last["test_error"] <= EPS,
                         "stopped": (last["test_error"] > EPS) & (last["degree"] < last.index.get_level_values("n"))
                         }).reset_index()


def needed_degree(label: str, n: int) -> int | None:
    """The degree at which the parity net is fitted exactly, its size p = min(n, s − 1); None for
    a junta (at most log₂(s/k), lower when its random function has lower degree)."""
    return min(n, S - 1) if label == "dense parity" else None


def projected_seconds(times: pd.DataFrame, n: int, degree: int) -> float:
    """The time of a whole search up to `degree`, Σ_d c·m_d·N_d², with c the median seconds per
    m·N² of the measured fits with ≥ 1000 features (where the Gram matrix dominates), or of the
    largest ones when none has that many (smoke)."""
    big = times[times["features"] >= min(1000, times["features"].max())]
    c = float((big["fit_s"] / (big["m"] * big["features"].astype(float) ** 2)).median())
    return sum(c * samples(feature_count(n, d, "walsh")) * feature_count(n, d, "walsh") ** 2.0
               for d in range(degree + 1))


def draw(results):
    times = results["times"]
    table = outcomes(times)
    limit = int(times["max_features"].max())
    fig, (left, right) = panels(1, 2, 10.0, 3.8)
    for i, label in enumerate(TEACHERS):
        part = table[table["teacher"] == label]
        if part.empty:
            continue
        color = PALETTE[i % len(PALETTE)]
        med = part.groupby("n").agg(seconds=("seconds", "median"), features=("features", "median"),
                                    reached=("reached", "mean"), stopped=("stopped", "mean"))
        med["reached"] = med["reached"] >= 0.5                   # reached by most seeds
        med["stopped"] = ~med["reached"] & (med["stopped"] >= 0.5)
        done, cut, short = med[med["reached"]], med[med["stopped"]], med[~med["reached"] & ~med["stopped"]]
        for ax, col in ((left, "seconds"), (right, "features")):
            ax.plot(done.index, done[col], "o-", color=color, ms=5, lw=1, label=label)
            if not short.empty:
                ax.plot(short.index, short[col], "s", mfc="none", color=color, ms=6,
                        label=f"{label}: every degree fitted, MSE > {EPS}" if ax is left else None)
            if not cut.empty:
                ax.plot(cut.index, cut[col], "o", mfc="none", color=color, ms=6,
                        label=f"{label}: stopped, next degree > {limit} features (time so far)"
                        if ax is left else None)
                need = {n: needed_degree(label, n) for n in cut.index}
                if None in need.values():                          # a junta: its degree is not known ahead
                    continue
                ahead = [projected_seconds(times, n, d) if ax is left else feature_count(n, d, "walsh")
                         for n, d in need.items()]
                before = done[done.index < cut.index.min()].tail(1)        # join the dashes to the last point reached
                ax.plot(list(before.index) + list(cut.index), list(before[col]) + ahead, "--", color=color, lw=1)
                ax.plot(cut.index, ahead, "x", color=color, ms=6,
                        label=f"{label}: projected to d = min(n, {S - 1})" if ax is left else None)
    left.set_ylabel(f"wall time to reach MSE ≤ {EPS} (s)")
    right.set_ylabel("features N_d (×: needed)")
    for ax in (left, right):
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())      # decade labels only: minor labels collide
        ax.set_xlabel("input dimension n")
        ax.set_xticks(sorted(table["n"].unique()))
    left.legend(frameon=False, fontsize=7)
    fig.suptitle(f"low-degree algorithm (degree search, m = max(256, {RATIO}·N_d)) on s = {S} teachers: "
                 "sparse juntas vs the dense parity net (median of seeds)", fontsize=9)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
