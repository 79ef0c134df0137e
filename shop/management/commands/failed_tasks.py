"""`python manage.py failed_tasks list | retry ID [ID ...] | retry --all`: the Celery tasks that
failed for good (shop.models.FailedTask, written by shop/celery_tasks.py), and sending them again.

`list` prints the newest first, one line each; `retry` sends each named task again, with its
original arguments, to its original queue, and marks it retried. An id that does not exist or
was already retried is refused before anything is sent. See docs/queues.md.
"""

from django.core.management.base import BaseCommand, CommandError

from shop.celery_tasks import resend
from shop.models import FailedTask


class Command(BaseCommand):
    help = "List the Celery tasks that failed for good, or send some of them again."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="the failed tasks, newest first")
        listing.add_argument("--limit", type=int, default=50, help="at most this many (50)")
        listing.add_argument("--pending", action="store_true", help="only the ones not retried yet")
        retry = sub.add_parser("retry", help="send failed tasks again, with their arguments")
        retry.add_argument("ids", nargs="*", type=int, metavar="ID")
        retry.add_argument("--all", action="store_true", help="every one not retried yet")

    def handle(self, *args, action: str, **options):
        if action == "list":
            self.show(limit=options["limit"], pending=options["pending"])
        else:
            self.send_again(ids=options["ids"], every=options["all"])

    def show(self, *, limit: int, pending: bool) -> None:
        records = FailedTask.objects.all()
        if pending:
            records = records.filter(retried_at__isnull=True)
        total = records.count()
        if not total:
            self.stdout.write("no failed tasks" + (" waiting for a retry" if pending else ""))
            return
        rows = [
            (
                str(record.pk),
                record.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
                record.task_name,
                record.queue,
                str(record.attempts),
                record.retried_at.strftime("%Y-%m-%d %H:%M:%S") if record.retried_at else "-",
                _one_line(f"{record.exception_type}: {record.exception_message}", 60),
            )
            for record in records[:limit]
        ]
        header = ("id", "failed at (UTC)", "task", "queue", "attempts", "retried at", "error")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]))
        if total > len(rows):
            self.stdout.write(f"... and {total - len(rows)} older (--limit)")

    def send_again(self, *, ids: list[int], every: bool) -> None:
        if every == bool(ids):
            raise CommandError("give the ids of the failed tasks to retry, or --all")
        if every:
            records = list(FailedTask.objects.filter(retried_at__isnull=True).order_by("pk"))
            if not records:
                self.stdout.write("no failed tasks waiting for a retry")
                return
        else:
            found = FailedTask.objects.in_bulk(ids)
            if missing := [str(pk) for pk in ids if pk not in found]:
                raise CommandError(f"no failed task with id {', '.join(missing)} (see `list`)")
            if done := [str(pk) for pk in ids if found[pk].retried_at is not None]:
                raise CommandError(
                    f"failed task {', '.join(done)} was already retried; if it failed again, "
                    "that failure has an id of its own (see `list`)"
                )
            records = [found[pk] for pk in dict.fromkeys(ids)]
        for record in records:
            try:
                task_id = resend(record)
            except Exception as exc:
                raise CommandError(
                    f"could not send failed task {record.pk} ({record.task_name}) to queue "
                    f"{record.queue}: {type(exc).__name__}: {exc}"
                ) from exc
            self.stdout.write(
                f"{record.pk}: sent {record.task_name} again to {record.queue} as {task_id}"
            )


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
