"""BNTK-1: bias-induced sparse activation — a wide 2-layer ReLU net whose biases start at −β stays
sparsely activated through training; its convergence rate and NTK least eigenvalue vs β.

Derived figure for Yang, Jiang, Zhang, Liang, Wang (JMLR 25(321), 2024, arXiv 2301.00327). Student: `mlp`
with parametrization: ntk (f(x) = Σ_j a_j relu(w_j·x/√n + b_j)/√width, a, w ~ N(0, 1), both layers
and the biases trained) and bias_init: −β; width 2048 for every β (matched width). Teacher: a
random `sparse_mlp` (n = 16, s = 16, k = 4) on the hypercube, so x/√n lies on the unit sphere and
a unit fires at initialisation with probability Φ(−β). Training: square loss, m = 128 examples,
batch = m (the loop draws each step's m rows with replacement, so this is gradient descent on
resampled full batches, not the exact full gradient), 3000 steps, 3 seeds, at two step sizes:
"fixed", the same η = 2/κ(0) for every β, and "scaled", η = 2/κ(β), where κ(β) = Θ_β(x, x) is
the diagonal of the bias-generalized NTK Θ_β (`learners.kernels.bias_ntk`) — the step that
keeps η·Θ_β at the same scale, since Θ_β shrinks like Φ(−β).

Panels: (a) active fraction per test input over training (`train.record: [active_fraction]`,
read from the store's traces), dashed: Φ(−β); (b) active fraction at initialisation and after
training vs β against Φ(−β); (c, d) training loss, scaled and fixed step, with the loss the
linearised (kernel) dynamics predict from the empirical NTK at initialisation, dashed; (e) the
linear convergence rate −d log L/dt (`rate`: the later half of the steps with L > 1e-8) vs β,
measured and predicted; (f) least eigenvalue of the NTK Gram matrix on m = 128 inputs: empirical at
initialisation (width 2048, jax Jacobian) and the infinite-width Θ_β, absolute and relative to κ(β).
The eigenvalues and the predictions come from `measure`, on samples and initialisations drawn
like the runs' (same distributions, same m, n and width; not the runs' own draws).

Full size: `sparselearn figs BNTK-1` (6 values of β × 2 steps (1 at β = 0) × 3 seeds × 3000
steps; NTK Gram matrices for 6 β × 3 seeds): 8 min 51 s wall (187 s of CPU) on the shared 2-core
CPU sandbox (AMD EPYC, jax 0.10.2, load average 11–14 from other jobs); tables kept in
paper_figs/data/bntk-1*.parquet (delete them to retrain).
Result (medians over 3 seeds): at initialisation the active fraction is Φ(−β) to within 2.5%
(β = 2.5: 0.00607 vs 0.00621). Training keeps it sparse but not at Φ(−β): it rises in the first
few hundred steps and then stays, by ×1.06 at β = 1 (0.167 vs 0.159), ×1.5 at β = 2 (0.034 vs
0.023) and ×2.1 at β = 2.5 (0.0133 vs 0.0062), alike for both step sizes — at β = 2.5 about 13
(at initialisation) to 27 (after training) of the 2048 units are active per input, too few for the
lazy (kernel) regime.
Least eigenvalue on m = 128 inputs: λ_min(Θ_β) falls from 0.140 (β = 0) to 0.0069 (β = 2.5),
less than κ(β) does (1.5 → 0.0136), so λ_min/κ rises from 0.09 to 0.51: the sparse kernel is
closer to diagonal. The empirical Gram at width 2048 agrees with Θ_β within 5% up to β = 1
and falls below it beyond (0.0155 vs 0.0213 at β = 2, 0.0014 vs 0.0069 at β = 2.5). Rates: with
the fixed step they fall from 2.5e-3 to 9.7e-4 per step (the linearised prediction from 3.4e-3
to 2.6e-4: the measured fall is smaller because the active fraction grows); with the scaled
step they rise from 2.5e-3 to 5.4e-2 (predicted 3.4e-3 to 1.2e-2 at β = 2): not slower than the
dense net, the paper's claim, once the step matches the kernel's scale. At β = 0 the measured
rate is 25% below the linearised one (finite width). Exact full-batch gradient descent on one
draw gives the same rates as the resampled batches (2.85e-3 vs 2.84e-3 at β = 0; 1.98e-2 vs
1.89e-2 at β = 2, scaled step), so the resampling does not matter here.
Smoke: `sparselearn figs BNTK-1 --smoke` (seconds; n = 8, m = 32, width 64, β ∈ {0, 1.5}).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting.style import PALETTE, panels
from sparselearn.store import trace_array

ID = "BNTK-1"
LR0 = 2.0  # η·κ(β) for the scaled step; the fixed step is LR0/κ(0)

BASE = {"target": {"name": "sparse_mlp", "n": 16, "s": 16, "k": 4, "construction": "random"},
        "learner": {"name": "mlp", "width": 2048, "depth": 2, "parametrization": "ntk"},
        "train": {"optimizer": "sgd", "batch": 128, "steps": 3000, "loss": "square", "eval_every": 100,
                  "record": ["active_fraction"]},
        "data": {"m": 128, "test_m": 1024}}
FULL = {"betas": (0.0, 0.5, 1.0, 1.5, 2.0, 2.5), "seeds": 3, "name": "bntk_1"}
SMOKE = {"betas": (0.0, 1.5), "seeds": 1, "name": "bntk_1_smoke",
         "target": {"n": 8, "s": 8, "k": 2}, "learner": {"width": 64},
         "train": {"batch": 32, "steps": 100, "eval_every": 25}, "data": {"m": 32, "test_m": 64}}


def phi_minus(beta: float) -> float:
    """Φ(−β): the probability that a unit of bias −β fires on a unit-norm input at initialisation."""
    return 0.5 * math.erfc(beta / math.sqrt(2.0))


def kappa(beta: float) -> float:
    """κ(β) = Θ_β(x, x) on unit-norm inputs: the diagonal of the bias-generalized NTK."""
    from sparselearn.learners import kernels

    return float(kernels.bias_ntk(np.ones((1, 1), np.float32), np.ones((1, 1), np.float32), beta)[0, 0])


def step_sizes(beta: float) -> dict[str, float]:
    """{"fixed": LR0/κ(0), "scaled": LR0/κ(β)}, rounded to 4 digits (the values the configs hold)."""
    return {name: float(f"{LR0 / kappa(b):.4g}") for name, b in (("fixed", 0.0), ("scaled", beta))}


def _size(smoke: bool) -> dict:
    return SMOKE if smoke else FULL


def experiments(smoke: bool) -> dict:
    """One experiment per β (label "β=<value>"), its grid the fixed and the scaled step size."""
    size = _size(smoke)
    out = {}
    for beta in size["betas"]:
        lrs = sorted(set(step_sizes(beta).values()))
        base = figures.config({**BASE, "experiment": f"{size['name']}_b{beta:g}"},
                              **{s: size[s] for s in ("target", "learner", "train", "data") if s in size})
        out[f"β={beta:g}"] = figures.config(base, learner={"bias_init": -beta if beta else 0.0},
                                            sweep={"seeds": size["seeds"], "grid": {"train.lr": lrs}})
    return out


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """The sweep's runs (with beta and the step-size scheme) and curves; "active": the active
    fraction recorded at every curve point; "kernel": per β and seed the least and largest
    eigenvalues of the empirical NTK Gram at initialisation and of Θ_β on the same m inputs;
    "linear": the training loss of the linearised dynamics for each step size."""
    declared = experiments(smoke)
    runs, curves, traces = figures.sweep(declared, store, traces=True)
    beta_of = {exp.experiment: -exp.learner.bias_init for exp in declared.values()}
    runs = runs.assign(beta=runs["experiment"].map(beta_of).astype(float) + 0.0)
    for scheme in ("fixed", "scaled"):
        runs[scheme] = [math.isclose(lr, step_sizes(b)[scheme]) for lr, b in zip(runs["lr"], runs["beta"])]
    ids, steps, active = trace_array(traces, "active_fraction", list(runs["run_id"]))
    active = pd.DataFrame({"run_id": np.repeat(ids, len(steps)), "step": np.tile(steps, len(ids)),
                           "active": active.reshape(-1)})
    kernel, linear = [], []
    for exp in declared.values():
        for seed in exp.sweep.seeds:
            row, lin = ntk_spectrum(exp, seed, np.asarray(steps))
            kernel.append(row)
            linear.append(lin)
    return {"runs": runs, "curves": curves, "active": active, "kernel": pd.DataFrame(kernel),
            "linear": pd.concat(linear, ignore_index=True)}


def ntk_spectrum(exp, seed: int, steps: np.ndarray) -> tuple[dict, pd.DataFrame]:
    """Eigenvalues of the NTK Gram matrix on m inputs drawn like exp's training sample, from
    parameters drawn like its initialisation (keys from `seed`, not the run's own), and the
    training loss ½·mean residual² of the linearised dynamics r_{t+1} = (I − η H/m) r_t at
    `steps` for both step sizes."""
    import jax
    import jax.numpy as jnp

    from sparselearn.learners import kernels

    target, learner, m = exp.target, exp.learner, exp.data.m
    beta = -learner.bias_init + 0.0                                     # no −0.0
    key = jax.random.key(seed)
    teacher = target.init(jax.random.fold_in(key, 0))
    x, y = target.sample(teacher, jax.random.fold_in(key, 1), m)
    params = learner.init_params(jax.random.fold_in(key, 2), target.n)
    jac = jax.jacrev(learner.apply)(params, x)
    flat = jnp.concatenate([leaf.reshape(m, -1) for leaf in jax.tree.leaves(jac)], axis=1)
    gram = np.asarray(flat @ flat.T, np.float64)
    u = x / math.sqrt(target.n)
    limit = np.asarray(kernels.bias_ntk(u, u, beta), np.float64)
    lam, vec = np.linalg.eigh(gram)
    lam_inf = np.linalg.eigvalsh(limit)
    coef = vec.T @ np.asarray(learner.apply(params, x) - y, np.float64)
    row = {"beta": beta, "seed": seed, "m": m, "width": learner.width, "kappa": kappa(beta),
           "lam_min": lam[0], "lam_max": lam[-1], "lam_min_inf": lam_inf[0], "lam_max_inf": lam_inf[-1],
           "active_init": float(jnp.mean(x @ params[0]["w"] / math.sqrt(target.n) + params[0]["b"] > 0))}
    lines = []
    for scheme, lr in step_sizes(beta).items():
        decay = np.clip(1.0 - lr * lam / m, -1.0, None) ** 2                # per-step factor of each mode
        loss = [0.5 * np.sum(coef ** 2 * decay ** t) / m for t in steps]
        lines.append(pd.DataFrame({"beta": beta, "seed": seed, "scheme": scheme, "lr": lr, "step": steps,
                                   "loss": loss}))
    return row, pd.concat(lines, ignore_index=True)


FLOOR = 1e-8  # losses below this are near float32 resolution and left out of rate fits
#: only used to draw (rate fits of the kept curves): left out of what the kept tables record
DRAWING_CONSTANTS = ("FLOOR",)


def rate(steps, loss) -> float:
    """−d log L/dt, a least-squares line through log L over the later half of the steps at which
    L is still above FLOOR (the late, linear phase; nan with fewer than 3 such points)."""
    steps, loss = np.asarray(steps, float), np.asarray(loss, float)
    above = np.isfinite(loss) & (loss > FLOOR)
    keep = above & (steps >= steps[above].max() / 2) if above.any() else above
    if keep.sum() < 3:
        return float("nan")
    return float(-np.polyfit(steps[keep], np.log(loss[keep]), 1)[0])


def rates(results) -> pd.DataFrame:
    """One row per (β, scheme, seed): the measured rate (training-loss curve of the stored run)
    and the predicted one (linearised dynamics on that seed's kernel draw)."""
    runs, curves, linear = results.runs, results.curves, results["linear"]
    rows = []
    for scheme in ("fixed", "scaled"):
        for _, run in runs[runs[scheme]].iterrows():
            curve = curves[curves["run_id"] == run["run_id"]].sort_values("step")
            pred = linear[(linear["beta"] == run["beta"]) & (linear["scheme"] == scheme)
                          & (linear["seed"] == run["seed"])].sort_values("step")
            rows.append({"beta": run["beta"], "scheme": scheme, "seed": run["seed"], "lr": run["lr"],
                         "measured": rate(curve["step"], curve["train_loss"]),
                         "predicted": rate(pred["step"], pred["loss"]) if len(pred) else float("nan")})
    return pd.DataFrame(rows)


def _median(frame: pd.DataFrame, by: str, column: str) -> pd.DataFrame:
    return frame.groupby(by)[column].quantile([0.25, 0.5, 0.75]).unstack()


def draw(results):
    runs, curves, active, kernel, linear = (results.runs, results.curves, results["active"], results["kernel"],
                                            results["linear"])
    betas = sorted(runs["beta"].unique())
    color = {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(betas)}
    fig, axes = panels(2, 3, 14, 7.6)
    (a, b, c), (d, e, f) = axes
    grid = np.linspace(0, max(betas), 100)

    scaled = active.merge(runs.loc[runs["scaled"], ["run_id", "beta", "seed"]], on="run_id")
    for beta, part in scaled.groupby("beta"):
        med = part.groupby("step")["active"].median()
        a.plot(med.index, med.values, color=color[beta], label=f"β = {beta:g}")
        a.axhline(phi_minus(beta), color=color[beta], ls="--", lw=0.8)
    a.set_yscale("log")
    a.set_xlabel("training step")
    a.set_ylabel("active fraction per input")
    a.set_title("(a) sparsity over training (scaled η); dashed Φ(−β)")
    a.set_ylim(bottom=min(phi_minus(b) for b in betas) / 3)   # room below the lowest Φ(−β) for the legend
    a.legend(frameon=False, fontsize=7, ncol=3, loc="lower right")

    with_beta = active.merge(runs[["run_id", "beta", "fixed", "scaled"]], on="run_id")
    first, last = with_beta["step"].min(), with_beta["step"].max()
    b.plot(grid, [phi_minus(g) for g in grid], color="0.3", lw=1, label="Φ(−β)")
    for (label, step, scheme, marker, shade) in (("init", first, "scaled", "o", PALETTE[0]),
                                                  ("end, scaled η", last, "scaled", "s", PALETTE[1]),
                                                  ("end, fixed η", last, "fixed", "^", PALETTE[3])):
        q = _median(with_beta[(with_beta["step"] == step) & with_beta[scheme]], "beta", "active")
        b.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt=marker, ms=5, capsize=2,
                   color=shade, label=label, alpha=0.85)
    b.set_yscale("log")
    b.set_xlabel("β (biases start at −β)")
    b.set_ylabel("active fraction per input")
    b.set_title("(b) active fraction vs β (median, IQR over seeds)")
    b.legend(frameon=False, fontsize=7)

    for ax, scheme in ((c, "scaled"), (d, "fixed")):
        merged = curves.merge(runs.loc[runs[scheme], ["run_id", "beta", "lr"]], on="run_id")
        for beta, part in merged.groupby("beta"):
            med = part.groupby("step")["train_loss"].median()
            ax.plot(med.index, med.values, color=color[beta], label=f"β = {beta:g}, η = {part['lr'].iloc[0]:.3g}")
            pred = linear[(linear["beta"] == beta) & (linear["scheme"] == scheme)].groupby("step")["loss"].median()
            ax.plot(pred.index, pred.values, color=color[beta], ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("training loss ½·mean (f − y)²")
        ax.legend(frameon=False, fontsize=6.5)
    c.set_title("(c) scaled η = 2/κ(β); dashed: linearised NTK")
    d.set_title("(d) fixed η = 2/κ(0); dashed: linearised NTK")

    table = rates(results)
    for scheme, shade in (("scaled", PALETTE[1]), ("fixed", PALETTE[3])):
        part = table[table["scheme"] == scheme]
        q = _median(part, "beta", "measured")
        e.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt="o-", ms=4, capsize=2,
                   color=shade, label=f"measured, {scheme} η")
        pred = part.groupby("beta")["predicted"].median()
        e.plot(pred.index, pred.values, "--", color=shade, label=f"linearised NTK, {scheme} η")
    e.set_yscale("log")
    e.set_xlabel("β")
    e.set_ylabel("rate −d log L/dt (late half, L > 1e-8)")
    e.set_title("(e) convergence rate at matched width")
    e.legend(frameon=False, fontsize=7)

    for column, label, shade, marker in (("lam_min", f"empirical, width {int(kernel['width'].iloc[0])}",
                                          PALETTE[0], "o"),
                                         ("lam_min_inf", "infinite width Θ_β", PALETTE[2], "s")):
        q = _median(kernel, "beta", column)
        f.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt=marker + "-", ms=4,
                   capsize=2, color=shade, label=f"λ_min, {label}")
        rel = _median(kernel.assign(rel=kernel[column] / kernel["kappa"]), "beta", "rel")
        f.plot(rel.index, rel[0.5], marker + ":", ms=3, color=shade, label=f"λ_min/κ(β), {label}")
    f.plot(grid, [kappa(g) for g in grid], color="0.5", lw=0.8, label="κ(β) = Θ_β(x, x)")
    f.set_yscale("log")
    f.set_xlabel("β")
    f.set_ylabel("eigenvalue; dotted: λ_min/κ")
    f.set_title(f"(f) NTK Gram on m = {int(kernel['m'].iloc[0])} inputs")
    f.legend(frameon=False, fontsize=6.5)

    r = runs.iloc[0]
    fig.suptitle(f"bias-induced sparsity: 2-layer ReLU net, NTK parametrisation, biases start at −β "
                 f"(n = {int(r['n'])}, m = {int(r['m'])}, width {int(r['width'])}, medians over seeds)",
                 fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    figures.main(__file__)
