"""Forward + backward time of the sparse primitives against their dense baselines.

For every hidden width s and density k/s it times one gradient step (values and
gradients of all weights) of

- routed_dense:   routed_mlp(..., impl="dense"), the routed network (w2 (s,), a scalar
                  output as in the `mlp` learner) computed densely: the routed paths' baseline;
- routed:         routed_mlp(..., impl="auto"), what the `mlp` learner runs with
                  `routed: true` (dense fallback outside `prefers_sparse`);
- routed_sparse:  routed_mlp(..., impl="sparse") everywhere, to show where it loses;
- dense:          relu(topk(x @ w1ᵀ + b1, k)) @ w2, all s units, as `topk_mlp_reference`,
                  which picks its units by the true pre-activations, not by the router: a
                  different function, kept for comparison (`*_vs_topk_dense`);
- second layer with out = n: gather_matmul(values, idx, w2, impl="sparse") (the gather
  path) and impl="auto" against dense_rows(values, idx, s) @ w2.

The contenders of one cell run side by side: every round times each of them once, in
turn, so a change in machine load hits all of them. A speedup is the median over
rounds of (baseline time / sparse time) within the round; the *_ms figures are medians
of the rounds. `ideal` is s/k, the FLOP ratio of the first layer. The load average is
recorded before and after every cell: other processes on the machine inflate the
timings, and not evenly (in our runs on a busy machine the dense path, whose matrix
products use every core, slowed down more than the sparse loops, which run on one),
so compare figures only within one run and read them with its load.

`ratios["speedup_<cell>"]` is the faster of the two sparse paths as `impl="auto"` runs
them (routed, or the second layer by gather), the figure the targets are checked on;
`routed_speedup_`, `routed_sparse_only_speedup_`, `gather_speedup_` and
`gather_auto_speedup_` give each path on its own. At density 1/4 the target is checked
on both auto paths.

At s = 4096, density 1/64 it also times the pieces of both paths on their own
(`breakdown_s4096_density1_64`), to show where the time goes, and one gradient step of
the `mlp` learner with ReLU, top-k and routed top-k units (`mlp_learner_step_ms`), the
speed a user of `activation: topk` / `routed: true` gets.

Run: python benchmarks/bench_primitives.py [--quick]   (~130 s on a 2-core CPU)
Writes benchmarks/results/primitives.json (with --quick, only a file named by --out).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from sparselearn import primitives as P  # noqa: E402
from sparselearn.learners.mlp import MLP  # noqa: E402
from sparselearn.primitives import _rows  # noqa: E402

M, N, RANK = 256, 512, 8
WIDTHS = (1024, 4096, 16384)
DENSITIES = (Fraction(1, 4), Fraction(1, 16), Fraction(1, 64))
TARGET_SPEEDUP = 4.0          # routed or gather path at s = 4096, density 1/64
TARGET_WORST_SLOWDOWN = 1.2   # routed (auto) at density 1/4
OUT = Path(__file__).parent / "results" / "primitives.json"


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _once(fn, args, calls: int = 1) -> float:
    """Seconds per call of `calls` calls in a row, blocking on the last only: a device runs
    them in order, so a short call's time is not that of a round trip from the host."""
    t = time.perf_counter()
    for _ in range(calls - 1):
        fn(*args)
    jax.block_until_ready(fn(*args))
    return (time.perf_counter() - t) / calls


def in_jit(fn, args, n: int):
    """(looped, looped_args): `n` calls of `fn(*args)` inside one jitted `lax.fori_loop`, each
    call's inputs made to depend on the previous call's output: every array in `args` (index
    arrays and the leaves of pytrees included) plus `scale` · the sum of the first output
    leaf, cast to its dtype, `scale` a traced 0.0 (so no value changes). As every input
    changes from one call to the next, XLA can hoist no part of a call out of the loop (work
    on some arguments alone, such as gathering w2[idx] or sorting idx, would otherwise run
    once for all `n` calls) nor merge calls; and as every output is carried to the end, no
    part of a call is dead code. One `looped(*looped_args)` does the work of `n` calls with
    one dispatch from the host and returns what one call returns."""
    args = tuple(args)
    shapes = jax.eval_shape(fn, *args)

    def looped(scale, *args):
        def body(_, carry):
            args, _ = carry
            out = fn(*args)
            link = scale * jnp.sum(jax.tree.leaves(out)[0])
            return jax.tree.map(lambda a: a + link.astype(a.dtype), args), out

        init = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return jax.lax.fori_loop(0, n, body, (args, init))[1]

    return jax.jit(looped), (jnp.float32(0.0), *args)


def race(contenders: dict, budget_s: float, min_rounds: int = 7, max_rounds: int = 151, calls: int = 1) -> dict:
    """Seconds per call of each jitted (fn, args), one list entry per round (each `calls`
    calls, see `_once`); every round calls every contender, in turn, starting one further
    along the list each round (so that no contender always runs just after the same one,
    with its caches as that one left them)."""
    for fn, args in contenders.values():
        jax.block_until_ready(fn(*args))  # compile
    first = {name: _once(fn, args) for name, (fn, args) in contenders.items()}
    rounds = int(max(min_rounds, min(max_rounds, budget_s / max(calls * sum(first.values()), 1e-9))))
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(_once(*contenders[name], calls))
    return times


def ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def speedup(base: list[float], other: list[float]) -> float:
    """Median over rounds of base / other, the two timed in the same round."""
    return statistics.median(b / o for b, o in zip(base, other))


def speedup_of_fastest(base: list[float], other: list[float]) -> float:
    """Fastest base round / fastest other round: the least disturbed estimate on a busy machine."""
    return min(base) / min(other)


def mlp_data(s: int, k: int, key):
    ks = jax.random.split(key, 6)
    x = jax.random.normal(ks[0], (M, N))
    router = (jax.random.normal(ks[1], (N, RANK)), jax.random.normal(ks[2], (RANK, s)))
    w1 = jax.random.normal(ks[3], (s, N)) / jnp.sqrt(N)
    b1 = jnp.zeros(s)
    w2 = jax.random.normal(ks[4], (s,)) / jnp.sqrt(k)
    return x, router, w1, b1, w2


def mlp_case(s: int, k: int, key) -> dict:
    x, router, w1, b1, w2 = mlp_data(s, k, key)

    def dense_loss(w1t, b1, w2, x):
        z = x @ w1t + b1
        return jnp.sum(jax.nn.relu(P.topk(z, k)) @ w2)

    def routed_loss(impl):
        def loss(w1, b1, w2, x, router):
            return jnp.sum(P.routed_mlp(x, router, w1, b1, w2, k, impl=impl))
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))

    return {
        "dense": (jax.jit(jax.value_and_grad(dense_loss, argnums=(0, 1, 2))), (w1.T, b1, w2, x)),
        "routed_dense": (routed_loss("dense"), (w1, b1, w2, x, router)),
        "routed": (routed_loss("auto"), (w1, b1, w2, x, router)),
        "routed_sparse": (routed_loss("sparse"), (w1, b1, w2, x, router)),
    }


def gather_data(s: int, k: int, key):
    ks = jax.random.split(key, 3)
    values = jax.random.normal(ks[0], (M, k))
    idx = jax.lax.top_k(jax.random.normal(ks[1], (M, s)), k)[1]
    w2 = jax.random.normal(ks[2], (s, N)) / jnp.sqrt(k)
    return values, idx, w2


def gather_case(s: int, k: int, key) -> dict:
    values, idx, w2 = gather_data(s, k, key)

    def dense_loss(values, w2, idx):
        return jnp.sum(P.dense_rows(values, idx, s) @ w2)

    def gather_loss(impl):
        def loss(values, w2, idx):
            return jnp.sum(P.gather_matmul(values, idx, w2, impl=impl))
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

    return {
        "dense": (jax.jit(jax.value_and_grad(dense_loss, argnums=(0, 1))), (values, w2, idx)),
        "gather": (gather_loss("sparse"), (values, w2, idx)),
        "gather_auto": (gather_loss("auto"), (values, w2, idx)),
    }


def combine_by_contraction(coef, idx, table):
    """`_rows.row_combine` the way it was first written, for comparison: gather each
    chunk's (c, k, d) rows into memory, then contract them with the coefficients."""
    return _rows._gather_contract("ck,ckd->cd", coef, idx, table, table.shape[1])


def learner_steps(budget_s: float) -> dict:
    """Milliseconds of one gradient of the `mlp` learner's square loss on a batch (m, n),
    router construction included: ReLU, top-k and routed top-k at width 4096, k = 64 (depth
    2) and at width 1024, k = 16 (depth 3)."""
    x = jax.random.normal(jax.random.key(0), (M, N))
    y = jax.random.normal(jax.random.key(1), (M,))
    nets = {
        "depth 2, width 4096: relu": MLP(width=4096),
        "depth 2, width 4096: topk k=64": MLP(width=4096, activation="topk", k=64),
        "depth 2, width 4096: routed k=64": MLP(width=4096, activation="topk", k=64, routed=True),
        "depth 3, width 1024: relu": MLP(width=1024, depth=3),
        "depth 3, width 1024: topk k=16": MLP(width=1024, depth=3, activation="topk", k=16),
        "depth 3, width 1024: routed k=16": MLP(width=1024, depth=3, activation="topk", k=16, routed=True),
    }
    steps = {}
    for name, net in nets.items():
        loss = functools.partial(lambda net, p: jnp.mean((net.apply(p, x) - y) ** 2), net)
        steps[name] = (jax.jit(jax.value_and_grad(loss)), (net.init_params(jax.random.key(2), N),))
    t = race(steps, budget_s)
    return {name: round(ms(ts), 3) for name, ts in t.items()}


def breakdown(s: int, k: int, key, budget_s: float) -> dict:
    """Milliseconds of the pieces of the dense, routed and gather paths, each jitted alone."""
    x, router, w1, b1, w2 = mlp_data(s, k, key)
    values, idx_g, w2_wide = gather_data(s, k, key)
    scores = (x @ router[0]) @ router[1] + b1
    idx = jax.lax.top_k(scores, k)[1]
    coef = jax.random.normal(jax.random.fold_in(key, 7), (M, k))
    g_wide = jax.random.normal(jax.random.fold_in(key, 8), (M, N))
    z = x @ w1.T + b1
    full = {**{f"total {'topk dense' if name == 'dense' else name}": c
               for name, c in mlp_case(s, k, key).items() if name != "routed"},
            **{f"total second layer {name}": c for name, c in gather_case(s, k, key).items()
               if name != "gather_auto"}}
    pieces = {
        "dense: z = x @ w1 (forward matmul)": (jax.jit(lambda x, w: x @ w.T), (x, w1)),
        "dense: d_w1 = x^T g (backward matmul)": (jax.jit(lambda x, g: x.T @ g), (x, z)),
        "dense: topk(z, k) keep mask": (jax.jit(lambda z: P.topk(z, k)), (z,)),
        "routed: route (router scores + lax.top_k)": (jax.jit(lambda x, r, b: P.route(x, r, b, k)), (x, router, b1)),
        "routed: lax.top_k of the scores alone": (jax.jit(lambda sc: jax.lax.top_k(sc, k)), (scores,)),
        "routed: row_dots x . w1[idx] (forward)": (jax.jit(_rows.row_dots), (x, w1, idx)),
        "routed: row_scatter_add d_w1 (backward)": (
            jax.jit(lambda i, c, x: _rows.row_scatter_add(s, i, c, x, jnp.float32)), (idx, coef, x)),
        "routed: row_combine d_x (backward, only when x needs a gradient)": (jax.jit(_rows.row_combine),
                                                                            (coef, idx, w1)),
        "gather: row_combine (forward, out = n)": (jax.jit(_rows.row_combine), (values, idx_g, w2_wide)),
        "gather: row_combine by gather-then-contract, for comparison": (jax.jit(combine_by_contraction),
                                                                        (values, idx_g, w2_wide)),
        "gather: row_dots d_values (backward)": (jax.jit(_rows.row_dots), (g_wide, w2_wide, idx_g)),
        "gather: row_scatter_add d_w2 (backward)": (
            jax.jit(lambda i, c, g: _rows.row_scatter_add(s, i, c, g, jnp.float32)), (idx_g, values, g_wide)),
    }
    t = race({**full, **pieces}, budget_s)
    return {name: round(ms(ts), 3) for name, ts in t.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="s = 1024 and 4096 only, short budgets")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON (default {OUT}; none with --quick)")
    args = parser.parse_args(argv)
    widths = WIDTHS[:2] if args.quick else WIDTHS
    budget = 0.5 if args.quick else 4.0

    machine_info = describe()
    results, ratios = [], {}
    started = time.perf_counter()
    for s in widths:
        for density in DENSITIES:
            k = int(s * density)
            tag = f"s{s}_density1_{density.denominator}"
            key = jax.random.fold_in(jax.random.key(0), s + k)
            load_before = load_average()
            t = race(mlp_case(s, k, key), budget)
            g = race(gather_case(s, k, key), budget)
            row = {
                "s": s, "k": k, "n": N, "batch": M, "router_rank": RANK, "density": str(density),
                "ideal": s / k,
                "rounds": len(t["dense"]), "rounds_second_layer": len(g["dense"]),
                "routed_dense_ms": ms(t["routed_dense"]),
                "routed_ms": ms(t["routed"]),
                "routed_path": "sparse" if P.prefers_sparse(k, s, N) else "dense",
                "routed_sparse_ms": ms(t["routed_sparse"]),
                "speedup": speedup(t["routed_dense"], t["routed"]),
                "speedup_sparse_only": speedup(t["routed_dense"], t["routed_sparse"]),
                "speedup_of_fastest_rounds": speedup_of_fastest(t["routed_dense"], t["routed"]),
                "speedup_sparse_only_of_fastest_rounds": speedup_of_fastest(t["routed_dense"], t["routed_sparse"]),
                "topk_dense_ms": ms(t["dense"]),
                "speedup_vs_topk_dense": speedup(t["dense"], t["routed"]),
                "speedup_sparse_only_vs_topk_dense": speedup(t["dense"], t["routed_sparse"]),
                "second_layer_out": N,
                "second_layer_dense_ms": ms(g["dense"]),
                "gather_ms": ms(g["gather"]),
                "gather_speedup": speedup(g["dense"], g["gather"]),
                "gather_speedup_of_fastest_rounds": speedup_of_fastest(g["dense"], g["gather"]),
                "gather_auto_path": "sparse" if P.gather_prefers_sparse(k, s, N) else "dense",
                "gather_auto_ms": ms(g["gather_auto"]),
                "gather_auto_speedup": speedup(g["dense"], g["gather_auto"]),
                "load_average_before": load_before,
                "load_average_after": load_average(),
            }
            row["efficiency"] = row["speedup"] / row["ideal"]
            results.append(row)
            # the headline: the faster of the two sparse paths as impl="auto" runs them
            ratios[f"speedup_{tag}"] = max(row["speedup"], row["gather_auto_speedup"])
            ratios[f"routed_speedup_{tag}"] = row["speedup"]
            ratios[f"routed_sparse_only_speedup_{tag}"] = row["speedup_sparse_only"]
            ratios[f"gather_speedup_{tag}"] = row["gather_speedup"]
            ratios[f"gather_auto_speedup_{tag}"] = row["gather_auto_speedup"]
            print(f"{tag:>22}  dense {row['routed_dense_ms']:8.2f} ms  routed {row['routed_ms']:8.2f} ms "
                  f"({row['routed_path']}, x{row['speedup']:.2f}; sparse-only x{row['speedup_sparse_only']:.2f}; "
                  f"ideal x{row['ideal']:.0f})  gather x{row['gather_speedup']:.2f} "
                  f"(auto {row['gather_auto_path']} x{row['gather_auto_speedup']:.2f})  "
                  f"load {row['load_average_before'][0] if row['load_average_before'] else '?'}", flush=True)

    pieces = None
    if 4096 in widths:
        pieces = breakdown(4096, 64, jax.random.fold_in(jax.random.key(0), 4096 + 64), budget)
        for name, v in pieces.items():
            print(f"    {name:<70} {v:8.3f} ms")

    learner = learner_steps(budget)
    for name, v in learner.items():
        print(f"    mlp learner, {name:<57} {v:8.3f} ms")
    for depth, width, k in ((2, 4096, 64), (3, 1024, 16)):
        relu, topk, routed = (learner[f"depth {depth}, width {width}: {kind}"]
                              for kind in ("relu", f"topk k={k}", f"routed k={k}"))
        ratios[f"learner_routed_vs_topk_depth{depth}_width{width}"] = topk / routed
        ratios[f"learner_routed_vs_relu_depth{depth}_width{width}"] = relu / routed

    best = ratios.get("speedup_s4096_density1_64", 0.0)
    # at density 1/4 both auto paths must hold up, whichever a user's shapes lead to
    worst_quarter = min((min(r["speedup"], r["gather_auto_speedup"]) for r in results if r["density"] == "1/4"),
                        default=None)
    loads = [r["load_average_before"][0] for r in results if r["load_average_before"]]
    # the benchmark itself keeps about one core busy: more than one process per core is busy
    busy = bool(loads) and max(loads) > (os.cpu_count() or 1)
    report = {
        "benchmark": "primitives",
        "machine": machine_info,
        "description": "forward+backward of one gradient step: routed_mlp impl=auto/sparse vs impl=dense "
                       "(the same function computed densely; *_vs_topk_dense: vs the dense top-k MLP, which "
                       "picks units by their pre-activations), second layer gather_matmul vs dense_rows @ w2; "
                       "speedup = median over side-by-side rounds of baseline time / sparse time; "
                       "ratios: speedup_<cell> = the faster of routed (impl=auto) and gather (impl=auto), "
                       "routed_speedup_, routed_sparse_only_speedup_, gather_speedup_ (impl=sparse) and "
                       "gather_auto_speedup_ each path on its own",
        "config": {"batch": M, "n": N, "router_rank": RANK, "widths": list(widths),
                   "densities": [str(d) for d in DENSITIES],
                   "sparse_max_density": str(Fraction(P.SPARSE_MAX_DENSITY)),
                   "sparse_max_row_elements": P.SPARSE_MAX_ROW_ELEMENTS,
                   "gather_max_density": str(Fraction(P.GATHER_MAX_DENSITY)),
                   "gather_max_row_elements": P.GATHER_MAX_ROW_ELEMENTS,
                   "gather_mid_density": str(Fraction(P.GATHER_MID_DENSITY)),
                   "gather_mid_row_elements": P.GATHER_MID_ROW_ELEMENTS,
                   "quick": args.quick},
        "ratios": ratios,
        "busy_machine": busy,
        "busy_machine_note": ("other processes kept the cores busy during this run (see the load averages); "
                              "the dense path suffered more from it than the sparse loops, so these speedups "
                              "overstate those of an idle machine") if busy else None,
        # "met" is left open (None) for a run on a busy machine, which flatters the sparse paths
        "targets": {
            "speedup_s4096_density1_64_routed_or_gather": {
                "required": TARGET_SPEEDUP, "measured": best,
                "met": None if busy else best >= TARGET_SPEEDUP},
            "auto_speedup_density1_4_worst_of_routed_and_gather": {
                "required": 1 / TARGET_WORST_SLOWDOWN, "measured": worst_quarter,
                "met": None if busy or worst_quarter is None else worst_quarter >= 1 / TARGET_WORST_SLOWDOWN},
        },
        "results": results,
        "breakdown_s4096_density1_64_ms": pieces,
        "mlp_learner_step_ms": learner,
        "load_average_start": machine_info.get("load_average"),
        "load_average_end": load_average(),
        "wall_s": time.perf_counter() - started,
    }
    if args.out is None and args.quick:  # a smoke check never replaces the committed full run
        print(f"--quick: nothing written (pass --out to keep it), {report['wall_s']:.0f} s")
        return report
    args.out = args.out or OUT
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} in {report['wall_s']:.0f} s (load average {report['load_average_start']} → "
          f"{report['load_average_end']})")
    return report


if __name__ == "__main__":
    main()
