"""Groups that stop at eps: every run advancing at once against blocks of the runs still training.

A group with `train.stop_at_eps` ends once all its runs have reached eps; until then a group that
advances all its runs at once steps the ones that have stopped too (their updates are thrown
away). In blocks (`loop.run_block`) each curve point steps only the runs still training, a block
at a time. The groups below are the overhead benchmark's sweep (3-sparse parity on {±1}^20,
width 200, SGD, 3,000 steps at most, test error every 50 steps, eps 0): about 6 runs in 16 never
reach eps, the others at 650–950 steps. Each is of the mid tier (`loop.compile_tier`); from
`loop.STOP_FLOPS` (32 runs and more here) `run_block` picks blocks.

For each number of runs, on one core (one device) and on two (two host devices, the run axis
sharded, as the command line runs), a fresh process without kept programs or compile cache
traces and compiles the group (`loop.prepare_group`) and trains it three times (the fastest
counts). Two modes, alternating, `--repeats` processes each (medians):

    whole   every run at once
    blocks  blocks of the runs still training (`run_block` with STOP_FLOPS at 0)

Both modes compute the same runs: the JSON records whether steps_to_eps and test error agree.

Run:   python benchmarks/bench_stop.py              # about 8 min on an idle 2-core machine
       python benchmarks/bench_stop.py --repeats 1  # one process per mode and group, writes nothing
"""

from __future__ import annotations

import argparse
import statistics
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import load_average, on_cores, side_by_side, summary_line, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stop.json"
SEEDS = (16, 32, 64)
MODES = ("whole", "blocks")
CORES = (1, 2)
CONFIG = """
experiment: bench_stop
target:  {{name: sparse_parity, n: 20, k: 3}}
learner: {{name: mlp, width: 200, depth: 2}}
train:   {{optimizer: sgd, lr: 0.1, batch: 32, steps: 3000, loss: hinge, eval_every: 50, eps: 0.0,
          stop_at_eps: true}}
data:    {{m: 1000, test_m: 1000}}
sweep:   {{seeds: {seeds}}}
"""

SCRIPT = textwrap.dedent('''
    import json, sys, time
    import jax
    import sparselearn as sl
    from sparselearn.sweeps import grid
    from sparselearn.train import loop, spec

    text, mode = sys.argv[1], sys.argv[2]
    g = grid.group(grid.expand(sl.config.loads(text)))[-1]
    devices = jax.devices() if len(jax.devices()) > 1 else None
    shards, runs = len(devices or [0]), len(g.runs)
    picked = loop.run_block(spec.static_part(g.exp), runs, shards) < runs
    loop.STOP_FLOPS = 0.0
    block = loop.run_block(spec.static_part(g.exp), runs, shards)
    if mode == "whole":
        loop.run_block = lambda exp, runs, shards=1: runs
    start = time.perf_counter()
    loop.prepare_group(g.exp, g.hps(), devices)
    prepare = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        out = loop.run_group(g.exp, g.hps(), devices)
        times.append(time.perf_counter() - start)
    print(json.dumps({"prepare_s": prepare, "train_s": min(times), "block": runs if mode == "whole" else block,
                      "picked": "blocks" if picked else "whole",
                      "tier": loop.compile_tier(spec.static_part(g.exp), runs),
                      "steps_to_eps": out["steps_to_eps"].tolist(), "test_error": out["test_error"].tolist(),
                      "flops": loop.group_flops(g.exp, runs)}))
''')


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per mode and group (default 3)")
    args = parser.parse_args(argv)
    load_before = load_average()
    report = {"benchmark": "stop", "repeats": args.repeats, "groups": []}
    for seeds in SEEDS:
        for cores in CORES:
            rows, summary = side_by_side(lambda mode: on_cores(SCRIPT, [CONFIG.format(seeds=seeds), mode], cores),
                                         MODES, args.repeats)
            for mode in MODES:
                summary[mode]["block"] = rows[mode][0]["block"]
            whole, blocks = rows["whole"][0], rows["blocks"][0]
            steps = [s for s in whole["steps_to_eps"] if s >= 0]
            group = {"seeds": seeds, "cores": cores, "tier": whole["tier"], "flops": whole["flops"],
                     "process": whole["process"],   # how the measuring processes ran
                     "run_block_picks": whole["picked"],
                     "reached_eps": len(steps), "median_steps_to_eps": statistics.median(steps) if steps else None,
                     **summary,
                     "train_ratio": summary["whole"]["train_s"] / summary["blocks"]["train_s"],
                     "cold_ratio": summary["whole"]["cold_s"] / summary["blocks"]["cold_s"],
                     "same_steps_to_eps": whole["steps_to_eps"] == blocks["steps_to_eps"],
                     "max_test_error_difference": max(abs(a - b) for a, b in zip(whole["test_error"],
                                                                                  blocks["test_error"]))}
            report["groups"].append(group)
            print(f"{seeds:3d} seeds  {cores} core(s)  block {summary['blocks']['block']:3d}  "
                  f"{summary_line(summary, MODES)}  picked: {group['run_block_picks']}"
                  f"  same steps_to_eps: {group['same_steps_to_eps']}", flush=True)
    return write_report(report, RESULTS, load_before, write=args.repeats > 1)


if __name__ == "__main__":
    main()
