"""The results store: results/<experiment>/<config-hash>/{config.yaml, runs.parquet, curves.parquet}.

Writes are per group, under a file lock, and atomic (temporary file, then `os.replace`):
curves first, then runs, so a run listed in runs.parquet always has its curve, and a
sweep killed mid-group loses only that group.

Example:
    >>> store = Store.create("results", cfg)
    >>> store.done_ids()                    # run_ids already stored with status ok/diverged
    >>> load_results("results/quickstart")  # every run of an experiment, all config hashes
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

from sparselearn.config import Experiment, config_hash, dump
from sparselearn.schema import CURVE_COLUMNS, RUN_COLUMNS



class StoreError(RuntimeError):
    """A results directory that cannot be read (missing, corrupt or not a store)."""


def _atomic_write(df: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as e:
        raise StoreError(f"{path}: unreadable parquet file ({e}); move it away to recompute") from None


@dataclass(frozen=True)
class Store:
    """One experiment's results directory for one config hash."""

    path: Path

    @classmethod
    def create(cls, root: str | Path, exp: Experiment) -> "Store":
        """results/<experiment>/<hash>/ with the resolved config.yaml written (atomically)."""
        return cls.at(Path(root) / exp.experiment / config_hash(exp), exp)

    @classmethod
    def at(cls, path: str | Path, exp: Experiment) -> "Store":
        """A store in `path` (created if needed) whose config.yaml is `exp`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        cfg = path / "config.yaml"
        if not cfg.exists():
            fd, tmp = tempfile.mkstemp(dir=path, prefix=".config.", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(dump(exp))
            os.replace(tmp, cfg)
        return cls(path)

    @property
    def runs_path(self) -> Path:
        return self.path / "runs.parquet"

    @property
    def curves_path(self) -> Path:
        return self.path / "curves.parquet"

    def lock(self) -> FileLock:
        return FileLock(str(self.path / ".lock"))

    def runs(self) -> pd.DataFrame:
        """Every stored run (empty frame with the schema if none)."""
        df = _read(self.runs_path)
        return pd.DataFrame(columns=RUN_COLUMNS) if df is None else df

    def curves(self) -> pd.DataFrame:
        df = _read(self.curves_path)
        return pd.DataFrame(columns=CURVE_COLUMNS) if df is None else df

    def stored_status(self) -> dict[str, str]:
        """run_id → status of every stored run."""
        df = self.runs()
        return dict(zip(df["run_id"], df["status"]))

    def write(self, runs: pd.DataFrame, curves: pd.DataFrame) -> None:
        """Add (or replace, by run_id) one group's rows, atomically and under the lock."""
        ids = set(runs["run_id"])
        with self.lock():
            old_curves = self.curves()
            new_curves = pd.concat([old_curves[~old_curves["run_id"].isin(ids)], curves], ignore_index=True) \
                if len(old_curves) else curves
            _atomic_write(new_curves, self.curves_path)
            old_runs = self.runs()
            new_runs = pd.concat([old_runs[~old_runs["run_id"].isin(ids)], runs], ignore_index=True) \
                if len(old_runs) else runs
            _atomic_write(new_runs, self.runs_path)


def resolve(path: str | Path) -> list[Path]:
    """The store directories under `path`: itself if it holds runs.parquet, else its
    children that do (results/<experiment> → every config hash), newest first."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such results directory")
    if (path / "runs.parquet").exists():
        return [path]
    found = sorted((p.parent for p in path.glob("*/runs.parquet")), key=lambda p: -p.stat().st_mtime)
    if not found:
        found = sorted((p.parent for p in path.glob("*/*/runs.parquet")), key=lambda p: -p.stat().st_mtime)
    if not found:
        raise StoreError(f"{path}: no runs.parquet here or below (run `sparselearn run CONFIG` first)")
    return found


def load_results(path: str | Path, curves: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Every stored run under `path` (a store, an experiment or a results root), as one
    frame; with `curves=True` also the matching curves frame."""
    stores = [Store(p) for p in resolve(path)]
    runs = pd.concat([s.runs() for s in stores], ignore_index=True)
    if not curves:
        return runs
    return runs, pd.concat([s.curves() for s in stores], ignore_index=True)
