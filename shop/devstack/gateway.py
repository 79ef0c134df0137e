"""The stub payment gateway (shop/payment_gateway_stub.py): a detached Python process on the
stack's gateway port, found by its pid file, checked with GET /health. Its latency and failure
rate are read from the same environment variables as the settings
(PAYMENT_GATEWAY_STUB_LATENCY_MS, PAYMENT_GATEWAY_STUB_FAILURE_RATE)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .layout import HOST, PROJECT_ROOT, DevstackError, Stack, _Out, _show
from .process import _child_env, _pid_runs, _read_pid, _refuse_taken_port, _tail, _wait_gone

GATEWAY_START_TIMEOUT = 15  # seconds
GATEWAY_MODULE = "shop.payment_gateway_stub"


def gateway_ping(port: int, host: str = HOST) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _ensure_gateway(stack: Stack, say: _Out, actions: list[str]) -> None:
    port = stack.gateway_port
    pid = _read_pid(stack.gateway_pidfile)
    if gateway_ping(port) and _pid_runs(pid, GATEWAY_MODULE):
        say(f"payment gateway stub already running on {HOST}:{port} (pid {pid})")
        return
    _refuse_taken_port(port, "payment gateway stub", "PAYMENT_GATEWAY_URL")
    latency = os.environ.get("PAYMENT_GATEWAY_STUB_LATENCY_MS") or "0"
    failure_rate = os.environ.get("PAYMENT_GATEWAY_STUB_FAILURE_RATE") or "0"
    stack.gateway_dir.mkdir(parents=True, exist_ok=True)
    say(f"starting the payment gateway stub on {HOST}:{port} (latency {latency} ms, "
        f"failure rate {failure_rate}) ...")  # fmt: skip
    with open(stack.gateway_log, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", GATEWAY_MODULE, "--host", HOST, "--port", str(port),
             "--latency-ms", latency, "--failure-rate", failure_rate],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PROJECT_ROOT,
            env=_child_env(), start_new_session=True,
        )  # fmt: skip
    stack.gateway_pidfile.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + GATEWAY_START_TIMEOUT
    while not gateway_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise DevstackError(
                f"the payment gateway stub did not answer on {HOST}:{port}; see its log "
                f"{stack.gateway_log}:\n{_tail(stack.gateway_log)}"
            )
        time.sleep(0.1)
    actions.append("start gateway")
    say(f"payment gateway stub up on {HOST}:{port} (pid {process.pid})")


def _stop_gateway(stack: Stack, say: _Out) -> bool:
    """Stop the stub this state folder started, found by its pid file; leave any other."""
    pid = _read_pid(stack.gateway_pidfile)
    if not _pid_runs(pid, GATEWAY_MODULE):
        if gateway_ping(stack.gateway_port):
            say(f"payment gateway stub on {HOST}:{stack.gateway_port} was not started from "
                f"{_show(stack.root)}: left running")  # fmt: skip
        return False
    say(f"stopping the payment gateway stub (pid {pid}) ...")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    # Reaped here when it is our own child (the process that started it is still running, as
    # in a test); otherwise its parent is init, which reaps it.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    _wait_gone(pid, 20, f"payment gateway stub (pid {pid})")
    stack.gateway_pidfile.unlink(missing_ok=True)
    return True
