"""How numbers read in the table and the reports: milliseconds, sizes, ratios, verdicts."""

from __future__ import annotations

from shop.bench import metrics
from shop.bench.results import Entry, Run
from shop.bench.samples import Side


def ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("MB", 1024**2), ("kB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def times(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def share(value: float | None) -> str:
    """A fraction as a percentage: `0.25` → `25%`."""
    return "–" if value is None else f"{value:.0%}"


def aliases(by_alias: dict[str, int]) -> str:
    """Queries per database alias: `default 34 · replica 0`."""
    return " · ".join(f"{alias} {n}" for alias, n in by_alias.items()) or "none"


def label(metric: str) -> str:
    """A count's name as a report reads it: `connections_opened` → `connections opened`
    (the JSON keeps the name)."""
    return metric.replace("_", " ")


def counts(entry: Entry) -> str:
    """Each count beyond queries that is not 0 on some side, per request (p50), side by side
    (`metrics.summary`), under its label: `cache hits off 0 · on 3; connections opened off 1 ·
    on 0`. Empty when all are 0."""
    found = metrics.summary(metrics.sides_of(entry))
    # Each part starts with the count's name (`connections_opened off 1 · on 0`).
    parts = (part.split(" ", 1) for part in found.split("; ") if part)
    return "; ".join(f"{label(name)} {rest}" for name, rest in parts)


def uses_replica(side: Side) -> bool:
    """Whether any of the side's queries ran off the primary (an alias other than `default`)."""
    return any(n for alias, n in side.queries_by_alias.items() if alias != "default")


def alias_line(entry: Entry) -> str:
    """`off default 34 · replica 0 (primary 100%), on default 2 · replica 32 (primary 6%)`."""
    sides = (("off", entry.off), ("on", entry.on))
    return ", ".join(
        f"{name} {aliases(side.queries_by_alias)} (primary {share(side.primary_share)})"
        for name, side in sides
        if side is not None
    )


def check(value: bool | None) -> str:
    return {True: "✓", False: "✗ DIFFERENT", None: "–"}[value]


def pair(off: Side | None, on: Side | None, attribute: str, fmt=str) -> str:
    if off is None or on is None:
        return "–"
    a, b = getattr(off, attribute), getattr(on, attribute)
    if a is None and b is None:
        return "–"
    return f"{fmt(a)} → {fmt(b)}"


def row(entry: Entry) -> list[str]:
    """One scenario as table cells."""
    off, on = entry.off, entry.on
    if entry.error or off is None or on is None:
        return [entry.name, entry.title, "ERROR", entry.error[:60], *[""] * (len(HEADER) - 4)]
    return [
        entry.name if entry.scenario == 0 else f"{entry.name} +{entry.scenario}",
        entry.title,
        f"{ms(off.p50_ms)} / {ms(off.p95_ms)}" + first_byte(off),
        f"{ms(on.p50_ms)} / {ms(on.p95_ms)}" + first_byte(on),
        times(entry.speedup_p50),
        baseline(entry),
        f"{ms(off.db_p50_ms)} → {ms(on.db_p50_ms)} ({times(entry.db_speedup_p50)}"
        + (f"; own {times(entry.own_db_speedup_p50)})" if entry.own_db_speedup_p50 else ")"),
        pair(off, on, "queries"),
        pair(off, on, "bytes", size) + _db_bytes(off, on),
        pair(off, on, "peak_memory_bytes", size),
        pair(entry.cold_off, entry.cold_on, "p50_ms", ms),
        check(entry.same_answer) + ("" if entry.answer_stable in (True, None) else " (unstable)"),
    ]


def first_byte(side: Side) -> str:
    """` (first byte 0.84)`: a streamed side's p50 time to the first byte of its body. A plain
    response's is its whole time, so it says nothing new and is not shown."""
    return f" (first byte {ms(side.ttfb_p50_ms)})" if side.streamed else ""


def _db_bytes(off: Side, on: Side) -> str:
    """` (from the db 312 kB → 21 kB)`, for a scenario that measures what PostgreSQL sent."""
    if off.db_bytes is None or on.db_bytes is None:
        return ""
    return f" (from the db {size(off.db_bytes)} → {size(on.db_bytes)})"


def baseline(entry: Entry) -> str:
    """`2.95 (17.9×)`: the baseline request's p50 ms, and the ceiling it puts on the speedup."""
    if entry.baseline is None:
        return "–"
    return f"{ms(entry.baseline.p50_ms)} ({times(entry.ceiling_p50)})"


HEADER = [
    "technique",
    "scenario",
    "off p50/p95 ms",
    "on p50/p95 ms",
    "speedup",
    "baseline ms (ceiling)",
    "db p50 ms",
    "queries",
    "bytes",
    "memory",
    "cold p50 ms",  # each run a first request, for a scenario that asks (Scenario.cold)
    "same",
]


def context_lines(run: Run) -> list[str]:
    machine = run.machine
    rows = ", ".join(f"{name.replace('_', ' ')} {n:,}" for name, n in run.rows.items())
    detected = run.detected_size or "not a seeded size"
    restored = [f"restored at start-up: {line}" for line in run.restored]
    return [
        f"data: {detected} ({rows})",
        f"settings: {run.settings_module}; up to {run.repeat} runs per side after up to "
        f"{run.warmup} warm-up runs, alternating off/on (ABBA), at most {run.budget_s:g} s "
        "of runs per scenario",
        f"machine: {machine.get('cpu_count')} CPUs, Python {machine.get('python')}, "
        f"PostgreSQL {machine.get('postgres')}, load {machine.get('load_average_1m')}",
        # Every toggle a pair does not set runs at the state PERF_TOGGLES gives it.
        f"PERF_TOGGLES: {run.perf_toggles!r} (the state of every toggle a pair does not set)"
        if run.perf_toggles
        else "PERF_TOGGLES: not set (every toggle a pair does not set is at its default)",
        *restored,
    ]
