"""Compile tiers of a trained group: the quick tier's single program against the mid tier's
loop compiled apart with XLA's fusion emitters, side by side.

For each group below (parities of the overhead benchmark, 16 runs, 3,000 steps, at three
widths: under, at and above `loop.MID_FLOPS`), a fresh process on one core, without kept
programs or compile cache, traces and compiles the group (`loop.prepare_group`, what a cold
run pays before training) and then trains it three times (the fastest counts). Two modes,
alternating, `--repeats` processes each (medians):

    quick   one program, classic emitters (`loop.MID_FLOPS` raised above the group)
    mid     start and finish at the quick tier, the training loop with the fusion emitters

Both modes compute the same runs (the JSON records the largest difference of test error).

Run:   python benchmarks/bench_tiers.py              # about 5 min on an idle 2-core machine
       python benchmarks/bench_tiers.py --repeats 1  # one process per mode and group, writes nothing
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
RESULTS = ROOT / "benchmarks" / "results" / "tiers.json"
WIDTHS = (200, 600, 700)
CONFIG = """
experiment: bench_tiers
target:  {{name: sparse_parity, n: 20, k: 3}}
learner: {{name: mlp, width: {width}, depth: 2}}
train:   {{optimizer: sgd, lr: 0.1, batch: 32, steps: 3000, loss: hinge, eval_every: 50, eps: 0.0}}
data:    {{m: 1000, test_m: 1000}}
sweep:   {{seeds: 16}}
"""

SCRIPT = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    import sparselearn as sl
    from sparselearn.sweeps import grid
    from sparselearn.train import loop

    text, mode = sys.argv[1], sys.argv[2]
    if mode == "quick":
        loop.MID_FLOPS = loop.FULL_FLOPS = float("inf")
    else:
        loop.MID_FLOPS, loop.FULL_FLOPS = 0.0, float("inf")
    g = grid.group(grid.expand(sl.config.loads(text)))[-1]
    start = time.perf_counter()
    loop.prepare_group(g.exp, g.hps())
    prepare = time.perf_counter() - start
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        out = loop.run_group(g.exp, g.hps())
        runs.append(time.perf_counter() - start)
    print(json.dumps({"prepare_s": prepare, "train_s": min(runs), "test_error": out["test_error"].tolist(),
                      "flops": loop.group_flops(g.exp, len(g.runs))}))
''')


def measure(width: int, mode: str) -> dict:
    env = {**os.environ, "SPARSELEARN_CACHE": "off", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1 --xla_cpu_multi_thread_eigen=false"}
    cmd = [sys.executable, "-c", SCRIPT, CONFIG.format(width=width), mode]
    if sys.platform.startswith("linux"):
        cmd = ["taskset", "-c", "0", *cmd]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"width {width}, {mode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per mode and group (default 3)")
    args = parser.parse_args(argv)
    report = {"benchmark": "tiers", "repeats": args.repeats, "groups": []}
    for width in WIDTHS:
        rows = {"quick": [], "mid": []}
        for _ in range(args.repeats):
            for mode in rows:
                rows[mode].append(measure(width, mode))
        summary = {mode: {"prepare_s": statistics.median(r["prepare_s"] for r in got),
                          "train_s": statistics.median(r["train_s"] for r in got),
                          "all_prepare_s": [r["prepare_s"] for r in got],
                          "all_train_s": [r["train_s"] for r in got]} for mode, got in rows.items()}
        for side in summary.values():
            side["cold_s"] = side["prepare_s"] + side["train_s"]
        quick, mid = summary["quick"], summary["mid"]
        group = {"width": width, "flops": rows["quick"][0]["flops"], **summary,
                 "train_speedup": quick["train_s"] / mid["train_s"], "cold_ratio": mid["cold_s"] / quick["cold_s"],
                 "max_test_error_difference": max(abs(a - b) for a, b in zip(rows["quick"][0]["test_error"],
                                                                            rows["mid"][0]["test_error"]))}
        report["groups"].append(group)
        print(f"width {width:4d}  {group['flops']:.2g} FLOPs"
              f"  prepare {quick['prepare_s']:.2f} → {mid['prepare_s']:.2f} s"
              f"  train {quick['train_s']:.2f} → {mid['train_s']:.2f} s (×{group['train_speedup']:.2f})"
              f"  cold {quick['cold_s']:.2f} → {mid['cold_s']:.2f} s", flush=True)
    report["machine"] = describe()
    if args.repeats > 1:
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")
        print("wrote", RESULTS)
    return report


if __name__ == "__main__":
    main()
