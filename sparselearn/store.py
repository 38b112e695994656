"""The results store: results/<experiment>/<config-hash>/{config.yaml, runs.parquet/, curves.parquet/},
plus traces.parquet/ for experiments that record arrays (`train.record`).

`runs.parquet`, `curves.parquet` and `traces.parquet` are directories of append-only part files
(`part-<time>-<pid>-<random>.parquet`), so storing a group costs the same however many groups
are stored, and `pandas.read_parquet(store / "runs.parquet")` still reads a whole table. A
store written as two single files (the earlier layout) is read as it is and converted on its
first write. Every write happens under the store's file lock and is atomic (temporary file,
then `os.replace`; a later writer removes those a killed one left), traces and curves before
runs: a run row appears only once its curve (and trace) rows exist, and a sweep killed
mid-group loses only that group. When parts hold the same run_id, the later part
wins (`--force`, `--retry-failed`). Files carry Parquet page checksums, verified on read.

Several processes may run the same sweep on one store: each claims a group through a lease
(`.leases/<group>.json`: pid, host, heartbeat) before training it, so they split the work.

Reading needs neither jax nor the config machinery.

Example:
    >>> cfg = sparselearn.config.load("configs/quickstart.yaml")
    >>> store = Store.create("results", cfg)     # nothing is written until the first group
    >>> store.path.exists()
    False
    >>> store.write(runs_df, curves_df)          # doctest: +SKIP
    >>> load_results("results/quickstart")       # every run of an experiment, all config hashes  # doctest: +SKIP
    >>> trace_array(load_traces("results/hp_3"), "first_layer")   # (run_ids, steps, (R, P, n))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from filelock import FileLock

from sparselearn.schema import CURVE_COLUMNS, RUN_COLUMNS, RUN_DTYPES, TRACE_COLUMNS

if TYPE_CHECKING:
    from sparselearn.config import Experiment

#: table name → (all columns, columns a file must have to be one of ours)
TABLES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "runs": (RUN_COLUMNS, ("run_id", "status")),
    "curves": (CURVE_COLUMNS, ("run_id", "step")),
    "traces": (TRACE_COLUMNS, ("run_id", "step", "name")),
}
#: statuses of runs with curves (a rerun keeps them, and failed runs too; `--retry-failed` redoes
#: the failed and the diverged ones)
KEPT = ("ok", "diverged")
#: a lease whose heartbeat is older than this is taken over (holders refresh it every HEARTBEAT_S)
LEASE_TIMEOUT_S = 120.0
HEARTBEAT_S = 10.0
#: the part a single-file table becomes on its first write (`Store._to_parts`)
LEGACY_PART = f"part-{0:020d}-legacy.parquet"
#: listings a read tries while writers remove the files it listed (see `Store.read`)
READ_TRIES = 5
#: `_write_atomic`'s temporary files: `.<name>.<mkstemp's 8 characters>.tmp`
TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
#: in the store's directory while a writer holds the lock: found on taking it, its writer was killed
WRITING = ".writing"


class StoreError(RuntimeError):
    """A results directory that cannot be read or written (missing, corrupt, not a store, no permission)."""


def _umask() -> int:
    """The process's umask, read where Linux shows it: setting it to read it back (the only
    portable way) changes it for a moment for every thread, whose files would get that mask."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _os_error(e: OSError, path: Path, doing: str) -> StoreError:
    """One line naming the path: permission problems never advise moving data."""
    if isinstance(e, PermissionError) or e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreError(f"{path}: permission denied ({doing})")
    if e.errno == errno.ENAMETOOLONG:
        return StoreError(f"{path}: file name too long ({doing})")
    if e.errno in (errno.ENOTDIR, errno.EEXIST) and not Path(path).is_dir():
        return StoreError(f"{path}: a file is in the way, a directory is needed ({doing})")
    return StoreError(f"{path}: {e.strerror or e} ({doing})")


def check_writable(path: str | Path, needed_for: str | Path | None = None) -> None:
    """Raise StoreError unless the directory `path` exists and is writable or can be created
    (the error names `needed_for`, a file to be written in it, when given). Creates nothing."""
    path = Path(path).absolute()
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise StoreError(f"{path}: file name too long ({len(os.fsencode(part))} bytes in one name; "
                             "the limit is 255)")
    probe = path
    while not probe.exists():
        if probe.is_symlink():  # a dangling link
            raise StoreError(f"{probe}: broken symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise StoreError(f"{probe}: is a file, not a directory (needed for {needed_for or path})")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError(f"{probe}: permission denied (cannot write results under it)")


def _arrow(df: pd.DataFrame) -> pa.Table:
    """`df` as an Arrow table; all-null columns typed as strings so parts stay concatenable."""
    return _strings_for_nulls(pa.Table.from_pandas(df, preserve_index=False))


def _strings_for_nulls(table: pa.Table) -> pa.Table:
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def _write_atomic(write, path: Path) -> None:
    """Write `path` through a temporary file in its directory (`write(tmp_path)`), fsync, give it
    the umask's mode, then `os.replace`."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _os_error(e, path.parent, "writing results") from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        raise _os_error(e, path, "writing results") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """`df` to `path` atomically, with page checksums."""
    table = _arrow(df)
    _write_atomic(lambda tmp: pq.write_table(table, tmp, write_page_checksum=True), path)


def read_arrow(path: Path, table: str, columns: list[str] | None = None) -> pa.Table:
    """One store file as Arrow, checked: readable, page checksums intact, the table's key
    columns present. FileNotFoundError if it is no longer a file (a writer removed or
    converted it since it was listed)."""
    everything, required = TABLES[table]
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        names = pf.schema_arrow.names
        missing = [c for c in required if c not in names]
        if missing:
            raise StoreError(f"{path}: not a sparselearn store file (no {', '.join(missing)} column; "
                             f"a {table} file has {', '.join(everything[:4])}, …)")
        return pf.read(columns=None if columns is None else [c for c in columns if c in names])
    except PermissionError:
        raise StoreError(f"{path}: permission denied (reading results)") from None
    except (pa.ArrowException, OSError) as e:
        if path.is_symlink() and not path.exists():   # a file annex or DVC has not fetched yet
            raise StoreError(f"{path}: broken symbolic link (a part of the {table} table)") from None
        # a part that is a directory; a single-file table becomes one when converted (read again)
        if path.name.startswith("part-") and path.exists() and not path.is_file():
            raise StoreError(f"{path}: not a regular file (a part of the {table} table)") from None
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "removed while being read", str(path)) from None
        raise StoreError(_corrupt(path, table, e)) from None


def read_parquet(path: Path, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """One store file as pandas (see `read_arrow`), with any missing schema column added empty."""
    return _frame(read_arrow(path, table, columns), table, columns)


def _frame(arrow: pa.Table, table: str, columns: list[str] | None) -> pd.DataFrame:
    try:
        df = arrow.to_pandas()
    except pa.ArrowException as e:
        raise StoreError(f"unreadable {table} table ({e})") from None
    # the table's columns in its order, whichever parts (older ones lack some) the rows came from
    order = list(dict.fromkeys([*(columns or TABLES[table][0]), *df.columns]))
    if list(df.columns) == order:
        return df
    added = [c for c in order if c not in df.columns]
    df = df.reindex(columns=order)
    typed = {c: RUN_DTYPES[c] for c in added if table == "runs" and c in RUN_DTYPES}
    return df.astype(typed) if typed else df   # a column older parts lack reads as its schema types it


def _corrupt(path: Path, table: str, e: Exception) -> str:
    lost = "their runs and curves are recomputed" if table == "runs" else \
        f"the runs whose {table} it held are recomputed"
    return (f"{path}: unreadable, corrupt parquet file ({str(e).splitlines()[0][:200]}); delete it and rerun the same "
            f"command: {lost}")


def _part_name() -> str:
    return f"part-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"


def _drop_runs(part: Path, ids: set[str]) -> None:
    """`part` without the rows of `ids`: rewritten to a new name that sorts in its place
    (`_rewritten_name`) and removed, or just removed when nothing is left. A reader that listed
    it lists again (it never reads it rewritten in place)."""
    if not part.is_file():
        return
    table = part.parent.name.removesuffix(".parquet")
    rows = read_arrow(part, table)
    # filtered as Arrow, not through pandas: the part keeps its own schema (a column it lacks
    # is not added, with a type that would clash with later parts)
    gone = pa.array(list(ids), type=rows.schema.field("run_id").type)
    kept = rows.filter(pc.invert(pc.is_in(rows["run_id"], value_set=gone)))
    if kept.num_rows == rows.num_rows:
        return
    if kept.num_rows:
        _write_atomic(lambda tmp: pq.write_table(kept, tmp, write_page_checksum=True), _rewritten_name(part))
    part.unlink()


def _rewritten_name(part: Path) -> Path:
    """Where a part rewritten without some runs goes: a new file whose name sorts right after
    `part`'s (before every later part), so the rows it keeps keep their place in `_order`."""
    stem = part.name.removesuffix(".parquet")
    return part.with_name(f"{stem}~{uuid.uuid4().hex[:8]}.parquet")


def _original(part: Path) -> Path:
    """The part that `part` is a rewrite of (`_rewritten_name`, maybe repeated); itself if none."""
    return part.with_name(part.name.split("~")[0].removesuffix(".parquet") + ".parquet")


def _combine(parts: dict[Path, pa.Table], table: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Parts (path → rows) in order as one frame; a run_id's rows come from the last part that has it."""
    tables = [t for t in parts.values() if t.num_rows]
    if not tables:
        return pd.DataFrame(columns=columns or TABLES[table][0])
    if len(tables) == 1:
        return _frame(tables[0], table, columns)
    tagged = [t.append_column("_part", pa.array(np.full(t.num_rows, i, dtype=np.int32))) for i, t in enumerate(tables)]
    try:
        df = _frame(pa.concat_tables(tagged, promote_options="permissive"), table, columns)
    except pa.ArrowException as e:
        raise StoreError(f"{table} parts do not fit together ({e}): {_clashes(parts)}") from None
    latest = df.groupby("run_id", sort=False)["_part"].transform("max")
    df = df[df["_part"] == latest]
    if table == "runs":
        df = df.drop_duplicates("run_id", keep="last")
    return df.drop(columns="_part").reset_index(drop=True)


def _clashes(parts: dict[Path, pa.Table]) -> str:
    """The columns whose types no promotion reconciles, each type with the parts that have it."""
    out = []
    for name in dict.fromkeys(n for t in parts.values() for n in t.column_names):
        by_type: dict[pa.DataType, list[str]] = {}
        for path, t in parts.items():
            if name in t.column_names:
                by_type.setdefault(t.schema.field(name).type, []).append(str(path))
        try:
            pa.unify_schemas([pa.schema([(name, t)]) for t in by_type], promote_options="permissive")
        except pa.ArrowException:
            out.append(f"column {name} is " + "; ".join(
                f"{t} in {', '.join(paths[:3])}{f' and {len(paths) - 3} more' if len(paths) > 3 else ''}"
                for t, paths in by_type.items()))
    return "; ".join(out) or "no single column to blame"


@dataclass(frozen=True)
class Store:
    """One experiment's results directory for one config hash. `config` is the resolved
    config text written as config.yaml with the first group (nothing is written before)."""

    path: Path
    config: str | None = None

    @classmethod
    def create(cls, root: str | Path, exp: "Experiment") -> "Store":
        """The store results/<experiment>/<hash>/ of `exp` (written on the first `write`)."""
        from sparselearn.config import config_hash

        return cls.at(Path(root) / exp.experiment / config_hash(exp), exp)

    @classmethod
    def at(cls, path: str | Path, exp: "Experiment | None" = None) -> "Store":
        """A store in `path` whose config.yaml is `exp` (written on the first `write`)."""
        text = None
        if exp is not None:
            from sparselearn.config import dump

            text = dump(exp)
        return cls(Path(path), text)

    @property
    def runs_path(self) -> Path:
        return self.path / "runs.parquet"

    @property
    def curves_path(self) -> Path:
        return self.path / "curves.parquet"

    def lock(self) -> FileLock:
        # the mode stated, from the umask: filelock before tox-dev/filelock#483 (Feb 2026) set 0o644
        # whatever the umask, so users of a group-shared store could not take each other's lock
        return FileLock(str(self.path / ".lock"), mode=0o666 & ~_umask())

    @contextlib.contextmanager
    def _writing(self):
        """The lock, for writes. Every temporary file in the store is written under it, with the
        marker `WRITING` present: a marker found on taking the lock was left by a killed writer,
        and so were any temporary files, which are removed then."""
        with self.lock():
            marker = self.path / WRITING
            try:
                os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                killed = False
            except FileExistsError:
                killed = True
            except OSError as e:
                raise _os_error(e, self.path, "writing results") from None
            if killed:
                _remove_temporary(self.path)
            try:
                yield
            finally:
                marker.unlink(missing_ok=True)

    def files(self, table: str) -> list[Path]:
        """The files holding `table`, oldest first: a single-file table, or its parts."""
        top = self.path / f"{table}.parquet"
        legacy = self.path / f".{table}.parquet.legacy"  # left by a conversion that was interrupted
        out = [legacy] if legacy.is_file() else []
        if top.is_file():
            return out + [top]
        if top.is_dir():
            try:
                out += sorted(p for p in top.iterdir() if p.name.startswith("part-") and p.suffix == ".parquet")
            except PermissionError:
                raise StoreError(f"{top}: permission denied (listing results)") from None
        return out

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Every stored row of `table` ("runs", "curves" or "traces"), one table (only `columns`,
        if given)."""
        wanted = None if columns is None else list(dict.fromkeys(["run_id", *columns]))  # run_id picks the part
        df = _listing_again(lambda: _combine({p: read_arrow(p, table, wanted) for p in self.files(table)},
                                             table, wanted), self.path / f"{table}.parquet")
        return df if columns is None else df[list(dict.fromkeys(columns))]

    def runs(self) -> pd.DataFrame:
        """Every stored run (an empty frame with the schema if none)."""
        return self.read("runs")

    def curves(self) -> pd.DataFrame:
        return self.read("curves")

    def stored_status(self) -> dict[str, str]:
        """run_id → status of every stored run that counts as done: failed, or ok/diverged with
        its curves stored (a run whose curves are missing is not done)."""
        view = StoreView(self)
        view.refresh()
        return {rid: status for rid, (status, _) in view.status.items()
                if status not in KEPT or rid in view.curves}

    def check(self) -> None:
        """Before any training: the store's place is writable and every stored file reads back."""
        check_writable(self.path)
        for table in TABLES:
            self.read(table)

    def _prepare(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _os_error(e, self.path, "creating the results directory") from None

    def _to_parts(self, table: str) -> Path:
        """The directory of `table`'s parts, converting a single-file table into its first part.
        A file with all-null columns is rewritten with them typed as strings, as in every part:
        a reader of the directory takes the schema of its first part."""
        top = self.path / f"{table}.parquet"
        legacy = self.path / f".{table}.parquet.legacy"
        if top.is_file():
            os.replace(top, legacy)
        top.mkdir(exist_ok=True)
        if legacy.is_file():
            try:
                nulls = any(pa.types.is_null(t) for t in pq.read_schema(legacy).types)
            except (pa.ArrowException, OSError):
                nulls = False  # moved as it is: reading it says what is wrong
            if nulls:
                rows = _strings_for_nulls(read_arrow(legacy, table))
                _write_atomic(lambda tmp: pq.write_table(rows, tmp, write_page_checksum=True), top / LEGACY_PART)
                legacy.unlink()
            else:
                os.replace(legacy, top / LEGACY_PART)
        return top

    def _superseded(self, paths: Iterable[Path]) -> list[Path]:
        """The parts among `paths` to rewrite; a single-file table (or what an interrupted
        conversion left of it) is converted, and stands for the part it became."""
        single = {self.path / name: table for table in TABLES
                  for name in (f"{table}.parquet", f".{table}.parquet.legacy")}
        out = []
        for path in paths:
            if path in single:
                self._to_parts(single[path])
                out += [p for p in self.files(single[path]) if _original(p).name == LEGACY_PART]
            elif path.parent.name.removesuffix(".parquet") in TABLES:
                out.append(path)
        return list(dict.fromkeys(out))

    def write(self, runs: pd.DataFrame, curves: pd.DataFrame, supersede: Iterable[Path] = (),
              traces: pd.DataFrame | None = None) -> list[Path]:
        """Store one group's rows (replacing, by run_id, rows stored before), atomically and under
        the lock: traces and curves first, then runs. `supersede` names earlier parts (or single-file
        tables) that may hold these run_ids; they are rewritten without them (readers prefer the
        later part in any case). Returns the parts written."""
        self._prepare()
        written = []
        try:
            with self._writing():
                cfg = self.path / "config.yaml"
                if self.config is not None and not cfg.exists():
                    text = self.config
                    _write_atomic(lambda tmp: Path(tmp).write_text(text), cfg)
                ids = set(runs["run_id"])
                supersede = self._superseded(supersede)
                # the old run rows go first: killed before the new runs part, these runs have no
                # run row (their curves are orphans, left out by readers) and a rerun trains
                # them, rather than an old run row standing beside the new curves
                for old in supersede:
                    if old.parent.name == "runs.parquet":
                        _drop_runs(old, ids)
                for table, df in (("traces", traces), ("curves", curves), ("runs", runs)):
                    if df is not None and len(df):
                        part = self._to_parts(table) / _part_name()
                        write_parquet(df.reindex(columns=TABLES[table][0]) if table == "runs" else df, part)
                        written.append(part)
                for old in supersede:
                    if old.parent.name != "runs.parquet" and old not in written:
                        _drop_runs(old, ids)
        except OSError as e:
            raise _os_error(e, self.path, "writing results") from None
        return written

    # -- leases: several processes splitting one sweep -----------------------------------------
    def _lease_path(self, key: str) -> Path:
        return self.path / ".leases" / f"{key}.json"

    def claim(self, key: str, token: str) -> bool:
        """Take the lease on `key` for `token` unless a live holder has it (one that refreshed it
        within LEASE_TIMEOUT_S and, on this host, whose process is alive)."""
        self._prepare()
        path = self._lease_path(key)
        with self._writing():
            holder = _read_lease(path)
            if holder is not None and holder.get("token") != token and _alive(holder):
                return False
            path.parent.mkdir(exist_ok=True)
            _write_lease(path, token)
        return True

    def beat(self, key: str, token: str) -> None:
        """Refresh the heartbeat of a lease `token` holds."""
        path = self._lease_path(key)
        with self._writing():
            holder = _read_lease(path)
            if holder is not None and holder.get("token") == token:
                _write_lease(path, token)

    def release(self, key: str | None, token: str) -> None:
        """Drop the lease on `key` (every lease, if None) held by `token`."""
        leases = self.path / ".leases"
        if not leases.is_dir():
            return
        paths = [self._lease_path(key)] if key is not None else list(leases.glob("*.json"))
        with self.lock():
            for path in paths:
                holder = _read_lease(path)
                if holder is not None and holder.get("token") == token:
                    path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def heartbeat(self, key: str, token: str):
        """Keep the lease on `key` fresh (a background thread) while the block runs."""
        stop = threading.Event()

        def loop():
            warned = False
            while not stop.wait(HEARTBEAT_S):
                try:
                    self.beat(key, token)
                except Exception as e:  # noqa: BLE001 — training goes on; the lease may lapse
                    if not warned:
                        warnings.warn(f"{self.path}: cannot refresh the lease on group {key} ({e}); if this "
                                      f"lasts {LEASE_TIMEOUT_S:g} s another process may train it too",
                                      RuntimeWarning, stacklevel=1)
                        warned = True

        thread = threading.Thread(target=loop, daemon=True, name=f"lease-{key}")
        thread.start()
        try:
            yield
        finally:
            stop.set()


def _remove_temporary(root: Path) -> None:
    """Remove `_write_atomic`'s temporary files from the directories of the store `root` (best
    effort). Only with its lock held and before writing under it: then none is being written."""
    for folder in (root, root / ".leases", *(root / f"{table}.parquet" for table in TABLES)):
        with contextlib.suppress(OSError):  # absent, a single-file table, or unreadable
            with os.scandir(folder) as entries:
                stale = [e.path for e in entries if TEMPORARY.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
            for path in stale:
                with contextlib.suppress(OSError):
                    os.remove(path)


def _read_lease(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treated as a dead holder


def _write_lease(path: Path, token: str) -> None:
    text = json.dumps({"token": token, "pid": os.getpid(), "started": _started(os.getpid()),
                       "host": socket.gethostname(), "heartbeat": time.time()})
    _write_atomic(lambda tmp: Path(tmp).write_text(text), path)


def _alive(holder: dict) -> bool:
    if time.time() - float(holder.get("heartbeat", 0)) > LEASE_TIMEOUT_S:
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        pid = int(holder.get("pid", -1))
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    # the pid may have been given to another process since (a restarted container's rerun
    # often gets the dead holder's): alive only if it is the same process, started when it was
    started = _started(pid)
    return holder.get("started") is None or started is None or started == holder["started"]


def _started(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot, /proc/<pid>/stat), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class StoreView:
    """What a store holds, read incrementally (parts already read are not read again): for each
    run_id its status and the part holding it, and which run_ids have curves. Mutable, one per
    process; `fresh` marks entries from parts written after the view was made.

    Example:
        >>> store = Store.create("results", sparselearn.config.load("configs/quickstart.yaml"))
        >>> view = StoreView(store); view.refresh()
        >>> view.done(retry_failed=False)        # run_ids a rerun skips: none stored yet
        set()
    """

    def __init__(self, store: Store, traced: bool = False):
        self.store = store
        self.traced = traced   # the experiment records traces: a run without them is not done
        self.seen: set[Path] = set()
        self.initial: set[Path] | None = None
        self.status: dict[str, tuple[str, Path]] = {}
        self.curves: dict[str, Path] = {}
        self.traces: dict[str, Path] = {}

    def refresh(self, full: bool = False) -> None:
        """Read every part not read yet, checking it (readable, the right columns; with `full`
        every column's pages, else only the columns needed here)."""
        _listing_again(lambda: self._read_new(full), self.store.path)

    def _read_new(self, full: bool) -> None:
        files = {t: self.store.files(t) for t in TABLES}
        if self.initial is None:
            self.initial = {p for fs in files.values() for p in fs}
        originals = {_original(q) for q in self.initial}
        for table, paths in files.items():
            for p in paths:
                if p in self.seen:
                    continue
                if _original(p).name == LEGACY_PART and self.initial & {
                        self.store.path / f"{table}.parquet", self.store.path / f".{table}.parquet.legacy"}:
                    self.initial.add(p)  # a single file of the initial state, converted (and rewritten) since
                    originals.add(_original(p))
                if "~" in p.name and _original(p) in originals:
                    self.initial.add(p)  # a part of the initial state, rewritten since without some runs
                cols = None if full else ["run_id", "status"] if table == "runs" else ["run_id"]
                df = read_parquet(p, table, cols)
                self.add(p, **{table: df})

    def add(self, part: Path, runs: pd.DataFrame | None = None, curves: pd.DataFrame | None = None,
            traces: pd.DataFrame | None = None) -> None:
        """Record rows of `part` (its name orders it among parts; the latest wins)."""
        self.seen.add(part)
        if runs is not None:
            for rid, status in zip(runs["run_id"], runs["status"]):
                old = self.status.get(rid)
                if old is None or _order(old[1]) <= _order(part):
                    self.status[rid] = (status, part)
        for held, df in ((self.curves, curves), (self.traces, traces)):
            if df is not None:
                for rid in pd.unique(df["run_id"]):
                    old = held.get(rid)
                    if old is None or _order(old) <= _order(part):
                        held[rid] = part

    def done(self, retry_failed: bool = False, fresh_only: bool = False) -> set[str]:
        """run_ids a rerun skips: ok/diverged with curves (and, `traced`, traces) stored, failed
        ones, and with `retry_failed` neither failed nor diverged ones (those stored again since
        the view was made count as done). With `fresh_only` only what was stored after the view
        was made counts (for `--force`)."""
        initial = self.initial or set()
        out = set()
        for rid, (status, part) in self.status.items():
            fresh = part not in initial
            missing = rid not in self.curves or (self.traced and rid not in self.traces)
            if (fresh_only and not fresh) or (status in KEPT and missing):
                continue
            if status == "ok" or not retry_failed or fresh:
                out.add(rid)
        return out

    def holding(self, ids: Iterable[str]) -> set[Path]:
        """Parts that hold rows of any of `ids`."""
        out = set()
        for rid in ids:
            if rid in self.status:
                out.add(self.status[rid][1])
            for held in (self.curves, self.traces):
                if rid in held:
                    out.add(held[rid])
        return out


def _listing_again(read, path: Path):
    """`read()` (which lists files under `path` and reads them), listed and read again while a
    file it listed is gone: a writer removes a part it superseded as a whole (its rows are in a
    later part) and converts a single-file table by moving it. StoreError after READ_TRIES."""
    for _ in range(READ_TRIES):
        try:
            return read()
        except FileNotFoundError:
            continue
    raise StoreError(f"{path}: files kept disappearing while read ({READ_TRIES} listings); "
                     "is something deleting results?")


def _order(part: Path) -> tuple[int, str]:
    """Parts sort by name (time first); a single-file table comes before every part."""
    return (0 if not part.name.startswith("part-") else 1, part.name)


#: what makes a directory a store: its runs, or the file a conversion cut short left (`Store._to_parts`)
RUNS_NAMES = ("runs.parquet", ".runs.parquet.legacy")


def resolve(path: str | Path) -> list[Path]:
    """The store directories under `path`: itself if it holds runs.parquet (or what an
    interrupted conversion left of it), else its children that do (results/<experiment> →
    every config hash), newest first."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such results directory")
    if any((path / name).exists() for name in RUNS_NAMES):
        return [path]
    for depth in ("*/", "*/*/"):
        found = {p.parent: p for name in reversed(RUNS_NAMES) for p in path.glob(depth + name)}
        if found:
            return sorted(found, key=lambda d: -_mtime(found[d]))
    raise StoreError(f"{path}: no runs.parquet here or one or two levels below (run `sparselearn run CONFIG` "
                     "first)")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # converted meanwhile
        return 0.0


def load_results(path: str | Path, curves: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Every stored run under `path` (a store, an experiment or a results root), as one
    frame; with `curves=True` also the curves of those runs. Imports no jax.

    Example:
        >>> runs, curves = load_results("results/quickstart", curves=True)     # doctest: +SKIP
    """
    stores = [Store(p) for p in resolve(path)]
    frames = [s.runs() for s in stores]
    runs = _concat(frames, "runs")
    configs = [_without_sweep(s.path) for s in stores] if len(stores) > 1 else []
    if len(set(configs)) < len(configs):   # some stores alike but for their sweep
        alike = np.concatenate([np.full(len(f), c if c is not None else f"?{i}", dtype=object)
                                for i, (f, c) in enumerate(zip(frames, configs)) if len(f)])
        runs = one_per_run(runs, alike, points=_resolved_points(runs, alike))
    if not curves:
        return runs
    return runs, rows_of_runs(_concat([s.curves() for s in stores], "curves"), runs["run_id"], stores=len(stores))


def _without_sweep(store: Path) -> str | None:
    """The store's config without its sweep and executor (JSON), or None when unreadable: stores
    alike but for their sweep (8 seeds, then 16) hold the same runs where their sweeps overlap."""
    import yaml

    try:
        cfg = yaml.safe_load((store / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):   # ValueError: not UTF-8
        return None
    if not isinstance(cfg, dict):
        return None
    return json.dumps({k: v for k, v in cfg.items() if k not in ("sweep", "executor")}, sort_keys=True, default=repr)


def one_per_run(runs: pd.DataFrame, alike=None, points=None) -> pd.DataFrame:
    """`runs` (newest store first) with one row per grid point and seed, among the rows whose
    `alike` (per row; default all) is equal: stores alike but for their sweep hold the same run
    twice where their sweeps overlap (seeds 0–1 in a store of 2 seeds and one of 3), trained
    alike. An ok row is kept before a failed or diverged one, else the first (the newest store's).
    `points` (per row, JSON) stands for the grid points where given (`_resolved_points`)."""
    if runs.empty or not {"grid", "seed"} <= set(runs.columns):
        return runs
    point = points if points is not None else \
        [json.dumps(json.loads(g) if isinstance(g, str) and g else {}, sort_keys=True) for g in runs["grid"]]
    rank = (runs["status"] != "ok") if "status" in runs.columns else False
    alike = 0 if alike is None else alike
    keep = runs.assign(_alike=alike, _point=point, _rank=rank)
    keep = keep.sort_values("_rank", kind="stable").drop_duplicates(["_alike", "_point", "seed"])
    return runs.loc[sorted(keep.index)].reset_index(drop=True)


def _resolved_points(runs: pd.DataFrame, alike) -> list[str]:
    """Each run's grid point (JSON) with the keys other runs alike grid set to its store's value
    of them (from `alike`, its config as JSON): a run of a store that fixes data.m = 16 is the
    point {"data.m": 16} of a store alike but for gridding data.m, the same run."""
    points = [json.loads(g) if isinstance(g, str) and g else {} for g in runs["grid"]]
    keys: dict[object, set[str]] = {}
    for p, a in zip(points, alike):
        keys.setdefault(a, set()).update(p)
    for p, a in zip(points, alike):
        try:
            base = json.loads(a) if isinstance(a, str) and not a.startswith("?") else {}
        except ValueError:
            base = {}
        for key in keys[a] - set(p):
            section, _, name = key.partition(".")
            if isinstance(base.get(section), dict) and name in base[section]:
                p[key] = base[section][name]
    return [json.dumps(p, sort_keys=True) for p in points]


def rows_of_runs(rows: pd.DataFrame, run_ids, stores: int = 1) -> pd.DataFrame:
    """The rows of `rows` (curves, traces) whose run_id is one of `run_ids`, renumbered. Readers keep
    only runs with a stored run row: a sweep killed between a group's curves and its runs leaves
    curves of runs that are not done (the rerun trains them again). Rows of several `stores`
    (newest first) keep one row per run and point: a run two hold (a copied store) has its
    rows twice, and the newest store's stay."""
    kept = rows[rows["run_id"].isin(run_ids)]
    if stores > 1:
        kept = kept.drop_duplicates([c for c in ("run_id", "step", "name") if c in kept.columns])
    return kept.reset_index(drop=True)


def _concat(frames: list[pd.DataFrame], table: str) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=TABLES[table][0])
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def load_traces(path: str | Path) -> pd.DataFrame:
    """Every stored trace row under `path` (like `load_results`): columns run_id, step, name,
    shape, values (a flat float32 array per row); empty when nothing was recorded. Imports no jax.

    Example:
        >>> traces = load_traces("results/hp_3")                     # doctest: +SKIP
        >>> run_ids, steps, w = trace_array(traces, "first_layer")   # doctest: +SKIP
    """
    stores = [Store(p) for p in resolve(path)]
    traces = _concat([s.read("traces") for s in stores if s.files("traces")], "traces")
    return rows_of_runs(traces, _concat([s.read("runs", ["run_id"]) for s in stores], "runs")["run_id"],
                        stores=len(stores))


def trace_array(traces: pd.DataFrame, name: str, run_ids=None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One recorder's traces as arrays: (run_ids, steps (P,), values (R, P, *shape)), runs in
    the order of `run_ids` (default: as stored). Runs that stopped early (`train.stop_at_eps`)
    are NaN at the steps they did not reach; P covers every stored step.

    Example:
        >>> ids, steps, norms = trace_array(load_traces(path), "unit_norms")   # (R, P, width)  # doctest: +SKIP
    """
    rows = traces[traces["name"] == name]
    if rows.empty:
        raise StoreError(f"no trace {name!r} stored (recorded: {', '.join(sorted(set(traces['name']))) or 'none'}); "
                         "add it to train.record")
    ids = list(pd.unique(rows["run_id"])) if run_ids is None else list(run_ids)
    by_run = {rid: part.sort_values("step") for rid, part in rows.groupby("run_id", sort=False)}
    missing = [rid for rid in ids if rid not in by_run]
    if missing:
        raise StoreError(f"no trace {name!r} for run(s) {', '.join(map(str, missing[:5]))}")
    steps = np.unique(np.concatenate([by_run[rid]["step"].to_numpy() for rid in ids]))
    shape = tuple(int(d) for d in by_run[ids[0]]["shape"].iloc[0])
    values = np.full((len(ids), len(steps), int(np.prod(shape, dtype=np.int64))), np.nan, dtype=np.float32)
    for i, rid in enumerate(ids):
        part = by_run[rid]
        at = np.searchsorted(steps, part["step"].to_numpy())
        values[i, at] = np.stack([np.asarray(v, dtype=np.float32) for v in part["values"]])
    return ids, steps, values.reshape(len(ids), len(steps), *shape)


def trace_frame(run_ids, steps, outputs: dict, evaluated=None) -> pd.DataFrame:
    """The trace rows of R runs from the loop's outputs `trace_<name>` (R, P, ...) at `steps` (P,);
    run i keeps its first `evaluated[i]` points (default: all P; fewer where it stopped at eps)."""
    frames = []
    for key, block in outputs.items():
        if not key.startswith("trace_"):
            continue
        block = np.asarray(block, dtype=np.float32)
        runs, points = block.shape[:2]
        counts = np.full(runs, points) if evaluated is None else np.asarray(evaluated)
        kept = (np.arange(points)[None, :] < counts[:, None]).reshape(-1)
        shape = np.asarray(block.shape[2:], dtype=np.int32)
        frames.append(pd.DataFrame({"run_id": np.repeat(np.asarray(run_ids, dtype=object), points)[kept],
                                    "step": np.tile(np.asarray(steps, dtype=np.int64), runs)[kept],
                                    "name": key.removeprefix("trace_"), "shape": [shape] * int(kept.sum()),
                                    "values": list(block.reshape(runs * points, -1)[kept])}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TRACE_COLUMNS)
