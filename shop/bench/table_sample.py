"""A share of some tables, read in their place by this process, the user's data untouched.

The db_indexes sweep measures a scan against an index lookup at several sizes of the table.
A filter cannot shrink the table a scan reads, and seeding a smaller data set would replace
the user's data. So the bench copies a share of each table (`id % 100 < percent`: the same
rows every time, spread over the whole history, each smaller share inside the larger) into a
schema of its own, SAMPLE, and puts that schema first on the `search_path` of this process's
connections. The ORM's unqualified `FROM "orders_order"` then reads the copy; every other table
(users, tokens, order lines, variants) is still the user's. Other processes never see the copy.

A copy gets the indexes Django made on the table (primary key, foreign keys, unique columns),
not the db_indexes technique's: creating and dropping those is each side's `before()` hook,
and with SAMPLE first on the path, `shop.techniques.db_indexes` finds, creates and drops them on
the copy (it looks each index up on the table the path finds and drops it schema-qualified, so
the user's table of the same name keeps its own). Outside a transaction the copy is vacuumed (frozen, its visibility map set) and
analyzed, as the seed leaves the real tables, so an index-only scan reads it alike.

`release()` puts the path back and drops SAMPLE. The db_indexes module's after() hook calls it,
so an error, Ctrl-C, SIGTERM, and at the next start-up a killed run, all end the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections
from django.db.backends.signals import connection_created

SCHEMA = "bench_sample"

_active: dict[str, str] = {}  # {"path": the search_path set} while a sample is in use


def use(tables: Sequence[str], percent: int, *, skip_indexes: Sequence[str] = ()) -> None:
    """Copy `percent`% of each table into SAMPLE and read the copies from now on.

    `skip_indexes`: names of the tables' indexes not to copy (the technique's own)."""
    if not 0 < percent < 100:
        raise ValueError(f"a sample is 1 to 99% of the table, not {percent}")
    release()
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
        for table in tables:
            _copy(cursor, table, percent, skip_indexes)
        if not connection.in_atomic_block:  # VACUUM cannot run in a transaction (a test)
            for table in tables:
                cursor.execute(f"VACUUM (FREEZE, ANALYZE) {SCHEMA}.{table}")
        else:
            for table in tables:
                cursor.execute(f"ANALYZE {SCHEMA}.{table}")
        cursor.execute("SHOW search_path")
        (path,) = cursor.fetchone()
    _active["path"] = f"{SCHEMA}, {path}"
    # New connections (a health check reopened one, another alias) read the copies too.
    connection_created.connect(_on_connect, dispatch_uid=__name__)
    for alias in connections:
        if connections[alias].connection is not None:
            _set_path(connections[alias])


def release() -> list[str]:
    """Every connection back on its own search_path and SAMPLE dropped; returns what it undid
    (nothing when no sample was there). Idempotent."""
    undone = []
    connection_created.disconnect(dispatch_uid=__name__)
    if _active.pop("path", None) is not None:
        undone.append("search_path reset")
    for alias in connections:
        connection = connections[alias]
        if connection.connection is None:
            continue
        if connection.in_atomic_block:  # a test: the path is this transaction's
            with connection.cursor() as cursor:
                cursor.execute("RESET search_path")
        else:  # a new connection starts on the default path, whatever state this one is in
            connection.close()
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [SCHEMA])
        if cursor.fetchone():
            cursor.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
            undone.append(f"schema {SCHEMA} dropped")
    return undone


def in_use() -> bool:
    return "path" in _active


def _copy(cursor, table: str, percent: int, skip_indexes: Sequence[str]) -> None:
    # The table as the path finds it now (SAMPLE is not on the path yet), with its schema.
    cursor.execute(
        "SELECT c.oid, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = %s::regclass",
        [table],
    )
    oid, schema = cursor.fetchone()
    qualified = f"{schema}.{table}"
    cursor.execute(
        f"CREATE TABLE {SCHEMA}.{table} (LIKE {qualified} INCLUDING ALL EXCLUDING INDEXES)"
    )
    cursor.execute(
        f"INSERT INTO {SCHEMA}.{table} OVERRIDING SYSTEM VALUE "
        f"SELECT * FROM {qualified} WHERE id %% 100 < %s",
        [percent],
    )
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s",
        [oid],
    )
    for name, definition in cursor.fetchall():
        if name in skip_indexes:
            continue
        # "CREATE INDEX name ON public.orders_order USING ...": the same index on the copy.
        # Never run the definition unchanged: it would build a second index on the real table.
        if f" ON {qualified} " not in definition:
            raise ValueError(f"cannot copy index {name} of {qualified}: {definition}")
        cursor.execute(definition.replace(f" ON {qualified} ", f" ON {SCHEMA}.{table} ", 1))


def _on_connect(sender, connection, **kwargs) -> None:
    if "path" in _active:
        _set_path(connection)


def _set_path(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('search_path', %s, false)", [_active["path"]])
