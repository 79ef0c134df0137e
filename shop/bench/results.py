"""What the bench measured, in plain data: one `Entry` per scenario (with its extra arms, cold
runs and targets when it declares them), and the run's context. `to_dict()` is the JSON the
reports are written from."""

from __future__ import annotations

import math
import statistics
import traceback
from dataclasses import dataclass, field
from typing import Any

from shop.bench.metrics import COMMON, ordered
from shop.bench.targets import Target, evaluate


@dataclass(frozen=True)
class Sample:
    """One request: its wall time (the call plus reading the body), what it cost, its answer."""

    ms: float
    queries: dict[str, int]  # per database alias
    bytes: int
    status: int
    db_ms: float = 0.0  # of `ms`, the time spent executing statements (every alias)
    # `db_ms` by statement: {sql: (executions, ms)}, to see which query dominates
    db_statements: dict[str, tuple[int, float]] = field(default_factory=dict)
    db_bytes: int | None = None  # bytes of the values PostgreSQL sent, when measured
    answer: Any = None
    peak_memory_bytes: int | None = None
    # Of `ms`, the time until the first chunk of the body was in the client's hands. A plain
    # response's body arrives whole, so it is `ms`; a streamed one's first chunk comes early.
    ttfb_ms: float | None = None
    streamed: bool = False
    # Counts beyond the queries (shop.bench.metrics): cache operations, connections opened,
    # and the scenario's own (units oversold, tasks lost). A count that stayed 0 may be absent.
    metrics: dict[str, float] = field(default_factory=dict)


def error_text(exc: BaseException) -> str:
    """`RuntimeError: broken`: what a report shows of an exception."""
    return "".join(traceback.format_exception_only(exc)).strip()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it.
    With 20 runs, p95 is the 19th fastest: one slow outlier shows, two do not hide it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


@dataclass
class Side:
    """The recorded runs of one side (off, on, an extra arm, or the baseline request)."""

    samples: list[Sample]
    peak_memory_bytes: int | None = None  # from a separate, untimed run

    @property
    def times_ms(self) -> list[float]:
        return [sample.ms for sample in self.samples]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95_ms(self) -> float:
        return percentile(self.times_ms, 0.95)

    @property
    def ttfb_p50_ms(self) -> float:
        """The median time to the body's first byte: the whole time for a plain response."""
        return statistics.median(
            sample.ms if sample.ttfb_ms is None else sample.ttfb_ms for sample in self.samples
        )

    @property
    def streamed(self) -> bool:
        """Whether the response was streamed, so its first byte came before the whole body."""
        return any(sample.streamed for sample in self.samples)

    @property
    def db_p50_ms(self) -> float:
        """The median of the runs' database time: what an index or a better query can change.
        The rest of `p50_ms` is Python (middleware, ORM, serializer, rendering)."""
        return statistics.median(sample.db_ms for sample in self.samples)

    @property
    def queries_by_alias(self) -> dict[str, int]:
        """The median count per alias: a cache warmed by the first run does not skew it."""
        aliases = self.samples[0].queries
        return {
            alias: statistics.median_low(sample.queries.get(alias, 0) for sample in self.samples)
            for alias in aliases
        }

    @property
    def queries(self) -> int:
        return sum(self.queries_by_alias.values())

    @property
    def bytes(self) -> int:
        return statistics.median_low(sample.bytes for sample in self.samples)

    def own_db_p50_ms(self, shared: frozenset[str]) -> float:
        """The median database time of the statements not in `shared`: with the baseline's
        statements (the token query of authentication) as `shared`, the request's own."""
        return statistics.median(
            sum(ms for sql, (_, ms) in sample.db_statements.items() if sql not in shared)
            for sample in self.samples
        )

    @property
    def db_bytes(self) -> int | None:
        """The median bytes PostgreSQL sent per request, when the scenario measures them."""
        measured = [sample.db_bytes for sample in self.samples if sample.db_bytes is not None]
        return statistics.median_low(measured) if measured else None

    @property
    def db_by_statement(self) -> list[dict[str, Any]]:
        """Each statement's median executions and database milliseconds per request (0 in a
        run that did not send it), the slowest first."""
        statements = dict.fromkeys(sql for s in self.samples for sql in s.db_statements)
        rows = []
        for sql in statements:
            runs = [sample.db_statements.get(sql, (0, 0.0)) for sample in self.samples]
            rows.append(
                {
                    "sql": sql,
                    "executions": statistics.median_low(n for n, _ in runs),
                    "db_p50_ms": round(statistics.median(ms for _, ms in runs), 3),
                }
            )
        return sorted(rows, key=lambda row: -row["db_p50_ms"])

    @property
    def primary_share(self) -> float | None:
        """The share of the queries that ran on the primary (the `default` alias): what read
        routing moves off it. None when the request sent no query."""
        total = self.queries
        return self.queries_by_alias.get("default", 0) / total if total else None

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Each count of shop.bench.metrics, as `{"p50": per request, "total": all runs}`.
        Cache operations and connections are always there (0 when none); a scenario's own
        names appear once a run reported them."""
        names = set(COMMON).union(*(sample.metrics for sample in self.samples))
        return {
            name: {
                "p50": statistics.median(s.metrics.get(name, 0) for s in self.samples),
                "total": sum(s.metrics.get(name, 0) for s in self.samples),
            }
            for name in ordered(names)
        }

    @property
    def status(self) -> int:
        return self.samples[0].status

    def to_dict(self) -> dict[str, Any]:
        share = self.primary_share
        return {
            "queries": self.queries,
            "queries_by_alias": self.queries_by_alias,
            "primary_share": None if share is None else round(share, 3),
            "metrics": self.metrics,
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "ttfb_p50_ms": round(self.ttfb_p50_ms, 3),
            "streamed": self.streamed,
            "db_p50_ms": round(self.db_p50_ms, 3),
            # The fastest run's: on a busy machine, what is left once no statement waited for
            # a core, the closest the client side comes to the database's own time.
            "db_min_ms": round(min(sample.db_ms for sample in self.samples), 3),
            "db_by_statement": self.db_by_statement,
            "db_bytes": self.db_bytes,
            "mean_ms": round(statistics.fmean(self.times_ms), 3),
            "min_ms": round(min(self.times_ms), 3),
            "bytes": self.bytes,
            "status": self.status,
            "peak_memory_bytes": self.peak_memory_bytes,
            "runs": len(self.samples),
            "samples_ms": [round(ms, 3) for ms in self.times_ms],
        }


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


@dataclass
class ArmResult:
    """An extra arm's runs (the SQL floor), and how its answer compares with the on side's."""

    title: str
    side: Side
    same_answer: bool | None = None  # its answer against the on side's, parsed
    identical_bytes: bool | None = None  # ... and byte for byte, when the arm builds a body
    source: str = ""  # what it runs: the floor's SQL

    def to_dict(self, on: Side | None, baseline: Side | None) -> dict[str, Any]:
        """With the on side's p50 as a multiple of the arm's (1.0: as fast as the arm), and
        the baseline's: how close any version of the request could come to it."""
        return {
            "title": self.title,
            "side": self.side.to_dict(),
            "on_multiple_p50": _rounded(on and ratio(on.p50_ms, self.side.p50_ms)),
            "baseline_multiple_p50": _rounded(
                baseline and ratio(baseline.p50_ms, self.side.p50_ms)
            ),
            "same_answer": self.same_answer,
            "identical_bytes": self.identical_bytes,
            "source": self.source,
        }


@dataclass
class Entry:
    """One scenario of one technique, off against on."""

    name: str
    title: str
    scenario: int  # 0 for the module's SCENARIO, 1.. for its EXTRA_SCENARIOS
    path: str = ""  # "GET /api/products/?page_size=50"
    user: str | None = None  # who the request logs in as; None: anonymous
    writes: bool = False
    hold: dict[str, bool] = field(default_factory=dict)
    every_toggle: bool = False  # composite: every toggle off against every one on
    notes: str = ""
    off: Side | None = None
    on: Side | None = None
    baseline: Side | None = None  # the cheapest request, as the same user (measure.BASELINE_PATH)
    arms: dict[str, ArmResult] = field(default_factory=dict)  # the scenario's extra arms
    cold_off: Side | None = None  # with `Scenario.cold`: each run after a reset, a first request
    cold_on: Side | None = None
    targets: tuple[Target, ...] = ()  # as declared; checked in to_dict()
    same_answer: bool | None = None
    answer_stable: bool | None = None  # every run of a side gave that side's first answer
    difference: str = ""  # where the answers differ, when they do
    plans: dict[str, dict[str, str]] = field(default_factory=dict)  # side → query → plan
    warnings: list[str] = field(default_factory=list)
    error: str = ""  # the exception that stopped this scenario, if one did

    @property
    def speedup_p50(self) -> float | None:
        if self.off is None or self.on is None:
            return None
        return ratio(self.off.p50_ms, self.on.p50_ms)

    @property
    def cold_speedup_p50(self) -> float | None:
        if self.cold_off is None or self.cold_on is None:
            return None
        return ratio(self.cold_off.p50_ms, self.cold_on.p50_ms)

    @property
    def db_speedup_p50(self) -> float | None:
        """Off database time divided by on: the technique's effect on the database alone."""
        if self.off is None or self.on is None:
            return None
        return ratio(self.off.db_p50_ms, self.on.db_p50_ms)

    @property
    def shared_statements(self) -> frozenset[str]:
        """The statements the baseline request sends too (authentication): no technique of
        this request's own can change them."""
        if self.baseline is None:
            return frozenset()
        return frozenset(sql for sample in self.baseline.samples for sql in sample.db_statements)

    @property
    def own_db_speedup_p50(self) -> float | None:
        """Off database time divided by on, without the baseline's statements (the token
        query): the technique's effect on the request's own queries. None when the baseline
        sends no statement, since it is then db_speedup_p50."""
        shared = self.shared_statements
        if self.off is None or self.on is None or not shared:
            return None
        return ratio(self.off.own_db_p50_ms(shared), self.on.own_db_p50_ms(shared))

    @property
    def ceiling_p50(self) -> float | None:
        """Off p50 divided by the baseline's p50: the largest end-to-end speedup this request
        could show, even if the technique made its own work free. The on side still pays the
        baseline (routing, middleware, authentication, DRF), so no technique gets past it."""
        if self.off is None or self.baseline is None:
            return None
        return ratio(self.off.p50_ms, self.baseline.p50_ms)

    @property
    def on_breakdown_ms(self) -> dict[str, float] | None:
        """Where the on side's p50 goes, approximately (medians do not add up exactly): the
        baseline request, the database time beyond the baseline's (its token query), and the
        rest, the Python of this request's own work (view, ORM, serializer, rendering)."""
        if self.on is None or self.baseline is None:
            return None
        database = max(self.on.db_p50_ms - self.baseline.db_p50_ms, 0.0)
        python = max(self.on.p50_ms - self.baseline.p50_ms - database, 0.0)
        return {"baseline": self.baseline.p50_ms, "database": database, "python": python}

    def to_dict(self) -> dict[str, Any]:
        speedup, db_speedup, ceiling = self.speedup_p50, self.db_speedup_p50, self.ceiling_p50
        own = self.own_db_speedup_p50
        breakdown = self.on_breakdown_ms
        cold = None
        if self.cold_off is not None and self.cold_on is not None:
            cold = {
                "off": self.cold_off.to_dict(),
                "on": self.cold_on.to_dict(),
                "speedup_p50": _rounded(self.cold_speedup_p50),
            }
        data = {
            "name": self.name,
            "title": self.title,
            "scenario": self.scenario,
            "path": self.path,
            "user": self.user,
            "writes": self.writes,
            "hold": self.hold,
            "every_toggle": self.every_toggle,
            "off": self.off.to_dict() if self.off else None,
            "on": self.on.to_dict() if self.on else None,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "arms": {
                label: arm.to_dict(self.on, self.baseline) for label, arm in self.arms.items()
            },
            "cold": cold,
            "speedup_p50": _rounded(speedup),
            "db_speedup_p50": _rounded(db_speedup),
            "own_db_speedup_p50": _rounded(own),
            "ceiling_p50": _rounded(ceiling),
            "on_breakdown_ms": (
                {part: round(ms, 3) for part, ms in breakdown.items()} if breakdown else None
            ),
            "same_answer": self.same_answer,
            "answer_stable": self.answer_stable,
            "difference": self.difference,
            "plans": self.plans,
            "notes": self.notes,
            "warnings": self.warnings,
            "error": self.error,
        }
        # Read from the figures above, so a target checks what the reports show.
        data["targets"] = evaluate(self.targets, data)
        return data

    @property
    def compared(self) -> list[bool | None]:
        """Every answer comparison: off against on, and each compared arm against on."""
        return [self.same_answer, *(arm.same_answer for arm in self.arms.values())]


@dataclass
class Run:
    """Everything one `manage.py bench` produced."""

    started_at: str  # ISO 8601, UTC
    settings_module: str
    size: str | None  # the --size asked for, or None
    detected_size: str | None  # the seeded size the row counts match, if any
    rows: dict[str, int]
    machine: dict[str, Any]
    repeat: int
    warmup: int
    budget_s: float
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # scenario modules that could not run
    # PERF_TOGGLES as the environment set it: the state of every toggle a pair does not set
    perf_toggles: str | None = None
    restored: list[str] = field(default_factory=list)  # what after() hooks fixed at start-up
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> bool:
        """An error stopped a scenario (a different answer is reported, not failed)."""
        return bool(self.problems) or any(e.error for e in self.entries)

    @property
    def different_answers(self) -> list[str]:
        return [f"{e.name}[{e.scenario}]" for e in self.entries if False in e.compared]

    @property
    def unstable_answers(self) -> list[str]:
        """Scenarios where a side's runs did not all give that side's first answer: the
        comparison of first answers then says little."""
        return [f"{e.name}[{e.scenario}]" for e in self.entries if e.answer_stable is False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "settings": self.settings_module,
            "perf_toggles": self.perf_toggles,
            "restored_at_start": self.restored,
            "size": self.size,
            "dataset": {"size": self.detected_size, "rows": self.rows},
            "machine": self.machine,
            "repeat": self.repeat,
            "warmup": self.warmup,
            "budget_s": self.budget_s,
            "elapsed_s": round(self.elapsed_s, 1),
            "interrupted": self.interrupted,
            "techniques": [entry.to_dict() for entry in self.entries],
            "problems": self.problems,
        }
