"""The order event log plain and partitioned by month: the staff activity feed (the newest
events), one month's counts by kind, and retiring the oldest month.

A storage layout is not a request's to choose, so the two sides are two copies of the log with
the same rows and the same indexes (shop/bench/event_tables.py), built once, and `before()`
points this process's connections at one or the other. The user's log is never written, and
`after()` drops the copies. At medium the seeded log holds ~300k events; the sweep copies it
1, 3 and 10 times over (10: about the large data set's log) to show how retiring a month
grows with the table.

Retiring a month is no request: the third scenario times the job itself (`Scenario.run`).
Off, `DELETE ... WHERE created_at < <the month's end>` and the VACUUM it leaves owed; on,
`DETACH PARTITION ... CONCURRENTLY` and `DROP TABLE`. Before each run, untimed, the month goes
back in (event_tables.restore_month). Each run then counts the dead tuples left behind.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from time import perf_counter

from django.db import connections

from shop.bench import event_tables, holds
from shop.bench.measure import BenchError, QueryCounter
from shop.bench.metrics import DEAD_TUPLES
from shop.bench.samples import Sample
from shop.bench.scenario import Call, Scenario
from shop.bench.sweep import Series, Sweep
from shop.bench.targets import Target
from shop.techniques import table_partitioning
from shop.techniques.table_partitioning import add_months

STAFF = "staff"  # the seeded staff account (not a superuser)
# The HTTP modes refuse the module (shop/bench/http_cli.py): a server reads the real log.
IN_PROCESS_ONLY = (
    "its two layouts are copies on this process's search_path, and a server would read your "
    "event log on both sides; to compare over HTTP, switch the layout with "
    "`manage.py migrate orders 0006` and `manage.py migrate orders` between runs"
)
RECENT_HOURS = 24

_state: dict[str, date] = {}


def _month() -> date:
    """The last whole month of the log: the month before its newest event's."""
    from orders.models import OrderEvent

    newest = OrderEvent.objects.order_by("-created_at").values_list("created_at", flat=True)
    if not newest:
        raise BenchError("the event log is empty: seed the database first")
    return add_months(table_partitioning.month_start(newest[0]), -1)


def _prepare_month() -> None:
    _state["month"] = _month()


SCENARIO = Scenario(
    name="table_partitioning",
    title=f"staff activity feed: the newest events of the last {RECENT_HOURS} h",
    call=lambda: Call("GET", f"/api/staff/events/?hours={RECENT_HOURS}", user=STAFF),
    hold=holds.TABLE_PARTITIONING,
    notes="`created_at >= now - 24 h ORDER BY created_at DESC, id DESC LIMIT 50`: the "
    "(created_at, id) index read backwards on both sides; the partitioned log prunes to the "
    "current month's partition first. Expected: no slower.",
)

EXTRA_SCENARIOS = [
    Scenario(
        name="table_partitioning",
        title="one month's events counted by kind",
        prepare=_prepare_month,
        call=lambda: Call(
            "GET", f"/api/staff/events/month/?month={_state['month']:%Y-%m}", user=STAFF
        ),
        hold=holds.TABLE_PARTITIONING,
        notes="`created_at` in one UTC month, `GROUP BY kind`: a range of the (created_at, "
        "id) index and the heap pages it points to off; one partition read whole on (pruning).",
    ),
    Scenario(
        name="table_partitioning",
        title="retire the oldest month of the log",
        path="JOB archive the oldest month",
        run=lambda partitioned: _archive(partitioned),
        repeat=5,
        notes="Off: DELETE of the month's rows, then VACUUM of the table (its time included: "
        "without it the dead tuples stay). On: DETACH PARTITION CONCURRENTLY and DROP TABLE. "
        "The month is put back, untimed, before each run.",
        targets=(
            Target("speedup_p50", at_least=20, label="archiving: DELETE + VACUUM ÷ DETACH + DROP"),
            Target(f"off.metrics.{DEAD_TUPLES}.total", at_most=0, label="dead tuples left, off"),
            Target(f"on.metrics.{DEAD_TUPLES}.total", at_most=0, label="dead tuples left, on"),
        ),
    ),
]


def _archive(partitioned: bool) -> Sample:
    """One timed retirement of the copy's oldest month, in the copy `before()` chose."""
    if not event_tables.built():
        raise BenchError("the event log is empty: seed the database first")
    event_tables.restore_month()
    month = event_tables.oldest_month()
    if partitioned:
        # Run "two months after" the oldest, keeping one: only the oldest is old enough.
        retire = _timed(
            lambda: table_partitioning.archive(older_than_months=1, today=add_months(month, 2))
        )
        rows = sum(done.rows for done in retire.answer)
    else:
        cutoff = event_tables.start_of(month, 1)
        retire = _timed(lambda: table_partitioning.delete_older(cutoff, vacuum=False))
        rows = retire.answer
        if not connections["default"].in_atomic_block:  # VACUUM cannot run in one (a test)
            # Untimed: the replica's feedback can keep the rows visible for up to 10 s, and a
            # VACUUM before then would leave them all behind (see delete_older).
            event_tables.wait_for_horizon()
            retire = _plus(retire, _timed(table_partitioning.vacuum_table))
    return replace(
        retire,
        answer={"month": f"{month:%Y-%m}", "rows retired": rows},
        metrics={DEAD_TUPLES: event_tables.dead_tuples()},
    )


def _timed(job) -> Sample:
    with QueryCounter() as counter:
        started = perf_counter()
        result = job()
        elapsed_ms = (perf_counter() - started) * 1000
    return Sample(
        ms=elapsed_ms,
        db_ms=counter.db_seconds * 1000,
        queries=dict(counter.counts),
        db_statements=counter.statement_ms(),
        bytes=0,
        status=200,
        answer=result,
    )


def _plus(first: Sample, then: Sample) -> Sample:
    """Two timed parts of one job, as one sample."""
    return replace(
        first,
        ms=first.ms + then.ms,
        db_ms=first.db_ms + then.db_ms,
        queries={a: n + then.queries.get(a, 0) for a, n in first.queries.items()},
        db_statements={**first.db_statements, **then.db_statements},
    )


def before(enabled: bool) -> None:
    # An empty log (a composite pair's test data) has nothing to copy: both sides read it.
    if event_tables.built() or event_tables.build(1):
        event_tables.use(partitioned=enabled)


def after() -> list[str]:
    return event_tables.release()


def plans() -> dict[str, str]:
    from orders import selectors

    month = _state.get("month") or _month()
    return {
        "activity feed": _explain(lambda: list(selectors.event_list_recent(hours=RECENT_HOURS))),
        "month by kind": _explain(lambda: selectors.event_month_counts(month=month)),
    }


def _explain(read) -> str:
    """EXPLAIN ANALYZE of the statement `read` sends, as it sent it (parameters bound)."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    connection = connections["default"]
    with CaptureQueriesContext(connection) as captured:
        read()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF) " + captured[-1]["sql"])
        return "\n".join(row[0] for row in cursor.fetchall())


# --- the sweep: the copies 1, 3 and 10 times the seeded log --------------------------------
def _fit(times: int) -> int | None:
    return times if event_tables.built() else None


def _series(scenario: Scenario, name: str) -> Series:
    return Series(
        name=name,
        scenario_at=lambda times: scenario,
        axis="events in the table",
        work=lambda _: event_tables.rows(),
    )


SWEEP = Sweep(
    axis="copies of the seeded log",
    points=(1, 3, 10),
    data=event_tables.build,
    fit=_fit,
    series=(
        _series(EXTRA_SCENARIOS[1], "retire a month"),
        _series(EXTRA_SCENARIOS[0], "month by kind"),
        _series(SCENARIO, "activity feed"),
    ),
    shape="retiring a month: off grows with the table (VACUUM reads every index whole), on "
    "stays flat (catalog changes); the month's count grows with the month on both sides",
)
