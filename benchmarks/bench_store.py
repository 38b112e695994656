"""Store write time per group as the store grows: append-only parts vs rewriting whole tables.

Writes `groups` small groups (4 runs, 10 curve points each) into one store with
`sparselearn.store.Store.write` (one part file per table per group) and times every write;
then, after all of them, in a second store, the earlier approach on fewer groups (the same
synthetic groups, from the same seed): read both tables, append the group, rewrite both files
(atomically) — its cost grows with everything already stored. The two run one after the
other, not alternating: compare them by the load average recorded before. No training: the
frames are synthetic, with the real schema.

    python benchmarks/bench_store.py            # 2,000 groups; the rewrite approach on 300
    python benchmarks/bench_store.py --quick    # 300 and 100; writes nothing unless --out names a file

Writes benchmarks/results/store.json (or the file named by --out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, save  # noqa: E402

from sparselearn.schema import CURVES, RUN_COLUMNS, RUN_DTYPES  # noqa: E402
from sparselearn.store import Store, write_parquet  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "store.json"
RUNS_PER_GROUP, CURVE_POINTS = 4, 10


def group_frames(g: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One group's rows: 4 runs and 10 curve points each, every column of the schema filled."""
    ids = [f"g{g:05d}r{i}" for i in range(RUNS_PER_GROUP)]
    runs = pd.DataFrame({c: [None] * RUNS_PER_GROUP for c in RUN_COLUMNS})
    runs["run_id"], runs["experiment"], runs["config_hash"], runs["group_id"] = ids, "bench", "h", f"g{g}"
    runs["target"], runs["learner"], runs["optimizer"], runs["loss"] = "sparse_parity", "mlp", "sgd", "hinge"
    for c in ("n", "k", "m", "width", "depth", "steps", "batch", "seed"):
        runs[c] = rng.integers(1, 1000, RUNS_PER_GROUP)
    for c in ("lr", "test_error", "test_loss", "train_error", "train_loss", "wall_s", "eps", "weight_decay"):
        runs[c] = rng.random(RUNS_PER_GROUP)
    runs["grid"], runs["status"], runs["online"] = '{"data.m": 64}', "ok", False
    runs = runs.astype({c: t for c, t in RUN_DTYPES.items() if t != "object"})
    curves = pd.DataFrame({"run_id": np.repeat(ids, CURVE_POINTS),
                           "step": np.tile(np.arange(CURVE_POINTS) * 100, RUNS_PER_GROUP),
                           **{c: rng.random(RUNS_PER_GROUP * CURVE_POINTS) for c in CURVES}})
    return runs, curves


def rewrite_all(path: Path, runs: pd.DataFrame, curves: pd.DataFrame) -> None:
    """The earlier store write: read both whole tables, replace this group's ids, rewrite both."""
    ids = set(runs["run_id"])
    for name, new in (("curves", curves), ("runs", runs)):
        file = path / f"{name}.parquet"
        old = pd.read_parquet(file) if file.exists() else None
        table = new if old is None else pd.concat([old[~old["run_id"].isin(ids)], new], ignore_index=True)
        write_parquet(table, file)


def timed(write, n: int, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    times = []
    for g in range(n):
        frames = group_frames(g, rng)
        start = time.perf_counter()
        write(*frames)
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float], window: int) -> dict:
    first, last = times[:window], times[-window:]
    return {"groups": len(times), "window": window, "first_ms": round(1e3 * float(np.median(first)), 3),
            "last_ms": round(1e3 * float(np.median(last)), 3),
            "last_over_first": round(float(np.median(last) / np.median(first)), 3),
            "total_s": round(float(np.sum(times)), 2),
            "per_decile_ms": [round(1e3 * float(np.median(c)), 3) for c in np.array_split(np.array(times), 10)]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groups", type=int, default=2000)
    p.add_argument("--rewrite-groups", type=int, default=300)
    p.add_argument("--quick", action="store_true", help="300 and 100 groups; writes nothing unless --out is given")
    p.add_argument("--out", type=Path, default=None, help=f"JSON path (default {RESULTS}; none with --quick)")
    args = p.parse_args(argv)
    if args.quick:
        args.groups, args.rewrite_groups = 300, 100
    window = max(10, min(100, args.rewrite_groups // 5))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "parts", "experiment: bench\n")
        parts = timed(store.write, args.groups)
        stored = store.runs()
        assert len(stored) == args.groups * RUNS_PER_GROUP and stored["run_id"].is_unique
        read_start = time.perf_counter()
        store.curves()
        read_s = time.perf_counter() - read_start
        old = Path(tmp) / "rewrite"
        old.mkdir()
        rewrite = timed(lambda r, c: rewrite_all(old, r, c), args.rewrite_groups)
    parts_same = parts[:args.rewrite_groups]
    doc = {"benchmark": "store", "machine": {**describe(), "load_average_before": [round(v, 2) for v in load_before]},
           "workload": {"runs_per_group": RUNS_PER_GROUP, "curve_points": CURVE_POINTS, "groups": args.groups,
                        "rewrite_groups": args.rewrite_groups, "quick": args.quick},
           "parts": summary(parts, window),
           "parts_first_rewrite_groups": summary(parts_same, window),
           "rewrite_all": summary(rewrite, window),
           "read_all_curves_s": round(read_s, 3),
           "ratios": {"parts_last_over_first": summary(parts, window)["last_over_first"],
                      "rewrite_last_over_first": summary(rewrite, window)["last_over_first"],
                      f"rewrite_over_parts_at_group_{args.rewrite_groups}":
                          round(float(np.median(rewrite[-window:]) / np.median(parts_same[-window:])), 2)}}
    print(json.dumps({k: doc[k] for k in ("parts", "rewrite_all", "ratios", "read_all_curves_s")}, indent=1))
    path = args.out or (None if args.quick else RESULTS)
    if path is not None:
        save(doc, path)
    return doc


if __name__ == "__main__":
    main()
