"""Tasks that fail, on a real broker and real workers: a permanent error fails at once, a
transient one is retried with backoff, a poison message ends, and every task that fails for good
lands once in shop.models.FailedTask, which `manage.py failed_tasks` lists and sends again."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from shop.models import FailedTask
from tests.task_probes import probe
from tests.workers import queue_names

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Two retries, the first after 0.1-0.2 s: a test's worth of the production policy.
FAST_RETRIES = {"TASK_MAX_RETRIES": "2", "TASK_RETRY_BACKOFF_S": "0.2"}


def attempts(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_for_record(worker, task_id: str, seconds: float = 60) -> FailedTask:
    if not worker.wait_for(
        lambda: FailedTask.objects.filter(task_id=task_id).exists(), seconds=seconds
    ):
        pytest.fail(f"task {task_id} was not recorded as failed; worker output:\n{worker.output()}")
    return FailedTask.objects.get(task_id=task_id)


def test_a_permanent_error_is_recorded_once_with_its_arguments_and_not_retried(
    celery_worker, tmp_path
):
    worker = celery_worker("default", env=FAST_RETRIES)
    log = tmp_path / "permanent.log"

    result = probe.delay(str(log), "permanent")
    record = wait_for_record(worker, result.id)

    assert record.task_name == "tests.task_probes.probe"
    assert record.queue == queue_names("default")[0]
    assert record.args == [str(log), "permanent"]
    assert record.kwargs == {}
    assert record.exception_type == "ValueError"
    assert record.exception_message == "bad input for permanent.log"
    assert "raise ValueError" in record.traceback
    assert record.attempts == 1
    assert record.retried_at is None
    # A later task on the same worker runs after any retry of the first would have been due.
    after = tmp_path / "after.log"
    probe.delay(str(after), "ok")
    assert worker.wait_for(lambda: len(attempts(after)) == 1, seconds=30), worker.output()
    assert len(attempts(log)) == 1
    assert FailedTask.objects.filter(task_id=result.id).count() == 1


def test_a_transient_error_is_retried_with_backoff_then_recorded(celery_worker, tmp_path):
    worker = celery_worker("default", env=FAST_RETRIES)
    log = tmp_path / "transient.log"

    result = probe.delay(str(log), "transient")
    record = wait_for_record(worker, result.id)

    runs = attempts(log)
    assert [run["retries"] for run in runs] == [0, 1, 2]
    assert runs[0]["eta"] is None
    assert all(run["eta"] for run in runs[1:])  # each retry was sent with a countdown
    assert record.exception_type == "OperationalError"
    assert record.attempts == 3
    assert FailedTask.objects.count() == 1


def test_a_transient_error_that_passes_ends_in_success_and_no_record(celery_worker, tmp_path):
    worker = celery_worker("default", env=FAST_RETRIES)
    log = tmp_path / "flaky.log"
    done = tmp_path / "done.log"

    probe.delay(str(log), "transient_then_ok", fail_times=2)
    probe.delay(str(done), "ok")  # queued behind it: done when the first one is

    assert worker.wait_for(lambda: len(attempts(done)) == 1, seconds=60), worker.output()
    assert worker.wait_for(lambda: len(attempts(log)) == 3, seconds=30), worker.output()
    assert [run["retries"] for run in attempts(log)] == [0, 1, 2]
    assert not FailedTask.objects.exists()


def test_a_poison_message_that_kills_its_worker_process_ends_as_a_failed_task(
    celery_worker, tmp_path
):
    worker = celery_worker("default", pool="prefork", concurrency=1, env=FAST_RETRIES)
    log = tmp_path / "poison.log"

    result = probe.delay(str(log), "kill")
    record = wait_for_record(worker, result.id, seconds=90)

    assert record.exception_type == "WorkerLostError"
    assert record.args == [str(log), "kill"]
    assert len(attempts(log)) == 3  # the first run and two retries, then no more
    assert worker.alive()
    after = tmp_path / "after.log"
    probe.delay(str(after), "ok")
    assert worker.wait_for(lambda: len(attempts(after)) == 1, seconds=30), worker.output()
    assert len(attempts(log)) == 3


def test_failed_tasks_retry_sends_the_task_again_with_its_arguments(celery_worker, tmp_path):
    worker = celery_worker("default", env=FAST_RETRIES)
    log = tmp_path / "flagged.log"
    flag = tmp_path / "flagged.log.fail"
    flag.touch()
    result = probe.delay(str(log), "while_flag")
    record = wait_for_record(worker, result.id)

    out = StringIO()
    call_command("failed_tasks", "list", stdout=out)
    listing = out.getvalue().splitlines()
    assert listing[0].split()[:3] == ["id", "failed", "at"]
    assert listing[1].startswith(f"{record.pk} ")
    assert "tests.task_probes.probe" in listing[1]
    assert "ValueError: bad input for flagged.log" in listing[1]

    flag.unlink()  # the cause is fixed
    out = StringIO()
    call_command("failed_tasks", "retry", str(record.pk), stdout=out)
    assert f"{record.pk}: sent tests.task_probes.probe again to {record.queue}" in out.getvalue()

    assert worker.wait_for(lambda: len(attempts(log)) == 2, seconds=30), worker.output()
    record.refresh_from_db()
    assert record.retried_at is not None
    assert FailedTask.objects.count() == 1  # it ran and succeeded: no second record
    with pytest.raises(CommandError, match=f"failed task {record.pk} was already retried"):
        call_command("failed_tasks", "retry", str(record.pk))


def test_a_task_over_its_soft_time_limit_fails_at_once_and_is_recorded(celery_worker, tmp_path):
    worker = celery_worker("default", env=FAST_RETRIES)
    log = tmp_path / "slow.log"
    (tmp_path / "slow.log.hold").touch()  # never released: the limit ends it

    # The sender stamps the limits on the message (the settings' by default); a worker obeys them.
    result = probe.apply_async((str(log), "hold"), soft_time_limit=1, time_limit=30)
    record = wait_for_record(worker, result.id)

    assert record.exception_type == "SoftTimeLimitExceeded"
    assert record.attempts == 1
    assert len(attempts(log)) == 1


def test_a_task_of_a_worker_killed_outright_runs_again_after_the_visibility_timeout(
    celery_worker, tmp_path
):
    """kill -9 of the whole worker: no ack, no reject, nothing sent. Redis hands the message to
    the next worker once the visibility timeout (3 s here, an hour by default) has passed."""
    env = {**FAST_RETRIES, "CELERY_VISIBILITY_TIMEOUT": "3"}
    first = celery_worker("default", env=env)
    log = tmp_path / "held.log"
    hold = tmp_path / "held.log.hold"
    hold.touch()
    probe.delay(str(log), "hold")
    assert first.wait_for(lambda: len(attempts(log)) == 1, seconds=30), first.output()

    first.kill()
    hold.unlink()
    second = celery_worker("default", env=env)

    assert second.wait_for(lambda: len(attempts(log)) == 2, seconds=60), second.output()
    assert [run["retries"] for run in attempts(log)] == [0, 0]  # delivered again, not retried
    assert not FailedTask.objects.exists()
