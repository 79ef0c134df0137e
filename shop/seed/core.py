"""`seed()`: replace the shop's data with a generated, deterministic data set of a given size."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from time import perf_counter

from django.contrib.auth.hashers import make_password
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from shop.seed import db, redis_state
from shop.seed.generate import Block, World
from shop.seed.report import Progress, SeedReport, peak_rss_bytes
from shop.seed.spec import DEFAULT_SEED, ORDER_SPAN_DAYS, PASSWORD, SIZES
from shop.techniques import materialized_view


def default_anchor() -> date:
    """Today in UTC: timestamps run up to today's UTC midnight."""
    return datetime.now(UTC).date()


def password_hash(seed: int) -> str:
    """The hash of PASSWORD under the configured default hasher, computed once per seed.

    The salt is derived from the seed, not random, so the same seed gives identical auth_user
    rows; it has enough characters that Django doesn't ask to re-hash it at login.
    """
    salt = hashlib.sha256(f"perfshop-seed-{seed}".encode()).hexdigest()[:24]
    return make_password(PASSWORD, salt=salt)


def seed(
    *,
    size: str,
    seed: int = DEFAULT_SEED,
    anchor: date | None = None,
    out: Callable[[str], None] = print,
    using: str = DEFAULT_DB_ALIAS,
    freeze: bool = True,
    rebuild_indexes: bool = True,
    threaded: bool = True,
) -> SeedReport:
    """Replace all shop data (users, catalog, orders) with a generated data set.

    - `size`: a key of `SIZES` ("small", "medium", "large").
    - `seed` and `anchor`: the same pair gives identical rows, ids included. Timestamps lie
      in the ~3 years before the anchor's UTC midnight (default: today), orders in the last 730
      days, denser towards the anchor.
    - `out`: receives progress and report lines (pass `lambda line: None` for silence).
    - `freeze`: load with COPY ... WITH (FREEZE).
    - `rebuild_indexes`: drop secondary indexes, unique and foreign key constraints for the
      load and re-create them after it (faster than maintaining them row by row).
    - `threaded`: run the COPY statements on a writer thread, overlapping generation in
      Python with loading in PostgreSQL.

    Everything runs in one transaction (a savepoint if the caller has one open): on any error
    or Ctrl-C the previous data stays as it was. Once it commits, this database's Redis keys
    go, and this process's local_cache L1 (shop/seed/redis_state.py).
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}: choose one of {', '.join(SIZES)}")
    spec = SIZES[size]
    anchor = anchor or default_anchor()
    connection = connections[using]
    started = perf_counter()
    report = SeedReport(
        size=size,
        seed=seed,
        anchor=anchor,
        database=connection.settings_dict["NAME"],
        freeze=freeze,
    )
    phases = report.phases

    @contextmanager
    def phase(name: str):
        t = perf_counter()
        yield
        phases[name] = phases.get(name, 0.0) + perf_counter() - t

    out(
        f"Seeding size={size} seed={seed} anchor={anchor.isoformat()} (timestamps end at its "
        f"UTC midnight) into database {report.database!r}"
    )
    with phase("prepare"):
        world = World(spec=spec, seed=seed, anchor=anchor, password_hash=password_hash(seed))

    with transaction.atomic(using=using), connection.cursor() as cur:
        with phase("truncate"):
            truncated = db.existing_tables(cur, db.TRUNCATED_TABLES)
            report.previous_counts = db.row_counts(cur, truncated)
            out(
                "Current rows: "
                + ", ".join(f"{table} {count:,}" for table, count in report.previous_counts.items())
            )
            extras = db.cascade_extras(cur, truncated)
            out(
                "This replaces all shop data (users, catalog, orders): it empties "
                + ", ".join(truncated)
                + (f" (and, by CASCADE, {', '.join(extras)})" if extras else "")
                + " and loads new rows, all in one transaction (on failure nothing changes)."
            )
            # One long transaction by design: the project's session bounds don't apply to it.
            previous = _set_local(
                cur, statement_timeout="0", idle_in_transaction_session_timeout="0"
            )
            # Inside a caller's transaction (a test), deferred foreign-key checks may still be
            # queued, and PostgreSQL refuses to TRUNCATE or ALTER a table that has any.
            db.run_deferred_checks(cur)
            db.truncate(cur, truncated)
            # A partitioned event log (table_partitioning) takes only rows with a month to go
            # to: one partition per month of the orders' span, and the months ahead.
            db.event_partitions(
                cur, first=anchor - timedelta(days=ORDER_SPAN_DAYS + 1), last=anchor
            )
        if rebuild_indexes:
            with phase("drop indexes"):
                rebuild = db.drop_secondary(cur, db.LOADED_TABLES)
                report.rebuilt_objects = len(rebuild)
        with db.CopyLoader(cur.cursor, freeze=freeze, threaded=threaded) as loader:
            with phase("users"):
                _stream(loader, world.user_blocks(), Progress(out, "users", spec.users))
                loader.add(world.staff_block())
                loader.close()
            with phase("catalog"):
                loader.add(world.taxonomy_block())
                _stream(loader, world.product_blocks(), Progress(out, "products", spec.products))
                loader.close()
            with phase("orders"):
                _stream(loader, world.order_blocks(), Progress(out, "orders", spec.orders))
                loader.close()
        if rebuild_indexes:
            with phase("rebuild indexes"):
                out(f"  rebuilding {len(rebuild)} indexes and constraints ...")
                db.restore(cur, rebuild)
        else:
            with phase("check constraints"):
                # The per-row checks queued by the load: they fail here rather than at the
                # caller's commit.
                db.run_deferred_checks(cur)
        with phase("sequences"):
            db.reset_sequences(cur, db.LOADED_TABLES)
        with phase("analyze"):
            db.analyze(cur, db.LOADED_TABLES)
        with phase("sales report"):
            # The report's read model (materialized_view) summed the orders just replaced; it
            # commits with them. Not CONCURRENTLY: every row changes, and it is faster whole.
            materialized_view.refresh(using=using, concurrently=False)
        _restore_local(cur, previous)
        if connection.settings_dict["NAME"] == connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]:
            # The Redis keys are named after the default database's name: after the commit,
            # those describing the replaced rows go (shop/seed/redis_state.py).
            transaction.on_commit(lambda: _drop_redis_state(phase, out), using=using)
        commit_started = perf_counter()
    phases["commit"] = perf_counter() - commit_started - phases.get(_REDIS_PHASE, 0.0)
    if _REDIS_PHASE in phases:
        phases[_REDIS_PHASE] = phases.pop(_REDIS_PHASE)  # after the commit, as it ran

    report.counts = dict(loader.rows)
    report.copy_statements = loader.statements
    report.copy_seconds = {t: round(s, 2) for t, s in loader.copy_seconds.items()}
    report.total_seconds = perf_counter() - started
    report.peak_rss_bytes = peak_rss_bytes()
    for line in report.lines():
        out(line)
    return report


_REDIS_PHASE = "drop redis keys"


def _drop_redis_state(phase, out: Callable[[str], None]) -> None:
    with phase(_REDIS_PHASE):
        redis_state.drop(out=out)


def _stream(loader: db.CopyLoader, blocks: Iterator[tuple[int, Block]], progress: Progress) -> None:
    for done, block in blocks:
        loader.add(block)
        progress.update(done)


def _set_local(cur, **settings: str) -> dict[str, str]:
    """SET LOCAL some settings for this transaction; returns the previous values."""
    previous = {}
    for name, value in settings.items():
        cur.execute("SELECT current_setting(%s)", [name])
        previous[name] = cur.fetchone()[0]
        cur.execute("SELECT set_config(%s, %s, true)", [name, value])
    return previous


def _restore_local(cur, previous: dict[str, str]) -> None:
    for name, value in previous.items():
        cur.execute("SELECT set_config(%s, %s, true)", [name, value])
