"""Keep the append-only order event log in one partition per month, and retire a month by
detaching its partition instead of deleting its rows.

Off: one plain table. Retiring old events is `DELETE ... WHERE created_at < cutoff`: every
row deleted is a dead tuple left in the table and in each index until VACUUM, which then reads
every index of the whole table to clear them: the cost grows with the table, not the month.
On: `orders_orderevent` is partitioned by range of `created_at`, one UTC month a partition
(orders/migrations/0007_orderevent_partitioned.py). Retiring a month is `DETACH PARTITION ...
CONCURRENTLY` and a DROP (or a move to an archive table): catalog changes, no dead tuple. A
query that names a range of `created_at` reads only the partitions it can match (pruning).

Like db_indexes, this technique is a state of the database, not of a request: the queries are
the same either way, so `X-Perf-Toggles: table_partitioning=off` is refused with a 400
(shop.perf_headers.NOT_PER_REQUEST) and `GET /api/perf/toggles/` reports `in_effect()`.
The migration makes "on" the normal state; `manage.py migrate orders 0006` turns the table
back into a plain one (rows kept), and `manage.py migrate orders` partitions it again. The
benchmark compares the two on copies (shop/bench/event_tables.py), never on the user's table.

The loop bodies a process runs are plain functions here: `ensure_ahead()` (the daily task
`orders.tasks.event_partitions_ahead` and `manage.py table_partitioning ahead`) and
`archive()` (`manage.py archive`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connections, transaction
from django.utils import timezone

from shop import toggles

TOGGLE = toggles.register(
    "table_partitioning",
    group="replicas",
    description="the order event log partitioned by month, old months detached; set by the "
    "orders migrations, not per request",
)
SWITCH = "python manage.py migrate orders 0006` (off) or `python manage.py migrate orders` (on)"

TABLE = "orders_orderevent"
ARCHIVE_TABLE = "orders_orderevent_archive"
AHEAD = 3  # months made ahead of the current one: a quarter of missed daily runs to notice
_BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    month: date  # the first day of its UTC month
    detach_pending: bool = False  # a DETACH ... CONCURRENTLY interrupted half-way


def month_start(moment: date | datetime) -> date:
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date()
    return moment.replace(day=1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date, *, table: str = TABLE) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def in_effect(*, using: str = "default") -> bool:
    """Whether the event log, as this connection's search_path finds it, is partitioned."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE])
        return cursor.fetchone()[0] == "p"


def partitions(*, table: str = TABLE, using: str = "default") -> list[Partition]:
    """The table's partitions, oldest month first; [] for a plain table."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound, pending in rows:
        match = _BOUNDS.search(bound or "")
        if match is None:  # a DEFAULT partition: this module never makes one
            continue
        month = month_start(datetime.fromisoformat(match.group(1)))
        found.append(Partition(name=name, month=month, detach_pending=pending))
    return sorted(found, key=lambda partition: partition.month)


def ensure(first: date, last: date, *, table: str = TABLE, using: str = "default") -> list[str]:
    """A partition for every month from `first`'s to `last`'s, both included; returns the
    names it created. Idempotent. Each CREATE takes a brief ACCESS EXCLUSIVE lock on the
    parent, so this runs ahead of time, not when the first event of a month arrives."""
    existing = {partition.month for partition in partitions(table=table, using=using)}
    created = []
    month, last = month_start(first), month_start(last)
    with connections[using].cursor() as cursor:
        while month <= last:
            if month not in existing:
                name = partition_name(month, table=table)
                cursor.execute(
                    f"CREATE TABLE {name} PARTITION OF {table} "
                    f"FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') "
                    f"TO ('{add_months(month, 1).isoformat()} 00:00:00+00')"
                )
                created.append(name)
            month = add_months(month, 1)
    return created


def ensure_ahead(
    months: int = AHEAD, *, today: date | None = None, using: str = "default"
) -> list[str]:
    """This month's partition and the next `months`' ones: the daily task's body."""
    if months < 0:
        raise ValueError(f"months ahead must be 0 or more, not {months}")
    this_month = month_start(today or timezone.now())
    return ensure(this_month, add_months(this_month, months), using=using)


@dataclass(frozen=True)
class Archived:
    name: str
    month: date
    rows: int
    to: str  # "dropped" or the archive table's name


def archive(
    *,
    older_than_months: int,
    move: bool = False,
    today: date | None = None,
    using: str = "default",
) -> list[Archived]:
    """Detach every partition whose month ended more than `older_than_months` months before
    this one began, then drop it or, with `move`, copy its rows to ARCHIVE_TABLE first.

    Outside a transaction it detaches CONCURRENTLY: the plain DETACH takes an ACCESS EXCLUSIVE
    lock on the parent and every read and write of the log queues behind it; CONCURRENTLY takes
    a weaker lock and waits for queries that may still see the partition. It cannot run in a
    transaction block (a test), where the plain form is used. A detach interrupted half-way is
    finished first (FINALIZE)."""
    if older_than_months < 1:
        raise ValueError(f"--older-than must be at least 1 month, not {older_than_months}")
    connection = connections[using]
    concurrently = "" if connection.in_atomic_block else " CONCURRENTLY"
    cutoff = add_months(month_start(today or timezone.now()), -older_than_months)
    done = []
    for partition in partitions(using=using):
        if add_months(partition.month, 1) > cutoff:
            continue
        with connection.cursor() as cursor:
            _run_deferred_checks(cursor)
            if partition.detach_pending:
                cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name} FINALIZE")
            else:
                cursor.execute(
                    f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}{concurrently}"
                )
            with transaction.atomic(using=using):
                cursor.execute(f"SELECT count(*) FROM {partition.name}")
                (rows,) = cursor.fetchone()
                if move:
                    cursor.execute(
                        f"CREATE TABLE IF NOT EXISTS {ARCHIVE_TABLE} "
                        f"(LIKE {TABLE} INCLUDING DEFAULTS EXCLUDING IDENTITY)"
                    )
                    cursor.execute(f"INSERT INTO {ARCHIVE_TABLE} SELECT * FROM {partition.name}")
                cursor.execute(f"DROP TABLE {partition.name}")
        done.append(
            Archived(partition.name, partition.month, rows, ARCHIVE_TABLE if move else "dropped")
        )
    return done


# The off path: one plain table, and a DELETE to retire old rows. The benchmark runs it on
# its plain copy; on the real table it is what a team without partitions runs.


def delete_older(
    cutoff: datetime, *, vacuum: bool = True, table: str = TABLE, using: str = "default"
) -> int:
    """DELETE the rows older than `cutoff`; with `vacuum`, then VACUUM the table (outside a
    transaction) so their dead tuples do not stay behind. The append-only trigger is lifted for
    the DELETE only, inside its transaction: no other session ever sees the table without it.

    VACUUM removes only the rows no snapshot can still see. A streaming replica with
    hot_standby_feedback holds that horizon back by up to wal_receiver_status_interval (10 s)
    and by its longest query: a VACUUM straight after the DELETE may leave them all behind."""
    connection = connections[using]
    with connection.cursor() as cursor:
        _run_deferred_checks(cursor)  # an enclosing transaction's, before ours begins
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER orders_orderevent_append_only")
        cursor.execute(f"DELETE FROM {table} WHERE created_at < %s", [cutoff])
        deleted = cursor.rowcount
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER orders_orderevent_append_only")
    if vacuum and not connection.in_atomic_block:  # VACUUM cannot run in a transaction (a test)
        vacuum_table(table=table, using=using)
    return deleted


def vacuum_table(*, table: str = TABLE, using: str = "default") -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(f"VACUUM {table}")


def _run_deferred_checks(cursor) -> None:
    """Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: rows written earlier in an
    enclosing transaction (a test's) have checks queued until its commit, and PostgreSQL
    refuses to ALTER or DROP a table that has any. Run them now, as the commit would."""
    if cursor.db.in_atomic_block:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
