"""The `sparselearn` command end to end on a tiny config in a temporary directory."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparselearn.cli import main
from sparselearn.schema import RUN_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_sweep_whose_runs_all_diverged_stores_them_and_exits_0_without_a_figure(workdir, tiny_file, capsys):
    """A valid config whose runs all diverge is not bad input: the runs are stored, no figure is
    drawn (nothing finite to draw), and the exit status is that of the sweep, as with --no-plot."""
    assert main(["run", str(tiny_file), "--quiet", "--set", "train.lr=1e30", "--set", "train.loss=square"]) == 0
    out = capsys.readouterr().out
    assert "4 diverged" in out and out.rstrip().endswith("figure: none (no run finished with finite values)")
    assert len(pd.read_parquet(next((workdir / "results" / "tiny").iterdir()) / "runs.parquet")) == 4


def test_run_writes_store_and_figure_then_rerun_skips(workdir, tiny_file, capsys):
    assert main(["run", str(tiny_file), "--quiet"]) == 0
    out = capsys.readouterr().out
    stores = list((workdir / "results" / "tiny").iterdir())
    assert len(stores) == 1
    store = stores[0]
    for name in ("config.yaml", "figures/learnability.png"):
        assert (store / name).is_file(), name
    assert not (store / "figures" / "learnability.pdf").exists()  # a PDF only with --pdf
    assert out.splitlines()[-1] == f"figure: {store.relative_to(workdir)}/figures/learnability.png"
    for name in ("runs.parquet", "curves.parquet"):  # directories of part files
        assert list((store / name).glob("part-*.parquet")), name
    assert f"{store.relative_to(workdir)}/runs.parquet" in out
    runs = pd.read_parquet(store / "runs.parquet")
    assert list(runs.columns) == RUN_COLUMNS and len(runs) == 4

    assert main(["run", str(tiny_file), "--quiet", "--pdf"]) == 0
    out = capsys.readouterr().out
    assert "(4 already stored)" in out and out.rstrip().endswith("learnability.png (+ .pdf)")
    assert (store / "figures" / "learnability.pdf").read_bytes().startswith(b"%PDF")

    assert main(["plot", "results/tiny", "--out", "fig/curve.png"]) == 0
    assert (workdir / "fig" / "curve.png").is_file() and (workdir / "fig" / "curve.pdf").is_file()


def test_set_and_smoke_change_the_config_hash(workdir, tiny_file, capsys):
    """A store is named by the hash of the config as run: with the overrides, and shrunk by --smoke."""
    from sparselearn import config

    sets = ["sweep.grid.data.m=[64]", "sweep.seeds=1"]
    args = ["run", str(tiny_file), "--quiet", "--no-plot", *(a for s in sets for a in ("--set", s))]
    assert main(args) == 0
    assert "1 runs" in capsys.readouterr().out
    overridden = config.load(tiny_file, sets)
    store = workdir / "results" / "tiny" / config.config_hash(overridden)
    assert config.config_hash(overridden) != config.config_hash(config.load(tiny_file))
    runs = pd.read_parquet(store / "runs.parquet")
    assert runs["m"].tolist() == [64]
    assert main([*args, "--smoke"]) == 0   # eval_every 20 → 12 (a quarter of the 50 steps): another config
    assert "(0 already stored)" in capsys.readouterr().out
    smoked = config.smoke(overridden)
    assert config.config_hash(smoked) != config.config_hash(overridden)
    assert config.loads((workdir / "results" / "tiny" / config.config_hash(smoked) / "config.yaml").read_text()) \
        == smoked
    assert {p.name for p in (workdir / "results" / "tiny").iterdir()} == {config.config_hash(overridden),
                                                                          config.config_hash(smoked)}


@pytest.mark.parametrize("args, fragment", [
    (["--set", "train.lrr=0.1"], "train.lrr: unknown key (did you mean 'lr'?)"),
    (["--set", "target.k=20"], "target.k: must satisfy"),
    (["--set", "nonsense"], "--set: overrides look like key=value"),
])
def test_bad_config_exits_2_with_one_line_and_writes_nothing(workdir, tiny_file, capsys, args, fragment):
    assert main(["run", str(tiny_file), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and fragment in err
    assert str(tiny_file) in err or "--set" in err
    assert not (workdir / "results").exists()


def test_missing_inputs_exit_2(workdir, capsys):
    assert main(["run", "nope.yaml"]) == 2
    assert "nope.yaml: no such config file" in capsys.readouterr().err
    assert main(["plot", "results/none"]) == 2
    assert "no such results directory" in capsys.readouterr().err


def test_list_shows_targets_learners_configs(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sparse_parity" in out and "mlp" in out and "quickstart.yaml" in out
    assert main(["list", "targets"]) == 0
    assert "n=30" in capsys.readouterr().out


def test_console_script_help_and_usage_errors():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "sparselearn.cli", "--help"], capture_output=True, text=True,
                          env=env)
    assert done.returncode == 0 and "run" in done.stdout and "plot" in done.stdout and "list" in done.stdout
    done = subprocess.run([sys.executable, "-m", "sparselearn.cli", "run", "--help"], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0 and "--set KEY=VALUE" in done.stdout and "--smoke" in done.stdout
    done = subprocess.run([sys.executable, "-m", "sparselearn.cli", "run"], capture_output=True, text=True,
                          env=env)
    assert done.returncode == 2 and "error:" in done.stderr
    for args, says in ((["run", "x.yaml", "--bogus"], "unrecognized arguments: --bogus"),
                       (["bogus"], "invalid choice: 'bogus'"), (["run"], "required: CONFIG")):
        done = subprocess.run([sys.executable, "-m", "sparselearn.cli", *args], capture_output=True, text=True, env=env)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and says in done.stderr, done.stderr   # one line


def test_a_reader_that_leaves_early_is_no_internal_error():
    """`sparselearn list learners | head -1`: the pipe closes before the output is written."""
    child = subprocess.Popen([sys.executable, "-m", "sparselearn.cli", "list", "learners"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    child.stdout.close()   # before the child has started: its first write finds no reader
    err = child.stderr.read().decode()
    assert child.wait() == 141 and "internal error" not in err and "Traceback" not in err, err


def test_console_exits_with_main_status_and_leaves_in_process_callers_alone(monkeypatch):
    """The executable's entry keeps the collector off while a command imports, then freezes what
    was imported and collects at a raised threshold; main() called in-process changes nothing."""
    import gc

    from sparselearn import cli

    def leave(code):
        raise SystemExit(code)

    seen = []

    def command(argv=None, *, from_console=False):
        seen.append(gc.isenabled())
        cli._imported(argparse.Namespace(from_console=from_console))
        seen.append((gc.isenabled(), gc.get_threshold()[0], gc.get_freeze_count() > 0))
        return 3

    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)   # Python's default (conftest raises it for the tests)
    try:
        assert main(["list", "configs"]) == 0 and gc.isenabled() and gc.get_threshold() == (700, 10, 10)
        monkeypatch.setattr(cli, "_leave", leave)
        monkeypatch.setattr(cli, "main", command)
        with pytest.raises(SystemExit) as exit_:
            cli.console()
        assert exit_.value.code == 3
        assert seen == [False, (True, 50_000, True)]
        gc.unfreeze()
        gc.set_threshold(700, 10, 10)
        command()  # an in-process caller: the collector stays as it was
        assert seen[-2:] == [True, (True, 700, False)]
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*before)


def test_run_turns_the_collector_back_on_once_its_imports_are_done(workdir, tiny_file, monkeypatch):
    """`run` (figure or not) calls `_imported` once, from the import thread when it draws."""
    from sparselearn import cli

    calls = []
    monkeypatch.setattr(cli, "_imported",
                        lambda args: calls.append((args.from_console, threading.current_thread().name)))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    assert main(["run", str(tiny_file), "--quiet"]) == 0
    assert main(["run", str(tiny_file), "--quiet", "--no-plot", "--force"]) == 0
    assert calls == [(False, "sparselearn-import"), (False, "MainThread")]


LEAVE = """
import atexit, sys, threading, time
from pathlib import Path
from sparselearn.cli import _leave

out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
if sys.argv[2] == "thread":   # a non-daemon thread still working: the exit waits for it
    threading.Thread(target=lambda: (time.sleep(0.5), (out / "thread").write_text("done"))).start()
sys.stdout.write("buffered, not yet flushed")
_leave(int(sys.argv[3]))
raise AssertionError("_leave returned")
"""


@pytest.mark.parametrize("thread", ["none", "thread"])
def test_leaving_runs_the_exit_handlers_flushes_and_keeps_the_status(tmp_path, thread):
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", LEAVE, str(tmp_path), thread, "3"], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered, not yet flushed" and "AssertionError" not in done.stderr
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").exists() == (thread == "thread")


def test_the_executable_leaves_with_its_status_and_its_output(tmp_path, tiny_file):
    """A whole run through the console entry: output complete, store written, status 0; and
    status 2 for bad input."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "sparselearn.cli", "run", str(tiny_file), "--out",
                           str(tmp_path), "--no-plot", "--quiet"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("curves.parquet") and list(tmp_path.rglob("runs.parquet"))
    done = subprocess.run([sys.executable, "-m", "sparselearn.cli", "run", str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "missing.yaml" in done.stderr


def test_figure_code_is_imported_in_a_thread_only_with_the_file_backend(monkeypatch):
    from sparselearn import cli

    done = []
    monkeypatch.setenv("MPLBACKEND", "TkAgg")
    then = lambda: done.append(threading.current_thread().name)  # noqa: E731
    assert cli._import_meanwhile("json", then=then) is None  # an interactive backend: the main thread imports
    assert done == ["MainThread"]
    monkeypatch.delenv("MPLBACKEND")
    thread = cli._import_meanwhile("sparselearn.plotting", then=then)
    thread.join(60)
    assert not thread.is_alive() and "sparselearn.plotting" in sys.modules
    cli._import_meanwhile("no_such_module_here", then=then).join(10)  # a failure is left to the import that follows
    assert done == ["MainThread", "sparselearn-import", "sparselearn-import"]


LEAF = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(), st.text(max_size=6),
                 st.lists(st.integers(-2, 300), max_size=3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(["target", "learner", "train", "data", "sweep"]), key=st.text(min_size=1, max_size=8),
       value=LEAF)
def test_fuzzed_configs_exit_2_and_write_nothing_or_run(tmp_path_factory, tiny_text, section, key, value):
    work = tmp_path_factory.mktemp("cli")
    raw = yaml.safe_load(tiny_text)
    raw[section] = {**raw[section], key: value}
    path = work / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        from sparselearn import config
        try:
            config.load(path)
        except config.ConfigError:
            assert main(["run", str(path), "--quiet", "--no-plot"]) == 2
            assert not (work / "results").exists()
    finally:
        os.chdir(cwd)


def test_plot_exits_2_only_for_results_that_cannot_make_the_figure(workdir, tiny_file, capsys, monkeypatch):
    assert main(["run", str(tiny_file), "--quiet", "--no-plot"]) == 0
    capsys.readouterr()
    assert main(["plot", "results/tiny", "--kind", "phase"]) == 2  # the tiny grid has one axis
    assert "error: " in capsys.readouterr().err

    import sparselearn.plotting

    def broken(*args, **kwargs):  # a bug inside plotting is no bad input
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(sparselearn.plotting, "plot_results", broken)
    assert main(["plot", "results/tiny"]) == 1
    assert "internal error: ValueError" in capsys.readouterr().err


def test_summary_table_counts_unreached_runs_in_the_median_steps():
    from sparselearn.cli import _summary_table

    def runs(steps_to_eps, learner="mlp", steps=3000):
        return pd.DataFrame({"status": "ok", "eps": 0.05, "steps": steps, "grid": "{}", "learner": learner,
                             "test_error": [0.0 if s is not None else 0.5 for s in steps_to_eps],
                             "steps_to_eps": pd.array(steps_to_eps, dtype="Int64")})

    assert _summary_table(runs([100, None, None, None, None])).splitlines()[1].split()[-1] == "3000"
    assert "> 3000" in _summary_table(runs([100, None, None, None, None]))   # the median run never reached
    assert _summary_table(runs([100, 200, 300, None, None])).splitlines()[1].split()[-1] == "300"
    assert _summary_table(runs([None, None])).splitlines()[1].split()[-1] == "3000"     # > 3000
    # fitted in closed form: stored without steps
    assert _summary_table(runs([None, None], learner="kernel", steps=None)).splitlines()[1].split()[-1] == "-"
    assert "diverged" not in _summary_table(runs([100, None]))
    table = runs([100, None, None]).assign(status=["ok", "ok", "diverged"], test_error=[0.0, 0.5, float("nan")])
    header, row = _summary_table(table).splitlines()[:2]
    assert header.split()[:4] == ["grid", "point", "runs", "diverged"] and row.split()[:4] == ["-", "3", "1", "0.25"]


def test_summary_table_judges_each_grid_point_at_its_own_eps():
    """With a grid over train.eps every row used the first row's eps: the eps = 0.2 point
    read "error ≤ 0.05: 1/2" for errors 0.117 and 0.031."""
    from sparselearn.cli import _summary_table

    runs = pd.DataFrame({"status": "ok", "steps": 100, "learner": "mlp", "steps_to_eps": pd.array([None] * 4, "Int64"),
                         "grid": ['{"train.eps": 0.05}'] * 2 + ['{"train.eps": 0.2}'] * 2,
                         "eps": [0.05, 0.05, 0.2, 0.2], "test_error": [0.117, 0.031, 0.117, 0.031]})
    header, first, second = _summary_table(runs).splitlines()[:3]
    assert "error ≤ eps" in header
    assert "1/2" in first and "2/2" in second
    assert "error ≤ 0.05" in _summary_table(runs[:2]).splitlines()[0]
