"""Paper figures as declarations, and the one runner that makes them.

A figure is a file `paper_figs/fig_<id>.py` of a checkout that declares

    ID = "HP-15"
    def experiments(smoke: bool) -> list[Experiment] | dict[label, Experiment]
    def draw(results: Results) -> matplotlib.figure.Figure

and, when its numbers are not just the runs of its experiments (an analysis, a study's search,
tables derived from the traces its runs recorded),

    def measure(smoke: bool, store: str) -> dict[str, pandas.DataFrame]

`make(path)` collects a figure's results and draws <out>/<id>.png and .pdf. Collecting reads the
tables kept in paper_figs/data/<id>*.parquet at full size when they exist (no training);
otherwise it calls `measure`, or runs the experiments through `sl.run` (stored under `store`, so
a rerun resumes), and at full size keeps the tables and the resolved configs (<id>.yaml) for the
next redraw. With a dict of experiments, every run gets its experiment's key in `runs["label"]`.

A kept table carries what it was made from (`made_from`: the resolved configs and the UPPERCASE
constants of the figure or study that kept it, in its parquet schema metadata), and reading it
compares that with what the figure or study declares now: a table made from other settings is a
ConfigError naming the file, the setting, the kept and the current value (delete the table to
recompute it). A table kept without that record is read as before (nothing to compare).

Scaling studies, `experiments/<name>.py`, declare STUDY_PROTOCOL (and may declare
STUDY_OPTIONAL); `exponents` fits each one against its theory exponent and gives a verdict.

Example:
    >>> root = checkout()                              # the checkout around the working directory
    >>> make(find(root, "hp_15"), smoke=True, store="results")    # doctest: +SKIP
    [PosixPath('.../paper_figs/out/hp-15.png'), PosixPath('.../paper_figs/out/hp-15.pdf')]
"""

from __future__ import annotations

import argparse
import ast
import base64
import copy
import dataclasses
import hashlib
import importlib.util
import json
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from sparselearn.errors import ConfigError

#: what every experiments/<name>.py declares: the target and learner it studies, the columns
#: X, Y (fitted as Y ∝ X^α) and BY (one fit per value) of its table, `experiments(smoke)`,
#: `measure(smoke, store) -> table` and `theory_exponent(by_value) -> (α, theorem)`; a table whose Y
#: is searched (m*) also has columns ci_low, ci_high, the bracket of Y, which the fits carry
STUDY_PROTOCOL = ("TARGET", "LEARNER", "X", "Y", "BY", "experiments", "measure", "theory_exponent")
#: what a study may declare besides: `KEPT_TABLE` (path of its full-size table, read instead of
#: measuring; see `study_table`) and `reason(by_value) -> str | None` (why a row disagrees with
#: its theorem, shown with the verdict)
STUDY_OPTIONAL = ("KEPT_TABLE", "reason")

#: the schema metadata key of a kept table that holds what it was made from (`made_from`: JSON,
#: zlib-compressed and base64-encoded; `recorded` reads it)
MADE_FROM_KEY = b"sparselearn.made_from"

#: the shape the smoke configs of trained figures share where they can, so that
#: `figs --all --smoke` compiles few programs
SMOKE = {"target": {"name": "sparse_parity", "n": 10, "k": 2},
         "learner": {"name": "mlp", "width": 32, "depth": 2, "activation": "relu", "init": "standard"},
         "train": {"optimizer": "sgd", "lr": 0.1, "batch": 16, "steps": 200, "loss": "hinge", "eval_every": 20}}


# ------------------------------------------------------------------ where the figures are
def checkout(start: str | Path | None = None) -> Path:
    """The checkout holding the figures: `start` (default: the working directory) or its
    nearest parent with a paper_figs/ folder."""
    here = Path(start or Path.cwd()).resolve()
    for root in (here, *here.parents):
        if (root / "paper_figs").is_dir():
            return root
    raise ConfigError(f"no paper_figs/ folder in {here} or its parents: run this inside a sparselearn "
                      "checkout (git clone the repository and cd into it)", key="figs")


def discover(root: Path) -> dict[str, Path]:
    """Figure id → file, from the `ID = "..."` line of every paper_figs/fig_*.py, in the order
    `figs --all` draws them: paper_figs/__init__.py's FIRST, then by file name."""
    found = {}
    for path in sorted((root / "paper_figs").glob("fig_*.py")):
        match = re.search(r'^ID = "([^"]+)"', path.read_text(), flags=re.MULTILINE)
        if match:
            found[match.group(1)] = path
    first = [f for f in _assigned(root / "paper_figs" / "__init__.py", "FIRST", ()) if f in found]
    return {f: found[f] for f in first + [f for f in found if f not in first]}


def _assigned(path: Path, name: str, default):
    """The literal value assigned to `name` at the top of a Python file (without running it)."""
    if path.exists():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return ast.literal_eval(node.value)
    return default


def _loose(name: str) -> str:
    return name.lower().replace("fig_", "").replace("-", "").replace("_", "").removesuffix(".py")


def find(root: Path, name: str) -> Path:
    """The file of figure `name`, matched loosely: 'HP-1L', 'hp_1l', 'fig_hp_1l' all name HP-1L."""
    figs = discover(root)
    for fig_id, path in figs.items():
        if _loose(fig_id) == _loose(name):
            return path
    raise ConfigError(f"unknown figure {name!r}; known: {', '.join(figs)}, exponents", key="figs")


def title(path: Path) -> str:
    """The first line of a figure's docstring (read without importing it)."""
    return (ast.get_docstring(ast.parse(Path(path).read_text())) or "").strip().splitlines()[0]


def load(path: str | Path) -> ModuleType:
    """The module in the file `path`, imported once per process (nothing goes on sys.path)."""
    path = Path(path).resolve()
    name = f"sparselearn_figures_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def figure(name: str, near: str | Path) -> ModuleType:
    """Another figure of the checkout holding the file `near` (e.g. to draw its runs again)."""
    return load(find(checkout(Path(near).parent), name))


def study(name: str, near: str | Path) -> ModuleType:
    """The scaling study experiments/<name>.py of the checkout holding `near`, checked against
    STUDY_PROTOCOL."""
    path = checkout(Path(near).parent) / "experiments" / f"{name}.py"
    if not path.exists():
        raise ConfigError(f"no study {path}", key="figs")
    return _checked(path)


def studies(root: Path) -> dict[str, ModuleType]:
    """Every study experiments/*.py of `root`, by name; each must follow STUDY_PROTOCOL."""
    return {path.stem: _checked(path) for path in sorted((root / "experiments").glob("[!_]*.py"))}


def _checked(path: Path) -> ModuleType:
    module = load(path)
    missing = [a for a in STUDY_PROTOCOL if not hasattr(module, a)]
    if missing:
        raise ConfigError(f"a study declares {', '.join(STUDY_PROTOCOL)}; missing: {', '.join(missing)}",
                          file=str(path))
    return module


# ------------------------------------------------------------------ declaring experiments
def config(base, **sections):
    """An Experiment from `base` (a plain config dict or an Experiment) with `sections` merged
    in: a section's dict updates base's one level deep, unless it names another target or
    learner (then it replaces it), and anything else replaces; validated like a file.

    Example:
        >>> exp = config({"target": {"name": "sparse_parity", "n": 30, "k": 3}, "learner": {"name": "gf2"}},
        ...              experiment="x", target={"n": 20})
        >>> exp.experiment, exp.target
        ('x', SparseParity(n=20, k=3, noise=0.0, inputs='hypercube', p=0.5))
    """
    from sparselearn import config as cfg

    plain = copy.deepcopy(dict(base)) if isinstance(base, Mapping) else cfg.to_plain(base)
    for section, values in sections.items():
        renamed = isinstance(values, Mapping) and values.get("name", plain.get(section, {}).get("name")) != \
            plain.get(section, {}).get("name")
        if isinstance(values, Mapping) and isinstance(plain.get(section), dict) and not renamed:
            plain[section] = {**plain[section], **copy.deepcopy(dict(values))}
        else:
            plain[section] = copy.deepcopy(values)
    return cfg.from_dict(plain)


def _listed(declared) -> list:
    return list(declared.values()) if isinstance(declared, Mapping) else list(declared)


# ------------------------------------------------------------------ results of a figure
@dataclass(frozen=True)
class Results:
    """The tables a figure draws from, by name: `runs` (one row per run; `label` when the
    experiments are labelled) and `curves` (run_id, step, …) from the store, plus whatever
    the figure's `measure` returns. `results["weights"]` reads one by name."""

    tables: Mapping[str, Any]
    source: str = ""

    def __getitem__(self, name: str):
        if name not in self.tables:
            raise ConfigError(f"no table {name!r} among {sorted(self.tables)} ({self.source}); "
                              "delete the kept tables to recompute them", key="figs")
        return self.tables[name]

    @property
    def runs(self):
        return self["runs"]

    @property
    def curves(self):
        return self["curves"]


def sweep(exps, store: str | Path, traces: bool = False) -> tuple:
    """(runs, curves) of the experiments `exps`, and with `traces` their traces table (what
    `train.record` stored; see `sparselearn.store.trace_array`): what is stored under `store`
    is reused, the rest trained (`sl.run`)."""
    import pandas as pd

    import sparselearn as sl
    from sparselearn.store import load_traces

    parts = []
    for exp in _listed(exps):
        stored = sl.run(exp, str(store), progress=False)
        path = stored.attrs["path"]
        parts.append((*sl.load_results(path, curves=True), load_traces(path) if traces else None))
    tables = [pd.concat([p[i] for p in parts], ignore_index=True) for i in range(3 if traces else 2)]
    return tuple(tables)


def _kept_paths(data: Path, stem: str) -> dict[str, Path]:
    """Kept tables by name: <stem>.parquet is `runs`, <stem>-<name>.parquet is `name`."""
    found = {"runs": data / f"{stem}.parquet"} if (data / f"{stem}.parquet").exists() else {}
    for path in sorted(data.glob(f"{stem}-*.parquet")):
        found[path.stem[len(stem) + 1:]] = path
    return found


# ------------------------------------------------------------------ what a kept table was made from
def _plain(value):
    """`value` as JSON data (tuples as lists, dict keys as strings, entries keyed *smoke* left
    out), or TypeError when it is not plain data (a path, a function, a module, …)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if "smoke" not in str(k).lower()}
    raise TypeError(type(value).__name__)


def _constants(module: ModuleType) -> dict[str, Any]:
    """The module's UPPERCASE names assigned at the top of its file (not imported ones) whose
    values are plain data, but for names with SMOKE (the smoke size's) and those listed in its
    optional DRAWING_CONSTANTS (used only to draw). A name assigned a literal has the literal's
    value (a list the module fills at run time stays as written), any other its value in the
    module."""
    try:
        tree = ast.parse(Path(module.__file__).read_text())
    except (OSError, SyntaxError, TypeError, AttributeError):
        return {}
    skip = set(getattr(module, "DRAWING_CONSTANTS", ())) | {"DRAWING_CONSTANTS"}
    assigned: dict[str, ast.expr | None] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                assigned[target.id] = node.value
            elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(node.value, (ast.Tuple, ast.List)) \
                    and len(target.elts) == len(node.value.elts):
                assigned.update({t.id: v for t, v in zip(target.elts, node.value.elts) if isinstance(t, ast.Name)})
            else:
                assigned.update({n.id: None for n in ast.walk(target) if isinstance(n, ast.Name)})
    found = {}
    for name, expr in assigned.items():
        if not name.isupper() or "SMOKE" in name or name in skip or not hasattr(module, name):
            continue
        try:
            value = ast.literal_eval(expr) if expr is not None else getattr(module, name)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            value = getattr(module, name)
        try:
            found[name] = _plain(value)
        except TypeError:
            pass
    return found


def made_from(module: ModuleType) -> dict[str, Any]:
    """What the full-size tables of a figure or study are made from, by setting (JSON data):
    `config <experiment>`, each resolved config of `experiments(False)` (executor left out);
    `<file>.experiments`, their names; `<file>.<NAME>`, each plain UPPERCASE constant of its file
    (`_constants`); and the same of every figure or study it holds as an attribute (one loaded by
    `study` or `figure`), under that one's file name. Kept with each full-size table (schema
    metadata `MADE_FROM_KEY`) and compared when the table is read again.

    Example:
        >>> made_from(load("paper_figs/fig_adkm_t1.py"))["fig_adkm_t1.S"]
        16
    """
    from sparselearn import config as cfg

    settings: dict[str, Any] = {}
    todo, seen = [module], set()
    while todo:
        mod = todo.pop(0)
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        stem = Path(getattr(mod, "__file__", "") or "module").stem
        settings.update({f"{stem}.{name}": value for name, value in _constants(mod).items()})
        if callable(getattr(mod, "experiments", None)):
            names = []
            for exp in _listed(mod.experiments(False)):
                plain = _plain(cfg.to_plain(exp))
                plain.pop("executor", None)
                key = f"config {exp.experiment}"
                if settings.get(key, plain) != plain:
                    key = f"{key} #{len(names)}"
                settings[key] = plain
                names.append(exp.experiment)
            settings[f"{stem}.experiments"] = names
        todo += [v for v in vars(mod).values() if isinstance(v, ModuleType) and
                 v.__name__.startswith("sparselearn_figures_")]
    return json.loads(json.dumps(settings))


def _differences(setting: str, kept, now) -> list[tuple[str, Any, Any]]:
    """(setting, kept value, current value) of each leaf where `kept` and `now` differ."""
    if isinstance(kept, dict) and isinstance(now, dict):
        missing = "(not set)"
        return [d for k in [*kept, *(k for k in now if k not in kept)]
                for d in _differences(f"{setting}.{k}", kept.get(k, missing), now.get(k, missing))]
    return [] if json.dumps(kept, sort_keys=True) == json.dumps(now, sort_keys=True) else [(setting, kept, now)]


def _config_differences(setting: str, kept: dict, now: dict) -> list[tuple[str, Any, Any]]:
    """`_differences` of a kept config from the current one, the kept one read as a config now
    (so a field added since, at its default, is no difference); where it no longer reads (a field
    removed since), only the fields both have are compared."""
    from sparselearn import config as cfg

    try:
        filled = _plain(cfg.to_plain(cfg.from_dict(kept)))
        filled.pop("executor", None)
    except Exception:  # noqa: BLE001 - any reason it no longer reads: compare what both name
        return [d for d in _differences(setting, kept, now) if "(not set)" not in (d[1], d[2])]
    return _differences(setting, json.loads(json.dumps(filled)), now)


def recorded(path: str | Path) -> dict[str, Any] | None:
    """What the kept table at `path` was made from (`made_from` when it was kept), or None for
    a table kept without that record."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(MADE_FROM_KEY)
    if not raw:
        return None
    return json.loads(raw if raw.lstrip().startswith(b"{") else zlib.decompress(base64.b64decode(raw)))


def _record(settings: Mapping[str, Any]) -> bytes:
    """`settings` as kept in the schema metadata (see MADE_FROM_KEY)."""
    return base64.b64encode(zlib.compress(json.dumps(settings, sort_keys=True).encode(), 9))


def _check_made_from(path: Path, kept: Mapping[str, Any] | None, module: ModuleType, remedy: str,
                     now: Mapping[str, Any] | None = None) -> None:
    """ConfigError when a setting both the table's record `kept` and `now` (`made_from(module)`
    unless given) name has another value now; settings only one of them names are not compared (a
    table shared by a figure and a study records the one that kept it)."""
    if not kept:
        return
    now = made_from(module) if now is None else now
    found = []
    for key in (k for k in kept if k in now):
        diffs = _differences(key, kept[key], now[key])
        if diffs and key.startswith("config ") and isinstance(kept[key], dict) and isinstance(now[key], dict):
            diffs = _config_differences(key, kept[key], now[key])
        found += diffs
    if found:
        def shown(value) -> str:
            text = value if value == "(not set)" else json.dumps(value, ensure_ascii=False)
            return text if len(text) <= 80 else text[:77] + "..."
        listed = "; ".join(f"{s}: kept {shown(k)}, now {shown(n)}" for s, k, n in found[:4])
        more = f" (and {len(found) - 4} more)" if len(found) > 4 else ""
        raise ConfigError(f"the kept table was made from other settings than "
                          f"{Path(module.__file__).name} declares now: {listed}{more}; {remedy} to "
                          "recompute it", file=str(path))


def _read_kept(path: Path, remedy: str, module: ModuleType | None = None, now: Mapping[str, Any] | None = None):
    """The kept table at `path`; an unreadable one (truncated, not parquet) is a ConfigError that
    names the file and `remedy`, what to run to recompute it; so is one made from settings other
    than `module`'s now (`_check_made_from`; `now`: `made_from(module)` when already known)."""
    import pandas as pd

    try:
        table = pd.read_parquet(path)
        kept = recorded(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise ConfigError(f"cannot read the kept table ({type(e).__name__}: {e}); {remedy} to recompute it",
                          file=str(path)) from e
    if module is not None:
        _check_made_from(Path(path), kept, module, remedy, now)
    return table


def read_kept(path: str | Path, module: ModuleType):
    """The kept table at `path` for the figure or study `module`: a ConfigError when it was made
    from other settings than `module` declares now (see `made_from`)."""
    return _read_kept(Path(path), f"delete {path}", module)


def _write_kept(table, path: Path, settings: Mapping[str, Any]) -> None:
    """Write `table` to `path` (parquet, without its index), recording `settings` (`made_from`)
    in its schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = {**(arrow.schema.metadata or {}), MADE_FROM_KEY: _record(settings)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow.replace_schema_metadata(metadata), path)


def _keep(data: Path, stem: str, tables: Mapping[str, Any], exps: list, settings: Mapping[str, Any]) -> None:
    """Save a full-size figure's tables (curves: only those of its runs), each recording
    `settings` (what it was made from), and its configs."""
    from sparselearn import config as cfg

    data.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if name == "curves" and "runs" in tables:
            table = table[table["run_id"].isin(tables["runs"]["run_id"])]
        _write_kept(table, data / (f"{stem}.parquet" if name == "runs" else f"{stem}-{name}.parquet"), settings)
    if exps:
        (data / f"{stem}.yaml").write_text("\n---\n".join(cfg.dump(e) for e in exps))


def collect(fig: ModuleType, smoke: bool = False, store: str | Path = "results",
            data: Path | None = None) -> Results:
    """The results of the figure module `fig`: its kept tables at full size when present, else
    measured or trained (and kept at full size). `data` defaults to the figure's paper_figs/data."""
    data = data or Path(fig.__file__).resolve().parent / "data"
    stem = getattr(fig, "KEPT_AS", fig.ID).lower()
    declared = fig.experiments(smoke) if hasattr(fig, "experiments") else []
    labelled = isinstance(declared, Mapping)
    if labelled and not hasattr(fig, "measure"):
        _labels(fig, declared)   # refused before anything trains, not after
    kept = _kept_paths(data, stem)
    if not smoke and kept:
        now = made_from(fig)   # once for all its tables
        tables = {name: _read_kept(path, f"delete {data / stem}*.parquet and run `sparselearn figs {fig.ID}`", fig,
                                   now) for name, path in kept.items()}
        source = f"kept in {data / stem}*.parquet"
    else:
        # what the tables are made from, read before they are: not an edit made while they are measured
        settings = None if smoke else made_from(fig)
        if hasattr(fig, "measure"):
            tables = dict(fig.measure(smoke, str(store)))
        elif declared:
            runs, curves = sweep(declared, store)
            tables = {"runs": runs, "curves": curves}
        else:
            tables = {}
        if not smoke and tables:
            _keep(data, stem, tables, _listed(declared), settings)
        source = f"{'smoke' if smoke else 'full size'}, stored under {store}"
    if labelled and "runs" in tables:
        labels = _labels(fig, declared)
        # a run without a label would drop out of every labelled series of the drawing
        unknown = sorted(set(tables["runs"]["experiment"]) - set(labels))
        if unknown:
            raise ConfigError(f"runs of experiments {fig.ID} does not declare: {', '.join(map(str, unknown))} "
                              f"({source}); delete {data / stem}*.parquet and run `sparselearn figs {fig.ID}` "
                              "to recompute them", key="figs")
        tables["runs"] = tables["runs"].assign(label=tables["runs"]["experiment"].map(labels))
    return Results(tables, source)


def _labels(fig: ModuleType, declared: Mapping[str, Any]) -> dict[str, str]:
    """{experiment name: its label} of a figure's dict of experiments; ConfigError where two
    labels share a name, whose runs could not be told apart."""
    labels: dict[str, str] = {}
    for label, exp in declared.items():
        if labels.setdefault(exp.experiment, label) != label:
            raise ConfigError(f"{fig.ID} declares {labels[exp.experiment]!r} and {label!r} under one experiment "
                              f"name, {exp.experiment!r}: their runs could not be told apart; give each its "
                              "own `experiment`", key="experiment")
    return labels


def make(path: str | Path, smoke: bool = False, store: str | Path = "results",
         out: str | Path | None = None) -> list[Path]:
    """Collect and draw the figure in file `path`; writes <out>/<id>.png and .pdf (out defaults
    to paper_figs/out beside it) and returns both paths."""
    from sparselearn.plotting.style import save

    fig = load(path)
    out = Path(out) if out else Path(fig.__file__).resolve().parent / "out"
    return save(fig.draw(collect(fig, smoke, store)), out / fig.ID.lower())


def _arguments(doc: str | None, draws: bool, argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=next(iter((doc or "").strip().splitlines()), None))
    p.add_argument("--smoke", action="store_true", help="seconds-long version")
    p.add_argument("--results", default="results", help="results root (default: results)")
    if draws:
        p.add_argument("--out", default=None, help="figure directory (default: paper_figs/out)")
    return p.parse_args(argv)


def main(path: str | Path) -> None:
    """Command line of a figure file: python paper_figs/fig_x.py [--smoke] [--results DIR] [--out DIR]."""
    import matplotlib

    matplotlib.use("Agg")
    a = _arguments(load(path).__doc__, draws=True)
    for made in make(path, smoke=a.smoke, store=a.results, out=a.out):
        print(made)


def study_main(path: str | Path, argv: list[str] | None = None) -> None:
    """Command line of a study file: python experiments/<name>.py [--smoke] [--results DIR]
    measures (resuming from its store), prints its table (or the study's `summary(table)` when it
    declares one) and, at full size, keeps it at the study's KEPT_TABLE for the figures and the
    exponent table."""
    mod = _checked(Path(path))
    a = _arguments(mod.__doc__, draws=False, argv=argv)
    kept = None if a.smoke else getattr(mod, "KEPT_TABLE", None)
    settings = None if kept is None else made_from(mod)   # before measuring, as `collect`
    table = mod.measure(a.smoke, a.results)
    print((mod.summary(table) if hasattr(mod, "summary") else table).to_string())
    if kept is not None:
        _write_kept(table, Path(kept), settings)
        print(f"kept: {kept}")


# ------------------------------------------------------------------ the exponent table
#: columns of the exponent table (`exponents`), in the order the CSV writes them
EXPONENT_COLUMNS = ("study", "target", "learner", "quantity", "series", "range", "seeds", "reached",
                    "exponent", "ci_low", "ci_high", "upper", "upper_low", "upper_high", "last_slope",
                    "theory", "verdict", "reason", "theorem")


def study_table(mod: ModuleType, smoke: bool = False, store: str | Path = "results"):
    """The table of the study `mod`: at full size the one kept at its `KEPT_TABLE` path (a
    parquet file) when the study names one and it exists (a ConfigError when it was made from
    other settings than the study declares now, see `made_from`); otherwise `mod.measure`, kept
    there at full size."""
    return _study_table(mod, smoke, store)[0]


def _study_table(mod: ModuleType, smoke: bool, store: str | Path) -> tuple[Any, dict | None]:
    """(`study_table`, what it was made from: its record, or None without one)."""
    kept = None if smoke else getattr(mod, "KEPT_TABLE", None)
    if kept is not None and Path(kept).exists():
        table = _read_kept(Path(kept), f"delete it and run `python {mod.__file__}`", mod)
        return table, recorded(kept)
    settings = None if kept is None else made_from(mod)   # before measuring, as `collect`
    table = mod.measure(smoke, str(store))
    if kept is None:
        return table, None
    _write_kept(table, Path(kept), settings)
    return table, settings


def _seeds(mod: ModuleType, part, smoke: bool, kept: Mapping[str, Any] | None = None) -> str:
    """Seeds behind each point of a row, read from the table where it has them: runs per x when
    it has one row per run (a `seed` column), the seeds of each point's search (a `seeds` column),
    else the seeds of the configs it records (`kept`, what it was made from); the study's current
    configs only for a table that has none of these."""
    if "seed" in part:
        counts = part.groupby(mod.X)["seed"].count().tolist()
    elif "seeds" in part and part["seeds"].notna().any():
        counts = part["seeds"].dropna().astype(int).tolist()
    else:
        stem = Path(mod.__file__).stem
        names = (kept or {}).get(f"{stem}.experiments")
        configs = [kept[f"config {name}"] for name in names or () if f"config {name}" in kept]
        counts = ([len(c["sweep"]["seeds"]) for c in configs] if configs else
                  [len(e.sweep.seeds) for e in _listed(mod.experiments(smoke))])
    lo, hi = min(counts), max(counts)
    return str(lo) if lo == hi else f"{lo}–{hi}"


#: decimals the exponent table keeps of every fitted number, those it prints: the verdict is
#: judged and worded from the same rounded numbers as the table's columns, and a figure's legend
#: (the unrounded fit, printed to two decimals) shows the same digits
EXPONENT_DECIMALS = 2


def exponent_row(mod: ModuleType, value, part, smoke: bool = False, kept: Mapping[str, Any] | None = None) -> dict:
    """One row of the exponent table: the fit of Y vs X over `part` (the study table's rows with
    BY = `value`) with its bootstrap CI (over seeds, or over the bracket ci_low ≤ Y ≤ ci_high of a
    searched Y when the table has those columns; see `plotting.fit_exponent`), the fit over the
    upper half of X, the last local slope, the X range and seeds (`_seeds`; `kept`: what the
    table was made from), the theory exponent and the verdict (`exponent_verdict`, with the
    reason the study's optional `reason(value)` declares). Fits, slopes and theory are rounded
    once (EXPONENT_DECIMALS) and the verdict is made from those rounded numbers."""
    from sparselearn.plotting import exponent_verdict, fit_exponent, local_slopes, upper_half_fit
    from sparselearn.plotting.scaling import _distinct

    def rounded(f):
        return None if f is None else dataclasses.replace(f, alpha=round(float(f.alpha), EXPONENT_DECIMALS),
                                         ci_low=round(float(f.ci_low), EXPONENT_DECIMALS),
                                         ci_high=round(float(f.ci_high), EXPONENT_DECIMALS))

    # a searched Y (m*) comes with its bracket: the intervals then carry the search's resolution
    bracket = {"low": part["ci_low"], "high": part["ci_high"]} if {"ci_low", "ci_high"} <= set(part) else {}
    fits = []
    for fitter in (fit_exponent, upper_half_fit):
        try:
            fits.append(rounded(fitter(part[mod.X], part[mod.Y], **bracket)))
        except ValueError:
            fits.append(None)
    slopes = local_slopes(part[mod.X], part[mod.Y], **bracket)
    slopes = slopes.assign(**{c: slopes[c].astype(float).round(EXPONENT_DECIMALS)
                              for c in ("slope", "ci_low", "ci_high") if c in slopes})
    theory_alpha, theorem = mod.theory_exponent(value)
    theory_alpha = round(float(theory_alpha), EXPONENT_DECIMALS)
    declared = mod.reason(value) if hasattr(mod, "reason") else None
    verdict = exponent_verdict(fits[0], theory_alpha, slopes, declared)
    if bracket and verdict.verdict == "agrees":
        verdict = _through_brackets(verdict, rounded(fit_exponent(part[mod.X], part[mod.Y])), theory_alpha)
    used = _distinct(part[mod.X], part[mod.Y])[2]   # the x values a fit uses (a reached, positive median)
    nan = float("nan")
    whole, upper = [(f.alpha, f.ci_low, f.ci_high) if f else (nan,) * 3 for f in fits]
    return {"study": Path(mod.__file__).stem,
            "target": mod.TARGET, "learner": mod.LEARNER, "quantity": f"{mod.Y} vs {mod.X}",
            "series": f"{mod.BY}={value}",
            "range": f"{mod.X} ∈ [{used.min():g}, {used.max():g}]" if len(used) else "",
            "seeds": _seeds(mod, part, smoke, kept), "reached": _reached(part[mod.Y], part.get("floor")),
            "exponent": whole[0], "ci_low": whole[1], "ci_high": whole[2],
            "upper": upper[0], "upper_low": upper[1], "upper_high": upper[2],
            "last_slope": float(slopes["slope"].iloc[-1]) if len(slopes) else nan,
            "theory": theory_alpha, "verdict": verdict.verdict, "reason": verdict.reason,
            "theorem": theorem}


def _reached(y, floor=None) -> str:
    """How many points reached the target, of all: a searched m* learned at the search's floor
    (no value, only a bound, `floor` true) was reached too, and is named apart."""
    at_floor = int(floor.fillna(False).astype(bool).sum()) if floor is not None else 0
    text = f"{int(y.notna().sum()) + at_floor}/{len(y)}"
    return text + (f" ({at_floor} at the search's floor, not fitted)" if at_floor else "")


def _through_brackets(verdict, alone, theory: float):
    """An 'agrees' of a searched m* whose interval covers `theory` only through its brackets'
    allowance (conservative: see `fit_exponent`) says so, with the estimates' own t-interval
    `alone` that leaves it out."""
    measured = alone.ci_low == alone.ci_low   # two points: no t-interval
    if measured and not alone.ci_low <= theory <= alone.ci_high:
        return dataclasses.replace(verdict, reason=f"{verdict.reason}, only through the brackets: the estimates' "
                                   f"own t-interval [{alone.ci_low:.2f}, {alone.ci_high:.2f}] leaves it out")
    return verdict


#: the README block that `exponents` rewrites at full size (between these two lines)
README_MARKERS = ("<!-- exponents: written by `sparselearn figs exponents` -->", "<!-- /exponents -->")


def _markdown_table(rows: list[dict], compact: bool = False) -> list[str]:
    """The exponent table as markdown lines; `compact` (for the README) leaves out target,
    learner, reached and theorem."""
    def ci(r, name, low, high):
        if r[name] != r[name]:
            return "–"
        return f"{r[name]:.2f} [{r[low]:.2f}, {r[high]:.2f}]" if r[low] == r[low] else f"{r[name]:.2f} (2 points)"

    head = (["study", "quantity", "series", "range", "seeds"] if compact else
            ["study", "target", "learner", "quantity", "series", "range", "seeds", "reached"])
    head += ["exponent [95% CI]", "upper half of x", "theory", "verdict"] + ([] if compact else ["theorem"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = {**r, "exponent [95% CI]": ci(r, "exponent", "ci_low", "ci_high"),
                 "upper half of x": ci(r, "upper", "upper_low", "upper_high"), "theory": f"{r['theory']:.2f}",
                 "verdict": f"**{r['verdict']}**: {r['reason']}"}
        lines.append("| " + " | ".join(str(cells[h]) for h in head) + " |")
    return lines


def _markdown(rows: list[dict], smoke: bool) -> str:
    from sparselearn.plotting.scaling import THIN_SEEDS

    lines = ["# Fitted scaling exponents vs theory" + (" (smoke: tiny sizes, not meaningful)" if smoke else ""), "",
             "Intervals (95%, `sparselearn.plotting.fit_exponent`): over seeds, a bootstrap that resamples "
             f"the runs of each x (widened to the medians' scatter where an x has under {THIN_SEEDS} runs); for a "
             "searched m* (one value per x), the least-squares t-interval widened by the slopes its "
             "brackets allow, which is conservative (simulated searches covered the true exponent 99–100% "
             "of the time): an **agrees** that needs the brackets says so. Theory: the slope of the theorem's rate over the series' x values (censored ones too, where the fit has fewer), with the log "
             "factors of Õ dropped (one ln d kept would move Kou k = 4 to 3.36, outside its interval) but "
             "for Thm 17's log(k(R + B)/ε), which grows with k (adkm_s1's k row: 1.21, 1.00 without it), and "
             "ADKM Thm 17 at W = B = 1 (R = 1 in adkm_s2, whose rows along n name the bound's slope at the "
             "cube's R = √n in their theorem column), not at the teachers' own norms, which change "
             "along s and k. Verdict (`sparselearn.plotting.exponent_verdict`): "
             "**agrees** when the interval covers the theory exponent (and not 0); **unresolved** when it "
             "covers both the theory exponent and 0; **pre-asymptotic** when the local "
             "slope d log y / d log x (windows of three x values) moves towards it as x grows; **disagrees** "
             "otherwise, with the reason; **not measured** without an interval. "
             "`sparselearn figs exponents` regenerates this table.", ""]
    return "\n".join(lines + _markdown_table(rows)) + "\n"


def _update_readme(readme: Path, rows: list[dict]) -> None:
    """Rewrite the README's exponent block (between README_MARKERS), if it has one."""
    if not readme.exists():
        return
    text = readme.read_text()
    begin, end = README_MARKERS
    if begin in text and end in text[text.index(begin):]:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        readme.write_text(head + begin + "\n" + "\n".join(_markdown_table(rows, compact=True)) + "\n" + end + tail)


def exponents(root: Path, smoke: bool = False, store: str | Path = "results",
              out: str | Path | None = None) -> list[Path]:
    """For every study of `root` and each value of its BY column, a row (`exponent_row`): the
    fitted exponent of Y vs X with its bootstrap CI, the upper-half fit, the theorem's exponent
    and the verdict; writes out/exponents.md and .csv (out: paper_figs/out unless given), and at
    full size without `out` keeps both in paper_figs/data/ and rewrites the README's block
    between README_MARKERS. Study tables come from `study_table` (kept tables at full size; one
    missing is measured and kept at its KEPT_TABLE, with `out` given too)."""
    import pandas as pd

    rows = []
    for mod in studies(root).values():
        table, kept = _study_table(mod, smoke, store)
        for value, part in table.groupby(mod.BY, sort=True):
            rows.append(exponent_row(mod, value, part, smoke, kept))
    keep = not smoke and not out  # the repository's copies: only a default full-size table
    out = Path(out) if out else root / "paper_figs" / "out"
    for folder in [out] + ([root / "paper_figs" / "data"] if keep else []):
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=list(EXPONENT_COLUMNS)).to_csv(folder / "exponents.csv", index=False)
        (folder / "exponents.md").write_text(_markdown(rows, smoke))
    if keep:
        _update_readme(root / "README.md", rows)
    return [out / "exponents.md", out / "exponents.csv"]
