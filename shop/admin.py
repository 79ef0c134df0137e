from django.contrib import admin

from shop.models import FailedTask, OutboxMessage


@admin.register(FailedTask)
class FailedTaskAdmin(admin.ModelAdmin):
    """Read-only: the worker writes these; `manage.py failed_tasks retry` sends them again."""

    list_display = [
        "id",
        "task_name",
        "queue",
        "exception_type",
        "attempts",
        "failed_at",
        "retried_at",
    ]
    list_filter = ["task_name", "queue", "exception_type"]
    search_fields = ["task_id", "task_name", "exception_message"]
    readonly_fields = [field.name for field in FailedTask._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Read-only: rows are written by transactional_outbox.publish() and sent by the relay. The
    unsent ones, and the broker's last error for each, are what to look at in an outage."""

    list_display = ["id", "task", "args", "created_at", "sent_at", "attempts", "last_error"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["task", "task_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
