"""The order event log twice over, read in its place by this process: one plain table and one
partitioned by month, with the same rows and the same indexes, the user's log untouched.

The table_partitioning pair compares two storage layouts of one table. Converting the user's
log back and forth for each side would take longer than the runs, and the larger points of
the sweep need more events than the seed holds. So the bench copies the log into two schemas
of its own, PLAIN and PARTITIONED, `scale` times over (copy k of row `id` gets id
`id * scale + k` and the same month), and puts one schema or the other first on the
`search_path` of this process's connections (as shop/bench/table_sample.py does): the ORM's
unqualified `FROM "orders_orderevent"`, and shop.techniques.table_partitioning's statements,
then read that copy. Other processes never see them.

Both copies get the primary key (id, created_at), the indexes on order_id and on
(created_at, id) and the append-only trigger, as the migration gives the real log, and are
vacuumed (frozen) and analyzed. STASH keeps the oldest month's rows, so the archive runs can
put the month back (untimed) before each run retires it again.

`release()` puts the path back and drops the three schemas; the scenario module's after() hook
calls it, so an error, Ctrl-C, SIGTERM, and at the next start-up a killed run, all end the same
way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from time import monotonic, sleep

from django.db import connections
from django.db.backends.signals import connection_created

from shop.techniques import table_partitioning
from shop.techniques.table_partitioning import TABLE, add_months

PLAIN = "bench_events_plain"
PARTITIONED = "bench_events_partitioned"
STASH = "bench_events_stash"
SCHEMAS = (PLAIN, PARTITIONED, STASH)
COLUMNS = "id, kind, data, created_at, order_id"

_active: dict = {}  # "scale", "month", "rows" once built; "path" while a copy is read


def built() -> bool:
    return "scale" in _active


def scale() -> int | None:
    return _active.get("scale")


def oldest_month() -> date:
    return _active["month"]


def rows() -> int:
    """The events in each copy (the stashed month included)."""
    return _active["rows"]


def build(times: int) -> bool:
    """Copy the user's event log `times` over into PLAIN and PARTITIONED. Idempotent for the
    same `times`; another `times` rebuilds. False, and no copies, when the log is empty."""
    if times < 1:
        raise ValueError(f"the copies hold the log 1 or more times over, not {times}")
    if _active.get("scale") == times:
        return True
    release()
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = %s::regclass",
            [TABLE],
        )
        (home,) = cursor.fetchone()
        source = f"{home}.{TABLE}"
        cursor.execute(f"SELECT min(created_at), max(created_at) FROM {source}")
        first, last = cursor.fetchone()
        if first is None:
            return False
        for schema in SCHEMAS:
            cursor.execute(f"CREATE SCHEMA {schema}")
        columns = (
            "id bigint NOT NULL, kind varchar(32) NOT NULL, data jsonb NOT NULL, "
            "created_at timestamp with time zone NOT NULL, order_id bigint NOT NULL, "
            "PRIMARY KEY (id, created_at)"
        )
        cursor.execute(f"CREATE TABLE {PLAIN}.{TABLE} ({columns})")
        cursor.execute(
            f"CREATE TABLE {PARTITIONED}.{TABLE} ({columns}) PARTITION BY RANGE (created_at)"
        )
        table_partitioning.ensure(first, last, table=f"{PARTITIONED}.{TABLE}")
        for schema in (PLAIN, PARTITIONED):
            # In time order, as the log is written: a month's rows lie together on disk.
            cursor.execute(
                f"INSERT INTO {schema}.{TABLE} ({COLUMNS}) "
                f"SELECT id * %s + k, kind, data, created_at, order_id "
                f"FROM {source}, generate_series(0, %s - 1) k ORDER BY created_at, id, k",
                [times, times],
            )
            cursor.execute(f"CREATE INDEX ON {schema}.{TABLE} (order_id)")
            cursor.execute(f"CREATE INDEX ON {schema}.{TABLE} (created_at, id)")
            cursor.execute(
                f"CREATE TRIGGER orders_orderevent_append_only "
                f"BEFORE UPDATE OR DELETE ON {schema}.{TABLE} FOR EACH ROW "
                f"EXECUTE FUNCTION {home}.orders_orderevent_append_only()"
            )
        month = table_partitioning.month_start(first)
        cursor.execute(
            f"CREATE TABLE {STASH}.month AS SELECT * FROM {PLAIN}.{TABLE} WHERE created_at < %s",
            [start_of(add_months(month, 1))],
        )
        cursor.execute(f"SELECT count(*) FROM {PLAIN}.{TABLE}")
        (count,) = cursor.fetchone()
        _settle(cursor, f"{PLAIN}.{TABLE}", f"{PARTITIONED}.{TABLE}")
    _active.update(scale=times, month=month, rows=count)
    return True


def use(partitioned: bool) -> None:
    """Read the partitioned copy (True) or the plain one (False) from now on."""
    if not built():
        raise RuntimeError("build() the copies first")
    schema = PARTITIONED if partitioned else PLAIN
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_setting('search_path')")
        (path,) = cursor.fetchone()
    others = [p.strip() for p in path.split(",") if p.strip() not in (PLAIN, PARTITIONED)]
    _active["path"] = ", ".join([schema, *others])
    connection_created.connect(_on_connect, dispatch_uid=__name__)
    for alias in connections:
        if connections[alias].connection is not None:
            _set_path(connections[alias])


def restore_month() -> None:
    """Put the oldest month back in the copy in use, if an archive run took it (untimed)."""
    month = oldest_month()
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {TABLE} WHERE created_at < %s LIMIT 1", [start_of(month, 1)])
        if cursor.fetchone():
            return
        if table_partitioning.in_effect():
            (name,) = table_partitioning.ensure(month, month)
            target = name
        else:
            target = TABLE
        cursor.execute(f"INSERT INTO {target} SELECT * FROM {STASH}.month")
        _settle(cursor, target)


def dead_tuples() -> int:
    """The dead tuples left in the copy in use, counted page by page (pgstattuple_approx reads
    every page the visibility map does not vouch for): exact where it matters, unlike the
    statistics counters, which a late flush can make say otherwise."""
    with connections["default"].cursor() as cursor:
        # In STASH unless it exists already: dropped with the copies, never left in the schema
        # the copy in use sits in.
        cursor.execute(f"CREATE EXTENSION IF NOT EXISTS pgstattuple SCHEMA {STASH}")
        cursor.execute(
            "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = %s",
            ["pgstattuple"],
        )
        (schema,) = cursor.fetchone()
        cursor.execute(
            f"SELECT coalesce(sum(({schema}.pgstattuple_approx(relid)).dead_tuple_count), 0) FROM ("
            "SELECT %s::regclass AS relid WHERE NOT EXISTS "
            "(SELECT 1 FROM pg_inherits WHERE inhparent = %s::regclass) "
            "UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass) t",
            [TABLE, TABLE, TABLE],
        )
        return int(cursor.fetchone()[0])


def wait_for_horizon(*, timeout_s: float = 30.0) -> bool:
    """Wait (untimed) until no snapshot in this database, and no replication slot (a replica's
    hot_standby_feedback), can still see rows deleted before now, so a VACUUM can remove them.
    False if `timeout_s` passed first."""
    deadline = monotonic() + timeout_s
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text")
        (xid,) = cursor.fetchone()
        while True:
            cursor.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_replication_slots "
                "WHERE xmin IS NOT NULL AND xmin::text::bigint <= %s) "
                "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_xmin::text::bigint <= %s)",
                [int(xid) % 2**32, int(xid) % 2**32],
            )
            if cursor.fetchone()[0]:
                return True
            if monotonic() > deadline:
                return False
            sleep(0.2)


def release() -> list[str]:
    """Every connection back on its own search_path and the copies dropped; returns what it
    undid (nothing when there were none). Idempotent."""
    undone = []
    connection_created.disconnect(dispatch_uid=__name__)
    if _active.pop("path", None) is not None:
        undone.append("search_path reset")
    _active.clear()
    for alias in connections:
        connection = connections[alias]
        if connection.connection is None:
            continue
        if connection.in_atomic_block:  # a test: the path is this transaction's
            with connection.cursor() as cursor:
                cursor.execute("RESET search_path")
        else:
            connection.close()
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [list(SCHEMAS)])
        for (schema,) in cursor.fetchall():
            cursor.execute(f"DROP SCHEMA {schema} CASCADE")
            undone.append(f"schema {schema} dropped")
    return undone


def start_of(month: date, months: int = 0) -> datetime:
    """The UTC midnight `months` months after `month`'s first day."""
    return datetime.combine(add_months(month, months), time.min, tzinfo=UTC)


def _settle(cursor, *tables: str) -> None:
    """Frozen and analyzed, as the seed leaves the real log; ANALYZE only in a transaction (a
    test), where VACUUM cannot run."""
    verb = "ANALYZE" if cursor.db.in_atomic_block else "VACUUM (FREEZE, ANALYZE)"
    for table in tables:
        cursor.execute(f"{verb} {table}")


def _on_connect(sender, connection, **kwargs) -> None:
    if "path" in _active:
        _set_path(connection)


def _set_path(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('search_path', %s, false)", [_active["path"]])
