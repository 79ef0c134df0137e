"""Celery tasks: ids in, one service call. Routed to queues in settings.CELERY_TASK_ROUTES."""

from celery import shared_task

from orders import services


# A mail server that is down or answers 4xx for a while is retried with backoff, not dropped
# (shop.celery_tasks.ShopTask, every task's class); a 5xx refusal is not retried. The service is
# safe to run twice, so a retry never sends the email twice. Rate-limited: EMAIL_TASK_RATE_LIMIT.
@shared_task(name="orders.tasks.send_order_confirmation", max_retries=8)
def send_order_confirmation(order_id: int) -> bool:
    return services.order_confirmation_send(order_id=order_id)


# Run daily by celery beat (settings.CELERY_BEAT_SCHEDULE): creating a partition takes a brief
# lock on the whole log, so it happens ahead of time, never when a month's first event arrives.
@shared_task(name="orders.tasks.event_partitions_ahead")
def event_partitions_ahead() -> list[str]:
    from shop.techniques import table_partitioning

    return table_partitioning.ensure_ahead()
