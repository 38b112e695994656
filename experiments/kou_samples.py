"""Scaling study: the smallest number of fresh samples with which online sign SGD learns a k-sparse
parity exactly (100% test accuracy on ≥ 1 − δ of the seeds) vs the input dimension d, against the
Õ(d^(k−1)) of Kou, Chen, Gu, Kakade 2024.

Learner: the network of paper_figs/fig_kou_t3.py, f(x) = Σ_j a_j·⟨w_j, x⟩^k with a fixed ±1
readout, w_j ∈ {±1}^d at init, no biases, correlation loss, w ← (1 − ηλ)w − η·sign_ρ(g) with
η = 0.1, λ = 1, ρ = k!/2, a fresh batch every step — but with m = 2^(k+4) units instead of 2^(k+2)
(`WIDTH`; the k = 4 diagnosis of paper_figs/fig_kou_s.py: with 2^(k+2) units half of the k = 4
runs cannot be exact whatever the data).

Samples = steps × batch. The paper's batch is B(d) = d^(k−1)·ln d (`paper_batch`); for each d the
search (`search`) starts there and halves the batch while training still succeeds, then tries the
geometric midpoint of the last failing and first succeeding batch. At every tried batch
`sl.sample_complexity` over `train.steps` gives T*, the first evaluated step (every 2, at most
100) by which ≥ 1 − δ of the seeds have test error 0 on 4096 fresh inputs (`train.stop_at_eps`
with eps 0 stops each run there). The study's value is the smallest T*·B over the tried batches,
so the batch rule does not set the exponent by itself; T*·B(d) at the paper's batch is kept beside
it (`paper_samples`).

Run:   python experiments/kou_samples.py            full (see `FULL`); the figure keeps the table
       python experiments/kou_samples.py --smoke    seconds
Used by paper_figs/fig_kou_s.py (which keeps paper_figs/data/kou-s-samples.parquet, its measured
values, exponents and full-size time in its docstring) and `sparselearn figs exponents`.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

import sparselearn as sl
from sparselearn import figures, theory

TARGET, LEARNER = "sparse_parity", "polymlp"
X, Y, BY = "n", "samples", "k"

#: the full-size table, kept by paper_figs/fig_kou_s.py (read by `sparselearn figs exponents`)
KEPT_TABLE = Path(__file__).resolve().parents[1] / "paper_figs" / "data" / "kou-s-samples.parquet"

DELTA = 0.1                      # ≥ 9 of 10 seeds exact; 10 of 10 has a Clopper–Pearson interval
                                 # from 0.69, below 0.9, so no T* gets an upper bracket end (ci_high is
                                 # empty): the brackets widen the exponent's interval downwards only
WIDTH = 4                        # m = 2^(k + WIDTH) units

FULL = {"ds": {2: [10, 14, 20, 28, 40], 3: [10, 14, 20, 28, 40], 4: [10, 12, 14, 17, 20, 24, 28]}, "seeds": 10, "steps": 100,
        "every": 2, "test_m": 4096, "tries": 8}
SMOKE = {"ds": {2: [6, 8]}, "seeds": 2, "steps": 40, "every": 4, "test_m": 256, "tries": 1}


def paper_batch(k: int, d: int) -> int:
    """B(d) = ⌈d^(k−1)·ln d⌉, the batch of the paper's sample bound Õ(d^(k−1))."""
    return math.ceil(d ** (k - 1) * math.log(d))


def net(k: int, d: int, batch: int, smoke: bool = False, width: int | None = None, rho: float | None = None,
        weight_decay: float = 1.0, seeds: int | None = None, name: str = "kou_samples") -> sl.config.Experiment:
    """Sign SGD on the k-sparse parity of d bits with `width` (default 2^(k+WIDTH)) units of power k."""
    size = SMOKE if smoke else FULL
    return figures.config({
        "experiment": f"{name}{'_smoke' if smoke else ''}_k{k}_d{d}",
        "target": {"name": "sparse_parity", "n": d, "k": k},
        "learner": {"name": "polymlp", "hidden": [width or 2 ** (k + WIDTH)], "power": k, "readout": "fixed",
                    "init": "sign", "scale": 1.0, "bias": False},
        "train": {"optimizer": "sign-sgd", "lr": 0.1, "batch": batch, "steps": size["steps"], "loss": "correlation",
                  "weight_decay": weight_decay, "sign_threshold": math.factorial(k) / 2 if rho is None else rho,
                  "eval_every": size["every"], "eps": 0.0, "stop_at_eps": True},
        "data": {"online": True, "test_m": size["test_m"]},
        "sweep": {"seeds": seeds or size["seeds"]}})


def experiments(smoke: bool) -> list[sl.config.Experiment]:
    """One config per (k, d) at the paper's batch (the search varies the batch and the steps)."""
    size = SMOKE if smoke else FULL
    return [net(k, d, paper_batch(k, d), smoke) for k, ds in size["ds"].items() for d in ds]


def _steps_to_exact(exp, store: str) -> dict:
    """T* of one config: the search over train.steps at its batch, as a row."""
    res = sl.sample_complexity(exp, eps=0.0, delta=DELTA, param="train.steps", out=store, progress=False,
                               max_value=exp.train.steps)
    row = res.table().iloc[0]
    nan = float("nan")
    return {"k": exp.target.k, "n": exp.target.n, "batch": exp.train.batch, "paper_batch": paper_batch(exp.target.k, exp.target.n),
            "steps": nan if row["censored"] else float(row["estimate"]),
            "steps_low": nan if pd.isna(row["ci_low"]) else float(row["ci_low"]),
            "steps_high": nan if pd.isna(row["ci_high"]) else float(row["ci_high"]),
            "success_rate": nan if pd.isna(row["success_rate"]) else float(row["success_rate"]),
            "seeds": int(row["seeds"]), "censored": bool(row["censored"])}


def search(k: int, d: int, smoke: bool = False, store: str = "results") -> pd.DataFrame:
    """Every tried batch of (k, d), one row each: batch, T* (`steps`, NaN when censored at the
    step cap), its Clopper–Pearson bracket steps_low/steps_high, samples = steps·batch.

    From the paper's batch: halve while T* exists, double (up to 4×) while it does not, then one
    geometric midpoint between the last failing and the first succeeding batch; at most
    `tries` trainings."""
    size = SMOKE if smoke else FULL
    tried: dict[int, dict] = {}

    def ok(b):
        return not tried[b]["censored"]

    b = paper_batch(k, d)
    while len(tried) < size["tries"]:
        tried[b] = _steps_to_exact(net(k, d, b, smoke), store)
        good = sorted(v for v in tried if ok(v))
        bad = [v for v in tried if not ok(v) and (not good or v < good[0])]
        if not good:
            b = 2 * max(tried) if max(tried) < 4 * paper_batch(k, d) else None
        elif not bad:
            b = good[0] // 2 if good[0] // 2 >= 2 else None
        else:
            lo, hi = max(bad), good[0]
            mid = round(math.sqrt(lo * hi))
            b = mid if hi / lo > 1.5 and mid not in tried else None
        if b is None:
            break
    rows = pd.DataFrame(list(tried.values())).sort_values("batch", ignore_index=True)
    rows["samples"] = rows["steps"] * rows["batch"]
    return rows


def search_all(smoke: bool = False, store: str = "results") -> pd.DataFrame:
    """`search` for every (k, d) of the size, concatenated."""
    size = SMOKE if smoke else FULL
    return pd.concat([search(k, d, smoke, str(store)) for k, ds in size["ds"].items() for d in ds], ignore_index=True)


def summarise(tried: pd.DataFrame) -> pd.DataFrame:
    """One row per (k, n): samples = the smallest T*·B over the tried batches (NaN when none
    succeeded), its batch and steps, the bracket ci_low/ci_high (B times the T* bracket), the
    smallest succeeding batch, and T*·B at the paper's batch (`paper_samples`)."""
    rows = []
    for (k, n), part in tried.groupby(["k", "n"], sort=True):
        ok = part[~part["censored"]]
        best = ok.loc[ok["samples"].idxmin()] if len(ok) else None
        paper = part[part["batch"] == part["paper_batch"]]
        nan = float("nan")
        rows.append({"k": int(k), "n": int(n), "samples": best["samples"] if best is not None else nan,
                     "batch": best["batch"] if best is not None else nan,
                     "steps": best["steps"] if best is not None else nan,
                     "ci_low": best["batch"] * best["steps_low"] if best is not None else nan,
                     "ci_high": best["batch"] * best["steps_high"] if best is not None else nan,
                     "smallest_batch": ok["batch"].min() if len(ok) else nan,
                     "paper_batch": int(part["paper_batch"].iloc[0]),
                     "paper_samples": float(paper["samples"].iloc[0]) if len(paper) else nan,
                     "tried": len(part), "censored": best is None})
    return pd.DataFrame(rows)


def measure(smoke: bool = False, store: str = "results") -> pd.DataFrame:
    """One row per (k, d): see `summarise`."""
    return summarise(search_all(smoke, store))


def theory_exponent(k) -> tuple[float, str]:
    """The exponent of d in KCGK's Õ(d^(k−1)) samples, read off `theory.parity_sgd_samples`."""
    d = np.array([10.0, 40.0])
    _, alpha = theory.fit_power_law(d, theory.parity_sgd_samples(d, int(k)))
    return alpha, "KCGK Thm: Õ(d^(k-1)) samples for sign SGD, 2^Θ(k) units"


# ------------------------------------------------------------------ the k = 4 diagnosis
def good_units(a: np.ndarray, w_support: np.ndarray) -> np.ndarray:
    """Which units keep their feature weights: a_j·Π_{i∈S} w_ji⁽⁰⁾ = +1. The population gradient
    of the correlation loss moves feature weight i of unit j by sign(a_j·Π_{S∖i} w_j), which grows
    |w_ji| exactly when that product is +1; the other units decay to 0.
    a: (..., m) readout signs; w_support: (..., k, m) initial weights on S. Returns (..., m) bool."""
    return a * np.prod(w_support, axis=-2) > 0


def exact_after_training(a: np.ndarray, w_support: np.ndarray, power: int) -> np.ndarray:
    """Whether the network the good units leave behind, f(x) = Σ_good a_j ⟨w_j,S, x_S⟩^power
    (noise weights 0, feature weights at their initial ±1), has sign χ_S on all 2^k inputs.
    a: (..., m); w_support: (..., k, m). Returns (...) bool.

    Example: one good unit, (x1 + x2)² = 2 + 2·x1·x2, is 0 where x1 ≠ x2, so it is not exact:
    exact_after_training(np.array([1.0]), np.array([[1.0], [1.0]]), 2) → False.
    """
    k = w_support.shape[-2]
    xs = np.array(list(itertools.product([-1.0, 1.0], repeat=k)))                 # (2^k, k)
    keep = np.where(good_units(a, w_support), a, 0.0)
    f = np.einsum("...pm,...m->...p", np.einsum("pk,...km->...pm", xs, w_support) ** power, keep)
    return np.all(np.sign(f) == np.prod(xs, axis=1), axis=-1)


def coverage_failure(k: int, width: int, balanced: bool, trials: int = 20000, seed: int = 0) -> float:
    """Monte Carlo probability over initialisations that `exact_after_training` fails: random ±1
    readout, or `balanced` (exactly half +1). Independent of d."""
    rng = np.random.default_rng(seed)
    w = rng.choice([-1.0, 1.0], size=(trials, k, width))
    if balanced:
        a = rng.permuted(np.tile(np.repeat([1.0, -1.0], [width - width // 2, width // 2]), (trials, 1)), axis=1)
    else:
        a = rng.choice([-1.0, 1.0], size=(trials, width))
    return float(1.0 - exact_after_training(a, w, k).mean())


def initial_support_weights(exp, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a (m,), w on S (k, m)) of run `seed` of `exp` at initialisation, drawn from the same keys
    as the training loop (`instance_keys`)."""
    from sparselearn.train.loop import instance_keys

    keys = instance_keys(seed, seed if exp.train.init_seed is None else exp.train.init_seed)
    support = np.asarray(exp.target.init(keys["teacher"])["support"])
    params = exp.learner.init_params(keys["init"], exp.target.n)
    return np.asarray(params["readout"]["a"]), np.asarray(params["layers"][0]["w"])[support]


if __name__ == "__main__":
    figures.study_main(__file__)
