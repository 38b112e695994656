"""The `sparselearn` command line.

    sparselearn run CONFIG [--set key=value ...] [--out DIR] [--smoke] [--force] [--retry-failed]
                           [--executor local|devices|ray|slurm]
    sparselearn search CONFIG --param data.m|train.steps [--eps E] [--delta D] [--retry-failed] [--set …]
    sparselearn plot RESULTS_DIR [--kind curve|scaling|phase] [--out FILE]
    sparselearn figs [NAME ...|--all|exponents] [--smoke] [--results DIR]
    sparselearn list [targets|learners|configs|figs]

Exit status: 0 success; 1 an internal failure, or runs that failed (`run`: stored as failed;
`search`: counted);
2 bad input (config, flags, paths, a JAX_PLATFORMS this machine cannot start); 120 the output
could not be written (stdout on a full disk); 130 interrupted (Ctrl-C: finished groups are
stored); 141 the reader of the output left (a broken pipe, e.g. `| head`).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import gc
import importlib
import os
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

# Only the light modules here: `--help` and `list configs` must not wait for jax, pandas or
# matplotlib; each command imports what it needs.
from sparselearn.errors import ConfigError, PlotError
from sparselearn.sweeps.executors import NAMES as EXECUTORS
from sparselearn.train.spec import SEARCHABLE

EPILOG = "Docs: README.md. Example: sparselearn run configs/quickstart.yaml --set train.steps=500"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # bad flags: one line, as every error of the command line, exit 2
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _directory(text: str) -> str:
    """A directory argument: refused when empty (it would write into the working directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: name a directory (e.g. results)")
    return text


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sparselearn", description="Measure what learning theory predicts for sparse targets: "
                "train learners on synthetic teachers over config-driven grids, store and plot the results.",
                epilog=EPILOG)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="train every run of a config's grid × seeds and store the results",
                       description="Train every (grid point, seed) of CONFIG not yet stored, write "
                       "results/<experiment>/<hash>/{config.yaml,runs.parquet,curves.parquet} and a figure.")
    r.add_argument("config", metavar="CONFIG", help="YAML experiment config, e.g. configs/quickstart.yaml")
    _config_flags(r)
    r.add_argument("--force", action="store_true", help="recompute runs that are already stored")
    r.add_argument("--retry-failed", action="store_true", help="recompute runs stored as failed or diverged")
    r.add_argument("--executor", choices=EXECUTORS,
                   help="where groups run (default: executor.name of the config, local)")
    r.add_argument("--quiet", action="store_true", help="no progress bar or table: only the summary line "
                   "and the files written")
    r.add_argument("--no-plot", action="store_true", help="do not draw the learnability figure")
    r.add_argument("--pdf", action="store_true", help="draw the figure as a PDF too (`sparselearn plot` "
                   "draws both from the stored results at any time)")

    se = sub.add_parser("search", help="measure sample complexity: the smallest m (or steps) with "
                        "P[test error ≤ eps] ≥ 1 − delta over seeds",
                        description="Adaptive search (doubling, then bisection on log m) for the smallest "
                        "value of --param at which at least a fraction 1 − delta of the seeds reach test error "
                        "≤ eps, for every point of the config's grid, with an exact binomial confidence bracket. "
                        "Every trained run is stored; a repeated search reuses them.")
    se.add_argument("config", metavar="CONFIG", help="YAML experiment config, e.g. configs/quickstart.yaml")
    _config_flags(se)
    se.add_argument("--param", choices=SEARCHABLE, default="data.m",
                    help="what to search over (default: data.m)")
    se.add_argument("--eps", type=float, help="target test error (default: train.eps of the config)")
    se.add_argument("--delta", type=float, default=0.1, help="allowed failure probability (default: 0.1)")
    se.add_argument("--start", type=int, help="first value tried (default: data.m / train.steps)")
    se.add_argument("--min", dest="min_value", type=int,
                    help="smallest value (default: train.batch for data.m, 1 for train.steps)")
    se.add_argument("--max", dest="max_value", type=int,
                    help="largest value (default: 2^18 samples; 16× the first steps)")
    se.add_argument("--rtol", type=float, default=0.1, help="stop when the bracket is within 1 + rtol (m only)")
    se.add_argument("--retry-failed", action="store_true", help="recompute runs stored as failed or diverged "
                    "(by default they are reused, as seeds that did not reach eps)")
    se.add_argument("--quiet", action="store_true", help="no progress bar")

    pl = sub.add_parser("plot", help="draw a figure from stored results (never trains)",
                        description="Draw a figure of a results directory (results/<experiment> or "
                        "results/<experiment>/<hash>), axes picked from the stored grid; several stores under it are "
                        "drawn together, one series per config (e.g. per learner). curve: test error vs "
                        "m when m varies, else vs steps (median, interquartile band over seeds); scaling: "
                        "steps_to_eps (else test error) vs a numeric grid axis such as target.n on log-log "
                        "axes with a fitted exponent and bootstrap CI per series; phase: success rate over "
                        "two grid axes with the 50% contour.")
    pl.add_argument("results", metavar="RESULTS_DIR", help="results/<experiment> or results/<experiment>/<hash>")
    pl.add_argument("--kind", choices=["curve", "scaling", "phase"], default="curve",
                    help="figure kind (default: curve)")
    pl.add_argument("--out", metavar="FILE", help="output path: FILE.png and FILE.pdf are written, a .png or "
                    ".pdf suffix replaced; an existing directory (or a path ending in /) gets learnability, "
                    "scaling or phase .png/.pdf inside it (default: RESULTS_DIR/figures/)")

    fg = sub.add_parser("figs", help="regenerate paper figures (paper_figs/fig_*.py) into paper_figs/out/",
                        description="Run each named figure's experiments through the normal sweep machinery "
                        "(stored under --results, resumable) and draw paper_figs/out/<id>.png and .pdf. "
                        "`figs exponents` writes the exponent table paper_figs/out/exponents.{md,csv}. "
                        "Names: see `sparselearn list figs`.")
    fg.add_argument("names", nargs="*", metavar="NAME", help="figure ids (e.g. HP-1L adkm-d3) or 'exponents'")
    fg.add_argument("--all", action="store_true", help="every figure")
    fg.add_argument("--smoke", action="store_true", help="shrink every figure to a check of seconds (a few minutes for --all)")
    fg.add_argument("--results", default="results", metavar="DIR", type=_directory, help="results root (default: results)")
    fg.add_argument("--out", metavar="DIR", type=_directory, help="figure directory (default: paper_figs/out); given, the exponent "
                    "table goes there instead of paper_figs/data and the README, though full-size tables that are "
                    "missing are still measured and kept in paper_figs/data")

    for command in (r, se, fg):
        command.add_argument("--no-compile-cache", action="store_true",
                             help="compile without the persistent cache (also: SPARSELEARN_CACHE=off)")

    ls = sub.add_parser("list", help="list targets, learners, configs or figures",
                        description="List the registered targets and learners with their parameters, "
                        "the configs in ./configs, or the paper figures.")
    ls.add_argument("what", nargs="?", choices=["targets", "learners", "configs", "figs"], help="default: all")
    return p


def _config_flags(command: argparse.ArgumentParser) -> None:
    """The flags `run` and `search` share: overrides, the results root, the smoke size."""
    command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config value, e.g. --set train.steps=500 "
                         "--set 'sweep.grid.data.m=[64,128]'")
    command.add_argument("--out", default="results", metavar="DIR", type=_directory,
                         help="results root (default: results)")
    command.add_argument("--smoke", action="store_true", help="shrink steps, seeds and grid for a seconds-long check")


def _summary_table(df) -> str:
    """Per grid point of the runs `df` (failed ones left out): runs, diverged runs (a column only
    when some diverged; the medians are of the others), median test error, how many reached eps,
    median steps_to_eps."""
    import pandas as pd

    from sparselearn.schema import within_eps

    ok = df[df["status"] != "failed"]
    if ok.empty:
        return ""
    values = ok["eps"].unique()   # a grid over train.eps: each point judged at its own
    reached = f"error ≤ {float(values[0]):g}" if len(values) == 1 else "error ≤ eps"
    diverged = (ok["status"] == "diverged").any()  # a column of their own, then: their error is NaN
    rows = []
    for grid, part in ok.groupby("grid", sort=False):
        rows.append({"grid point": grid.strip("{}").replace('"', "") or "-", "runs": len(part),
                     **({"diverged": int((part["status"] == "diverged").sum())} if diverged else {}),
                     "median test error": part["test_error"].median(),
                     reached: f"{int(within_eps(part['test_error'], part['eps']).sum())}/{len(part)}",
                     "median steps_to_eps": _median_steps(part)})
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        return pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _median_steps(part) -> str:
    """The median steps_to_eps of a grid point's runs, a run that never reached eps counted as
    never (as in the scaling plots): '> T' when the median run did not reach it in its T steps;
    '-' for learners without steps (fitted ones: their rows have no steps)."""
    if part["steps"].isna().all():
        return "-"
    median = part["steps_to_eps"].astype(float).fillna(float("inf")).median()
    return f"{median:.4g}" if median != float("inf") else f"> {int(part['steps'].max())}"


def _file_backend() -> None:
    """Figures from the command line are files: a non-interactive matplotlib backend, unless
    the user chose one with MPLBACKEND."""
    if not os.environ.get("MPLBACKEND"):
        import matplotlib

        matplotlib.use("Agg")


def _import_meanwhile(*modules: str, then: Callable[[], None]) -> threading.Thread | None:
    """Import `modules` (figure code: matplotlib) in a thread while this one compiles and trains,
    which XLA does without holding the GIL: on a machine with a core to spare the imports cost
    nothing; `then()` once they are done. Only with the file backend (an interactive one may need
    the main thread; `then()` at once); a failure is left to the import that follows."""
    if os.environ.get("MPLBACKEND"):
        then()
        return None

    def work():
        try:
            _file_backend()
            for module in modules:
                importlib.import_module(module)
        except Exception:  # noqa: BLE001, S110
            pass
        then()

    thread = threading.Thread(target=work, name="sparselearn-import", daemon=True)
    thread.start()
    return thread


def _bad_input(e: BaseException) -> bool:
    """A ConfigError or PlotError, or a StoreError (when the store was imported at all)."""
    store = sys.modules.get("sparselearn.store")
    return isinstance(e, (ConfigError, PlotError)) or (store is not None and isinstance(e, store.StoreError))


def _check_out_file(out: str | None) -> None:
    """A figure path that cannot be written (its directory, or a directory where a file goes):
    StoreError naming it (before any work); ConfigError for a suffix other than .png or .pdf."""
    if out is not None:
        from sparselearn.plotting.style import figure_paths
        from sparselearn.store import StoreError, check_writable

        paths = figure_paths(out)
        check_writable(paths[0].parent, needed_for=paths[0])
        for path in paths:
            if path.is_dir():
                raise StoreError(f"{path}: is a directory (the figure is written to this file)")


@contextlib.contextmanager
def _naming(path: str):
    """A ConfigError raised inside that names no file (a check made while running, e.g. the
    executor's or the search's) names the config file `path`."""
    try:
        yield
    except ConfigError as e:
        raise e.within(file=e.file or path) from None


@contextlib.contextmanager
def _flags(names: dict[str, str]):
    """A ConfigError that names a Python argument (e.g. `max_value`) names its flag (`--max`)."""
    try:
        yield
    except ConfigError as e:
        message = e.message
        for name, flag in names.items():   # whole words: `start` names its flag, `started` stays
            message = re.sub(rf"(?<![\w-]){name}\b", flag, message)
        raise ConfigError(message, key=names.get(e.key, e.key), file=e.file) from None


def _smoke(exp, path: str):
    """`config.smoke(exp)`, a ConfigError naming the config file `path`."""
    from sparselearn import config

    try:
        return config.smoke(exp)
    except ConfigError as e:
        raise e.within(file=path) from None


def cmd_run(args) -> int:
    from sparselearn import config
    from sparselearn.sweeps import run

    overrides = args.overrides + ([f"executor.name={args.executor}"] if args.executor else [])
    both = [o for o in args.overrides if o.replace(" ", "").startswith("executor.name=")]
    if args.executor and both:
        raise ConfigError(f"--executor {args.executor} and --set {both[0]} both choose the executor: give one",
                          key="executor.name", file=args.config)
    exp = config.load(args.config, overrides)
    if args.smoke:
        exp = _smoke(exp, args.config)
    # the figure is a PNG unless --pdf: a PDF costs 0.13 s of one core (importing fontTools, 0.06 s,
    # and subsetting the font), as much as the PNG, its layout and its data together
    if args.no_plot:
        plotting = None
        _imported(args)
    else:
        modules = ("sparselearn.plotting", "matplotlib.backends.backend_pdf")[:2 if args.pdf else 1]
        plotting = _import_meanwhile(*modules, then=lambda: _imported(args))
    with _naming(args.config):
        df = run(exp, args.out, force=args.force, retry_failed=args.retry_failed, progress=not args.quiet)
    summary = df.attrs["summary"]
    if not args.quiet:
        print(_summary_table(df))
    print(summary.line())
    print(f"runs:   {summary.path}/runs.parquet")
    if (Path(summary.path) / "curves.parquet").exists():   # not when every run failed
        print(f"curves: {summary.path}/curves.parquet")
    if not args.no_plot and not (df["status"] == "ok").any():
        print("figure: none (no run finished with finite values)")
    elif not args.no_plot:
        if plotting is not None:
            plotting.join()
        _file_backend()
        from sparselearn.plotting import learnability

        paths = learnability(summary.path, pdf=args.pdf)
        print(f"figure: {paths[0]}" + (" (+ .pdf)" if args.pdf else ""))
    if summary.stored_failed:
        print(f"{summary.stored_failed} runs are stored as failed (see the error column of runs.parquet); "
              "--retry-failed recomputes them", file=sys.stderr)
    return 1 if summary.failed or summary.stored_failed else 0


def cmd_search(args) -> int:
    from sparselearn import config
    from sparselearn.sweeps.search import sample_complexity

    _imported(args)
    if args.min_value is not None and args.max_value is not None and args.min_value > args.max_value:
        raise ConfigError(f"--min {args.min_value} is above --max {args.max_value}", key="--min/--max",
                          file=args.config)
    for flag, value in (("--min", args.min_value), ("--max", args.max_value), ("--start", args.start)):
        if value is not None and value < 1:
            raise ConfigError(f"must be at least 1, got {value}", key=flag, file=args.config)
    if not args.rtol >= 0:  # nan too: either would bisect as rtol 0 does, silently
        raise ConfigError(f"must be a number ≥ 0, got {args.rtol}", key="--rtol", file=args.config)
    exp = config.load(args.config, args.overrides)
    if args.smoke:
        exp = _smoke(exp, args.config)
    with _naming(args.config), _flags({"min_value": "--min", "max_value": "--max", "start": "--start"}):
        res = sample_complexity(exp, args.eps, args.delta, param=args.param, out=args.out, start=args.start,
                                min_value=args.min_value, max_value=args.max_value, rtol=args.rtol,
                                progress=not args.quiet, retry_failed=args.retry_failed)
    table = res.table().drop(columns=["values"])
    for column in ("estimate", "below", "ci_low", "ci_high"):   # whole numbers, and one mark for none
        table[column] = [str(int(v)) if v is not None and v == v else "–" for v in table[column]]
    event = (f"P[test error ≤ {res.eps:g}]" if args.param == "data.m"
             else f"P[test error ≤ {res.eps:g} reached by then]")
    print(f"smallest {args.param} with {event} ≥ {1 - res.delta:g} "
          f"({len(exp.sweep.seeds)} seeds; bracket: {res.confidence:.0%} Clopper–Pearson)")
    print(table.to_string(index=False, na_rep="–"))
    print(f"runs: {res.path}/runs.parquet")
    failed, diverged = (sum(getattr(ps, status) for ps in res.points) for status in ("failed", "diverged"))
    if diverged:
        counted = ("count as seeds that did not reach eps" if args.param == "data.m" else
                   "count as having reached eps where they did so before diverging")
        print(f"{diverged} runs diverged and {counted}", file=sys.stderr)
    if failed:
        print(f"{failed} runs failed and count as seeds that did not reach eps (see the error column of "
              f"{res.path}/runs.parquet); --retry-failed recomputes them", file=sys.stderr)
    return 1 if failed else 0


def cmd_plot(args) -> int:
    _file_backend()
    out = args.out
    if out is not None and (out.endswith(("/", os.sep)) or Path(out).is_dir()):
        out = str(Path(out) / {"curve": "learnability"}.get(args.kind, args.kind))
    _check_out_file(out)
    from sparselearn.plotting import plot_results
    from sparselearn.store import StoreError

    _imported(args)
    try:
        paths = plot_results(args.results, args.kind, out)
    except OSError as e:  # e.g. a read-only figures directory, a full disk
        raise StoreError(f"{e.filename or args.out or args.results}: {e.strerror or e}") from e
    print("\n".join(str(p) for p in paths))
    return 0


def cmd_figs(args) -> int:
    from sparselearn import figures

    _imported(args)
    root = figures.checkout()
    names = list(args.names)
    want_exponents = any(n.lower() == "exponents" for n in names)
    names = [n for n in names if n.lower() != "exponents"]
    if args.all:
        names = list(figures.discover(root))
    if not names and not want_exponents:
        raise ConfigError(f"name a figure ({', '.join(figures.discover(root))}), 'exponents', or pass --all",
                          key="figs")
    for path in [figures.find(root, n) for n in names]:
        made = figures.make(path, smoke=args.smoke, store=args.results, out=args.out)
        print(f"{figures.load(path).ID}: " + ", ".join(str(p) for p in made))
    if want_exponents:
        made = figures.exponents(root, smoke=args.smoke, store=args.results, out=args.out)
        print("exponents: " + ", ".join(str(p) for p in made))
    return 0


def _described(registry, name: str, attr: str) -> str:
    """'(task or kind) field=default, …' of a registered class, read without importing it."""
    attrs, fields = registry.describe(name)
    return f"({attrs.get(attr, '?')}) " + ", ".join(f"{f}={default}" for f, default in fields)


def _config_dirs() -> list[Path]:
    here = Path("configs")
    packaged = Path(__file__).resolve().parents[1] / "configs"
    return [d for d in dict.fromkeys([here.resolve(), packaged]) if d.is_dir()]


def _first_sentence(lines: list[str]) -> str:
    """The first sentence of a description's lines (joined, up to a blank line or a 'Shows:' or
    'Run:' line): up to the first '.' before a capital letter, or all of it."""
    import re

    text = []
    for line in lines:
        line = line.strip()
        if not line or re.match(r"(Shows|Run|Compare):", line):
            break
        text.append(line)
    joined = " ".join(text)
    return re.split(r"(?<=\.)\s+(?=[A-Z])", joined, maxsplit=1)[0]


def _config_head(path: Path) -> str:
    """The first sentence of a config file's leading comment block."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#"))
    return _first_sentence(lines)


def _figure_head(fig_id: str, path: Path) -> str:
    """The first sentence of a figure's docstring, without a leading 'ID: ' that repeats its id."""
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    head = _first_sentence(doc.splitlines())
    return head[len(fig_id) + 2:] if head.startswith(f"{fig_id}: ") else head


def cmd_list(args) -> int:
    what = [args.what] if args.what else ["targets", "learners", "configs", "figs"]
    if "targets" in what or "learners" in what:
        from sparselearn import learners, targets
        from sparselearn.train import losses, optimizers, record
    if "targets" in what:
        print("targets (or your own: name: package.module:ClassName):")
        for name in targets.names():
            print(f"  {name:16s} {_described(targets._registry, name, 'task')}")
    if "learners" in what:
        print("learners (or your own: name: package.module:ClassName):")
        for name in learners.names():
            print(f"  {name:16s} {_described(learners._registry, name, 'kind')}")
        print("training choices:")
        opts = [f"{n} ({', '.join(o.uses)})" if o.uses else n for n, o in optimizers.OPTIMIZERS.items()]
        print(f"  train.optimizer  {', '.join(opts)}")
        print(f"  train.loss       {', '.join(losses.NAMES)}")
        print(f"  train.record     {', '.join(record.NAMES)} (arrays stored at every curve point)")
        print(f"  executor.name    {', '.join(EXECUTORS)}")
    if "configs" in what:
        print("configs:")
        for d in _config_dirs():
            for path in sorted(d.rglob("*.yaml")):
                shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
                print(f"  {shown}  {_config_head(path)}")
    if "figs" in what:
        from sparselearn import figures

        print("figs:")
        try:
            root = figures.checkout()
        except ConfigError as e:
            print(f"  ({e})")
        else:
            for fig_id, path in figures.discover(root).items():
                print(f"  {fig_id:10s} {_figure_head(fig_id, path)}")
            print(f"  {'exponents':10s} fitted scaling exponents next to theory (paper_figs/out/exponents.md, .csv)")
    return 0


COMMANDS = {"run": cmd_run, "search": cmd_search, "plot": cmd_plot, "figs": cmd_figs, "list": cmd_list}


#: errors of a write to a full or failing device, which no file named: the command's own output
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as the command's other messages are: one line on stderr, without the source line."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None, *, from_console: bool = False) -> int:
    """The command line: parse `argv` (default `sys.argv[1:]`), run the command, return its exit
    status. `from_console` is for the executable's entry (`console`) alone."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.from_console = from_console
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "figs":
        _file_backend()
    if args.command in ("run", "search", "figs"):
        from sparselearn import runtime

        runtime.use_every_core()  # before jax starts: one host device per core
        if args.no_compile_cache:
            runtime.disable_compile_cache()
    try:
        with warnings.catch_warnings():   # restores Python's own display when the command returns
            warnings.showwarning = _one_line_warning
            return COMMANDS[args.command](args)
    except BrokenPipeError:  # whoever read the output left (`| head`): what was done is stored
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except KeyboardInterrupt as e:
        from sparselearn.sweeps.executors.local import Interrupted

        print("interrupted: finished groups are stored; rerun the same command to resume", file=sys.stderr)
        if isinstance(e, Interrupted):  # a group is still computing in XLA: leave without waiting for it
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    except Exception as e:  # noqa: BLE001
        if isinstance(e, OSError) and e.filename is None and e.errno in _FULL:   # stdout on a full disk
            with contextlib.suppress(OSError):
                os.write(2, f"error: could not write the output: {e}\n".encode())
            return 120
        if _bad_input(e):
            print(f"error: {e}", file=sys.stderr)
            return 2
        why = _backend_error()
        if why is not None:
            hint = "" if "JAX_PLATFORMS" in why else " (leave JAX_PLATFORMS unset, or name a platform this machine has)"
            print(f"error: JAX_PLATFORMS={os.environ['JAX_PLATFORMS']}: JAX could not start a backend: {why}{hint}",
                  file=sys.stderr)
            return 2
        print(f"internal error: {type(e).__name__}: {e}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return 1


def _backend_error() -> str | None:
    """Why JAX's backends did not start, where JAX_PLATFORMS chose them (`runtime.backend_error`)."""
    if not os.environ.get("JAX_PLATFORMS"):
        return None
    from sparselearn import runtime

    return runtime.backend_error()


def console() -> None:
    """The `sparselearn` executable: `main()` in a process of its own, then exit with its status.

    Importing jax, pandas and matplotlib allocates millions of objects, nearly all of which live
    until the process ends; the cyclic collector would walk them again and again while they load.
    Here it is off until the command's imports are done, then those objects are frozen out of its
    sight (`_imported`): a warm 16-seed run on one core took 2.16 s with the collector on
    at raised thresholds throughout, and takes 1.96 s. The process leaves through `_leave`.
    In-process callers of `main()` keep their own collector settings."""
    gc.disable()
    try:
        code = main(from_console=True)
    finally:
        gc.freeze()  # an exit that waits for a thread, or one by an exception, walks the heap no more
    _leave(code)


def _imported(args) -> None:
    """The command's long-lived modules are loaded (for `run`, the figure code too, from the import
    thread): in the executable's own process (`console`), freeze what exists now and turn the
    collector back on, young collections waiting for 50,000 new objects instead of 700."""
    if args.from_console and not gc.isenabled():
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        gc.enable()


def _leave(code: int) -> None:
    """End the process with status `code` once its work is done, without tearing the interpreter
    down: the exit handlers run (Ray's shutdown, logging's flush, multiprocessing's clean-up) and
    the standard streams are flushed, but the modules and the compiled programs are not freed
    one by one (0.11 s after a small run, against 0.03 s this way). Results are on disk by then
    (each store write is atomic and closed). While a non-daemon thread runs, the usual exit,
    which waits."""
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left before the last line
        code = code or 141
    except OSError as e:  # stdout redirected to a full disk: Python's own exit would say so too
        with contextlib.suppress(OSError):
            os.write(2, f"error: could not write the output: {e}\n".encode())
        code = code or 120
    os._exit(code)


if __name__ == "__main__":
    console()
