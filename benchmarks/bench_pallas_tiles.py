"""Tile sizes of the Pallas kernels on a GPU: each kernel alone, at each candidate tile, against
the XLA path (`_rows`, what impl="sparse" runs) and the dense matrix product it replaces.

The three kernels of the gather path's gradient step at the GPU check's size (bench_gpu.py:
s = 4096, k = 64, batch m = 256, out d = 512, float32):

- combine:  out (m, d) = Σ_j coef[:, j] · table[idx[:, j]]     (the forward pass)
            dense: (m, s) @ (s, d)
- dots:     out (m, k) = table[idx] · x                         (the values' gradient)
            dense: (m, d) @ (s, d)ᵀ
- scatter:  out (s, d) = Σ coef · x over the pairs of each unit (the table's gradient; the
            sort of the indices that it needs is timed apart, as `sort`)
            dense: (m, s)ᵀ @ (m, d)

Every variant is timed as `ms_in_jit` of bench_gpu.py (50 chained calls inside one jit,
`bench_primitives.in_jit`), values checked against the XLA path first. Each kernel's tiles
are the block sizes of `pallas.kernels` (powers of two ≥ 16) and Triton's number of warps.

Run on a GPU from the repository root:  PYTHONPATH=. python benchmarks/bench_pallas_tiles.py
(about a minute, mostly Triton compiles) → benchmarks/results/pallas-tiles-gpu.json.
`--cpu-dry-run` runs every path on the CPU at tiny sizes (interpret mode) and writes
pallas-tiles-gpu-dry-run.json to a temporary folder (or --out-dir).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from bench_primitives import in_jit, ms, race  # noqa: E402

from sparselearn import primitives as P  # noqa: E402
from sparselearn.primitives import _rows  # noqa: E402
from sparselearn.primitives.pallas import kernels  # noqa: E402
from jax.experimental.pallas import triton as plgpu  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FULL = dict(s=4096, k=64, m=256, d=512)
DRY = dict(s=64, k=4, m=16, d=32)
LOOPS = 50


def data(s, k, m, d, key):
    ks = jax.random.split(key, 4)
    idx = jax.lax.top_k(jax.random.normal(ks[0], (m, s)), k)[1].astype(jnp.int32)
    coef = jax.random.normal(ks[1], (m, k))
    table = jax.random.normal(ks[2], (s, d)) / jnp.sqrt(k)
    x = jax.random.normal(ks[3], (m, d))
    return idx, coef, table, x


def with_warps(warps: int):
    """Point the kernels at Triton parameters with `warps` warps (kernels are cached per options)."""
    kernels._TRITON = plgpu.CompilerParams(num_warps=warps)
    kernels._platform_kernel.cache_clear()


def variants(dry: bool):
    """(kernel, tiles) candidates: tiles a dict of block sizes and warps."""
    small = [16] if dry else [16, 32, 64]
    cols = [32] if dry else [32, 64, 128, 256]
    warps = [4] if dry else [4, 8]
    for rows, c, w in itertools.product(small, cols, warps):
        yield "combine", dict(block_rows=rows, block_cols=c, warps=w)
    for pairs, c, w in itertools.product([16] if dry else [16, 32, 64, 128], [32] if dry else [64, 128, 256], warps):
        yield "dots", dict(block_pairs=pairs, block_cols=c, warps=w)
    for pairs, c, w in itertools.product(small, [32] if dry else [64, 128, 256, 512], warps):
        yield "scatter", dict(block_pairs=pairs, block_cols=c, warps=w)


def kernel_call(kernel: str, tiles: dict, s: int):
    blocks = {k: v for k, v in tiles.items() if k != "warps"}
    if kernel == "combine":
        return lambda idx, coef, table, x: kernels.row_combine(coef, idx, table, **blocks)
    if kernel == "dots":
        return lambda idx, coef, table, x: kernels.row_dots(x, table, idx, **blocks)
    return lambda idx, coef, table, x: kernels.row_scatter_add(s, idx, coef, x, table.dtype, **blocks)


def references(s: int):
    """Per kernel: the XLA path's function and the dense product's, of (idx, coef, table, x)."""
    return {
        "combine": (lambda idx, coef, table, x: _rows.row_combine(coef, idx, table),
                    lambda idx, coef, table, x: P.dense_rows(coef, idx, s) @ table),
        "dots": (lambda idx, coef, table, x: _rows.row_dots(x, table, idx),
                 lambda idx, coef, table, x: x @ table.T),
        "scatter": (lambda idx, coef, table, x: _rows.row_scatter_add(s, idx, coef, x, table.dtype),
                    lambda idx, coef, table, x: P.dense_rows(coef, idx, s).T @ x),
    }


def timed(fns: dict, args, budget_s: float) -> dict:
    loops = {name: in_jit(fn, args, LOOPS) for name, fn in fns.items()}
    times = race(loops, budget_s, min_rounds=5, max_rounds=31)
    return {name: ms(t) / LOOPS for name, t in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-dry-run", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds of timing per variant")
    args = parser.parse_args(argv)
    if args.cpu_dry_run:
        jax.config.update("jax_platforms", "cpu")
    elif jax.default_backend() != "gpu":
        print("bench_pallas_tiles: no GPU visible to jax; use --cpu-dry-run", file=sys.stderr)
        return 3
    size = DRY if args.cpu_dry_run else FULL
    s = size["s"]
    started = time.perf_counter()
    inputs = data(**size, key=jax.random.key(0))
    refs = references(s)
    report = {"benchmark": "pallas-tiles-gpu", "dry_run": args.cpu_dry_run, "machine": describe(),
              "device_kind": jax.devices()[0].device_kind, "size": size, "dtype": "float32",
              "defaults": {"combine": [kernels.COMBINE_ROWS, kernels.COMBINE_COLS],
                           "dots": [kernels.DOTS_PAIRS, kernels.DOTS_COLS],
                           "scatter": [kernels.SCATTER_PAIRS, kernels.SCATTER_COLS], "warps": 4},
              "baselines_ms": {}, "variants": [], "best": {}}
    for name, (xla, dense) in refs.items():
        report["baselines_ms"][name] = timed({"xla": xla, "dense": dense}, inputs, 4 * args.budget)
        print(f"{name:8s} xla {report['baselines_ms'][name]['xla']:.4f} ms   "
              f"dense {report['baselines_ms'][name]['dense']:.4f} ms", flush=True)
    report["baselines_ms"]["sort"] = timed({"sort": lambda idx, coef, table, x: kernels.pairs_by_unit(idx, s)},
                                           inputs, args.budget)["sort"]
    out = (args.out_dir or (Path(tempfile.gettempdir()) if args.cpu_dry_run else RESULTS)) / \
        f"pallas-tiles-gpu{'-dry-run' if args.cpu_dry_run else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    for kernel, tiles in variants(args.cpu_dry_run):
        with_warps(tiles["warps"])
        fn = kernel_call(kernel, tiles, s)
        entry = {"kernel": kernel, **tiles}
        try:
            want = np.asarray(jax.jit(refs[kernel][0])(*inputs))
            got = np.asarray(jax.jit(fn)(*inputs))
            entry["max_rel_error"] = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
            entry["ms_in_jit"] = timed({"k": fn}, inputs, args.budget)["k"]
        except Exception as error:  # noqa: BLE001 - a tile Triton refuses: recorded, the scan goes on
            entry["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        report["variants"].append(entry)
        print(json.dumps(entry), flush=True)
        report["wall_s"] = time.perf_counter() - started
        out.write_text(json.dumps(report, indent=2) + "\n")
    with_warps(4)
    for kernel in refs:
        done = [v for v in report["variants"] if v["kernel"] == kernel and "ms_in_jit" in v
                and v["max_rel_error"] < 1e-4]
        if done:
            best = min(done, key=lambda v: v["ms_in_jit"])
            report["best"][kernel] = {**best, "vs_xla": report["baselines_ms"][kernel]["xla"] / best["ms_in_jit"],
                                      "vs_dense": report["baselines_ms"][kernel]["dense"] / best["ms_in_jit"]}
            print(f"best {kernel}: {best}", flush=True)
    report["wall_s"] = time.perf_counter() - started
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} ({report['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
