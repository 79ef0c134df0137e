"""What crosses domains and needs a table: the record of Celery tasks that failed for good, and
the transactional outbox's messages."""

from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models import Q


class FailedTask(models.Model):
    """A task that failed after its retries, or at once for a permanent error
    (shop/celery_tasks.py writes it; `manage.py failed_tasks` lists and re-sends it).

    In the `shop` app because it belongs to no domain: any app's task can land here."""

    task_name = models.CharField(max_length=255)
    task_id = models.CharField(max_length=255, db_index=True)
    queue = models.CharField(max_length=255)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    exception_type = models.CharField(max_length=255)
    exception_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    failed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-failed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}] {self.exception_type}"


class OutboxMessage(models.Model):
    """A task to publish, written in the transaction of the change it announces
    (shop/techniques/transactional_outbox.py). The relay publishes it and stamps `sent_at`."""

    # The Celery task id the relay publishes it with: a duplicate publish (the relay died
    # between the broker's accept and its own commit) arrives with the same id. Made by
    # PostgreSQL (gen_random_uuid()), so a row written by SQL alone gets one too.
    task_id = models.UUIDField(db_default=RandomUUID(), unique=True, editable=False)
    task = models.CharField(max_length=200)  # the registered task name
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)  # publishes the broker refused
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The relay's claim reads the unsent rows oldest first; sent rows, nearly all of
            # the table between two prunings, stay out of this index.
            models.Index(
                fields=["id"], condition=Q(sent_at__isnull=True), name="outbox_unsent_idx"
            ),
            # The prune finds sent rows by age.
            models.Index(
                fields=["sent_at"], condition=Q(sent_at__isnull=False), name="outbox_sent_at_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)} ({'sent' if self.sent_at else 'unsent'})"
