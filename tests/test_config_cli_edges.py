"""Edge cases of `--set` overrides and of the command's error lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sparselearn import config
from sparselearn.cli import main
from sparselearn.errors import ConfigError


@pytest.mark.parametrize("overrides, key", [
    (["train.steps=40", "train.steps=50"], "train.steps"),
    (["train.steps=40", "train=null"], "train"),
    (["sweep.grid.data.m=[32]", "sweep.grid=null"], "sweep.grid"),
])
def test_an_override_that_replaces_an_earlier_one_is_an_error(tiny_file, overrides, key):
    with pytest.raises(ConfigError, match="given before it") as info:
        config.load(tiny_file, overrides)
    assert info.value.key == key and info.value.file == str(tiny_file)
    assert overrides[0] in str(info.value)


def test_an_override_after_its_section_was_cleared_still_applies(tiny_file):
    cfg = config.load(tiny_file, ["sweep.grid=null", "sweep.grid.data.m=[32, 64]"])
    assert cfg.sweep.grid == (("data.m", (32, 64)),)


def test_a_check_made_while_searching_names_the_config_file(tmp_path, monkeypatch, tiny_file, capsys):
    monkeypatch.chdir(tmp_path)
    text = tiny_file.read_text().replace("m: 256, ", "").replace(", grid: {data.m: [64, 256]}", "")
    tiny_file.write_text(text)   # no data.m, which online runs would not read
    assert main(["search", str(tiny_file), "--set", "data.online=true", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tiny_file}: data.online: searching over data.m needs data.online: false"
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("text", ["1e3", "0o17", "+.5", "1:30"])
def test_dump_quotes_strings_that_read_as_numbers(tiny_text, text):
    exp = config.override(config.loads(tiny_text), executor={"partition": text, "folder": text})
    if ":" not in text and text[0] != "+":  # a valid experiment name
        exp = config.override(exp, experiment=text)
    assert config.loads(config.dump(exp)) == exp


@pytest.mark.parametrize("rtol", ["-0.5", "nan"])
def test_search_rejects_a_negative_or_nan_rtol(tmp_path, monkeypatch, tiny_file, capsys, rtol):
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(tiny_file), "--rtol", rtol, "--quiet"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tiny_file}: --rtol: must be a number ≥ 0")
    assert not (tmp_path / "results").exists()


def test_a_config_is_read_as_utf8_whatever_the_locale(tmp_path):
    path = tmp_path / "my config.yaml"  # an ASCII name: the C locale cannot pass others on the command line
    path.write_text("# ± ≤\nexperiment: g  # grün\ntarget: {name: sparse_parity}\nlearner: {name: mlp}\n",
                    encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    code = f"from sparselearn import config; print(config.load({str(path)!r}).experiment)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, encoding="utf-8")
    assert out.returncode == 0 and out.stdout.strip() == "g", out.stderr


def test_a_search_limit_no_value_meets_names_its_flag(tmp_path, monkeypatch, tiny_file, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(tiny_file), "--max", "8", "--quiet"]) == 2   # batch 16: no m ≤ 8 is accepted
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tiny_file}: train.batch: no data.m from the search's smallest, 1 (--min), "
                          "to its largest, 8 (--max), is accepted: at data.m = 1: batch = 16 exceeds the sample "
                          "size data.m = 1") and "max_value" not in err
    assert not (tmp_path / "results").exists()


def test_a_search_whose_min_is_above_a_fitted_learners_cap_names_both_limits(tmp_path, monkeypatch, capsys):
    """The cap here is learner.max_memory_gb (accepted m ≤ 593): the message blamed --max."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ld.yaml"
    path.write_text("experiment: ld\ntarget: {name: sparse_parity, n: 10, k: 2}\n"
                    "learner: {name: lowdegree, degree: 2, max_memory_gb: 0.001}\ntrain: {loss: square}\n"
                    "data: {m: 64, test_m: 64}\nsweep: {seeds: 2}\n")
    assert main(["search", str(path), "--min", "1000", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: learner.degree: no data.m from the search's smallest, 1000 (--min), to "
                          "its largest, 262144 (--max), is accepted: at data.m = 1000: degree 2") and "(--max)" in err
    assert not (tmp_path / "results").exists()


def test_a_numeric_experiment_name_says_to_quote_it(tiny_text):
    with pytest.raises(ConfigError, match=r"got 2024 \(YAML read it as a number: quote it\)"):
        config.loads(tiny_text.replace("experiment: tiny", "experiment: 2024"))
    assert config.loads(tiny_text.replace("experiment: tiny", 'experiment: "2024"')).experiment == "2024"


def test_executor_flag_and_set_of_the_executor_name_are_named_as_typed(tmp_path, monkeypatch, tiny_file, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(tiny_file), "--set", "executor.name=local", "--executor", "devices"]) == 2
    err = capsys.readouterr().err
    assert "--executor devices and --set executor.name=local both choose the executor" in err
    assert not (tmp_path / "results").exists()


def test_search_names_failed_runs_and_retries_them_when_asked(tmp_path, monkeypatch, capsys, fail_groups):
    from sparselearn.sweeps import runner

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "gf2.yaml"
    path.write_text("experiment: g\ntarget: {name: sparse_parity, n: 8, k: 2}\nlearner: {name: gf2}\n"
                    "train: {loss: square, eps: 0.05}\ndata: {m: 16, test_m: 64}\nsweep: {seeds: 4}\n")
    first = iter([True])   # the search's first group (its first m, 4 seeds) fails
    real = fail_groups(lambda e: next(first, False), MemoryError("RESOURCE_EXHAUSTED: once"))
    assert main(["search", str(path), "--max", "64", "--quiet"]) == 1   # as `run` with failed runs stored
    out, err = capsys.readouterr()
    assert out.startswith("smallest data.m with P[test error ≤ 0.05] ≥ 0.9")
    assert "4 runs failed and count as seeds that did not reach eps (see the error column of " in err
    assert "--retry-failed recomputes them" in err
    monkeypatch.setattr(runner, "run_group", real)
    assert main(["search", str(path), "--max", "64", "--quiet", "--retry-failed"]) == 0
    assert "failed" not in capsys.readouterr().err


@pytest.mark.parametrize("learner, setting", [("kernel", {"kernel": "ntk", "degree": 5}),
                                              ("gf2", {"sparsest": False, "max_nullity": 8}),
                                              ("neuron", {"activation": "relu", "period": 8.0})])
def test_a_learner_refuses_a_setting_its_mode_never_reads(learner, setting):
    """A grid over kernel degree with the ntk kernel stored identical runs as different points."""
    from sparselearn import learners

    with pytest.raises(ConfigError) as err:
        learners.get(learner, **setting)
    assert err.value.key == list(setting)[1]
    learners.get(learner, **dict(list(setting.items())[:1]))


@pytest.mark.parametrize("setting, key", [({"k": 100}, "k"), ({"q": 200}, "q"), ({"k": 3, "q": 17}, "q"),
                                          ({"q": 10 ** 6}, "q"), ({"k": 4, "g_coeffs": [0] * 13 + [1]}, "g_coeffs")])
def test_a_hierarchical_teacher_of_a_degree_float32_cannot_hold_is_refused(setting, key):
    """k = 100 stored every run as diverged (no finite label), q = 200 raised an OverflowError,
    q = 10^6 held config loading for minutes."""
    from sparselearn.targets.hierarchical import MAX_DEGREE, Hierarchical

    with pytest.raises(ConfigError) as err:
        Hierarchical(**setting)
    assert err.value.key == key and str(MAX_DEGREE) in err.value.message
    Hierarchical(k=3, q=16)


def test_non_finite_numbers_and_empty_paths_are_named(tmp_path, monkeypatch, tiny_file, capsys):
    monkeypatch.chdir(tmp_path)
    for value in ("inf", "nan", "-inf"):
        assert main(["run", str(tiny_file), "--set", f"train.lr={value}"]) == 2
        assert capsys.readouterr().err.strip().endswith(f"train.lr: expected a finite number, got '{value}'")
    with pytest.raises(SystemExit) as done:
        main(["run", str(tiny_file), "--out", ""])
    assert done.value.code == 2 and "--out: an empty path" in capsys.readouterr().err
    assert not list(tmp_path.glob("tiny"))


def test_an_unknown_key_kept_from_a_renamed_section_says_how_to_start_it_afresh(tiny_text):
    with pytest.raises(ConfigError, match=r"learner.width: unknown key.*pass --set learner= before") as err:
        config.loads(tiny_text, ["learner.name=lowdegree"])
    assert err.value.key == "learner.width"
    with pytest.raises(ConfigError) as plain:
        config.loads(tiny_text, ["learner.depht=2"])
    assert "afresh" not in str(plain.value)


@pytest.mark.parametrize("flags, named", [(["--max", "20"], "--max"), (["--start", "20"], "--start")])
def test_a_steps_search_below_eval_every_names_the_flag(tmp_path, monkeypatch, capsys, flags, named):
    """It named train.eval_every "at grid point train.steps=20", of a config without a grid."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text("experiment: s\ntarget: {name: sparse_parity, n: 8, k: 2}\nlearner: {name: mlp, width: 16}\n"
                    "train: {lr: 0.1, batch: 16, steps: 100, eval_every: 50}\ndata: {m: 64, test_m: 64}\n")
    assert main(["search", str(path), "--param", "train.steps", "--quiet", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {path}: {named}: the search's first budget, 20 steps ({named}), is below "
                   f"train.eval_every = 50: raise {named} or lower train.eval_every")
    assert not (tmp_path / "results").exists()
