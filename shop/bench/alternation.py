"""The order of the runs: warm up, then alternate off and on on the same data.

The order is ABBA (off, on, on, off, off, on, ...): a machine that slowly gets faster or slower
while the bench runs (caches filling, another process starting, a CPU warming) adds about as
much to one side as to the other, where "all the offs, then all the ons" would hand the whole
drift to one side. A scenario module with a `before()` hook changes the database itself
between the sides (db_indexes builds indexes), which is too slow to do per run: its runs go in
blocks of at most BLOCK_RUNS per side, themselves in ABBA order (off, on, on, off, off, ...), so
linear drift still cancels, and a burst of load from another process lands on both sides
rather than on the one block it happened to hit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Protocol

from shop.bench.samples import Sample
from shop.bench.scenario import Scenario

DEFAULT_REPEAT = 20  # recorded runs per side
# Recorded runs per side between two before() calls. A block of 5 medium requests lasts a
# fraction of a second, about as long as a burst of another process's work on a shared 2-core
# machine; the 20 runs of each side then spread over 4 blocks (db_indexes: 2 index builds more
# than with one block per side, about a second each at medium).
BLOCK_RUNS = 5
WARMUP = 3  # unrecorded runs per side first (and after each before()); at most a fifth of the runs
# Recorded runs of one scenario stop early, at the end of an ABBA cycle, once they have taken
# this long; every side still gets one run. bulk_writes' naive import of 10k products (medium)
# takes about 20 s a run on a quiet 2-core machine, and more than twice that on a busy one.
BUDGET_S = 60.0


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self) -> None: ...
    def note(self, line: str) -> None: ...


@dataclass(frozen=True)
class Plan:
    """How much to run: recorded runs per side, warm-up runs per side, seconds per scenario."""

    repeat: int = DEFAULT_REPEAT
    warmup: int = WARMUP
    budget_s: float = BUDGET_S

    def runs(self, scenario: Scenario | None = None) -> int:
        """A scenario's own `repeat` caps --repeat."""
        if scenario is not None and scenario.repeat:
            return min(scenario.repeat, self.repeat)
        return self.repeat

    def warmups(self, scenario: Scenario | None = None) -> int:
        """At most a fifth of the runs, at least one. None for a scenario that sets its own
        `repeat`: it declares runs of seconds, where a cold cache is lost in the noise."""
        if scenario is not None and scenario.repeat:
            return 0
        return min(self.warmup, max(1, self.runs(scenario) // 5))


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: "off", "on", or the SQL "floor"."""

    label: str
    state: bool  # the state of the techniques it runs with: what before() is called with
    run: Callable[[], Sample]


def abba(labels: Sequence[str], rounds: int) -> list[str]:
    """Each round runs every label once, every other round in reverse:
    `abba(["off", "on"], 3)` is off, on, on, off, off, on."""
    order: list[str] = []
    for round_ in range(rounds):
        order.extend(labels if round_ % 2 == 0 else reversed(labels))
    return order


def schedule(
    arms: Sequence[Arm], runs: int, *, blocked: bool
) -> list[tuple[bool | None, list[str]]]:
    """The runs to record, as blocks of (state to enter first or None, labels in order).

    Unblocked: one block, ABBA over every arm. Blocked (a before() hook): each side's runs are
    cut into at least two chunks of at most BLOCK_RUNS, and the chunks go in ABBA order, off
    first (off, on, on, off, off, on, ...); two chunks of the same state in a row are one block.
    With two chunks a side that is off-on-off: half the off runs, every on run, the other half.
    Each block is ABBA inside.
    """
    labels = [arm.label for arm in arms]
    if not blocked:
        return [(None, abba(labels, runs))]
    by_state = {
        False: [arm.label for arm in arms if not arm.state],
        True: [arm.label for arm in arms if arm.state],
    }
    chunks = max(2, -(-runs // BLOCK_RUNS))  # per side
    sizes = [runs // chunks + (1 if i < runs % chunks else 0) for i in range(chunks)]  # ±1
    taken = {False: 0, True: 0}
    blocks: list[tuple[bool, int]] = []
    for round_ in range(chunks):
        for state in (False, True) if round_ % 2 == 0 else (True, False):
            size = sizes[taken[state]]
            taken[state] += 1
            if blocks and blocks[-1][0] == state:
                blocks[-1] = (state, blocks[-1][1] + size)
            else:
                blocks.append((state, size))
    return [
        (state, abba(by_state[state], size)) for state, size in blocks if by_state[state] and size
    ]


def alternate(
    arms: Sequence[Arm],
    *,
    runs: int,
    warmup: int,
    budget_s: float | None = None,
    enter: Callable[[bool], None] | None = None,
    progress: Progress,
    label: str,
) -> dict[str, list[Sample]]:
    """Warm up and record `runs` runs of every arm, in the schedule's order.

    With a budget (unblocked schedules only), recording stops after the first round, or after
    any whole ABBA cycle, once it has taken longer than `budget_s`.
    """
    by_label = {arm.label: arm for arm in arms}
    recorded: dict[str, list[Sample]] = {arm.label: [] for arm in arms}
    blocks = schedule(arms, runs, blocked=enter is not None)
    warmups = [abba(list(dict.fromkeys(order)), warmup) for _, order in blocks]
    progress.start(label, sum(len(order) for _, order in blocks) + sum(map(len, warmups)))
    for (state, order), warm in zip(blocks, warmups, strict=True):
        if state is not None and enter is not None:
            enter(state)
        for name in warm:
            by_label[name].run()
            progress.advance()
        started, round_ = perf_counter(), len(set(order))
        for position, name in enumerate(order, start=1):
            recorded[name].append(by_label[name].run())
            progress.advance()
            boundary = position == round_ or position % (2 * round_) == 0
            over = budget_s is not None and perf_counter() - started > budget_s
            if state is None and boundary and over and position < len(order):
                break
    return recorded
