"""Config and command line, third review: a base that only the grid makes valid, plug-in fields
of any common annotation, one-line errors for YAML a parser cannot take, one-line warnings, and
`plot --out` under a file."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

import pytest

from sparselearn import config
from sparselearn.cli import main
from sparselearn.errors import ConfigError
from sparselearn.fields import build

TOPK = """
experiment: tk
target:  {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 16, activation: topk}
train:   {steps: 100, eval_every: 50}
data:    {m: 64, test_m: 64}
sweep:   {seeds: 1, grid: {learner.k: [4, 8]}}
"""


def test_a_key_the_grid_sets_at_every_point_need_not_be_valid_in_the_base():
    exp = config.loads(TOPK)   # learner.k is required with top-k: the grid gives it
    assert exp.learner.k == 4 and dict(exp.sweep.grid)["learner.k"] == (4, 8)
    stored = config.loads(config.dump(exp))                     # the stored config reads back as itself
    assert config.config_hash(stored) == config.config_hash(exp)
    steps = config.loads(TOPK, ["sweep.grid.train.steps=[300, 400]", "train.eval_every=250"])
    assert steps.train.steps == 300     # eval_every 250 is past the base's 100 steps, not past any point's
    points = [config.with_point(steps, p).train for p in config.grid_points(steps)]
    assert {(t.steps, t.eval_every) for t in points} == {(300, 250), (400, 250)}


@pytest.mark.parametrize("overrides, key, message", [
    (["sweep.grid.learner.k=[40, 8]"], "learner.k", r"got 40 \(at grid point learner.k=40\)"),
    (["sweep.grid.data.m=[64]", "train.eval_every=500"], "train.eval_every", "got 500"),   # wrong at every point
    (["train.lrr=1"], "train.lrr", "unknown key"),
])
def test_a_base_the_grid_does_not_mend_still_names_the_key(overrides, key, message):
    with pytest.raises(ConfigError, match=message) as e:
        config.loads(TOPK, overrides)
    assert e.value.key == key


def test_without_a_grid_the_base_error_stands():
    text = TOPK.replace("grid: {learner.k: [4, 8]}", "grid: {data.m: [32, 64]}")
    with pytest.raises(ConfigError, match="is required with activation: topk") as e:
        config.loads(text)
    assert e.value.key == "learner.k"


@dataclass(frozen=True)
class _Fields:
    weights: list[float] | None = None
    pair: tuple[int, int] = (1, 2)
    lookup: dict | None = None


def test_plugin_fields_of_list_and_fixed_tuple_annotations_are_checked():
    assert build(_Fields, {}) == _Fields()
    assert build(_Fields, {"weights": [1, 2], "pair": [3, 4]}) == _Fields(weights=(1.0, 2.0), pair=(3, 4))
    for values, key, message in (({"pair": [1, 2, 3]}, "pair", r"a list of 2 \(an integer, an integer\)"),
                                 ({"pair": [1, "a"]}, "pair[1]", "expected an integer"),
                                 ({"weights": ["x"]}, "weights", "expected a list of a number or null, got"),
                                 ({"lookup": {"a": 1}}, "lookup", "which a config cannot set")):
        with pytest.raises(ConfigError, match=message) as e:
            build(_Fields, values)
        assert e.value.key in (key, key.partition("[")[0]), (values, e.value.key)


def test_a_plugin_target_with_a_list_field_runs_a_grid(tmp_path, monkeypatch):
    (tmp_path / "weighted_plugin.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from typing import ClassVar
        import jax, jax.numpy as jnp

        @dataclass(frozen=True)
        class Weighted:
            n: int = 6
            weights: list[float] | None = None
            noise: float = 0.0
            name: ClassVar[str] = "weighted"
            task: ClassVar[str] = "classification"

            def init(self, key):
                w = jnp.ones(self.n) if self.weights is None else jnp.asarray(self.weights)
                return {"w": w}

            def labels(self, params, x):
                return jnp.sign(x @ params["w"] + 0.5)

            def sample(self, params, key, m):
                x = jax.random.rademacher(key, (m, self.n), dtype=jnp.float32)
                return x, self.labels(params, x)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "weighted_plugin", raising=False)
    text = ("target: {name: 'weighted_plugin:Weighted', n: 3, weights: [1, 2, 3]}\n"
            "learner: {name: mlp, width: 8}\ntrain: {steps: 20, eval_every: 10, batch: 8}\ndata: {m: 32, test_m: 32}\n"
            "sweep: {grid: {data.m: [16, 32]}}\n")
    exp = config.loads(text)
    assert exp.target.weights == (1.0, 2.0, 3.0) and len(config.grid_points(exp)) == 2


@pytest.mark.parametrize("text, message", [
    ("experiment: a\x00\n", "invalid YAML at line 1: character #x0000 is not allowed in YAML"),
    ("experiment: a\ntarget: {n: 1\x07}\n", "invalid YAML at line 2: character #x0007"),
    ("target: " + "[" * 3000 + "\n", "config nests too deeply"),
    ("target: {name: sparse_parity, n: " + "9" * 5000 + "}\n", "an integer of 5000 digits"),
], ids=["nul", "bell", "deep", "digits"])
def test_yaml_a_parser_cannot_take_is_one_line(text, message):
    with pytest.raises(ConfigError, match=message) as e:
        config.loads(text)
    assert "\n" not in str(e.value)


def test_a_warning_of_a_command_is_one_line(tmp_path, capsys):
    path = tmp_path / "tk.yaml"
    path.write_text(TOPK)
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--set", "executor.partition=gpu", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: the local executor does not read executor.partition\n" in err
    assert "UserWarning" not in err and "cli.py" not in err


def test_plot_out_under_a_file_names_the_figure_it_was_for(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "afile" / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'afile'}: is a file, not a directory (needed for {tmp_path / 'afile' / 'x.png'})"


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", [["list", "targets"], ["list"]])   # within stdout's buffer, and past it
def test_output_to_a_full_disk_exits_120_in_one_line(command):
    import subprocess

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "sparselearn.cli", *command], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 120, done.stderr
    assert done.stderr.strip() == "error: could not write the output: [Errno 28] No space left on device"


def test_the_modules_the_readme_names_are_reached_from_the_package():
    import subprocess

    code = ("import sparselearn as sl; sl.store.load_traces; sl.train.trajectory; sl.runtime.host_device_flags; "
            "import sys; print('jax' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_an_override_nesting_too_deeply_is_a_config_error():
    with pytest.raises(ConfigError, match="nests too deeply") as e:
        config.parse_override("train.lr=" + "[" * 3000 + "]" * 3000)
    assert e.value.key == "train.lr"
