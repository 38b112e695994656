"""Paper figures as declarations, and the one runner that makes them.

A figure is a file `paper_figs/fig_<id>.py` of a checkout that declares

    ID = "HP-15"
    def experiments(smoke: bool) -> list[Experiment] | dict[label, Experiment]
    def draw(results: Results) -> matplotlib.figure.Figure

and, when its numbers are not just the runs of its experiments (an analysis, a study's search,
runs traced outside the store),

    def measure(smoke: bool, store: str) -> dict[str, pandas.DataFrame]

`make(path)` collects a figure's results and draws <out>/<id>.png and .pdf. Collecting reads the
tables kept in paper_figs/data/<id>*.parquet at full size when they exist (no training);
otherwise it calls `measure`, or runs the experiments through `sl.run` (stored under `store`, so
a rerun resumes), and at full size keeps the tables and the resolved configs (<id>.yaml) for the
next redraw. With a dict of experiments, every run gets its experiment's key in `runs["label"]`.

Scaling studies, `experiments/<name>.py`, declare STUDY_PROTOCOL; `exponents` fits each one
against its theory exponent.

Example:
    >>> root = checkout()                              # the checkout around the working directory
    >>> make(find(root, "hp_15"), smoke=True, store="results")
    [PosixPath('.../paper_figs/out/hp-15.png'), PosixPath('.../paper_figs/out/hp-15.pdf')]
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from sparselearn.errors import ConfigError

#: what every experiments/<name>.py declares: the target and learner it studies, the columns
#: X, Y (fitted as Y ∝ X^α) and BY (one fit per value) of its table, `experiments(smoke)`,
#: `measure(smoke, store) -> table` and `theory_exponent(by_value) -> (α, theorem)`
STUDY_PROTOCOL = ("TARGET", "LEARNER", "X", "Y", "BY", "experiments", "measure", "theory_exponent")

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
        >>> config({"target": {"name": "sparse_parity", "n": 30, "k": 3}, "learner": {"name": "gf2"}},
        ...        experiment="x", target={"n": 20})
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


def sweep(exps, store: str | Path) -> tuple:
    """(runs, curves) of the experiments `exps`: what is stored under `store` is reused, the
    rest trained (`sl.run`)."""
    import pandas as pd

    import sparselearn as sl

    parts = []
    for exp in _listed(exps):
        stored = sl.run(exp, str(store), progress=False)
        parts.append(sl.load_results(stored.attrs["path"], curves=True))
    return (pd.concat([p[0] for p in parts], ignore_index=True),
            pd.concat([p[1] for p in parts], ignore_index=True))


def _kept_paths(data: Path, stem: str) -> dict[str, Path]:
    """Kept tables by name: <stem>.parquet is `runs`, <stem>-<name>.parquet is `name`."""
    found = {"runs": data / f"{stem}.parquet"} if (data / f"{stem}.parquet").exists() else {}
    for path in sorted(data.glob(f"{stem}-*.parquet")):
        found[path.stem[len(stem) + 1:]] = path
    return found


def _keep(data: Path, stem: str, tables: Mapping[str, Any], exps: list) -> None:
    """Save a full-size figure's tables (curves: only those of its runs) and its configs."""
    from sparselearn import config as cfg

    data.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if name == "curves" and "runs" in tables:
            table = table[table["run_id"].isin(tables["runs"]["run_id"])]
        table.to_parquet(data / (f"{stem}.parquet" if name == "runs" else f"{stem}-{name}.parquet"), index=False)
    if exps:
        (data / f"{stem}.yaml").write_text("\n---\n".join(cfg.dump(e) for e in exps))


def collect(fig: ModuleType, smoke: bool = False, store: str | Path = "results",
            data: Path | None = None) -> Results:
    """The results of the figure module `fig`: its kept tables at full size when present, else
    measured or trained (and kept at full size). `data` defaults to the figure's paper_figs/data."""
    import pandas as pd

    data = data or Path(fig.__file__).resolve().parent / "data"
    stem = getattr(fig, "KEPT_AS", fig.ID).lower()
    declared = fig.experiments(smoke) if hasattr(fig, "experiments") else []
    kept = _kept_paths(data, stem)
    if not smoke and kept:
        tables = {name: pd.read_parquet(path) for name, path in kept.items()}
        source = f"kept in {data / stem}*.parquet"
    else:
        if hasattr(fig, "measure"):
            tables = dict(fig.measure(smoke, str(store)))
        elif declared:
            runs, curves = sweep(declared, store)
            tables = {"runs": runs, "curves": curves}
        else:
            tables = {}
        if not smoke and tables:
            _keep(data, stem, tables, _listed(declared))
        source = f"{'smoke' if smoke else 'full size'}, stored under {store}"
    if isinstance(declared, Mapping) and "runs" in tables:
        labels = {exp.experiment: label for label, exp in declared.items()}
        tables["runs"] = tables["runs"].assign(label=tables["runs"]["experiment"].map(labels))
    return Results(tables, source)


def make(path: str | Path, smoke: bool = False, store: str | Path = "results",
         out: str | Path | None = None) -> list[Path]:
    """Collect and draw the figure in file `path`; writes <out>/<id>.png and .pdf (out defaults
    to paper_figs/out beside it) and returns both paths."""
    from sparselearn.plotting.style import save

    fig = load(path)
    out = Path(out) if out else Path(fig.__file__).resolve().parent / "out"
    return save(fig.draw(collect(fig, smoke, store)), out / fig.ID.lower())


def _arguments(doc: str | None, draws: bool) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(doc or " ").strip().splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="seconds-long version")
    p.add_argument("--results", default="results", help="results root (default: results)")
    if draws:
        p.add_argument("--out", default=None, help="figure directory (default: paper_figs/out)")
    return p.parse_args()


def main(path: str | Path) -> None:
    """Command line of a figure file: python paper_figs/fig_x.py [--smoke] [--results DIR] [--out DIR]."""
    import matplotlib

    matplotlib.use("Agg")
    a = _arguments(load(path).__doc__, draws=True)
    for made in make(path, smoke=a.smoke, store=a.results, out=a.out):
        print(made)


def study_main(path: str | Path) -> None:
    """Command line of a study file: python experiments/<name>.py [--smoke] [--results DIR] prints
    its table (or the study's `summary(table)` when it declares one)."""
    mod = _checked(Path(path))
    a = _arguments(mod.__doc__, draws=False)
    table = mod.measure(a.smoke, a.results)
    print((mod.summary(table) if hasattr(mod, "summary") else table).to_string())


# ------------------------------------------------------------------ runs traced outside the store
def traced_runs(exp, hps: Mapping[str, Any], observe=None, init=None) -> dict:
    """Train the runs `hps` of `exp` outside the results store, recording `observe(params,
    params0)` at every curve point and starting from `init(key, hp)` when given (see
    `sparselearn.train.trajectory`). The one way figures train: HP-3, Kou-T3 and PF-5 use it
    for weight trajectories and rewound subnetworks."""
    from sparselearn.train import trajectory

    return trajectory(exp, dict(hps), observe=observe, init=init)


def _run(exp, seed: int) -> dict:
    """The vmapped values of run `seed` of `exp` as the training loop reads them, and `instance`:
    the seed its teacher, test set and initialisation are drawn from."""
    from sparselearn.train import spec
    from sparselearn.train.loop import instance_seed

    hp = {name: values[0] for name, values in spec.hp_arrays(exp, {"seed": [seed]}).items()}
    return {**hp, "instance": instance_seed(hp)}


def teacher_params(exp, seed: int):
    """The teacher parameters of run `seed` of `exp`, exactly as the training loop draws them
    (from `train.init_seed` when set)."""
    from sparselearn.train.loop import make_data

    hp = _run(exp, seed)
    return make_data(exp)(hp["seed"], hp["instance"], hp["noise"])[0]


def initial_params(exp, seed: int):
    """The learner's initial parameters in run `seed` of `exp`, as the training loop draws them."""
    from sparselearn.rng import key_for

    return exp.learner.init_params(key_for(_run(exp, seed)["instance"], "init"), exp.target.n)


# ------------------------------------------------------------------ the exponent table
def exponents(root: Path, smoke: bool = False, store: str | Path = "results",
              out: str | Path | None = None) -> list[Path]:
    """For every study of `root` and each value of its BY column: the fitted exponent of Y vs X
    with its bootstrap CI next to the theorem's exponent; writes out/exponents.md and .csv."""
    import pandas as pd

    from sparselearn.plotting import fit_exponent

    rows = []
    for name, mod in studies(root).items():
        table = mod.measure(smoke, str(store))
        for value, part in table.groupby(mod.BY, sort=True):
            try:
                fit = fit_exponent(part[mod.X], part[mod.Y])
                alpha, lo, hi = round(fit.alpha, 3), round(fit.ci_low, 3), round(fit.ci_high, 3)
            except ValueError:
                alpha = lo = hi = float("nan")
            theory_alpha, theorem = mod.theory_exponent(value)
            rows.append({"study": name, "target": mod.TARGET, "learner": mod.LEARNER,
                         "quantity": f"{mod.Y} vs {mod.X}", "series": f"{mod.BY}={value}",
                         "reached": f"{int(part[mod.Y].notna().sum())}/{len(part)}",
                         "exponent": alpha, "ci_low": lo, "ci_high": hi,
                         "theory": round(theory_alpha, 3), "theorem": theorem})
    out = Path(out) if out else root / "paper_figs" / "out"
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / "exponents.csv", out / "exponents.md"
    pd.DataFrame(rows).to_csv(csv, index=False)
    lines = ["# Fitted scaling exponents vs theory" + (" (smoke: tiny sizes, not meaningful)" if smoke else ""), "",
             "| study | target | learner | quantity | series | reached | exponent [95% CI] | theory | theorem |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['study']} | {r['target']} | {r['learner']} | {r['quantity']} | {r['series']} | "
                     f"{r['reached']} | {r['exponent']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] | "
                     f"{r['theory']:.2f} | {r['theorem']} |")
    md.write_text("\n".join(lines) + "\n")
    return [md, csv]
