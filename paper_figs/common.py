"""What every figure script shares: where figures and kept data go, how experiments run, the tiny
`--smoke` shape, and the exponent table built from the scaling studies in experiments/.

Smoke configs of the trained figures use one shape wherever they can (sparse parity n = 10, k = 2,
a width-32 ReLU net, batch 16, 200 steps), so `figs --all --smoke` compiles few programs.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pandas as pd

import sparselearn as sl
from sparselearn.plotting.style import save

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"
DATA = ROOT / "data"
EXPERIMENTS = ROOT.parent / "experiments"

#: the shared smoke shape, as YAML fragments a smoke config pastes in
SMOKE_TARGET = "{name: sparse_parity, n: 10, k: 2}"
SMOKE_LEARNER = "{name: mlp, width: 32, depth: 2, activation: relu, init: standard}"
SMOKE_TRAIN = "optimizer: sgd, lr: 0.1, batch: 16, steps: 200, loss: hinge, eval_every: 20"


def experiment(text: str, name: str) -> sl.config.Experiment:
    """A config from YAML text (validated like any file)."""
    return sl.config.loads(text, name=name)


def run(exp: sl.config.Experiment, results: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train what is not yet stored and return (runs, curves) of this config's store."""
    df = sl.run(exp, str(results), progress=False)
    return sl.load_results(df.attrs["path"], curves=True)


def collect(fig_id: str, exps: list, smoke: bool, results: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, curves) of every config of a figure. At full size, a kept table under
    paper_figs/data/ is used when present (no training); otherwise the configs run and, at full
    size, the table is kept for the next redraw."""
    kept = data_paths(fig_id)
    if not smoke and kept[0].exists():
        return pd.read_parquet(kept[0]), pd.read_parquet(kept[1])
    parts = [run(e, results) for e in exps]
    runs = pd.concat([p[0] for p in parts], ignore_index=True)
    curves = pd.concat([p[1] for p in parts], ignore_index=True)
    if not smoke:
        keep(fig_id, runs, curves, exps)
    return runs, curves


def data_paths(fig_id: str) -> tuple[Path, Path, Path]:
    stem = fig_id.lower()
    return DATA / f"{stem}.parquet", DATA / f"{stem}-curves.parquet", DATA / f"{stem}.yaml"


def keep(fig_id: str, runs: pd.DataFrame, curves: pd.DataFrame, exps: list) -> None:
    """Save the small tables behind a full-size figure, with the resolved configs."""
    runs_path, curves_path, cfg_path = data_paths(fig_id)
    DATA.mkdir(parents=True, exist_ok=True)
    runs.to_parquet(runs_path, index=False)
    curves[curves["run_id"].isin(runs["run_id"])].to_parquet(curves_path, index=False)
    cfg_path.write_text("\n---\n".join(sl.config.dump(e) for e in exps))


def save_figure(fig_id: str, fig, out: str | Path | None = None) -> list[Path]:
    """Write <out>/<id>.png and .pdf (out defaults to paper_figs/out)."""
    return save(fig, Path(out or OUT) / fig_id.lower())


def figure_main(fig_id: str, configs, draw):
    """The `main(smoke, results, out)` of a figure drawn by `draw(runs, curves)` from the
    configs `configs(smoke)`: collect (train or reuse), draw, save; returns the .png and .pdf."""
    def main(smoke: bool = False, results="results", out=None) -> list[Path]:
        runs, curves = collect(fig_id, configs(smoke), smoke, results)
        return save_figure(fig_id, draw(runs, curves), out)
    return main


def labelled_figure_main(fig_id: str, configs, draw, column: str):
    """The `main(smoke, results, out)` of a figure whose `configs(smoke)` are tuples
    (label, ..., experiment): collect, give every run its experiment's label in `column`,
    draw(runs), save; returns the .png and .pdf."""
    def main(smoke: bool = False, results="results", out=None) -> list[Path]:
        labelled = configs(smoke)
        runs, _ = collect(fig_id, [item[-1] for item in labelled], smoke, results)
        names = {item[-1].experiment: item[0] for item in labelled}
        return save_figure(fig_id, draw(runs.assign(**{column: runs["experiment"].map(names)})), out)
    return main


def main(fn, doc: str | None = None) -> None:
    """Command line of a figure script: python paper_figs/fig_x.py [--smoke] [--results DIR] [--out DIR]."""
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    p.add_argument("--smoke", action="store_true", help="seconds-long version")
    p.add_argument("--results", default="results", help="results root (default: results)")
    p.add_argument("--out", default=None, help="figure directory (default: paper_figs/out)")
    a = p.parse_args()
    for path in fn(smoke=a.smoke, results=a.results, out=a.out):
        print(path)


# ------------------------------------------------------------------ scaling studies and exponents
def studies() -> dict[str, object]:
    """Every experiments/<name>.py that defines `measure` (a scaling study), by name."""
    found = {}
    for path in sorted(EXPERIMENTS.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"sparselearn_study_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        if hasattr(mod, "measure"):
            found[path.stem] = mod
    return found


def study(name: str):
    return studies()[name]


def exponent_table(smoke: bool = False, results: str | Path = "results", out: str | Path | None = None) -> list[Path]:
    """For each scaling study and series: the fitted exponent with its bootstrap CI next to the
    theorem's exponent; written as out/exponents.csv and out/exponents.md."""
    from sparselearn.plotting import fit_exponent

    rows = []
    for name, mod in studies().items():
        table = mod.measure(smoke=smoke, results=results)
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
    df = pd.DataFrame(rows)
    out = Path(out or OUT)
    out.mkdir(parents=True, exist_ok=True)
    csv, md = out / "exponents.csv", out / "exponents.md"
    df.to_csv(csv, index=False)
    lines = ["# Fitted scaling exponents vs theory" + (" (smoke: tiny sizes, not meaningful)" if smoke else ""), "",
             "| study | target | learner | quantity | series | reached | exponent [95% CI] | theory | theorem |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['study']} | {r['target']} | {r['learner']} | {r['quantity']} | {r['series']} | "
                     f"{r['reached']} | {r['exponent']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] | "
                     f"{r['theory']:.2f} | {r['theorem']} |")
    md.write_text("\n".join(lines) + "\n")
    return [md, csv]
