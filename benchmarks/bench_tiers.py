"""Compile tiers of a trained group side by side: one program against three (start, training
loop, finish, compiled at once, one thread per core), and the classic emitters against XLA's
fusion emitters for the loop.

For each group below (parities of the overhead benchmark, 16 runs, 3,000 steps, at three
widths around `loop.MID_FLOPS`), a fresh process without kept programs or compile cache
traces and compiles the group (`loop.prepare_group`, what a cold run pays before training) and
then trains it three times (the fastest counts), on one core (one device) and on two (two
host devices, the run axis sharded, as the command line runs). Three modes, alternating,
`--repeats` processes each (medians):

    one     one program, classic emitters (the quick tier before its loop compiled apart)
    quick   start, loop and finish, classic emitters
    mid     start and finish with the classic emitters, the loop with the fusion emitters

Every mode computes the same runs (the JSON records the largest difference of test error).

Run:   python benchmarks/bench_tiers.py              # about 8 min on an idle 2-core machine
       python benchmarks/bench_tiers.py --repeats 1  # one process per mode and group, writes nothing
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import load_average, on_cores, side_by_side, summary_line, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tiers.json"
WIDTHS = (100, 200, 600)
MODES = ("one", "quick", "mid")
CORES = (1, 2)
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
    import jax
    import sparselearn as sl
    from sparselearn.sweeps import grid
    from sparselearn.train import loop

    text, mode = sys.argv[1], sys.argv[2]
    loop.compile_tier = lambda exp, runs: "mid" if mode == "mid" else "quick"
    if mode == "one":
        loop.LOOPED_TIERS = frozenset()
    g = grid.group(grid.expand(sl.config.loads(text)))[-1]
    devices = jax.devices() if len(jax.devices()) > 1 else None
    start = time.perf_counter()
    loop.prepare_group(g.exp, g.hps(), devices)
    prepare = time.perf_counter() - start
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        out = loop.run_group(g.exp, g.hps(), devices)
        runs.append(time.perf_counter() - start)
    print(json.dumps({"prepare_s": prepare, "train_s": min(runs), "test_error": out["test_error"].tolist(),
                      "flops": loop.group_flops(g.exp, len(g.runs))}))
''')


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per mode and group (default 3)")
    args = parser.parse_args(argv)
    load_before = load_average()
    report = {"benchmark": "tiers", "repeats": args.repeats, "groups": []}
    for width in WIDTHS:
        for cores in CORES:
            rows, summary = side_by_side(lambda mode: on_cores(SCRIPT, [CONFIG.format(width=width), mode], cores),
                                         MODES, args.repeats)
            errors = [r[0]["test_error"] for r in rows.values()]
            group = {"width": width, "cores": cores, "flops": rows["one"][0]["flops"], **summary,
                     "process": rows["one"][0]["process"],   # how the measuring processes ran
                     "max_test_error_difference": max(abs(a - b) for other in errors[1:]
                                                      for a, b in zip(errors[0], other))}
            report["groups"].append(group)
            print(f"width {width:4d}  {group['flops']:.2g} FLOPs  {cores} core(s)  {summary_line(summary, MODES)}",
                  flush=True)
    return write_report(report, RESULTS, load_before, write=args.repeats > 1)


if __name__ == "__main__":
    main()
