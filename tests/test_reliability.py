"""Failure cases a user meets, each reproduced on a tiny sweep: corrupt or foreign store files,
missing curves, unusable paths, bad search flags, an invalid hand-built Experiment, file modes,
several processes on one store, and a CLI that starts without jax."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import sparselearn as sl
from sparselearn.cli import main
from sparselearn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def _store(workdir) -> Path:
    return next((workdir / "results" / "tiny").iterdir())


def _parts(store: Path, table: str) -> list[Path]:
    return sorted((store / f"{table}.parquet").glob("part-*.parquet"))


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_corrupt_curves_are_found_before_training_and_the_advice_is_true(workdir, tiny_file, capsys):
    assert main(["run", str(tiny_file), "--quiet", "--no-plot"]) == 0
    store = _store(workdir)
    before = pd.read_parquet(store / "curves.parquet")
    part = _parts(store, "curves")[0]
    part.write_bytes(part.read_bytes()[:200])
    files = _files(store)
    start = time.perf_counter()
    assert main(["run", str(tiny_file), "--quiet", "--no-plot", "--force"]) == 2
    assert time.perf_counter() - start < 5 and _files(store) == files  # nothing trained, nothing written
    err = _one_line_error(capsys)
    assert part.name in err and "corrupt" in err and "delete it and rerun" in err
    part.unlink()  # as advised
    assert main(["run", str(tiny_file), "--quiet", "--no-plot"]) == 0
    assert "4 runs (0 already stored): 4 ok" in capsys.readouterr().out  # the runs whose curves were lost
    runs = pd.read_parquet(store / "runs.parquet")
    after = pd.read_parquet(store / "curves.parquet")
    assert runs["run_id"].is_unique and len(runs) == 4
    assert len(after) == len(before) and not after.duplicated(["run_id", "step"]).any()


def test_corrupt_runs_are_found_before_training(workdir, tiny_file, capsys):
    assert main(["run", str(tiny_file), "--quiet", "--no-plot"]) == 0
    part = _parts(_store(workdir), "runs")[-1]
    part.write_bytes(part.read_bytes()[:-100])
    files = _files(workdir / "results")
    assert main(["run", str(tiny_file), "--quiet", "--no-plot", "--force"]) == 2
    assert part.name in _one_line_error(capsys) and _files(workdir / "results") == files


def test_a_foreign_parquet_file_is_not_a_store_file(workdir, tiny_file, capsys):
    assert main(["run", str(tiny_file), "--quiet", "--no-plot"]) == 0
    store = _store(workdir)
    foreign = store / "runs.parquet" / "part-99999999999999999999-1-foreign.parquet"
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_parquet(foreign)
    assert main(["run", str(tiny_file), "--quiet", "--no-plot"]) == 2
    err = _one_line_error(capsys)
    assert "not a sparselearn store file" in err and foreign.name in err
    assert main(["plot", str(store)]) == 2
    assert "not a sparselearn store file" in _one_line_error(capsys)


def test_plot_without_curves_exits_2_saying_so(workdir, tiny_file, capsys):
    assert main(["run", str(tiny_file), "--quiet", "--no-plot", "--set", "sweep.grid.data.m=[64]"]) == 0
    store = _store(workdir)
    for p in _parts(store, "curves"):
        p.unlink()
    capsys.readouterr()
    assert main(["plot", str(store)]) == 2
    assert "nothing to plot" in _one_line_error(capsys)
    assert not (store / "figures").exists()


def test_result_files_honour_the_umask(workdir, tiny_file):
    old = os.umask(0o022)
    try:
        assert main(["run", str(tiny_file), "--quiet", "--no-plot"]) == 0
    finally:
        os.umask(old)
    store = _store(workdir)
    files = [store / "config.yaml", *_parts(store, "runs"), *_parts(store, "curves")]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o644)}


def test_out_under_a_regular_file_exits_2_naming_it(workdir, tiny_file, capsys):
    blocker = workdir / "blocker"
    blocker.write_text("not a directory")
    assert main(["run", str(tiny_file), "--quiet", "--out", str(blocker / "results")]) == 2
    err = _one_line_error(capsys)
    assert str(blocker) in err and "not a directory" in err
    assert blocker.read_text() == "not a directory"


def test_read_only_out_exits_2_naming_it(workdir, tiny_file, capsys, monkeypatch):
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root writes anywhere: make the check see what a user would
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real(p, mode, **kw))
    assert main(["run", str(tiny_file), "--quiet", "--out", str(locked)]) == 2
    err = _one_line_error(capsys)
    assert str(locked) in err and "permission denied" in err
    assert not list(locked.iterdir())


def test_plot_out_under_a_file_exits_2(workdir, tiny_file, capsys):
    assert main(["run", str(tiny_file), "--quiet", "--no-plot"]) == 0
    (workdir / "f").write_text("x")
    capsys.readouterr()
    assert main(["plot", "results/tiny", "--out", "f/fig.png"]) == 2
    err = _one_line_error(capsys)
    assert "f" in err and "not a directory" in err


def test_a_300_character_experiment_name_exits_2(workdir, tiny_text, capsys):
    path = workdir / "long.yaml"
    raw = yaml.safe_load(tiny_text)
    raw["experiment"] = "x" * 300
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert "too long" in err and "x" * 300 in err
    assert not (workdir / "results").exists()


def test_search_with_min_above_max_exits_2_and_writes_nothing(workdir, tiny_file, capsys):
    assert main(["search", str(tiny_file), "--min", "1000", "--max", "10", "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert "--min" in err and "--max" in err and str(tiny_file) in err
    assert not (workdir / "results").exists()


def test_run_of_an_invalid_experiment_writes_nothing(workdir, tiny):
    bad = dataclasses.replace(tiny, train=dataclasses.replace(tiny.train, batch=512))  # above data.m = 256
    with pytest.raises(ConfigError, match="train.batch"):
        sl.run(bad, workdir / "results", progress=False)
    assert not (workdir / "results").exists()


def _cli(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sparselearn.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}, **kw)


@pytest.mark.parametrize("args", [["--help"], ["list", "configs"], ["run", "--help"]])
def test_cli_answers_without_jax(args):
    code = ("import sys\nfrom sparselearn.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('jax', 'pandas', 'matplotlib', 'pyarrow') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 100


def test_import_sparselearn_imports_no_jax():
    code = "import sys, sparselearn\nassert 'jax' not in sys.modules and 'pandas' not in sys.modules\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


GRID_8 = """
experiment: split
target:  {name: sparse_parity, n: 10, k: 2}
learner: {name: mlp, width: 32, depth: 2}
train:   {optimizer: sgd, lr: 0.1, batch: 16, steps: 200, loss: hinge, eval_every: 50, eps: 0.05}
data:    {m: 256, test_m: 128}
sweep:   {seeds: 3, grid: {target.n: [6, 7, 8, 9, 10, 11, 12, 13]}}
"""


def test_two_processes_on_one_store_split_the_groups(workdir):
    """Two `sparselearn run` of one 8-group sweep started together: every run trained once."""
    path = workdir / "split.yaml"
    path.write_text(GRID_8)
    procs = [_cli("run", str(path), "--quiet", "--no-plot", cwd=workdir) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    trained = []
    for out, _ in outs:
        m = re.search(r"(\d+) runs \((\d+) already stored\): (\d+) ok, (\d+) diverged, (\d+) failed", out)
        assert m, out
        trained.append(int(m[3]) + int(m[4]) + int(m[5]))
    assert sum(trained) == 24 and all(trained), trained  # 8 groups × 3 seeds, both did some
    store = next((workdir / "results" / "split").iterdir())
    runs = pd.read_parquet(store / "runs.parquet")
    curves = pd.read_parquet(store / "curves.parquet")
    assert len(runs) == 24 and runs["run_id"].is_unique
    assert not curves.duplicated(["run_id", "step"]).any() and curves["run_id"].nunique() == 24
    assert not list((store / ".leases").glob("*.json"))  # released on exit
