"""Real Celery workers for the bench's queue scenarios (async_tasks, backpressure): one per
queue as the Procfile runs them, started and stopped by the scenario. They are `celery worker`
subprocesses on the bench's database and broker, pointed at the scenario's gateway and mail
server through their environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
READY_S = 60  # a worker's start (Django, the app, the broker) on a loaded machine
STOP_S = 15


def database_url() -> str:
    """The database this process uses, for the workers to use the same one."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@dataclass
class Workers:
    """`celery worker` processes, one per queue, each in a process group of its own."""

    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_S)
        self.processes.clear()


def start_workers(queues: dict[str, int], *, env: dict[str, str]) -> Workers:
    """Start a worker per queue (`{"payment": 4, ...}`: the queue and its concurrency) and wait
    until each says it is ready. Their logs go to a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="perfshop-bench-workers-"))
    # The test suite names its queues per run (config/settings/test.py); elsewhere no suffix.
    suffix = getattr(settings, "TEST_QUEUE_SUFFIX", "")
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local"),
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **({"TEST_QUEUE_SUFFIX": suffix} if suffix else {}),
        **env,
    }
    workers = Workers()
    for queue, concurrency in queues.items():
        log = folder / f"{queue}.log"
        with open(log, "wb") as out:
            workers.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "--queues",
                        queue + suffix,
                        "--concurrency",
                        str(concurrency),
                        "--pool",
                        "prefork",
                        "--hostname",
                        f"bench-{queue}@%h",
                        "--loglevel",
                        "INFO",
                        "--without-heartbeat",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    cwd=ROOT,
                    env=child_env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            )
        workers.logs.append(log)
    deadline = time.monotonic() + READY_S
    while not all(" ready." in log.read_text(errors="replace") for log in workers.logs):
        dead = [p for p in workers.processes if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            output = workers.output()
            workers.stop()
            raise RuntimeError(f"the bench's Celery workers did not start:\n{output[-3000:]}")
        time.sleep(0.1)
    return workers
