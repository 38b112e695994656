"""Adaptive sample-complexity search vs a full grid over m at equal precision.

For 3-sparse parities with n ∈ {10, 15, 20}, both methods find the smallest m at which
at least half of the seeds reach test error ≤ 0.05, to within a factor 1 + rtol:
- search: `sparselearn.sample_complexity` (doubling, then bisection on log m);
- grid: every m of a geometric grid with ratio 1 + rtol over the same range [min, max],
  trained in one sweep.
Both count trainings (runs) and wall time; the answers are compared too. Compiled programs
are kept in a fresh temporary directory for the run (the JSON's `compile_cache`), not in the
user's cache: no program compiled by an earlier run is found, so the times do not depend on
what ran before; within the run, n by n, search then grid, later groups find what earlier ones
compiled, as in one user's session.

    python benchmarks/bench_search.py            # full
    python benchmarks/bench_search.py --quick    # n ∈ {10}, fewer seeds and steps

Writes benchmarks/results/search.json (not with --quick), with the load average at start and end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import load_average, write_report  # noqa: E402

import sparselearn as sl  # noqa: E402
from sparselearn import runtime  # noqa: E402

CONFIG = """
experiment: bench_search
target: {{name: sparse_parity, n: {n}, k: 3}}
learner: {{name: mlp, width: 128}}
train: {{steps: {steps}, eval_every: 100, batch: 32, lr: 0.1}}
data: {{m: 128, test_m: 1024}}
sweep: {{seeds: {seeds}}}
"""


def _plain(value):
    """JSON for numpy scalars."""
    return value.item() if isinstance(value, np.generic) else str(value)


def geometric_grid(lo: int, hi: int, rtol: float) -> list[int]:
    count = math.ceil(math.log(hi / lo) / math.log(1 + rtol)) + 1
    return sorted({int(round(v)) for v in np.geomspace(lo, hi, count)})


def fresh_compile_cache(folder: str) -> str:
    """Keep this process's compiled programs in `folder` (empty), whatever the environment or
    jax's settings named before; the cache stays on, as a user's sweeps run it."""
    import jax

    os.environ.pop(runtime.CACHE_ENV, None)
    os.environ[runtime.CACHE_DIR_ENV] = folder
    jax.config.update("jax_compilation_cache_dir", None)   # e.g. from JAX_COMPILATION_CACHE_DIR
    path = runtime.enable_compile_cache()
    if path is None or not os.path.samefile(path, folder):
        raise RuntimeError(f"the compile cache is at {path}, not in the fresh folder {folder}")
    return f"a fresh temporary directory for this run ({runtime.CACHE_DIR_ENV}), empty at the start"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    ns = [10] if args.quick else [10, 15, 20]
    seeds, steps = (4, 500) if args.quick else (8, 2000)
    lo, hi, rtol, eps, delta = 32, 8192, 0.1, 0.05, 0.5
    load_before = load_average()
    results = []
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as cache:
        compile_cache = fresh_compile_cache(cache)
        for n in ns:
            cfg = sl.config.loads(CONFIG.format(n=n, steps=steps, seeds=seeds))
            t0 = time.perf_counter()
            res = sl.sample_complexity(cfg, eps=eps, delta=delta, out=out, start=128, min_value=lo, max_value=hi,
                                       rtol=rtol, progress=False)
            t_search = time.perf_counter() - t0
            row = res.table().iloc[0]
            values = geometric_grid(lo, hi, rtol)
            grid_cfg = sl.config.override(cfg, experiment=f"bench_grid_{n}", sweep={"grid": {"data.m": values}},
                                          executor={"max_group_runs": 256})
            t0 = time.perf_counter()
            df = sl.run(grid_cfg, out, progress=False)
            t_grid = time.perf_counter() - t0
            rates = df.groupby("m")["test_error"].apply(lambda e: float(np.mean(e <= eps)))
            ok = [m for m in values if rates[m] >= 1 - delta]
            results.append({
                "n": n, "search_estimate": None if row["estimate"] is None else int(row["estimate"]),
                "search_bracket": [_plain(row["below"]) if row["below"] is not None else None,
                                   _plain(row["estimate"]) if row["estimate"] is not None else None], "search_trainings": int(len(res.runs)),
                "search_seconds": round(t_search, 2), "grid_estimate": int(min(ok)) if ok else None,
                "grid_values": len(values), "grid_trainings": int(len(df)), "grid_seconds": round(t_grid, 2),
                "training_fraction": round(len(res.runs) / len(df), 4)})
            print(json.dumps(results[-1], default=_plain))
    fractions = [r["training_fraction"] for r in results]
    doc = {"benchmark": "search",
           "workload": {"target": "sparse_parity k=3", "n": ns, "width": 128, "steps": steps, "seeds": seeds,
                        "eps": eps, "delta": delta, "rtol": rtol, "m_range": [lo, hi], "quick": args.quick},
           "compile_cache": compile_cache,
           "ratios": {"max_search_over_grid_trainings": max(fractions),
                      "mean_search_over_grid_trainings": round(float(np.mean(fractions)), 4)},
           "results": results}
    doc = json.loads(json.dumps(doc, default=_plain))   # numpy scalars as plain JSON
    write_report(doc, Path(__file__).parent / "results" / "search.json", load_before, write=not args.quick)


if __name__ == "__main__":
    main()
