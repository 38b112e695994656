"""Training throughput: one vmapped group of runs against per-step loops, on one workload.

Workload: 3-sparse parity on {±1}^30, 2-layer ReLU MLP of width 256, hinge loss, SGD
(lr 0.1, batch 32, 2000 steps), 16 seeds, a training set of m = 4096 points (mini-batches
drawn with replacement), test error on 2048 points every 100 steps, and the training-set
error at the end.

    ours          sparselearn.train.run_group: all 16 seeds in one jit(vmap(scan)) program
    jax_step_loop a Python loop over a jitted SGD step (donated buffers), one seed at a time
    torch_loop    a standard PyTorch loop (nn.Linear, optim.SGD), one seed at a time, with
                  torch.set_num_threads(cores); torch_loop_1thread repeats it on one thread
    numpy_sgemm   float32 matmuls of 1024² and 2048², the machine's practical ceiling
    numpy_step_shapes  the same BLAS on one step's two large products for every seed (batched
                  matmuls of the step's small shapes): the ceiling for matrices this small

FLOPs are counted analytically: the matmuls of the forward and backward passes of every
step plus the forward passes of the evaluations (elementwise work is not counted).

Run:   python benchmarks/bench_train.py            # 1–3 min on an idle 2-core machine; writes results/train.json
       python benchmarks/bench_train.py --quick    # 200 steps, smoke check; writes nothing

With --quick the group (7.7·10⁹ FLOPs by `loop.group_flops`, under `loop.TINY_FLOPS`) compiles
at the tiny tier, without LLVM optimisation, where the full run's (6.3·10¹⁰) compiles at mid:
its times check that the script runs, not what the full run will measure.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"


@dataclass(frozen=True)
class Workload:
    n: int = 30
    k: int = 3
    width: int = 256
    batch: int = 32
    steps: int = 2000
    lr: float = 0.1
    seeds: int = 16
    m: int = 4096
    test_m: int = 2048
    eval_every: int = 100
    loss: str = "hinge"
    optimizer: str = "sgd"

    @property
    def test_evals(self) -> int:
        """Test evaluations per run: at step 0 and after every eval_every steps."""
        return 1 + self.steps // self.eval_every


# ------------------------------------------------------------------------- FLOPs

def step_flops(w: Workload) -> int:
    """One SGD step of one run: forward x·W1 (2bnw) and h·w2 (2bw); backward ∂W1 = xᵀ·∂h
    (2bnw), ∂h = ∂f·w2ᵀ (2bw), ∂w2 = hᵀ·∂f (2bw). The input gradient is never formed."""
    return 2 * w.batch * (2 * w.n * w.width + 3 * w.width)


def forward_flops(w: Workload, points: int) -> int:
    return 2 * points * (w.n * w.width + w.width)


def run_flops(w: Workload, steps: int, extra_points: int = 0) -> int:
    """One run: its steps, the test evaluations, the final training-set evaluation and
    `extra_points` more forward points."""
    evals = 1 + steps // w.eval_every
    return (steps * step_flops(w) + evals * forward_flops(w, w.test_m)
            + forward_flops(w, w.m) + forward_flops(w, extra_points))


# ------------------------------------------------------------------------- helpers

def result(name, seconds, runs, steps, flops, notes, **extra) -> dict:
    """One row of the JSON; extra keys (cpu_seconds: process CPU time, all threads) may follow."""
    return {"name": name, "seconds": seconds, "runs": runs, "steps": steps, "flops": flops,
            "flops_per_s": flops / seconds if seconds > 0 else None, "notes": notes, **extra}


def config_text(w: Workload) -> str:
    return f"""
experiment: bench_train
target:  {{name: sparse_parity, n: {w.n}, k: {w.k}}}
learner: {{name: mlp, width: {w.width}, depth: 2, activation: relu, init: standard}}
train:   {{optimizer: {w.optimizer}, lr: {w.lr}, batch: {w.batch}, steps: {w.steps}, loss: {w.loss},
          weight_decay: 0.0, eval_every: {w.eval_every}, eps: 0.05}}
data:    {{m: {w.m}, test_m: {w.test_m}}}
sweep:   {{seeds: 1}}
"""


# ------------------------------------------------------------------------- (a) ours

def bench_ours(w: Workload, repeats: int, sharded: bool = False) -> list[dict]:
    import jax

    from sparselearn import config
    from sparselearn.train import run_group

    cfg = config.loads(config_text(w))
    hps = {"seed": list(range(w.seeds)), "m": [w.m] * w.seeds}
    if sharded:
        run_group = functools.partial(run_group, devices=jax.devices())

    start = time.perf_counter()
    run_group(cfg, hps)                                   # compile + one run
    first = time.perf_counter() - start
    times, cpu, out = [], [], None
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = run_group(cfg, hps)                         # returns numpy: synchronised
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    seconds = statistics.median(times)
    flops = w.seeds * run_flops(w, w.steps, extra_points=w.batch)   # + the step-0 train-batch forward
    notes = (f"run_group over {w.seeds} seeds in one jit(vmap(scan)) call; median of {repeats} calls "
             f"after a warm-up call; data generation included; mean final test error "
             f"{float(np.mean(out['test_error'])):.4f}")
    compile_s = max(first - seconds, 0.0)
    if sharded:
        return [result(f"ours_{len(jax.devices())}_devices", seconds, repeats, w.steps, flops,
                       notes + f"; run axis sharded over {len(jax.devices())} host devices "
                       "(XLA_FLAGS=--xla_force_host_platform_device_count), as the default `local` executor runs a group",
                       all_seconds=times, cpu_seconds=statistics.median(cpu))]
    return [result("ours", seconds, repeats, w.steps, flops, notes, all_seconds=times,
                   cpu_seconds=statistics.median(cpu)),
            result("ours_compile", compile_s, 1, w.steps, 0,
                   f"first call ({first:.2f} s) minus the median steady call: tracing + XLA compilation")]


# ------------------------------------------------------------------------- (b) jitted step, Python loop

def bench_jax_step_loop(w: Workload, seeds: int, steps: int) -> dict:
    import jax
    import jax.numpy as jnp

    from sparselearn import learners
    from sparselearn.train.losses import hinge

    net = learners.get("mlp", width=w.width, depth=2)

    @jax.jit
    def make_data(seed):
        root = jax.random.key(seed)
        support = jax.random.permutation(jax.random.fold_in(root, 0), w.n)[:w.k]

        def sample(key, m):
            x = jax.random.rademacher(key, (m, w.n), dtype=jnp.float32)
            return x, jnp.prod(x[:, support], axis=1)

        x, y = sample(jax.random.fold_in(root, 1), w.m)
        xt, yt = sample(jax.random.fold_in(root, 2), w.test_m)
        params = net.init_params(jax.random.fold_in(root, 3), w.n)
        return (x, y, xt, yt), params, jax.random.fold_in(root, 4)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def sgd_step(params, key, x, y):
        key, sub = jax.random.split(key)
        idx = jax.random.randint(sub, (w.batch,), 0, x.shape[0])

        def objective(p):
            return jnp.mean(hinge(net.apply(p, x[idx]), y[idx]))

        loss, grads = jax.value_and_grad(objective)(params)
        params = jax.tree.map(lambda p, g: p - w.lr * g, params, grads)
        return params, key, loss

    @jax.jit
    def error(params, x, y):
        return jnp.mean(jnp.sign(net.apply(params, x)) != y)

    def train(seed, n_steps):
        (x, y, xt, yt), params, key = make_data(seed)
        curve = [float(error(params, xt, yt))]
        for t in range(1, n_steps + 1):
            params, key, _ = sgd_step(params, key, x, y)
            if t % w.eval_every == 0:
                curve.append(float(error(params, xt, yt)))     # logged: a host sync
        return curve, float(error(params, x, y))

    with jax.default_matmul_precision("highest"):
        train(10_000, 2 * w.eval_every)                       # warm-up: compiles all three
        start, cpu_start = time.perf_counter(), time.process_time()
        finals = [train(seed, steps)[0][-1] for seed in range(seeds)]
        measured, cpu = time.perf_counter() - start, time.process_time() - cpu_start

    scale = (w.seeds / seeds) * (w.steps / steps)
    notes = ("jitted SGD step (params and key donated, batch drawn inside), Python loop over steps, "
             "one seed at a time, test error pulled to the host every eval_every steps; after a warm-up")
    if scale != 1:
        notes += (f"; measured {seeds} seeds × {steps} steps in {measured:.2f} s and scaled linearly "
                  f"to {w.seeds} × {w.steps}")
    if steps == w.steps:
        notes += f"; mean final test error {np.mean(finals):.4f}"
    return result("jax_step_loop", measured * scale, 1, w.steps, w.seeds * run_flops(w, w.steps), notes,
                  measured_seconds=measured, measured_seeds=seeds, measured_steps=steps, cpu_seconds=cpu * scale)


# ------------------------------------------------------------------------- (c) PyTorch loop

def bench_torch_loop(w: Workload, seeds: int, steps: int, threads: int, name: str = "torch_loop") -> dict:
    try:
        import torch
    except ImportError as e:
        return result(name, 0.0, 0, w.steps, 0, f"skipped: import torch failed ({e})", skipped=True)

    torch.set_num_threads(threads)

    def train(seed, n_steps):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        support = torch.randperm(w.n, generator=g)[:w.k]

        def sample(m):
            x = torch.randint(0, 2, (m, w.n), generator=g).float().mul_(2).sub_(1)
            return x, x[:, support].prod(dim=1)

        x, y = sample(w.m)
        xt, yt = sample(w.test_m)
        model = torch.nn.Sequential(torch.nn.Linear(w.n, w.width), torch.nn.ReLU(), torch.nn.Linear(w.width, 1))
        for layer in (model[0], model[2]):
            torch.nn.init.xavier_uniform_(layer.weight)
        opt = torch.optim.SGD(model.parameters(), lr=w.lr)

        def error(xe, ye):
            with torch.no_grad():
                return (torch.sign(model(xe).squeeze(1)) != ye).float().mean().item()

        curve = [error(xt, yt)]
        for t in range(1, n_steps + 1):
            idx = torch.randint(0, w.m, (w.batch,), generator=g)
            f = model(x[idx]).squeeze(1)
            loss = torch.relu(1 - y[idx] * f).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if t % w.eval_every == 0:
                curve.append(error(xt, yt))
        return curve, error(x, y)

    train(10_000, 2 * w.eval_every)                           # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    finals = [train(seed, steps)[0][-1] for seed in range(seeds)]
    measured, cpu = time.perf_counter() - start, time.process_time() - cpu_start

    scale = (w.seeds / seeds) * (w.steps / steps)
    notes = (f"torch {torch.__version__}, {threads} threads; nn.Linear + ReLU, optim.SGD, "
             f"one seed at a time, test error .item() every eval_every steps; after a warm-up")
    if scale != 1:
        notes += (f"; measured {seeds} seeds × {steps} steps in {measured:.2f} s and scaled linearly "
                  f"to {w.seeds} × {w.steps}")
    if steps == w.steps:
        notes += f"; mean final test error {np.mean(finals):.4f}"
    return result(name, measured * scale, 1, w.steps, w.seeds * run_flops(w, w.steps), notes,
                  measured_seconds=measured, measured_seeds=seeds, measured_steps=steps, cpu_seconds=cpu * scale)


# ------------------------------------------------------------------------- (d) sgemm ceiling

def bench_sgemm(sizes=(1024, 2048), repeats: int = 5) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for size in sizes:
        a = rng.standard_normal((size, size), dtype=np.float32)
        b = rng.standard_normal((size, size), dtype=np.float32)
        a @ b                                                 # warm-up (threads, pages)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        out.append(result(f"numpy_sgemm_{size}", min(times), repeats, 0, 2 * size**3,
                          f"numpy float32 {size}×{size} @ {size}×{size}, best of {repeats}"))
    return out


def bench_step_shapes(w: Workload, repeats: int = 5, calls: int = 200) -> dict:
    """numpy's batched matmul on one step's two large products for all seeds at once (forward
    x·W1: (R, b, n) @ (R, n, w); backward xᵀ·∂h: (R, n, b) @ (R, b, w)), best of `repeats`: what
    the BLAS behind the sgemm ceiling reaches on the shapes a training step is made of."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((w.seeds, w.batch, w.n), dtype=np.float32)
    x_t = np.ascontiguousarray(x.transpose(0, 2, 1))
    w1 = rng.standard_normal((w.seeds, w.n, w.width), dtype=np.float32)
    grad_h = rng.standard_normal((w.seeds, w.batch, w.width), dtype=np.float32)
    for _ in range(10):                                       # warm-up
        np.matmul(x, w1), np.matmul(x_t, grad_h)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            np.matmul(x, w1), np.matmul(x_t, grad_h)
        times.append((time.perf_counter() - start) / calls)
    flops = w.seeds * 2 * (2 * w.batch * w.n * w.width)
    return result("numpy_step_shapes", min(times), repeats, 1, flops,
                  f"numpy float32 batched matmuls ({w.seeds}, {w.batch}, {w.n}) @ ({w.seeds}, {w.n}, {w.width}) "
                  f"and ({w.seeds}, {w.n}, {w.batch}) @ ({w.seeds}, {w.batch}, {w.width}), best of {repeats} "
                  f"× {calls} calls")


# ------------------------------------------------------------------------- main

def table(results: list[dict]) -> str:
    lines = [f"{'name':<20}{'seconds':>10}{'cpu s':>10}{'GFLOP':>10}{'GFLOP/s':>10}"]
    for r in results:
        rate, cpu = r["flops_per_s"], r.get("cpu_seconds")
        cpu_text = f"{cpu:>10.3f}" if cpu is not None else f"{'':>10}"
        lines.append(f"{r['name']:<20}{r['seconds']:>10.3f}{cpu_text}{r['flops'] / 1e9:>10.2f}"
                     f"{(rate or 0) / 1e9:>10.2f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="200 steps and 2 loop seeds (scaled), a smoke check: its group compiles at the tiny "
                             "tier (the full run's at mid), so its times are not the full run's; writes nothing")
    parser.add_argument("--loop-seeds", type=int, default=None, help="seeds timed for the loops (then scaled)")
    parser.add_argument("--loop-steps", type=int, default=None, help="steps timed for the loops (then scaled)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of the vmapped group")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON path (default {RESULTS}; none with --quick)")
    parser.add_argument("--sharded-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sharded_only:  # child process with XLA_FLAGS set: print the sharded row as JSON
        w = replace(Workload(), steps=200) if args.quick else Workload()
        print(json.dumps(bench_ours(w, args.repeats, sharded=True)[0]))
        return {}

    w = Workload()
    if args.quick:
        w = replace(w, steps=200)
    loop_seeds = args.loop_seeds or (2 if args.quick else w.seeds)
    loop_steps = args.loop_steps or w.steps
    load_before = describe()["load_average"]

    results = bench_ours(w, args.repeats)
    cores = os.cpu_count() or 1
    if cores > 1:  # the same group with its run axis split over one host device per core
        import subprocess

        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={cores}"}
        cmd = [sys.executable, __file__, "--sharded-only", "--repeats", str(args.repeats)] + (
            ["--quick"] if args.quick else [])
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the sharded run on {cores} host devices failed (exit {done.returncode}):\n"
                               f"{done.stderr[-2000:]}")
        # how that process ran (the report's `machine` describes this one): the rest it inherits
        results.append({**json.loads(done.stdout.strip().splitlines()[-1]),
                        "process": {"environment": {"XLA_FLAGS": env["XLA_FLAGS"]}}})
    results.append(bench_jax_step_loop(w, loop_seeds, loop_steps))
    results.append(bench_torch_loop(w, loop_seeds, loop_steps, threads=cores))
    if cores > 1:   # for reference: on a busy machine intra-op threads can wait on each other
        results.append(bench_torch_loop(w, loop_seeds, loop_steps, threads=1, name="torch_loop_1thread"))
    results += bench_sgemm()
    results.append(bench_step_shapes(w))

    by_name = {r["name"]: r for r in results}
    ours = by_name["ours"]
    sgemm = max(r["flops_per_s"] for r in results if r["name"].startswith("numpy_sgemm"))
    torch_r = by_name["torch_loop"]
    ratios = {
        "vs_step_loop": by_name["jax_step_loop"]["seconds"] / ours["seconds"],
        "vs_torch_loop": None if torch_r.get("skipped") else torch_r["seconds"] / ours["seconds"],
        "fraction_of_sgemm": ours["flops_per_s"] / sgemm,
        # the same BLAS on the step's own small products: the ceiling a step could reach
        "step_shapes_fraction_of_sgemm": by_name["numpy_step_shapes"]["flops_per_s"] / sgemm,
        "fraction_of_step_shapes": ours["flops_per_s"] / by_name["numpy_step_shapes"]["flops_per_s"],
    }
    sharded = next((r for r in results if r["name"].endswith("_devices")), None)
    if sharded:
        ratios["sharded_vs_step_loop"] = by_name["jax_step_loop"]["seconds"] / sharded["seconds"]
        ratios["sharded_fraction_of_sgemm"] = sharded["flops_per_s"] / sgemm
        if not torch_r.get("skipped"):  # the command line's default executor against PyTorch
            ratios["sharded_vs_torch_loop"] = torch_r["seconds"] / sharded["seconds"]
    if "torch_loop_1thread" in by_name and not by_name["torch_loop_1thread"].get("skipped"):
        ratios["vs_torch_loop_1thread"] = by_name["torch_loop_1thread"]["seconds"] / ours["seconds"]
    machine = describe()
    machine["load_average_at_start"] = load_before
    machine["load_average_at_end"] = machine.pop("load_average")
    if max((load_before or [0])[0], (machine["load_average_at_end"] or [0])[0]) > 0.5 * cores:
        machine["note"] = ("other processes were running (1-min load average above half the cores): "
                           "times are pessimistic, multi-threaded ones most; compare cpu_seconds")
    report = {"benchmark": "train", "machine": machine,
              "workload": {**asdict(w), "step_flops_per_run": step_flops(w),
                           "test_forward_flops": forward_flops(w, w.test_m),
                           "sgemm_ceiling_flops_per_s": sgemm},
              "ratios": ratios, "results": results}

    print(table(results))
    print("ratios: " + ", ".join(f"{k} = {v:.3g}" if v is not None else f"{k} = n/a" for k, v in ratios.items()))
    out = args.out or (None if args.quick else RESULTS)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
