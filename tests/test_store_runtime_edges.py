"""Edge cases of the kept programs (`sparselearn.runtime`): a corrupt or unreadable file is
compiled again, never loaded or raised; a write that fails leaves nothing behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from sparselearn import runtime


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
                        lambda p, *a: loads.append(p) or (None if p == corrupt else real(p, *a)))
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
