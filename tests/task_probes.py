"""Tasks the queue tests send to real workers (config/settings/test.py imports them in the
suite's workers). Each run appends one JSON line to `log_path` before doing what `behaviour`
says, so a test counts the attempts and sees each one's retry number and ETA."""

import json
import os
import signal
import time
from pathlib import Path

from celery import shared_task
from django.db import OperationalError


@shared_task(name="tests.task_probes.probe", bind=True)
def probe(self, log_path: str, behaviour: str, fail_times: int = 0) -> str:
    log = Path(log_path)
    attempt = {
        "retries": self.request.retries,
        "eta": self.request.eta,
        "queue": (self.request.delivery_info or {}).get("routing_key"),
    }
    with log.open("a") as out:
        out.write(json.dumps(attempt) + "\n")
    attempts = len(log.read_text().splitlines())
    if behaviour == "permanent" or (behaviour == "while_flag" and Path(f"{log}.fail").exists()):
        raise ValueError(f"bad input for {log.name}")
    if behaviour == "transient" or (behaviour == "transient_then_ok" and attempts <= fail_times):
        raise OperationalError("server closed the connection unexpectedly")
    if behaviour == "kill":  # a poison message: its pool process dies every time
        os.kill(os.getpid(), signal.SIGKILL)
    while behaviour == "hold" and Path(f"{log}.hold").exists():  # until the test lets go
        time.sleep(0.05)
    return "ok"
