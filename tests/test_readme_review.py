"""The README's reference parts say what the code does: its CLI usage block names every option
of each subcommand, its executor table the settings each executor reads, its run columns the
schema, and the keys, choices and paths it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _usage_lines() -> dict[str, str]:
    """subcommand → its usage text in the README's CLI block (continuation lines joined)."""
    block = README.split("## CLI")[1].split("```")[1]
    usage: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith("sparselearn "):
            command = line.split()[1]
            usage[command] = line
        elif line.strip():
            usage[command] += " " + line.strip()
    return usage


def _subparsers() -> dict:
    import argparse

    from sparselearn.cli import _parser

    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_cli_usage_block_names_every_subcommand():
    assert set(_usage_lines()) == set(_subparsers())


@pytest.mark.parametrize("command", ["run", "search", "plot", "figs", "list"])
def test_cli_usage_block_lists_exactly_the_options_of_the_parser(command):
    parser = _subparsers()[command]
    line = _usage_lines()[command]
    documented = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", line))
    options = {s for a in parser._actions for s in a.option_strings if s.startswith("--")} - {"--help"}
    assert documented == options, f"{command}: README lacks {options - documented}, names {documented - options}"
    for action in parser._actions:  # the choices it spells out (a|b|c) are the parser's
        if action.choices and not action.option_strings:
            assert "|".join(action.choices) in line, (command, action.dest)
        elif action.choices:
            assert f"{action.option_strings[0]} {'|'.join(action.choices)}" in line, (command, action.dest)


def test_executor_table_settings_are_those_each_executor_reads():
    from sparselearn.config import ExecutorConfig
    from sparselearn.sweeps.executors import NAMES, READS

    table = README.split("| name | where groups run | settings (`executor.*`) |")[1].split("\n\n")[0]
    rows = dict(re.findall(r"^\| `(\w+)` \|[^|]*\|([^|]*)\|$", table, re.MULTILINE))
    assert set(rows) == set(NAMES)
    for name, settings in rows.items():
        assert set(re.findall(r"`(\w+)", settings)) == set(READS[name]), name
    shared = README.split("**Executors**")[1].split("| name |")[0]
    read_by_all = set(re.findall(r"reads `(\w+)`.*? and `(\w+)`", shared)[0])
    assert read_by_all == {"max_group_runs", "compile_cache"}
    assert read_by_all <= set(ExecutorConfig.__dataclass_fields__)


def test_readme_run_columns_are_the_schema():
    from sparselearn.schema import RUN_COLUMNS

    listed = re.search(r"one row per run: `([^`]+)`", README).group(1)
    assert [c.strip() for c in listed.split(",")] == RUN_COLUMNS


def test_readme_config_block_is_the_quickstart_config():
    from sparselearn import config

    block = README.split("## Config")[1].split("```yaml\n")[1].split("```")[0]
    ours = config.loads(block)
    assert config.config_hash(ours) == config.config_hash(config.load(ROOT / "configs/quickstart.yaml"))


def test_config_keys_the_readme_names_exist():
    from sparselearn.config import SECTIONS

    named = set(re.findall(r"`(train|data|executor)\.(\w+)", README))
    assert ("train", "init_seed") in named
    for section, key in named:
        assert key in SECTIONS[section].__dataclass_fields__, f"{section}.{key}"


def test_optimizers_losses_and_recorders_are_the_registries():
    from sparselearn.train import losses, optimizers, record

    sentence = README.split("Optimizers `")[1].split("A typo")[0]
    optimizer_part, loss_part = sentence.split("losses")
    assert set(re.findall(r"`([\w-]+)` \(", "`" + optimizer_part)) == set(optimizers.NAMES)
    assert re.findall(r"`(\w+)`", loss_part) == list(losses.NAMES)
    recorded = README.split("`train.record:")[1].split("in\nthe store's traces table")[0]
    for name, words in {"first_layer": "first-layer weights", "unit_norms": "weight norm",
                        "active_fraction": "units active", "influence": "influence per input",
                        "feature_correlation": "feature_correlation"}.items():
        assert words in recorded, name
    assert set(record.NAMES) == {"first_layer", "unit_norms", "active_fraction", "influence", "feature_correlation"}


def test_readme_compile_cache_path_is_the_default():
    from sparselearn import runtime

    path = runtime.cache_dir(environ={})
    named = re.search(r"`~/\.cache/(sparselearn/[^`]+)`", README).group(1)
    pattern = re.escape(named).replace(re.escape("<version>"), r"[0-9][\w.+]*")
    assert re.fullmatch(pattern, f"{path.parent.name}/{path.name}"), (named, path)


def test_readme_says_auto_is_dense_on_gpus_only_while_no_gpu_win_is_measured():
    from sparselearn.primitives.pallas import MEASURED_WINS

    says_dense = "compiled for a GPU or TPU, `auto` takes the dense path" in README
    assert says_dense == (MEASURED_WINS == ())
