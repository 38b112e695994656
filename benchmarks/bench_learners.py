"""Learners side by side: wall time and test error on the same targets and sample sizes.

Workloads (each learner runs through `sparselearn.train.run_group`, the path sweeps use,
on a group of 2 seeds; data generation and evaluation included):

    parity     3-sparse parity on {±1}^30, m ∈ {1000, 10000}, 0-1 test error on 2048 points
    teacher    sparse_mlp n = 30, s = 64, k = 4 (random construction; unit-variance labels),
               m ∈ {1000, 10000}, test MSE on 2048 points
    hierarchical  h = g∘p on N(0, I_8), p of degree 2 (rank 4), g = He_2; layerwise against the
               degree-≤2 baseline and the NTK, m ∈ {1000, 10000}, test MSE
    gf2        elimination alone (numpy) on n ∈ {100, 1000} bits from m = n + 10 samples

Learners: lowdegree (Walsh, degree 3 — 4526 features at n = 30; with keep = 4 on the parity;
degree 2 too on the teacher),
kernel (NTK, exact Cholesky on m × m), random_features (width 4096), gf2 (parity only), and
the MLP for reference (parity: the quickstart's SGD/hinge setup, 2000 steps; teacher: Adam on
the square loss, 4000 steps).

For each (workload, learner, m): `first_s` is the first call (compilation included) and
`steady_s` the median of the next `--repeats` calls (3 unless given), both per run (group time / 2);
`cpu_s` is process CPU time per run of the steady calls.

Run:   python benchmarks/bench_learners.py           # ≈ 10 min on 2 cores; writes results/learners.json
       python benchmarks/bench_learners.py --quick   # m = 1000 only, no repeats; writes nothing
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe, save  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "learners.json"
SEEDS = (0, 1)

TARGETS = {
    "parity": {"name": "sparse_parity", "n": 30, "k": 3},
    "teacher": {"name": "sparse_mlp", "n": 30, "s": 64, "k": 4},
    "hierarchical": {"name": "hierarchical", "n": 8, "k": 2, "r": 4, "q": 2},
}
FITTED_TRAIN = {"loss": "square"}
LEARNERS = {
    "parity": [
        ("lowdegree_q3", {"name": "lowdegree", "degree": 3, "basis": "walsh", "ridge": 1e-4}, FITTED_TRAIN),
        ("lowdegree_q3_keep4", {"name": "lowdegree", "degree": 3, "basis": "walsh", "ridge": 1e-4, "keep": 4},
         FITTED_TRAIN),
        ("kernel_ntk", {"name": "kernel", "kernel": "ntk", "ridge": 1e-3}, FITTED_TRAIN),
        ("random_features", {"name": "random_features", "width": 4096, "ridge": 1e-3}, FITTED_TRAIN),
        ("gf2", {"name": "gf2"}, FITTED_TRAIN),
        ("mlp", {"name": "mlp", "width": 256, "depth": 2},
         {"optimizer": "sgd", "lr": 0.1, "batch": 32, "steps": 2000, "loss": "hinge", "eval_every": 500}),
    ],
    "teacher": [
        ("lowdegree_q2", {"name": "lowdegree", "degree": 2, "basis": "walsh", "ridge": 1e-3}, FITTED_TRAIN),
        ("lowdegree_q3", {"name": "lowdegree", "degree": 3, "basis": "walsh", "ridge": 1e-3}, FITTED_TRAIN),
        ("kernel_ntk", {"name": "kernel", "kernel": "ntk", "ridge": 1e-3}, FITTED_TRAIN),
        ("random_features", {"name": "random_features", "width": 4096, "ridge": 1e-3}, FITTED_TRAIN),
        ("mlp", {"name": "mlp", "width": 256, "depth": 2},
         {"optimizer": "adam", "lr": 1e-3, "batch": 64, "steps": 4000, "loss": "square", "eval_every": 500}),
    ],
    "hierarchical": [
        ("layerwise", {"name": "layerwise", "width": 256, "degree": 2, "steps": 300}, FITTED_TRAIN),
        ("lowdegree_q2", {"name": "lowdegree", "degree": 2, "basis": "hermite", "ridge": 1e-3}, FITTED_TRAIN),
        ("kernel_ntk", {"name": "kernel", "kernel": "ntk", "ridge": 1e-3}, FITTED_TRAIN),
    ],
}


def bench_run(workload: str, label: str, learner: dict, train: dict, m: int, repeats: int) -> dict:
    from sparselearn import config
    from sparselearn.train import run_group

    exp = config.from_dict({"experiment": "bench_learners", "target": TARGETS[workload], "learner": learner,
                            "train": train, "data": {"m": m, "test_m": 2048}})
    hps = {"seed": list(SEEDS), "m": [m] * len(SEEDS)}
    start = time.perf_counter()
    out = run_group(exp, hps)
    first = (time.perf_counter() - start) / len(SEEDS)
    steady, cpu = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = run_group(exp, hps)
        steady.append((time.perf_counter() - start) / len(SEEDS))
        cpu.append((time.process_time() - cpu_start) / len(SEEDS))
    failed = [e for e in out.get("error", [None]) if e is not None]
    return {"workload": workload, "learner": label, "config": learner, "train": train, "m": m,
            "seeds": len(SEEDS), "test_error": float(np.mean(out["test_error"])) if not failed else None,
            "test_error_per_seed": [float(v) for v in out["test_error"]],
            "metric": "0-1 error" if workload == "parity" else "mean squared error (labels have variance 1)",
            "first_s": first, "steady_s": statistics.median(steady) if steady else None,
            "cpu_s": statistics.median(cpu) if cpu else None, "failed": failed}


def bench_gf2(n: int, repeats: int = 5) -> dict:
    from sparselearn.learners.gf2 import GF2

    rng = np.random.default_rng(n)
    m = n + 10
    times, ok = [], True
    for r in range(repeats):
        x = rng.choice(np.array([-1.0, 1.0], np.float32), size=(m, n))
        support = rng.permutation(n)[:3]
        start = time.perf_counter()
        params = GF2().fit(None, x, np.prod(x[:, support], axis=1))
        times.append(time.perf_counter() - start)
        ok &= sorted(params["support"].tolist()) == sorted(support.tolist())
    return {"n": n, "m": m, "k": 3, "fit_s_median": statistics.median(times), "fit_s_max": max(times),
            "repeats": repeats, "recovered_every_time": bool(ok)}


def table(rows: list[dict]) -> str:
    lines = [f"{'workload':<13}{'learner':<20}{'m':>7}{'test err':>10}{'first s':>9}{'steady s':>10}{'cpu s':>8}"]
    for r in rows:
        err = "failed" if r["test_error"] is None else f"{r['test_error']:.3f}"
        steady = "" if r["steady_s"] is None else f"{r['steady_s']:.2f}"
        cpu = "" if r["cpu_s"] is None else f"{r['cpu_s']:.2f}"
        lines.append(f"{r['workload']:<13}{r['learner']:<20}{r['m']:>7}{err:>10}{r['first_s']:>9.2f}{steady:>10}{cpu:>8}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="m = 1000 only, no repeats; writes nothing")
    parser.add_argument("--repeats", type=int, default=3, help="steady-state calls after the first (default 3)")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON path (default {RESULTS}; none with --quick)")
    args = parser.parse_args(argv)
    sizes = (1000,) if args.quick else (1000, 10_000)
    repeats = 0 if args.quick else args.repeats

    machine = describe()
    rows = []
    for workload, learners in LEARNERS.items():
        for label, learner, train in learners:
            for m in sizes:
                rows.append(bench_run(workload, label, learner, train, m, repeats))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    gf2 = [bench_gf2(n) for n in (100, 1000)]
    for g in gf2:
        print(f"gf2 n={g['n']:<5} m={g['m']:<5} fit {g['fit_s_median'] * 1e3:.1f} ms (median of {g['repeats']}),"
              f" recovered every time: {g['recovered_every_time']}")
    machine["load_average_at_end"] = describe()["load_average"]
    report = {"benchmark": "learners", "machine": machine, "seeds_per_group": len(SEEDS), "steady_calls": repeats,
              "results": rows, "gf2": gf2}
    print(table(rows))
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        save(report, out)
    return report


if __name__ == "__main__":
    main()
