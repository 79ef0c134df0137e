"""`manage.py failed_tasks` without a worker: the listing, and the errors for bad ids."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from config.celery_app import app
from shop.models import FailedTask

pytestmark = pytest.mark.django_db


def record(**fields) -> FailedTask:
    values = {
        "task_name": "orders.tasks.send_order_confirmation",
        "task_id": "abc",
        "queue": app.conf.task_default_queue,
        "args": [7],
        "exception_type": "SMTPDataError",
        "exception_message": "(554, b'5.7.1 rejected')",
        **fields,
    }
    return FailedTask.objects.create(**values)


def run(*args) -> str:
    out = StringIO()
    call_command("failed_tasks", *args, stdout=out)
    return out.getvalue()


def test_list_with_nothing_failed_says_so():
    assert run("list") == "no failed tasks\n"


def test_list_is_a_table_newest_first_with_the_error_on_one_line():
    old = record(exception_message="first\nline two")
    new = record(task_id="def", exception_message="x" * 200)
    lines = run("list").splitlines()
    assert lines[0].split() == [
        "id",
        "failed",
        "at",
        "(UTC)",
        "task",
        "queue",
        "attempts",
        "retried",
        "at",
        "error",
    ]
    assert [line.split()[0] for line in lines[1:]] == [str(new.pk), str(old.pk)]
    assert lines[2].endswith("SMTPDataError: first line two")
    assert lines[1].endswith("…") and len(lines[1].split("  ")[-1].strip()) == 60


@pytest.mark.parametrize(
    "args, message",
    [
        (["retry"], "give the ids of the failed tasks to retry, or --all"),
        (["retry", "1", "--all"], "give the ids of the failed tasks to retry, or --all"),
        (["retry", "999999"], "no failed task with id 999999 (see `list`)"),
    ],
)
def test_retry_refuses_bad_ids_in_one_line(args, message):
    with pytest.raises(CommandError) as raised:
        call_command("failed_tasks", *args)
    assert str(raised.value) == message


def test_an_unknown_id_among_good_ones_sends_none_of_them(monkeypatch):
    good = record()
    sent = []
    monkeypatch.setattr(app, "send_task", lambda *a, **k: sent.append(a))
    with pytest.raises(CommandError, match="no failed task with id 999999"):
        call_command("failed_tasks", "retry", str(good.pk), "999999")
    assert sent == []
    good.refresh_from_db()
    assert good.retried_at is None


def test_retry_all_with_nothing_pending_says_so():
    assert run("retry", "--all") == "no failed tasks waiting for a retry\n"


def test_retry_all_sends_every_pending_one_to_its_queue_and_marks_it():
    done = record(task_id="done")
    done.retried_at = done.failed_at
    done.save()
    pending = [record(task_id="one", args=[1]), record(task_id="two", args=[2])]
    with app.connection_for_write() as connection:
        queue = app.amqp.queues[app.conf.task_default_queue].bind(connection.default_channel)
        queue.declare()
        queue.purge()
        output = run("retry", "--all")
        bodies = []
        while (message := queue.get(no_ack=True)) is not None:
            bodies.append((message.headers["task"], message.decode()[0]))
    assert [line.split(":")[0] for line in output.splitlines()] == [str(r.pk) for r in pending]
    assert bodies == [
        ("orders.tasks.send_order_confirmation", [1]),
        ("orders.tasks.send_order_confirmation", [2]),
    ]
    assert FailedTask.objects.filter(retried_at__isnull=True).count() == 0
