"""Review cases of the kept programs (`sparselearn.runtime`) and the results store
(`sparselearn.store`): temporary files of an interrupted or killed program write, columns read
from several parts, the column order of stores with older parts, and long unicode names."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sparselearn import runtime
from sparselearn import store as st
from sparselearn.store import Store, StoreError, check_writable, load_results

sys.path.insert(0, str(Path(__file__).parent))
from test_store import frames  # noqa: E402


@pytest.fixture
def programs(tmp_path, monkeypatch):
    """A jitted affine map, its argument, and the file its kept program goes to (in tmp_path)."""
    import jax

    monkeypatch.setattr(runtime, "programs_dir", lambda environ=os.environ: tmp_path)
    runtime._LOADED.clear()
    x = np.arange(4.0, dtype=np.float32)
    yield jax.jit(lambda v: 5 * v + 2), x, tmp_path / f"{runtime.program_key(('review', 0), (x,))}.bin"
    runtime._LOADED.clear()


def test_an_interrupted_program_write_leaves_no_temporary_file(programs, monkeypatch):
    """Ctrl-C inside the write of a kept program: the interrupt goes on, and no partial file
    is left in the cache (nothing would ever remove it)."""
    jitted, x, path = programs
    real = os.replace

    def interrupted(src, dst, *args, **kwargs):
        if str(dst) == str(path):
            raise KeyboardInterrupt
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runtime.executable(jitted, (x,), ("review", 0))
    assert list(path.parent.iterdir()) == []


def test_temporary_files_a_killed_program_write_left_are_removed_when_it_is_written(programs):
    """A process killed inside a program's write (`os._exit` on Ctrl-C while a group compiles
    ahead) leaves its temporary file, and the program unkept: the next write of that program
    removes the old temporary file, not one another process may be writing now, nor others'."""
    jitted, x, path = programs
    stale = path.with_name(f".{path.name}.{os.getpid() + 1}-0123abcd.tmp")
    fresh = path.with_name(f".{path.name}.{os.getpid() + 2}-4567cdef.tmp")
    other = path.with_name(".0123456789abcdef0123456789abcdef.bin.1-89abcdef.tmp")
    for f in (stale, fresh, other):
        f.write_bytes(b"half a program")
    old = time.time() - 86400  # a day ago
    for f in (stale, other):
        os.utime(f, (old, old))
    assert np.array_equal(runtime.executable(jitted, (x,), ("review", 0))(x), 5 * x + 2)
    assert path.is_file() and not stale.exists()
    assert fresh.is_file() and other.is_file()


def test_reading_some_columns_of_a_store_of_several_parts(tmp_path):
    """`Store.read` with columns that leave out run_id: the same rows (each run's latest) as the
    whole table, whether the store has one part or several."""
    store = Store(tmp_path)
    store.write(*frames(["a", "b"], value=0.5))
    assert store.read("runs", ["test_error"])["test_error"].tolist() == [0.5, 0.5]
    store.write(*frames(["b", "c"], value=0.0))
    whole = store.runs()
    some = store.read("runs", ["test_error", "status", "absent"])
    assert list(some.columns) == ["test_error", "status", "absent"] and some["absent"].isna().all()
    assert some["test_error"].tolist() == whole["test_error"].tolist() == [0.5, 0.0, 0.0]
    assert store.read("curves", ["step"])["step"].tolist() == store.curves()["step"].tolist()
    assert len(store.read("curves", ["step"])) == 15


def test_a_store_with_an_older_part_has_the_schema_column_order(tmp_path):
    """Parts written before a column existed: the table still has the schema's columns in the
    schema's order, as a store without such parts has (not the new columns last)."""
    store = Store(tmp_path / "exp" / "h")
    runs, curves = frames(["x"])
    store.runs_path.mkdir(parents=True)
    store.curves_path.mkdir()
    name = "part-00000000000000000001-1-a.parquet"
    st.write_parquet(runs.drop(columns=["group_id", "error"]), store.runs_path / name)
    st.write_parquet(curves.drop(columns="drift"), store.curves_path / name)
    assert list(store.runs().columns) == st.RUN_COLUMNS  # the old part alone
    store.write(*frames(["y"]))
    got, curves = load_results(tmp_path / "exp", curves=True)
    assert list(got.columns) == st.RUN_COLUMNS and list(curves.columns) == st.CURVE_COLUMNS
    assert got["run_id"].tolist() == ["x", "y"] and got["group_id"].isna().all()


def test_a_long_unicode_name_is_measured_in_bytes(tmp_path):
    """The 255 limit is on a name's bytes: 100 CJK characters (300 bytes) are too long, and the
    message gives the figure that exceeds the limit; 85 (255 bytes) are not."""
    with pytest.raises(StoreError, match=r"file name too long \(300 bytes in one name; the limit is 255\)"):
        check_writable(tmp_path / ("日" * 100))
    check_writable(tmp_path / ("日" * 85))
    store = Store(tmp_path / ("日" * 85) / "h")
    store.write(*frames(["u"]))
    assert load_results(tmp_path / ("日" * 85))["run_id"].tolist() == ["u"]
