"""Edge cases of the kept programs (`sparselearn.runtime`): a corrupt or unreadable file is
compiled again, never loaded or raised; a write that fails leaves nothing behind. And of the
results store (`sparselearn.store`): temporary files a killed write left are removed by a later
write, never one another writer is still writing."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sparselearn import runtime
from sparselearn import store as st
from sparselearn.schema import CURVE_COLUMNS, RUN_COLUMNS
from sparselearn.store import Store, trace_frame


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """A program kept under tmp_path: (jitted, its argument, the kept file, its serialized
    executable)."""
    import jax
    from jax.experimental import serialize_executable

    monkeypatch.setattr(runtime, "programs_dir", lambda environ=os.environ: tmp_path)
    runtime._LOADED.clear()
    jitted = jax.jit(lambda x: 3 * x - 1)
    x = np.arange(5.0, dtype=np.float32)
    serialized = []
    real = serialize_executable.serialize
    with monkeypatch.context() as m:
        m.setattr(serialize_executable, "serialize", lambda c: serialized.append(real(c)) or serialized[-1])
        runtime.executable(jitted, (x,), ("edges", 0))
    runtime._LOADED.clear()
    path = tmp_path / f"{runtime.program_key(('edges', 0), (x,))}.bin"
    assert path.is_file() and len(serialized) == 1
    yield jitted, x, path, serialized[0][0]
    runtime._LOADED.clear()


def test_a_kept_program_with_a_flipped_byte_is_never_loaded(kept, monkeypatch):
    """XLA loads a serialized program with one byte flipped in its code without complaint, and
    running it then hangs or kills the process: such a file is compiled again instead."""
    from jax.experimental import serialize_executable

    jitted, x, path, payload = kept
    data = bytearray(path.read_bytes())
    start = data.index(payload)
    data[start + len(payload) // 2] ^= 0xFF  # inside the executable's code
    path.write_bytes(bytes(data))
    corrupt = bytes(data[start:start + len(payload)])
    loads = []
    real = serialize_executable.deserialize_and_load
    monkeypatch.setattr(serialize_executable, "deserialize_and_load",  # the corrupt one not run: it may crash
                        lambda p, *a, **k: loads.append(p) or (None if p == corrupt else real(p, *a, **k)))
    out = runtime.executable(jitted, (x,), ("edges", 0))(x)
    assert not loads  # the corrupt payload never reached XLA
    assert np.array_equal(out, 3 * x - 1)
    assert path.read_bytes() != bytes(data)  # replaced by the fresh compile
    runtime._LOADED.clear()
    assert np.array_equal(runtime.executable(jitted, (x,), ("edges", 0))(x), 3 * x - 1)
    assert len(loads) == 1 and loads[0] != corrupt  # the fresh file loads


def test_a_broken_kept_program_that_cannot_be_removed_is_compiled_not_raised(kept, monkeypatch):
    """A cache shared read-only: the broken file stays, the program compiles."""
    jitted, x, path, _ = kept
    path.write_bytes(b"truncated")
    real = Path.unlink

    def unlink(self, missing_ok=False):
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    assert np.array_equal(runtime.executable(jitted, (x,), ("edges", 0))(x), 3 * x - 1)


def test_a_kept_program_whose_write_fails_leaves_no_temporary_file(kept, monkeypatch):
    """A full disk: the program runs, is not kept, and no partial file is left in the cache."""
    jitted, x, path, _ = kept
    path.unlink()
    real = os.replace

    def full(src, dst, *args, **kwargs):
        if str(dst) == str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    assert np.array_equal(runtime.executable(jitted, (x,), ("edges", 0))(x), 3 * x - 1)
    assert list(path.parent.iterdir()) == []


def test_the_program_key_follows_the_devices_runtime_version(monkeypatch):
    """A CUDA or ROCm update changes what a kept GPU program may run on: a new key."""
    import jax
    import numpy as np

    from sparselearn import runtime

    args = (np.zeros(3, np.float32),)
    before = runtime.program_key(("p",), args)
    client = type("Client", (), {"platform_version": "cuda 99.0"})()
    device = type("Device", (), {"platform": "cpu", "device_kind": "cpu", "id": 0, "client": client})()
    monkeypatch.setattr(jax, "devices", lambda *a: [device])
    assert runtime.program_key(("p",), args) != before


def group(ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One group's runs, curves (3 steps) and traces (2 points) frames, no training."""
    runs = pd.DataFrame([{**{c: None for c in RUN_COLUMNS}, "run_id": r, "status": "ok", "test_error": 0.5}
                         for r in ids], columns=RUN_COLUMNS).astype({"test_error": "float64"})
    curves = pd.DataFrame([{"run_id": r, "step": s, **{c: 0.25 for c in CURVE_COLUMNS[2:]}}
                           for r in ids for s in range(3)], columns=CURVE_COLUMNS)
    traces = trace_frame(ids, [0, 10], {"trace_w": np.ones((len(ids), 2, 3), np.float32)},
                         evaluated=[2] * len(ids))
    return runs, curves, traces


def tables(store: Store) -> dict[str, pd.DataFrame]:
    return {t: store.read(t).sort_values(["run_id", *(["step"] if t != "runs" else [])], ignore_index=True)
            for t in st.TABLES}


def left_by_a_kill(folder: Path, name: str) -> Path:
    """The temporary file `_write_atomic` makes for `folder / name`, as a write killed before
    its `os.replace` leaves it."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.write(fd, b"PAR1 half a part")
    os.close(fd)
    return Path(tmp)


@pytest.mark.parametrize("next_write", ["group", "lease"])
def test_temporary_files_a_killed_write_left_are_removed_by_the_next_write(tmp_path, next_write):
    """A sweep resumed after a kill: every directory the store writes in (its own: config.yaml
    and the single-file tables; the part directories; the leases) loses the temporary files,
    and the stored tables are unchanged. Files not of `_write_atomic`'s pattern stay."""
    store = Store(tmp_path / "s", "experiment: s\n")
    runs, curves, traces = group(["a", "b"])
    store.write(runs, curves, traces=traces)
    assert store.claim("g0", "t0")
    before = tables(store)
    stale = [left_by_a_kill(store.path, "config.yaml"), left_by_a_kill(store.path, "runs.parquet"),
             left_by_a_kill(store.path / ".leases", "g0.json")]
    stale += [left_by_a_kill(store.path / f"{t}.parquet", st._part_name()) for t in st.TABLES]
    foreign = [store.path / "notes.tmp", store.path / "runs.parquet" / ".part-1.parquet.123-abcdef12.tmp"]
    for path in foreign:
        path.write_text("not the store's")
    assert all(p.is_file() for p in stale)
    (store.path / st.WRITING).touch()  # the killed writer held the lock
    if next_write == "group":
        store.write(*group(["c"])[:2])
    else:
        assert store.claim("g1", "t1")
    assert [p for p in stale if p.exists()] == []
    assert all(p.is_file() for p in foreign)
    assert not (store.path / st.WRITING).exists()
    after = tables(store)
    for table, rows in before.items():
        kept = after[table][after[table]["run_id"] != "c"].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, rows)
    assert st.load_results(store.path)["run_id"].tolist() == (["a", "b", "c"] if next_write == "group" else ["a", "b"])


def test_a_write_killed_in_another_process_leaves_nothing_after_the_next_write(tmp_path):
    """A process killed (SIGKILL) inside its write while this one keeps writing to the store:
    this one's next write removes the temporary file the killed one left."""
    store = Store(tmp_path / "s")
    store.write(*group(["a"])[:2])  # this process has written to the store already
    code = ("import os, signal, sys, pandas as pd, pyarrow.parquet as pq; from sparselearn.store import Store\n"
            "real = pq.write_table\n"
            "def killed(*a, **k):\n    real(*a, **k)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
            "pq.write_table = killed\n"
            "Store.at(sys.argv[1]).write(pd.DataFrame({'run_id': ['k'], 'status': ['ok']}), pd.DataFrame())\n")
    done = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    left = list((store.path / "runs.parquet").glob(".part-*.tmp"))
    assert len(left) == 1 and st.TEMPORARY.fullmatch(left[0].name)
    store.write(*group(["b"])[:2])
    assert list((store.path / "runs.parquet").glob(".*")) == []
    assert store.runs()["run_id"].tolist() == ["a", "b"]


def test_a_concurrent_writers_temporary_file_is_never_removed(tmp_path, monkeypatch):
    """One writer stopped inside its write (its temporary file written, not yet renamed, its
    marker present); another waits for it, and does not take that marker for a killed writer's:
    both groups land."""
    store = Store(tmp_path / "s")
    store.write(*group(["a"])[:2])
    inside, go = threading.Event(), threading.Event()
    real = pq.write_table

    def held(table, where, **kwargs):
        real(table, where, **kwargs)
        if threading.current_thread().name == "first":
            inside.set()
            assert go.wait(10)

    monkeypatch.setattr(pq, "write_table", held)
    errors = []

    def write(ids):
        try:
            Store(store.path).write(*group(ids)[:2])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    first = threading.Thread(target=write, args=(["b"],), name="first")
    first.start()
    assert inside.wait(10)
    inflight = list((store.path / "curves.parquet").glob(".part-*.tmp"))
    assert len(inflight) == 1
    second = threading.Thread(target=write, args=(["c"],), name="second")
    second.start()
    second.join(0.5)
    assert second.is_alive() and inflight[0].is_file()  # waits for the lock; the file stays
    go.set()
    first.join(10)
    second.join(10)
    assert errors == []
    assert sorted(store.runs()["run_id"]) == ["a", "b", "c"] and len(store.curves()) == 9


def test_trace_frame_keeps_every_point_by_default_whatever_the_counts():
    """Without `evaluated`, every run keeps all its points, for any number of runs and points."""
    block = np.arange(3 * 5 * 2, dtype=np.float32).reshape(3, 5, 2)
    frame = trace_frame(["a", "b", "c"], [0, 1, 2, 3, 4], {"trace_w": block})
    assert len(frame) == 15 and frame.groupby("run_id").size().tolist() == [5, 5, 5]
    np.testing.assert_array_equal(np.stack(frame["values"]), block.reshape(15, 2))
    cut = trace_frame(["a", "b", "c"], [0, 1, 2, 3, 4], {"trace_w": block}, evaluated=[5, 2, 0])
    assert cut.groupby("run_id").size().to_dict() == {"a": 5, "b": 2}
