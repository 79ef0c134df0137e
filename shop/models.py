"""What crosses domains and needs a table: the record of Celery tasks that failed for good."""

from django.db import models


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
