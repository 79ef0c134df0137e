"""Real Celery workers for tests: subprocesses on the test broker and the test database.

Eager mode is never used where a test claims to test queuing; a test that needs a worker asks
the `celery_worker` fixture (tests/conftest.py) for one, on the queues it names:

    worker = celery_worker("email", "payment")
    ...
    worker.kill()            # SIGKILL in the middle of a task (acks_late redelivers it)

Each worker is stopped at the end of the test, and its output is shown when a wait fails.
Workers import tests/task_probes.py too (config/settings/test.py): tasks that fail, retry, hold
or kill their process on request. `env` sets what a worker reads from the environment, e.g.
{"TASK_MAX_RETRIES": "2", "TASK_RETRY_BACKOFF_S": "0.2"} or {"CELERY_VISIBILITY_TIMEOUT": "3"}.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT = 15  # seconds a worker gets to finish its task after SIGTERM


def queue_names(*queues: str) -> list[str]:
    """The names this test run's queues have on the broker (settings.TEST_QUEUE_SUFFIX)."""
    return [f"{queue}{settings.TEST_QUEUE_SUFFIX}" for queue in queues]


def test_database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@dataclass
class Worker:
    process: subprocess.Popen
    queues: list[str]
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: a crash, not a shutdown."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_for(self, predicate: Callable[[], bool], *, seconds: float) -> bool:
        """Poll `predicate` until it holds, the worker dies or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return True
            if not self.alive():
                break
            time.sleep(0.1)
        return predicate()


def start_worker(
    *queues: str,
    log_dir: Path,
    concurrency: int = 1,
    pool: str = "prefork",
    env: dict[str, str] | None = None,
) -> Worker:
    """Start `celery worker` on this run's names of `queues` (default: every queue)."""
    names = queue_names(*(queues or ("default", "email", "inventory", "payment")))
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"worker-{'-'.join(queues) or 'all'}-{time.monotonic_ns()}.log"
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": test_database_url(),
        "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TEST_QUEUE_SUFFIX": settings.TEST_QUEUE_SUFFIX,
        **(env or {}),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker",
             "--pool", pool, "--concurrency", str(concurrency), "--queues", ",".join(names),
             "--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=child_env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Worker(process=process, queues=names, log=log, extra_env=env or {})
