"""local: groups one after the other in this process, each group's run axis sharded over
every local device (all GPUs, or one host device per core when JAX was started so; see
`sparselearn.runtime`).

A compiled group holds the main thread inside XLA, where Python cannot deliver Ctrl-C; so
each group trains in a worker thread while the main thread waits in short steps, and a
Ctrl-C raises `Interrupted` at once (the group in flight is abandoned, never stored)."""

from __future__ import annotations

import threading

from sparselearn.runtime import local_devices

WAIT_S = 0.1


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while a group was training; that computation still runs in a daemon thread, so
    a process that is done should leave with `os._exit` rather than wait for it."""


def interruptible(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` in a daemon thread; returns its value or raises its exception.
    A KeyboardInterrupt while waiting becomes `Interrupted`."""
    box = {}

    def work():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 — handed to the waiting thread
            box["error"] = e

    worker = threading.Thread(target=work, name="sparselearn-group", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(WAIT_S)
    except KeyboardInterrupt:
        raise Interrupted() from None
    if "error" in box:
        raise box["error"]
    return box["value"]


def devices_for(runs: int, devices: tuple) -> tuple | None:
    """The fewest of `devices` that still give each at most ceil(runs / len(devices)) runs
    (no idle padding for small groups); None when that is one device.

    Example: 17 runs on 16 devices → 9 devices with 2 runs each (18 slots, not 32).
    """
    per_device = -(-runs // len(devices))
    used = -(-runs // per_device)
    return tuple(devices[:used]) if used > 1 else None


def execute(groups, train, on_done, cfg) -> None:
    """Call `on_done(group, train(group, devices=...))` for each group, in order; the run
    axis is split across the local devices when there are several."""
    del cfg
    devices = local_devices()
    for g in groups:
        on_done(g, interruptible(train, g, devices=devices_for(len(g.runs), devices)))
