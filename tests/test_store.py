"""The results store without training: part files, replacement by run_id, the single-file layout,
file modes, page checksums, foreign files, permissions, leases and a jax-free `load_results`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sparselearn import store as st
from sparselearn.schema import CURVE_COLUMNS, RUN_COLUMNS
from sparselearn.store import Store, StoreError, StoreView, check_writable, load_results

ROOT = Path(__file__).resolve().parents[1]


def frames(ids, status="ok", steps=5, value=0.25):
    """A group's runs and curves frames (no training)."""
    runs = pd.DataFrame([{**{c: None for c in RUN_COLUMNS}, "run_id": r, "experiment": "s", "status": status,
                          "test_error": value, "seed": i, "m": 64} for i, r in enumerate(ids)], columns=RUN_COLUMNS)
    runs = runs.astype({"seed": "Int64", "m": "Int64", "test_error": "float64"})
    curves = pd.DataFrame([{"run_id": r, "step": s, **{c: value for c in CURVE_COLUMNS[2:]}}
                           for r in ids for s in range(steps)], columns=CURVE_COLUMNS)
    return runs, curves


def parts(store: Store, table: str) -> list[Path]:
    return sorted((store.path / f"{table}.parquet").glob("part-*.parquet"))


def test_each_write_adds_one_part_and_reads_back_as_one_table(tmp_path):
    store = Store(tmp_path / "exp" / "h", "experiment: s\n")
    for g in range(5):
        store.write(*frames([f"g{g}r{i}" for i in range(4)]))
    assert len(parts(store, "runs")) == 5 and len(parts(store, "curves")) == 5
    runs, curves = load_results(tmp_path / "exp", curves=True)
    assert len(runs) == 20 and runs["run_id"].is_unique and len(curves) == 100
    assert list(runs.columns) == RUN_COLUMNS
    # an ordinary parquet reader sees the same table in the directory
    assert sorted(pd.read_parquet(store.runs_path)["run_id"]) == sorted(runs["run_id"])
    assert (store.path / "config.yaml").read_text() == "experiment: s\n"


def test_later_part_replaces_rows_of_the_same_run(tmp_path):
    store = Store(tmp_path)
    store.write(*frames(["a", "b"], value=0.5))
    store.write(*frames(["b"], value=0.0, steps=3))
    runs, curves = store.runs(), store.curves()
    assert dict(zip(runs["run_id"], runs["test_error"])) == {"a": 0.5, "b": 0.0}
    assert (curves["run_id"] == "b").sum() == 3 and (curves.loc[curves["run_id"] == "b", "test_error"] == 0).all()
    # with the superseded parts named, the old rows leave the files too
    view = StoreView(store)
    view.refresh()
    store.write(*frames(["a"], value=0.1), supersede=view.holding(["a"]))
    raw = pd.read_parquet(store.runs_path)
    assert (raw["run_id"] == "a").sum() == 1 and float(raw.loc[raw["run_id"] == "a", "test_error"].iloc[0]) == 0.1
    assert (raw["run_id"] == "b").sum() == 2  # written twice without naming the old part: readers take the later
    assert (pd.read_parquet(store.curves_path)["run_id"] == "a").sum() == 5


def test_single_file_store_is_read_and_converted_on_write(tmp_path):
    runs, curves = frames(["old1", "old2"])
    runs.to_parquet(tmp_path / "runs.parquet")
    curves.to_parquet(tmp_path / "curves.parquet")
    store = Store(tmp_path)
    assert sorted(store.runs()["run_id"]) == ["old1", "old2"]
    store.write(*frames(["new"]))
    assert store.runs_path.is_dir() and len(parts(store, "runs")) == 2
    assert sorted(store.runs()["run_id"]) == ["new", "old1", "old2"]
    assert sorted(store.curves()["run_id"].unique()) == ["new", "old1", "old2"]
    # its all-null columns (error, …) are strings in the converted part, as in the others
    assert sorted(pd.read_parquet(store.runs_path)["run_id"]) == ["new", "old1", "old2"]


def _single_file_store(tmp_path):
    """A store in the earlier single-file layout holding runs A, B (ok) and C (failed, no
    curves), and a view of it as a sweep starts: (store, view)."""
    runs, curves = frames(["A", "B", "C"])
    runs.loc[runs["run_id"] == "C", "status"] = "failed"
    runs.to_parquet(tmp_path / "runs.parquet")
    curves[curves["run_id"] != "C"].to_parquet(tmp_path / "curves.parquet")
    store = Store(tmp_path)
    view = StoreView(store)
    view.refresh(full=True)
    return store, view


def test_force_and_retry_after_converting_a_single_file_store(tmp_path):
    store, view = _single_file_store(tmp_path)
    # group A retrained and stored the way the runner stores a group
    runs, curves = frames(["A"])
    for part in store.write(runs, curves, view.holding(["A"])):
        table = part.parent.name.removesuffix(".parquet")
        view.add(part, **{table: {"runs": runs, "curves": curves}[table]})
    view.refresh()
    assert store.runs_path.is_dir()
    assert view.done(fresh_only=True) == {"A"}           # --force: only what this sweep stored
    assert view.done(retry_failed=True) == {"A", "B"}    # --retry-failed: C is still to retry


def test_rerunning_the_groups_of_a_single_file_store_leaves_one_row_per_run_in_its_files(tmp_path):
    """--force and --retry-failed on the earlier layout: the first group's old rows leave the
    converted file, which an ordinary parquet reader of the directory reads too; runs of later
    groups in it are still old ones (not fresh for --force, to retry for --retry-failed)."""
    store, view = _single_file_store(tmp_path)
    for group in (["A"], ["B", "C"]):  # stored the way the runner stores a group
        runs, curves = frames(group, value=0.0)
        for part in store.write(runs, curves, view.holding(group)):
            table = part.parent.name.removesuffix(".parquet")
            view.add(part, **{table: {"runs": runs, "curves": curves}[table]})
        view.refresh()
        raw_runs, raw_curves = pd.read_parquet(store.runs_path), pd.read_parquet(store.curves_path)
        assert sorted(raw_runs["run_id"]) == ["A", "B", "C"]
        assert raw_curves.groupby("run_id").size().to_dict() == {"A": 5, "B": 5, **({"C": 5} if "C" in group else {})}
        assert (raw_runs.set_index("run_id").loc[group, "test_error"] == 0).all()
        assert view.done(fresh_only=True) == set(group) | ({"A"} if "C" in group else set())
        if group == ["A"]:
            assert view.done(retry_failed=True) == {"A", "B"}  # C, stored failed, is still to retry


def _old_part(store: Store, ids, status="failed"):
    """A runs part and a curves part as an earlier version wrote them: no group_id, no drift."""
    runs, curves = frames(ids, status=status)
    (store.runs_path).mkdir(parents=True, exist_ok=True)
    (store.curves_path).mkdir(exist_ok=True)
    name = "part-00000000000000000001-1-a.parquet"
    st.write_parquet(runs.drop(columns="group_id"), store.runs_path / name)
    st.write_parquet(curves.drop(columns="drift"), store.curves_path / name)


def test_rewriting_an_older_part_keeps_its_schema(tmp_path):
    store = Store(tmp_path)
    _old_part(store, ["X", "Y"])
    runs, curves = frames(["Z"])
    runs["group_id"] = "g"
    store.write(runs, curves)
    view = StoreView(store)
    view.refresh(full=True)
    runs, curves = frames(["X"])
    runs["group_id"] = "g"
    store.write(runs, curves, view.holding(["X"]))   # --retry-failed redoes X
    old = parts(store, "runs")[0]
    assert "group_id" not in pq.read_schema(old).names and list(pd.read_parquet(old)["run_id"]) == ["Y"]
    got = store.runs()
    assert dict(zip(got["run_id"], got["status"])) == {"X": "ok", "Y": "failed", "Z": "ok"}
    group = got.set_index("run_id")["group_id"]
    assert group["X"] == group["Z"] == "g" and pd.isna(group["Y"])


def test_parts_that_do_not_fit_together_are_named(tmp_path):
    store = Store(tmp_path)
    runs, curves = frames(["a"])
    store.write(runs.assign(group_id="g"), curves)
    store.write(*frames(["b"]))
    clash = store.runs_path / "part-00000000000000000002-1-b.parquet"
    st.write_parquet(frames(["c"])[0].assign(group_id=1.5), clash)
    with pytest.raises(StoreError, match="do not fit together") as e:
        store.runs()
    assert f"double in {clash}" in str(e.value) and str(parts(store, "runs")[-1]) in str(e.value)


@pytest.fixture
def writer_between_listing_and_reading(monkeypatch):
    """`arm(reader, act)`: the next time `reader` lists its runs, `act()` runs right after
    (another process writing between a reader's listing and its reading)."""
    orig = Store.files
    pending = {}

    def files(self, table):
        out = orig(self, table)
        if table == "runs" and id(self) in pending:
            pending.pop(id(self))()
        return out

    monkeypatch.setattr(Store, "files", files)
    return lambda reader, act: pending.__setitem__(id(reader), act)


def test_a_part_removed_between_listing_and_reading_is_not_corrupt(tmp_path, writer_between_listing_and_reading):
    writer, reader = Store(tmp_path), Store(tmp_path)
    writer.write(*frames(["X1", "X2"], status="failed", steps=0))
    writer.write(*frames(["Y"]))
    view = StoreView(writer)
    view.refresh(full=True)
    failed = parts(writer, "runs")[0]

    def retry():  # --retry-failed stores X1, X2 again: their part is superseded as a whole
        writer.write(*frames(["X1", "X2"]), view.holding(["X1", "X2"]))
        assert not failed.exists()

    writer_between_listing_and_reading(reader, retry)
    got = reader.runs()
    assert dict(zip(got["run_id"], got["status"])) == {"X1": "ok", "X2": "ok", "Y": "ok"}
    # the same for a view (a process polling the groups others hold)
    other = StoreView(reader)
    writer.write(*frames(["X1"], status="failed", steps=0))
    view.refresh()
    superseded = parts(writer, "runs")[-1]
    writer_between_listing_and_reading(reader, lambda: writer.write(*frames(["X1"]), view.holding(["X1"])))
    other.refresh()
    assert not superseded.exists() and other.status["X1"][0] == "ok" and other.done() == {"X1", "X2", "Y"}


def test_a_single_file_converted_between_listing_and_reading(tmp_path, writer_between_listing_and_reading):
    runs, curves = frames(["old"])
    runs.to_parquet(tmp_path / "runs.parquet")
    curves.to_parquet(tmp_path / "curves.parquet")
    writer, reader = Store(tmp_path), Store(tmp_path)
    writer_between_listing_and_reading(reader, lambda: writer.write(*frames(["new"])))
    assert sorted(reader.runs()["run_id"]) == ["new", "old"]


def test_a_conversion_cut_short_is_still_a_store(tmp_path):
    store = Store(tmp_path / "exp" / "h")
    store.path.mkdir(parents=True)
    frames(["a"])[0].to_parquet(store.runs_path)
    os.replace(store.runs_path, store.path / ".runs.parquet.legacy")  # killed inside _to_parts
    assert list(load_results(tmp_path / "exp")["run_id"]) == ["a"]
    assert list(load_results(tmp_path)["run_id"]) == ["a"]
    assert list(load_results(store.path)["run_id"]) == ["a"]
    store.write(*frames(["b"]))
    assert sorted(load_results(tmp_path / "exp")["run_id"]) == ["a", "b"]


def test_create_writes_nothing_until_the_first_group(tmp_path, tiny):
    store = Store.create(tmp_path / "results", tiny)
    store.check()
    assert not (tmp_path / "results").exists() and store.runs().empty
    store.write(*frames(["x"]))
    assert (store.path / "config.yaml").is_file()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        store = Store(tmp_path / "s", "experiment: s\n")
        store.write(*frames(["a"]))
    finally:
        os.umask(old)
    files = [store.path / "config.yaml", *parts(store, "runs"), *parts(store, "curves"), store.path / ".lock"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {mode}


def test_one_byte_corruption_in_data_pages_is_never_read_silently(tmp_path):
    rng = np.random.default_rng(0)
    store = Store(tmp_path)
    ids = [f"r{i}" for i in range(50)]
    runs, curves = frames(ids, steps=40)
    curves[CURVE_COLUMNS[2:]] = rng.random((len(curves), len(CURVE_COLUMNS) - 2))
    store.write(runs, curves)
    path = parts(store, "curves")[0]
    clean = path.read_bytes()
    meta = pq.ParquetFile(path).metadata
    spans = []
    for rg in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(rg).column(c)
            start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
            spans.append((start, start + col.total_compressed_size))
    expected = store.curves()
    tries = detected = 0
    for _ in range(200):
        lo, hi = spans[rng.integers(len(spans))]
        pos = int(rng.integers(lo, hi))
        broken = bytearray(clean)
        broken[pos] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(broken))
        tries += 1
        try:
            got = store.curves()
        except StoreError as e:
            detected += 1
            assert "corrupt" in str(e) and str(path) in str(e)
            continue
        pd.testing.assert_frame_equal(got, expected)  # a flip that changed nothing may pass, never a changed value
    assert detected >= 0.9 * tries


def test_a_file_with_other_columns_is_not_a_store_file(tmp_path):
    store = Store(tmp_path)
    store.write(*frames(["a"]))
    pd.DataFrame({"a": [1], "b": [2]}).to_parquet(store.runs_path / "part-99999999999999999999-0-x.parquet")
    with pytest.raises(StoreError, match="not a sparselearn store file"):
        store.runs()


def test_curves_missing_means_not_done(tmp_path):
    store = Store(tmp_path)
    store.write(*frames(["a", "b"]))
    store.write(*frames(["c"], status="failed", steps=0))
    assert set(store.stored_status()) == {"a", "b", "c"}
    for p in parts(store, "curves"):
        p.unlink()
    view = StoreView(store)
    view.refresh()
    assert view.done() == {"c"} and view.done(retry_failed=True) == set()
    assert set(store.stored_status()) == {"c"}


def test_check_writable_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=f"{blocker}: is a file"):
        check_writable(blocker / "results" / "exp")
    with pytest.raises(StoreError, match="file name too long"):
        check_writable(tmp_path / ("x" * 300))
    check_writable(tmp_path / "new" / "dir")
    assert not (tmp_path / "new").exists()


@pytest.fixture
def shared_dir():
    """A directory another user can enter (pytest's own temporary root is private)."""
    path = Path(tempfile.mkdtemp(prefix="sl-shared-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _as_nobody(fn) -> str:
    """`fn()` in a forked child running as the unprivileged user 'nobody' (root reads
    everything); returns what it returned, or the exception as text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover — the child
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                text = f"returned {fn()!r}"
            except Exception as e:  # noqa: BLE001
                text = f"{type(e).__name__}: {e}"
            os.write(w, text.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return text


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_permission_denied_is_said_and_no_advice_to_move(shared_dir):
    store = Store(shared_dir / "s")
    store.write(*frames(["a"]))
    os.chmod(parts(store, "runs")[0], 0o600)
    text = _as_nobody(lambda: len(load_results(store.path)))
    assert text.startswith("StoreError") and "permission denied" in text
    assert str(parts(store, "runs")[0]) in text and "move" not in text and "delete" not in text
    os.chmod(parts(store, "runs")[0], 0o644)  # what the store writes under umask 022: readable by all
    assert _as_nobody(lambda: len(load_results(store.path))) == "returned 1"


def test_load_results_imports_no_jax(tmp_path):
    store = Store(tmp_path / "exp" / "h")
    store.write(*frames(["a", "b"]))
    code = ("import sparselearn as sl, sys\n"
            f"df = sl.load_results({str(tmp_path / 'exp')!r})\n"
            "assert len(df) == 2, df\n"
            "assert 'jax' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_leases_block_live_holders_and_pass_from_dead_ones(tmp_path, monkeypatch):
    store = Store(tmp_path)
    assert store.claim("g1", "me")
    assert store.claim("g1", "me")              # a holder may renew its own
    assert not store.claim("g1", "other")       # this process is alive
    lease = json.loads((tmp_path / ".leases" / "g1.json").read_text())
    assert lease["pid"] == os.getpid() and lease["token"] == "me" and {"host", "heartbeat"} <= set(lease)
    store.release("g1", "other")                # not the holder: nothing happens
    assert not store.claim("g1", "other")
    store.release("g1", "me")
    assert store.claim("g1", "other")

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".leases" / "g2.json").write_text(json.dumps(
        {"token": "gone", "pid": dead.pid, "host": lease["host"], "heartbeat": time.time()}))
    assert store.claim("g2", "me")              # same host, process gone
    reused = {"token": "gone", "pid": os.getpid(), "host": lease["host"], "heartbeat": time.time()}
    (tmp_path / ".leases" / "g4.json").write_text(json.dumps({**reused, "started": lease["started"] - 1}))
    assert store.claim("g4", "me")              # its pid now belongs to another process (this one)
    (tmp_path / ".leases" / "g5.json").write_text(json.dumps({**reused, "started": lease["started"]}))
    assert not store.claim("g5", "me")          # the same process, still running
    (tmp_path / ".leases" / "g5.json").unlink()
    (tmp_path / ".leases" / "g3.json").write_text(json.dumps(
        {"token": "far", "pid": 1, "host": "elsewhere", "heartbeat": time.time()}))
    assert not store.claim("g3", "me")          # another host, fresh heartbeat
    (tmp_path / ".leases" / "g3.json").write_text(json.dumps(
        {"token": "far", "pid": 1, "host": "elsewhere", "heartbeat": time.time() - st.LEASE_TIMEOUT_S - 1}))
    assert store.claim("g3", "me")              # heartbeat too old
    monkeypatch.setattr(st, "HEARTBEAT_S", 0.05)
    before = json.loads((tmp_path / ".leases" / "g3.json").read_text())["heartbeat"]
    with store.heartbeat("g3", "me"):
        time.sleep(0.3)
    assert json.loads((tmp_path / ".leases" / "g3.json").read_text())["heartbeat"] > before
    store.release(None, "me")
    assert sorted(p.name for p in (tmp_path / ".leases").iterdir()) == ["g1.json"]


def test_a_part_rewritten_between_listing_and_reading_loses_no_run(tmp_path, writer_between_listing_and_reading):
    """--retry-failed stores X1 again while X2 stays failed: their part is rewritten without X1
    (to a new name, the old one removed), so a reader that listed it lists again."""
    writer, reader = Store(tmp_path), Store(tmp_path)
    writer.write(*frames(["X1", "X2"], status="failed", steps=0))
    view = StoreView(writer)
    view.refresh(full=True)
    writer_between_listing_and_reading(reader, lambda: writer.write(*frames(["X1"]), view.holding(["X1"])))
    got = reader.runs()
    assert dict(zip(got["run_id"], got["status"])) == {"X1": "ok", "X2": "failed"}


def test_runs_left_in_a_rewritten_part_are_not_fresh_for_force(tmp_path):
    """--force: group A's write rewrites the part that also holds B; B was stored before the
    sweep, so it is still to train."""
    store = Store(tmp_path)
    store.write(*frames(["A", "B"]))
    view = StoreView(store)
    view.refresh(full=True)
    runs, curves = frames(["A"])
    for part in store.write(runs, curves, view.holding(["A"])):
        view.add(part, **{part.parent.name.removesuffix(".parquet"): {"runs": runs, "curves": curves}[
            part.parent.name.removesuffix(".parquet")]})
    view.refresh()
    assert any("~" in p.name for p in parts(store, "runs"))
    assert view.done(fresh_only=True) == {"A"} and view.done() == {"A", "B"}


@pytest.mark.parametrize("mask", [0o002, 0o027])
def test_the_umask_is_read_without_changing_it(mask, monkeypatch):
    old = os.umask(mask)
    try:
        calls = []
        monkeypatch.setattr(st.os, "umask", lambda m: calls.append(m) or old)
        assert st._umask() == mask and not calls   # read from /proc, never set (on Linux)
    finally:
        os.umask(old)


def test_a_rerun_killed_before_its_runs_part_leaves_no_old_run_row_beside_new_curves(tmp_path, monkeypatch):
    """--retry-failed of X, killed after the new curves part: X has no run row (a rerun trains it),
    never the old failed row with the new curves; Y, in the same old part, is untouched."""
    store = Store(tmp_path)
    store.write(*frames(["X", "Y"], status="failed", steps=0))
    view = StoreView(store)
    view.refresh(full=True)
    real = st.write_parquet

    def killed_at_runs(df, path):
        if path.parent.name == "runs.parquet":
            raise KeyboardInterrupt
        real(df, path)

    monkeypatch.setattr(st, "write_parquet", killed_at_runs)
    with pytest.raises(KeyboardInterrupt):
        store.write(*frames(["X"]), view.holding(["X"]))
    monkeypatch.setattr(st, "write_parquet", real)
    runs, curves = load_results(tmp_path, curves=True)
    assert dict(zip(runs["run_id"], runs["status"])) == {"Y": "failed"} and set(curves["run_id"]) <= {"Y"}
    fresh = StoreView(store)
    fresh.refresh()
    assert fresh.done() == {"Y"}   # X is trained again


def test_a_heartbeat_that_cannot_write_warns_once(tmp_path, monkeypatch):
    store = Store(tmp_path)
    assert store.claim("g", "me")
    monkeypatch.setattr(st, "HEARTBEAT_S", 0.02)

    def full(self, key, token):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Store, "beat", full)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with store.heartbeat("g", "me"):
            time.sleep(0.2)
    lapsing = [w for w in caught if "cannot refresh the lease on group g" in str(w.message)]
    assert len(lapsing) == 1 and "No space left" in str(lapsing[0].message)


def test_load_results_gives_each_run_once_across_stores_alike_but_for_their_sweep(tmp_path, tiny):
    """Going from 1 seed to 3, then listing seeds [1, 0], trains into three stores (the sweep is in
    the config hash): load_results counted seed 0 three times and seed 1 twice, weighting seeds by
    how often they were rerun. A store whose config differs otherwise keeps its runs."""
    import dataclasses

    from sparselearn import config
    from sparselearn.sweeps import run

    for seeds in (1, 3, [1, 0]):
        run(config.override(tiny, sweep={"seeds": seeds}), str(tmp_path), progress=False)
    runs, curves = load_results(tmp_path / "tiny", curves=True)
    assert len(runs) == 2 * 3 and not runs.duplicated(["grid", "seed"]).any()
    assert set(curves["run_id"]) == set(runs["run_id"])
    other = dataclasses.replace(tiny, train=dataclasses.replace(tiny.train, lr=0.2))
    run(config.override(other, sweep={"seeds": 1}), str(tmp_path), progress=False)
    assert len(load_results(tmp_path / "tiny")) == 2 * 3 + 2
