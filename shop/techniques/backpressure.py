"""Refuse new work the workers cannot keep up with, instead of queueing it without limit.

With async_tasks on, placing an order commits it as `placed` and leaves its payment capture on
the `payment` queue. The request is fast whatever the workers are doing, so under an overload
(a sale, a slow gateway, half the workers down) orders keep arriving faster than they are
captured.

Off: the code a team writes first. Every order is accepted and its capture queued. The queue
grows without limit; every customer gets a quick 201, and then waits minutes for a payment
result, and a broker holding a million messages is the next outage. Latency is hidden in the
queue, where no response time shows it.

On: before the view runs, the middleware reads how many messages wait on the payment queue
(`queue_declare(passive=True)`, one broker round trip; the messages a worker holds are not
counted). Past the bound it answers 503 with `Retry-After`, and the order is never written: the
customer learns at once that the shop is overloaded, the queue stays at its bound, and every
order that was accepted is captured within bound / drain-rate seconds.

When the broker does not answer, the check lets the order through (fail open) and logs a warning:
the order's tasks are then published the way async_tasks / transactional_outbox publish them
(the outbox keeps them), and refusing every sale for a broker blip is worse than a queue that
may grow while the broker is away.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse
from kombu.exceptions import ChannelError, KombuError
from redis.exceptions import RedisError

from shop import toggles

logger = logging.getLogger(__name__)

TOGGLE = toggles.register(
    "backpressure",
    group="queues",
    description="answer 503 + Retry-After to new orders while the payment queue is at its bound",
)


@dataclass(frozen=True)
class Verdict:
    depth: int | None  # messages waiting; None when the broker did not answer
    bound: int

    @property
    def refused(self) -> bool:
        return self.depth is not None and self.depth >= self.bound


def queue_depth(queue: str) -> int | None:
    """Messages waiting on `queue` (not those a worker holds), or None when the broker does not
    answer within its connect timeout. A queue the broker does not know yet holds 0."""
    from config.celery_app import app

    try:
        with app.pool.acquire(block=True, timeout=settings.BACKPRESSURE_BROKER_TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.BACKPRESSURE_BROKER_TIMEOUT_S)
            try:
                return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:
                return 0  # never declared, or (Redis) emptied: its list no longer exists
    # KombuError: the broker unreachable (OperationalError), or every pooled connection lent
    # out (LimitExceeded); RedisError: a Redis broker that answers with an error.
    except (KombuError, RedisError, OSError, TimeoutError) as exc:
        logger.warning(
            "backpressure: the broker did not answer (%s); the order is let through", exc
        )
        return None


def check() -> Verdict:
    """Whether a new order is refused now: the payment queue's depth against its bound."""
    return Verdict(
        depth=queue_depth(settings.BACKPRESSURE_QUEUE), bound=settings.BACKPRESSURE_MAX_DEPTH
    )


def overloaded(verdict: Verdict) -> JsonResponse:
    """The 503 a refused order gets. Retry-After is the time the workers need to drain the
    queue to its bound at their configured rate, at least 1 s."""
    retry_after = max(1, math.ceil(verdict.depth / settings.BACKPRESSURE_DRAIN_PER_S))
    response = JsonResponse(
        {
            "detail": (
                f"The shop is taking more orders than it can process ({verdict.depth} payments "
                f"waiting). Nothing was ordered; try again in {retry_after} s."
            ),
            "code": "overloaded",
            "queue_depth": verdict.depth,
        },
        status=503,
    )
    response["Retry-After"] = str(retry_after)
    return response


class Middleware:
    """Sheds new orders while the payment queue is at its bound. Listed before sessions and
    authentication, so a refused order costs one broker round trip and no database query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method == "POST"
            and request.path_info in settings.BACKPRESSURE_PATHS
            and toggles.is_enabled(TOGGLE.name)
        ):
            verdict = check()
            if verdict.refused:
                return overloaded(verdict)
        return self.get_response(request)
