"""Cost against work: one technique's scenario at several sizes of its work, off against on at
each, so a report shows how each side's cost grows (flat, logarithmic, linear) instead of one
ratio at one size.

A scenario module may define `SWEEP = Sweep(...)`: the points (an offset, a page size, a row
count) and how to build the scenario at each. `manage.py bench --sweep NAME` runs every point
the data can hold through `runner.run_scenario`, the same warm-up, ABBA alternation, answer
check and hooks as a single pair, and writes sweep.json, sweep.md and sweep.html
(`sweep_report.py`). A sweep of several requests (db_indexes: the staff filter, the product
search and the product list) lists them as `series`: each runs at every point and gets its own
table and charts.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shop.bench import discovery
from shop.bench.alternation import Plan, Progress
from shop.bench.hooks import restore
from shop.bench.measure import BenchError, Prepared, Requester, send
from shop.bench.results import Entry
from shop.bench.runner import run_scenario
from shop.bench.samples import Side
from shop.bench.scenario import Scenario


@dataclass(frozen=True)
class Series:
    """One request of a sweep that measures several at each point."""

    name: str  # "staff filter": the heading of its table and charts
    scenario_at: Callable[[int], Scenario]  # the scenario at one point (as `fit` returned it)
    axis: str  # what its x counts: "orders in the table"
    # The size of its work at the point, read from the data once `data` has put it there
    # (the rows of the table it reads); None: the point itself.
    work: Callable[[int], int] | None = None


@dataclass(frozen=True)
class Sweep:
    axis: str  # what a point counts, for the chart's x axis: "offset (rows)"
    points: tuple[int, ...]  # the sizes of the work asked for, smallest first
    # The scenario at one point (as `fit` returned it); None when `series` lists several.
    scenario_at: Callable[[int], Scenario] | None = None
    # Puts the database at this point before `fit`: not timed. It must leave the user's data
    # as it found it (db_indexes reads a sample of the tables, in a schema of its own, and
    # its module's after() hook puts everything back). None: the points share one data set.
    data: Callable[[int], None] | None = None
    # The point the data can hold for one asked for (the deepest full page for an offset past
    # the end, say), or None to skip it. Runs before `scenario_at`; may read, must not write.
    fit: Callable[[int], int | None] = lambda point: point
    # The database time split by statement: {part: does this SQL belong to it}. The chart and
    # the table show each part per side (cursor_pagination: the COUNT(*) and the page).
    parts: dict[str, Callable[[str], bool]] = field(default_factory=dict)
    shape: str = ""  # the expected shape, a sentence for the report
    series: tuple[Series, ...] = ()  # several requests at each point, instead of scenario_at

    def lines(self) -> tuple[Series, ...]:
        """The series run at each point: `series`, or the one `scenario_at` builds."""
        if self.series:
            return self.series
        if self.scenario_at is None:
            raise ValueError("a Sweep needs scenario_at or series")
        return (Series(name="", scenario_at=self.scenario_at, axis=self.axis),)


@dataclass
class Point:
    asked: int  # the point in SWEEP.points
    point: int  # the one measured: as `fit` returned it, or its series' `work` there
    entry: Entry
    series: str = ""  # the series' name; "" for a sweep of one request

    @property
    def label(self) -> str:
        return f"{self.series}@{self.point}" if self.series else str(self.point)


def part_ms(side: Side, matches: Callable[[str], bool]) -> float:
    """The median, over a side's runs, of the database time of the statements that match."""
    return statistics.median(
        sum(ms for sql, (_, ms) in sample.db_statements.items() if matches(sql))
        for sample in side.samples
    )


def side_dict(side: Side | None, parts: dict[str, Callable[[str], bool]]) -> dict[str, Any]:
    if side is None:
        return {}
    return {
        "p50_ms": round(side.p50_ms, 3),
        "p95_ms": round(side.p95_ms, 3),
        "ttfb_p50_ms": round(side.ttfb_p50_ms, 3),  # the whole p50 unless streamed
        "streamed": side.streamed,
        "db_p50_ms": round(side.db_p50_ms, 3),
        "queries": side.queries,
        "runs": len(side.samples),
        "db_parts_ms": {name: round(part_ms(side, m), 3) for name, m in parts.items()},
        "peak_memory_bytes": side.peak_memory_bytes,  # from an untimed run, when measured
    }


@dataclass
class SweepRun:
    """Everything one `manage.py bench --sweep NAME` produced."""

    name: str
    axis: str
    shape: str
    parts: dict[str, Callable[[str], bool]]
    series: dict[str, str]  # {name: axis} of a sweep of several requests; {} for one
    started_at: str
    size: str | None
    rows: dict[str, int]
    machine: dict[str, Any]
    repeat: int
    points: list[Point] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # asked for, but the data cannot hold
    # A series at a point where its answer is empty: not measured, with why (`empty_reason`).
    empty: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    settings_module: str = ""  # DJANGO_SETTINGS_MODULE, as the run had it
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(p.entry.error for p in self.points)

    @property
    def memory(self) -> bool:
        """Whether the points measured peak memory (a scenario with `memory=True`)."""
        return any(p.entry.off and p.entry.off.peak_memory_bytes is not None for p in self.points)

    @property
    def streamed(self) -> bool:
        """Whether a side streamed its body, so its time to first byte is not its whole time."""
        sides = (side for p in self.points for side in (p.entry.off, p.entry.on))
        return any(side is not None and side.streamed for side in sides)

    @property
    def different_answers(self) -> list[str]:
        return [f"{self.name}@{p.label}" for p in self.points if p.entry.same_answer is False]

    def by_series(self) -> dict[str, list[Point]]:
        """The points of each series, in the order measured ({"": all} for one request)."""
        grouped: dict[str, list[Point]] = {name: [] for name in self.series}
        for point in self.points:
            grouped.setdefault(point.series, []).append(point)
        return grouped or {"": []}

    def axis_of(self, series: str) -> str:
        return self.series.get(series, self.axis)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep": self.name,
            "axis": self.axis,
            "shape": self.shape,
            "parts": list(self.parts),
            "series": [{"name": name, "axis": axis} for name, axis in self.series.items()],
            "started_at": self.started_at,
            "settings": self.settings_module,
            "size": self.size,
            "dataset": {"rows": self.rows},
            "machine": self.machine,
            "repeat": self.repeat,
            "elapsed_s": round(self.elapsed_s, 1),
            "interrupted": self.interrupted,
            "points": [
                {
                    "series": p.series or None,
                    "asked": p.asked,
                    "point": p.point,
                    "path": p.entry.path,
                    "same_answer": p.entry.same_answer,
                    "answer_stable": p.entry.answer_stable,
                    "error": p.entry.error,
                    "off": side_dict(p.entry.off, self.parts),
                    "on": side_dict(p.entry.on, self.parts),
                    "speedup_p50": (round(p.entry.speedup_p50, 3) if p.entry.speedup_p50 else None),
                    "entry": p.entry.to_dict(),  # everything a single pair reports
                }
                for p in self.points
            ],
            "skipped": self.skipped,
            "empty": self.empty,
            "problems": self.problems,
            "restored_at_start": self.restored,
        }


def load(name: str) -> tuple[discovery.Suite, Sweep]:
    """The technique's suite (for its hooks) and its SWEEP, or a BenchError naming the ones
    that have a sweep."""
    available = [n for n in discovery.module_names() if _sweep_of(n) is not None]
    if name not in discovery.module_names() or _sweep_of(name) is None:
        raise BenchError(f"no sweep for {name!r}. Sweeps: {', '.join(available) or 'none'}.")
    return discovery.suite(name), _sweep_of(name)


def _sweep_of(name: str) -> Sweep | None:
    sweep = getattr(discovery.import_module(name), "SWEEP", None)
    return sweep if isinstance(sweep, Sweep) else None


def run(suite: discovery.Suite, sweep: Sweep, *, plan: Plan, progress: Progress, into: SweepRun):
    """Every point the data holds, off against on, then the module's after() hook whatever
    happened. Points accumulate in `into` as they finish."""
    try:
        for asked in sweep.points:
            if sweep.data is not None:
                sweep.data(asked)
            point = sweep.fit(asked)
            if point is None:
                into.skipped.append(asked)
                progress.note(f"{suite.name}: the data cannot hold {asked:,} ({sweep.axis})")
                continue
            for line in sweep.lines():
                reason = empty_reason(line.scenario_at(point))
                if reason:
                    work = line.work(point) if line.work is not None else point
                    into.empty.append(
                        {"series": line.name or None, "asked": asked, "point": work, "why": reason}
                    )
                    name = f"{line.name} at " if line.name else ""
                    progress.note(f"{suite.name}: {name}{work:,} not measured: {reason}")
                    continue
                into.points.append(_measure(suite, line, asked, point, plan, progress))
    finally:
        into.problems.extend(restore([suite], progress))
    return into


def empty_reason(scenario: Scenario) -> str:
    """Why the scenario's answer here is no measure of its work, or "". A list page with no
    rows is: its page query never runs (a COUNT(*) of 0 ends the request), so the point would
    time an empty count, not the work the other points time. Sent once, untimed, on the on
    side's flags; the answers are the same off and on (the runner checks it)."""
    if scenario.writes or scenario.memory or scenario.call is None:
        # A write answers no list of rows, a scenario measuring memory streams a large body
        # (an export of a million rows) that this check would hold whole, and a job
        # (`Scenario.run`, archiving a month) sends no request at all.
        return ""
    requester = Requester()
    try:
        if scenario.prepare is not None:
            scenario.prepare()
        call = scenario.call()
        sample = send(
            requester,
            Prepared.of(call, requester),
            flags=scenario.flags(True),
            answer=scenario.answer,
        )
    finally:
        requester.close()
    answer = sample.answer
    rows = answer.get("results") if isinstance(answer, dict) else answer
    if sample.status < 400 and isinstance(rows, list) and not rows:
        return f"{call.method} {call.path} answers no rows, so its page query never runs"
    return ""


def _measure(
    suite: discovery.Suite, line: Series, asked: int, point: int, plan: Plan, progress: Progress
) -> Point:
    """One series at one point, off against on."""
    # A requester per point: a token kept from a `data` hook's point before could be gone.
    requester = Requester()
    try:
        entry = run_scenario(
            suite, 0, line.scenario_at(point), requester=requester, plan=plan, progress=progress
        )
    finally:
        requester.close()
    refused = [s.status for s in (entry.off, entry.on) if s and s.status >= 400]
    if refused and not entry.error:  # the same error page off and on is no answer
        entry.error = f"the request answered {refused[0]}: nothing was measured"
    work = line.work(point) if line.work is not None else point
    return Point(asked=asked, point=work, entry=entry, series=line.name)
