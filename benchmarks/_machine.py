"""What machine a benchmark ran on, as a JSON-ready dict, and a fresh process on some of its cores.

    >>> from _machine import describe     # from a script in benchmarks/
    >>> describe()["cpu_model"]
    'AMD EPYC …'

Only reads the system (/proc, os, platform) and the versions of installed packages;
never fails because a field is unavailable (the field is then None).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _simd() -> list[str] | None:
    """The vector extensions that matter for float32 matmuls, from /proc/cpuinfo flags."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if x in flags]
    except OSError:
        pass
    return None


def _ram_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _jax() -> dict:
    try:
        import jax
    except ImportError:
        return {"backend": None, "devices": []}
    return {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()]}


def describe() -> dict:
    """CPU model, core count, vector extensions, RAM, OS, Python/JAX/NumPy/ml_dtypes versions, JAX backend and
    devices, the load average when called (other processes share the machine when it is > 0), and
    XLA_FLAGS if set."""
    ram = _ram_bytes()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "simd": _simd(),
        "ram_gib": round(ram / 2**30, 1) if ram else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "numpy": _version("numpy"),
        "ml_dtypes": _version("ml_dtypes"),
        "torch": _version("torch"),
        **{f"jax_{k}": v for k, v in _jax().items()},
        "xla_flags": os.environ.get("XLA_FLAGS") or None,
        "load_average": load_average(),
    }


def on_cores(script: str, args: list[str], cores: int, timeout: float = 900) -> dict:
    """The JSON that `python -c script *args` prints last, run in a new process on the first
    `cores` cores (pinned with taskset on Linux) with one host device per core, single-threaded
    XLA and no kept programs or compile cache (`SPARSELEARN_CACHE=off`): a cold run's costs.
    Its `process` entry records how that process ran (`describe()` and `write_report` describe
    the process that calls this one, not its children)."""
    settings = {"SPARSELEARN_CACHE": "off", "OMP_NUM_THREADS": str(cores),
                "XLA_FLAGS": f"--xla_force_host_platform_device_count={cores} --xla_cpu_multi_thread_eigen=false"}
    env = {**os.environ, **settings, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", script, *args]
    pinned = None
    if sys.platform.startswith("linux") and shutil.which("taskset"):
        # the first `cores` CPUs this process may use (CPU 0 need not be one of them)
        pinned = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cores])
        cmd = ["taskset", "-c", pinned, *cmd]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"a fresh process ({', '.join(args[1:])}) on {cores} core(s) failed:\n{done.stderr[-2000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]),
            "process": {"cores": cores, "taskset_cpus": pinned, "environment": settings}}


def side_by_side(measure, modes: tuple[str, ...], repeats: int) -> tuple[dict, dict]:
    """`measure(mode)` for each of `modes` in turn, `repeats` rounds (alternating, so that each
    round meets the same machine), each returning `prepare_s` and `train_s`: every mode's
    results, and per mode the medians of both and of their sum (`cold_s`) with all the values."""
    rows = {mode: [] for mode in modes}
    for _ in range(repeats):
        for mode in modes:
            rows[mode].append(measure(mode))
    summary = {}
    for mode, got in rows.items():
        prepare, train = [r["prepare_s"] for r in got], [r["train_s"] for r in got]
        # cold_s: the median process, not the sum of two medians that may come from different ones
        summary[mode] = {"prepare_s": statistics.median(prepare), "train_s": statistics.median(train),
                         "cold_s": statistics.median(p + t for p, t in zip(prepare, train)),
                         "all_prepare_s": prepare, "all_train_s": train}
    return rows, summary


def summary_line(summary: dict, modes: tuple[str, ...]) -> str:
    """`side_by_side`'s medians as one line: "a / b:  prepare … / … s  train … s  cold … s" for modes a, b."""
    return " / ".join(modes) + ":" + "".join(f"  {what} " + " / ".join(f"{summary[m][key]:.2f}" for m in modes) + " s"
                   for what, key in (("prepare", "prepare_s"), ("train", "train_s"), ("cold", "cold_s")))


def write_report(report: dict, path: Path, load_before: list[float] | None, write: bool = True) -> dict:
    """`report` with the machine (`describe`) and the load average at its start (`load_before`)
    and now, written as JSON to `path` if `write`; returns it."""
    machine = describe()
    machine["load_average_at_start"], machine["load_average_at_end"] = load_before, machine.pop("load_average")
    report["machine"] = machine
    if write:
        save(report, path)
    return report


def save(report: dict, path: Path) -> Path:
    """`report` as indented JSON at `path` (its folder made if missing), and a line saying so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print("wrote", path)
    return path


if __name__ == "__main__":
    print(json.dumps(describe(), indent=2))
