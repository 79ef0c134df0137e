from django.contrib import admin

from shop.models import FailedTask


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
