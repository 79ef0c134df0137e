"""Write the task to publish in the same transaction as the change it announces, and let a relay
carry it to the broker: no committed order is left without its confirmation task.

Placing an order writes to PostgreSQL and then publishes a task to the broker (Redis): two
systems, no transaction spanning both, the dual-write problem.

Off: the code a team writes first. `transaction.on_commit(send, robust=True)`: the task is
published once the order commits, never for a rolled-back one, and a broker error does not turn
the committed order into a 500. That narrows the window and leaves it open: a broker that is
down at the commit (Celery retries the publish for about a second, then gives up), or a process
that dies between the commit and the publish, loses the task. The order is paid, the customer
gets a 201, and no confirmation ever goes out. All that is left is an error in the log, naming
the task and its arguments.

On: `publish()` inserts an `OutboxMessage` row (shop/models.py) in the caller's transaction:
the row commits with the order or rolls back with it, and the request never talks to the
broker. A relay, a process of its own (`manage.py outbox_relay`), claims unsent rows with
`SELECT ... FOR UPDATE SKIP LOCKED`, publishes each with the row's uuid as the Celery task id,
marks them sent and commits. While the broker is down the publish fails, the rows stay unsent,
and the relay backs off and tries again: nothing is lost, only delayed.

Delivery is at least once: a relay that dies after the broker took a message and before its
own commit publishes the row again. The consumer makes that harmless: the confirmation task
checks the order's event log before it sends (orders.services.order_confirmation_send), and
the repeated message carries the same task id. At-least-once relay plus an idempotent consumer
is exactly once in effect.

`relay_once()` is the relay's loop body, a plain function a test calls directly; `relay()` is
the loop (wake-ups, back-off, pruning of old sent rows) the command runs.
"""

from __future__ import annotations

import functools
import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import F
from django.utils import timezone

from shop import toggles

TOGGLE = toggles.register(
    "transactional_outbox",
    group="queues",
    description="write each task to an outbox row in the caller's transaction; a relay "
    "publishes it to the broker",
)

logger = logging.getLogger(__name__)

# The relay LISTENs here; publish() NOTIFYs in the caller's transaction, so the wake-up is
# delivered at the commit, and not at all for a rollback.
CHANNEL = "transactional_outbox"
PRIMARY = "default"


def publish(task: Any, *args: Any, **kwargs: Any) -> None:
    """Have the Celery task `task` (the task or its registered name) run with these
    arguments once the current transaction commits. Arguments must be JSON: ids, not objects."""
    name = task if isinstance(task, str) else task.name
    if not toggles.is_enabled(TOGGLE.name):
        _naive(name, list(args), kwargs)
    else:
        _optimized(name, list(args), kwargs)


def _naive(name: str, args: list, kwargs: dict) -> None:
    # After the commit, so a worker never looks for an order that is not there yet. robust: an
    # error in the publish is logged by Django and the request still succeeds; _send_now logs
    # the lost task itself, with what a person needs to send it again by hand.
    transaction.on_commit(functools.partial(_send_now, name, args, kwargs), robust=True)


def _send_now(name: str, args: list, kwargs: dict) -> None:
    from config.celery_app import app

    try:
        app.send_task(name, args=args, kwargs=kwargs)
    except Exception as exc:
        # The order is committed and the task is gone: only this line knows it existed.
        logger.error(
            "task lost: %s args=%r kwargs=%r was not published: %s: %s",
            name,
            args,
            kwargs,
            type(exc).__name__,
            exc,
        )


def _optimized(name: str, args: list, kwargs: dict) -> None:
    from shop.models import OutboxMessage

    # The caller's transaction (or autocommit): the row is the order's to commit or roll back.
    OutboxMessage.objects.using(PRIMARY).create(task=name, args=args, kwargs=kwargs)
    if settings.TRANSACTIONAL_OUTBOX_NOTIFY:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


# --- the relay -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relayed:
    """What one relay_once() did: rows published and marked sent, and the broker's error when
    it refused one (the rest of the batch is left unsent for the next attempt)."""

    claimed: int
    sent: int
    error: str = ""


def relay_once(*, batch: int | None = None) -> Relayed:
    """Claim up to `batch` unsent rows, oldest first, publish each, mark them sent, commit.

    The claim is `FOR UPDATE SKIP LOCKED`: a second relay running at the same time skips the
    rows this one holds and claims the next ones, so no row is published by two relays at
    once, and neither waits for the other. The rows stay locked until the commit that marks
    them sent; if this process dies before it, the locks go with its session and the rows are
    claimed again (published twice: at least once).
    """
    from config.celery_app import app
    from shop.models import OutboxMessage

    batch = batch or settings.TRANSACTIONAL_OUTBOX_BATCH
    with transaction.atomic(using=PRIMARY):
        claimed = list(
            OutboxMessage.objects.using(PRIMARY)
            .select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True)
            .order_by("id")[:batch]
        )
        if not claimed:
            return Relayed(claimed=0, sent=0)
        sent: list[int] = []
        error = ""
        try:
            # A connection of this call's own: after an outage, no pooled connection to a
            # broker that has gone away is reused.
            with app.connection_for_write() as broker:
                broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0.1)
                producer = broker.Producer()
                for message in claimed:
                    # The queue comes from the task's route (CELERY_TASK_ROUTES), as for
                    # .delay(). No retry here: the relay's loop retries, with back-off.
                    app.send_task(
                        message.task,
                        args=message.args,
                        kwargs=message.kwargs,
                        task_id=str(message.task_id),
                        producer=producer,
                        retry=False,
                    )
                    sent.append(message.pk)
        except Exception as exc:  # the broker is down or refused: kombu, redis, OSError
            error = f"{type(exc).__name__}: {exc}"
        if sent:
            OutboxMessage.objects.using(PRIMARY).filter(pk__in=sent).update(sent_at=timezone.now())
        if error:
            failed = claimed[len(sent)]
            OutboxMessage.objects.using(PRIMARY).filter(pk=failed.pk).update(
                attempts=F("attempts") + 1, last_error=error[:1000]
            )
    return Relayed(claimed=len(claimed), sent=len(sent), error=error)


def prune(*, older_than: timedelta | None = None, chunk: int = 5000) -> int:
    """Delete rows sent more than `older_than` ago (TRANSACTIONAL_OUTBOX_KEEP_SENT_HOURS), a
    chunk per transaction so no long lock is held. Unsent rows are never deleted. Returns the
    rows deleted. The relay runs it every TRANSACTIONAL_OUTBOX_PRUNE_EVERY_S."""
    keep = older_than
    if keep is None:
        keep = timedelta(hours=settings.TRANSACTIONAL_OUTBOX_KEEP_SENT_HOURS)
    cutoff = timezone.now() - keep
    deleted = 0
    while True:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute(
                "DELETE FROM shop_outboxmessage WHERE id IN (SELECT id FROM shop_outboxmessage "
                "WHERE sent_at < %s ORDER BY sent_at LIMIT %s)",
                [cutoff, chunk],
            )
            deleted += cursor.rowcount
            if cursor.rowcount < chunk:
                return deleted


def unsent() -> int:
    """Rows not yet published: the relay's backlog."""
    from shop.models import OutboxMessage

    return OutboxMessage.objects.using(PRIMARY).filter(sent_at__isnull=True).count()


def relay(
    *,
    stop: threading.Event,
    poll_s: float | None = None,
    batch: int | None = None,
    backoff_max_s: float | None = None,
    prune_every_s: float | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> None:
    """Run relay_once() until `stop` is set: at once again while full batches come, after a
    NOTIFY from a commit or `poll_s` (whichever first) when the backlog is empty, and with an
    exponential back-off (0.25 s doubling to `backoff_max_s`) while the broker refuses."""
    poll_s = settings.TRANSACTIONAL_OUTBOX_POLL_S if poll_s is None else poll_s
    batch = batch or settings.TRANSACTIONAL_OUTBOX_BATCH
    backoff_max_s = backoff_max_s or settings.TRANSACTIONAL_OUTBOX_BACKOFF_MAX_S
    prune_every_s = prune_every_s or settings.TRANSACTIONAL_OUTBOX_PRUNE_EVERY_S
    listener = None
    backoff, next_prune = 0.0, time.monotonic()
    try:
        while not stop.is_set():
            try:
                if listener is None and settings.TRANSACTIONAL_OUTBOX_NOTIFY:
                    listener = _listen()
                if time.monotonic() >= next_prune:
                    pruned = prune()
                    if pruned:
                        say(f"pruned {pruned} sent rows")
                    next_prune = time.monotonic() + prune_every_s
                done = relay_once(batch=batch)
            except DatabaseError as exc:  # PostgreSQL restarting: wait for it, as for the broker
                done = Relayed(claimed=0, sent=0, error=f"database: {exc}")
                listener = _closed(listener)
            finally:
                connections.close_all()  # nothing held between batches, nothing stale after
            if done.error:
                backoff = min(max(backoff * 2, 0.25), backoff_max_s)
                say(f"broker refused ({done.error}); {done.sent} sent, retrying in {backoff:g} s")
                stop.wait(backoff)
                continue
            backoff = 0.0
            if done.sent:
                say(f"published {done.sent}")
            if done.claimed == batch:
                continue  # a full batch: more may be waiting
            if not _wait(listener, stop, poll_s):
                listener = _closed(listener)  # lost: a new one next time round
    finally:
        _closed(listener)


def _listen():
    """A connection of its own, outside Django's, that LISTENs on CHANNEL."""
    import psycopg

    params = connections[PRIMARY].get_connection_params()
    for key in ("cursor_factory", "context", "pool", "server_side_binding"):
        params.pop(key, None)
    try:
        listener = psycopg.connect(**params, autocommit=True)
        listener.execute(f"LISTEN {CHANNEL}")
    except psycopg.Error as exc:
        raise DatabaseError(str(exc)) from exc
    return listener


def _closed(listener) -> None:
    if listener is not None:
        listener.close()
    return None


def _wait(listener, stop: threading.Event, poll_s: float) -> bool:
    """Until a NOTIFY arrives, `poll_s` passes or `stop` is set (checked every 0.5 s). False
    when the listening connection broke (the relay then polls until it has a new one)."""
    import psycopg

    deadline = time.monotonic() + poll_s
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        if listener is None:
            stop.wait(min(left, 0.5))
            continue
        try:
            ready, _, _ = select.select([listener.fileno()], [], [], min(left, 0.5))
            # Take every notification waiting: one relay_once() serves them all.
            if ready and list(listener.notifies(timeout=0)):
                return True
        except (psycopg.Error, OSError, ValueError):
            return False
    return True
