"""Run an experiment: expand, skip what is stored, train group by group, store each group.

Example:
    >>> df = run(sparselearn.config.load("configs/quickstart.yaml"))   # one row per run  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sparselearn.config import ExecutorConfig, Experiment, from_dict, to_plain
from sparselearn.sweeps.executors import EXECUTORS, unread
from sparselearn.sweeps.executors.local import devices_for
from sparselearn import runtime
from sparselearn.sweeps import memory
from sparselearn.sweeps.grid import Group, Run, expand, group
from sparselearn.schema import CURVE_COLUMNS, CURVES, RUN_COLUMNS, RUN_DTYPES
from sparselearn.store import Store, StoreView, check_writable, trace_frame
from sparselearn.train import curve_steps, prepare_group, run_group

def _progress_bar(shown: bool = True):
    """tqdm's bar class: a widget in a notebook, text elsewhere (`tqdm.auto`'s choice without
    its asyncio variant, whose import costs a command-line run 10 ms); the text one when the bar
    is not `shown` (a notebook widget would still want ipywidgets)."""
    from tqdm.std import TqdmExperimentalWarning, tqdm

    if not shown:
        return tqdm
    with warnings.catch_warnings():  # the notebook bar's notice that it is experimental
        warnings.simplefilter("ignore", category=TqdmExperimentalWarning)
        from tqdm.autonotebook import tqdm as notebook_or_text
    return notebook_or_text


#: a terminal control sequence (Ray colours the tracebacks of its workers)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

#: seconds between looks at the store while other processes train the groups left
LEASE_POLL_S = 0.5


@dataclass(frozen=True)
class Summary:
    """What one call of `run` did."""

    path: str
    total: int
    skipped: int
    ok: int
    diverged: int
    failed: int
    wall_s: float
    stored_failed: int = 0  # skipped runs whose stored status is failed (not retried)

    def line(self) -> str:
        stored = f", {self.stored_failed} of them failed" if self.stored_failed else ""
        return (f"{self.total} runs ({self.skipped} already stored{stored}): {self.ok} ok, "
                f"{self.diverged} diverged, {self.failed} failed in {self.wall_s:.1f} s → {self.path}")


def _chunks(runs: tuple[Run, ...], limit: int) -> list[list[Run]]:
    """Equal-sized chunks of at most `limit` runs (the last padded by repeating its first
    run, so every chunk has one shape and the group compiles once)."""
    count = math.ceil(len(runs) / limit)
    size = math.ceil(len(runs) / count)
    out = [list(runs[i:i + size]) for i in range(0, len(runs), size)]
    out[-1] += [out[-1][0]] * (size - len(out[-1]))
    return out


def _run_row(run: Run, group_id: str) -> dict:
    from sparselearn.contracts import kind_of
    from sparselearn.train.spec import run_values

    e = run.exp
    values = run_values(e, run.seed)  # the vmapped values: seed, m, lr, weight_decay, init_seed, noise
    row = {"run_id": run.run_id, "experiment": e.experiment, "config_hash": run.config_hash, "group_id": group_id,
           "target": e.target.name, "learner": e.learner.name,
           "n": _integer(e.target, "n"), "k": _integer(e.target, "k"), "s": _integer(e.target, "s"),
           "m": None if e.data.online else values["m"], "width": _integer(e.learner, "width"),
           "depth": _integer(e.learner, "depth"), "seed": values["seed"], "init_seed": values["init_seed"],
           "lr": values["lr"],
           "weight_decay": values["weight_decay"], "steps": e.train.steps, "batch": e.train.batch,
           "optimizer": e.train.optimizer, "loss": e.train.loss, "noise": values["noise"],
           "online": e.data.online, "eps": e.train.eps,
           "grid": json.dumps({k: v for k, v in run.point}, sort_keys=True)}
    if not kind_of(e.learner).trained:  # fitted in closed form: the SGD settings do not apply (null)
        row.update(lr=None, weight_decay=None, steps=None, batch=None, optimizer=None)
    return row


def _integer(obj, field: str) -> int | None:
    """`obj.field` where it is an integer, else None: a plug-in's field of that name may hold
    anything (a float, a tuple), which stays in the stored config and the grid column."""
    value = getattr(obj, field, None)
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else None


def failed_frames(g: Group, text: str) -> tuple[pd.DataFrame, pd.DataFrame, None]:
    """The rows of a group lost before it returned (e.g. its worker died), with `text` as their
    error, less the terminal colours a remote worker's traceback may carry."""
    text = ANSI_ESCAPE.sub("", text)[:2000]
    rows = [{**_run_row(r, g.group_id), "status": "failed", "error": text, "wall_s": None} for r in g.runs]
    return _typed(pd.DataFrame(rows).reindex(columns=RUN_COLUMNS)), pd.DataFrame(columns=CURVE_COLUMNS), None


def _typed(runs_df: pd.DataFrame) -> pd.DataFrame:
    return runs_df.astype({c: t for c, t in RUN_DTYPES.items() if t != "object"})


def _report(progress, g: Group, part: int, parts: int, step: int, steps: int) -> None:
    """`progress(g, runs' worth done, step)` from the progress of call `part` of `parts`."""
    progress(g, len(g.runs) * (part + step / steps) / parts, step)


def prepare_group_runs(g: Group, max_runs: int = 1024, devices=None, progress: bool = False) -> None:
    """Compile, without running, what `train_group(g, max_runs, devices, progress=...)`
    runs (one chunk's program: every chunk has its shape); see `train.prepare_group`."""
    chunk = Group(g.group_id, g.exp, tuple(_chunks(g.runs, max_runs)[0]))
    prepare_group(g.exp, chunk.hps(), devices=_chunk_devices(devices, len(chunk.runs)), progress=progress)


def _chunk_devices(devices, size: int):
    """The devices one call of `size` runs is split over (`devices_for` of the group's `devices`;
    None: one), so that a chunk smaller than the group (capped by `max_group_runs` or memory) is
    not padded up to as many runs as the group has devices."""
    return None if devices is None else devices_for(size, tuple(devices))


def train_group(g: Group, max_runs: int = 1024, devices=None,
                progress=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train one group (its run axis sharded over `devices` if given); a failure marks its
    runs `failed` with the error text instead of raising. Returns (runs, curves, traces); traces
    has rows only for experiments with `train.record`. `progress(g, runs_done, step)`, if
    given, is called at every curve point (runs_done: how many runs' worth is done, a float)."""
    start = time.perf_counter()
    rows = [_run_row(r, g.group_id) for r in g.runs]
    curves, traced = [], []
    try:
        outs = []
        chunks = _chunks(g.runs, max_runs)
        placed = _chunk_devices(devices, len(chunks[0]))  # every chunk has one size
        for i, chunk in enumerate(chunks):
            sub = Group(g.group_id, g.exp, tuple(chunk))
            report = {} if progress is None else {"progress": functools.partial(_report, progress, g, i, len(chunks))}
            outs.append(run_group(g.exp, sub.hps(), devices=placed, **report))
        out = {k: np.concatenate([o[k] for o in outs])[: len(g.runs)] for k in outs[0]}
        steps = curve_steps(g.exp)
        for i, row in enumerate(rows):
            finite = bool(out["finite"][i])
            reason = out["error"][i] if "error" in out else None
            if reason is not None:
                row.update(status="failed", error=str(reason)[:2000])
                continue
            row.update(test_error=float(out["test_error"][i]), test_loss=float(out["test_loss"][i]),
                       train_error=float(out["train_error"][i]), train_loss=float(out["train_loss"][i]),
                       steps_to_eps=int(out["steps_to_eps"][i]) if out["steps_to_eps"][i] >= 0 else None,
                       status="ok" if finite else "diverged", error=None if finite else "non-finite training loss")
            points = int(out["evaluated"][i])  # fewer than len(steps) where the run stopped at eps
            curves.append(pd.DataFrame({
                "run_id": row["run_id"], "step": steps[:points], **{c: out[f"curve_{c}"][i][:points] for c in CURVES}}))
            traced.append(i)
        traces = trace_frame([rows[i]["run_id"] for i in traced], steps,
                             {k: v[traced] for k, v in out.items() if k.startswith("trace_")},
                             evaluated=out["evaluated"][traced])
    except Exception as e:  # noqa: BLE001 — one bad group must not sink the sweep
        traces = None
        text = f"{type(e).__name__}: {e}"
        for row in rows:
            row.update(status="failed", error=text[:2000])
        print(f"group {g.group_id} failed: {text}\n{traceback.format_exc(limit=3)}", file=sys.stderr)
    wall = time.perf_counter() - start
    for row in rows:
        row["wall_s"] = wall / len(rows)
    runs_df = _typed(pd.DataFrame(rows).reindex(columns=RUN_COLUMNS))
    curves_df = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)
    return runs_df, curves_df, traces


def _claimed_ahead(g: Group, *, prepare, store: Store, token: str, owner: int, **kwargs) -> None:
    """`prepare(g)` once this process holds the lease on `g`, taken before `g` trains, so that
    another process sharing the store moves on to other groups instead of compiling this one
    too; nothing when another live process holds it. The lease is kept fresh only once `g`
    trains (`_claimed`); if it goes stale first, whoever claims `g` then trains it."""
    if os.getpid() == owner and not store.claim(g.group_id, token):
        return
    prepare(g, **kwargs)


def _claimed(g: Group, *, train, store: Store, token: str, owner: int, view: StoreView, force: bool,
             retry_failed: bool, **kwargs):
    """`train(g)` once this process holds the lease on `g` and for its runs that no other
    process has stored meanwhile; None when another live process holds the lease. Where train
    runs in another process (Ray, SLURM) there is no lease: it trains."""
    if os.getpid() != owner:
        return train(g, **kwargs)
    if not store.claim(g.group_id, token):
        return None
    view.refresh()
    done = view.done(retry_failed, fresh_only=force)
    left = tuple(r for r in g.runs if r.run_id not in done)
    if not left:
        return pd.DataFrame(columns=RUN_COLUMNS), pd.DataFrame(columns=CURVE_COLUMNS), None
    with store.heartbeat(g.group_id, token):
        return train(g if len(left) == len(g.runs) else Group(g.group_id, g.exp, left), **kwargs)


@dataclass(frozen=True)
class _Leased:
    """`_claimed(g, train=train, **claim)` as a callable. Pickled, which is how it reaches a Ray
    or SLURM worker, it is `train` alone: a worker takes no lease, and the store's view (every
    stored run id: 4.6 MB a task for 100,000 stored runs) would travel with each group."""

    train: object
    claim: dict

    def __call__(self, g: Group, **kwargs):
        return _claimed(g, train=self.train, **self.claim, **kwargs)

    def __reduce__(self):
        return functools.partial, (self.train,)


def execute(store: Store, runs: list[Run], executor: ExecutorConfig, *, force: bool = False,
            retry_failed: bool = False, progress: bool = True, desc: str = "",
            round_m: bool = False) -> tuple[pd.DataFrame, Summary]:
    """Train the given runs that `store` does not hold yet, group by group, storing each
    group as it finishes; return the stored rows of `runs` and a Summary.

    Every stored file is read (and so checked) before anything trains. A run is done when its
    row (ok, or diverged or failed unless `retry_failed`) and its curves (and traces, where the
    experiment records them) are stored. Groups are
    claimed through leases in the store, so several processes running the same sweep on one
    store split its groups; each waits for the groups others hold, then returns."""
    start = time.perf_counter()
    check_writable(store.path)
    view = StoreView(store, traced=any(r.exp.train.record for r in runs))
    view.refresh(full=True)
    done = set() if force else view.done(retry_failed)
    todo = [r for r in runs if r.run_id not in done]
    groups = group(todo, round_m=round_m)
    ignored = unread(executor) if todo else []
    if ignored:  # a warning, not an error: a cluster's config may run here once
        warnings.warn(f"the {executor.name} executor does not read {', '.join(ignored)}", stacklevel=3)
    if executor.folder is None:   # slurm's job files beside the results, wherever those go
        executor = replace(executor, folder=str(Path(store.path).parent.parent / ".submitit"))
    runtime.compile_cache(executor.compile_cache)  # which also keeps the memory estimates
    limits = memory.plan(groups, executor)  # before anything compiles: fails if one run cannot fit
    stored_failed = 0 if force or retry_failed else sum(
        view.status.get(r.run_id, ("",))[0] == "failed" for r in runs)
    counts = {"ok": 0, "diverged": 0, "failed": 0}
    shown = bool(progress and todo)
    bar = _progress_bar(shown)(total=len(todo), unit="run", disable=not shown, file=sys.stderr,
                               desc=desc, dynamic_ncols=True,  # n counts runs, in fractions while a group trains
                               bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}, "
                                          "{rate_fmt}{postfix}]")
    done_groups = 0
    held: list[Group] = []
    token = uuid.uuid4().hex

    def on_done(g: Group, result) -> None:
        nonlocal done_groups
        if result is None:  # another process holds it
            held.append(g)
            return
        if isinstance(result, BaseException):
            print(f"group {g.group_id} lost: {type(result).__name__}: {result}", file=sys.stderr)
            result = failed_frames(g, f"{type(result).__name__}: {result}")
        runs_df, curves_df, traces_df = result
        if len(runs_df):
            supersede = view.holding(runs_df["run_id"])
            for part in store.write(runs_df, curves_df, supersede, traces=traces_df):
                table = part.parent.name.removesuffix(".parquet")
                view.add(part, **{table: {"runs": runs_df, "curves": curves_df, "traces": traces_df}[table]})
        store.release(g.group_id, token)
        for status in runs_df["status"]:
            counts[status] += 1
        done_groups += 1
        bar.set_postfix_str(f"group {done_groups}/{len(groups)}")
        bar.update(len(g.runs) - credited.pop(g.group_id, 0.0))

    credited: dict[str, float] = {}  # group id → runs' worth of it the bar shows while it trains

    def advanced(g: Group, runs_done: float, step: int) -> None:  # called by the thread training g
        bar.update(runs_done - credited.get(g.group_id, 0.0))
        credited[g.group_id] = runs_done
        bar.set_postfix_str(f"group {done_groups + 1}/{len(groups)}, step {step}/{g.exp.train.steps}")

    local = EXECUTORS[executor.name] is EXECUTORS["local"]  # groups train in this process
    # progress within a group where it trains in this process (not on Ray or SLURM workers)
    within = {"progress": advanced} if not bar.disable and local else {}
    sized = functools.partial(memory.sized, functools.partial(train_group, max_runs=executor.max_group_runs,
                                                              **within), limits)
    ahead = {}  # the local executor compiles each group's successor while the group trains
    if local:
        prepare = functools.partial(memory.sized, functools.partial(
            prepare_group_runs, max_runs=executor.max_group_runs, progress=bool(within)), limits)
        ahead["prepare"] = functools.partial(_claimed_ahead, prepare=prepare, store=store, token=token,
                                             owner=os.getpid())
    train = _Leased(sized, dict(store=store, token=token, owner=os.getpid(), view=view, force=force,
                                retry_failed=retry_failed))
    try:
        bar.set_postfix_str(f"group 0/{len(groups)} (compiling)")
        pending = groups
        while pending:
            EXECUTORS[executor.name](pending, train, on_done, executor, **ahead)
            pending = []
            if held:
                time.sleep(LEASE_POLL_S)
                view.refresh()
                finished = view.done(retry_failed, fresh_only=force)
                for g in held:
                    left = tuple(r for r in g.runs if r.run_id not in finished)
                    if left:
                        pending.append(Group(g.group_id, g.exp, left))
                    else:
                        done_groups += 1
                        bar.update(len(g.runs))
                held.clear()
    finally:
        bar.close()
        store.release(None, token)
    df = store.runs()
    ids = {r.run_id for r in runs}
    df = df[df["run_id"].isin(ids)].reset_index(drop=True)
    trained = sum(counts.values())
    summary = Summary(str(store.path), len(runs), len(runs) - trained, counts["ok"], counts["diverged"],
                      counts["failed"], time.perf_counter() - start, stored_failed)
    return df, summary


def _as_stored(store: Store, exp: Experiment) -> list[Run]:
    """`expand(exp)`, or its runs under the ids a store written before ids sorted the grid
    point's keys holds (`grid.run_id`), so that such a store resumes instead of training its
    runs again. Only a grid of several keys not in sorted order has two kinds of ids."""
    runs = expand(exp)
    keys = [k for k, _ in exp.sweep.grid]
    if keys == sorted(keys) or not store.files("runs"):
        return runs
    stored = set(store.runs()["run_id"])
    if stored & {r.run_id for r in runs}:
        return runs
    earlier = expand(exp, ordered=True)
    return earlier if stored & {r.run_id for r in earlier} else runs


def run(exp: Experiment, out: str = "results", *, force: bool = False, retry_failed: bool = False,
        progress: bool = True) -> pd.DataFrame:
    """Train every run of `exp` not yet stored under `out`; return all of its runs.

    Stored runs are skipped (status ok; diverged and failed ones too unless `retry_failed`);
    `force` recomputes everything. The returned frame has `attrs["summary"]` (a Summary)
    and `attrs["path"]` (the store directory).
    """
    from_dict(to_plain(exp), default_name=exp.experiment)  # a hand-built Experiment is checked like a file
    runtime.compile_cache(exp.executor.compile_cache)  # which also keeps the memory estimates
    memory.plan(group(expand(exp)), exp.executor)  # a size that cannot fit: nothing is written
    store = Store.create(out, exp)
    df, summary = execute(store, _as_stored(store, exp), exp.executor, force=force, retry_failed=retry_failed,
                          progress=progress, desc=exp.experiment)
    df.attrs["summary"] = summary
    df.attrs["path"] = str(store.path)
    return df
