"""A user's own target and learner: named in a config as `module:Class`, run end to end
through the CLI; broken plug-ins are one-line errors (exit 2) that write nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from sparselearn import cli, config, learners, targets
from sparselearn.errors import ConfigError
from sparselearn.store import load_results
from sparselearn.sweeps.grid import expand, group

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def importable(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # plugins_example.py lives next to this file


TARGET_CFG = """
experiment: plugin_target
target:  {{name: "plugins_example:Majority", n: 9, k: 3{extra}}}
learner: {{name: mlp, width: 32, depth: 2}}
train:   {{lr: 0.1, batch: 16, steps: 100, eval_every: 50}}
data:    {{m: 256, test_m: 256}}
sweep:   {{seeds: 2}}
"""

LEARNER_CFG = """
experiment: plugin_learner
target:  {name: "plugins_example:Majority", n: 9, k: 3}
learner: {name: "plugins_example:LeastSquares"}
train:   {loss: square}
data:    {m: 512, test_m: 512}
sweep:   {seeds: 2, grid: {data.m: [16, 512]}}
"""


def _run_cli(tmp_path, text: str, capsys) -> tuple[int, str, Path]:
    cfg = tmp_path / "plugin.yaml"
    cfg.write_text(text)
    out = tmp_path / "results"
    code = cli.main(["run", str(cfg), "--out", str(out), "--no-plot", "--quiet"])
    return code, capsys.readouterr().err, out


def test_plugin_target_runs_end_to_end_through_the_cli(tmp_path, capsys):
    code, err, out = _run_cli(tmp_path, TARGET_CFG.format(extra=""), capsys)
    assert code == 0, err
    df = load_results(out / "plugin_target")
    assert len(df) == 2 and set(df["status"]) == {"ok"} and set(df["target"]) == {"majority"}
    assert (df["n"] == 9).all() and (df["k"] == 3).all()
    # the stored config names the class by module:Class, so it loads again as it is
    stored = next(out.glob("plugin_target/*/config.yaml"))
    assert "plugins_example:Majority" in stored.read_text()
    assert type(config.load(stored).target).__name__ == "Majority"


def test_plugin_fitted_learner_runs_end_to_end_through_the_cli(tmp_path, capsys):
    code, err, out = _run_cli(tmp_path, LEARNER_CFG, capsys)
    assert code == 0, err
    df = load_results(out / "plugin_learner")
    assert len(df) == 4 and set(df["status"]) == {"ok"} and set(df["learner"]) == {"least_squares"}
    # a majority is a halfspace: least squares on 512 points classifies it exactly
    assert df.loc[df["m"] == 512, "test_error"].max() == 0
    assert df.loc[df["m"] == 16, "test_error"].min() > 0


def _summary(tmp_path, text: str, capsys) -> tuple[int, str, str]:
    """`run` with its summary table: (exit status, stdout, stderr)."""
    cfg = tmp_path / "plugin.yaml"
    cfg.write_text(text)
    code = cli.main(["run", str(cfg), "--out", str(tmp_path / "results"), "--no-plot"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _median_steps(table: str) -> list[str]:
    """The median steps_to_eps cell of each row of the summary table."""
    lines = table.splitlines()
    head = next(i for i, line in enumerate(lines) if line.endswith("median steps_to_eps"))
    rows = lines[head + 1:next(i for i, line in enumerate(lines) if " runs (" in line)]
    return [row[len(lines[head]) - len("median steps_to_eps"):].strip() for row in rows]


SMALL_CFG = """
experiment: plugin_learner
target:  {{name: "plugins_example:Majority", n: 9, k: 3}}
learner: {{name: "plugins_example:{learner}"}}
train:   {{{train}loss: square}}
data:    {{m: 64, test_m: 64}}
sweep:   {{seeds: 2}}
"""


def test_the_summary_table_of_a_plugin_learner_that_trains_has_its_steps(tmp_path, capsys):
    """A plug-in learner's short name is not registered: whether its runs have steps is read
    from the stored rows."""
    text = SMALL_CFG.format(learner="TwoLayer", train="lr: 0.1, batch: 16, steps: 40, eval_every: 20, ")
    code, out, err = _summary(tmp_path, text, capsys)
    assert code == 0, err
    assert len(_median_steps(out)) == 1 and _median_steps(out)[0] not in ("", "-"), out


def test_the_summary_table_of_a_fitted_plugin_named_like_a_trained_builtin_has_no_steps(tmp_path, capsys):
    """Its short name, mlp, is not looked up: its rows have no steps."""
    code, out, err = _summary(tmp_path, SMALL_CFG.format(learner="FittedNamedMlp", train=""), capsys)
    assert code == 0, err
    assert _median_steps(out) == ["-"], out
    assert set(load_results(tmp_path / "results")["learner"]) == {"mlp"}


def test_a_plugin_field_named_like_an_integer_column_is_stored_null_and_kept_in_config_and_grid(tmp_path, capsys):
    """A plug-in target's float `s` leaves the integer column s null; its value is in the stored
    config and, swept, in the grid column. Nothing trained is lost."""
    text = TARGET_CFG.format(extra=", s: 0.4").replace("Majority", "BiasedMajority").replace(
        "{seeds: 2}", "{seeds: 2, grid: {target.s: [0.3, 0.7]}}")
    code, err, out = _run_cli(tmp_path, text, capsys)
    assert code == 0, err
    df = load_results(out / "plugin_target")
    assert len(df) == 4 and set(df["status"]) == {"ok"} and df["test_error"].notna().all()
    assert df["s"].isna().all() and str(df["s"].dtype) == "Int64"
    assert (df["n"] == 9).all() and (df["k"] == 3).all()
    assert sorted(json.loads(g)["target.s"] for g in df["grid"]) == [0.3, 0.3, 0.7, 0.7]
    stored = next(out.glob("plugin_target/*/config.yaml"))
    assert config.load(stored).target.s == 0.4


def test_a_plugin_target_without_a_noise_model_keeps_noise_static():
    exp = config.loads(TARGET_CFG.format(extra=", noise: 0.1").replace("{seeds: 2}", "{seeds: 2, grid: "
                                                                        "{target.noise: [0.0, 0.2]}}"))
    groups = group(expand(exp))
    assert len(groups) == 2  # no add_noise hook: each noise level is its own program
    assert sorted(g.exp.target.noise for g in groups) == [0.0, 0.2]


@pytest.mark.parametrize("name, fragment", [
    ("plugins_example:NoLabels", "no method `labels`"),
    ("plugins_example:WrongTask", "task 'ranking'"),
    ("plugins_example:NotFrozen", "not a frozen dataclass"),
    ("plugins_example:Nothing", "has no class 'Nothing'"),
    ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
    ("broken_plugin:Thing", "ImportError: this plug-in cannot be imported"),
])
def test_broken_plugin_targets_exit_2_in_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, name, fragment):
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('this plug-in cannot be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = TARGET_CFG.format(extra="").replace('"plugins_example:Majority"', f'"{name}"')
    code, err, out = _run_cli(tmp_path, text, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "target.name" in lines[0] and fragment in lines[0], err
    assert not out.exists()


def test_broken_plugin_learner_names_the_learner_key(tmp_path, capsys):
    code, err, out = _run_cli(tmp_path, LEARNER_CFG.replace("LeastSquares", "NoFit"), capsys)
    assert code == 2 and "learner.name" in err and "no method `fit`" in err and not out.exists()


def test_register_is_a_class_decorator_that_checks_the_contract(monkeypatch):
    import plugins_example

    monkeypatch.setattr(targets, "REGISTRY", dict(targets.REGISTRY))  # leave the real one alone
    monkeypatch.setattr(targets._registry, "classes", targets.REGISTRY)
    assert targets.register(plugins_example.Majority) is plugins_example.Majority
    assert targets.get("majority", n=5, k=3).n == 5
    assert config.loads(TARGET_CFG.format(extra="").replace('"plugins_example:Majority"', "majority")
                        ).target == plugins_example.Majority(n=9, k=3)
    with pytest.raises(ConfigError, match="no method `labels`"):
        targets.register(plugins_example.NoLabels)

    @dataclass(frozen=True)
    class Other(plugins_example.Majority):
        name: ClassVar[str] = "majority"

    with pytest.raises(ConfigError, match="is taken by"):
        targets.register(Other)


def test_learner_register_checks_the_kind(monkeypatch):
    monkeypatch.setattr(learners._registry, "classes", dict(learners.REGISTRY))

    @dataclass(frozen=True)
    class Odd:
        name: ClassVar[str] = "odd"
        kind: ClassVar[str] = "quantum"

    with pytest.raises(ConfigError, match="kind 'quantum', expected one of gradient, fitted, host"):
        learners.register(Odd)
