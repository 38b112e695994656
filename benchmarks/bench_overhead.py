"""Fixed costs, from a cold process: the command line against a numpy SGD loop per seed.

Workload (the sweep a researcher runs every day): 3-sparse parity on {±1}^20, a width-200
ReLU network, hinge loss, SGD (lr 0.1, batch 32), 1,000 training samples, test accuracy on
1,000 fresh points every 50 steps, at most 3,000 steps, for 16 and for 256 seeds.

    ours        `sparselearn run CONFIG --quiet` in a new process: start, import, compile (cold:
                an empty compile cache; warm: the cache of the cold run), train every seed in
                one program, store, draw the figure. With `train.stop_at_eps` (if the
                installed version has it) the group stops once every seed is at 0 test error.
    numpy_loop  a new process running the loop a researcher would write: numpy arrays, one
                seed after the other, the same network, loss, batches and evaluation, each
                seed stopping once its test accuracy is 100%.

Both run on one core (`taskset -c CORE`, 0 unless `--core`; BLAS and XLA single-threaded); at
16 seeds each is timed five times (ours warm), alternating, so each pair of runs meets the same
machine; the medians are compared, and each pair's ratio is kept. Also measured:
`import sparselearn`, `import jax`, `sparselearn --help`, the compile of the quickstart group (cold
and from the warm cache) in a fresh process, and the compile of two groups (the tests' tiny
config and the quickstart's largest group) with and without merged random draws
(`sparselearn.train.threefry.merged_draws`), in fresh processes, alternating. The package's
bytecode is written first, as a user's first run leaves it (`byte_compile`).

Run:   python benchmarks/bench_overhead.py           # 3–5 min on an idle 2-core machine
       python benchmarks/bench_overhead.py --quick   # 16 seeds only, writes nothing
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "overhead.json"
N, K, WIDTH, M, TEST_M, BATCH, LR, STEPS, EVAL_EVERY = 20, 3, 200, 1000, 1000, 32, 0.1, 3000, 50

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": "--xla_force_host_platform_device_count=1 --xla_cpu_multi_thread_eigen=false"}

NUMPY_LOOP = textwrap.dedent('''
    import sys, time
    import numpy as np

    n, k, width, m, test_m, batch, lr, steps, every, seeds = (float(a) if "." in a else int(a)
                                                              for a in sys.argv[1:])
    done_at = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        support = rng.choice(n, k, replace=False)
        x = rng.choice([-1.0, 1.0], size=(m, n)).astype(np.float32)
        y = np.prod(x[:, support], axis=1)
        xt = rng.choice([-1.0, 1.0], size=(test_m, n)).astype(np.float32)
        yt = np.prod(xt[:, support], axis=1)
        a = np.sqrt(6 / (n + width))
        w1 = rng.uniform(-a, a, (n, width)).astype(np.float32)
        b1 = rng.uniform(-1 / np.sqrt(n), 1 / np.sqrt(n), width).astype(np.float32)
        a2 = np.sqrt(6 / (width + 1))
        w2 = rng.uniform(-a2, a2, width).astype(np.float32)
        b2 = np.float32(0.0)
        finished = steps
        for t in range(steps):
            if t % every == 0 and np.all(np.sign(np.maximum(xt @ w1 + b1, 0) @ w2 + b2) == yt):
                finished = t
                break
            idx = rng.integers(0, m, batch)
            xb, yb = x[idx], y[idx]
            h = np.maximum(xb @ w1 + b1, 0)
            f = h @ w2 + b2
            g = np.where(yb * f < 1, -yb, 0.0).astype(np.float32) / batch   # d mean hinge / df
            gh = np.outer(g, w2) * (h > 0)
            w2 -= lr * (h.T @ g)
            b2 -= lr * g.sum()
            w1 -= lr * (xb.T @ gh)
            b1 -= lr * gh.sum(axis=0)
        done_at.append(finished)
    print("steps", *done_at)
''')


def config_text(seeds: int, stop: bool) -> str:
    stop_text = ", stop_at_eps: true" if stop else ""
    return textwrap.dedent(f"""\
        experiment: bench_overhead
        target:  {{name: sparse_parity, n: {N}, k: {K}}}
        learner: {{name: mlp, width: {WIDTH}, depth: 2, activation: relu, init: standard}}
        train:   {{optimizer: sgd, lr: {LR}, batch: {BATCH}, steps: {STEPS}, loss: hinge,
                  eval_every: {EVAL_EVERY}, eps: 0.0{stop_text}}}
        data:    {{m: {M}, test_m: {TEST_M}}}
        sweep:   {{seeds: {seeds}}}
        """)


def has_stop_at_eps() -> bool:
    from sparselearn.config import TrainConfig

    return "stop_at_eps" in TrainConfig.__dataclass_fields__


def timed(cmd: list[str], env: dict, cwd: Path, core: int = 0) -> tuple[float, str]:
    """Wall seconds of a new process pinned to `core`, and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(["taskset", "-c", str(core), *cmd], env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def executable() -> str:
    """The `sparselearn` script of this interpreter's environment (not a version manager's shim,
    which adds its own start-up time), else the one on PATH."""
    beside = Path(sys.executable).parent / "sparselearn"
    return str(beside) if beside.exists() else (shutil.which("sparselearn") or "sparselearn")


def bench_sweep(seeds: int, work: Path, stop: bool, core: int = 0, repeats: int = 1) -> dict:
    """Ours: one cold run (empty compile cache), then `repeats` warm runs (the cold run's cache, a
    new results directory each), each followed by a run of the numpy loop in a new process, so
    that each pair meets the same machine. Medians of each side, and each pair's ratio."""
    cfg = work / f"overhead_{seeds}.yaml"
    cfg.write_text(config_text(seeds, stop))
    script = work / "numpy_loop.py"
    script.write_text(NUMPY_LOOP)
    ours_env = {**os.environ, **ONE_THREAD, "SPARSELEARN_CACHE_DIR": str(work / f"cache_{seeds}")}
    numpy_env = {**os.environ, **ONE_THREAD}
    exe = executable()
    numpy_cmd = [sys.executable, str(script),
                 *(str(v) for v in (N, K, WIDTH, M, TEST_M, BATCH, LR, STEPS, EVAL_EVERY, seeds))]
    cold, _ = timed([exe, "run", str(cfg), "--out", str(work / "cold"), "--quiet"], ours_env, work, core)
    warm, loops, out, printed = [], [], "", ""
    for i in range(repeats):
        seconds, out = timed([exe, "run", str(cfg), "--out", str(work / f"warm{i}"), "--quiet"], ours_env, work, core)
        warm.append(seconds)
        seconds, printed = timed(numpy_cmd, numpy_env, work, core)
        loops.append(seconds)
    import pandas as pd

    runs = pd.read_parquet(next((work / "warm0").rglob("runs.parquet")))
    ours_steps = runs["steps_to_eps"]
    loop_steps = [int(v) for v in printed.split()[1:]]
    learned = [v for v in loop_steps if v < STEPS]
    ours = {"seeds": seeds, "cold_s": cold, "warm_s": statistics.median(warm), "all_warm_s": warm,
            "learned": int((ours_steps >= 0).sum()),
            "median_steps_to_eps": float(ours_steps[ours_steps >= 0].median()) if (ours_steps >= 0).any() else None,
            "stop_at_eps": stop, "summary": out.strip().splitlines()[-1] if out.strip() else ""}
    ref = {"seeds": seeds, "seconds": statistics.median(loops), "all_seconds": loops, "learned": len(learned),
           "median_steps": statistics.median(learned) if learned else None}
    return {"seeds": seeds, "ours": ours, "numpy_loop": ref, "speedup_cold": ref["seconds"] / cold,
            "speedup_warm": ref["seconds"] / ours["warm_s"],
            "speedup_warm_pairs": [r / o for r, o in zip(loops, warm)]}


def bench_start(work: Path, repeats: int = 5, core: int = 0) -> dict:
    env = {**os.environ, **ONE_THREAD}
    exe = executable()
    imports = [timed([sys.executable, "-c", "import sparselearn"], env, work, core)[0] for _ in range(repeats)]
    jax_imports = [timed([sys.executable, "-c", "import jax"], env, work, core)[0] for _ in range(repeats)]
    helps = [timed([exe, "--help"], env, work, core)[0] for _ in range(repeats)]
    lists = [timed([exe, "list", "learners"], env, work, core)[0] for _ in range(repeats)]
    bare = [timed([sys.executable, "-c", "pass"], env, work, core)[0] for _ in range(repeats)]
    return {"import_sparselearn_s": statistics.median(imports), "import_jax_s": statistics.median(jax_imports),
            "help_s": statistics.median(helps),
            "list_learners_s": statistics.median(lists), "python_start_s": statistics.median(bare)}


def group_script(setup: str, body: str) -> str:
    """A script run as `python SCRIPT CONFIG MODE [OVERRIDES…]`: `setup`, then the last shape group
    of CONFIG (static, arrays and the tier `run_group` picks for it), then `body`. MODE is
    "unmerged" to switch off merged random draws, anything else to keep them."""
    return textwrap.dedent('''
        import json, sys, time
        import sparselearn as sl
        from sparselearn import runtime
        from sparselearn.sweeps import grid
        from sparselearn.train import loop, spec, threefry
        if sys.argv[2] == "unmerged":
            threefry.merged_draws = lambda fn: fn
    ''') + setup + textwrap.dedent('''
        exp = sl.config.load(sys.argv[1], sys.argv[3:])
        g = grid.group(grid.expand(exp))[-1]
        static, arrays = spec.static_part(g.exp), spec.hp_arrays(g.exp, g.hps())
        tier = loop.compile_tier(static, len(arrays["seed"]))  # as run_group decides
    ''') + textwrap.dedent(body)


COMPILE = group_script("runtime.enable_compile_cache()\n", '''
    devices = runtime.local_devices()
    start = time.perf_counter()
    loop.prepare_group(g.exp, g.hps(), devices if len(devices) > 1 else None)   # as the local executor
    print(json.dumps({"tier": tier, "program_s": time.perf_counter() - start, "devices": len(devices)}))
''')

DRAWS = group_script("", '''
    start = time.perf_counter()
    lowered = loop.compiled_group(static).lower(arrays)
    traced = time.perf_counter()
    compiled = loop.compile_lowered(lowered, tier)
    done = time.perf_counter()
    print(json.dumps({"tier": tier, "trace_lower_s": traced - start, "compile_s": done - traced,
                      "hash_copies": compiled.as_text().count("shift-left") // 20}))
''')

#: groups whose compile is measured with and without merged draws, as overrides of the
#: quickstart: a group the size of the tests' (tiny tier) and the quickstart's largest (mid tier)
DRAW_GROUPS = {
    "tiny": ["target.n=10", "target.k=2", "learner.width=32", "train.batch=16", "train.steps=50",
             "train.eval_every=20", "data.test_m=128", "sweep.seeds=2", "sweep.grid.data.m=[64, 256]"],
    "quickstart": [],
}


def bench_merged_draws(work: Path, repeats: int = 3) -> dict:
    """Trace + lower and XLA compile of a group as one program (`loop.compiled_group`), in a new
    process, with its draws merged by `threefry.merged_draws` and with merging switched off,
    alternating; medians of `repeats`, and the copies of the hash in the compiled program. The
    tiny group is compiled so by `run_group` too; the quickstart's (mid tier) is split there into
    start, loop and finish programs, so its row compares the draws in the whole program, not the
    command line's compile (`compile_quickstart_group` measures that)."""
    script = work / "draws.py"
    script.write_text(DRAWS)
    out = {}
    for name, overrides in DRAW_GROUPS.items():
        runs: dict[str, list] = {"merged": [], "unmerged": []}
        for _ in range(repeats):
            for mode in runs:
                done = subprocess.run([sys.executable, str(script), str(ROOT / "configs" / "quickstart.yaml"), mode,
                                       *overrides], capture_output=True, text=True, check=True)
                runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
        out[name] = {mode: {"tier": rows[0]["tier"], "hash_copies": rows[0]["hash_copies"],
                            "compile_s": statistics.median(r["compile_s"] for r in rows),
                            "trace_lower_s": statistics.median(r["trace_lower_s"] for r in rows),
                            "all_compile_s": [r["compile_s"] for r in rows]} for mode, rows in runs.items()}
        out[name]["compile_ratio"] = out[name]["merged"]["compile_s"] / out[name]["unmerged"]["compile_s"]
    return out


def bench_compile(work: Path) -> dict:
    """The quickstart group's programs obtained as the command line's local executor does
    (`loop.prepare_group`, one host device per core, the run axis sharded) in a new process:
    with empty caches (trace, lower, compile, keep) and with the kept programs (load only;
    JAX's own cache holds no copy of them)."""
    from sparselearn.runtime import host_device_flags

    script = work / "compile.py"
    script.write_text(COMPILE)
    cache = work / "compile_cache"
    env = {**os.environ, "SPARSELEARN_CACHE_DIR": str(cache), "XLA_FLAGS": host_device_flags(os.environ)}
    out = {}
    for name in ("cold", "warm"):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(script), str(ROOT / "configs" / "quickstart.yaml"), "merged"],
                              env=env, capture_output=True, text=True, check=True)
        out[name] = {**json.loads(done.stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - start}
    return out


def byte_compile() -> bool:
    """Write sparselearn's bytecode (`__pycache__`), as the first run of any Python program
    does. Where PYTHONDONTWRITEBYTECODE is set (some containers) no run writes it, and every
    new process would compile the package's sources again: about 0.08 s of each start that a
    user's machine does not pay. True if every module compiled."""
    import compileall

    return bool(compileall.compile_dir(ROOT / "sparselearn", quiet=1))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 seeds only; writes nothing")
    parser.add_argument("--core", type=int, default=0, help="the core one-thread processes run on (default 0)")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON path (default {RESULTS})")
    args = parser.parse_args(argv)
    load_before = describe()["load_average"]
    stop = has_stop_at_eps()
    report: dict = {"benchmark": "overhead",
                    "workload": {"n": N, "k": K, "width": WIDTH, "m": M, "test_m": TEST_M, "batch": BATCH,
                                 "lr": LR, "max_steps": STEPS, "eval_every": EVAL_EVERY},
                    "bytecode": {"written": byte_compile(),
                                 "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE")}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report["start"] = bench_start(work, core=args.core)
        print("start:", report["start"])
        report["compile_quickstart_group"] = bench_compile(work)
        print("compile:", report["compile_quickstart_group"])
        report["merged_draws"] = bench_merged_draws(work, repeats=1 if args.quick else 3)
        print("merged draws:", {k: round(v["compile_ratio"], 2) for k, v in report["merged_draws"].items()})
        rows = []
        for seeds in ((16,) if args.quick else (16, 256)):
            repeats = 5 if seeds <= 16 else 1   # the small sweep's figures are a few seconds: median of 5
            rows.append(bench_sweep(seeds, work, stop, args.core, repeats))
            ours, ref = rows[-1]["ours"], rows[-1]["numpy_loop"]
            print(f"{seeds} seeds: ours cold {ours['cold_s']:.2f} s, warm {ours['warm_s']:.2f} s "
                  f"({ours['learned']}/{seeds} learned); numpy loop {ref['seconds']:.2f} s "
                  f"({ref['learned']}/{seeds} learned) → ×{rows[-1]['speedup_warm']:.2f} warm "
                  f"(pairs: {', '.join(f'{r:.2f}' for r in rows[-1]['speedup_warm_pairs'])})")
        report["sweeps"] = rows
    report["targets"] = {"warm_16_seeds_at_least_1x": rows[0]["speedup_warm"] >= 1.0}
    if len(rows) > 1:
        report["targets"]["warm_256_seeds_at_least_10x"] = rows[1]["speedup_warm"] >= 10.0
    machine = describe()
    machine["load_average_at_start"] = load_before
    machine["load_average_at_end"] = machine.pop("load_average")
    report["machine"] = machine
    out = args.out or (None if args.quick else RESULTS)
    if out:
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
