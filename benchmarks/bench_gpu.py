"""GPU check: training throughput against the device's dense peak, and the sparse primitives' speedups.

Two parts, each writing one JSON (with `_machine.describe()` and the GPU's name):

- `sweep` → results/train-gpu.json. A wide sweep: 256 runs of the `mlp` learner (width
  4096, depth 2, ReLU) on a 3-sparse parity, n = 64, batch 128, 300 SGD steps, trained
  by `sparselearn.train.run_group` in one compiled group. FLOPs per step and run are
  counted as 6 · batch · params (forward + backward), plus 2 · points · params for every
  evaluation's forward pass. Achieved FLOP/s are divided by the device's dense peak at the
  matmul precision used (`PEAK_TFLOPS`: vendor data sheets, no structured sparsity):
  "highest" → the FP32 peak, "default" → the TF32 tensor-core peak. Timed: the fastest of
  at least 2 steady calls after a compiling one (`seconds_per_call`; data drawing
  included, not counted as FLOPs).
- `primitives` → results/primitives-gpu.json. One gradient step (forward + backward) at
  s = 4096, density k/s = 1/64, n = 512, batch 256, as in bench_primitives.py: the second
  layer, w2 (s, out = n), by dense_rows @ w2 ("dense"), gather_matmul impl="sparse"
  ("gather", XLA gathers) and impl="pallas" ("gather_pallas", Triton kernels), in float32
  and bfloat16; and routed_mlp with a scalar output, w2 (s,) as in the `mlp` learner and
  bench_primitives.py, by impl="dense" ("routed_dense", the same function computed densely),
  impl="sparse" ("routed") and impl="pallas" ("routed_pallas"). Every path is timed two
  ways, each side by side with the others: `ms`, 10 calls in a row from Python, blocking on
  the last (a host round trip per call would add tens of µs to calls of well under a
  millisecond); and `ms_in_jit`, 50 calls inside one jitted `lax.fori_loop`, every input
  of a call depending on the previous call's output (`bench_primitives.in_jit`), so that
  the 5–20 µs of dispatching every call from the host, the same for every path, does not
  cap the speedup of a light kernel, and no work on the indices is hoisted out of the loop.
  Before timing, every path's values and gradients are compared with the dense one on the
  device (`max_rel_error`). A path that fails to compile is recorded with its error and
  the rest still runs.

Targets (issue 16): fraction of peak ≥ 0.3 on the wide sweep; gather ≥ 4× dense at
density 1/64 (the faster of "gather" and "gather_pallas", float32, timed in one jit:
`speedup_vs_dense_in_jit`).

Run on a GPU machine from the repository root:  bash benchmarks/device_check.sh
(or: PYTHONPATH=. python benchmarks/bench_gpu.py [--part sweep|primitives|all]).
Without a GPU it exits with status 3 and writes nothing. `--cpu-dry-run` runs every code
path on the CPU with tiny sizes (Pallas in interpret mode) and writes
<part>-gpu-dry-run.json (to a temporary folder unless --out-dir is given) instead, so the
script can be checked where no GPU is available. A dry run cannot reach the branches that
`jax.lax.platform_dependent` takes only in a program lowered for a GPU: the gather paths'
row gathers in large vectorised blocks (`primitives/_rows.py`, `_ACCEL_BLOCK`; on CPU
they walk the batch in cache-sized chunks) and the compiled Pallas kernels (Triton
lowering, PTX compile and launch; on CPU they run in interpret mode); nor the GPU's peak
figures. It times float32 only (bfloat16 at these sizes: a `slow` test in
tests/test_benchmark_scripts.py).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from bench_primitives import in_jit, ms, race, speedup  # noqa: E402

from sparselearn import config  # noqa: E402
from sparselearn import primitives as P  # noqa: E402
from sparselearn.learners.mlp import MLP  # noqa: E402
from sparselearn.train import run_group  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_FRACTION_OF_PEAK = 0.3
TARGET_GATHER_SPEEDUP = 4.0
NO_GPU_STATUS = 3

# Dense peak TFLOP/s (no 2:4 sparsity) by GPU name, from the vendors' data sheets: FP32 on
# CUDA cores, TF32 and BF16 on tensor cores. The first name contained in the device's
# `device_kind` wins, so more specific names come first ("GH200" contains "H200").
PEAK_TFLOPS = (
    ("GH200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),
    ("H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    ("H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),        # SXM
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0}),
    ("H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}),
    ("H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4}),        # SXM
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}),
    ("L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0}),
)
# jax matmul precision of float32 products → the peak that applies on NVIDIA GPUs
PRECISION_PEAK = {"highest": "fp32", "high": "tf32", "default": "tf32"}


@dataclass(frozen=True)
class Sweep:
    runs: int = 256
    width: int = 4096
    n: int = 64
    k: int = 3
    batch: int = 128
    steps: int = 300
    eval_every: int = 100
    m: int = 2048
    test_m: int = 512
    lr: float = 0.05
    precisions: tuple[str, ...] = ("highest", "default")
    min_seconds: float = 6.0      # timed calls continue until this much time has passed
    max_calls: int = 5


@dataclass(frozen=True)
class Cells:
    batch: int = 256
    n: int = 512
    s: int = 4096
    k: int = 64                   # density 1/64
    router_rank: int = 8
    budget_s: float = 3.0         # timing budget per group of contenders
    calls: int = 10               # calls per timing, blocking on the last (bench_primitives._once)
    loop_calls: int = 50          # calls per timing inside one jit (bench_primitives.in_jit)
    precision: str = "highest"
    dtypes: tuple[str, ...] = ("float32", "bfloat16")   # of the second-layer paths


#: largest relative error (of the loss and each gradient, against dense) for a path's time to count
REL_TOL = {"float32": 1e-3, "bfloat16": 5e-2}

DRY_SWEEP = Sweep(runs=4, width=64, n=10, batch=16, steps=10, eval_every=10, m=128, test_m=64,
                  min_seconds=0.0, max_calls=2)
DRY_CELLS = Cells(batch=16, n=32, s=256, k=4, router_rank=2, budget_s=0.05, dtypes=("float32",), calls=2,
                  loop_calls=3)


def gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []


def gpu_info() -> dict:
    devices = gpus()
    info = {"device_kind": devices[0].device_kind if devices else None, "count": len(devices)}
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                                   "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            info["nvidia_smi"] = done.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            info["nvidia_smi"] = None
    return info


def peak_flops(device_kind: str | None, precision: str) -> tuple[float | None, str | None]:
    """(dense peak FLOP/s, which entry of PEAK_TFLOPS) for float32 products at `precision`."""
    for name, peaks in PEAK_TFLOPS:
        if device_kind and name in device_kind:
            kind = PRECISION_PEAK[precision]
            return peaks[kind] * 1e12, f"{name} {kind}"
    return None, None


def target(required: float, measured: float | None, dry_run: bool) -> dict:
    met = None if dry_run or measured is None else measured >= required
    return {"required": required, "measured": measured, "met": met}


# ---------------------------------------------------------------- the wide sweep

def sweep_config(w: Sweep, precision: str) -> config.Experiment:
    return config.loads(f"""
experiment: gpu_wide_sweep
target:  {{name: sparse_parity, n: {w.n}, k: {w.k}}}
learner: {{name: mlp, width: {w.width}, depth: 2, activation: relu, init: standard}}
train:   {{optimizer: sgd, lr: {w.lr}, batch: {w.batch}, steps: {w.steps}, loss: hinge,
          eval_every: {w.eval_every}, eps: 0.05, precision: {precision}}}
data:    {{m: {w.m}, test_m: {w.test_m}}}
sweep:   {{seeds: 1}}
""")


def param_count(width: int, n: int) -> int:
    shapes = jax.eval_shape(lambda key: MLP(width=width).init_params(key, n), jax.random.key(0))
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))


def sweep_flops(w: Sweep) -> dict:
    """Counted FLOPs of one call (all runs): training steps 6·batch·params, and the forward
    passes 2·points·params of the evaluations (step 0 and every eval_every steps on the test
    set, the first batch at step 0, the training set at the end).

    The 6·batch·params rule counts an input gradient of the first layer that training never
    forms; `flops_per_call_matmuls` counts only the matrix products done (per step
    4·batch·n·width + 6·batch·width, as bench_train.py), the stricter figure.
    """
    params = param_count(w.width, w.n)
    evals = 1 + math.ceil(w.steps / w.eval_every)
    per_step = 6 * w.batch * params
    forward_points = evals * w.test_m + w.batch + w.m
    matmul_step = 4 * w.batch * w.n * w.width + 6 * w.batch * w.width
    return {"params_per_run": params, "flops_per_step": w.runs * per_step,
            "flops_per_call": w.runs * (w.steps * per_step + 2 * forward_points * params),
            "flops_per_call_matmuls": w.runs * (w.steps * matmul_step + 2 * forward_points * params)}


def measure_sweep(w: Sweep, precision: str, device_kind: str | None) -> dict:
    cfg = sweep_config(w, precision)
    hps = {"seed": list(range(w.runs)), "m": [w.m] * w.runs}
    start = time.perf_counter()
    out = run_group(cfg, hps)                               # compiles, then runs once
    first = time.perf_counter() - start
    times = []
    while len(times) < 2 or (sum(times) < w.min_seconds and len(times) < w.max_calls):
        start = time.perf_counter()
        out = run_group(cfg, hps)                           # returns numpy: synchronised
        times.append(time.perf_counter() - start)
    seconds = min(times)
    counted = sweep_flops(w)
    peak, peak_entry = peak_flops(device_kind, precision)
    rate = counted["flops_per_call"] / seconds
    return {"precision": precision, "peak_kind": PRECISION_PEAK[precision], **counted,
            "seconds_per_call": seconds, "all_seconds": times, "first_call_seconds": first,
            "seconds_per_step": seconds / w.steps, "flops_per_s": rate,
            "peak_flops_per_s": peak, "peak_entry": peak_entry,
            "fraction_of_peak": None if peak is None else rate / peak,
            "fraction_of_peak_matmul_flops": (None if peak is None
                                              else counted["flops_per_call_matmuls"] / seconds / peak),
            "mean_final_test_error": float(out["test_error"].mean())}


def part_sweep(dry_run: bool, device_kind: str | None):
    """Yields the report so far after each precision (so a run cut short keeps what it measured)."""
    w = DRY_SWEEP if dry_run else Sweep()
    rows = []
    for precision in w.precisions:
        row = measure_sweep(w, precision, device_kind)
        rows.append(row)
        # the goal counts the matrix products executed, not 6·batch·params (which includes a
        # first-layer input gradient that is never formed, about 1.5× more)
        frac = row["fraction_of_peak_matmul_flops"]
        print(f"sweep {precision:>8}: {row['seconds_per_step'] * 1e3:8.3f} ms/step, "
              f"{row['flops_per_s'] / 1e12:8.2f} TFLOP/s (6·batch·params), executed matmuls at "
              f"{'n/a' if frac is None else f'{frac:.3f}'} of the {row['peak_entry']} peak", flush=True)
        fractions = [r["fraction_of_peak_matmul_flops"] for r in rows if r["fraction_of_peak_matmul_flops"] is not None]
        best = max(rows, key=lambda r: r["fraction_of_peak_matmul_flops"] or 0.0)
        yield {"wide_sweep": {**best, "workload": asdict(w)}, "by_precision": rows,
               "targets": {"wide_sweep_fraction_of_peak": {
                   **target(TARGET_FRACTION_OF_PEAK, max(fractions) if fractions else None, dry_run),
                   "precision": best["precision"]}}}


# ---------------------------------------------------------------- the primitives

def second_layer_paths(c: Cells, dtype, key) -> dict:
    ks = jax.random.split(key, 3)
    values = jax.random.normal(ks[0], (c.batch, c.k), dtype)
    idx = jax.lax.top_k(jax.random.normal(ks[1], (c.batch, c.s)), c.k)[1]
    w2 = (jax.random.normal(ks[2], (c.s, c.n)) / math.sqrt(c.k)).astype(dtype)

    def path(product):
        def loss(values, w2, idx):
            return jnp.sum(product(values, idx, w2).astype(jnp.float32) ** 2)
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), (values, w2, idx)

    return {"dense": path(lambda v, i, w: P.dense_rows(v, i, c.s) @ w),
            "gather": path(lambda v, i, w: P.gather_matmul(v, i, w, impl="sparse")),
            "gather_pallas": path(lambda v, i, w: P.gather_matmul(v, i, w, impl="pallas"))}


def routed_paths(c: Cells, key) -> dict:
    ks = jax.random.split(key, 5)
    x = jax.random.normal(ks[0], (c.batch, c.n))
    router = (jax.random.normal(ks[1], (c.n, c.router_rank)), jax.random.normal(ks[2], (c.router_rank, c.s)))
    w1 = jax.random.normal(ks[3], (c.s, c.n)) / math.sqrt(c.n)
    b1 = jnp.zeros(c.s)
    w2 = jax.random.normal(ks[4], (c.s,)) / math.sqrt(c.k)   # the learner's scalar output

    def path(impl):
        def loss(w1, b1, w2, x, router):
            return jnp.sum(P.routed_mlp(x, router, w1, b1, w2, c.k, impl=impl) ** 2)
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2))), (w1, b1, w2, x, router)

    return {"routed_dense": path("dense"), "routed": path("sparse"), "routed_pallas": path("pallas")}


def max_rel_error(got, want) -> float:
    """Largest |got − want| of each output (loss and every gradient) over its largest |want|."""
    worst = 0.0
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
        worst = max(worst, float(jnp.max(jnp.abs(a - b)) / jnp.maximum(jnp.max(jnp.abs(b)), 1e-30)))
    return worst


def time_group(paths: dict, baseline: str, budget_s: float, labels: dict, calls: int = 1,
               loop_calls: int = 0) -> list[dict]:
    """Check every path against `baseline` on the device, then time the ones that compiled
    side by side (bench_primitives.race, `calls` calls a timing) and, if `loop_calls`, again
    with that many calls inside one jit, each call's arguments depending on the previous
    call's output (bench_primitives.in_jit: `ms_in_jit`, `speedup_vs_dense_in_jit`); a path that
    fails is recorded with its error, one whose values or gradients are off by more than
    REL_TOL is marked `correct: false` (timed, never counted towards a goal)."""
    want = jax.block_until_ready(paths[baseline][0](*paths[baseline][1]))
    ok, rows = {}, {}
    for name, (fn, args) in paths.items():
        try:
            got = jax.block_until_ready(fn(*args))
        except Exception as e:  # a kernel that does not compile on this device: record it, go on
            rows[name] = {"path": name, **labels, "error": f"{type(e).__name__}: {str(e)[:2000]}"}
            continue
        ok[name] = (fn, args)
        error = max_rel_error(got, want)
        rows[name] = {"path": name, **labels, "max_rel_error": error,
                      "correct": error <= REL_TOL[labels.get("dtype", "float32")]}
    times = race(ok, budget_s, calls=calls)
    for name, t in times.items():
        rows[name].update(ms=ms(t), rounds=len(t), speedup_vs_dense=speedup(times[baseline], t))
    if loop_calls and baseline in ok:
        looped = {}
        for name, (fn, args) in ok.items():
            try:
                looped[name] = in_jit(fn, args, loop_calls)
                jax.block_until_ready(looped[name][0](*looped[name][1]))
            except Exception as e:  # recorded; the path's other timing stands
                looped.pop(name, None)
                rows[name]["error_in_jit"] = f"{type(e).__name__}: {str(e)[:2000]}"
        if baseline in looped:
            per_call = {name: [v / loop_calls for v in t] for name, t in race(looped, budget_s).items()}
            for name, t in per_call.items():
                rows[name].update(ms_in_jit=ms(t), rounds_in_jit=len(t),
                                  speedup_vs_dense_in_jit=speedup(per_call[baseline], t))
    return list(rows.values())


def part_primitives(dry_run: bool):
    """Yields the report so far after each group of paths."""
    c = DRY_CELLS if dry_run else Cells()
    key = jax.random.key(0)
    groups = [(lambda d=dtype: second_layer_paths(c, jnp.dtype(d), key), "dense",
               {"group": "second_layer", "dtype": dtype}) for dtype in c.dtypes]
    groups.append((lambda: routed_paths(c, key), "routed_dense", {"group": "routed_mlp", "dtype": "float32"}))
    cells = []
    for make, baseline, labels in groups:
        with jax.default_matmul_precision(c.precision):
            rows = time_group(make(), baseline, c.budget_s, labels, c.calls, c.loop_calls)
        for row in rows:
            in_jit_text = (f"  in jit {row['ms_in_jit']:9.3f} ms  x{row['speedup_vs_dense_in_jit']:6.2f}"
                           if "ms_in_jit" in row else "  in jit FAILED" if "error_in_jit" in row else "")
            timing = (f"{row['ms']:9.3f} ms  x{row['speedup_vs_dense']:6.2f}{in_jit_text}"
                      f"  rel. err {row['max_rel_error']:.1e}{'' if row['correct'] else ' (WRONG: not counted)'}"
                      if "ms" in row else f"FAILED {row['error'][:200]}")
            print(f"{row['group']:>12} {row['dtype']:>8} {row['path']:>14}  {timing}", flush=True)
        cells += rows
        # timed in one jit (no per-call dispatch); a path that disagrees with dense does not count
        gather = [r["speedup_vs_dense_in_jit"] for r in cells
                  if r["dtype"] == "float32" and r["path"] in ("gather", "gather_pallas")
                  and "speedup_vs_dense_in_jit" in r and r["correct"]]
        yield {"config": asdict(c), "density": f"1/{c.s // c.k}",
               "description": "value_and_grad of one step; speedup_vs_dense = median over side-by-side rounds "
                              "of dense time / path time (second layer, out = n: dense_rows @ w2; routed_mlp, "
                              "scalar output w2 (s,): impl='dense'); "
                              f"ms: {c.calls} calls in a row from Python, blocking on the last, per call; "
                              f"ms_in_jit: {c.loop_calls} calls inside one jitted fori_loop, every argument of a call "
                              "depending on the previous call's output, per call "
                              "(no per-call dispatch; the gather target is checked on speedup_vs_dense_in_jit)",
               "primitives": {"cells": cells},
               "targets": {"gather_speedup_density1_64": target(TARGET_GATHER_SPEEDUP, max(gather, default=None),
                                                                dry_run)}}


# ---------------------------------------------------------------- main

#: part → (results file stem, a generator of the report so far, from (dry_run, device_kind))
PARTS = {"sweep": ("train", part_sweep),
         "primitives": ("primitives", lambda dry, kind: part_primitives(dry))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="tiny sizes on the CPU, every code path; writes <part>-gpu-dry-run.json")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help=f"default {RESULTS}, or a temporary folder with --cpu-dry-run")
    args = parser.parse_args(argv)
    if args.cpu_dry_run:  # on the CPU even where a GPU is visible (no effect once jax has started)
        jax.config.update("jax_platforms", "cpu")
    if not args.cpu_dry_run and not gpus():
        print(f"bench_gpu: no GPU visible to jax (backend {jax.default_backend()!r}, devices {jax.devices()}); "
              "nothing measured. Use --cpu-dry-run to exercise the script on a CPU.", file=sys.stderr)
        return NO_GPU_STATUS
    info = gpu_info()
    out_dir = args.out_dir or (Path(tempfile.gettempdir()) / "bench-gpu-dry-run" if args.cpu_dry_run else RESULTS)
    for part in (PARTS if args.part == "all" else [args.part]):
        stem, run = PARTS[part]
        started = time.perf_counter()
        machine = describe()
        out = out_dir / f"{stem}-gpu{'-dry-run' if args.cpu_dry_run else ''}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        for body in run(args.cpu_dry_run, info["device_kind"]):  # rewritten after every piece
            report = {"benchmark": f"{stem}-gpu", "dry_run": args.cpu_dry_run, "complete": False,
                      "machine": machine, "gpu": info, **body, "wall_s": time.perf_counter() - started}
            out.write_text(json.dumps(report, indent=2) + "\n")
        report["complete"] = True
        start_load = machine.pop("load_average")
        report["machine"] = {**machine, "load_average_at_start": start_load,
                             "load_average_at_end": describe()["load_average"]}
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out} ({report['wall_s']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
