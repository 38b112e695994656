"""The benchmark scripts measure what they say: FLOP counts against the matrix products of the
step, medians of side-by-side modes, fair baselines, the GPU peaks by device name. No benchmark
runs here: only their formulas and helpers, on tiny inputs."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from jax.extend import core as jcore

from sparselearn import learners
from sparselearn import primitives as P
from sparselearn.train.losses import hinge

from bench_modules import bench

ROOT = Path(__file__).resolve().parents[1]



def dot_flops(jaxpr) -> int:
    """2 · output size · contracted size of every dot_general in `jaxpr` and its sub-jaxprs."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contracted, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in contracted)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(sub, jcore.ClosedJaxpr):
                    total += dot_flops(sub.jaxpr)
                elif isinstance(sub, jcore.Jaxpr):
                    total += dot_flops(sub)
    return total


def step_and_forward_flops(width: int, n: int, batch: int, points: int) -> tuple[int, int]:
    """Matrix-product FLOPs of one hinge SGD gradient of the mlp learner, and of a forward pass."""
    net = learners.get("mlp", width=width, depth=2)
    params = net.init_params(jax.random.key(0), n)
    x, y = jnp.ones((batch, n)), jnp.ones(batch)
    step = jax.value_and_grad(lambda p: jnp.mean(hinge(net.apply(p, x), y)))
    forward = dot_flops(jax.make_jaxpr(net.apply)(params, jnp.ones((points, n))).jaxpr)
    return dot_flops(jax.make_jaxpr(step)(params).jaxpr), forward


def test_train_benchmark_counts_the_matrix_products_of_its_step():
    bt = bench("bench_train")
    w = bt.Workload(width=24, n=7, batch=5)
    step, forward = step_and_forward_flops(w.width, w.n, w.batch, 11)
    assert bt.step_flops(w) == step
    assert bt.forward_flops(w, 11) == forward


def test_gpu_sweep_matmul_count_is_the_step_products_and_six_bp_overcounts_them():
    gpu = bench("bench_gpu")
    w = gpu.DRY_SWEEP
    step, forward = step_and_forward_flops(w.width, w.n, w.batch, 1)
    counted = gpu.sweep_flops(w)
    points = (1 + math.ceil(w.steps / w.eval_every)) * w.test_m + w.batch + w.m
    evals = w.runs * 2 * points * counted["params_per_run"]
    assert counted["flops_per_call_matmuls"] - evals == w.runs * w.steps * step
    # the 6·batch·params rule counts a first-layer input gradient that is never formed
    assert counted["flops_per_step"] > w.runs * step
    assert forward <= 2 * counted["params_per_run"]


def test_side_by_side_cold_time_is_the_median_process():
    machine = bench("_machine")
    prepare, train = iter([1.0, 2.0, 10.0]), iter([10.0, 2.0, 1.0])
    _, summary = machine.side_by_side(lambda mode: {"prepare_s": next(prepare), "train_s": next(train)},
                                      ("only",), 3)
    # processes of 11, 4 and 11 s: a cold run takes 11 s, not median(prepare) + median(train) = 4 s
    assert summary["only"]["cold_s"] == 11.0
    assert (summary["only"]["prepare_s"], summary["only"]["train_s"]) == (2.0, 2.0)


def test_dense_primitive_baseline_is_the_plain_top_k_mlp():
    bp = bench("bench_primitives")
    s, k = 1024, 16
    fn, args = bp.mlp_case(s, k, jax.random.key(0))["dense"]
    # no all-ones (n, s) mask multiplied into w1 on the dense side (6 % of its time at s = 4096)
    assert f"bool[{bp.N},{s}]" not in str(jax.make_jaxpr(fn)(*args))
    x, _, w1, b1, w2 = bp.mlp_data(s, k, jax.random.key(0))
    want = jnp.sum(P.topk_mlp_reference(x, w1, b1, w2, k))
    assert jnp.allclose(fn(*args)[0], want, rtol=1e-5)


def test_routed_primitive_baseline_is_the_routed_function_computed_densely():
    # the dense top-k MLP picks other units than the router: the routed speedups compare like with like
    cases = bench("bench_primitives").mlp_case(256, 4, jax.random.key(0))
    (fn, args), (sparse, sparse_args) = cases["routed_dense"], cases["routed_sparse"]
    assert args[2].ndim == 1   # w2 (s,): the mlp learner's scalar output
    for a, b in zip(jax.tree.leaves(fn(*args)), jax.tree.leaves(sparse(*sparse_args))):
        assert jnp.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_gpu_peaks_take_the_most_specific_name():
    peak = bench("bench_gpu").peak_flops
    assert peak("NVIDIA GH200 480GB", "highest") == (67.0e12, "GH200 fp32")
    assert peak("NVIDIA H200 NVL", "highest") == (60.0e12, "H200 NVL fp32")
    assert peak("NVIDIA H200 NVL", "default") == (417.5e12, "H200 NVL tf32")
    assert peak("NVIDIA H200", "default") == (494.7e12, "H200 tf32")
    assert peak("NVIDIA H100 NVL", "highest") == (60.0e12, "H100 NVL fp32")


def test_race_times_several_calls_per_sample_when_asked():
    bp = bench("bench_primitives")
    made = []

    def fn():
        made.append(1)
        return jnp.zeros(())

    times = bp.race({"only": (fn, ())}, budget_s=0.0, min_rounds=2, max_rounds=2, calls=3)
    # one compiling call, one to size the rounds, then 2 rounds of 3 calls
    assert len(times["only"]) == 2 and len(made) == 1 + 1 + 2 * 3


def test_train_benchmark_shows_why_its_sharded_child_failed(monkeypatch):
    bt = bench("bench_train")
    monkeypatch.setattr(bt, "bench_ours", lambda w, repeats, sharded=False: [])
    monkeypatch.setattr(bt.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 1, "", "Traceback …\nValueError: no such device"))
    with pytest.raises(RuntimeError, match="no such device"):
        bt.main(["--quick"])


def test_gpu_dry_run_asks_jax_for_the_cpu(tmp_path, monkeypatch):
    gpu = bench("bench_gpu")
    monkeypatch.setattr(gpu, "PARTS", {})
    before = jax.config.jax_platforms
    try:
        assert gpu.main(["--cpu-dry-run", "--out-dir", str(tmp_path)]) == 0
        assert jax.config.jax_platforms == "cpu"   # a GPU machine's dry run stays off its GPU
    finally:
        jax.config.update("jax_platforms", before)


def test_gpu_primitive_paths_that_disagree_with_dense_are_marked_and_not_counted():
    bg = bench("bench_gpu")
    x = jnp.arange(4.0)
    paths = {"dense": (lambda v: (jnp.sum(v), 2 * v), (x,)), "gather": (lambda v: (jnp.sum(v), 2 * v + 1e-7), (x,)),
             "gather_pallas": (lambda v: (jnp.sum(v), 3 * v), (x,))}
    rows = {r["path"]: r for r in bg.time_group(paths, "dense", 0.0, {"group": "g", "dtype": "float32"}, 1)}
    assert rows["gather"]["correct"] and not rows["gather_pallas"]["correct"]
    assert rows["gather_pallas"]["max_rel_error"] == pytest.approx(0.5, rel=1e-6)   # |3v − 2v| / max |2v|


def test_in_jit_timing_chains_every_call_to_the_one_before():
    bg, bp = bench("bench_gpu"), bench("bench_primitives")
    c, key = bg.DRY_CELLS, jax.random.key(0)
    for paths in (bg.second_layer_paths(c, jnp.dtype("float32"), key), bg.routed_paths(c, key)):
        for name, (fn, args) in paths.items():
            if name.endswith("_pallas"):   # they read the same arguments; interpret mode compiles slowly
                continue
            looped, looped_args = bp.in_jit(fn, args, 2)
            once = fn(*args)
            same = looped(*looped_args)   # scale 0: what one call returns
            assert all(jnp.allclose(a, b, rtol=1e-5)
                       for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(once))), name
            # scale 1: the second call reads the first one's output, so no call can be hoisted or merged
            chained = looped(jnp.float32(1.0), *looped_args[1:])
            assert not jnp.allclose(chained[0], once[0]), name


def outside_loop(hlo: str, ops=("gather", "sort")) -> list[str]:
    """Instructions of a compiled module's ENTRY, outside its largest while loop, that read
    a parameter and are, or call a computation holding, one of `ops`: work on the
    arguments that XLA hoisted out of the loop."""
    comps, entry = {}, None   # computation name → [(instruction, opcode, names it refers to)]
    for block in re.split(r"\n(?=\S)", hlo):
        head = re.match(r"(ENTRY )?%(\S+) .*\{$", block.split("\n")[0])
        if head:
            found = (re.match(r"\s*(?:ROOT )?%(\S+) = .*? ([\w-]+)\((.*)", line) for line in block.split("\n")[1:])
            comps[head[2]] = [(f[1], f[2], set(re.findall(r"%([\w.-]+)", f[3]))) for f in found if f]
            entry = head[2] if head[1] else entry

    def reach(name: str, seen: set) -> set:
        if name in comps and name not in seen:
            seen.add(name)
            for _, _, refs in comps[name]:
                for r in refs:
                    reach(r, seen)
        return seen

    holding = {c for c, body in comps.items() if any(op in ops for _, op, _ in body)}
    whiles = [(name, refs) for name, op, refs in comps[entry] if op == "while"]
    assert holding, f"no {ops} found anywhere: the HLO text was not parsed"
    loop = max(whiles, key=lambda w: len(set().union(*(reach(r, set()) for r in w[1]))))[0]
    reads, hoisted = set(), []
    for name, op, refs in comps[entry]:
        if op == "parameter" or refs & reads:
            reads.add(name)
            if name != loop and (op in ops or any(reach(r, set()) & holding for r in refs)):
                hoisted.append(f"{name} = {op}(…)")
    return hoisted


def test_in_jit_timing_hoists_no_gather_or_sort_of_the_arguments_out_of_its_loop():
    # with only the values chained, w2[idx] (gather) and the Pallas scatter's argsort(idx) read
    # loop-invariant arguments alone: XLA ran them once for all calls and the speedup was inflated
    bg, bp = bench("bench_gpu"), bench("bench_primitives")
    paths = bg.second_layer_paths(bg.DRY_CELLS, jnp.dtype("float32"), jax.random.key(0))
    for name in ("gather", "gather_pallas"):
        looped, looped_args = bp.in_jit(*paths[name], 2)
        assert outside_loop(looped.lower(*looped_args).compile().as_text()) == [], name


def test_device_check_runs_each_part_once_under_its_own_limit(tmp_path):
    fake = tmp_path / "python"   # stands in for the interpreter: records how bench_gpu.py was called
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {tmp_path / "calls"}\n')
    fake.chmod(0o755)
    script = str(ROOT / "benchmarks" / "device_check.sh")
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(fake)}

    def calls(*args):
        (tmp_path / "calls").unlink(missing_ok=True)
        done = subprocess.run(["bash", script, "--cpu-dry-run", *args], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return (tmp_path / "calls").read_text().splitlines()

    both = calls("--out-dir", "/x")
    assert [c.split()[:3] for c in both] == [["benchmarks/bench_gpu.py", "--part", "sweep"],
                                              ["benchmarks/bench_gpu.py", "--part", "primitives"]]
    assert all(c.count("--part") == 1 and c.endswith("--cpu-dry-run --out-dir /x") for c in both)
    # a part asked for runs alone, once: a --part passed on after the script's own overrode it
    assert calls("--out-dir", "/x", "--part", "sweep") == [both[0]]
    assert calls("--part=primitives", "--out-dir", "/x", "--part", "primitives") == [both[1]]
    assert calls("--part", "all", "--out-dir", "/x") == both
    done = subprocess.run(["bash", script, "--cpu-dry-run", "--part", "train"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "unknown part" in done.stderr


def test_device_check_falls_back_to_python3_and_says_when_there_is_none(tmp_path):
    bin_dir = tmp_path / "bin"   # a PATH with no `python`: the tools the dry run uses, and python3 or not
    bin_dir.mkdir()
    for tool in ("dirname", "timeout"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    script, env = str(ROOT / "benchmarks" / "device_check.sh"), {"PATH": str(bin_dir)}

    def check(*args):
        return subprocess.run([shutil.which("bash"), script, "--cpu-dry-run", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    done = check("--part", "sweep")
    assert done.returncode == 127 and "interpreter not found" in done.stderr and "GPU" not in done.stderr
    fake = bin_dir / "python3"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls"}\n')
    fake.chmod(0o755)
    assert check("--part", "sweep").returncode == 0
    assert (tmp_path / "calls").read_text().split()[:3] == ["benchmarks/bench_gpu.py", "--part", "sweep"]


def test_gpu_bfloat16_second_layer_paths_run_and_agree_at_dry_run_sizes():
    # the dry run times float32 only (tests/test_pallas.py holds every dry-run path to 1e-4 of dense)
    bg = bench("bench_gpu")
    c = bg.DRY_CELLS
    with jax.default_matmul_precision(c.precision):
        rows = bg.time_group(bg.second_layer_paths(c, jnp.dtype("bfloat16"), jax.random.key(0)), "dense", 0.0,
                             {"group": "second_layer", "dtype": "bfloat16"}, 1, loop_calls=2)
    assert {r["path"] for r in rows} == {"dense", "gather", "gather_pallas"}
    for r in rows:
        assert "error" not in r and "error_in_jit" not in r and r["correct"] and r["ms_in_jit"] > 0, r


def test_fresh_process_records_the_settings_it_ran_with():
    machine = bench("_machine")
    script = ("import json, os; print(json.dumps({k: os.environ.get(k) for k in "
              "('XLA_FLAGS', 'SPARSELEARN_CACHE', 'OMP_NUM_THREADS')}))")
    got = machine.on_cores(script, ["x"], 1)
    # the report's `machine` describes the parent; each group keeps how its processes ran
    assert got["process"]["environment"] == {k: got[k] for k in ("XLA_FLAGS", "SPARSELEARN_CACHE", "OMP_NUM_THREADS")}
    assert "--xla_force_host_platform_device_count=1" in got["process"]["environment"]["XLA_FLAGS"]
    assert got["process"]["cores"] == 1
