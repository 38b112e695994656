"""Scaling study: the sparse-activation separation in samples. m* of low-degree regression (this
file), NTK ridge (adkm_s2_ntk.py) and a trained 2-layer ReLU net (adkm_s2_mlp.py) on sparse juntas
against the dense parity net of the same s and n.

m* = the smallest m with test MSE ≤ EPS (a tenth of the label variance, which is 1) for at least
1 − DELTA = 2/3 of the seeds, found by `sl.sample_complexity` (doubling, then bisection on log m
to a factor 1.25); 10 seeds, so a point where every seed succeeds has a Clopper–Pearson interval
above 2/3 and its bracket an upper end. A search that fails at the budget (`max_m` of the arm) is
censored: m_star NaN, `censored` true, `budget` the last m tried.

Teachers (`sparse_mlp`, unit output variance; the teacher is drawn per seed):
- junta k (ADKM member (a)): k groups of s/k units, each a random ±1 function of log₂(s/k) bits;
  certified k-sparse on every input, Fourier degree ≤ log₂(s/k);
- dense parity (construction `parity`): the parity of p = min(n, s − 1) bits as p + 1 ramps,
  about half of its units active on a typical input, Fourier degree p.

Series (BY): "<teacher>, vs s (n=12)" at k = 1 and "<teacher>, vs n (s=4)" at k = 2 (a
junta with s/k = 2 units per group is linear in k bits), against the dense parity net at the same
s and n. Theory: the sparse rows against ADKM Thm 17, Õ(k·s·n/ε²) (exponent 1 in s and in n at
fixed WR + B, read off `theory.sample_complexity_sparse`, see `thm17`); the dense rows against the parity lower bound of the arm's
kind of learner: for the fitted ones (low-degree, NTK) the N_p(n) = Σ_{j≤p} C(n, j) characters of
degree ≤ p among which the parity hides (≥ C(n, p), the parity's SQ dimension; ~ n^p/p! for
n ≫ p, and 2ⁿ once p = n), for SGD the n^(p−1) samples of `theory.parity_sgd_samples`; the
exponent is the log-log slope of the bound over the series' declared range.

The low-degree learner fits the Walsh characters of degree ≤ the degree the teacher needs
(log₂(s/k) for a junta, p for the parity), ridge 10⁻⁴.

Run:   python experiments/adkm_s2.py            full size (low-degree 15 min, all three arms 24 min: see fig_adkm_s2.py)
       python experiments/adkm_s2.py --smoke    seconds
Used by paper_figs/fig_adkm_s2.py and `sparselearn figs exponents`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

import sparselearn as sl
from sparselearn import figures, theory
from sparselearn.errors import ConfigError
from sparselearn.targets.sparse_mlp import SparseMLP

TARGET, LEARNER = "sparse_mlp", "lowdegree"
X, Y, BY = "size", "m_star", "series"

EPS, DELTA = 0.1, 1 / 3         # test MSE ≤ 0.1 on ≥ 2/3 of the seeds
RTOL = 0.25                     # the search stops when the bracket is within a factor 1.25
DATA = Path(__file__).resolve().parents[1] / "paper_figs" / "data"

#: teacher label → (construction, k); k None means k = s (no sparsity promise)
TEACHERS = {"junta k=1": ("junta", 1), "junta k=2": ("junta", 2), "dense parity": ("parity", None)}

#: sweep → (grown quantity, fixed quantity, teacher label → grown values); one size per mode
FULL = {"vs s": ("s", ("n", 12), {"junta k=1": [4, 8, 16, 32, 64, 128], "dense parity": [3, 4, 5, 6, 8, 16]}),
        "vs n": ("n", ("s", 4), {"junta k=2": [8, 12, 16, 24, 32], "dense parity": [8, 12, 16, 24]})}
SMOKE = {"vs s": ("s", ("n", 6), {"junta k=1": [4], "dense parity": [4]}),
         "vs n": ("n", ("s", 4), {"junta k=2": [6], "dense parity": [6]})}

#: arm → learner section, train section, seeds, budget (max m), sweeps (FULL unless given) and the
#: smoke overrides
ARMS = {
    "lowdegree": {"learner": {"name": "lowdegree", "basis": "walsh", "ridge": 1e-4}, "train": {"loss": "square"},
                  "seeds": 10, "max_m": 8192, "smoke": {"seeds": 2, "max_m": 256, "rounds": 1}},
    # ridge 10⁻⁶: at 10⁻⁴ the NTK's degree-4 eigenvalues at n = 12 sit below the ridge and a 4-bit
    # junta reaches test MSE 0.03–0.15 over the 10 seeds with m = 2048, about half above ε = 0.1
    # (0.01–0.06 at 10⁻⁶); 4096 rows keep the 10 vmapped
    # Cholesky solves within memory and time
    "ntk": {"learner": {"name": "kernel", "kernel": "ntk", "ridge": 1e-6, "bias": 1.0}, "train": {"loss": "square"},
            "seeds": 10, "max_m": 4096,
            "sweeps": {"vs s": ("s", ("n", 12), {"junta k=1": [4, 8, 16, 32, 64, 128], "dense parity": [3, 4, 5, 6]}),
                       "vs n": ("n", ("s", 4), {"junta k=2": [8, 12, 16, 24, 32], "dense parity": [8, 12, 16, 24]})},
            "smoke": {"seeds": 2, "max_m": 128, "rounds": 1}},
    "mlp": {"learner": {"name": "mlp", "width": 256, "depth": 2, "activation": "relu", "init": "standard"},
            "train": {"optimizer": "adam", "lr": 0.003, "batch": 64, "steps": 2000, "loss": "square",
                      "eval_every": 250, "stop_at_eps": True},
            "seeds": 10, "max_m": 8192,          # the search's floor is the batch, m ≥ 64
            "sweeps": {"vs s": ("s", ("n", 12), {"junta k=1": FULL["vs s"][2]["junta k=1"],
                                                 "dense parity": [3, 4, 5, 6, 8]}),
                       "vs n": FULL["vs n"]},
            "smoke": {"seeds": 2, "max_m": 128, "rounds": 1, "sweeps": {"vs s": ("s", ("n", 6), {"junta k=1": [4],
                      "dense parity": [3]})}, "train": {"steps": 100, "eval_every": 50, "batch": 16}}},
}


def sweeps(arm: str, smoke: bool) -> dict:
    """The sweeps of an arm: SMOKE, or FULL unless the arm declares fewer points."""
    return ARMS[arm]["smoke"].get("sweeps", SMOKE) if smoke else ARMS[arm].get("sweeps", FULL)


def teacher_degree(construction: str, n: int, s: int, k: int) -> int:
    """The Fourier degree of a `sparse_mlp` teacher, read off its layout: the junta's address bits
    ⌊log₂(s/k)⌋ (at most n), the parity's p = min(n, s − 1)."""
    return SparseMLP(n=n, s=s, k=k, construction=construction).layout.bits


def points(arm: str, smoke: bool) -> list[dict]:
    """One dict per (series, grown value): series label, teacher, construction, n, s, k, size and
    the degree the teacher needs (`teacher_degree`: ⌊log₂(s/k)⌋ ≤ n for a junta, p = min(n, s − 1)
    for the parity)."""
    out = []
    for sweep, (grown, (fixed, value), teachers) in sweeps(arm, smoke).items():
        for teacher, values in teachers.items():
            construction, k = TEACHERS[teacher]
            for v in values:
                n, s = (v, value) if grown == "n" else (value, v)
                degree = teacher_degree(construction, n, s, k or s)
                out.append({"series": f"{teacher}, {sweep} ({fixed}={value})", "teacher": teacher,
                            "construction": construction, "n": n, "s": s, "k": k or s, "size": v,
                            "degree": degree})
    return out


def _settings(arm: str, smoke: bool) -> dict:
    spec = ARMS[arm]
    small = spec["smoke"] if smoke else {}
    return {"learner": spec["learner"], "train": {**spec["train"], **small.get("train", {})},
            "seeds": small.get("seeds", spec["seeds"]), "max_m": small.get("max_m", spec["max_m"]),
            "rounds": small.get("rounds", 40)}


def start(arm: str, point: dict) -> int:
    """The first m tried, near where the search ends so that it needs few doublings: the
    number N_d of characters of the teacher's degree for low-degree regression, 2·N_d for NTK
    ridge (at most its budget), 512 for the net. It changes the values tried, and so where m*
    lands within its bracket (a factor 1 + RTOL), not the bracket's scale."""
    if arm == "mlp":
        return 512
    features = int(theory.num_features(point["n"], point["degree"]))
    return max(16, features if arm == "lowdegree" else min(2 * features, ARMS[arm]["max_m"]))


def arm_experiments(arm: str, smoke: bool) -> dict[str, sl.config.Experiment]:
    """'<series> | <size>' → the config of that teacher and learner (m set by the search)."""
    cfg = _settings(arm, smoke)
    exps = {}
    for p in points(arm, smoke):
        learner = dict(cfg["learner"], **({"degree": p["degree"]} if arm == "lowdegree" else {}))
        name = f"adkm_s2_{arm}{'_smoke' if smoke else ''}_{p['construction']}_k{p['k']}_n{p['n']}_s{p['s']}"
        exps[f"{p['series']} | {p['size']}"] = figures.config({
            "experiment": name,
            "target": {"name": "sparse_mlp", "n": p["n"], "s": p["s"], "k": p["k"], "construction": p["construction"]},
            "learner": learner, "train": {**cfg["train"], "eps": EPS},
            "data": {"m": start(arm, p), "test_m": 256 if smoke else 2048},
            "sweep": {"seeds": cfg["seeds"]}})
    return exps


def arm_measure(arm: str, smoke: bool = False, store: str = "results") -> pd.DataFrame:
    """One row per point: series, teacher, size (the grown s or n), n, s, k, degree, m_star (NaN
    when censored or at the floor), its Clopper–Pearson bracket ci_low/ci_high, censored, floor
    (learned at the smallest m the search may try: m* ≤ m_upper, left out of the fit), budget (the
    largest m tried), seeds, learner (the arm)."""
    cfg = _settings(arm, smoke)
    exps = arm_experiments(arm, smoke)
    rows = []
    for p, exp in zip(points(arm, smoke), exps.values()):
        res = sl.sample_complexity(exp, eps=EPS, delta=DELTA, out=str(store), start=start(arm, p),
                                   max_value=cfg["max_m"], rtol=RTOL, progress=False, max_rounds=cfg["rounds"])
        est, table = res.estimates().iloc[0], res.table().iloc[0]
        floor = bool(est["floored"])
        rows.append({**p, "m_star": np.nan if floor else est["m_star"], "ci_low": est["ci_low"],
                     "ci_high": est["ci_high"], "censored": bool(est["censored"]), "floor": bool(floor),
                     "m_upper": est["m_star"] if floor else np.nan,
                     "budget": int(max(table["values"])),
                     "seeds": int(table["seeds"]), "learner": arm})
    return pd.DataFrame(rows)


def censored_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The points not learned within their budget (drawn as lower bounds at the budget)."""
    return table[table["censored"] | (table["m_star"].isna() & ~table["floor"])]


def thm17(n, s, k) -> np.ndarray:
    """ADKM Thm 17's sample count at fixed scale WR + B (W = B = R = 1): its Õ(k·s·n/ε²). The
    teachers' W and B do not grow with n, but the cube's radius R = √n would add a factor n
    (the bound's (WR + B)²), which the k·s·n form leaves in the constant."""
    return theory.sample_complexity_sparse(n=n, s=s, k=k, eps=EPS, delta=DELTA, W=1, B=1, R=1)


def parity_bound(n, s, arm: str) -> np.ndarray:
    """The parity lower bound on m for the arm's kind of learner, p = min(n, s − 1): N_p(n)
    characters of degree ≤ p for fitted learners, n^{p−1} samples for SGD (constants dropped)."""
    n, s = np.broadcast_arrays(np.asarray(n, float), np.asarray(s, float))
    p = np.minimum(n, s - 1)
    return theory.parity_sgd_samples(n, p) if arm == "mlp" else theory.num_features(n, p)


def _grown(arm: str, series: str) -> tuple[str, dict, list]:
    """(grown quantity, fixed {name: value}, declared grown values) of a series of the arm."""
    known = []
    for sweep, (grown, (fixed, value), teachers) in [*sweeps(arm, False).items(), *sweeps(arm, True).items()]:
        for teacher, values in teachers.items():
            known.append(f"{teacher}, {sweep} ({fixed}={value})")
            if series == known[-1]:
                return grown, {fixed: value}, values
    # e.g. a kept table measured before the sweeps were edited
    raise ConfigError(f"{series!r} is not a series of the {arm} arm (known: {'; '.join(dict.fromkeys(known))}); "
                      "delete the kept table to measure it again", file=str(DATA / f"adkm-s2-{arm}.parquet"))


def _span(x) -> np.ndarray:
    """The values a slope is read over: `x`, or for a one-value (smoke) series x − 1 and x."""
    x = np.asarray(x, float)
    return x if x.size >= 2 else np.array([x[0] - 1, x[0]])


def arm_theory(arm: str, series: str) -> tuple[float, str]:
    """The exponent of the grown quantity: ADKM Thm 17 for a junta series, the parity bound of
    `parity_bound` for the dense one (its log-log slope over the declared values, up to n + 1
    along s: beyond, the teacher no longer changes; a one-value smoke series: from it to the next
    integer)."""
    grown, fixed, values = _grown(arm, series)
    x = np.asarray(values, float)
    if series.startswith("dense") and grown == "s":
        x = x[x <= fixed["n"] + 1]
    x = _span(x)
    if series.startswith("dense"):
        n, s = (x, fixed["s"]) if grown == "n" else (fixed["n"], x)
        form = "n^(p−1) (SGD)" if arm == "mlp" else "N_p(n) ~ n^p/p!"
        bound = parity_bound(n, s, arm)
        _, alpha = theory.fit_power_law(x, bound)
        theorem = f"dense parity, p = min(n, s−1): m ≳ {form}, 2^Ω(min(n,s)) SQ"
        if grown == "s" and x.size > 2:
            # not a power of s: the theory number is a fit whose value depends on the range
            local = np.diff(np.log(bound)) / np.diff(np.log(x))
            theorem += (f"; not a power of s (local slopes {local[0]:.2f} → {local[-1]:.2f}): "
                        f"the theory number is its fit over s = {x[0]:g}–{x[-1]:g}")
        return alpha, theorem
    k = TEACHERS[series.split(",")[0]][1]
    n, s = (x, fixed["s"]) if grown == "n" else (fixed["n"], x)
    _, alpha = theory.fit_power_law(x, thm17(n, s, k))
    theorem = "ADKM Thm 17: Õ(k·s·n/ε²) at fixed WR + B"
    if grown == "n":
        # the junta teachers have B = 0 and W constant in n, so on the cube (R = √n) the bound's
        # (WR + B)² is ∝ n and its slope does not depend on W
        _, cube = theory.fit_power_law(x, theory.sample_complexity_sparse(
            n=x, s=s, k=k, eps=EPS, delta=DELTA, W=1, B=0, R=np.sqrt(x)))
        theorem += f" (at the cube's R = √n and the teachers' B = 0 the bound has slope {cube:.2f})"
    if arm == "lowdegree":
        theorem += f"; low-degree regression's own count N_d(n), d = log₂(s/k) (Lemma 7): slope {_features_slope(arm, series):.2f}"
    return alpha, theorem


def _features_slope(arm: str, series: str) -> float:
    """Slope of N_d(n), d = log₂(s/k), the characters of a junta series' degree, over its values."""
    grown, fixed, values = _grown(arm, series)
    k = TEACHERS[series.split(",")[0]][1]
    x = _span(values)
    n, s = (x, fixed["s"]) if grown == "n" else (fixed["n"], x)
    return theory.fit_power_law(x, theory.num_features(n, np.log2(np.asarray(s) // k)))[1]


def arm_reason(arm: str, series: str) -> str | None:
    """Why a row may disagree with its theorem (shown only when it does)."""
    grown, fixed, values = _grown(arm, series)
    if series.startswith("dense"):
        return _dense_reason(arm, grown, fixed, values)
    alpha = _features_slope(arm, series)
    learner = ("low-degree regression needs ≈ N_d(n) samples, d = log₂(s/k) (Lemma 7)" if arm == "lowdegree"
               else "N_d(n), d = log₂(s/k), the characters of the junta's degree")
    floor = " Points learned at the search's floor (the batch) give only m* ≤ 64 and are left out." \
        if arm == "mlp" and grown == "n" else ""
    return (f"Thm 17 is an upper bound for ERM over the class, so a smaller slope does not contradict it; "
            f"{learner}, slope {alpha:.2f} over this range.{floor}")


def distinct_draws(n, count) -> np.ndarray:
    """Uniform draws from {±1}ⁿ (with replacement) expected to hit `count` distinct points:
    2ⁿ·ln(2ⁿ/(2ⁿ − count)), ≈ count while count ≪ 2ⁿ (inf from count = 2ⁿ on)."""
    cube = 2.0 ** np.asarray(n, float)
    with np.errstate(divide="ignore"):
        return np.where(np.asarray(count) < cube, -cube * np.log1p(-np.asarray(count) / cube), np.inf)


def _dense_reason(arm: str, grown: str, fixed: dict, values: list) -> str | None:
    """Why a dense row may disagree: along s at n = 12 the cube is small (fitted arms: the N_p
    characters need N_p distinct inputs; the net: n^(p−1) is an asymptotic SGD count)."""
    budget = ARMS[arm]["max_m"]
    censored = f"points not learned by m = {budget} (the arm's budget) are censored (lower bounds, not fitted). "
    if grown != "s":
        if arm != "mlp":
            return censored.rstrip()
        n = _span(values)
        _, alpha = theory.fit_power_law(n, theory.parity_sgd_samples(n, fixed["s"] - 1) * np.log(n))
        return f"Õ(n^(p−1)) hides a log n: n^(p−1)·log n has slope {alpha:.2f} over this range"
    n = fixed["n"]
    s = _span([v for v in values if v <= n + 1])
    if arm == "mlp":
        return (f"n^(p−1) is online SGD's count for n ≫ p; at n = {n} the {2 ** n}-point cube caps m* "
                f"(p = s − 1 up to {int(s.max()) - 1})")
    need = distinct_draws(n, theory.num_features(n, s - 1))
    _, alpha = theory.fit_power_law(s, need)
    return (f"{censored}N_p characters need N_p distinct inputs of the {2 ** n}-point cube, ≈ "
            f"2ⁿ·ln(2ⁿ/(2ⁿ − N_p)) draws ({need[0]:.0f} → {need[-1]:.0f}, slope {alpha:.2f}); "
            "p = n from s = n + 1 on" + ("; the NTK needs a growing multiple of N_p on top (its m*/N_p "
                                         "grows with s), which the distinct draws do not account for"
                                         if arm == "ntk" else ""))


def arm_study(arm: str) -> tuple:
    """(experiments, measure, theory_exponent, reason) of the study of one arm, the functions
    its study file declares."""
    return tuple(functools.partial(fn, arm) for fn in (arm_experiments, arm_measure, arm_theory, arm_reason))


def experiments(smoke: bool) -> dict[str, sl.config.Experiment]:
    return arm_experiments(LEARNER, smoke)


def measure(smoke: bool = False, store: str = "results") -> pd.DataFrame:
    return arm_measure(LEARNER, smoke, store)


def theory_exponent(series: str) -> tuple[float, str]:
    return arm_theory(LEARNER, series)


def reason(series: str) -> str | None:
    return arm_reason(LEARNER, series)


#: the full-size table, kept by paper_figs/fig_adkm_s2.py (read by `sparselearn figs exponents`)
KEPT_TABLE = DATA / f"adkm-s2-{LEARNER}.parquet"


if __name__ == "__main__":
    figures.study_main(__file__)
