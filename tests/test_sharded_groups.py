"""Groups split over several host devices (subprocesses started with two CPU devices)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


ONE_RUN = """
experiment: one_run
target:  {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 8}
train:   {batch: 8, steps: 20, eval_every: 10}
data:    {m: 32, test_m: 32}
sweep:   {seeds: 1}
"""


def _sweep(path: Path, out: Path, cache: Path) -> str:
    """The status of the single run of `path`, trained in a fresh process with two host devices."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "SPARSELEARN_CACHE_DIR": str(cache),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = ("import jax; assert len(jax.devices()) == 2; from sparselearn import config; "
            "from sparselearn.sweeps import run; "
            f"print(run(config.load({str(path)!r}), {str(out)!r}, progress=False)['status'].tolist()[0])")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def test_a_one_run_group_kept_by_a_two_device_process_runs_in_the_next(tmp_path):
    """A group of one run is not split (`devices_for` gives None), so its program is compiled for
    one device; a later process with the same devices loads it from the kept programs, onto
    that one device (loaded onto both, it refused its arguments and the run was stored failed)."""
    path = tmp_path / "one.yaml"
    path.write_text(ONE_RUN)
    cache = tmp_path / "cache"
    assert _sweep(path, tmp_path / "first", cache) == "ok"  # compiled and kept
    assert _sweep(path, tmp_path / "second", cache) == "ok"  # loaded
