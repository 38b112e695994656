"""ADKM-D1: test error of low-degree regression vs its degree d, sparse teachers vs a hard dense one.

Derived figure (no paper figure) for ADKM Lemma 7 / Theorem 8 and the dense contrast of §1.3:
least squares (ridge 10⁻⁴) on all Walsh characters of degree ≤ d fitted to m = 5×10⁴ uniform
samples of a teacher on {±1}ⁿ. Teachers (`sparse_mlp`, unit output variance): ADKM's three
members of H_{n,s,k}, (a) sparse juntas (k groups of s/k units, each group a random ±1 function of
log₂(s/k) bits, so Fourier degree log₂(s/k); k = 4 needs s ≥ 8), (b) the Index function (k = 1: b
address bits pick one of 2^b data bits, the largest b with b + 2^b ≤ n and 2^b ≤ s, so it uses 4, 8
or 16 units; Fourier degree b + 1) and (c) the dense-weight member (k = 1: log₂ s address bits
select the unit, each with a dense weight vector on the other n − log₂ s bits, Γ = √q, so the
Fourier degree is about n), and the dense parity net (construction `parity`: the parity of
p = min(n, s − 1) bits as p + 1 ramps in their sum, Fourier degree p, about half of the units
active on a typical input). One panel per (n, s), n ∈ {12, 16, 20} × s ∈ {4, 16, 64}; each title
gives the units each sparse teacher uses and the k its certificate finds (max active units over
all 2ⁿ inputs), in legend order, then the parity net's. Median and IQR over 5 seeds; a dotted line
marks each teacher's Fourier degree.

How it is measured (`measure`): the fit is the one `lowdegree` (basis walsh) computes, but shared.
All teachers of one n and seed are fitted on the same sample, and all degrees from one Gram matrix:
on the cube G[S, T] = (1/m) Σ_i χ_S(x_i) χ_T(x_i) = μ̂(S ⊕ T), the Walsh transform of the sample's
empirical measure, and the right-hand sides are the transform of the labels summed per point, so
one fast transform per (n, seed) gives G for the largest degree and each degree solves its leading
block (tests/test_figs.py checks the result against `LowDegree.fit`). The error is the exact
population MSE over all 2ⁿ inputs (Parseval: Σ_{T fitted} (c_T − f̂(T))² + Σ_{T not fitted} f̂(T)²),
not a test-sample estimate. Teacher `seed` is `target.init(jax.random.key(seed))`; the declared
configs (`sparselearn run`, one run per seed and degree) fit teachers of the same constructions, each
on its own sample. Degrees: n = 12 up to 12 (all 4096 characters), n = 16
up to 5 (6885), n = 20 up to 4 (6196); beyond that the Gram matrix and its Cholesky factor outgrow a
shared 2-core machine.

Full size: `sparselearn figs ADKM-D1` — 51 teachers × 5 seeds, 260 s wall, 203 s of CPU time, on
one core of a 2-core AMD EPYC (Zen 4) CPU, the other core busy, jax 0.10.2. Tables kept in paper_figs/data/adkm-d1.parquet (runs)
and adkm-d1-teachers.parquet (units, certified k, W, B, Fourier degree); delete them to recompute.
Measured, median over seeds, n = 20 (test MSE at d = 0, 1, 2, 3, 4):
    s = 4    junta k=1           1.00  0.34   0      0      0        (Fourier degree 2)
             junta k=2           1.00  0      0      0      0
             index k=1           1.00  0.75   0.25   0      0        (degree 3)
             dense weight k=1    1.00  0.80   0.29   0.067  0.018    (degree 18–20)
             dense parity p=3    1.00  1.00   1.00   0      0
    s = 16   junta k=1           1.00  0.80   0.38   0.068  0        (degree 3–4)
             junta k=2           1.00  0.73   0.18   0      0
             junta k=4           1.00  0.34   0      0      0
             index k=1           1.00  0.94   0.69   0.32   0.072    (degree 5)
             dense weight k=1    1.00  0.92   0.67   0.31   0.12     (degree 18–19)
             dense parity p=15   1.00  1.00   1.00   1.03   1.14
    s = 64   junta k=1           1.00  0.94   0.70   0.38   0.17     (degree 5–6)
             junta k=2           1.00  0.83   0.59   0.16   0.020    (degree 5)
             junta k=4           1.00  0.80   0.33   0.071  0        (degree 4)
             index k=1           1.00  0.94   0.69   0.32   0.072    (degree 5: 16 units, as at s = 16)
             dense weight k=1    1.00  0.97   0.85   0.63   0.39     (degree 19–20)
             dense parity p=20   1.00  1.00   1.01   1.03   1.14
At n = 12, where every degree fits, the parity nets (p = 12: s = 13 units of the 16 or 64 allowed,
certified k = 13) stay at 1.00–1.13 (above 1 from overfitting 4095 features with 5×10⁴ samples)
through d = 11 and drop to 0 at d = 12; the juntas are exact from their Fourier degree (≤ log₂(s/k),
≤ 6). Certificates: juntas k = 1, 2, 4 exactly; parity k = p + 1 = its number of units (every unit
fires on the all-(+1) input of S), W ≈ 4√p, B ≈ 4(p + 1) (17.9 and 84 at p = 20; 6.67 and 15.4 at p = 3) against
juntas' W ≤ 2.6, B ≤ 5.2. The sparse teachers' error falls with d at a rate set by s/k; the dense
parity net of the same s and n has none of its variance below degree p, so low-degree regression
gains nothing on it until d = p = min(n, s − 1), at n^p features. The dense-weight member is as
sparse (k = 1) yet of degree about n, and shows Theorem 8's mechanism rather than an exact fit: at
n = 12, s = 4 its error falls by a factor 1.7–4.4 per degree (0.053 at d = 3, 9.4·10⁻⁵ at d = 9), as
its low noise sensitivity makes its spectrum decay; the parity net of the same s falls by
nothing until d = p.
Smoke: `sparselearn figs ADKM-D1 --smoke` (n = 8, s = 8, d ≤ 8, 2 seeds).
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, cho_solve

from sparselearn import analysis, figures
from sparselearn.plotting.style import PALETTE, panels

ID = "ADKM-D1"

#: label → target fields (n, s filled in by the size; k None means k = s)
TEACHERS = {
    "junta k=1": {"construction": "junta", "k": 1},
    "junta k=2": {"construction": "junta", "k": 2},
    "junta k=4": {"construction": "junta", "k": 4},
    "index k=1": {"construction": "index", "k": 1},
    "dense weight k=1": {"construction": "dense_weight", "k": 1},
    "dense parity": {"construction": "parity", "k": None},
}
RIDGE = 1e-4
FULL = {"n": (12, 16, 20), "s": (4, 16, 64), "m": 50000, "test_m": 8192, "seeds": 5,
        "degree": {12: 12, 16: 5, 20: 4}}
SMOKE = {"n": (8,), "s": (8,), "m": 4096, "test_m": 256, "seeds": 2, "degree": {8: 8}}


def _fits(fields: dict, s: int) -> bool:
    """A junta or index group needs s/k ≥ 2 units."""
    return fields["k"] is None or s // fields["k"] >= 2


def experiments(smoke: bool):
    """(teacher label, n, s) → config of that teacher and size, its grid over the degree d."""
    size = SMOKE if smoke else FULL
    exps = {}
    for n in size["n"]:
        for s in size["s"]:
            for label, fields in TEACHERS.items():
                if not _fits(fields, s):
                    continue
                k = fields["k"] or s
                exps[label, n, s] = figures.config({
                    "experiment": f"adkm_d1{'_smoke' if smoke else ''}_{fields['construction']}_k{k}_n{n}_s{s}",
                    "target": {"name": "sparse_mlp", "n": n, "s": s, "k": k, "construction": fields["construction"]},
                    "learner": {"name": "lowdegree", "degree": 1, "basis": "walsh", "ridge": RIDGE},
                    "train": {"loss": "square"},
                    "data": {"m": size["m"], "test_m": size["test_m"]},
                    "sweep": {"seeds": size["seeds"], "grid": {"learner.degree": list(range(size["degree"][n] + 1))}}})
    return exps


def basis(n: int, degree: int) -> np.ndarray:
    """Masks of all sets of size ≤ degree, by size (the order of `lowdegree`'s blocks), int64."""
    sizes = analysis.set_sizes(n)
    return np.argsort(sizes, kind="stable")[: sum(math.comb(n, j) for j in range(degree + 1))]


def shared_fits(values: np.ndarray, idx: np.ndarray, degrees, ridge: float = RIDGE) -> dict[int, np.ndarray]:
    """Ridge least squares on the Walsh characters of degree ≤ d, for every d in `degrees` and
    every teacher at once: values (T, 2^n) the teachers' truth tables, idx (m,) the sample's
    points (row numbers of the enumeration). Returns d → coefficients (T, N_d) in `basis` order,
    minimising (1/m) Σ_i (Σ c_S χ_S(x_i) − y_i)² + ridge ‖c‖²."""
    size = values.shape[-1]
    m = len(idx)
    counts = np.bincount(idx, minlength=size).astype(np.float64)
    moments = analysis.walsh_hadamard(counts) * (size / m)                   # μ̂(U) = (1/m) Σ_i χ_U(x_i)
    rhs = analysis.walsh_hadamard(counts * values) * (size / m)              # (1/m) Σ_i y_i χ_S(x_i), (T, 2^n)
    n = size.bit_length() - 1
    masks = basis(n, max(degrees)).astype(np.int32)
    gram = moments[masks[:, None] ^ masks[None, :]]
    out = {}
    for d in degrees:
        N = len(basis(n, d))
        factor = cho_factor(gram[:N, :N] + ridge * np.eye(N), lower=True)
        out[d] = cho_solve(factor, rhs[:, masks[:N]].T).T
    return out


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """"runs": one row per (experiment, seed, degree) with the population test MSE and the
    Fourier tail Σ_{|T|>d} f̂(T)² (the error at m → ∞); "teachers": one row per (experiment,
    seed) with the units used, the certified k, W, B and the Fourier degree."""
    del store  # closed-form fits, nothing trained
    size = SMOKE if smoke else FULL
    exps = experiments(smoke)
    runs, teachers = [], []
    for n in size["n"]:
        at_n = [(key, exp) for key, exp in exps.items() if key[1] == n]
        degrees = list(range(size["degree"][n] + 1))
        masks = basis(n, degrees[-1])
        sizes = analysis.set_sizes(n)
        for seed in range(size["seeds"]):
            values, coeffs = [], []
            for (label, _, s), exp in at_n:
                target = exp.target
                params = target.init(jax.random.key(seed))
                table = analysis.truth_table(lambda x, t=target, p=params: t.labels(p, x), n)
                spectrum = analysis.walsh_hadamard(table)
                values.append(table)
                coeffs.append(spectrum)
                cert, norms = target.certify(params), target.norms(params)
                support = sizes[np.abs(spectrum) > 1e-5]
                teachers.append({"experiment": exp.experiment, "n": n, "s": s, "seed": seed,
                                 "units": target.layout.units, "k": cert.max_active, "exact": cert.exact,
                                 "W": norms["W"], "B": norms["B"], "fourier_degree": int(support.max(initial=0))})
            idx = np.asarray(jax.random.randint(jax.random.fold_in(jax.random.key(seed), n), (size["m"],), 0, 1 << n))
            fits = shared_fits(np.stack(values), idx, degrees)
            coeffs = np.stack(coeffs)
            total = np.sum(coeffs ** 2, axis=1)
            for d, c in fits.items():
                fitted = coeffs[:, masks[: c.shape[1]]]
                error = total - np.sum(fitted ** 2, axis=1) + np.sum((c - fitted) ** 2, axis=1)
                for i, ((label, _, s), exp) in enumerate(at_n):
                    runs.append({"experiment": exp.experiment, "n": n, "s": s, "seed": seed, "degree": d,
                                 "features": c.shape[1], "m": size["m"], "test_error": float(error[i]),
                                 "tail": float(total[i] - np.sum(fitted[i] ** 2))})
    return {"runs": pd.DataFrame(runs), "teachers": pd.DataFrame(teachers)}


def _title(n: int, s: int, cell: pd.DataFrame, teachers: pd.DataFrame) -> str:
    """'n=…, s=…', then the units each teacher uses and the k its certificate finds (max over
    seeds): one line for the sparse teachers in legend order, one for the parity net with its
    size p."""
    def row(label):
        return teachers[teachers["experiment"].isin(cell.loc[cell["teacher"] == label, "experiment"])]

    sparse = [label for label in TEACHERS if label != "dense parity" and (cell["teacher"] == label).any()]
    units = "/".join(str(int(row(label)["units"].max())) for label in sparse)
    ks = "/".join(str(int(row(label)["k"].max())) for label in sparse)
    parity = row("dense parity")
    return (f"n={n}, s={s}\nsparse: s={units}, k={ks}\nparity (p={int(parity['fourier_degree'].max())}): "
            f"s={int(parity['units'].max())}, k={int(parity['k'].max())}")


def draw(results):
    runs = results.runs.assign(teacher=results.runs["label"].str[0])
    teachers = results["teachers"]
    ns, ss = sorted(runs["n"].unique()), sorted(runs["s"].unique())
    fig, axes = panels(len(ns), len(ss), width=3.6 * len(ss), height=2.9 * len(ns), sharey=True)
    axes = np.asarray(axes).reshape(len(ns), len(ss))
    labels = list(TEACHERS)
    notes = {}   # per panel, the teachers whose Fourier degree lies beyond its degrees
    for (n, s), cell in runs.groupby(["n", "s"]):
        ax = axes[ns.index(n), ss.index(s)]
        top = int(cell["degree"].max())
        beyond = []
        for label, part in cell.groupby("teacher", sort=False):
            color = PALETTE[labels.index(label) % len(PALETTE)]
            q = part.groupby("degree")["test_error"].quantile([0.25, 0.5, 0.75]).unstack()
            ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt="o-", ms=3, capsize=2,
                        color=color, label=label)
            degree = int(teachers.loc[teachers["experiment"].isin(part["experiment"]), "fourier_degree"].max())
            if degree <= top:
                ax.axvline(degree, color=color, ls=":", lw=1)
            else:
                beyond.append((f"{label} needs d = {degree} →", color))
        notes[ax] = beyond
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylim(-1e-4, 30)   # above 1: room for the notes of degrees beyond the panel
        ax.set_yticks([0, 1e-3, 1e-2, 1e-1, 1])
        ax.set_xticks(range(0, top + 1, 2 if top > 6 else 1))
        ax.set_title(_title(int(n), int(s), cell, teachers), fontsize=6.5)
        if ns.index(n) == len(ns) - 1:
            ax.set_xlabel("degree d")
        if ss.index(s) == 0:
            ax.set_ylabel("test MSE (exact)")
    handles, names = axes[0, -1].get_legend_handles_labels()             # the panel with every teacher
    fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False, fontsize=7)
    fig.subplots_adjust(hspace=0.75, wspace=0.12, top=1 - 1.05 / fig.get_figheight(),
                        bottom=0.75 / fig.get_figheight())
    fig.suptitle(f"low-degree regression (Walsh features, m={int(runs['m'].iloc[0])}): ADKM's sparse members vs the "
                 f"dense parity net\nmedian, bars: IQR over {runs['seed'].nunique()} seeds; dotted: each teacher's "
                 "Fourier degree", fontsize=9)
    for ax, beyond in notes.items():   # once the layout is final: the notes go where no line passes
        _place_notes(ax, beyond)
    return fig


def _place_notes(ax, notes: list[tuple[str, str]], near: tuple[float, float] = (0.03, 0.25)) -> None:
    """The notes (text, colour), one a line, stacked where they cross the fewest drawn points of
    `ax` (lines sampled along their segments, error bars, markers), of such spots the nearest to
    `near` (axes fraction, their lower left); on white, should a line still pass."""
    from matplotlib.collections import LineCollection

    if not notes:
        return
    texts = [ax.text(0, 0, text, transform=ax.transAxes, fontsize=6, color=color, va="bottom", ha="left",
                     bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
             for text, color in notes]
    boxes = [t.get_window_extent(ax.figure.canvas.get_renderer()) for t in texts]
    width, line = max(b.width for b in boxes), max(b.height for b in boxes)
    points = []
    for artist in ax.lines:
        xy = artist.get_transform().transform(np.asarray(artist.get_xydata(), dtype=float))
        if artist.get_linestyle() not in ("None", "none", "", " ") and len(xy) > 1:
            t = np.linspace(0, 1, 40)[:, None, None]
            xy = (xy[:-1] * (1 - t) + xy[1:] * t).reshape(-1, 2)     # the drawn segments, sampled
        points.append(xy)
    for coll in ax.collections:
        if isinstance(coll, LineCollection):
            for seg in coll.get_segments():
                ends = coll.get_transform().transform(np.asarray(seg, dtype=float))
                t = np.linspace(0, 1, 40)[:, None, None]
                points.append((ends[:-1] * (1 - t) + ends[1:] * t).reshape(-1, 2))
    points = np.concatenate(points) if points else np.empty((0, 2))
    points = points[np.isfinite(points).all(axis=1)]
    frame = ax.get_window_extent()
    height, pad = line * len(texts), 3.0
    best = None
    for x0 in np.linspace(frame.x0 + pad, frame.x1 - width - pad, 24):
        for y0 in np.linspace(frame.y0 + pad, frame.y1 - height - pad, 24):
            inside = ((points[:, 0] >= x0 - pad) & (points[:, 0] <= x0 + width + pad)
                      & (points[:, 1] >= y0 - pad) & (points[:, 1] <= y0 + height + pad)).sum()
            fx, fy = ax.transAxes.inverted().transform((x0, y0))
            score = (inside, np.hypot(fx - near[0], fy - near[1]))
            if best is None or score < best[0]:
                best = (score, x0, y0)
    _, x0, y0 = best
    for i, text in enumerate(texts):
        text.set_position(ax.transAxes.inverted().transform((x0, y0 + line * (len(texts) - 1 - i))))


if __name__ == "__main__":
    figures.main(__file__)
