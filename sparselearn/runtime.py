"""JAX start-up settings: the persistent compilation cache and the number of host devices.

The compilation cache stores every compiled program on disk, so a shape compiles once on a
machine, not once per process. It is on by default, in `$SPARSELEARN_CACHE_DIR`, else the
directory JAX was given (`JAX_COMPILATION_CACHE_DIR`, `jax_compilation_cache_dir`), else
`$XDG_CACHE_HOME/sparselearn/jax-<jax version>-jaxlib-<jaxlib version>` (default `~/.cache/...`); `SPARSELEARN_CACHE=0`
(or `off`), `--no-compile-cache` on the command line or `executor.compile_cache: false` turns
it off, whatever names a directory. A directory that cannot be created is warned about and the
cache is off; one that cannot be written is warned about and only read.

Host devices: XLA runs one CPU "device" by default, so a vmapped group uses one core for its
small matrix products. `sparselearn` (the command) starts JAX with one host device per core
and the local executor shards each group's run axis over them. From Python, do the same
before JAX first runs anything:

    >>> import os; os.environ["XLA_FLAGS"] = sparselearn.runtime.host_device_flags(os.environ)  # doctest: +SKIP
    >>> import sparselearn as sl            # then sl.run uses every core

(or `jax.config.update("jax_num_cpu_devices", os.cpu_count())` right after `import jax`).
Compiled programs: JAX's cache is keyed by the lowered program, so a process must still trace
and lower a group (about a second for the quickstart) before it finds the compiled code.
`executable` keys a group's program by what it is built from instead (the static experiment,
the argument shapes and shardings, the source of the code that builds it, the versions and the
machine), keeps the serialized executable beside JAX's cache (not in it: deleting a kept
program makes the next process compile it afresh), and loads it in a fresh process without
tracing. It follows the same switches as the cache. Plug-in code is keyed as this process
loaded it (`code_files`); a plug-in class with no source file (`python -c`, a notebook cell)
has its programs kept in its process only.

Compile tiers: the XLA option sets a program is compiled with on CPU (`FULL_COMPILE`, XLA's
defaults stated; `QUICK_COMPILE`; `TINY_COMPILE`). Groups take one by their size
(`sparselearn.train.loop.compile_tier`); functions called eagerly with many small shapes (a
teacher's `init` and `sample`) are `tiered_jit`s, whose small programs take the tiny one.

Nothing here imports jax at module level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import glob
import hashlib
import inspect
import json
import marshal
import os
import pickle
import platform
import re
import sys
import threading
import time
import types
import uuid
import warnings
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

CACHE_ENV = "SPARSELEARN_CACHE"
CACHE_DIR_ENV = "SPARSELEARN_CACHE_DIR"
OFF = ("0", "off", "false", "no")
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cache_dir(environ=os.environ) -> Path | None:
    """Where compiled programs are kept, or None when the cache is switched off.

    The default directory names the jax and jaxlib versions, so programs of one version are
    never offered to another (jax's own cache key covers this too; separate directories
    also make stale ones easy to delete). `SPARSELEARN_CACHE_DIR=off` (or 0, false, no) switches
    it off as `SPARSELEARN_CACHE=off` does, rather than naming a directory "off".
    """
    if any(environ.get(name, "").strip().lower() in OFF for name in (CACHE_ENV, CACHE_DIR_ENV)):
        return None
    if environ.get(CACHE_DIR_ENV):
        return Path(environ[CACHE_DIR_ENV]).expanduser()
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "sparselearn" / f"jax-{metadata.version('jax')}-jaxlib-{metadata.version('jaxlib')}"


def enable_compile_cache(path: str | Path | None = None, environ=os.environ) -> Path | None:
    """Point JAX's persistent compilation cache at `path` (default: `$SPARSELEARN_CACHE_DIR`, else
    a directory set before, `jax_compilation_cache_dir`, else `cache_dir()`), keeping every program
    however fast it compiled. Returns the directory in use, or None when the cache is off (by the
    environment or `disable_compile_cache`, also where `path` is given; JAX's own cache is then
    switched off too, even where JAX_COMPILATION_CACHE_DIR names one) or its directory cannot be
    created. Safe to call many times; takes effect for programs compiled after it.
    """
    import jax

    on = cache_dir(environ) is not None
    _jax_cache(on)
    if not on or not jax.config.jax_enable_compilation_cache:
        return None
    before = jax.config.jax_compilation_cache_dir
    if path is None:   # ours, else the one JAX was given, else the default
        path = Path(before) if before and not environ.get(CACHE_DIR_ENV) else cache_dir(environ)
    path = Path(path).expanduser()
    if before == str(path) and jax.config.jax_persistent_cache_min_compile_time_secs == 0:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # an unwritable home: run without the cache rather than fail
        _warn_cache(f"compilation cache disabled: cannot create {path} ({e.strerror or e})")
        _jax_cache(False)  # nor a directory JAX was given: the user asked for this one
        return None
    if not os.access(path, os.W_OK | os.X_OK):  # a cache shared read-only: read from, nothing kept
        _warn_cache(f"compilation cache {path} is not writable: programs are read from it, "
                    "those compiled now are not kept")
    from jax.experimental.compilation_cache import compilation_cache as cc

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    cc.reset_cache()  # jax decides once per process whether to use a cache; ask again now
    return path


@functools.cache
def _warn_cache(message: str) -> None:
    # once per process, as _warn_one_host_device: a search calls enable_compile_cache every round
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def disable_compile_cache(environ=os.environ) -> None:
    """Switch the cache off for this process and the processes it starts that inherit its
    environment; for the command line's `--no-compile-cache`."""
    environ[CACHE_ENV] = "off"
    if "jax" in sys.modules:  # else not started: the environment is enough
        _jax_cache(False)


#: whether JAX's cache is off because `_jax_cache` switched it off (not the user's jax settings)
_switched_off = False


def _jax_cache(on: bool) -> None:
    """JAX's persistent compilation cache switched off in this process, or on again where this
    module switched it off (a cache the user's jax settings switch off stays off)."""
    global _switched_off
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    if on == jax.config.jax_enable_compilation_cache or (on and not _switched_off):
        return
    jax.config.update("jax_enable_compilation_cache", on)
    cc.reset_cache()
    _switched_off = not on


def host_device_flags(environ=os.environ, count: int | None = None) -> str:
    """XLA_FLAGS with one host device per core appended, unless the flags already set a count.

    Example:
        >>> host_device_flags({"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}, count=4)
        '--xla_cpu_enable_fast_math=false --xla_force_host_platform_device_count=4'
    """
    flags = environ.get("XLA_FLAGS", "")
    if re.search(rf"{DEVICE_COUNT_FLAG}\b", flags):
        return flags
    count = cpu_count() if count is None else count
    return f"{flags} {DEVICE_COUNT_FLAG}={count}".strip()


def one_at_a_time(fn):
    """`fn` (arrays → arrays), vmapped as a loop over the batch (`jax.custom_batching.sequential_vmap`).
    For LAPACK operations (Cholesky, eigh, QR) in code that runs inside a group: jaxlib's CPU
    kernels (0.10) split a batch over XLA's intra-op thread pool and block one of its threads
    until the pieces are done, so with as many host devices as pool threads, each device's call
    holding one, no thread is left to run the pieces and the process hangs (or crashes: a
    kernel-ridge group of 4 runs on 2 host devices hung every time). One matrix per call is
    computed on the calling thread.

    Example:
        >>> qr = one_at_a_time(lambda g: jnp.linalg.qr(g)[0])
        >>> gaussians = jax.random.normal(jax.random.key(0), (3, 5, 2))
        >>> jax.vmap(qr)(gaussians).shape          # a loop of unbatched QRs
        (3, 5, 2)
    """
    import jax

    return jax.custom_batching.sequential_vmap(fn)


def jax_started() -> bool:
    """Whether this process's JAX backends exist already (device counts are then fixed)."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def backend_error() -> str | None:
    """Why JAX cannot start its backends in this process (e.g. JAX_PLATFORMS names a platform
    this machine lacks), found by starting them; None when they start, have started, or jax is
    not imported."""
    if "jax" not in sys.modules or jax_started():
        return None
    import jax

    try:
        jax.devices()
    except Exception as e:  # noqa: BLE001 - jax 0.10 asserts when every named platform is skipped
        return str(e) or "none of the platforms it names is available on this machine"
    return None


def use_every_core(environ=os.environ) -> None:
    """Give JAX one host device per core, if its backend has not started yet (else nothing).
    For processes that own their JAX, such as the command line."""
    if not jax_started():
        environ["XLA_FLAGS"] = host_device_flags(environ)


def local_devices():
    """The devices a local group is sharded over: every local accelerator, or every host
    CPU device. Warns once per process when JAX runs a single host device on a machine
    with several cores, unless that count was chosen (XLA_FLAGS, jax_num_cpu_devices)."""
    import jax

    devices = jax.local_devices()
    chosen = DEVICE_COUNT_FLAG in os.environ.get("XLA_FLAGS", "") or jax.config.jax_num_cpu_devices > 0
    if len(devices) == 1 and devices[0].platform == "cpu" and cpu_count() > 1 and not chosen:
        _warn_one_host_device(cpu_count())
    return tuple(devices)


@functools.cache
def _warn_one_host_device(cores: int) -> None:
    # cached, not left to the warnings registry: any filter change (jax, pandas, tqdm make
    # some) resets that registry, and a sample-complexity search would warn every round
    warnings.warn(f"JAX runs one CPU device on this {cores}-core machine, so groups use one core; "
                  f"set XLA_FLAGS={DEVICE_COUNT_FLAG}={cores} before importing jax "
                  "(see sparselearn.runtime) to use them all", RuntimeWarning, stacklevel=3)


def compile_cache(on: bool = True) -> Path | None:
    """Before a sweep compiles: the persistent cache on (unless the environment switches it
    off, see `cache_dir`) or off, in this process until the next sweep's setting. Returns the
    directory in use, if any."""
    if on:
        return enable_compile_cache()
    _jax_cache(False)
    return None


def with_compile_cache(on: bool, fn, *args, **kwargs):
    """`fn(*args, **kwargs)` with the compile cache `on` (unless the worker's environment switches
    it off) or off: what a worker process of the Ray or SLURM executors runs, so workers share
    compiled programs, and a sweep's `compile_cache: false` reaches workers that do not inherit
    this process's environment."""
    compile_cache(on)
    return fn(*args, **kwargs)


def worker_compile_cache(on: bool) -> bool:
    """The `on` for `with_compile_cache` of a sweep's workers: its `compile_cache` setting, and off
    where this process's environment switches the cache off (`--no-compile-cache`)."""
    return on and cache_dir() is not None


# ------------------------------------------------------------------ compiled programs
#: XLA's default options on CPU, stated: a program compiled with one of these option sets
#: compiles the same whatever XLA_FLAGS say (the tests make everything else compile cheaply)
FULL_COMPILE = {"xla_backend_optimization_level": 3, "xla_cpu_use_fusion_emitters": True}
#: XLA options for programs that run briefly on CPU: the classic fusion emitters compile the
#: quickstart group 2.5× faster than the default ones but run its steps about 25% slower;
#: results agree to float rounding (the last bit of a mean may differ)
QUICK_COMPILE = {**FULL_COMPILE, "xla_cpu_use_fusion_emitters": False}
#: for programs that run for well under a second: no LLVM optimisation. The unrolled random
#: streams make the generated code large, and optimising it dominates a small program's
#: compile (a smoke-size low-degree group: 17 → 1.2 CPU-s); the code runs about 1.5–4× slower,
#: and its floats may differ from the other tiers' in the last bits (no fused multiply-adds)
TINY_COMPILE = {**QUICK_COMPILE, "xla_backend_optimization_level": 0}
#: an eager call of a `tiered_jit` function whose program XLA counts below this many FLOPs
#: compiles with TINY_COMPILE. A parity's init and a test set of 1,000 rows, first calls: 0.23 s
#: instead of 0.65 s; each later call of that sample 1.7 ms instead of 0.35 ms (bench_eager). The
#: tiny tier runs a few 10⁸ FLOP/s as XLA counts them, so at the bound a call loses tens of
#: milliseconds: tens of calls of one shape before the compile saved is spent
EAGER_TINY_FLOPS = 1e7
#: compiled programs a `tiered_jit` function keeps (its shapes and static arguments), least recent dropped
_TIERED_MAX = 128


class TieredJit:
    """`jax.jit(fn, static_argnums=…)` whose eager calls on CPU compile, per shape, with
    TINY_COMPILE when the program is small (`EAGER_TINY_FLOPS`) and with FULL_COMPILE (XLA's
    defaults) otherwise. Teachers' `init` and `sample` are called eagerly with many shapes (tests,
    figures, notebooks), and at the default options each small program spends far longer in
    LLVM than it will ever run. Calls under a trace (inside jit, vmap or grad), with keyword
    arguments, under `jax.disable_jit`, or where the tiers do not apply (`tiers_apply`: off
    CPU) are the plain `jax.jit`'s. One shape always takes the same tier, so a call is
    deterministic; between tiers floats may differ in the last bit (see TINY_COMPILE). Used as
    a decorator, also on methods (`self` static)."""

    def __init__(self, fn, static_argnums: tuple[int, ...] = ()):
        import jax

        functools.update_wrapper(self, fn)
        self._static = frozenset(static_argnums)
        self._jitted = jax.jit(fn, static_argnums=tuple(sorted(self._static)))
        self._programs: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __get__(self, obj, objtype=None):  # a bound method, equal and hashed by (function, object) as jax.jit's
        return self if obj is None else types.MethodType(self, obj)

    def __getattr__(self, name):  # lower, trace, eval_shape, … are the jitted function's
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._jitted, name)

    def __call__(self, *args, **kwargs):
        import jax

        dynamic = tuple(a for i, a in enumerate(args) if i not in self._static)
        leaves, tree = jax.tree.flatten(dynamic)
        if (kwargs or any(isinstance(x, jax.core.Tracer) for x in leaves) or jax.config.jax_disable_jit
                or not tiers_apply()):
            return self._jitted(*args, **kwargs)
        key = (tuple(a for i, a in enumerate(args) if i in self._static), tree,
               tuple((jax.typeof(x), x.sharding if isinstance(x, jax.Array) else None) for x in leaves),
               _jax_settings())
        try:
            with self._lock:
                program = self._programs.get(key)
                if program is not None:
                    self._programs.move_to_end(key)
        except TypeError:  # an unhashable static argument: jax.jit says so
            return self._jitted(*args)
        if program is None:
            lowered = self._jitted.lower(*args)
            program = lowered.compile(eager_options(lowered))
            with self._lock:
                self._programs[key] = program
                if len(self._programs) > _TIERED_MAX:
                    self._programs.popitem(last=False)
        return program(*dynamic)


def tiered_jit(fn=None, *, static_argnums: int | tuple[int, ...] = ()):
    """`TieredJit(fn, static_argnums)`; with only `static_argnums`, a decorator.

    Example:
        >>> @tiered_jit(static_argnums=(0, 3))         # in a frozen dataclass
        ... def sample(self, params, key, m): ...
        >>> draw = tiered_jit(lambda key: jax.random.normal(key, (1000, 30)))
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if fn is None:
        return functools.partial(tiered_jit, static_argnums=static)
    return TieredJit(fn, static)


def tiers_apply() -> bool:
    """Whether the tiers' XLA options apply: on CPU, with a jax (≥ 0.7) whose XLA knows them."""
    import jax

    return jax.default_backend() == "cpu" and jax.__version_info__ >= (0, 7)


def known_options(options: Mapping) -> dict:
    """`options`, an option set of the tiers, less the options this process's XLA does not know.
    Options come and go between XLA releases (jax 0.11's has no `xla_cpu_use_fusion_emitters`),
    and a compile with an unknown one fails; without it a tier compiles as XLA's defaults would.
    Names the tiers do not use are left out too.

    Example:
        >>> known_options({**TINY_COMPILE, "xla_no_such_option": True})["xla_backend_optimization_level"]
        0
    """
    known = _known_option_names()
    return {name: value for name, value in options.items() if name in known}


@functools.cache
def _known_option_names() -> frozenset[str]:
    """The options of the tiers this XLA knows: a trivial program compiled once with all of them
    (about 20 ms), and once with each where that fails."""
    import jax
    import numpy as np

    def compiles(options: dict) -> bool:
        try:
            jax.jit(lambda x: x + 1).lower(np.float32(0)).compile(options)
        except Exception:  # noqa: BLE001 - "No such compile option" (its wording and type vary by jax)
            return False
        return True

    if compiles(dict(TINY_COMPILE)):   # TINY_COMPILE names every option the tiers set
        return frozenset(TINY_COMPILE)
    return frozenset(name for name, value in TINY_COMPILE.items() if compiles({name: value}))


def lowered_flops(lowered) -> float | None:
    """XLA's FLOP count of a lowered program; None where it has no cost model."""
    try:
        flops = (lowered.cost_analysis() or {}).get("flops")
    except Exception:  # noqa: BLE001 - no cost model for this program
        return None
    return None if flops is None else float(flops)


def eager_options(lowered) -> dict:
    """XLA options for an eager call's program: TINY_COMPILE below EAGER_TINY_FLOPS (XLA's count
    of the lowered program), else FULL_COMPILE; none where the tiers do not apply."""
    if not tiers_apply():
        return {}
    flops = lowered_flops(lowered)
    return known_options(TINY_COMPILE if flops is not None and flops < EAGER_TINY_FLOPS else FULL_COMPILE)


#: subdirectory of the compilation cache that holds serialized group programs
PROGRAMS = "sparselearn-programs"
#: jax settings that change what a traced function computes (besides jax's trace context, see
#: `_jax_settings`; named here too for a jax that does not expose it)
_TRACE_SETTINGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_default_prng_impl",
                   "jax_threefry_partitionable", "jax_numpy_rank_promotion", "jax_numpy_dtype_promotion",
                   "jax_random_seed_offset", "jax_softmax_custom_jvp", "jax_explicit_x64_dtypes")
#: programs loaded or compiled in this process (key → jax.stages.Compiled), least recent first
_LOADED: OrderedDict = OrderedDict()
_LOADED_MAX = 64
_LOADED_LOCK = threading.Lock()  # a sweep compiles its next group in a thread while one trains


def programs_dir(environ=os.environ) -> Path | None:
    """Where serialized group programs are kept: a subdirectory of JAX's compilation cache
    while that cache is on in this process (see `enable_compile_cache`), else None."""
    if cache_dir(environ) is None or "jax" not in sys.modules:
        return None
    import jax

    folder = jax.config.jax_compilation_cache_dir
    return Path(folder) / PROGRAMS if jax.config.jax_enable_compilation_cache and folder else None


@functools.lru_cache(maxsize=None)
def _source_digest(files: tuple[str, ...]) -> str:
    """sha256 over the contents of `files` (read once per process); a file that cannot be read
    ('<stdin>', deleted) counts by its name alone."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode())
        try:
            h.update(Path(f).read_bytes())
        except OSError:
            h.update(b"\0unreadable")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _machine() -> str:
    """The host's architecture and, on Linux, its CPU feature flags: compiled CPU code is
    specific to them (a home directory may be shared by different machines)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return f"{platform.machine()} {hashlib.sha256(flags.encode()).hexdigest()[:16]}"


@functools.lru_cache(maxsize=None)
def _package_files() -> frozenset[str]:
    """Every module of the sparselearn package (listed once per process)."""
    return frozenset(str(f) for f in Path(__file__).parent.rglob("*.py"))


@functools.lru_cache(maxsize=None)
def _versions() -> tuple[str, ...]:
    """The versions of the libraries a compiled program depends on, and Python's."""
    return (*(metadata.version(p) for p in ("jax", "jaxlib", "optax", "numpy")), sys.version)


def _jax_settings() -> tuple:
    """The jax settings a traced program depends on: `_TRACE_SETTINGS` and jax's trace context
    (every option jax itself marks as changing a trace), where this jax has one."""
    import jax

    listed = tuple(getattr(jax.config, name, None) for name in _TRACE_SETTINGS)
    try:
        from jax._src import config

        return listed + tuple(config.trace_context())
    except (ImportError, AttributeError):
        return listed


class Code(NamedTuple):
    """The code a program is built from, for `program_key`: source `files` (sparselearn's own
    modules), a digest of the plug-in code `loaded` in this process (`_plugin_digest`), and the
    ids of plug-in classes without a source file (`local`), whose programs are kept in this
    process only."""

    files: tuple[str, ...] = ()
    loaded: str = ""
    local: tuple[int, ...] = ()


def code_files(*objects) -> Code:
    """The code a program depends on: every module of the sparselearn package and, where
    `objects`' classes live elsewhere (plug-in targets and learners), the plug-in code loaded in
    this process (`_plugin_digest`). A plug-in class defined where no file holds it (`python
    -c`, stdin, a notebook cell) is keyed by its identity and never kept on disk."""
    files = tuple(sorted(_package_files()))
    plugins = [type(obj) for obj in objects if type(obj).__module__.split(".")[0] != __package__]
    if not plugins:
        return Code(files)
    return Code(files, _plugin_digest(plugins), tuple(id(cls) for cls in plugins if not _has_source(cls)))


def _has_source(cls) -> bool:
    """Whether `cls` comes from a source file that can be read."""
    try:
        return Path(inspect.getfile(cls)).is_file()
    except (TypeError, OSError):
        return False


def _plugin_digest(classes) -> str:
    """A digest of the plug-in code this process runs: `classes`, and every loaded module of the
    user's (`_user_file`: a helper a plug-in imports, a base class elsewhere) or of the classes'
    own packages, installed or not (a helper module of a plug-in installed in site-packages),
    each by its code as loaded (`_loaded_code`) and by its source file; and the installed
    versions of the other packages their base classes come from."""
    h = hashlib.sha256()
    for cls in classes:
        h.update(_loaded_code([cls], cls.__module__).encode())
    own = {cls.__module__.split(".")[0] for cls in classes}
    bases = {base.__module__.split(".")[0] for cls in classes for base in cls.__mro__} - own
    for name, module in sorted(sys.modules.copy().items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and (_user_file(file) or name.split(".")[0] in own):
            values = [v for _, v in sorted(getattr(module, "__dict__", {}).copy().items())]
            h.update(f"{name} {_source_digest((file,))} {_loaded_code(values, name)}".encode())
    for package in sorted(bases - {"builtins", __package__, *sys.stdlib_module_names}):
        h.update(f"{package} {_distribution_versions(package)}".encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _distribution_versions(package: str) -> tuple[str, ...]:
    """The installed versions of the distributions that provide the top-level `package`."""
    names = metadata.packages_distributions().get(package, ())
    return tuple(f"{d}=={metadata.version(d)}" for d in sorted(names))


@functools.lru_cache(maxsize=None)
def _user_file(file: str) -> bool:
    """Whether the module at `file` is the user's own code: outside the Python installation
    (its prefixes, site-packages, dist-packages) and the sparselearn package."""
    path = Path(os.path.realpath(file))
    if {"site-packages", "dist-packages"} & set(path.parts):
        return False
    installed = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, Path(__file__).parent)
    return not any(path.is_relative_to(os.path.realpath(p)) for p in installed)


def _loaded_code(values, module: str) -> str:
    """A digest of the functions and classes among `values` that `module` defines, as loaded
    (not as their files read now): the code objects of the functions and of the classes'
    methods, their default arguments and closures, the classes' other attributes, and the
    globals that code reads (`_plain`), following the functions and classes of the same module
    it calls."""
    h = hashlib.sha256()
    seen: set[int] = set()

    def visit(value, owner: str) -> None:
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            for f in (value.fget, value.fset, value.fdel):
                visit(f, owner)
            return
        value = _unwrapped(value)
        if not isinstance(value, (types.FunctionType, type)) or value.__module__ != owner:
            h.update(_plain(value).encode())
            return
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, type):
            h.update(value.__qualname__.encode())
            for name, attr in sorted(vars(value).items()):
                h.update(name.encode())
                visit(attr, owner)
            return
        h.update(_marshalled(value.__code__))
        visit((value.__defaults__, tuple(sorted((value.__kwdefaults__ or {}).items()))), owner)
        for cell in value.__closure__ or ():
            try:
                visit(cell.cell_contents, owner)
            except ValueError:  # an empty cell
                h.update(b"\0empty")
        for name in sorted(_names(value.__code__) & value.__globals__.keys()):
            h.update(name.encode())
            visit(value.__globals__[name], owner)

    for value in map(_unwrapped, values):
        if isinstance(value, (types.FunctionType, type)) and value.__module__ == module:
            visit(value, module)
    return h.hexdigest()


def _unwrapped(value):
    """The function a decorated one wraps (`jax.jit`, `tiered_jit`, `functools.wraps`), else `value`."""
    if isinstance(value, type) or not callable(value):
        return value
    try:
        return inspect.unwrap(value)
    except Exception:  # noqa: BLE001 - a cycle, or an object whose attributes misbehave: itself
        return value


def _marshalled(code: types.CodeType) -> bytes:
    """`code` as bytes: marshal's format 2, which writes no back-references (whether marshal
    writes one depends on reference counts, which differ between processes)."""
    try:
        return marshal.dumps(code, 2)
    except ValueError:  # a constant marshal cannot write: this object only
        return repr(code).encode()


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names `code` and the code nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _plain(value) -> str:
    """`value` in a key: plain data (numbers, strings, enums, tuples of them) by its repr, a
    function, class or module by its name, anything else by its type (the source file it is
    made in is keyed, if it has one)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, enum.Enum)):
        return repr(value)
    if isinstance(value, tuple):
        return f"({','.join(map(_plain, value))})"
    if isinstance(value, frozenset):
        return f"{{{','.join(sorted(map(_plain, value)))}}}"
    if isinstance(value, types.ModuleType):
        return value.__name__
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return f"{value.__module__}.{value.__qualname__}"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _device_order(sharding) -> list[int]:
    """The ids of `sharding`'s devices in the order its shards go to them: a program compiled
    for one order refuses arguments placed in another."""
    try:
        return [d.id for d in sharding._device_assignment]
    except AttributeError:
        devices = getattr(getattr(sharding, "mesh", None), "devices", None)
        return sorted(d.id for d in sharding.device_set) if devices is None else [d.id for d in devices.flat]


#: an object's default repr names its address, which differs in every process
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _described(value) -> str:
    """`value` in a program's key, the same in every process: plain data by its repr, a
    dataclass (a config, a plug-in target or learner) by its class and every field's value
    whatever its repr shows (a field(repr=False), a custom __repr__), enums by name, sets and
    dicts in sorted order, functions, classes and modules by name, arrays by contents, anything
    else by its class and repr (without addresses)."""
    if isinstance(value, enum.Enum):
        return f"{_plain(type(value))}.{value.name}"
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ",".join(f"{f.name}={_described(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{_plain(type(value))}({fields})"
    if isinstance(value, (tuple, list)):
        items = ",".join(map(_described, value))
        return f"({items})" if type(value) is tuple else f"{_plain(type(value))}[{items}]"
    if isinstance(value, (set, frozenset)):
        return f"{_plain(type(value))}{{{','.join(sorted(map(_described, value)))}}}"
    if isinstance(value, dict):
        items = sorted(f"{_described(k)}:{_described(v)}" for k, v in value.items())
        return f"{_plain(type(value))}{{{','.join(items)}}}"
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType)):
        return _plain(value)
    numpy, jax = sys.modules.get("numpy"), sys.modules.get("jax")
    if jax is not None and isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer):
        value = numpy.asarray(value)   # a concrete jax array (its repr elides large ones)
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic)):
        return f"{_plain(type(value))}({value.dtype},{value.shape},{hashlib.sha256(value.tobytes()).hexdigest()})"
    return f"{_plain(type(value))}:{_ADDRESS.sub('', repr(value))}"


def program_key(parts, args, files: tuple[str, ...] | Code = ()) -> str:
    """A digest of everything a compiled program depends on: `parts` (what is traced, e.g. the
    static experiment and the piece's name, by value: `_described`), the tree, shapes, dtypes
    and device placement (in order) of `args`, its code (the contents of `files`, or a `Code`),
    the library versions, the jax settings that change tracing, XLA_FLAGS, the devices and their
    runtime's version, and the machine."""
    import jax

    def placed(a):
        sharding = getattr(a, "sharding", None)
        where = None if sharding is None else (str(sharding), _device_order(sharding))
        return (tuple(a.shape), str(a.dtype), where)

    code = files if isinstance(files, Code) else Code(tuple(files))
    devices = jax.devices()
    leaves, tree = jax.tree.flatten(args)
    described = (_described(parts), str(tree), [placed(a) for a in leaves], _source_digest(code.files), code.loaded,
                 code.local, _versions(), _ADDRESS.sub("", repr(_jax_settings())),
                 os.environ.get("XLA_FLAGS", ""), [(d.platform, d.device_kind, d.id) for d in devices],
                 # the runtime beneath the devices (on a GPU the CUDA or ROCm version), as JAX's own cache keys it
                 getattr(devices[0].client, "platform_version", ""), _machine())
    return hashlib.sha256(repr(described).encode()).hexdigest()[:32]


class _Hits(threading.local):
    count = 0


_HITS = _Hits()


@functools.cache
def _listen_for_jax_cache_hits() -> None:
    import jax

    def listen(event: str, **_) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            _HITS.count += 1

    jax.monitoring.register_event_listener(listen)


def _jax_cache_hits() -> int:
    """Programs this thread has so far taken from JAX's persistent cache. A kept program must
    come from a fresh compile: an executable JAX loaded from its cache serializes without its
    kernels (jaxlib 0.10 on CPU), and the program kept from it fails when run ("Function
    …_kernel not found")."""
    _listen_for_jax_cache_hits()
    return _HITS.count


def _not_written_to_jax_cache():
    """A context (this thread only) in which JAX writes nothing to its persistent cache: a kept
    program is stored once, by `executable`, and JAX then never holds a copy that a later
    compile would load (see `_jax_cache_hits`). A no-op where JAX's internals differ."""
    try:
        from jax._src import config

        return config.persistent_cache_min_compile_time_secs(float("inf"))
    except (ImportError, AttributeError, TypeError):
        return contextlib.nullcontext()


def _read_program(path: Path):
    """The executable serialized at `path`, loaded onto the devices it was compiled for, or None
    when it is missing, unreadable, fails its checksum, names devices this process lacks or
    cannot be loaded (then it is removed where it can be, and compiled again by the caller).
    The checksum comes first: XLA loads a program with a flipped byte without a word, and it
    then hangs or crashes the process. Without its devices XLA would load a program onto every
    device, and a one-device program then refuses its arguments in a process of two."""
    blob = _read_kept(path)
    if blob is None:
        return None
    import jax
    from jax.experimental import serialize_executable

    try:
        payload, in_tree, out_tree, device_ids = pickle.loads(blob)
        by_id = {d.id: d for d in jax.devices()}
        devices = [by_id[i] for i in device_ids]
        if b"lapack_" in payload and any(d.platform == "cpu" for d in devices):
            _lapack_ready()
        return serialize_executable.deserialize_and_load(payload, in_tree, out_tree, execution_devices=devices)
    except Exception:  # noqa: BLE001 - a truncated, corrupt or foreign file: compile instead
        with contextlib.suppress(OSError):  # a cache shared read-only: leave it there
            path.unlink(missing_ok=True)
        return None


@functools.cache
def _lapack_ready() -> None:
    """Point jaxlib's CPU LAPACK kernels (solves, factorizations, eigh) at their routines, as
    lowering such an op does. A program loaded from disk was never lowered in this process:
    without this its first LAPACK call jumps to a null pointer and the process dies (SIGSEGV).
    Lowering one small factorization does it through the public API (0.15 s, scipy's import
    included), once per process and only for programs that call LAPACK."""
    import jax
    import numpy as np

    jax.jit(jax.numpy.linalg.cholesky).lower(np.eye(2, dtype=np.float32))


#: a kept program's file: the sha256 of what follows, then the pickled (serialized executable,
#: its input and output trees, the ids of the devices it runs on, in order)
_DIGEST_BYTES = 32


def _write_program(path: Path, compiled) -> None:
    """Serialize `compiled` to `path` (`_write_kept`); programs that cannot be serialized (host
    callbacks, embedded constants) are simply not kept."""
    from jax.experimental import serialize_executable

    try:
        devices = [d.id for d in compiled._executable.xla_executable.local_devices()]
        blob = pickle.dumps((*serialize_executable.serialize(compiled), devices))
    except Exception:  # noqa: BLE001 - e.g. an op jax cannot pickle: the program is just not kept
        return
    _write_kept(path, blob)


def _read_kept(path: Path) -> bytes | None:
    """What `_write_kept` wrote at `path`, or None when it is missing, unreadable or fails its
    checksum (then it is removed where it can be)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    digest, blob = data[:_DIGEST_BYTES], data[_DIGEST_BYTES:]
    if hashlib.sha256(blob).digest() == digest:
        return blob
    with contextlib.suppress(OSError):  # a cache shared read-only: leave it there
        path.unlink(missing_ok=True)
    return None


def _write_kept(path: Path, blob: bytes) -> None:
    """Write `blob` to `path` atomically, after its checksum; a file that cannot be written (a
    full disk, a read-only cache) is simply not kept. The temporary file is this call's own:
    threads and processes keeping one file at once each write a whole file. Temporary files of
    `path` older than `_STALE_TMP_S` were left by a write that was killed (its file was then
    not kept, so it is written again here), and are removed."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        with open(tmp, "xb") as f:  # the umask's mode, as JAX's own cache files
            f.write(hashlib.sha256(blob).digest() + blob)
        os.replace(tmp, path)
        tmp = None
        for old in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > _STALE_TMP_S:
                    old.unlink()
    except OSError:
        pass
    finally:  # also when interrupted (Ctrl-C, SystemExit)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def kept_value(parts, files: Code, compute: Callable[[], Any]) -> Any:
    """`compute()`, a JSON value (e.g. what tracing a group finds), computed once per machine:
    kept beside the programs (`programs_dir`) under the key of `parts` and `files` (see
    `program_key`) and read back by later processes. Computed every time where no programs
    are kept (the compile cache off) or for code without a source file (`Code.local`).

    Example:
        >>> exp = sparselearn.config.load("configs/quickstart.yaml")
        >>> kept_value(("example", exp), code_files(exp.target), lambda: {"bytes": 12})
        {'bytes': 12}
    """
    folder = programs_dir()
    if folder is None or files.local:
        return compute()
    path = folder / f"{program_key(parts, (), files)}.json"
    blob = _read_kept(path)
    if blob is not None:
        with contextlib.suppress(ValueError):  # not JSON: a foreign file, computed again
            return json.loads(blob)
    value = compute()
    _write_kept(path, json.dumps(value).encode())
    return value


#: a kept program's temporary file this old (seconds) is no write in progress (a write takes
#: well under a second) but one a killed process left
_STALE_TMP_S = 600.0


class Prepared(NamedTuple):
    """A program of `prepare`: its key and its `compiled` executable (kept), or its `lowered`
    program, compiling in a pool (`pending`, a future) or to be compiled by `compiled`, then
    kept on disk too unless `in_process`."""

    key: str
    compiled: Any = None
    lowered: Any = None
    compile: Callable | None = None
    pending: Any = None
    in_process: bool = False

    @property
    def out_info(self):
        """The shapes and dtypes the program returns (a tree of `jax.ShapeDtypeStruct`)."""
        return (self.lowered if self.compiled is None else self.compiled).out_info


def prepare(jitted, args: tuple, parts, files: tuple[str, ...] | Code = (), compile=None, pool=None) -> Prepared:
    """`jitted` for `args`, taken from this process's programs, else loaded from `programs_dir()`
    without tracing, else lowered (traced) and compiled in `pool` (`compile_pool`) while the
    caller goes on, or by `compiled` without one. A program whose arguments are what another
    returns is lowered from that one's `out_info`, while that one compiles. `parts` and `files`
    describe what `jitted` is built from (see `program_key`): a change to either gives a new
    program, and they must fix what `compile` (`lowered.compile()` when None) chooses, e.g.
    XLA options. Code without a source file (`Code.local`) gives programs kept in this process only."""
    key = program_key(parts, args, files)
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return Prepared(key, _LOADED[key])
    in_process = isinstance(files, Code) and bool(files.local)
    folder = None if in_process else programs_dir()
    found = None if folder is None else _read_program(folder / f"{key}.bin")
    if found is not None:
        return Prepared(key, _loaded(key, found))
    program = Prepared(key, lowered=jitted.lower(*args), compile=compile,  # tracing's own compiles cached as usual
                       in_process=in_process)
    return program if pool is None else program._replace(pending=pool.submit(_compile_and_keep, program))


@contextlib.contextmanager
def compile_pool():
    """Threads, one per core, that compile what `prepare` hands them while the caller lowers the
    next programs (XLA compiles without the GIL); None on one core. A parity group's start,
    loop and finish on 2 cores, traced and compiled: 1.2–1.6 s against 1.6–1.8 s as one program
    (benchmarks/bench_tiers.py, 2-core AMD EPYC; 1.7–2.0 against 2.1–3.1 s on a Xeon).

    Example:
        >>> f, g, x = jax.jit(jnp.sin), jax.jit(jnp.cos), jnp.zeros(3)
        >>> with compile_pool() as pool:
        ...     first = prepare(f, (x,), ("example sin",), pool=pool)
        ...     second = prepare(g, (first.out_info,), ("example cos",), pool=pool)
        ...     f_compiled, g_compiled = compiled([first, second])
        >>> g_compiled(f_compiled(x))
        Array([1., 1., 1.], dtype=float32)
    """
    if cpu_count() < 2:
        yield None
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(cpu_count(), thread_name_prefix=threading.current_thread().name) as pool:
        yield pool


def compiled(programs: list[Prepared]) -> list:
    """The executables of `programs` (`prepare`): those compiling in a pool once done, those
    not yet compiled compiled here (and kept)."""
    return [p.compiled if p.compiled is not None else p.pending.result() if p.pending is not None
            else _compile_and_keep(p) for p in programs]


def executable(jitted, args: tuple, parts, files: tuple[str, ...] | Code = (), compile=None):
    """`jitted.lower(*args).compile()` (or `compile(jitted.lower(*args))`), compiled once per machine
    (see `prepare`): taken from this process's programs, else loaded from `programs_dir()`
    without tracing, else compiled and kept there.

    Example:
        >>> program = executable(jax.jit(jnp.cos), (jnp.zeros(3),), ("example cos",))
        >>> program(jnp.zeros(3))
        Array([1., 1., 1.], dtype=float32)
    """
    return compiled([prepare(jitted, args, parts, files, compile)])[0]


def _compile_and_keep(program: Prepared):
    """Compile a lowered `program` in this thread, keep it on disk unless JAX took it from its own
    cache (see `_jax_cache_hits`), and in this process."""
    hits = _jax_cache_hits()
    with _not_written_to_jax_cache():
        done = program.lowered.compile() if program.compile is None else program.compile(program.lowered)
    folder = None if program.in_process else programs_dir()
    if folder is not None and _jax_cache_hits() == hits:
        _write_program(folder / f"{program.key}.bin", done)
    return _loaded(program.key, done)


def _loaded(key: str, compiled):
    """`compiled`, kept in this process under `key` (the most recent `_LOADED_MAX`)."""
    with _LOADED_LOCK:
        _LOADED[key] = compiled
        if len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    return compiled
