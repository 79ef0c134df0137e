"""Celery tasks of the catalog: thin, each calls one function. Routed in
settings.CELERY_TASK_ROUTES (these go to `default`)."""

import logging

import redis
from celery import shared_task
from django.db import DatabaseError

logger = logging.getLogger(__name__)


# Sent by beat every WRITE_BEHIND_FLUSH_EVERY_S (settings.CELERY_BEAT_SCHEDULE). Never retried:
# the next tick does the same work, and a batch a failed flush cut stays pending for it. An
# outage is a warning, not a FailedTask every ten seconds.
@shared_task(name="catalog.tasks.write_behind_flush", max_retries=0, ignore_result=True)
def write_behind_flush() -> dict | None:
    from shop.techniques import write_behind

    try:
        done = write_behind.flush()
    except (redis.RedisError, DatabaseError) as exc:
        logger.warning(
            "write_behind flush failed (%s: %s); the next one retries", type(exc).__name__, exc
        )
        return None
    return {"applied": done.applied, "views": done.views, "products": done.products}
