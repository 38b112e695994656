"""The contracts of a target and of the three kinds of learner, written once.

A target or learner is any frozen dataclass that has the members below; no base class is
needed. The optional hooks have their defaults here (`learner_check`, `first_layer`,
`threshold_degree`, `input_distribution`, `sampler`), so no other module asks whether an
object defines them. `validate_target` / `validate_learner` check a class against its
contract (used by `register` and by `module:Class` names in configs).

Kinds of learner (the class attribute `kind`), each with its properties in `KINDS`:

- "gradient" (`TrainedLearner`): `init_params(key, n)`, `apply(params, x)`; trained by the
  loop in `sparselearn.train` with mini-batches, curves over steps, data.m a vmapped value.
- "fitted" (`FittedLearner`): `fit(key, x, y, weights)`, `apply`; solved inside jit+vmap
  (x: (M, n), weights: (M,) marking the run's m rows); data.m is a shape.
- "host" (`HostLearner`): `fit(key, x, y)`, `apply` in numpy on the run's m rows.

Example:
    >>> kind_of(sparselearn.learners.get("mlp")).trained
    True
    >>> class MyTarget: name = "mine"
    >>> validate_target(MyTarget)        # ConfigError(key="name") naming what is missing
    Traceback (most recent call last):
    sparselearn.errors.ConfigError: name: MyTarget is not a target: it is not a frozen dataclass ...
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

from sparselearn.errors import ConfigError

TASKS = ("classification", "regression")


# ---------------------------------------------------------------- protocols

@runtime_checkable
class Target(Protocol):
    """A teacher: a frozen dataclass with fields `n` (input dimension) and `noise` (label
    noise: a flip probability for classification, a Gaussian std for regression).

    Optional: `add_noise(y, key, noise) -> y`, the label noise `sample(params, key, m)` adds
    to clean labels, for a (possibly traced) level `noise` and the same `key` as `sample`.
    A target that declares it gets `noise` as a vmapped value (a grid over noise is one
    compiled group); otherwise noise is a static choice like n. `threshold_degree` (int or
    None): the least degree of a polynomial whose sign equals the noiseless labels.
    `inputs` (str): the input distribution's name (hypercube, biased, gaussian, …).
    """

    n: int
    noise: float
    name: ClassVar[str]
    task: ClassVar[str]                               # "classification" (y in {±1}) or "regression"

    def init(self, key) -> Any: ...                   # teacher parameters (a pytree)
    def sample(self, params, key, m: int) -> tuple: ...   # x (m, n) float32, y (m,) float32
    def labels(self, params, x) -> Any: ...           # noiseless labels (m,)


@runtime_checkable
class TrainedLearner(Protocol):
    """kind "gradient". Optional: `check(target, data)` (raise ConfigError for limits that
    depend on the target), `first_layer(params)` (the weights whose drift curves record and
    whose units the recorders read: (n, units…), each unit's incoming weights along axis 0,
    e.g. (n, width) for an mlp)."""

    name: ClassVar[str]
    kind: ClassVar[str]

    def init_params(self, key, n: int) -> Any: ...
    def apply(self, params, x) -> Any: ...


@runtime_checkable
class FittedLearner(Protocol):
    """kind "fitted": solved in jit+vmap; `weights` (M,) is 1 on the run's rows. Optional `check`."""

    name: ClassVar[str]
    kind: ClassVar[str]

    def fit(self, key, x, y, weights) -> Any: ...
    def apply(self, params, x) -> Any: ...


@runtime_checkable
class HostLearner(Protocol):
    """kind "host": numpy on the run's m rows; may raise `errors.FitFailed`. Optional `check`."""

    name: ClassVar[str]
    kind: ClassVar[str]

    def fit(self, key, x, y) -> Any: ...
    def apply(self, params, x) -> Any: ...


@dataclass(frozen=True)
class Kind:
    """What a learner kind means to the rest of the package.

    trained: gradient steps — curves over steps, mini-batches (batch ≤ m), online data
    allowed, and data.m a vmapped value.
    compiled: runs inside jit(vmap(...)) (otherwise in numpy on the host, where data.m is a
    vmapped value too: each run fits its own m rows). A compiled learner that is not trained
    has data.m as a shape: its solve grows with the rows.
    """

    name: str
    protocol: type
    methods: tuple[str, ...]
    trained: bool
    compiled: bool


KINDS: dict[str, Kind] = {
    "gradient": Kind("gradient", TrainedLearner, ("init_params", "apply"), trained=True, compiled=True),
    "fitted": Kind("fitted", FittedLearner, ("fit", "apply"), trained=False, compiled=True),
    "host": Kind("host", HostLearner, ("fit", "apply"), trained=False, compiled=False),
}
TARGET_METHODS = ("init", "sample", "labels")
#: the positional arguments the package calls each method with (optional hooks included)
TARGET_CALLS = {"init": ("key",), "sample": ("params", "key", "m"), "labels": ("params", "x"),
                "add_noise": ("y", "key", "noise")}
LEARNER_CALLS = {
    "gradient": {"init_params": ("key", "n"), "apply": ("params", "x"), "first_layer": ("params",)},
    "fitted": {"fit": ("key", "x", "y", "weights"), "apply": ("params", "x")},
    "host": {"fit": ("key", "x", "y"), "apply": ("params", "x")},
}
LEARNER_HOOKS = {"check": ("target", "data")}


def kind_of(learner) -> Kind:
    """The `Kind` of a learner (instance or class)."""
    return KINDS[learner.kind]


# ---------------------------------------------------------------- optional hooks, defaults in one place

def learner_check(learner, target, data) -> None:
    """Run the learner's `check(target, data)` if it has one (limits that depend on the target)."""
    check = getattr(learner, "check", None)
    if check is not None:
        check(target, data)


def first_layer(learner, params):
    """The learner's `first_layer(params)`, else every parameter flattened into one vector."""
    hook = getattr(learner, "first_layer", None)
    if hook is not None:
        return hook(params)
    import jax
    import jax.numpy as jnp

    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(params)])


def threshold_degree(target) -> int | None:
    """The target's `threshold_degree` (e.g. k for a k-sparse parity), or None when unknown."""
    return getattr(target, "threshold_degree", None)


def input_distribution(target) -> str | None:
    """The name of the target's input distribution (its `inputs` field), or None when unknown."""
    value = getattr(target, "inputs", None)
    return value if isinstance(value, str) else None


def noise_is_vmapped(target) -> bool:
    """Whether the target declares `add_noise`, so its label noise can be a traced value."""
    return callable(getattr(target, "add_noise", None))


def sampler(target) -> Callable:
    """`draw(params, key, m, noise) -> (x, y)`: examples of `target` with label noise `noise`.

    With `add_noise` the clean sample gets noise of the given (possibly traced) level; the
    result equals `replace(target, noise=noise).sample(params, key, m)`. Without it `noise`
    is ignored and the target's own (static) `noise` applies.
    """
    if not noise_is_vmapped(target):
        return lambda params, key, m, noise: target.sample(params, key, m)
    clean = target if target.noise == 0 else dataclasses.replace(target, noise=0.0)

    def draw(params, key, m, noise):
        x, y = clean.sample(params, key, m)
        return x, clean.add_noise(y, key, noise)

    return draw


# ---------------------------------------------------------------- validation

def _frozen_dataclass(cls) -> bool:
    return isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


def _missing_methods(cls, names) -> list[str]:
    return [m for m in names if not callable(getattr(cls, m, None))]


def _miscalled(cls, calls: dict[str, tuple[str, ...]]) -> list[str]:
    """What is wrong with the signatures of `cls`'s methods among `calls` (name → the positional
    arguments the package passes): each method that cannot take them."""
    problems = []
    for name, args in calls.items():
        raw = inspect.getattr_static(cls, name, None)
        if raw is None or not callable(getattr(cls, name, None)):
            continue
        bound = not isinstance(raw, (staticmethod, classmethod)) and hasattr(type(raw), "__get__")
        try:
            signature = inspect.signature(getattr(cls, name))
        except (TypeError, ValueError):  # a builtin without a signature: not checked
            continue
        try:
            signature.bind(*([None] if bound else []), *args)
        except TypeError:
            problems.append(f"has `{name}{signature}`, which cannot be called as `{name}({', '.join(args)})`")
    return problems


def validate_target(cls) -> type:
    """`cls` if it meets the `Target` contract, else ConfigError(key="name") saying what is missing."""
    what = getattr(cls, "__qualname__", repr(cls))
    problems = []
    if not _frozen_dataclass(cls):
        problems.append("is not a frozen dataclass (@dataclass(frozen=True))")
    else:
        names = {f.name for f in dataclasses.fields(cls)}
        problems += [f"has no field `{f}`" for f in ("n", "noise") if f not in names]
    if not isinstance(getattr(cls, "name", None), str):
        problems.append("has no class attribute `name` (a string)")
    if getattr(cls, "task", None) not in TASKS:
        problems.append(f"has task {getattr(cls, 'task', None)!r}, expected one of {', '.join(TASKS)}")
    problems += [f"has no method `{m}`" for m in _missing_methods(cls, TARGET_METHODS)]
    problems += _miscalled(cls, TARGET_CALLS)
    if problems:
        raise ConfigError(f"{what} is not a target: it {'; it '.join(problems)}", key="name")
    return cls


def validate_learner(cls) -> type:
    """`cls` if it meets the contract of its kind, else ConfigError(key="name") saying what is missing."""
    what = getattr(cls, "__qualname__", repr(cls))
    problems = []
    if not _frozen_dataclass(cls):
        problems.append("is not a frozen dataclass (@dataclass(frozen=True))")
    if not isinstance(getattr(cls, "name", None), str):
        problems.append("has no class attribute `name` (a string)")
    kind = getattr(cls, "kind", None)
    if kind not in KINDS:
        problems.append(f"has kind {kind!r}, expected one of {', '.join(KINDS)}")
    else:
        problems += [f"has no method `{m}` (needed by kind {kind})" for m in _missing_methods(cls, KINDS[kind].methods)]
        problems += _miscalled(cls, {**LEARNER_CALLS[kind], **LEARNER_HOOKS})
    if problems:
        raise ConfigError(f"{what} is not a learner: it {'; it '.join(problems)}", key="name")
    return cls


# ---------------------------------------------------------------- a plug-in traced

def _plugin(obj) -> bool:
    """Whether `obj`'s class is defined outside this package (a user's target or learner)."""
    return type(obj).__module__.split(".")[0] != __name__.split(".")[0]


#: (target, learner) pairs that passed `check_traced` in this process
_TRACED_OK: set = set()


def check_traced(target, learner) -> None:
    """What a run calls on `target` and on a compiled `learner`, traced abstractly under jax.jit
    and jax.vmap (`jax.eval_shape`: nothing runs) with m = n + 3 rows, each result checked:
    `sample(params, key, m)` → (x (m, n), y (m,)), `labels(params, x)` → (m,), `add_noise` → (m,),
    `apply(params, x)` → (m,), all of a float dtype, and `apply` differentiable in `params` for a
    trained learner. Only a plug-in's side is checked (nothing to do for built-in pairs).
    ConfigError (key "target.name" or "learner.name") naming the class, the method and what it
    should return, or the error jax raised tracing it (numpy or a Python branch on a traced value)."""
    if not (_plugin(target) or _plugin(learner)):
        return
    try:
        if (target, learner) in _TRACED_OK:
            return
    except TypeError:  # an unhashable field: checked every time
        pass
    import jax
    import jax.numpy as jnp

    from sparselearn.rng import abstract_key

    n, m = target.n, target.n + 3  # m ≠ n: a transposed result shows
    of_target, of_learner = _plugin(target), _plugin(learner) and kind_of(learner).compiled
    t, le = ("target", type(target).__qualname__), ("learner", type(learner).__qualname__)

    def one(key):
        teacher = _traced(t, "init", target.init, key)
        drawn = _traced(t, "sample", target.sample, teacher, key, m)
        if of_target and not (isinstance(drawn, (tuple, list)) and len(drawn) == 2):
            raise ConfigError(f"{t[1]}.sample returns {type(drawn).__name__}, expected a pair (x (m, n), y (m,))",
                              key="target.name")
        x, y = drawn
        if of_target:
            _returns(t, "sample", "x", x, (m, n))
            _returns(t, "sample", "y", y, (m,))
            _returns(t, "labels", "", _traced(t, "labels", target.labels, teacher, x), (m,))
            if noise_is_vmapped(target):
                _returns(t, "add_noise", "", _traced(t, "add_noise", target.add_noise, y, key, jnp.float32(0.1)),
                         (m,))
        if of_learner:
            if kind_of(learner).trained:
                params = _traced(le, "init_params", learner.init_params, key, n)
                _traced(le, "apply (differentiated in params)",
                        jax.grad(lambda p: jnp.sum(learner.apply(p, x))), params)
                if getattr(learner, "first_layer", None) is not None:
                    _traced(le, "first_layer", learner.first_layer, params)
            else:
                params = _traced(le, "fit", learner.fit, key, x, y, jnp.ones(m, jnp.float32))
            _returns(le, "apply", "", _traced(le, "apply", learner.apply, params, x), (m,))
        return jnp.zeros(())

    if of_target or of_learner:
        jax.eval_shape(jax.vmap(one), jax.ShapeDtypeStruct((2,), abstract_key().dtype))
    try:
        _TRACED_OK.add((target, learner))
    except TypeError:
        pass


def _traced(owner: tuple[str, str], method: str, fn, *args):
    """`fn(*args)` while tracing; an error raised in it as ConfigError naming `owner` (its config
    section, its class) and `method`."""
    try:
        return fn(*args)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 — a plug-in that cannot be traced is bad input
        first = (str(e).strip().splitlines() or [""])[0]
        raise ConfigError(f"{owner[1]}.{method} fails when traced by jax.jit and jax.vmap, as every run is (it must "
                          f"compute with jax.numpy on its arguments, without numpy or Python branches on their "
                          f"values): {type(e).__name__}: {first}", key=f"{owner[0]}.name") from None


def _returns(owner: tuple[str, str], method: str, what: str, value, shape: tuple[int, ...]) -> None:
    """ConfigError (keyed by `owner`'s section) unless `value` is an array of `shape` and a float dtype."""
    import jax.numpy as jnp

    got, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if got != shape or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        found = (f"shape {tuple(got)} and dtype {dtype}" if got is not None and dtype is not None
                 else f"a {type(value).__name__}")
        raise ConfigError(f"{owner[1]}.{method} returns {what + ' of ' if what else ''}{found}, expected shape "
                          f"{shape} (m = {shape[0]} rows) and a float dtype", key=f"{owner[0]}.name")


# ---------------------------------------------------------------- registries

class Registry:
    """Names → classes of one contract (targets or learners), plus `module:Class` names.

    `register` (also a class decorator) validates the class and files it under its `name`;
    `lookup("pkg.mod:Class")` imports the class and validates it, so a user's own target or
    learner works in a config without registering it first.

    Example:
        >>> @sparselearn.targets.register            # doctest: +SKIP
        ... @dataclass(frozen=True)
        ... class Majority: ...
    """

    def __init__(self, what: str, validate: Callable[[type], type], classes: dict[str, type | str]):
        self.what = what
        self.validate = validate
        # the registry itself (a plain dict: tests may patch it); a value is a class or, for the
        # built-in ones, its "module:Class" spelling, imported on first lookup so that naming
        # and listing them needs no jax
        self.classes = classes

    def register(self, cls: type) -> type:
        """File `cls` under `cls.name` after checking its contract; returns `cls` (a decorator)."""
        self.validate(cls)
        held = self.classes.get(cls.name)
        if held is not None and _spelling(held) != _spelling(cls):
            raise ConfigError(f"{self.what} {_spelling(cls)} cannot be registered as {cls.name!r}: the name is "
                              f"taken by {_spelling(held)}; give the class another `name`", key="name")
        self.classes[cls.name] = cls
        return cls

    def lookup(self, name: str) -> type:
        """The class called `name`: a registered name, or `package.module:ClassName` (imported
        and validated). ConfigError(key="name") naming the choices or what is wrong."""
        if ":" in name:
            return self.validate(import_class(name))
        if name not in self.classes:
            from sparselearn.fields import suggest

            raise ConfigError(f"unknown {self.what} {name!r}{suggest(name, self.classes)}; known: "
                              f"{', '.join(sorted(self.classes))} (or a class as package.module:ClassName)",
                              key="name")
        held = self.classes[name]
        if isinstance(held, str):
            held = self.classes[name] = import_class(held)
        return held

    def spelled(self, obj) -> str:
        """The name a config uses for `obj`'s class: its registered name, else `module:Class`."""
        cls = obj if isinstance(obj, type) else type(obj)
        held = self.classes.get(cls.name)
        return cls.name if held is not None and _spelling(held) == _spelling(cls) else _spelling(cls)

    def names(self) -> list[str]:
        return sorted(self.classes)

    def describe(self, name: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """(class attributes such as task or kind, [(field, default)]) of a registered class,
        read from its source without importing it when it is not imported yet (see
        `declared`); for `sparselearn list`."""
        held = self.classes[name]
        if isinstance(held, str):
            return declared(held)
        attrs = {a: getattr(held, a) for a in ("name", "task", "kind") if hasattr(held, a)}
        fields = [(f.name, "…" if f.default is dataclasses.MISSING else repr(f.default))
                  for f in dataclasses.fields(held)]
        return attrs, fields


def _spelling(cls: type | str) -> str:
    return cls if isinstance(cls, str) else f"{cls.__module__}:{cls.__qualname__}"


def declared(spec: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The class attributes (string constants: name, task, kind) and dataclass fields with
    their defaults (as source text) of the class "package.module:Class", read from the
    module's source with `ast`: no import, so no jax. Base classes defined in the module or
    imported into it from this package are followed, fields in dataclass order.

    Example:
        >>> declared("sparselearn.targets.parity:SparseParity")[1][:2]
        [('n', '30'), ('k', '3')]
    """
    import ast
    import importlib.util

    module_name, _, qualname = spec.partition(":")
    origin = importlib.util.find_spec(module_name).origin
    tree = ast.parse(open(origin, encoding="utf-8").read())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    imported = {alias.asname or alias.name: f"{node.module}:{alias.name}" for node in tree.body
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sparselearn")
                for alias in node.names}
    constants = {t.id: stmt.value for stmt in tree.body if isinstance(stmt, ast.Assign)
                 for t in stmt.targets if isinstance(t, ast.Name)}  # a default may name one
    node = classes[qualname]
    attrs: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for base in node.bases:  # bases first: their fields come first, the class may override them
        if isinstance(base, ast.Name) and base.id in classes:
            base_attrs, base_fields = declared(f"{module_name}:{base.id}")
        elif isinstance(base, ast.Name) and base.id in imported:
            base_attrs, base_fields = declared(imported[base.id])
        else:
            continue
        attrs.update(base_attrs)
        fields.update(base_fields)
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if "ClassVar" in ast.unparse(stmt.annotation):
                if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                    attrs[stmt.target.id] = stmt.value.value
                continue
            value = stmt.value
            if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("field"):  # field(default=…)
                value = next((kw.value for kw in value.keywords if kw.arg == "default"), None)
            if isinstance(value, ast.Name) and value.id in constants:
                value = constants[value.id]
            elif isinstance(value, ast.Name) and value.id in imported:  # a constant of another module
                module, _, name = imported[value.id].partition(":")
                source = open(importlib.util.find_spec(module).origin, encoding="utf-8").read()
                value = next((stmt.value for stmt in ast.parse(source).body if isinstance(stmt, ast.Assign)
                              for t in stmt.targets if isinstance(t, ast.Name) and t.id == name), value)
            fields[stmt.target.id] = "…" if value is None else ast.unparse(value)
        elif isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
            for target in stmt.targets:
                if isinstance(target, ast.Name) and isinstance(stmt.value.value, str):
                    attrs[target.id] = stmt.value.value
    return attrs, list(fields.items())


def import_class(spec: str) -> type:
    """The class named by "package.module:ClassName" (ClassName may be dotted), imported;
    ConfigError(key="name") when the module or the class cannot be found."""
    import importlib

    module_name, _, qualname = spec.partition(":")
    if not module_name or not qualname:
        raise ConfigError(f"expected package.module:ClassName, got {spec!r}", key="name")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"cannot import module {module_name!r} of {spec!r}: {e}", key="name") from None
    except Exception as e:  # noqa: BLE001 — a broken plug-in is bad input, reported in one line
        raise ConfigError(f"importing module {module_name!r} of {spec!r} failed: {type(e).__name__}: {e}",
                          key="name") from None
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"module {module_name!r} has no class {qualname!r}", key="name")
    if not isinstance(obj, type):
        raise ConfigError(f"{spec!r} is a {type(obj).__name__}, not a class", key="name")
    return obj


__all__ = ["Target", "TrainedLearner", "FittedLearner", "HostLearner", "Kind", "KINDS", "TASKS", "kind_of",
           "learner_check", "first_layer", "threshold_degree", "input_distribution", "noise_is_vmapped",
           "sampler", "check_traced", "validate_target", "validate_learner", "Registry", "import_class"]
