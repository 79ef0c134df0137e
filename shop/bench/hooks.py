"""The scenario modules' hooks: `before(enabled)` puts the database in one side's state,
`after()` restores it whatever happened, `plans()` tells how PostgreSQL runs the queries."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from shop import toggles
from shop.bench.alternation import Progress
from shop.bench.discovery import Suite


class Hooks:
    """The before() hooks of one or more scenario modules, called only when the state
    changes, and the EXPLAIN plans of each side, taken the first time it is entered."""

    def __init__(
        self, suites: Sequence[Suite], flags: dict[bool, dict[str, bool]], *, plans: bool = True
    ) -> None:
        self.suites = [suite for suite in suites if suite.before or (plans and suite.plans)]
        self.flags = flags
        self.take_plans = plans
        self.current: bool | None = None
        self.plans: dict[str, dict[str, str]] = {}

    @property
    def blocking(self) -> bool:
        return any(suite.before for suite in self.suites)

    def enter(self, state: bool) -> None:
        if state == self.current:
            return
        for suite in self.suites:
            if suite.before:
                suite.before(state)
        self.current = state
        side = "on" if state else "off"
        if self.take_plans and side not in self.plans:
            with toggles.override(**self.flags[state]):
                for suite in self.suites:
                    if suite.plans:
                        self.plans.setdefault(side, {}).update(suite.plans())


@contextmanager
def interrupt_deferred(progress: Progress) -> Iterator[None]:
    """Ctrl-C while an after() hook restores the database would leave it half restored: the
    interrupt waits until the block ends, then is raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum, frame):
        caught.append(signum)
        progress.note("Ctrl-C: restoring first, then stopping")

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def restore(suites: Sequence[Suite], progress: Progress) -> list[str]:
    """Call every after() hook, each even if another fails. Returns the failures."""
    failures = []
    with interrupt_deferred(progress):
        for suite in suites:
            if suite.after is None:
                continue
            try:
                suite.after()
            except Exception as exc:  # the others must still restore
                failures.append(f"{suite.name}: after() failed: {type(exc).__name__}: {exc}")
    return failures
