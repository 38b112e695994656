"""Config loading: defaults, overrides, grid validation, hashing, and errors that name file and key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparselearn import config
from sparselearn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_loads_with_its_documented_values():
    cfg = config.load(ROOT / "configs" / "quickstart.yaml")
    assert (cfg.target.n, cfg.target.k, cfg.learner.width) == (30, 3, 256)
    assert (cfg.train.loss, cfg.train.optimizer, cfg.train.lr, cfg.train.batch, cfg.train.steps) == \
        ("hinge", "sgd", 0.1, 32, 2000)
    assert cfg.sweep.seeds == tuple(range(8))
    assert cfg.sweep.grid == (("data.m", (256, 1024, 4096)),)


def test_defaults_fill_missing_sections():
    cfg = config.loads("target: {name: sparse_parity}\nlearner: {name: mlp}")
    assert cfg.train == config.TrainConfig() and cfg.data == config.DataConfig()
    assert cfg.experiment == "experiment"


def test_overrides_are_yaml_scalars_and_lists(tiny_file):
    cfg = config.load(tiny_file, ["train.steps=40", "train.lr=1e-2", "sweep.grid.data.m=[32, 64]",
                                  "target.noise=0.1", "sweep.seeds=[3, 5]"])
    assert cfg.train.steps == 40 and cfg.train.lr == pytest.approx(0.01)
    assert cfg.sweep.grid == (("data.m", (32, 64)),)
    assert cfg.target.noise == 0.1 and cfg.sweep.seeds == (3, 5)


def test_hash_is_stable_and_ignores_executor_but_not_values(tiny):
    h = config.config_hash(tiny)
    assert h == config.config_hash(config.loads(config.dump(tiny)))
    assert h == config.config_hash(config.override(tiny, executor={"max_group_runs": 7}))
    assert h != config.config_hash(config.override(tiny, train={"steps": 40}))
    assert len(h) == 12


def test_dump_round_trips(tiny):
    assert config.loads(config.dump(tiny)) == tiny


@pytest.mark.parametrize("override, key, fragment", [
    ("train.lrr=0.1", "train.lrr", "did you mean 'lr'"),
    ("trian.lr=0.1", "trian", "did you mean 'train'"),
    ("target.nn=5", "target.nn", "did you mean 'n'"),
    ("train.steps=abc", "train.steps", "expected an integer"),
    ("train.steps=2.5", "train.steps", "expected an integer"),
    ("train.lr=0", "train.lr", "> 0"),
    ("train.lr=-1", "train.lr", "> 0"),
    ("train.lr=.nan", "train.lr", "expected a finite number"),
    ("target.k=11", "target.k", "k ≤ n"),
    ("sweep.grid.data.m=[0]", "data.m", "must be in [1, 2147483647]"),
    ("data.m=100", "data.m", "swept by sweep.grid.data.m"),
    ("train=0", "train", "expected a mapping"),
    ("train.steps=1:30", "train.steps", "expected an integer, got '1:30'"),
    ("train.lr=1" + "0" * 400, "train.lr", "within float range"),
    ("train.batch=1000", "train.batch", "exceeds the sample size"),
    ("train.loss=hinj", "train.loss", "one of"),
    ("learner.depth=5", "learner.depth", "one of 2, 3"),
    ("target.name=sparse_parrity", "target.name", "did you mean 'sparse_parity'"),
    ("learner.name=nope", "learner.name", "unknown learner"),
    ("sweep.grid.data.mm=[1]", "sweep.grid.data.mm", "did you mean 'data.m'"),
    ("sweep.grid.data.m=[8, 4]", "train.batch", "grid point data.m=8"),
    ("sweep.grid.data.m=5", "sweep.grid.data.m", "non-empty list"),
    ("sweep.seeds=0", "sweep.seeds", "count"),
    ("sweep.seeds=[1, 1]", "sweep.seeds", "distinct"),
    ("experiment=a/b", "experiment", "name"),
    ("train.eval_every=1000", "train.eval_every", "steps"),
])
def test_errors_name_file_and_key(tiny_file, override, key, fragment):
    with pytest.raises(ConfigError) as info:
        config.load(tiny_file, [override])
    err = info.value
    assert err.file == str(tiny_file) and err.key == key, str(err)
    assert fragment in str(err)
    assert str(err).startswith(f"{tiny_file}: {key}: ")


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("target: {name: sparse_parity\nlearner: [")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        config.load(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        config.load(listy)


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("target: !!python/object/apply:os.system ['echo hi']\nlearner: {name: mlp}\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        config.load(evil)


def test_smoke_shrinks_but_stays_valid():
    cfg = config.smoke(config.load(ROOT / "configs" / "quickstart.yaml"))
    assert cfg.train.steps <= 200 and len(cfg.sweep.seeds) <= 2 and cfg.data.test_m <= 512
    assert all(len(v) <= 2 for _, v in cfg.sweep.grid)
    assert cfg.train.steps % cfg.train.eval_every == 0


# ------------------------------------------------------------------ fuzzing

def _leaves(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, prefix + (k,))
        else:
            yield prefix + (k,)


GARBAGE = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.integers(-3, 5000), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@st.composite
def mutated(draw):
    raw = yaml.safe_load(open(ROOT / "configs" / "quickstart.yaml"))
    paths = list(_leaves(raw))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "delete", "insert"]))
        path = draw(st.sampled_from(paths))
        node = raw
        for part in path[:-1]:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            if not isinstance(node, dict):
                continue
            if action == "replace":
                node[path[-1]] = draw(GARBAGE)
            elif action == "delete":
                node.pop(path[-1], None)
            else:
                node[draw(st.text(min_size=1, max_size=6))] = draw(GARBAGE)
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_configs_load_or_raise_config_error(raw):
    try:
        cfg = config.from_dict(raw)
    except ConfigError as e:
        assert str(e)
        return
    assert cfg.train.lr > 0 and math.isfinite(cfg.train.lr)
    assert cfg.target.k <= cfg.target.n


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_garbage_yaml_text_loads_or_raises_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "garbage.yaml"
    path.write_text(text)
    try:
        config.load(path)
    except ConfigError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_garbage_overrides_load_or_raise_config_error(text):
    try:
        config.loads("target: {name: sparse_parity}\nlearner: {name: mlp}\ndata: {m: 64}", [text])
    except ConfigError:
        pass


# ------------------------------------------------------------------ repeats, duplicate keys, magnitudes

@pytest.mark.parametrize("override, value", [
    ("sweep.grid.data.m=[256, 256]", "256"),
    ("sweep.grid.train.lr=[1, 1.0]", "1.0 (the same as 1)"),
    ("sweep.grid.train.lr=[0.001, 1e-3]", "0.001"),
    ("sweep.grid.target.inputs=[hypercube, biased, hypercube]", "'hypercube'"),
])
def test_a_repeated_grid_value_is_an_error(tiny_file, override, value):
    with pytest.raises(ConfigError) as info:
        config.load(tiny_file, [override])
    assert info.value.key == override.split("=")[0] and f"repeated value {value}" in str(info.value)


@pytest.mark.parametrize("override, key, message", [
    ("sweep.grid.data.test_m=[512, 5.12e2]", "data.test_m", "expected an integer, got 512.0"),
    ("sweep.grid.learner.bias=[true, 1]", "learner.bias", "expected true/false, got 1"),
])
def test_a_grid_value_of_the_wrong_type_is_a_type_error_not_a_repeat(tiny_file, override, key, message):
    """512.0 equals 512 and 1 equals True: they were refused as "repeated value"."""
    with pytest.raises(ConfigError) as info:
        config.load(tiny_file, [override])
    assert info.value.key == key and message in str(info.value)


def test_a_grid_over_online_and_m_is_refused(tiny_file, tiny_text):
    """The online points do not read m: each trained the same runs once per m and stored them
    under different m."""
    with pytest.raises(ConfigError, match="online points do not read m") as info:
        config.load(tiny_file, ["sweep.grid.data.online=[true, false]"])
    assert info.value.key == "sweep.grid.data.m"
    config.loads(tiny_text.replace("data.m: [64, 256]", "data.online: [true, false]"))   # without m: accepted


def test_a_seed_above_int32_says_the_range(tiny_file):
    with pytest.raises(ConfigError, match=r"seeds must be in \[0, 2147483647\], got \[0, 3000000000\]"):
        config.load(tiny_file, ["sweep.seeds=[0, 3000000000]"])


def test_numbers_read_as_yaml_1_2(tiny_file):
    """1e-3 is a number, 0100 is a hundred (not octal 64), 1:30 is text (not base-60 90)."""
    assert config.parse_override("a=1e-3") == ("a", 0.001)
    assert config.parse_override("a=0100") == ("a", 100)
    assert config.parse_override("a=-2_000") == ("a", -2000)
    assert config.parse_override("a=0x10") == ("a", 16)
    assert config.parse_override("a=1:30") == ("a", "1:30")
    assert config.parse_override("a=[.5, 1.5e+2, .inf, true]") == ("a", [0.5, 150.0, math.inf, True])
    assert config.load(tiny_file, ["train.steps=0100"]).train.steps == 100
    with pytest.raises(ConfigError, match="train.eval_every: expected an integer, got 10.0"):
        config.load(tiny_file, ["train.eval_every=1e1"])


def test_grid_values_are_read_as_their_fields(tiny_file):
    """A grid value is stored as its field reads it: the same config hashes the same however
    its numbers are written, and a float axis is numeric (plots can scale it)."""
    spelled = [config.load(tiny_file, [f"sweep.grid.train.lr={text}"])
               for text in ("[1e-3, 1]", "[0.001, 1.0]", "[1.0e-3, 1.]")]
    assert dict(spelled[0].sweep.grid)["train.lr"] == (0.001, 1.0)
    assert all(type(v) is float for v in dict(spelled[0].sweep.grid)["train.lr"])
    assert len({config.config_hash(e) for e in spelled}) == 1


def test_smoke_caps_grid_values_too(tiny_file):
    exp = config.load(tiny_file, ["sweep.grid.train.steps=[50, 1000, 2000]",
                                  "sweep.grid.train.eval_every=[10, 50]", "sweep.grid.data.test_m=[600, 1000]"])
    grid = dict(config.smoke(exp).sweep.grid)
    assert grid["train.steps"] == (50, 200) and grid["train.eval_every"] == (10, 12)
    assert grid["data.test_m"] == (512,)


@pytest.mark.parametrize("text, key, lines", [
    ("target: {name: sparse_parity}\nlearner: {name: mlp}\ntrain:\n  lr: 0.1\n  steps: 100\n  lr: 0.5\n",
     "train.lr", (4, 6)),
    ("target: {name: sparse_parity}\nlearner: {name: mlp}\ndata: {m: 64}\ntrain: {lr: 0.1}\ndata: {m: 128}\n",
     "data", (3, 5)),
    ("target: {name: sparse_parity, n: 10, n: 12}\nlearner: {name: mlp}\n", "target.n", (1, 1)),
    ("target: {name: sparse_parity}\nlearner: {name: mlp}\nsweep: {grid: {data.m: [64], data.m: [128]}}\n",
     "sweep.grid.data.m", (3, 3)),
])
def test_duplicate_yaml_keys_name_the_key_and_both_lines(tmp_path, text, key, lines):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.key == key and info.value.file == str(path)
    assert f"line {lines[0]} and again at line {lines[1]}" in str(info.value)


def test_yaml_merge_keys_may_still_be_overridden():
    text = ("target: {name: sparse_parity, n: 10, k: 2}\n"
            "learner: {<<: {name: mlp, width: 8}, width: 16}\n"   # an explicit key beats a merged one
            "data: {m: 64}\n")
    assert config.loads(text).learner.width == 16


@pytest.mark.parametrize("override, key, fragment", [
    ("data.test_m=10000000000", "data.test_m", "must be at most 2147483647"),
    ("target.n=1000000000000000000000000000000", "target.n", "must be at most 2147483647"),
    ("learner.width=1000000000000000000000000000000", "learner.width", "must be at most 2147483647"),
    ("train.init_seed=100000000000", "train.init_seed", "must be at most 2147483647"),
    ("target.n=-100000000000", "target.n", "must be at least -2147483648"),
    ("sweep.grid.target.n=[10, 1000000000000000000000000000000]", "target.n", "must be at most"),
])
def test_integers_beyond_32_bits_are_rejected_with_their_bound(tiny_file, override, key, fragment):
    with pytest.raises(ConfigError) as info:
        config.load(tiny_file, [override])
    assert info.value.key == key and fragment in str(info.value), str(info.value)


def test_data_sizes_out_of_range_say_the_range():
    with pytest.raises(ConfigError, match=r"must be in \[1, 2147483647\], got 10000000000"):
        config.DataConfig(m=10_000_000_000)


def test_huge_sizes_exit_2_and_write_nothing(tiny_file, tmp_path, capsys):
    from sparselearn import cli

    out = tmp_path / "out"
    code = cli.main(["run", str(tiny_file), "--out", str(out), "--set", f"target.n={10**30}", "--no-plot"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "target.n" in err[0] and not out.exists()


def test_overrides_must_be_a_list_of_strings(tiny_file):
    with pytest.raises(TypeError, match="overrides is a list of strings"):
        config.load(tiny_file, overrides="train.lr=0.5")
    with pytest.raises(TypeError, match="overrides is a list of strings"):
        config.loads(tiny_file.read_text(), "train.lr=0.5")
    assert config.load(tiny_file, ("train.lr=0.5",)).train.lr == 0.5


SECTION_KEYS = {"train": ["lr", "steps", "batch"], "data": ["m", "test_m"], "target": ["n", "k"],
                "learner": ["width"]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(sorted(SECTION_KEYS)), data=st.data())
def test_fuzzed_duplicate_keys_are_always_errors(section, data):
    key = data.draw(st.sampled_from(SECTION_KEYS[section]))
    first, second = data.draw(st.integers(1, 64)), data.draw(st.integers(1, 64))
    sections = {"target": "  name: sparse_parity\n", "learner": "  name: mlp\n", "train": "", "data": ""}
    between = "".join(f"  unknown_{i}: 1\n" for i in range(data.draw(st.integers(0, 2))))
    sections[section] += f"  {key}: {first}\n" + between
    sections[section] += f"  {key}: {second}\n"
    text = "".join(f"{s}:\n{body}" if body else f"{s}: {{}}\n" for s, body in sections.items())
    with pytest.raises(ConfigError) as info:
        config.loads(text)
    assert info.value.key == f"{section}.{key}" and "duplicate key" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([1, 2, 4]), min_size=2, max_size=5).filter(
    lambda v: len(set(v)) < len(v)), as_float=st.booleans())
def test_fuzzed_repeated_grid_values_are_always_errors(values, as_float):
    grid = [float(v) if as_float and i % 2 else v for i, v in enumerate(values)]
    raw = {"target": {"name": "sparse_parity", "n": 10, "k": 2}, "learner": {"name": "mlp", "width": 8},
           "train": {"batch": 16}, "sweep": {"grid": {"train.lr": grid}}}  # lr 2 and 2.0 are one value
    with pytest.raises(ConfigError) as info:
        config.from_dict(raw)
    assert info.value.key == "sweep.grid.train.lr" and "repeated value" in str(info.value)


MAGNITUDES = st.one_of(st.integers(-10**40, 10**40), st.sampled_from([2**31 - 1, 2**31, -2**31, -2**31 - 1, 10**30]),
                       st.floats(min_value=-1e300, max_value=1e300))


@settings(max_examples=150, deadline=None)
@given(path=st.sampled_from(["target.n", "target.k", "learner.width", "data.m", "data.test_m", "train.steps",
                             "train.batch", "train.eval_every", "train.lr", "train.init_seed", "sweep.seeds",
                             "executor.max_group_runs", "executor.cpus", "target.noise"]),
       value=MAGNITUDES)
def test_extreme_magnitudes_load_within_bounds_or_raise_config_error(path, value):
    raw = {"target": {"name": "sparse_parity", "n": 10, "k": 2}, "learner": {"name": "mlp", "width": 8},
           "train": {"batch": 16, "steps": 50, "eval_every": 10}, "data": {"m": 64}}
    section, _, key = path.partition(".")
    raw.setdefault(section, {})[key] = value
    try:
        cfg = config.from_dict(raw)
    except ConfigError as e:
        assert e.key and str(e)
        return
    plain = config.to_plain(cfg)
    for s in ("target", "learner", "train", "data", "executor"):
        for v in plain[s].values():
            if isinstance(v, int) and not isinstance(v, bool):
                assert -2**31 <= v <= 2**31 - 1


def test_a_grid_may_vary_a_field_left_out_of_hashes_at_its_default(tiny_text):
    """Fields kept out of dumps and hashes at their defaults (fields.OMIT_DEFAULT) are still
    grid keys."""
    from sparselearn.sweeps import grid

    raw = yaml.safe_load(tiny_text)
    raw["sweep"] = {"seeds": 1, "grid": {"train.stop_at_eps": [False, True]}}
    exp = config.loads(yaml.safe_dump(raw))
    assert sorted({r.exp.train.stop_at_eps for r in grid.expand(exp)}) == [False, True]
