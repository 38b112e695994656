"""Config review: grid × seeds expansion, run and group ids (stable, unique, order-free), shape
groups, `--set` typing, dump/load round trips and validation errors naming key and file."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparselearn import config
from sparselearn.errors import ConfigError
from sparselearn.sweeps import grid
from sparselearn.train import spec

BASE = {"experiment": "rev",
        "target": {"name": "sparse_parity", "n": 10, "k": 2},
        "learner": {"name": "mlp", "width": 8, "depth": 2},
        "train": {"lr": 0.1, "batch": 16, "steps": 40, "eval_every": 20},
        "data": {"m": 256, "test_m": 64}}

#: grid axes and the values they may take: vmapped ones (spec.AXES) and static shapes
VMAPPED = {"train.lr": [0.05, 0.1, 1e-3], "train.weight_decay": [0.0, 1e-4, 0.01], "data.m": [32, 64, 256],
           "train.init_seed": [None, 3, 7], "target.noise": [0.0, 0.1, 0.2]}
STATIC = {"target.n": [8, 10, 12], "learner.width": [8, 16], "train.steps": [40, 60], "train.batch": [8, 16]}
AXES = {**VMAPPED, **STATIC}


def _text(raw: dict, section_order=None) -> str:
    """YAML text of `raw` with its sections in `section_order`."""
    order = section_order or list(raw)
    return yaml.safe_dump({k: raw[k] for k in order}, sort_keys=False)


def _with_sweep(grid_: dict, seeds) -> dict:
    return {**BASE, "sweep": {"seeds": seeds, "grid": grid_}}


@st.composite
def sweeps(draw, axes=AXES, max_keys=3):
    """(grid dict, seeds, the same grid with its keys in another order)."""
    keys = draw(st.lists(st.sampled_from(sorted(axes)), min_size=0, max_size=max_keys, unique=True))
    grid_ = {k: draw(st.lists(st.sampled_from(axes[k]), min_size=1, max_size=3, unique=True)) for k in keys}
    seeds = draw(st.one_of(st.integers(1, 3), st.lists(st.integers(0, 50), min_size=1, max_size=3, unique=True)))
    shuffled = dict(draw(st.permutations(list(grid_.items()))))
    return grid_, seeds, shuffled


def _by_point(runs) -> dict:
    """(grid point as a sorted tuple, seed) → run_id."""
    return {(tuple(sorted(r.point, key=lambda kv: kv[0])), r.seed): r.run_id for r in runs}


# ------------------------------------------------------------------ expansion and run ids

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweeps(), st.permutations(list(BASE) + ["sweep"]))
def test_every_grid_point_and_seed_is_one_run_with_an_order_free_unique_id(sweep, section_order):
    grid_, seeds, shuffled = sweep
    exp = config.loads(_text(_with_sweep(grid_, seeds)))
    other = config.loads(_text(_with_sweep(shuffled, seeds), section_order))
    runs = grid.expand(exp)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else seeds
    points = list(itertools.product(*[[(k, v) for v in vs] for k, vs in sorted(grid_.items())]))
    want = {(p, s) for p in points for s in seed_list}
    got = list(_by_point(runs))
    assert len(runs) == len(points) * len(seed_list) == len(want) and set(got) == want  # each exactly once
    assert len({r.run_id for r in runs}) == len(runs)
    for r in runs:  # a run's config holds its point and seed
        for key, value in r.point:
            section, _, name = key.partition(".")
            assert getattr(getattr(r.exp, section), name) == value
    # the same runs under the same ids whatever the order of grid keys and YAML sections,
    # and after a dump and load
    assert config.config_hash(other) == config.config_hash(exp)
    assert _by_point(grid.expand(other)) == _by_point(runs)
    again = config.loads(config.dump(exp))
    assert again == exp and config.config_hash(again) == config.config_hash(exp)
    assert [r.run_id for r in grid.expand(again)] == [r.run_id for r in runs]


@pytest.mark.parametrize("key, value", [
    ("train.lr", 0.2), ("train.steps", 60), ("train.eps", 0.1), ("train.init_seed", 4), ("train.momentum", 0.5),
    ("train.stop_at_eps", True), ("train.record", ["unit_norms"]), ("data.test_m", 32),
    ("target.noise", 0.1), ("target.inputs", "biased"), ("learner.width", 16), ("learner.bias_init", 0.5),
    ("experiment", "other"),
])
def test_run_ids_change_with_any_value_that_changes_the_run(key, value):
    exp = config.from_dict(_with_sweep({"data.m": [64, 256]}, 2))
    section, _, name = key.partition(".")
    changed = config.override(exp, **({section: value} if not name else {section: {name: value}}))
    assert changed != exp
    assert not {r.run_id for r in grid.expand(exp)} & {r.run_id for r in grid.expand(changed)}


def test_minus_zero_is_zero_in_the_config_and_its_hash():
    """weight_decay −0.0 passes the ≥ 0 check and means 0.0: the same config, hash and run ids."""
    zero, minus = (config.from_dict({**BASE, "train": {**BASE["train"], "weight_decay": wd}}) for wd in (0.0, -0.0))
    assert math.copysign(1.0, minus.train.weight_decay) == 1.0
    assert config.config_hash(minus) == config.config_hash(zero)
    assert [r.run_id for r in grid.expand(minus)] == [r.run_id for r in grid.expand(zero)]


def test_defaults_written_out_hash_like_defaults_left_out():
    """Every field written at its default value (those kept out of hashes at their defaults
    included) gives the config, hash and run ids of the config that leaves them out."""
    raw = {**_with_sweep({"data.m": [64, 256]}, 2), "target": {"name": "sparse_mlp", "n": 6, "s": 8, "k": 2},
           "train": {**BASE["train"], "loss": "square"}}
    short = config.from_dict(raw)
    full = json.loads(json.dumps(raw))
    for section in ("target", "learner", "train", "data"):
        for f in dataclasses.fields(getattr(short, section)):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            full[section].setdefault(f.name, list(default) if isinstance(default, tuple) else default)
    full["executor"] = {f.name: f.default for f in dataclasses.fields(config.ExecutorConfig)}
    assert "active" in full["target"] and "stop_at_eps" in full["train"] and "bias_init" in full["learner"]
    long = config.loads(yaml.safe_dump(full))
    assert long == short and config.config_hash(long) == config.config_hash(short)
    assert [r.run_id for r in grid.expand(long)] == [r.run_id for r in grid.expand(short)]


def test_run_and_group_ids_are_the_same_in_another_process():
    exp = config.from_dict(_with_sweep({"train.lr": [0.1, 0.2], "target.n": [8, 10]}, 2))
    here = [(g.group_id, [r.run_id for r in g.runs]) for g in grid.group(grid.expand(exp))]
    code = ("import json, sys; from sparselearn import config; from sparselearn.sweeps import grid; "
            "exp = config.from_dict(json.loads(sys.argv[1])); "
            "print(json.dumps([(g.group_id, [r.run_id for r in g.runs]) for g in grid.group(grid.expand(exp))]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(config.to_plain(exp))], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [tuple(x) for x in json.loads(out.stdout)] == here


# ------------------------------------------------------------------ groups

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweeps(max_keys=4))
def test_groups_partition_runs_by_static_shape(sweep):
    grid_, seeds, _ = sweep
    runs = grid.expand(config.from_dict(_with_sweep(grid_, seeds)))
    groups = grid.group(runs)
    members = [r for g in groups for r in g.runs]
    assert sorted(r.run_id for r in members) == sorted(r.run_id for r in runs)  # none lost or repeated
    assert len({g.group_id for g in groups}) == len(groups)
    static = [k for k in grid_ if k in STATIC]
    # one group per combination of static values: runs differing only in vmapped values share one
    assert len(groups) == math.prod(len(grid_[k]) for k in static)
    for g in groups:
        assert len({spec.group_key(r.exp) for r in g.runs}) == 1
        assert spec.static_part(g.exp) == spec.static_part(
            dataclasses.replace(g.runs[0].exp, data=dataclasses.replace(g.runs[0].exp.data, m=g.exp.data.m)))
        assert g.exp.data.m == max(r.exp.data.m for r in g.runs)
        assert {(k, v) for r in g.runs for k, v in r.point if k in STATIC} == \
            {(k, v) for k, v in g.runs[0].point if k in STATIC}
        hps = g.hps()
        assert hps["lr"] == [r.exp.train.lr for r in g.runs] and hps["seed"] == [r.seed for r in g.runs]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweeps(max_keys=3), st.data())
def test_group_ids_do_not_depend_on_the_order_of_grid_keys(sweep, data):
    """Two processes sharing a store claim groups by id: configs whose grid keys are written in
    another order (one config hash, one store, the same run ids) must name each group alike."""
    grid_, seeds, shuffled = sweep
    ids = []
    for g_ in (grid_, shuffled):
        groups = grid.group(grid.expand(config.from_dict(_with_sweep(g_, seeds))))
        ids.append({frozenset(r.run_id for r in g.runs): g.group_id for g in groups})
    assert ids[0] == ids[1]


def test_group_ids_do_not_depend_on_the_order_of_grid_keys_example():
    a = config.from_dict(_with_sweep({"data.m": [64, 256], "train.lr": [0.1, 0.2]}, 2))
    b = config.from_dict(_with_sweep({"train.lr": [0.1, 0.2], "data.m": [64, 256]}, 2))
    (ga,), (gb,) = grid.group(grid.expand(a)), grid.group(grid.expand(b))
    assert [r.run_id for r in ga.runs] != [r.run_id for r in gb.runs]  # other order, same runs
    assert sorted(r.run_id for r in ga.runs) == sorted(r.run_id for r in gb.runs)
    assert ga.group_id == gb.group_id


# ------------------------------------------------------------------ overrides

def _file(tmp_path, raw=None) -> str:
    path = tmp_path / "rev.yaml"
    path.write_text(_text(raw or _with_sweep({"data.m": [64, 256]}, 2)))
    return path


def test_overrides_set_nested_keys_lists_floats_booleans_and_null(tmp_path):
    path = _file(tmp_path)
    exp = config.load(path, ["train.lr=1e-3", "train.weight_decay=1E-4", "train.stop_at_eps=true", "train.momentum=0.5",
                             "train.record=[unit_norms, first_layer]", "learner.bias_init=.5",
                             "sweep.grid.train.init_seed=[null, 3]", "sweep.grid.target.noise=[0, 1e-1]",
                             "sweep.seeds=[4, 2]"])
    assert exp.train.lr == 0.001 and exp.train.weight_decay == 0.0001 and exp.train.stop_at_eps is True
    assert exp.train.momentum == 0.5
    assert exp.train.record == ("unit_norms", "first_layer") and exp.learner.bias_init == 0.5
    grid_ = dict(exp.sweep.grid)
    assert grid_["train.init_seed"] == (None, 3) and grid_["target.noise"] == (0.0, 0.1)
    assert all(type(v) is float for v in grid_["target.noise"]) and exp.sweep.seeds == (4, 2)
    for text in ("train.init_seed=null", "train.init_seed=~", "train.init_seed="):
        assert config.load(path, [text]).train.init_seed is None
    assert config.load(path, ["data.online=false"]).data.online is False


@pytest.mark.parametrize("overrides, key", [
    (["sweep.grid.train.lr=[0.1, 0.2]", "train.lr=0.3"], "train.lr"),
    (["train.lr=0.3", "sweep.grid.train.lr=[0.1, 0.2]"], "train.lr"),
    (["data.m=128"], "data.m"),  # the file's grid sweeps data.m
])
def test_overriding_a_swept_key_names_the_key_and_the_file(tmp_path, overrides, key):
    path = _file(tmp_path)
    with pytest.raises(ConfigError, match="swept by sweep.grid") as info:
        config.load(path, overrides)
    assert (info.value.key, info.value.file) == (key, str(path))


def test_overriding_a_grid_axis_and_an_unswept_base_key(tmp_path):
    exp = config.load(_file(tmp_path), ["sweep.grid.data.m=[32, 128]", "train.lr=0.3"])
    runs = grid.expand(exp)
    assert sorted({r.exp.data.m for r in runs}) == [32, 128] and {r.exp.train.lr for r in runs} == {0.3}


@pytest.mark.parametrize("override, key", [
    ("train.lrr=0.1", "train.lrr"), ("sweep.seed=3", "sweep.seed"), ("executor.nme=x", "executor.nme"),
    ("sweep.grid.train.lrr=[1]", "sweep.grid.train.lrr"), ("learner.widht=4", "learner.widht"),
    ("target.name.n=3", "target.name.n"), ("sweep.grid.train.lr.x=[1]", "sweep.grid.train.lr.x"),
])
def test_a_typo_is_an_error_naming_the_key_and_the_file(tmp_path, override, key):
    path = _file(tmp_path)
    with pytest.raises(ConfigError) as info:
        config.load(path, [override])
    assert (info.value.key, info.value.file) == (key, str(path)), str(info.value)
    assert str(info.value).startswith(f"{path}: {key}: ")


@pytest.mark.parametrize("text", ["0x_", "0o_", "0x__", "0o__"])
def test_hex_and_octal_prefixes_without_digits_are_text(tmp_path, text):
    """0x_ matched the integer pattern, then int() failed: a bare ValueError (no key, no file;
    the command line's internal-error path) instead of a ConfigError."""
    assert config.parse_override(f"a={text}") == ("a", text)
    path = _file(tmp_path)
    with pytest.raises(ConfigError, match="expected an integer") as info:
        config.load(path, [f"train.steps={text}"])
    assert (info.value.key, info.value.file) == ("train.steps", str(path))
    raw = {**_with_sweep({"data.m": [64, 256]}, 2), "executor": {"partition": text}}
    exp = config.loads(_text(raw))
    assert exp.executor.partition == text and config.loads(config.dump(exp)) == exp


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["", "0x", "0o", "-", "+", "0", "."]), st.text(alphabet="_09afo.e-:", max_size=4))
def test_number_like_override_values_parse_or_raise_config_error(prefix, rest):
    try:
        key, value = config.parse_override(f"train.steps={prefix}{rest}")
    except ConfigError:
        return
    assert key == "train.steps" and (value is None or isinstance(value, (int, float, str, bool, list)))


NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,8}\Z")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lr=st.floats(1e-9, 1e6), wd=st.floats(0, 1e3), noise=st.floats(0, 0.5), name=NAMES,
       lrs=st.lists(st.floats(1e-9, 1e6), min_size=1, max_size=3, unique=True),
       seeds=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=3, unique=True),
       init_seed=st.one_of(st.none(), st.integers(0, 2**31 - 1)))
def test_dump_then_load_gives_the_same_experiment_hash_and_runs(lr, wd, noise, name, lrs, seeds, init_seed):
    raw = {**_with_sweep({"train.lr": lrs}, seeds), "experiment": name,
           "train": {**BASE["train"], "lr": lr, "weight_decay": wd, "init_seed": init_seed},
           "target": {**BASE["target"], "noise": noise}}
    exp = config.from_dict(raw)
    again = config.loads(config.dump(exp))
    assert again == exp and config.config_hash(again) == config.config_hash(exp)
    assert [r.run_id for r in grid.expand(again)] == [r.run_id for r in grid.expand(exp)]


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize("override, key", [
    ("target.k=11", "target.k"), ("sweep.grid.target.k=[2, 11]", "target.k"),
    ("data.test_m=0", "data.test_m"), ("sweep.grid.data.m=[64, 0]", "data.m"),
    ("train.lr=-1e-3", "train.lr"), ("sweep.grid.train.lr=[0.1, -0.1]", "train.lr"),
    ("train.eval_every=41", "train.eval_every"), ("sweep.grid.train.steps=[40, 10]", "train.eval_every"),
    ("sweep.grid.data.m=[64, 8]", "train.batch"), ("train.weight_decay=-1", "train.weight_decay"),
    ("train.eps=1.5", "train.eps"), ("sweep.grid.target.noise=[0.6]", "target.noise"),
    ("sweep.seeds=[-1]", "sweep.seeds"), ("sweep.grid.train.init_seed=[-2]", "train.init_seed"),
    ("train.momentum=1", "train.momentum"),
])
def test_impossible_values_name_the_dotted_key_and_the_file(tmp_path, override, key):
    path = _file(tmp_path)
    with pytest.raises(ConfigError) as info:
        config.load(path, [override])
    assert (info.value.key, info.value.file) == (key, str(path)), str(info.value)
    if override.startswith("sweep.grid.") and key != "sweep.seeds":
        assert "at grid point" in str(info.value)


def test_s_below_k_names_the_target_key_and_the_file(tmp_path):
    raw = {**_with_sweep({"target.s": [8, 1]}, 1), "target": {"name": "sparse_mlp", "n": 6, "s": 8, "k": 2},
           "train": {**BASE["train"], "loss": "square"}}
    path = _file(tmp_path, raw)
    with pytest.raises(ConfigError, match="k ≤ s") as info:
        config.load(path)
    assert (info.value.key, info.value.file) == ("target.k", str(path)) and "target.s=1" in str(info.value)


@pytest.mark.parametrize("setting", ["target.noise=.inf", "train.lr=.nan", "train.eps=-.inf", "train.lr=1e400",
                                     "sweep.grid.train.lr=[0.1, .inf]"])
def test_non_finite_numbers_are_config_errors_naming_the_key(setting):
    key = setting.split("=")[0].removeprefix("sweep.grid.")
    with pytest.raises(ConfigError, match=f"{key}.*finite"):
        config.loads(_text(BASE), [setting])


@pytest.mark.parametrize("text, key", [('train: {lr: "0.001"}', "train.lr"), ('data: {m: "100"}', "data.m")])
def test_a_quoted_number_is_an_error_that_says_to_drop_the_quotes(text, key):
    base = "experiment: x\ntarget: {name: sparse_parity, n: 10, k: 2}\nlearner: {name: mlp, width: 8}\n"
    with pytest.raises(config.ConfigError) as info:
        config.loads(base + text + "\n")
    assert info.value.key == key and "write the number without quotes" in str(info.value)


@pytest.mark.parametrize("override, key", [
    ("data: {m: 64, test_m: 64, online: true}", "data.m"),
    ("data: {test_m: 64, online: true}\nsweep: {grid: {data.m: [64, 256]}}", "sweep.grid.data.m"),
    ("data: {m: 64, test_m: 64}\nsweep: {grid: {data.online: [true]}}", "data.m"),
])
def test_data_m_with_online_data_is_refused_naming_the_key(override, key):
    """Online runs draw a fresh mini-batch every step and never read m: two m values were stored
    as two grid points (and two hashes) of bit-identical runs. Beside offline points m is read."""
    head = ("target: {name: sparse_parity, n: 8, k: 2}\nlearner: {name: mlp, width: 8}\n"
            "train: {batch: 16, steps: 20, eval_every: 10}\n")
    with pytest.raises(ConfigError, match="not used with data.online") as err:
        config.loads(head + override + "\n")
    assert err.value.key == key
    assert config.loads(head + "data: {test_m: 64, online: true}\n").data.online
    both = config.loads(head + "data: {m: 64, test_m: 64}\nsweep: {grid: {data.online: [false, true]}}\n")
    assert both.data.m == 64


@pytest.mark.parametrize("key, value", [("optimizer", "adam"), ("lr", 0.5), ("batch", 8), ("steps", 5000),
                                        ("eval_every", 5), ("stop_at_eps", True), ("weight_decay", 0.1)])
def test_a_fitted_learner_refuses_train_settings_it_never_reads(key, value):
    """lowdegree takes no gradient steps: a grid over train.lr trained two identical runs under two
    grid points; a set optimizer changed the hash and nothing else."""
    text = ("target: {name: sparse_parity, n: 8, k: 2}\nlearner: {name: lowdegree, degree: 2}\n"
            "train: {loss: square}\ndata: {m: 64, test_m: 64}\n")
    base = config.loads(text)
    with pytest.raises(ConfigError, match="fitted, not trained") as err:
        config.override(base, train={key: value})
    assert err.value.key == f"train.{key}"
    with pytest.raises(ConfigError, match="fitted, not trained") as err:   # a grid over steps: not eval_every's
        config.loads(text + f"sweep: {{grid: {{train.{key}: [{getattr(base.train, key)!r}, {value!r}]}}}}\n".replace(
            "True", "true").replace("False", "false").replace("5000", "10"))
    assert err.value.key == f"sweep.grid.train.{key}"
    smoked = config.smoke(base)            # --smoke caps the steps of trained learners only
    assert smoked.train == base.train
    config.override(base, train={"eps": 0.2, "precision": "high", "init_seed": 3})   # what it reads
