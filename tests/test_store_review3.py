"""The store, third review: a column older parts lack reads as the schema types it, a part that
is a broken link or a directory is named, a copied store's curves are read once, and a store's
unreadable config.yaml is one line from `plot` (GF(2) runs: fitted in milliseconds)."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

import sparselearn as sl
from sparselearn import config
from sparselearn.cli import main
from sparselearn.store import Store, StoreError

GF2 = """
experiment: gg
target: {name: sparse_parity, n: 8, k: 2}
learner: {name: gf2}
train: {loss: square}
data: {m: 32, test_m: 64}
sweep: {seeds: 3}
"""


@pytest.fixture
def store(tmp_path) -> Store:
    sl.run(config.loads(GF2), str(tmp_path / "results"), progress=False)
    (path,) = (tmp_path / "results" / "gg").iterdir()
    return Store(path)


def _part(store: Store, table: str):
    (part,) = (store.path / f"{table}.parquet").glob("part-*.parquet")
    return part


def test_a_column_an_older_part_lacks_reads_with_its_schema_type(store):
    part = _part(store, "runs")
    pq.write_table(pq.read_table(part).drop(["init_seed"]), part)     # as written before init_seed existed
    runs = sl.load_results(store.path)
    assert str(runs["init_seed"].dtype) == "Int64" and runs["init_seed"].isna().all()


@pytest.mark.parametrize("kind", ["link", "directory"])
def test_a_part_that_is_no_file_is_named(store, tmp_path, kind):
    part = _part(store, "runs")
    part.unlink()
    if kind == "link":
        part.symlink_to(tmp_path / "not-fetched.parquet")
    else:
        part.mkdir()
    want = "broken symbolic link" if kind == "link" else "not a regular file"
    with pytest.raises(StoreError, match=f"{part.name}: {want}"):
        sl.load_results(store.path)


def test_a_copied_store_has_each_curve_point_once(store):
    shutil.copytree(store.path, store.path.with_name(store.path.name + "_copy"))
    runs, curves = sl.load_results(store.path.parent, curves=True)
    assert len(runs) == 3 and not curves.duplicated(["run_id", "step"]).any()
    assert len(curves) == len(sl.load_results(store.path, curves=True)[1])


def test_plot_names_a_stores_unreadable_config(store, capsys):
    (store.path / "config.yaml").write_text("target: {n: [1, 2\n")
    shutil.copytree(store.path, store.path.with_name("other"))    # two stores: their settings are read
    assert main(["plot", str(store.path.parent)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {store.path / 'config.yaml'}: unreadable config (") and "\n" not in err


def test_a_run_fixed_in_one_store_and_gridded_in_another_alike_is_read_once(tmp_path):
    root = tmp_path / "results"
    sl.run(config.loads(GF2.replace("seeds: 3", "seeds: 2")), str(root), progress=False)          # m fixed at 32
    sl.run(config.loads(GF2.replace("seeds: 3", "seeds: 2, grid: {data.m: [32, 64]}")), str(root), progress=False)
    sl.run(config.loads(GF2), str(root), progress=False)                                          # m 32, 3 seeds
    runs = sl.load_results(root / "gg")
    assert sorted(zip(runs["m"], runs["seed"])) == [(32, 0), (32, 1), (32, 2), (64, 0), (64, 1)]


def test_the_plots_read_a_copied_stores_curves_once(store):
    from sparselearn.plotting.stores import load_stores

    shutil.copytree(store.path, store.path.with_name(store.path.name + "_copy"))
    _, runs, curves = load_stores(store.path.parent, curves=True)
    assert len(runs) == 3 and not curves.duplicated(["run_id", "step"]).any()
