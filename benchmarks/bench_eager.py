"""Eager teacher calls: `runtime.tiered_jit` against plain full-tier compiles, side by side.

For each built-in target, a fresh process (no compile cache) draws a teacher and a test set
the way a notebook, a figure or a test does: `params = target.init(key)`, then
`target.sample(params, key, m)` for m = 1,000 (the first call of each compiles), then the same
sample call again 20 times (the median is its run time). Two modes, alternating, three
processes each (medians):

    tiered  as shipped: each shape compiles at the tiny tier when XLA counts its program
            under `runtime.EAGER_TINY_FLOPS`, else with XLA's defaults
    full    every shape with XLA's defaults (`EAGER_TINY_FLOPS = 0`), as `jax.jit` would

and for m = 100,000 in tiered mode (above the threshold: the same program as full).

Run:   python benchmarks/bench_eager.py            # about 2 min on an idle 2-core machine
       python benchmarks/bench_eager.py --quick    # one process per mode and target, writes nothing
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "eager.json"
TARGETS = {"sparse_parity": {"n": 30, "k": 3}, "staircase": {"n": 30, "k": 3},
           "sparse_mlp": {"n": 20, "s": 8, "k": 2}, "sparse_mlp_sign": {"n": 20, "s": 8, "k": 2},
           "hierarchical": {"n": 30}, "moe": {"n": 20}}

SCRIPT = textwrap.dedent('''
    import json, statistics, sys, time
    import jax
    import sparselearn as sl
    from sparselearn import runtime

    name, fields, mode, m = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    if mode == "full":
        runtime.EAGER_TINY_FLOPS = 0.0
    target = sl.targets.get(name, **fields)
    key = jax.random.key(0)
    jax.block_until_ready(jax.numpy.zeros(1) + 1)  # the backend is up before the clock starts
    start = time.perf_counter()
    params = jax.block_until_ready(target.init(key))
    init_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(target.sample(params, key, m))
    sample_s = time.perf_counter() - start
    calls = []
    for _ in range(20):
        start = time.perf_counter()
        jax.block_until_ready(target.sample(params, key, m))
        calls.append(time.perf_counter() - start)
    print(json.dumps({"init_first_s": init_s, "sample_first_s": sample_s, "sample_call_s": statistics.median(calls)}))
''')


def measure(script: Path, name: str, mode: str, m: int) -> dict:
    env = {**os.environ, "SPARSELEARN_CACHE": "off", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(script), name, json.dumps(TARGETS[name]), mode, str(m)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{name} {mode} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def medians(rows: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    repeats = 1 if args.quick else 3
    load_before = os.getloadavg()
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_eager_{os.getpid()}.py"
    script.write_text(SCRIPT)
    out = {}
    try:
        for name in TARGETS:
            runs = {"tiered": [], "full": []}
            for _ in range(repeats):
                for mode in runs:
                    runs[mode].append(measure(script, name, mode, 1000))
            row = {mode: medians(rows) for mode, rows in runs.items()}
            row["large_tiered"] = medians([measure(script, name, "tiered", 100_000)])
            first = {mode: row[mode]["init_first_s"] + row[mode]["sample_first_s"] for mode in ("tiered", "full")}
            row["first_calls_speedup"] = first["full"] / first["tiered"]
            row["sample_call_slowdown"] = row["tiered"]["sample_call_s"] / row["full"]["sample_call_s"]
            out[name] = row
            print(f"{name:16s} first init+sample: tiered {first['tiered']:.2f} s, full {first['full']:.2f} s "
                  f"({row['first_calls_speedup']:.1f}x); a sample call {row['tiered']['sample_call_s'] * 1e3:.2f} "
                  f"vs {row['full']['sample_call_s'] * 1e3:.2f} ms")
    finally:
        script.unlink(missing_ok=True)
    totals = {mode: sum(out[n][mode]["init_first_s"] + out[n][mode]["sample_first_s"] for n in out)
              for mode in ("tiered", "full")}
    doc = {"benchmark": "eager",
           "machine": {**describe(), "load_average_before": [round(v, 2) for v in load_before],
                       "load_average_after": [round(v, 2) for v in os.getloadavg()]},
           "workload": {"targets": TARGETS, "m": 1000, "large_m": 100_000, "repeats": repeats, "calls": 20},
           "targets": out,
           "ratios": {"first_calls_all_targets_full_over_tiered": totals["full"] / totals["tiered"],
                      "first_calls_all_targets_s": totals}}
    print(json.dumps(doc["ratios"], indent=1))
    if args.quick:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
