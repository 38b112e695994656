"""JAX start-up settings: the persistent compilation cache and the number of host devices.

The compilation cache stores every compiled program on disk, so a shape compiles once on a
machine, not once per process. It is on by default, in
`$SPARSELEARN_CACHE_DIR`, else `$XDG_CACHE_HOME/sparselearn/jax-<jax version>` (default
`~/.cache/...`); `SPARSELEARN_CACHE=0` (or `off`), `--no-compile-cache` on the command line
or `executor.compile_cache: false` turns it off.

Host devices: XLA runs one CPU "device" by default, so a vmapped group uses one core for its
small matrix products. `sparselearn` (the command) starts JAX with one host device per core
and the local executor shards each group's run axis over them. From Python, do the same
before JAX first runs anything:

    >>> import os; os.environ["XLA_FLAGS"] = sparselearn.runtime.host_device_flags(os.environ)
    >>> import sparselearn as sl            # then sl.run uses every core

(or `jax.config.update("jax_num_cpu_devices", os.cpu_count())` right after `import jax`).
Compiled programs: JAX's cache is keyed by the lowered program, so a process must still trace
and lower a group (about a second for the quickstart) before it finds the compiled code.
`executable` keys a group's program by what it is built from instead (the static experiment,
the argument shapes and shardings, the source of the code that builds it, the versions and the
machine), keeps the serialized executable beside JAX's cache (not in it: deleting a kept
program makes the next process compile it afresh), and loads it in a fresh process without
tracing. It follows the same switches as the cache.

Compile tiers: the XLA option sets a program is compiled with on CPU (`FULL_COMPILE`, XLA's
defaults stated; `QUICK_COMPILE`; `TINY_COMPILE`). Groups take one by their size
(`sparselearn.train.loop.compile_tier`); functions called eagerly with many small shapes (a
teacher's `init` and `sample`) are `tiered_jit`s, whose small programs take the tiny one.

Nothing here imports jax at module level.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import platform
import re
import sys
import threading
import types
import warnings
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, NamedTuple

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
    also make stale ones easy to delete).
    """
    if environ.get(CACHE_ENV, "").strip().lower() in OFF:
        return None
    if environ.get(CACHE_DIR_ENV):
        return Path(environ[CACHE_DIR_ENV]).expanduser()
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "sparselearn" / f"jax-{metadata.version('jax')}-jaxlib-{metadata.version('jaxlib')}"


def enable_compile_cache(path: str | Path | None = None, environ=os.environ) -> Path | None:
    """Point JAX's persistent compilation cache at `path` (default: `cache_dir()`), keeping
    every program however fast it compiled. Returns the directory in use, or None when the
    cache is off (by the environment or `disable_compile_cache`). A directory set before
    (`jax_compilation_cache_dir`) is kept. Safe to call many times; takes effect for programs
    compiled after it.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    path = cache_dir(environ) if path is None else Path(path)
    if path is None or not jax.config.jax_enable_compilation_cache:
        return None
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # an unwritable home: run without the cache rather than fail
        warnings.warn(f"compilation cache disabled: cannot create {path} ({e.strerror})", stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    cc.reset_cache()  # jax decides once per process whether to use a cache; ask again now
    return path


def disable_compile_cache(environ=os.environ) -> None:
    """Switch the cache off for this process and the processes it starts (executors); for the
    command line's `--no-compile-cache` and `executor.compile_cache: false`."""
    environ[CACHE_ENV] = "off"
    if "jax" not in sys.modules:  # not started: the environment is enough
        return
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    if jax.config.jax_enable_compilation_cache:
        jax.config.update("jax_enable_compilation_cache", False)
        cc.reset_cache()


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


def jax_started() -> bool:
    """Whether this process's JAX backends exist already (device counts are then fixed)."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def use_every_core(environ=os.environ) -> None:
    """Give JAX one host device per core, if its backend has not started yet (else nothing).
    For processes that own their JAX, such as the command line."""
    if not jax_started():
        environ["XLA_FLAGS"] = host_device_flags(environ)


def local_devices():
    """The devices a local group is sharded over: every local accelerator, or every host
    CPU device. Warns (once per call site) when JAX runs a single host device on a machine
    with several cores, unless that count was chosen (XLA_FLAGS, jax_num_cpu_devices)."""
    import jax

    devices = jax.local_devices()
    chosen = DEVICE_COUNT_FLAG in os.environ.get("XLA_FLAGS", "") or jax.config.jax_num_cpu_devices > 0
    if len(devices) == 1 and devices[0].platform == "cpu" and cpu_count() > 1 and not chosen:
        warnings.warn(f"JAX runs one CPU device on this {cpu_count()}-core machine, so groups use one core; "
                      f"set XLA_FLAGS={DEVICE_COUNT_FLAG}={cpu_count()} before importing jax "
                      "(see sparselearn.runtime) to use them all", RuntimeWarning, stacklevel=2)
    return tuple(devices)


def compile_cache(on: bool = True) -> Path | None:
    """Before a sweep compiles: the persistent cache on (unless the environment switches it
    off, see `cache_dir`) or off for this process. Returns the directory in use, if any."""
    if on:
        return enable_compile_cache()
    disable_compile_cache()
    return None


def with_compile_cache(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` with the compile cache on (unless the environment switches it off):
    what a worker process of the Ray or SLURM executors runs, so workers share compiled programs."""
    enable_compile_cache()
    return fn(*args, **kwargs)


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
#: compiles with TINY_COMPILE. A parity's init and a test set of 1,000 rows, first calls: 0.4 s
#: instead of 1.0 s; each later call of that sample 3.6 ms instead of 0.7 ms (bench_eager). The
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
               tuple((jax.typeof(x), x.sharding if isinstance(x, jax.Array) else None) for x in leaves))
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
    return dict(TINY_COMPILE if flops is not None and flops < EAGER_TINY_FLOPS else FULL_COMPILE)


#: subdirectory of the compilation cache that holds serialized group programs
PROGRAMS = "sparselearn-programs"
#: jax settings that change what a traced function computes
_TRACE_SETTINGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_default_prng_impl",
                   "jax_threefry_partitionable", "jax_numpy_rank_promotion", "jax_numpy_dtype_promotion")
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
    """sha256 over the contents of `files` (read once per process)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode())
        h.update(Path(f).read_bytes())
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


def code_files(*objects) -> tuple[str, ...]:
    """The source files a program depends on: every module of the sparselearn package, and
    the modules defining `objects`' classes when they live elsewhere (plug-in targets and
    learners)."""
    import inspect

    files = set(_package_files())
    for obj in objects:
        try:
            files.add(str(Path(inspect.getfile(type(obj))).resolve()))
        except (TypeError, OSError):
            pass
    return tuple(sorted(files))


def program_key(parts, args, files: tuple[str, ...] = ()) -> str:
    """A digest of everything a compiled program depends on: `parts` (a repr-able description
    of what is traced, e.g. the static experiment and the piece's name), the tree, shapes,
    dtypes and device placement of `args`, the contents of `files`, the library versions,
    the jax settings that change tracing, XLA_FLAGS, the devices and the machine."""
    import jax

    def placed(a):
        sharding = getattr(a, "sharding", None)
        where = None if sharding is None else (str(sharding), sorted(d.id for d in sharding.device_set))
        return (tuple(a.shape), str(a.dtype), where)

    leaves, tree = jax.tree.flatten(args)
    described = (repr(parts), str(tree), [placed(a) for a in leaves], _source_digest(files),
                 _versions(),
                 [str(getattr(jax.config, name, None)) for name in _TRACE_SETTINGS],
                 os.environ.get("XLA_FLAGS", ""), [(d.platform, d.device_kind, d.id) for d in jax.devices()],
                 _machine())
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
    """The executable serialized at `path`, or None when it is missing or cannot be loaded
    (then it is removed, and compiled again by the caller)."""
    if not path.exists():
        return None
    from jax.experimental import serialize_executable

    try:
        payload, in_tree, out_tree = pickle.loads(path.read_bytes())
        return serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
    except Exception:  # noqa: BLE001 - a truncated or foreign file: compile instead
        path.unlink(missing_ok=True)
        return None


def _write_program(path: Path, compiled) -> None:
    """Serialize `compiled` to `path` atomically; programs that cannot be serialized (host
    callbacks, embedded constants) are simply not kept."""
    from jax.experimental import serialize_executable

    try:
        blob = pickle.dumps(serialize_executable.serialize(compiled))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001 - e.g. an op jax cannot pickle: the program is just not kept
        pass


class Prepared(NamedTuple):
    """A program of `prepare`: its key and its `compiled` executable (kept), or its `lowered`
    program, compiling in a pool (`pending`, a future) or to be compiled by `compiled`."""

    key: str
    compiled: Any = None
    lowered: Any = None
    compile: Callable | None = None
    pending: Any = None

    @property
    def out_info(self):
        """The shapes and dtypes the program returns (a tree of `jax.ShapeDtypeStruct`)."""
        return (self.lowered if self.compiled is None else self.compiled).out_info


def prepare(jitted, args: tuple, parts, files: tuple[str, ...] = (), compile=None, pool=None) -> Prepared:
    """`jitted` for `args`, taken from this process's programs, else loaded from `programs_dir()`
    without tracing, else lowered (traced) and compiled in `pool` (`compile_pool`) while the
    caller goes on, or by `compiled` without one. A program whose arguments are what another
    returns is lowered from that one's `out_info`, while that one compiles. `parts` and `files`
    describe what `jitted` is built from (see `program_key`): a change to either gives a new
    program, and they must fix what `compile` (`lowered.compile()` when None) chooses, e.g.
    XLA options."""
    key = program_key(parts, args, files)
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return Prepared(key, _LOADED[key])
    folder = programs_dir()
    found = None if folder is None else _read_program(folder / f"{key}.bin")
    if found is not None:
        return Prepared(key, _loaded(key, found))
    program = Prepared(key, lowered=jitted.lower(*args), compile=compile)  # tracing's own compiles cached as usual
    return program if pool is None else program._replace(pending=pool.submit(_compile_and_keep, program))


@contextlib.contextmanager
def compile_pool():
    """Threads, one per core, that compile what `prepare` hands them while the caller lowers the
    next programs (XLA compiles without the GIL); None on one core. A parity group's start,
    loop and finish on 2 cores, traced and compiled: 1.7–2.0 s against 2.1–3.1 s as one program
    (benchmarks/bench_tiers.py).

    Example:
        >>> with compile_pool() as pool:
        ...     first = prepare(f, (x,), ("f",), pool=pool)
        ...     second = prepare(g, (first.out_info,), ("g",), pool=pool)
        ...     f_compiled, g_compiled = compiled([first, second])
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


def executable(jitted, args: tuple, parts, files: tuple[str, ...] = (), compile=None):
    """`jitted.lower(*args).compile()` (or `compile(jitted.lower(*args))`), compiled once per machine
    (see `prepare`): taken from this process's programs, else loaded from `programs_dir()`
    without tracing, else compiled and kept there.

    Example:
        >>> program = executable(compiled_group(static), (arrays,), ("group", static), code_files())
        >>> out = program(arrays)
    """
    return compiled([prepare(jitted, args, parts, files, compile)])[0]


def _compile_and_keep(program: Prepared):
    """Compile a lowered `program` in this thread, keep it on disk unless JAX took it from its own
    cache (see `_jax_cache_hits`), and in this process."""
    hits = _jax_cache_hits()
    with _not_written_to_jax_cache():
        done = program.lowered.compile() if program.compile is None else program.compile(program.lowered)
    folder = programs_dir()
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
