"""The local executor: groups one after the other in this process."""

from __future__ import annotations

from typing import Callable, Iterable


def execute(groups: Iterable, train: Callable, on_done: Callable) -> None:
    """Call `on_done(group, train(group))` for each group, in order."""
    for g in groups:
        on_done(g, train(g))
