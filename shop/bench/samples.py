"""One request's measurement (`Sample`) and the statistics of a side's runs (`Side`): medians,
percentiles, queries per alias, counts beyond queries. `shop.bench.results` puts sides together
into a scenario's entry and a run."""

from __future__ import annotations

import math
import statistics
import traceback
from dataclasses import dataclass, field
from typing import Any

from shop.bench.metrics import COMMON, ordered


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
    # and the scenario's own (units oversold, tasks lost), 0 included when it reported one; a
    # cache count that stayed 0 is absent.
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
        """Each count of shop.bench.metrics, as `{"p50": per request, "max": the largest one
        run reported, "total": all runs}`; `max` bounds a figure every run must stay within
        (async_tasks: every task finished within N s of its order).
        Cache operations and connections are always there (0 when none); a scenario's own
        names appear once a run reported them."""
        names = set(COMMON).union(*(sample.metrics for sample in self.samples))
        return {
            name: {
                "p50": statistics.median(s.metrics.get(name, 0) for s in self.samples),
                "max": max(s.metrics.get(name, 0) for s in self.samples),
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
