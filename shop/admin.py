from django.contrib import admin

from shop.models import OutboxMessage


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
