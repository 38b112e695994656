"""The Pallas kernels agree with dense references (values and gradients), in Pallas
interpret mode on CPU; they lower to Triton for CUDA; `impl="auto"` does not take them
until a GPU measurement says so; the GPU device check runs end to end in its dry-run mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparselearn import primitives as P
from sparselearn.primitives import pallas
from sparselearn.primitives.pallas import kernels as K

from bench_modules import bench

ROOT = Path(__file__).resolve().parents[1]


def tol(dtype) -> dict:
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == jnp.float32 else {"rtol": 3e-2, "atol": 3e-2}


def close(a, b, dtype=jnp.float32):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), **tol(dtype))


def normal(seed: int, shape, dtype=jnp.float32):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32).astype(dtype)


def indices(seed: int, m: int, k: int, s: int, crowd: bool) -> jax.Array:
    """(m, k) unit indices, repeats allowed; with `crowd`, every example's first slot is unit
    3, so that unit has more pairs than one step of the scatter kernel sums."""
    idx = jax.random.randint(jax.random.key(seed), (m, k), 0, s)
    return idx.at[:, 0].set(3) if crowd else idx


# (m, k, s, d, crowd): blocks of 16 below, so 37 and 70 leave partial tiles, 5 rows fit in one
SHAPES = [(37, 5, 50, 70, True), (5, 3, 8, 16, False), (16, 1, 4, 33, True)]
DTYPES = [jnp.float32, jnp.bfloat16]
SMALL_BLOCKS = {"combine": {"block_rows": 16, "block_cols": 16},
                "pairs": {"block_pairs": 16, "block_cols": 16}}


@partial(jax.jit, static_argnums=(4,))
def kernels_and_references(x, coef, table, idx, s):
    f32 = lambda a: a.astype(jnp.float32)  # noqa: E731
    onehot = jax.nn.one_hot(idx, s)  # (m, k, s)
    got = (K.row_combine(coef, idx, table, **SMALL_BLOCKS["combine"]),
           K.row_dots(x, table, idx, **SMALL_BLOCKS["pairs"]),
           K.row_scatter_add(s, idx, coef, x, jnp.float32, **SMALL_BLOCKS["pairs"]))
    want = (jnp.einsum("mk,mks,sd->md", f32(coef), onehot, f32(table)),
            jnp.einsum("md,sd,mks->mk", f32(x), f32(table), onehot),
            jnp.einsum("mk,mks,md->sd", f32(coef), onehot, f32(x)))
    return got, want


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "bf16"])
@pytest.mark.parametrize("m, k, s, d, crowd", SHAPES)
def test_kernels_match_dense_products(m, k, s, d, crowd, dtype):
    x, coef, table = normal(0, (m, d), dtype), normal(1, (m, k), dtype), normal(2, (s, d), dtype)
    got, want = kernels_and_references(x, coef, table, indices(3, m, k, s, crowd), s)
    assert got[0].dtype == got[1].dtype == dtype and got[2].dtype == jnp.float32
    assert [a.shape for a in got] == [(m, d), (m, k), (s, d)]
    for a, b in zip(got, want):
        close(a, b, dtype)


def test_default_blocks_and_units_never_touched():
    # default tile sizes; units 40..49 get no pair: their rows of the scatter are exactly zero
    m, k, s, d = 9, 4, 50, 200
    x, coef, table = normal(0, (m, d)), normal(1, (m, k)), normal(2, (s, d))
    idx = jax.random.randint(jax.random.key(3), (m, k), 0, 40)
    onehot = jax.nn.one_hot(idx, s)
    close(K.row_combine(coef, idx, table), jnp.einsum("mk,mks,sd->md", coef, onehot, table))
    close(K.row_dots(x, table, idx), jnp.einsum("md,sd,mks->mk", x, table, onehot))
    scattered = K.row_scatter_add(s, idx, coef, x, jnp.float32)
    close(scattered, jnp.einsum("mk,mks,md->sd", coef, onehot, x))
    assert not np.any(np.asarray(scattered[40:]))


def test_scatter_is_deterministic_and_exact_in_its_summation_order():
    # each unit's pairs are summed in flat order: equal to a plain sequential sum in float32
    m, k, s, d = 20, 3, 4, 16
    x, coef = normal(0, (m, d)), normal(1, (m, k))
    idx = indices(2, m, k, s, crowd=True)
    got = np.asarray(K.row_scatter_add(s, idx, coef, x, jnp.float32, block_pairs=16))
    want = np.zeros((s, d), np.float32)
    xs, cs, ids = np.asarray(x), np.asarray(coef), np.asarray(idx)
    for p in range(m * k):
        i, j = divmod(p, k)
        want[ids[i, j]] += cs[i, j] * xs[i]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got, np.asarray(K.row_scatter_add(s, idx, coef, x, jnp.float32, block_pairs=16)))


# ---------------------------------------------------------------- the primitives with impl="pallas"

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "bf16"])
@pytest.mark.parametrize("out", [None, 3, 70])
def test_gather_matmul_pallas_matches_reference(dtype, out):
    m, k, s = 37, 5, 50
    values = normal(0, (m, k), dtype)
    idx = indices(1, m, k, s, crowd=True)
    w2 = normal(2, (s,) if out is None else (s, out), dtype)
    g = normal(3, (m,) if out is None else (m, out), dtype)

    @jax.jit
    def both(values, w2, g):
        got, pull = jax.vjp(lambda v, w: P.gather_matmul(v, idx, w, impl="pallas"), values, w2)
        f32 = (values.astype(jnp.float32), w2.astype(jnp.float32))
        want, pull_ref = jax.vjp(lambda v, w: P.gather_matmul_reference(v, idx, w), *f32)
        return got, want, pull(g), pull_ref(g.astype(jnp.float32))

    got, want, grads, grads_ref = both(values, w2, g)
    assert got.shape == want.shape == g.shape and got.dtype == dtype
    close(got, want, dtype)
    for a, b in zip(grads, grads_ref):
        assert a.dtype == dtype
        close(a, b, dtype)


def routed_case(m=21, n=19, s=40, rank=3, out=2, dtype=jnp.float32):
    x = normal(0, (m, n), dtype)
    router = (normal(1, (n, rank), dtype), normal(2, (rank, s), dtype))
    return x, router, normal(3, (s, n), dtype), normal(4, (s,), dtype), normal(5, (s, out), dtype)


def test_routed_layer_and_mlp_pallas_match_references():
    k = 6
    x, router, w1, b1, w2 = routed_case()

    def grads(fn, *args):
        return jax.grad(lambda *a: jnp.sum(jnp.sin(fn(*a))), argnums=tuple(range(len(args))))(*args)

    @jax.jit
    def all_of(x, w1, b1, w2):
        layer = lambda impl: lambda x, w1, b1: P.routed_layer(x, router, w1, b1, k, impl=impl)[0]  # noqa: E731
        ref_layer = lambda x, w1, b1: P.routed_layer_reference(x, router, w1, b1, k)[0]  # noqa: E731
        mlp = lambda x, w1, b1, w2: P.routed_mlp(x, router, w1, b1, w2, k, impl="pallas")  # noqa: E731
        ref_mlp = lambda x, w1, b1, w2: P.routed_mlp_reference(x, router, w1, b1, w2, k)  # noqa: E731
        return ((layer("pallas")(x, w1, b1), grads(layer("pallas"), x, w1, b1)),
                (ref_layer(x, w1, b1), grads(ref_layer, x, w1, b1)),
                (mlp(x, w1, b1, w2), grads(mlp, x, w1, b1, w2)),
                (ref_mlp(x, w1, b1, w2), grads(ref_mlp, x, w1, b1, w2)))

    layer_got, layer_want, mlp_got, mlp_want = all_of(x, w1, b1, w2)
    for got, want in ((layer_got, layer_want), (mlp_got, mlp_want)):
        close(got[0], want[0])
        for a, b in zip(got[1], want[1]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_vmap_over_runs_equals_a_loop():
    b, m, k, s, out = 3, 6, 2, 9, 5
    values, w2 = normal(0, (b, m, k)), normal(1, (b, s, out))
    idx = jax.random.randint(jax.random.key(2), (b, m, k), 0, s)

    def value_and_grad(v, i, w):
        return jax.value_and_grad(lambda v, w: jnp.sum(P.gather_matmul(v, i, w, impl="pallas") ** 2),
                                  argnums=(0, 1))(v, w)

    batched = jax.jit(jax.vmap(value_and_grad))(values, idx, w2)
    for r in range(b):
        looped = jax.jit(value_and_grad)(values[r], idx[r], w2[r])
        for a, c in zip(jax.tree.leaves(batched), jax.tree.leaves(looped)):
            np.testing.assert_allclose(np.asarray(a)[r], c, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- GPU lowering and the auto rule

def test_kernels_lower_to_triton_for_cuda():
    # the Triton lowering runs in Python, so its checks (power-of-two tiles, supported
    # operations) are exercised without a GPU; only the PTX compile is left to a device
    m, k, s, d = 24, 5, 40, 70
    values, w2, g = normal(0, (m, k), jnp.bfloat16), normal(1, (s, d), jnp.bfloat16), normal(2, (m, d), jnp.bfloat16)
    idx = jax.random.randint(jax.random.key(3), (m, k), 0, s)

    def step(values, w2, g):
        out, pull = jax.vjp(lambda v, w: P.gather_matmul(v, idx, w, impl="pallas"), values, w2)
        return out, pull(g)

    x, router, w1, b1, w2r = routed_case()
    routed = jax.grad(lambda w1, b1, w2: P.routed_mlp(x, router, w1, b1, w2, 4, impl="pallas").sum(),
                      argnums=(0, 1, 2))
    for fn, args in ((step, (values, w2, g)), (jax.vmap(step), (values[None], w2[None], g[None])),
                     (routed, (w1, b1, w2r))):
        text = jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()
        assert text.count("triton") >= 3, "forward and both backward kernels lowered by Triton"


def test_auto_does_not_take_the_kernels_until_a_gpu_measurement_says_so():
    assert pallas.MEASURED_WINS == ()
    assert not pallas.prefers_pallas("gather_matmul", 1, 4096)
    assert not pallas.prefers_pallas("routed", 1, 4096)
    values, w2 = normal(0, (4, 2)), normal(1, (128, 3))
    idx = jax.random.randint(jax.random.key(2), (4, 2), 0, 128)
    x, router, w1, b1, w2r = routed_case()
    programs = (lambda: P.gather_matmul(values, idx, w2),
                lambda: P.routed_mlp(x, router, w1, b1, w2r, 1),
                lambda: P.routed_layer(x, router, w1, b1, 1)[0])
    for fn in programs:
        assert "pallas_call" not in str(jax.make_jaxpr(fn)())
        for platform in ("cpu", "cuda"):
            assert "triton" not in jax.jit(fn).trace().lower(lowering_platforms=(platform,)).as_text()


def test_a_measured_cell_routes_auto_to_the_kernels_on_cuda_only(monkeypatch):
    win = pallas.MeasuredWin("gather_matmul", max_density=1 / 32, speedup=5.0, device="test", source="test")
    assert pallas.prefers_pallas("gather_matmul", 2, 128, (win,))
    assert not pallas.prefers_pallas("gather_matmul", 8, 128, (win,))   # denser than the cell
    assert not pallas.prefers_pallas("routed", 2, 128, (win,))          # another primitive
    monkeypatch.setattr(pallas, "MEASURED_WINS", (win,))
    values, w2 = normal(0, (4, 2)), normal(1, (128, 3))
    idx = jax.random.randint(jax.random.key(2), (4, 2), 0, 128)
    fn = jax.jit(lambda v, w: P.gather_matmul(v, idx, w))
    assert "triton" in fn.trace(values, w2).lower(lowering_platforms=("cuda",)).as_text()
    assert "triton" not in fn.trace(values, w2).lower(lowering_platforms=("cpu",)).as_text()
    close(fn(values, w2), P.gather_matmul_reference(values, idx, w2))


def test_bad_impl_names_every_choice():
    with pytest.raises(ValueError, match="'pallas'"):
        P.gather_matmul(jnp.ones((2, 3)), jnp.zeros((2, 3), jnp.int32), jnp.ones((5, 4)), impl="triton")


# ---------------------------------------------------------------- the device check, dry run on CPU


def test_tile_scan_dry_run_checks_and_times_every_kernel(tmp_path):
    if jax.default_backend() != "cpu":
        pytest.skip("this process's jax runs on a GPU: the scan there is the real one")
    tiles = bench("bench_pallas_tiles")
    try:
        assert tiles.main(["--cpu-dry-run", "--out-dir", str(tmp_path), "--budget", "0.02"]) == 0
    finally:
        tiles.with_warps(4)   # the kernels' own parameters again, for the tests that follow
    report = json.loads((tmp_path / "pallas-tiles-gpu-dry-run.json").read_text())
    assert {v["kernel"] for v in report["variants"]} == {"combine", "dots", "scatter"} == set(report["best"])
    for v in report["variants"]:   # each kernel computed what the XLA path computes
        assert "error" not in v and v["max_rel_error"] < 1e-5 and v["ms_in_jit"] > 0, v
    assert set(report["baselines_ms"]) == {"combine", "dots", "scatter", "sort"}
    assert report["defaults"]["scatter"] == [K.SCATTER_PAIRS, K.SCATTER_COLS]


def check_dry_run_reports(out_dir: Path) -> None:
    assert sorted(p.name for p in out_dir.iterdir()) == ["primitives-gpu-dry-run.json", "train-gpu-dry-run.json"]
    train = json.loads((out_dir / "train-gpu-dry-run.json").read_text())
    assert train["dry_run"] is True and train["complete"] is True and train["machine"]["jax_backend"] == "cpu"
    sweep = train["wide_sweep"]
    assert sweep["flops_per_step"] == 6 * 16 * sweep["params_per_run"] * 4  # batch 16, 4 runs
    assert sweep["seconds_per_step"] > 0 and sweep["fraction_of_peak"] is None
    assert train["targets"]["wide_sweep_fraction_of_peak"]["met"] is None
    prims = json.loads((out_dir / "primitives-gpu-dry-run.json").read_text())
    cells = prims["primitives"]["cells"]
    assert {c["path"] for c in cells} == {"dense", "gather", "gather_pallas", "routed_dense", "routed",
                                          "routed_pallas"}
    for c in cells:  # every path ran and agreed with the dense one
        assert "error" not in c and c["ms"] > 0, c
        assert c["max_rel_error"] < 1e-4, c
    assert prims["targets"]["gather_speedup_density1_64"]["measured"] > 0


def test_gpu_benchmark_dry_run_exercises_every_part(tmp_path):
    if jax.default_backend() != "cpu":  # --cpu-dry-run cannot move a started jax off its GPU
        pytest.skip("this process's jax runs on a GPU; the dry run in a fresh process is tested below")
    assert bench("bench_gpu").main(["--cpu-dry-run", "--out-dir", str(tmp_path)]) == 0
    check_dry_run_reports(tmp_path)


@pytest.mark.slow
def test_device_check_script_dry_run(tmp_path):
    # the shell script, every part in its own process under its time limit, as on a GPU machine
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--cpu-dry-run", "--out-dir",
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    check_dry_run_reports(tmp_path)


def test_device_check_refuses_to_run_without_a_gpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "PYTHON": sys.executable}
    for cmd in (["bash", str(ROOT / "benchmarks" / "device_check.sh")],
                [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--out-dir", str(tmp_path)]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 3 and "no GPU" in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())


def test_peaks_by_device_name_and_precision():
    peak = bench("bench_gpu").peak_flops
    assert peak("NVIDIA H200", "highest") == (67.0e12, "H200 fp32")
    assert peak("NVIDIA H100 PCIe", "default") == (378.0e12, "H100 PCIe tf32")
    assert peak("NVIDIA H100 80GB HBM3", "high")[1] == "H100 tf32"
    assert peak("NVIDIA GeForce RTX 4090", "highest") == (None, None)
    assert peak(None, "highest") == (None, None)


@pytest.mark.parametrize("block", [24, 8, 16.0])
def test_a_block_size_triton_would_refuse_is_refused_on_every_platform(block):
    """Triton takes power-of-two tiles only, and says so only when lowering for a GPU: a
    block of 24 gave correct values in interpret mode and failed on CUDA."""
    ones, idx = jnp.ones((1, 2)), jnp.array([[0, 2]])
    with pytest.raises(ValueError, match="block_rows must be a power of two"):
        K.row_combine(ones, idx, jnp.ones((3, 2)), block_rows=block)
    with pytest.raises(ValueError, match="block_pairs must be a power of two"):
        K.row_dots(jnp.ones((1, 2)), jnp.ones((3, 2)), idx, block_pairs=block)
    with pytest.raises(ValueError, match="block_cols must be a power of two"):
        K.row_scatter_add(3, idx, ones, jnp.ones((1, 2)), jnp.float32, block_cols=block)


def test_second_order_through_the_kernels_says_which_impls_have_it():
    """grad of grad through impl="pallas" raised a bare AssertionError inside Pallas."""
    values, idx, w2 = jnp.ones((3, 2)), jnp.array([[0, 5], [2, 5], [1, 1]]), jnp.ones((6, 2))

    def curvature(impl):
        inner = jax.grad(lambda v: jnp.sum(jnp.sin(P.gather_matmul(v, idx, w2, impl=impl))))
        return jax.grad(lambda v: jnp.sum(inner(v) ** 2))(values)

    with pytest.raises(NotImplementedError, match="impl='sparse' or impl='dense'"):
        curvature("pallas")
    np.testing.assert_allclose(curvature("sparse"), curvature("dense"), rtol=1e-5)


def test_eager_kernel_calls_of_one_shape_lower_once():
    """Each eager call built a new kernel function, so JAX traced, lowered and compiled the
    Pallas program again every time (0.3 s a call at this size)."""
    import logging

    lowered = []

    class Count(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Finished jaxpr to MLIR module conversion"):
                lowered.append(record.getMessage())

    handler, logger = Count(), logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            for seed in range(3):
                coef, table = normal(seed, (24, 3)), normal(seed + 10, (16, 40))
                idx = indices(seed, 24, 3, 16, crowd=False)
                close(K.row_combine(coef, idx, table), jnp.einsum("mk,mkd->md", coef, table[idx]))
                if seed == 0:
                    first = len(lowered)
    finally:
        logger.removeHandler(handler)
    assert first > 0 and len(lowered) == first, lowered[first:]   # the later calls lower nothing
