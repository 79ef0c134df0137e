"""The scenario modules' hooks: `before(enabled)` puts the database in one side's state,
`after()` restores it whatever happened, `plans()` tells how PostgreSQL runs the queries.

`after()` runs when a module's scenarios end (an error, Ctrl-C and SIGTERM included), and
for every module when the bench starts: a run killed outright (SIGKILL) cannot restore, so the
next one does. So `after()` must be idempotent; it may return what it had to restore."""

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


# What stops a run: Ctrl-C, and SIGTERM (`kill`, a CI job's timeout, a container stopping).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM unwinds the run as Ctrl-C does: KeyboardInterrupt, so every `finally` runs and
    every after() hook restores. By default SIGTERM ends the process at once, and a db_indexes
    side left its indexes dropped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupt_deferred(progress: Progress) -> Iterator[None]:
    """Ctrl-C or SIGTERM while an after() hook restores the database would leave it half
    restored: the interrupt waits until the block ends, then is raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum, frame):
        caught.append(signum)
        progress.note(f"{signal.Signals(signum).name}: restoring first, then stopping")

    previous = {signum: signal.signal(signum, hold) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        raise KeyboardInterrupt


def restore(
    suites: Sequence[Suite], progress: Progress, *, restored: list[str] | None = None
) -> list[str]:
    """Call every after() hook, each even if another fails. Returns the failures; what a hook
    says it restored is appended to `restored`, when given."""
    failures = []
    with interrupt_deferred(progress):
        for suite in suites:
            if suite.after is None:
                continue
            try:
                done = suite.after()
            except Exception as exc:  # the others must still restore
                failures.append(f"{suite.name}: after() failed: {type(exc).__name__}: {exc}")
                continue
            if restored is not None and done:
                names = list(done) if isinstance(done, list | tuple | set) else [done]
                restored.append(f"{suite.name}: {', '.join(map(str, names))}")
    return failures
