"""Forward + backward time of the sparse primitives against the dense path.

For every hidden width s and density k/s it times one gradient step (values and
gradients of all weights) of

- dense:          relu(topk(masked_matmul(x, w1, mask) + b1, k)) @ w2, all s units;
- routed:         routed_mlp(..., impl="auto"), what the `mlp` learner runs with
                  `routed: true` (dense fallback outside `prefers_sparse`);
- routed_sparse:  routed_mlp(..., impl="sparse") everywhere, to show where it loses;
- gather vs dense second layer with out = n: gather_matmul(values, idx, w2)
  against dense_rows(values, idx, s) @ w2.

Timings are medians of interleaved repeats (the two sides alternate, so drift in
machine load hits both). `ideal` is s/k, the FLOP ratio of the first layer.

Run: python benchmarks/bench_primitives.py [--quick]   (~1.5–2 min on 2 CPU cores)
Writes benchmarks/results/primitives.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from fractions import Fraction
from pathlib import Path

import jax
import jax.numpy as jnp

from sparselearn import primitives as P

M, N, RANK = 256, 512, 8
WIDTHS = (1024, 4096, 16384)
DENSITIES = (Fraction(1, 4), Fraction(1, 16), Fraction(1, 64))
OUT = Path(__file__).parent / "results" / "primitives.json"


def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "python": platform.python_version(),
        # other processes share the cores: timings are only comparable within one run
        "load_average_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _once(fn, args) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def race(contenders: dict, budget_s: float) -> dict:
    """Median seconds per call of each jitted (fn, args), interleaved round by round."""
    for fn, args in contenders.values():
        jax.block_until_ready(fn(*args))  # compile
    first = {name: _once(fn, args) for name, (fn, args) in contenders.items()}
    rounds = int(max(3, min(25, budget_s / max(sum(first.values()), 1e-9))))
    times = {name: [t] for name, t in first.items()}
    for _ in range(rounds - 1):
        for name, (fn, args) in contenders.items():
            times[name].append(_once(fn, args))
    return {name: statistics.median(ts) for name, ts in times.items()}


def mlp_case(s: int, k: int, key) -> dict:
    ks = jax.random.split(key, 6)
    x = jax.random.normal(ks[0], (M, N))
    router = (jax.random.normal(ks[1], (N, RANK)), jax.random.normal(ks[2], (RANK, s)))
    w1 = jax.random.normal(ks[3], (s, N)) / jnp.sqrt(N)
    b1 = jnp.zeros(s)
    w2 = jax.random.normal(ks[4], (s,)) / jnp.sqrt(k)
    mask = jnp.ones((N, s), bool)

    def dense_loss(w1t, b1, w2, x, mask):
        z = P.masked_matmul(x, w1t, mask) + b1
        return jnp.sum(jax.nn.relu(P.topk(z, k)) @ w2)

    def routed_loss(impl):
        def loss(w1, b1, w2, x, router):
            return jnp.sum(P.routed_mlp(x, router, w1, b1, w2, k, impl=impl))
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))

    return {
        "dense": (jax.jit(jax.value_and_grad(dense_loss, argnums=(0, 1, 2))), (w1.T, b1, w2, x, mask)),
        "routed": (routed_loss("auto"), (w1, b1, w2, x, router)),
        "routed_sparse": (routed_loss("sparse"), (w1, b1, w2, x, router)),
    }


def gather_case(s: int, k: int, key) -> dict:
    ks = jax.random.split(key, 3)
    values = jax.random.normal(ks[0], (M, k))
    idx = jax.lax.top_k(jax.random.normal(ks[1], (M, s)), k)[1]
    w2 = jax.random.normal(ks[2], (s, N)) / jnp.sqrt(k)

    def dense_loss(values, w2, idx):
        return jnp.sum(P.dense_rows(values, idx, s) @ w2)

    def gather_loss(values, w2, idx):
        return jnp.sum(P.gather_matmul(values, idx, w2))

    return {
        "dense": (jax.jit(jax.value_and_grad(dense_loss, argnums=(0, 1))), (values, w2, idx)),
        "gather": (jax.jit(jax.value_and_grad(gather_loss, argnums=(0, 1))), (values, w2, idx)),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="s = 1024 and 4096 only, short budgets")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    widths = WIDTHS[:2] if args.quick else WIDTHS
    budget = 0.5 if args.quick else 3.0

    machine_info = machine()
    results, ratios = [], {}
    started = time.perf_counter()
    for s in widths:
        for density in DENSITIES:
            k = int(s * density)
            tag = f"s{s}_density1_{density.denominator}"
            key = jax.random.fold_in(jax.random.key(0), s + k)
            t = race(mlp_case(s, k, key), budget)
            g = race(gather_case(s, k, key), budget)
            row = {
                "s": s, "k": k, "n": N, "batch": M, "router_rank": RANK, "density": str(density),
                "ideal": s / k,
                "dense_ms": 1e3 * t["dense"],
                "routed_ms": 1e3 * t["routed"],
                "routed_path": "sparse" if P.prefers_sparse(k, s, N) else "dense",
                "routed_sparse_ms": 1e3 * t["routed_sparse"],
                "speedup": t["dense"] / t["routed"],
                "speedup_sparse_only": t["dense"] / t["routed_sparse"],
                "efficiency": t["dense"] / t["routed"] / (s / k),
                "second_layer_out": N,
                "second_layer_dense_ms": 1e3 * g["dense"],
                "gather_ms": 1e3 * g["gather"],
                "gather_speedup": g["dense"] / g["gather"],
            }
            results.append(row)
            ratios[f"speedup_{tag}"] = row["speedup"]
            ratios[f"speedup_sparse_only_{tag}"] = row["speedup_sparse_only"]
            ratios[f"gather_speedup_{tag}"] = row["gather_speedup"]
            print(f"{tag:>22}  dense {row['dense_ms']:9.2f} ms  routed {row['routed_ms']:9.2f} ms "
                  f"({row['routed_path']}, ×{row['speedup']:.2f}; sparse-only ×{row['speedup_sparse_only']:.2f}; "
                  f"ideal ×{row['ideal']:.0f})  gather ×{row['gather_speedup']:.2f}", flush=True)

    report = {
        "benchmark": "primitives",
        "machine": machine_info,
        "description": "forward+backward of one gradient step, dense top-k MLP vs routed/gather paths; "
                       "speedup = dense time / sparse time",
        "config": {"batch": M, "n": N, "router_rank": RANK, "widths": list(widths),
                   "densities": [str(d) for d in DENSITIES], "sparse_max_density": str(Fraction(P.SPARSE_MAX_DENSITY)),
                   "sparse_max_row_elements": P.SPARSE_MAX_ROW_ELEMENTS,
                   "quick": args.quick},
        "ratios": ratios,
        "results": results,
        "wall_s": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} in {report['wall_s']:.0f} s")
    return report


if __name__ == "__main__":
    main()
