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

Scaling studies, `experiments/<name>.py`, declare STUDY_PROTOCOL (and may declare
STUDY_OPTIONAL); `exponents` fits each one against its theory exponent and gives a verdict.

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
#: `measure(smoke, store) -> table` and `theory_exponent(by_value) -> (α, theorem)`; a table whose Y
#: is searched (m*) also has columns ci_low, ci_high, the bracket of Y, which the fits carry
STUDY_PROTOCOL = ("TARGET", "LEARNER", "X", "Y", "BY", "experiments", "measure", "theory_exponent")
#: what a study may declare besides: `KEPT_TABLE` (path of its full-size table, read instead of
#: measuring; see `study_table`) and `reason(by_value) -> str | None` (why a row disagrees with
#: its theorem, shown with the verdict)
STUDY_OPTIONAL = ("KEPT_TABLE", "reason")

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


def _read_kept(path: Path, remedy: str):
    """The kept table at `path`; an unreadable one (truncated, not parquet) is a ConfigError that
    names the file and `remedy`, what to run to recompute it."""
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise ConfigError(f"cannot read the kept table ({type(e).__name__}: {e}); {remedy} to recompute it",
                          file=str(path)) from e


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
    data = data or Path(fig.__file__).resolve().parent / "data"
    stem = getattr(fig, "KEPT_AS", fig.ID).lower()
    declared = fig.experiments(smoke) if hasattr(fig, "experiments") else []
    kept = _kept_paths(data, stem)
    if not smoke and kept:
        tables = {name: _read_kept(path, f"delete {data / stem}*.parquet and run `sparselearn figs {fig.ID}`")
                  for name, path in kept.items()}
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
        # a run without a label would drop out of every labelled series of the drawing
        unknown = sorted(set(tables["runs"]["experiment"]) - set(labels))
        if unknown:
            raise ConfigError(f"runs of experiments {fig.ID} does not declare: {', '.join(map(str, unknown))} "
                              f"({source}); delete {data / stem}*.parquet and run `sparselearn figs {fig.ID}` "
                              "to recompute them", key="figs")
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
    table = mod.measure(a.smoke, a.results)
    print((mod.summary(table) if hasattr(mod, "summary") else table).to_string())
    kept = None if a.smoke else getattr(mod, "KEPT_TABLE", None)
    if kept is not None:
        Path(kept).parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(kept, index=False)
        print(f"kept: {kept}")


# ------------------------------------------------------------------ the exponent table
#: columns of the exponent table (`exponents`), in the order the CSV writes them
EXPONENT_COLUMNS = ("study", "target", "learner", "quantity", "series", "range", "seeds", "reached",
                    "exponent", "ci_low", "ci_high", "upper", "upper_low", "upper_high", "last_slope",
                    "theory", "verdict", "reason", "theorem")


def study_table(mod: ModuleType, smoke: bool = False, store: str | Path = "results"):
    """The table of the study `mod`: at full size the one kept at its `KEPT_TABLE` path (a
    parquet file) when the study names one and it exists; otherwise `mod.measure`, kept there
    at full size."""
    kept = None if smoke else getattr(mod, "KEPT_TABLE", None)
    if kept is not None and Path(kept).exists():
        return _read_kept(Path(kept), f"delete it and run `python {mod.__file__}`")
    table = mod.measure(smoke, str(store))
    if kept is not None:
        Path(kept).parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(kept, index=False)
    return table


def _seeds(mod: ModuleType, part, smoke: bool) -> str:
    """Seeds behind each point of a row: runs per x when the table has one row per run (a
    `seed` column), else the seeds of the study's searches (its experiments' sweeps)."""
    if "seed" in part:
        counts = part.groupby(mod.X)["seed"].count().tolist()
    else:
        counts = [len(e.sweep.seeds) for e in _listed(mod.experiments(smoke))]
    lo, hi = min(counts), max(counts)
    return str(lo) if lo == hi else f"{lo}–{hi}"


def exponent_row(mod: ModuleType, value, part, smoke: bool = False) -> dict:
    """One row of the exponent table: the fit of Y vs X over `part` (the study table's rows with
    BY = `value`) with its bootstrap CI (over seeds, or over the bracket ci_low ≤ Y ≤ ci_high of a
    searched Y when the table has those columns; see `plotting.fit_exponent`), the fit over the
    upper half of X, the last local slope, the X range and seeds, the theory exponent and the
    verdict (`exponent_verdict`, with the reason the study's optional `reason(value)` declares)."""
    import numpy as np

    from sparselearn.plotting import exponent_verdict, fit_exponent, local_slopes, upper_half_fit

    # a searched Y (m*) comes with its bracket: the intervals then carry the search's resolution
    bracket = {"low": part["ci_low"], "high": part["ci_high"]} if {"ci_low", "ci_high"} <= set(part) else {}
    fits = []
    for fitter in (fit_exponent, upper_half_fit):
        try:
            fits.append(fitter(part[mod.X], part[mod.Y], **bracket))
        except ValueError:
            fits.append(None)
    slopes = local_slopes(part[mod.X], part[mod.Y], **bracket)
    theory_alpha, theorem = mod.theory_exponent(value)
    declared = mod.reason(value) if hasattr(mod, "reason") else None
    verdict = exponent_verdict(fits[0], theory_alpha, slopes, declared)
    used = part.loc[part[mod.Y].gt(0) & np.isfinite(part[mod.Y].astype(float)), mod.X]
    nan = float("nan")
    whole, upper = [(round(f.alpha, 3), round(f.ci_low, 3), round(f.ci_high, 3)) if f else (nan,) * 3 for f in fits]
    return {"study": Path(mod.__file__).stem,
            "target": mod.TARGET, "learner": mod.LEARNER, "quantity": f"{mod.Y} vs {mod.X}",
            "series": f"{mod.BY}={value}",
            "range": f"{mod.X} ∈ [{used.min():g}, {used.max():g}]" if len(used) else "",
            "seeds": _seeds(mod, part, smoke), "reached": f"{int(part[mod.Y].notna().sum())}/{len(part)}",
            "exponent": whole[0], "ci_low": whole[1], "ci_high": whole[2],
            "upper": upper[0], "upper_low": upper[1], "upper_high": upper[2],
            "last_slope": round(float(slopes["slope"].iloc[-1]), 3) if len(slopes) else nan,
            "theory": round(theory_alpha, 3), "verdict": verdict.verdict, "reason": verdict.reason,
            "theorem": theorem}


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
    lines = ["# Fitted scaling exponents vs theory" + (" (smoke: tiny sizes, not meaningful)" if smoke else ""), "",
             "Intervals (95%, `sparselearn.plotting.fit_exponent`): over seeds, a bootstrap that resamples "
             "the runs of each x (widened to the medians' scatter where an x has under 3 runs); for a "
             "searched m* (one value per x), the least-squares t-interval widened by the slopes its "
             "brackets allow. Theory: the slope of the theorem's rate over the row's range, with the log "
             "factors of Õ dropped (one ln d kept would move Kou k = 4 to 3.36, outside its interval) but "
             "for Thm 17's log(k(R + B)/ε), which grows with k (adkm_s1's k row: 1.21, 1.00 without it), and "
             "ADKM Thm 17 at W = B = 1 (R = 1 in adkm_s2), not at the teachers' own norms, which change "
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
    between README_MARKERS. Study tables come from `study_table` (kept tables at full size)."""
    import pandas as pd

    rows = []
    for mod in studies(root).values():
        table = study_table(mod, smoke, store)
        for value, part in table.groupby(mod.BY, sort=True):
            rows.append(exponent_row(mod, value, part, smoke))
    keep = not smoke and not out  # the repository's copies: only a default full-size table
    out = Path(out) if out else root / "paper_figs" / "out"
    for folder in [out] + ([root / "paper_figs" / "data"] if keep else []):
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=list(EXPONENT_COLUMNS)).to_csv(folder / "exponents.csv", index=False)
        (folder / "exponents.md").write_text(_markdown(rows, smoke))
    if keep:
        _update_readme(root / "README.md", rows)
    return [out / "exponents.md", out / "exponents.csv"]
