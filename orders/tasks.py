"""Celery tasks: ids in, one service call. Routed to queues in settings.CELERY_TASK_ROUTES.

Placing an order enqueues `capture_payment` and `record_stock_movements` when it commits
(async_tasks); a paid order enqueues `send_order_confirmation`. Every one is safe to run twice
(workers ack late, so a task whose worker died runs again), and one whose order does not
exist ends with OrderGone at once: a retry could not find it either.
"""

from celery import shared_task
from django.conf import settings

from orders import payments, services, stock


# A gateway that refused the connection, or a breaker that is open, is retried with backoff
# (nothing was charged); a declined card, a timeout (the charge voided) or the last attempt
# moves the order to payment_failed, the answers the request gives with async_tasks off.
@shared_task(bind=True, name="orders.tasks.capture_payment")
def capture_payment(self, order_id: int) -> str:
    final = self.request.called_directly or self.request.retries >= self.max_retries
    return payments.order_payment_capture(order_id=order_id, final_attempt=final)


@shared_task(name="orders.tasks.record_stock_movements")
def record_stock_movements(order_id: int) -> int:
    return stock.order_stock_record(order_id=order_id)


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


# Run by celery beat every SALES_REPORT_REFRESH_S (settings.CELERY_BEAT_SCHEDULE), on the default
# queue: the sales report's read model (materialized_view), refreshed without blocking readers.
# Its time limits are the refresh's own (SALES_REPORT_REFRESH_TIMEOUT_S), not a request's.
@shared_task(
    name="orders.tasks.refresh_sales_report",
    soft_time_limit=settings.SALES_REPORT_REFRESH_TIMEOUT_S,
    time_limit=settings.SALES_REPORT_REFRESH_TIMEOUT_S + 30,
)
def refresh_sales_report() -> float:
    from shop.techniques import materialized_view

    return materialized_view.refresh()
