"""`sparselearn plot` over several stores of one experiment (trained tiny runs) and the one-line
descriptions of `sparselearn list`."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import sparselearn.plotting.auto as auto
import sparselearn.plotting.curves as curves
import sparselearn.plotting.stores as stores
from sparselearn import config
from sparselearn.cli import main
from sparselearn.plotting import scaling_plot
from sparselearn.store import load_results

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
experiment: two
target:  {{name: sparse_parity, n: 6, k: 2}}
learner: {{name: mlp, width: {width}, depth: 2}}
train:   {{optimizer: sgd, lr: 0.1, batch: 16, steps: 100, loss: hinge, eval_every: 20, eps: 0.05}}
data:    {{m: 256, test_m: 64}}
sweep:   {{seeds: 3, grid: {{target.n: [4, 6]}}}}
"""


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory):
    """results/two with two stores, learner.width 16 and 64, same grid (target.n) and seeds."""
    from sparselearn.sweeps import run

    out = tmp_path_factory.mktemp("results")
    for width in (16, 64):
        run(config.loads(CONFIG.format(width=width)), str(out), progress=False)
    return out / "two"


def test_plot_draws_one_series_per_store_with_its_own_fit(two_stores, monkeypatch, tmp_path):
    drawn = {}

    def spy(table, x, y, **kwargs):
        fig, ax, fits = scaling_plot(table, x, y, **kwargs)
        drawn.update(x=x, y=y, by=kwargs.get("by"), fits=fits, table=table)
        return fig, ax, fits

    monkeypatch.setattr(auto, "scaling_plot", spy)
    assert main(["plot", str(two_stores), "--kind", "scaling", "--out", str(tmp_path / "s")]) == 0
    assert drawn["x"] == "target.n" and drawn["by"] == "learner.width" and set(drawn["fits"]) == {16, 64}
    assert len(drawn["table"]) == 12                     # every run of both stores, none dropped
    for store in two_stores.iterdir():                   # each series' exponent is its store's alone
        runs = load_results(store)
        width = config.load(store / "config.yaml").learner.width
        steps = runs["steps_to_eps"].astype(float).fillna(np.inf)
        medians = steps.groupby(runs["n"]).median()
        if np.isfinite(medians).all():
            want = np.polyfit(np.log(medians.index.to_numpy(float)), np.log(medians.to_numpy()), 1)[0]
            assert drawn["fits"][width].alpha == pytest.approx(want, abs=1e-12)


def test_curve_and_default_paths_of_several_stores(two_stores, monkeypatch):
    labels = {}
    original = curves.error_vs_steps

    def spy(runs, curves, **kwargs):
        fig, ax = original(runs, curves, **kwargs)
        labels["series"] = [t.get_text() for t in ax.get_legend().get_texts()]
        return fig, ax

    monkeypatch.setattr(curves, "error_vs_steps", spy)
    paths = auto.plot_results(two_stores, "curve")
    assert paths[0] == two_stores / "figures" / "learnability.png" and paths[0].is_file()
    assert sorted(labels["series"]) == sorted(f"width={w}, n={n}" for n in (4, 6) for w in (16, 64))


def test_stores_alike_but_for_their_sweep_pool_into_one_grid():
    same = {"learner.width": "16", "experiment": '"two"'}
    assert stores.distinguishing([same, dict(same)]) == []
    assert stores.distinguishing([same, {**same, "learner.width": "64"}]) == ["learner.width"]
    names = [{"experiment": '"c"', "learner.name": f'"{n}"', "learner.ridge": r} for n, r in
             (("mlp", "null"), ("kernel", "0.001"), ("lowdegree", "0.0001"))]
    assert stores.distinguishing(names) == ["learner.name"]   # the learner alone, not every setting


def _listed(capsys, what):
    assert main(["list", what]) == 0
    return capsys.readouterr().out.splitlines()[1:]


def test_list_describes_each_config_and_figure_by_a_whole_sentence(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    configs = {line.split()[0]: line.split(None, 1)[1] for line in _listed(capsys, "configs")}
    assert len(configs) == len(list((ROOT / "configs").rglob("*.yaml")))
    assert configs["configs/polynet.yaml"].endswith("hinge loss, at a small and a large batch.")
    assert configs["configs/compare/hier_kernel.yaml"].endswith("(n = 8, p of degree 2, g = He_2).")
    assert all(text.endswith((".", ")")) or ":" in text for text in configs.values()), configs
    figs = [line.split(None, 1) for line in _listed(capsys, "figs")]
    ids = [fig_id for fig_id, _ in figs]
    assert len(ids) == len(set(ids))
    for fig_id, text in figs[:-1]:
        path = next(p for p in (ROOT / "paper_figs").glob("fig_*.py") if f'ID = "{fig_id}"' in p.read_text())
        doc = " ".join(ast.get_docstring(ast.parse(path.read_text())).split())
        assert not text.startswith(f"{fig_id}:") and text.rstrip(".") in doc and text.endswith("."), (fig_id, text)


@pytest.mark.parametrize("reverse", [False, True])
def test_overlay_passes_through_an_anchor_between_its_points(reverse):
    from sparselearn.plotting import overlay
    from sparselearn.plotting.style import figure

    n = np.geomspace(10, 60, 6)[:: -1 if reverse else 1]
    _, ax = figure()
    x, y = overlay(ax, n, n ** 2.0, "n^2", anchor=(13, 500)).get_data()
    assert y / x ** 2 == pytest.approx(np.full(6, 500 / 13 ** 2), rel=1e-12)   # through (13, 500), slope 2


def test_stores_alike_but_for_their_seeds_pool_each_run_once(tmp_path):
    """Seeds 0–1, then seeds 0–2 of the same config: two stores (the sweep is in the config hash)
    holding seeds 0 and 1 twice. Pooled, each (grid point, seed) counts once, with its curves."""
    from sparselearn.sweeps import run

    text = CONFIG.replace("seeds: 3", "seeds: {seeds}")
    for seeds in (2, 3):
        run(config.loads(text.format(width=16, seeds=seeds)), str(tmp_path), progress=False)
    found, runs, curves_ = stores.load_stores(tmp_path / "two", curves=True)
    assert len(found) == 2 and len(load_results(tmp_path / "two")) == 3 * 2   # each run once there too
    assert len(runs) == 6 and not runs.duplicated(["grid", "seed"]).any()
    assert set(curves_["run_id"]) == set(runs["run_id"])


def test_stores_are_told_apart_by_a_setting_not_by_a_gridded_base_value(tmp_path):
    """k = 2 and k = 3, both gridding target.n (base values 4 and 6): target.n's base value is
    overridden by every run's grid point, so it cannot tell the stores apart; target.k does."""
    from sparselearn.sweeps import run

    text = """
experiment: ks
target:  {{name: sparse_parity, n: {n}, k: {k}}}
learner: {{name: gf2}}
train:   {{loss: square}}
data:    {{m: 64, test_m: 64}}
sweep:   {{seeds: 2, grid: {{target.n: [6, 8]}}}}
"""
    for n, k in ((4, 2), (6, 3)):
        run(config.loads(text.format(n=n, k=k)), str(tmp_path), progress=False)
    _, runs, _ = stores.load_stores(tmp_path / "ks")
    assert len(runs) == 8
    grid = curves.grid_frame(runs)
    assert sorted(map(tuple, grid[["target.k", "target.n"]].drop_duplicates().to_numpy())) == [
        (2, 6), (2, 8), (3, 6), (3, 8)]
    assert auto.varying_axes(grid) == ["target.k", "target.n"]


def test_a_key_gridded_in_one_store_and_fixed_in_another_keeps_both_stores_runs(tmp_path):
    """Store A grids train.lr over {0.1, 0.2} at batch 16; store B trains lr 0.1 at batch 32.
    The stores differ in batch, not in lr: B's runs are not A's lr = 0.1 runs, so all 6 stay,
    told apart by the batch, each with its learning rate."""
    from sparselearn.sweeps import run

    text = """
experiment: pool
target:  {{name: sparse_parity, n: 6, k: 2}}
learner: {{name: mlp, width: 8, depth: 2}}
train:   {{optimizer: sgd, lr: 0.1, batch: {batch}, steps: 20, loss: hinge, eval_every: 10}}
data:    {{m: 64, test_m: 64}}
sweep:   {{seeds: 2{grid}}}
"""
    run(config.loads(text.format(batch=16, grid=", grid: {train.lr: [0.1, 0.2]}")), str(tmp_path), progress=False)
    run(config.loads(text.format(batch=32, grid="")), str(tmp_path), progress=False)
    _, runs, _ = stores.load_stores(tmp_path / "pool")
    assert len(runs) == 6
    grid = curves.grid_frame(runs)
    assert sorted(map(tuple, grid[["train.batch", "train.lr"]].to_numpy())) == [
        (16, 0.1), (16, 0.1), (16, 0.2), (16, 0.2), (32, 0.1), (32, 0.1)]
