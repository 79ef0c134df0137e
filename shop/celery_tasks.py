"""What every Celery task of the project does when it fails (docs/queues.md).

`ShopTask` is the app's task class (config/celery_app.py), so every `@shared_task` gets it:

- an error that may go away by itself (`is_transient`: the database or a connection dropped, a
  mail server's 4xx, the payment gateway's timeout or outage) is retried, after an exponential
  backoff with jitter (`backoff_seconds`), up to settings.TASK_MAX_RETRIES times;
- any other error fails the task at once: running it again would fail the same way, and every
  retry of a bug is load on a system that may already be struggling;
- a task that fails for good, after its retries or at once, is written down as a
  shop.models.FailedTask (`record_failure`, on Celery's task_failure signal), which
  `manage.py failed_tasks` lists and sends again.

Celery's own `autoretry_for=(...)` takes exception classes; the rule here needs the instance
(an SMTP reply's code says whether it is temporary), and it is written once instead of on each
task. A task may still pass `max_retries=...` or `autoretry_for=...` to its decorator.
"""

from __future__ import annotations

import logging
import random
import smtplib
import socket

from celery import Task, signals
from django.conf import settings

logger = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` may not happen again if the same task runs a little later."""
    from django import db
    from kombu.exceptions import OperationalError as BrokerError
    from redis import exceptions as redis_errors

    from shop.payment_gateway import GatewayCircuitOpen, GatewayTimeout, GatewayUnavailable

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # One reply per recipient: temporary only if every refusal is (4xx).
        return bool(exc.recipients) and all(
            400 <= code < 500 for code, _message in exc.recipients.values()
        )
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(
        exc,
        db.OperationalError  # the server went away, a connection or lock timeout, a failover
        | db.InterfaceError  # a connection closed under the task
        | ConnectionError  # refused, reset, aborted: any socket the task opened
        | TimeoutError
        | socket.gaierror  # a name that did not resolve, this time
        | redis_errors.ConnectionError
        | redis_errors.TimeoutError
        | BrokerError  # sending a follow-up task while the broker is unreachable
        | GatewayTimeout
        | GatewayUnavailable
        | GatewayCircuitOpen,  # nothing sent; the breaker lets a probe through later
    )


def backoff_seconds(retries: int, *, base: float, maximum: float, rng=random) -> float:
    """The wait before retry number `retries + 1`: base, 2 x base, 4 x base ... capped at
    `maximum`, each drawn at random from its upper half ("equal jitter"). Without jitter, the
    tasks that failed together in an outage come back together and knock it over again; the
    lower half kept means a retry is never sent straight back."""
    ceiling = min(maximum, base * 2**retries)
    return rng.uniform(ceiling / 2, ceiling)


class _FromSettings:
    """A task attribute read from the settings when it is used, not when this module loads
    (before Django is set up in a worker); a task's own decorator argument still wins."""

    def __init__(self, setting: str):
        self.setting = setting

    def __get__(self, instance, owner):
        return getattr(settings, self.setting)


class ShopTask(Task):
    max_retries = _FromSettings("TASK_MAX_RETRIES")
    # The wait before sending again a task whose worker process was lost (Celery's
    # retry_on_worker_lost uses it), and the unit of the backoff below.
    default_retry_delay = _FromSettings("TASK_RETRY_BACKOFF_S")

    def __call__(self, *args, **kwargs):
        if self.request.called_directly:  # `task(...)` in code: no queue, no retry
            return super().__call__(*args, **kwargs)
        # In a worker, Celery has pushed the message's request (id, retries, delivery_info);
        # Task.__call__ would push a bare one over it, so run() is called as Celery's docs do.
        try:
            return self.run(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            countdown = backoff_seconds(
                self.request.retries,
                base=settings.TASK_RETRY_BACKOFF_S,
                maximum=settings.TASK_RETRY_BACKOFF_MAX_S,
            )
            # Past max_retries, retry() raises `exc` itself: the task fails with it.
            raise self.retry(exc=exc, countdown=countdown) from exc


def _queue_of(task) -> str:
    """The queue the task is routed to, for a failure reported without its message (a hard
    time limit is reported by the worker's main process, which has only the arguments)."""
    try:
        return task.app.amqp.router.route({}, task.name)["queue"].name
    except Exception:
        return settings.CELERY_TASK_DEFAULT_QUEUE


@signals.task_failure.connect
def record_failure(sender=None, task_id=None, exception=None, args=None, kwargs=None, einfo=None,
                   **_) -> None:  # fmt: skip
    """Write down a task that failed for good. Celery sends task_failure once per failure: in
    the pool process for an exception, in the worker's main process for a hard time limit or a
    pool process lost past its retries. A retry is not a failure and sends no signal."""
    from django.db import connection

    from shop.models import FailedTask

    request = sender.request if sender is not None else None
    delivery = (getattr(request, "delivery_info", None) or {}) if request else {}
    retries = getattr(request, "retries", 0) or 0
    record = FailedTask(
        task_name=getattr(sender, "name", "") or "",
        task_id=task_id or "",
        queue=delivery.get("routing_key") or _queue_of(sender),
        args=list(args or []),
        kwargs=dict(kwargs or {}),
        exception_type=type(exception).__name__,
        exception_message=str(exception),
        traceback=str(getattr(einfo, "traceback", "") or ""),
        attempts=retries + 1,
    )
    try:
        record.save()
    except Exception:
        # The database may be why the task failed. The log keeps what the record would have.
        logger.exception(
            "could not record failed task %s[%s] args=%r kwargs=%r: %s: %s",
            record.task_name, record.task_id, record.args, record.kwargs,
            record.exception_type, record.exception_message,
        )  # fmt: skip
        connection.close()


def resend(record) -> str:
    """Send a FailedTask's task again, with its original arguments, to its original queue, and
    mark it retried. Returns the new task id. Raises what sending raises (the broker down, a
    queue no longer declared); the record is then left as it was."""
    from django.utils import timezone

    from config.celery_app import app

    result = app.send_task(
        record.task_name, args=record.args, kwargs=record.kwargs, queue=record.queue
    )
    record.retried_at = timezone.now()
    record.save(update_fields=["retried_at"])
    return result.id
