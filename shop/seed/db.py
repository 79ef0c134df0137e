"""The database side of the seed: truncate, COPY, constraints and indexes, sequences, ANALYZE.

Everything here runs inside the caller's transaction: nothing commits on its own, so a failure
rolls all of it back, DDL included (PostgreSQL's DDL is transactional).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from datetime import date
from time import perf_counter

from shop.seed.generate import COLUMNS

# What the seed replaces: every table it loads, plus the tables that hang off auth_user and
# would otherwise point at users that no longer exist. Listed explicitly; CASCADE also
# empties any other table that references one of these (reported beforehand).
LOADED_TABLES = list(COLUMNS)
TRUNCATED_TABLES = [
    "catalog_category",
    "catalog_brand",
    "catalog_product",
    "catalog_variant",
    "catalog_review",
    "orders_address",
    "orders_order",
    "orders_orderitem",
    "orders_payment",
    "orders_orderevent",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "authtoken_token",
    "django_admin_log",
]
assert set(LOADED_TABLES) <= set(TRUNCATED_TABLES)

FLUSH_BYTES = 4 * 1024 * 1024


def existing_tables(cur, tables: list[str]) -> list[str]:
    cur.execute(
        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relname = ANY(%s) "
        "AND pg_table_is_visible(oid)",
        [tables],
    )
    found = {row[0] for row in cur.fetchall()}
    return [t for t in tables if t in found]


def partitioned(cur, tables: list[str]) -> list[str]:
    """Which of `tables` are partitioned."""
    cur.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'p' AND relname = ANY(%s) "
        "AND pg_table_is_visible(oid)",
        [tables],
    )
    return [row[0] for row in cur.fetchall()]


def event_partitions(cur, *, first: date, last: date) -> None:
    """A partition of the event log for every month from `first`'s to `last`'s and the months
    ahead, when the log is partitioned (shop.techniques.table_partitioning). The seed's rows
    cannot go in otherwise: there is no DEFAULT partition."""
    from shop.techniques import table_partitioning

    if not partitioned(cur, [table_partitioning.TABLE]):
        return
    table_partitioning.ensure(
        first, table_partitioning.add_months(last, table_partitioning.AHEAD), using=cur.db.alias
    )


def row_counts(cur, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cur.execute(f"SELECT count(*) FROM {table}")
        counts[table] = cur.fetchone()[0]
    return counts


def cascade_extras(cur, tables: list[str]) -> list[str]:
    """Tables not in `tables` that TRUNCATE ... CASCADE would empty too (transitively)."""
    cur.execute(
        """
        WITH RECURSIVE hit(oid) AS (
            SELECT c.oid FROM pg_class c WHERE c.relname = ANY(%s) AND pg_table_is_visible(c.oid)
            UNION
            SELECT con.conrelid FROM pg_constraint con JOIN hit ON con.confrelid = hit.oid
            WHERE con.contype = 'f'
        )
        SELECT c.relname FROM hit JOIN pg_class c ON c.oid = hit.oid
        WHERE c.relname <> ALL(%s) ORDER BY 1
        """,
        [tables, tables],
    )
    return [row[0] for row in cur.fetchall()]


def run_deferred_checks(cur) -> None:
    """Run the deferred constraint checks queued so far, then defer again.

    Django makes every foreign key DEFERRABLE INITIALLY DEFERRED, so DEFERRED is the mode
    the rest of the transaction expects.
    """
    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cur.execute("SET CONSTRAINTS ALL DEFERRED")


def truncate(cur, tables: list[str]) -> None:
    # Don't wait forever behind another session's lock (a runserver mid-request, a shell).
    cur.execute("SELECT current_setting('lock_timeout')")
    previous = cur.fetchone()[0]
    cur.execute("SELECT set_config('lock_timeout', '60s', true)")
    cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    cur.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


class CopyLoader:
    """Buffers COPY text per table and sends it as one COPY statement per ~4 MB.

    Rows of different tables arrive interleaved (an order block brings orders, items,
    payments and events); buffering per table keeps the number of COPY statements small.

    With `threaded` (the default), the COPY statements run on a writer thread, so the next
    rows are generated while PostgreSQL parses and stores the previous ones: on two cores
    that hides most of the generation time. The queue is short, so memory stays bounded. Use
    it as a context manager: leaving with an exception aborts the COPY in flight and stops
    the thread before the caller rolls back.

    With `freeze`, rows are written already frozen (COPY ... FREEZE), which PostgreSQL allows
    because the tables were truncated earlier in this same (sub)transaction: no hint-bit
    writes or anti-wraparound vacuum later, and the visibility map is set, so index-only
    scans work straight away.
    """

    def __init__(
        self, cur, *, freeze: bool = True, flush_bytes: int | None = None, threaded: bool = True
    ) -> None:
        self.cur = cur
        self.freeze = freeze
        self.flush_bytes = flush_bytes or FLUSH_BYTES
        self.threaded = threaded
        # COPY FREEZE refuses a partitioned table (table_partitioning's event log): its rows
        # go in unfrozen.
        self.unfrozen = set(partitioned(cur, list(COLUMNS)))
        self.buffers: dict[str, list[str]] = {}
        self.sizes: dict[str, int] = {}
        self.rows: dict[str, int] = dict.fromkeys(COLUMNS, 0)
        self.copy_seconds: dict[str, float] = dict.fromkeys(COLUMNS, 0.0)
        self.statements = 0
        self._jobs: queue.Queue[tuple[str, list[str]] | None] = queue.Queue(maxsize=3)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._abort = False

    def __enter__(self) -> CopyLoader:
        if self.threaded:
            self._thread = threading.Thread(target=self._work, name="seed-copy", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abort = True  # the writer aborts its COPY at the next chunk
        self._stop()

    def add(self, block: dict[str, tuple[str, int]]) -> None:
        for table, (data, rows) in block.items():
            if not rows:
                continue
            self.rows[table] += rows
            self.buffers.setdefault(table, []).append(data)
            self.sizes[table] = self.sizes.get(table, 0) + len(data)
            if self.sizes[table] >= self.flush_bytes:
                self.flush(table)

    def flush(self, table: str) -> None:
        chunks = self.buffers.pop(table, None)
        self.sizes.pop(table, None)
        if not chunks:
            return
        if self._thread is None:
            self._copy(table, chunks)
            return
        while True:  # a bounded put that notices a failed writer instead of blocking forever
            self._raise_writer_error()
            try:
                self._jobs.put((table, chunks), timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Send everything buffered and wait until PostgreSQL has taken it."""
        for table in list(self.buffers):
            self.flush(table)
        if self._thread is not None:
            self._jobs.join()
        self._raise_writer_error()

    def _copy(self, table: str, chunks: list[str]) -> None:
        started = perf_counter()
        options = " WITH (FREEZE)" if self.freeze and table not in self.unfrozen else ""
        with self.cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN{options}") as copy:
            for data in chunks:
                if self._abort:
                    raise CopyAborted("seed interrupted")
                copy.write(data)
        self.statements += 1
        self.copy_seconds[table] += perf_counter() - started

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if self._error is None and not self._abort:
                    self._copy(*job)
            except BaseException as exc:  # handed to the main thread
                self._error = exc
            finally:
                self._jobs.task_done()
        self._jobs.task_done()

    def _stop(self) -> None:
        if self._thread is None:
            return
        while self._thread.is_alive():
            try:
                self._jobs.put(None, timeout=0.2)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._thread = None

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class CopyAborted(Exception):
    pass


@dataclass
class Rebuild:
    """Secondary indexes and constraints dropped for the load, to be re-created after it."""

    indexes: list[str]  # CREATE INDEX statements
    constraints: list[tuple[str, str, str]]  # (table, name, definition), FKs last

    def __len__(self) -> int:
        return len(self.indexes) + len(self.constraints)


def drop_secondary(cur, tables: list[str]) -> Rebuild:
    """Drop the foreign keys, unique constraints and plain indexes of `tables`; keep the PKs.

    Loading into bare tables and building each index once afterwards is much cheaper than
    maintaining it row by row, and a foreign key added afterwards is checked with one join
    instead of one deferred trigger per row. The DDL is transactional: if anything fails
    before `restore`, the rollback brings every dropped object back.
    """
    cur.execute(
        """
        SELECT con.conrelid::regclass::text, con.conname, pg_get_constraintdef(con.oid),
               con.contype
        FROM pg_constraint con
        WHERE con.conrelid = ANY(%s::regclass[]) AND con.contype IN ('f', 'u')
          -- a unique constraint that a foreign key relies on must stay
          AND NOT (con.contype = 'u' AND EXISTS (
              SELECT 1 FROM pg_constraint fk WHERE fk.contype = 'f' AND fk.conindid = con.conindid))
        ORDER BY con.contype = 'f', con.conrelid::regclass::text, con.conname
        """,
        [tables],
    )
    constraints = [(table, name, definition) for table, name, definition, _ in cur.fetchall()]
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                          AND con.contype IN ('p', 'u', 'x'))
        ORDER BY 1
        """,
        [tables],
    )
    indexes = cur.fetchall()
    # Foreign keys first (they depend on nothing we drop), then unique constraints, then indexes.
    for table, name, _ in reversed(constraints):
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f"DROP INDEX {name}")
    # A partitioned table's index reads "ON ONLY table": re-created so, it would cover no
    # partition. Without ONLY it is built on every partition, as the one dropped was.
    definitions = [definition.replace(" ON ONLY ", " ON ", 1) for _, definition in indexes]
    return Rebuild(indexes=definitions, constraints=constraints)


def restore(cur, rebuild: Rebuild) -> None:
    """Re-create what `drop_secondary` dropped: indexes, unique constraints, then foreign keys."""
    for statement in rebuild.indexes:
        cur.execute(statement)
    for table, name, definition in rebuild.constraints:
        cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def reset_sequences(cur, tables: list[str]) -> None:
    """Point each table's id sequence at its highest id, so the next insert gets max + 1."""
    for table in tables:
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), coalesce(max(id), 1), "
            f"max(id) IS NOT NULL) FROM {table}",
            [table],
        )


def analyze(cur, tables: list[str]) -> None:
    for table in tables:
        cur.execute(f"ANALYZE {table}")
