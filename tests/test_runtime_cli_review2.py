"""Keys of compiled programs by value (not repr), the compile cache's switches and warnings,
figure file names, and the command line's help, exit codes and errors."""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparselearn as sl
from sparselearn import cli, runtime
from sparselearn.errors import ConfigError
from sparselearn.plotting import style

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Hidden:
    """A plug-in-like config whose `sign` its repr leaves out."""

    scale: float = 2.0
    sign: float = field(default=1.0, repr=False)


@dataclass(frozen=True)
class Masked:
    scale: float = 2.0
    sign: float = 1.0

    def __repr__(self):
        return f"Masked(scale={self.scale})"


@pytest.fixture
def jax_cache_settings(monkeypatch):
    """JAX's cache settings and the runtime's own switch, as they were, after the test."""
    from jax.experimental.compilation_cache import compilation_cache as cc

    names = ("jax_enable_compilation_cache", "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    saved = {name: getattr(jax.config, name) for name in names}
    monkeypatch.setattr(runtime, "_switched_off", runtime._switched_off)
    monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    cc.reset_cache()


# ------------------------------------------------------------------ keys by value

@pytest.mark.parametrize("cls", [Hidden, Masked])
def test_configs_that_differ_out_of_their_repr_have_different_program_keys(cls):
    x = np.zeros(3, np.float32)
    key = runtime.program_key(("scaled", cls()), (x,))
    assert runtime.program_key(("scaled", cls()), (x,)) == key
    assert repr(cls(sign=-1.0)) == repr(cls())
    assert runtime.program_key(("scaled", cls(sign=-1.0)), (x,)) != key


def test_a_config_differing_out_of_its_repr_runs_its_own_program(monkeypatch):
    monkeypatch.setattr(runtime, "_LOADED", type(runtime._LOADED)())
    monkeypatch.setattr(runtime, "programs_dir", lambda environ=None: None)
    x = jnp.ones(3)
    results = []
    for cfg in (Hidden(), Hidden(sign=-1.0)):
        jitted = jax.jit(lambda v, cfg=cfg: cfg.sign * cfg.scale * v)
        results.append(np.asarray(runtime.executable(jitted, (x,), ("scaled", cfg))(x)))
    np.testing.assert_array_equal(results[0], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(results[1], [-2.0, -2.0, -2.0])


def test_a_kept_value_follows_fields_its_repr_leaves_out(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "programs_dir", lambda environ=None: tmp_path)
    code = runtime.code_files(Hidden())
    assert runtime.kept_value(("value", Hidden()), code, lambda: 1) == 1
    assert runtime.kept_value(("value", Hidden()), code, lambda: 3) == 1  # kept
    assert runtime.kept_value(("value", Hidden(sign=-1.0)), code, lambda: 2) == 2


DESCRIBED_IN_A_PROCESS = """
from dataclasses import dataclass
from sparselearn import runtime

@dataclass(frozen=True)
class Plug:
    names: frozenset
    weights: dict

print(runtime._described(("plug", Plug(frozenset(f"unit{i}" for i in range(20)), {f"w{i}": i for i in range(20)}))))
"""


def test_what_a_program_key_describes_is_the_same_in_every_process(tmp_path):
    """Sets of strings are ordered by the strings' hashes, which differ per process."""
    described = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", DESCRIBED_IN_A_PROCESS], env=env, capture_output=True,
                              text=True, cwd=tmp_path, check=True)
        described.add(done.stdout.strip())
    assert len(described) == 1


def test_arrays_are_described_by_every_element():
    """A large array's repr elides its middle: numpy and concrete jax arrays are keyed by their
    bytes, so two differing in one element get different programs."""
    a = np.arange(2000.0)
    b = a.copy()
    b[1000] = -1.0
    assert runtime._described(a) != runtime._described(b)
    assert runtime._described(jnp.asarray(a)) != runtime._described(jnp.asarray(b))
    assert runtime._described(jnp.asarray(a)) == runtime._described(jnp.asarray(a.copy()))


def test_an_experiment_is_described_by_every_field():
    """Completeness: every field of every section is named (fields a repr hides: the tests above)."""
    exp = sl.config.loads("""
experiment: e
target:  {name: sparse_parity, n: 6, k: 2}
learner: {name: mlp, width: 8}
train:   {steps: 10, eval_every: 5}
data:    {m: 32, test_m: 16}
""")
    described = runtime._described(exp)
    for section in ("target", "learner", "train", "data"):
        for f in dataclasses.fields(getattr(exp, section)):
            assert f"{f.name}=" in described


# ------------------------------------------------------------------ the compile cache

def test_sparselearn_cache_dir_wins_over_jax_compilation_cache_dir(tmp_path, monkeypatch, jax_cache_settings):
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax"))  # as JAX_COMPILATION_CACHE_DIR sets
    monkeypatch.setenv(runtime.CACHE_DIR_ENV, str(tmp_path / "ours"))
    assert runtime.enable_compile_cache() == tmp_path / "ours"
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "ours")
    assert runtime.programs_dir() == tmp_path / "ours" / runtime.PROGRAMS
    monkeypatch.delenv(runtime.CACHE_DIR_ENV)
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax"))
    assert runtime.enable_compile_cache() == tmp_path / "jax"  # JAX's, where ours is not set


def test_a_directory_jax_was_given_keeps_every_program(tmp_path, monkeypatch, jax_cache_settings):
    """JAX_COMPILATION_CACHE_DIR alone: programs that compile in under a second are kept there
    too (JAX's own threshold, 1 s, was left in place)."""
    monkeypatch.delenv(runtime.CACHE_DIR_ENV, raising=False)
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    assert runtime.enable_compile_cache() == tmp_path / "jax"
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
    assert jax.config.jax_persistent_cache_min_entry_size_bytes == -1


@pytest.mark.parametrize("how", ["environment", "disable"])
def test_an_explicit_path_does_not_turn_a_switched_off_cache_on(tmp_path, monkeypatch, jax_cache_settings, how):
    environ = {runtime.CACHE_DIR_ENV: str(tmp_path / "ours")}
    if how == "environment":
        environ[runtime.CACHE_ENV] = "off"
    else:
        runtime.disable_compile_cache(environ)
    assert runtime.enable_compile_cache(tmp_path / "given", environ) is None
    assert not jax.config.jax_enable_compilation_cache
    assert not (tmp_path / "given").exists()


def test_a_cache_that_cannot_be_created_is_warned_about_once(tmp_path, monkeypatch, jax_cache_settings):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(runtime.CACHE_DIR_ENV, str(blocker / "cache"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # as a filter change elsewhere resets the registry
        for _ in range(3):
            assert runtime.enable_compile_cache() is None
            assert runtime.programs_dir() is None
    assert [str(w.message) for w in caught if "compilation cache" in str(w.message)] == [
        f"compilation cache disabled: cannot create {blocker / 'cache'} (Not a directory)"]


def test_a_cache_that_cannot_be_written_is_warned_about_once_and_read(tmp_path, monkeypatch, jax_cache_settings):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o555)
    if os.access(shared, os.W_OK):  # root writes anywhere: answer as for anyone else
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == shared and mode & os.W_OK
                            else real(p, mode, **kw))
    monkeypatch.setenv(runtime.CACHE_DIR_ENV, str(shared))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(2):
                assert runtime.enable_compile_cache() == shared
                jax.config.update("jax_compilation_cache_dir", None)  # as a fresh sweep in another process
    finally:
        shared.chmod(0o755)
    messages = [str(w.message) for w in caught if "compilation cache" in str(w.message)]
    assert len(messages) == 1 and f"{shared} is not writable" in messages[0]


# ------------------------------------------------------------------ figure files

@pytest.fixture
def fig():
    fig, ax = style.figure()
    ax.plot([0, 1], [1, 0])
    return fig


def test_figure_names_with_dots_keep_them(fig, tmp_path):
    written = style.save(fig, tmp_path / "quick_lr0.1", pdf=False) + style.save(style.figure()[0],
                                                                                 tmp_path / "quick_lr0.01", pdf=False)
    assert written == [tmp_path / "quick_lr0.1.png", tmp_path / "quick_lr0.01.png"]
    assert all(p.is_file() for p in written)
    assert style.figure_paths(tmp_path / "fig.png") == [tmp_path / "fig.png", tmp_path / "fig.pdf"]
    assert style.figure_paths(tmp_path / "fig.pdf", pdf=False) == [tmp_path / "fig.png"]


def test_a_figure_name_with_another_image_suffix_is_refused(fig, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'fig.png'} and {tmp_path / 'fig.pdf'}")):
        style.save(fig, tmp_path / "fig.svg")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def stored(tmp_path_factory, tiny_text):
    """A results store of two tiny runs."""
    out = tmp_path_factory.mktemp("results")
    exp = sl.config.loads(tiny_text.replace("grid: {data.m: [64, 256]}", "grid: {}"))
    sl.run(exp, str(out), progress=False)
    return out / "tiny"


def test_plot_into_a_directory_exits_2_naming_it(stored, tmp_path, capsys):
    (tmp_path / "fig.pdf").mkdir()
    assert cli.main(["plot", str(stored), "--out", str(tmp_path / "fig")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'fig.pdf'}: is a directory" in err and "Traceback" not in err
    assert not (tmp_path / "fig.png").exists()
    assert cli.main(["plot", str(stored), "--out", str(tmp_path / "fig.svg")]) == 2
    assert "fig.png and" in capsys.readouterr().err


def test_plot_that_cannot_write_its_figure_exits_2_naming_it(stored, tmp_path, capsys, monkeypatch):
    import matplotlib.figure

    def full(self, path, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    assert cli.main(["plot", str(stored), "--out", str(tmp_path / "fig")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'fig.png'}: {os.strerror(errno.ENOSPC)}" in err and "Traceback" not in err


# ------------------------------------------------------------------ the command line

def test_every_flag_of_every_command_says_what_it_does():
    parser = cli._parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, command in commands.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}"


def test_the_docstring_lists_every_exit_status():
    source = Path(cli.__file__).read_text()
    found = re.findall(r"return (\d+)\b|_exit\((\d+)\)|code or (\d+)", source)
    codes = {int(code) for groups in found for code in groups if code} | {0, 1}
    statuses = cli.__doc__.split("Exit status:")[1]
    assert codes >= {2, 120, 130, 141}
    for code in codes:
        assert re.search(rf"\b{code} ", statuses), code


@pytest.mark.parametrize("platform", ["nosuchplatform", "cuda"])
def test_a_jax_platform_this_machine_lacks_exits_2_naming_it(platform, tmp_path):
    if platform == "cuda":
        from jax._src import hardware_utils

        if hardware_utils.has_visible_nvidia_gpu():
            pytest.skip("this machine has a CUDA device")
    env = {**os.environ, "JAX_PLATFORMS": platform}
    done = subprocess.run([sys.executable, "-m", "sparselearn.cli", "run", str(ROOT / "configs" / "quickstart.yaml"),
                           "--smoke", "--out", str(tmp_path / "results")], env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert f"JAX_PLATFORMS={platform}" in done.stderr and "Traceback" not in done.stderr
