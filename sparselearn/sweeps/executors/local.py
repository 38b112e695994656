"""local: groups one after the other in this process."""

from __future__ import annotations


def execute(groups, train, on_done, cfg) -> None:
    """Call `on_done(group, train(group))` for each group, in order."""
    del cfg
    for g in groups:
        on_done(g, train(g))
