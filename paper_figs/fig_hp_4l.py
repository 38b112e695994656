"""HP-4L/14: steps to convergence t_c vs width r, box plots over seeds — no r-fold speedup.

Barak et al. 2022, Fig. 4 left / Fig. 14: online SGD on the (40, 3) parity, 2-layer ReLU MLPs
of width r, hinge loss, batch 32, lr 0.1; t_c = first evaluation (every 100 steps) with 100%
accuracy on 8192 fresh points; widths r < k = 3 count as converged at 55% accuracy (hatched
boxes). Configs and the t_c table come from `experiments/width_tc.py` (also the exponent
table's `width_tc` rows). Left: t_c of the converged runs per width (log-log box plots; a
width where some runs did not converge within its step cap is marked converged/runs), the
median with unconverged runs counted as +∞ (drawn where more than half converged), the fitted
exponent over those widths r ≥ k, and the r-fold speedup t_c ∝ 1/r anchored at the first of
them (dashed). Middle: the spread of log10 t_c per width (interquartile range with unconverged
runs counted as +∞: drawn where at least 3/4 converged, so not at r = 3). Right: r = k = 3 over a learning-rate sweep — the share of 50 seeds per η reaching
100% within 10⁵ steps (the paper's budget) and within 3×10⁴ (the width panel's cap at r = 3),
with 95% Clopper–Pearson intervals, against the ≥ 20% that Barak et al.'s coverage sweep finds
for some η in every cell (their grid: n ≤ 30, η ∈ {10⁻³, …, 1}; (40, 3) at r = k is outside
it); black: the sweep's best η again on fresh seeds. The sweep is one compiled group (the lr is
a vmapped run value); both are kept in paper_figs/data/hp-4l-lr.parquet. Expected: diminishing
returns, no r× speedup, lower variance at large r.

Full size: `sparselearn figs HP-4L` — r ∈ {1, 2, 3, 10, 100, 1000} with 50 seeds (30 at
r = 1000), step caps 3×10⁴ (r ≤ 10), 10⁴ (r = 100), 5000 (r = 1000), and r = 10⁴ with
10 seeds and a 3000-step cap (the paper: 1000 runs per width, widths up to 3×10⁶); 290 runs,
23.5 min wall on a 2-core AMD EPYC (Zen 4) CPU, jax 0.10.2, shared with other jobs (load
average 14–17; the runs' own shares of wall time add up to 23 min, r = 10⁴ alone ≈ 7 min);
table kept in paper_figs/data/hp-4l*.parquet.
Measured (median t_c [IQR], converged/runs): r = 1 (55%): 11.8k [5.2k, 18.1k], 50/50;
r = 2 (55%): 6.2k [2.9k, 14.1k], 50/50; r = 3: 6/50 reach 100% within 3×10⁴ (at 6.6k–18.4k;
most others stop at 12.5% error, 7 of the 8 sign patterns of the relevant bits); r = 10:
6.75k [5.9k, 8.2k]; r = 100: 2.3k [2.1k, 2.6k]; r = 1000: 800 [800, 900] (30/30); r = 10⁴:
700 for all 10. From r = 10 to 10⁴ (1000× the units) t_c falls 9.6×, and
only 1.14× from 10³ to 10⁴ (one evaluation step of 100: the grid's resolution there): diminishing returns, no r× speedup. Fit of median t_c ∝ r^α over
r ∈ {10, …, 10⁴}: α = −0.34 [−0.35, −0.33] (95% bootstrap; −0.26 [−0.28, −0.25] over r ≥ 100),
far from the −1 of an r-fold speedup. The spread shrinks with width: the IQR of log10 t_c is
0.14, 0.09, 0.05, 0.00 at r = 10, 10², 10³, 10⁴ (0.54 and 0.69 at r = 1, 2). A reference
measurement at (50, 3), 5 seeds checked every 100 steps (r = 1000: 1.1–1.3k; r = 100: 2.3–4.6k;
r = 10: 4.4–18.6k), is consistent with these (40, 3) values.
Learning-rate sweep at r = k = 3 (η ∈ {0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5}, 50 seeds each,
10⁵ steps; 400 runs in one group, trained with the widths when the kept tables are deleted):
1456 s wall on one core (`taskset -c 1`) of a 2-core Intel Xeon, jax 0.10.2, shared with another
job pinned to the same core (about 45% of it ours).
Reached 100% within 10⁵ steps (95% Clopper–Pearson): η = 0.02: 6/50 [5%, 24%]; 0.05: 14/50
= 28% [16%, 42%]; 0.1: 8/50 [7%, 29%]; 0.2: 6/50; 0.5: 7/50 [6%, 27%]; 1: 4/50; 2: 5/50; 5: 0/50.
Within 3×10⁴ steps no η reaches 20% (at most 7/50 = 14% [6%, 27%], η = 0.5; η = 0.1 gives the
width panel's 6/50). The best of eight estimates is biased upwards, so η = 0.05 was run again on
100 fresh seeds (50–149; 360 s wall, same core): 16/100 = 16% [9%, 25%] within 10⁵ steps (7/100
within 3×10⁴); all 150 seeds at η = 0.05 give 30/150 = 20% [14%, 27%]. So no learning rate of
the grid is shown to reach the paper's ≥ 20% at (40, 3), r = k, B = 32 within 10⁵ steps: the
best one sits at about 16–20%, its interval covering 20%. Two regimes: at η ≥ 0.2 a run
converges early (by 18k steps; all by 3.1k at η = 0.5 and 1.7k at η = 1) or never, most of the
others stuck at 12.5% error (7 of the 8 sign patterns of the relevant bits right); at η ≤ 0.1 runs
keep converging up to the cap (η = 0.05: 2.8k … 81k), so a longer budget would raise the small
rates' shares; η = 5 is too large (errors 25–50%).
Smoke: `sparselearn figs HP-4L --smoke` (seconds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sparselearn import figures
from sparselearn.plotting import fit_exponent
from sparselearn.plotting.style import PALETTE, panels
from sparselearn.sweeps.search import clopper_pearson

ID = "HP-4L"
width_tc = figures.study("width_tc", near=__file__)

#: the learning-rate sweep at r = k: one compiled group (lr is a vmapped run value), the paper's
#: budget of 10⁵ steps; Barak et al. find ≥ 20% of runs reaching 100% for some η in every cell
LR_SWEEP = {"lrs": [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0], "steps": 100_000, "seeds": 50}
LR_SMOKE = {"lrs": [0.03, 0.1, 0.3, 1.0, 3.0], "steps": 200, "seeds": 3}
#: the sweep's best η run again on fresh seeds: the best of eight estimates is biased upwards
LR_CONFIRM = {"lr": 0.05, "seeds": list(range(50, 150))}
LR_CONFIRM_SMOKE = {"lr": 1.0, "seeds": [3, 4, 5]}
PAPER_SHARE = 0.2
#: only drawn: left out of what the kept tables record (`figures.made_from`)
DRAWING_CONSTANTS = ("PAPER_SHARE",)


def lr_experiment(smoke: bool):
    """Width r = k, a grid over train.lr, 100% accuracy as the criterion."""
    sweep = LR_SMOKE if smoke else LR_SWEEP
    base = width_tc.FULL
    k = base["target"]["k"]
    train = {"steps": sweep["steps"], "eps": 0.0}
    if smoke:
        base = figures.config(base, **width_tc.SMOKE)
        k = base.target.k
        train.update(batch=16, eval_every=20)
    return figures.config(base, experiment="hp_4l_lr" + ("_smoke" if smoke else ""), learner={"width": k},
                          train=train, sweep={"seeds": sweep["seeds"], "grid": {"train.lr": sweep["lrs"]}})


def confirm_experiment(smoke: bool):
    """The sweep's config at its best η alone, on seeds the sweep did not use."""
    confirm = LR_CONFIRM_SMOKE if smoke else LR_CONFIRM
    sweep = lr_experiment(smoke)
    return figures.config(sweep, experiment=f"{sweep.experiment}_confirm", train={"lr": confirm["lr"]},
                          sweep={"seeds": confirm["seeds"], "grid": {}})


def experiments(smoke: bool):
    """The width study's configs (`width_tc`), then the learning-rate sweep at r = k and its
    confirmation on fresh seeds."""
    return [*width_tc.experiments(smoke), lr_experiment(smoke), confirm_experiment(smoke)]


def measure(smoke: bool, store: str) -> dict[str, pd.DataFrame]:
    """The width runs and their curves, and `lr`: one row per run of the learning-rate sweep
    and of its confirmation (`lr_table`)."""
    runs, curves = figures.sweep(width_tc.experiments(smoke), store)
    lr_runs, _ = figures.sweep([lr_experiment(smoke), confirm_experiment(smoke)], store)
    return {"runs": runs, "curves": curves, "lr": lr_table(lr_runs)}


def lr_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run of the learning-rate sweep: part (sweep, or confirm: the fresh seeds), lr,
    seed, width, k, cap (its step cap), status and t_c (NaN when it did not reach 100% accuracy;
    a diverged run counts as not reaching)."""
    done = runs[runs["status"].isin(["ok", "diverged"])]
    part = done["experiment"].str.endswith("_confirm").map({True: "confirm", False: "sweep"})
    return pd.DataFrame({"part": part, "lr": done["lr"].astype(float).round(6), "seed": done["seed"].astype(int),
                         "width": done["width"].astype(int), "k": done["k"].astype(int),
                         "cap": done["steps"].astype(int), "status": done["status"].astype(str),
                         "t_c": done["steps_to_eps"].astype(float)}).reset_index(drop=True)


def lr_success(table: pd.DataFrame, within: int | None = None) -> pd.DataFrame:
    """Per lr: runs, reached (t_c ≤ `within`, default: the step cap), share and its 95%
    Clopper–Pearson interval."""
    within = within or int(table["cap"].max())
    rows = []
    for lr, part in table.groupby("lr"):
        hits = int((part["t_c"] <= within).sum())
        lo, hi = clopper_pearson(hits, len(part))
        rows.append({"lr": lr, "runs": len(part), "reached": hits, "share": hits / len(part), "ci_low": lo,
                     "ci_high": hi, "within": within})
    return pd.DataFrame(rows)


def draw(results):
    table = width_tc.tc_table(results.runs)
    widths = sorted(table["width"].unique())
    reached = table.dropna(subset=["t_c"])
    fig, (ax, ax2, ax3) = panels(1, 3, 14.5, 3.9, gridspec_kw={"width_ratios": [1.9, 1.3, 1.3]})
    data = [reached.loc[reached["width"] == r, "t_c"].to_numpy() for r in widths]
    pos = np.log10(widths)
    gaps = np.diff(pos)   # each box 0.7 of the way to its nearest neighbour (r = 2 and 3 are 0.18 apart)
    near = np.minimum(np.append(gaps, np.inf), np.insert(gaps, 0, np.inf)) if len(pos) > 1 else np.array([np.inf])
    boxes = ax.boxplot([d if d.size else [np.nan] for d in data], positions=pos, widths=np.minimum(0.25, 0.7 * near),
                       patch_artist=True, showfliers=True, flierprops={"markersize": 2})
    for r, patch in zip(widths, boxes["boxes"]):
        narrow = table.loc[table["width"] == r, "accuracy"].iloc[0] < 1.0
        patch.set(facecolor=PALETTE[1] if narrow else PALETTE[0], alpha=0.5, hatch="//" if narrow else None)
    # the median with unconverged runs counted as +inf: finite where more than half converged
    med = [np.median(np.append(d, np.full((table["width"] == r).sum() - d.size, np.inf))) for r, d in zip(widths, data)]
    med = [m if np.isfinite(m) else np.nan for m in med]
    ax.plot(pos, med, "k.-", lw=1, label="median (where > half converged)")
    wide = [i for i, r in enumerate(widths) if r >= table["k"].iloc[0] and np.isfinite(med[i])]
    if wide:
        i0 = wide[0]
        ax.plot(pos[i0:], med[i0] * widths[i0] / np.asarray(widths[i0:], float), "--", color=PALETTE[3],
                label="r-fold speedup: t_c ∝ 1/r")
    for p, r in zip(pos, widths):
        part = table[table["width"] == r]
        missed = int(part["t_c"].isna().sum())
        if missed:
            ax.text(p, 0.98, f"{len(part) - missed}/{len(part)}\nconverged", ha="center", va="top", fontsize=7,
                    transform=ax.get_xaxis_transform())
    try:
        fit = fit_wide(table)
        ax.plot([], [], " ", label=f"fit (r ≥ k, > half converged): t_c ∝ r^α,\n{fit.label()}")
    except ValueError:  # too few widths or converged runs to fit
        pass
    ax.set_yscale("log")
    if table["t_c"].isna().any():   # room for the "converged" notes above the whiskers
        ax.set_ylim(top=ax.get_ylim()[1] * 5)
    ax.set_xticks(pos, [f"{r:g}" for r in widths])
    ax.set_xlabel("width r")
    ax.set_ylabel("t_c (steps)")
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    k = int(table["k"].iloc[0])
    ax.set_title(f"t_c per width, {len(table)} runs (hatched: r < k, 55% accuracy)\n"
                 "every run converged within its cap unless marked", fontsize=9)

    # unconverged runs count as +inf here too: the IQR is finite where at least 3/4 converged
    runs = [int((table["width"] == r).sum()) for r in widths]
    iqr = [iqr_log10(d, c) for d, c in zip(data, runs)]
    ax2.plot(pos, iqr, "o-", color=PALETTE[2])
    for p, d, c, q in zip(pos, data, runs, iqr):
        if not np.isfinite(q):
            ax2.text(p, 0.02, f"{d.size}/{c}\nconverged", ha="center", va="bottom", fontsize=7,
                     transform=ax2.get_xaxis_transform())
    ax2.set_xticks(pos, [f"{r:g}" for r in widths])
    ax2.set_xlabel("width r")
    ax2.set_ylabel("IQR of log10 t_c")
    ax2.set_ylim(bottom=0)
    ax2.set_title("spread across seeds (unconverged as +∞;\ndrawn where ≥ 3/4 converged)", fontsize=9)
    lr_panel(ax3, results["lr"], cap=int(table.loc[table["width"] == k, "cap"].max()) if k in widths else None)
    fig.suptitle(f"HP-4L/14: online SGD on a sparse parity (k = {k}), t_c vs width; r = k over learning rates",
                 fontsize=10)
    fig.tight_layout()
    return fig


def iqr_log10(reached: np.ndarray, runs: int) -> float:
    """Interquartile range of log10 t_c over `runs` runs, of which those not in `reached` never
    converged (+∞): NaN unless at least 3/4 converged."""
    if runs < 3 or reached.size < 0.75 * runs:
        return np.nan
    logs = np.sort(np.append(np.log10(reached), np.full(runs - reached.size, np.inf)))
    q1, q3 = np.quantile(np.where(np.isfinite(logs), logs, np.finfo(float).max), [0.25, 0.75])
    return float(q3 - q1) if q3 <= np.log10(reached.max()) else np.nan


def lr_panel(ax, lrs: pd.DataFrame, cap: int | None) -> None:
    """Share of the r = k runs reaching 100% accuracy per lr, with 95% Clopper–Pearson bars:
    within the sweep's step cap, and within `cap` (the width panel's cap at r = k) when smaller."""
    caps = sorted({int(lrs["cap"].max()), *([cap] if cap and cap < lrs["cap"].max() else [])}, reverse=True)
    confirm, lrs = lrs[lrs["part"] == "confirm"], lrs[lrs["part"] == "sweep"]
    for i, within in enumerate(caps):
        ok = lr_success(lrs, within)
        shift = 1.0 + 0.06 * (i - (len(caps) - 1) / 2)
        ax.errorbar(ok["lr"] * shift, ok["share"], yerr=[ok["share"] - ok["ci_low"], ok["ci_high"] - ok["share"]],
                    fmt="o" if i == 0 else "s", mfc=PALETTE[i] if i == 0 else "white", color=PALETTE[i], ms=4,
                    capsize=2, lw=1, label=f"within {within:,} steps")
    if len(confirm):
        ok = lr_success(confirm, caps[0])
        ax.errorbar(ok["lr"] * 1.15, ok["share"], yerr=[ok["share"] - ok["ci_low"], ok["ci_high"] - ok["share"]],
                    fmt="D", color="k", ms=4, capsize=2, lw=1,
                    label=f"{len(confirm)} fresh seeds at η = {ok['lr'].iloc[0]:g}, within {caps[0]:,}")
    ax.axhline(PAPER_SHARE, ls="--", color="0.4", lw=1, label=f"{PAPER_SHARE:.0%}: Barak et al.'s bar (some η)")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("share of runs reaching 100%")
    k, seeds = int(lrs["k"].iloc[0]), int(lrs.groupby("lr").size().min())
    ax.set_title(f"r = k = {k}: learning-rate sweep, {seeds} seeds per η\n(bars: 95% Clopper–Pearson)", fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="upper left")


def fit_wide(table: pd.DataFrame):
    """Power-law fit of median t_c vs r over the widths r ≥ k (100% accuracy) where more than
    half the runs converged (the `width_tc` rows of the exponent table)."""
    part = width_tc.measured_widths(table[table["accuracy"] == 1.0])
    return fit_exponent(part["width"], part["t_c"])   # a NaN (never converged) counts as +inf


if __name__ == "__main__":
    figures.main(__file__)
