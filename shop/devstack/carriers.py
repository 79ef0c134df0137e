"""The stub shipping carriers (shop/carrier_stub.py): one detached Python process serving the
three carriers on the stack's carrier ports, found by its pid file, checked with GET /health on
each port. Their latencies are read from the same environment variable as the settings
(CARRIER_STUB_LATENCIES_MS, default 100,200,300)."""

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

CARRIERS_START_TIMEOUT = 15  # seconds
CARRIERS_MODULE = "shop.carrier_stub"
NAMES = ("rapid", "national", "economy")  # settings.SHIPPING_CARRIERS' order


def carriers_ping(ports: list[int], host: str = HOST) -> bool:
    """Whether a carrier answers on every port."""
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as response:
                if response.status != 200:
                    return False
        except (OSError, urllib.error.URLError):
            return False
    return True


def _latencies() -> list[str]:
    raw = os.environ.get("CARRIER_STUB_LATENCIES_MS") or "100,200,300"
    values = [value.strip() for value in raw.split(",") if value.strip()]
    if len(values) != len(NAMES) or not all(value.isdigit() for value in values):
        raise DevstackError(
            f"CARRIER_STUB_LATENCIES_MS={raw!r}: give {len(NAMES)} whole milliseconds, "
            "one per carrier (100,200,300)"
        )
    return values


def _ensure_carriers(stack: Stack, say: _Out, actions: list[str]) -> None:
    ports = list(stack.carrier_ports)
    pid = _read_pid(stack.carriers_pidfile)
    if carriers_ping(ports) and _pid_runs(pid, CARRIERS_MODULE):
        say(f"stub carriers already running on {HOST}:{','.join(map(str, ports))} (pid {pid})")
        return
    for port in ports:
        _refuse_taken_port(port, "stub carrier", "CARRIER_*_URL")
    latencies = _latencies()
    stack.carriers_dir.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}:{port}:{ms}" for name, port, ms in zip(NAMES, ports, latencies, strict=True)]
    say(f"starting the stub carriers ({', '.join(specs)}) ...")
    with open(stack.carriers_log, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", CARRIERS_MODULE, "--host", HOST, *specs],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PROJECT_ROOT,
            env=_child_env(), start_new_session=True,
        )  # fmt: skip
    stack.carriers_pidfile.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + CARRIERS_START_TIMEOUT
    while not carriers_ping(ports):
        if process.poll() is not None or time.monotonic() > deadline:
            raise DevstackError(
                f"the stub carriers did not answer on {HOST}:{','.join(map(str, ports))}; see "
                f"their log {stack.carriers_log}:\n{_tail(stack.carriers_log)}"
            )
        time.sleep(0.1)
    actions.append("start carriers")
    say(f"stub carriers up (pid {process.pid})")


def _stop_carriers(stack: Stack, say: _Out) -> bool:
    """Stop the carriers this state folder started, found by their pid file; leave any other."""
    pid = _read_pid(stack.carriers_pidfile)
    if not _pid_runs(pid, CARRIERS_MODULE):
        if carriers_ping(list(stack.carrier_ports)):
            say(f"stub carriers on {HOST}:{','.join(map(str, stack.carrier_ports))} were not "
                f"started from {_show(stack.root)}: left running")  # fmt: skip
        return False
    say(f"stopping the stub carriers (pid {pid}) ...")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    _wait_gone(pid, 20, f"stub carriers (pid {pid})")
    stack.carriers_pidfile.unlink(missing_ok=True)
    return True
