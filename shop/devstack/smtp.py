"""The SMTP sink (shop/smtp_sink.py): a detached Python process on the stack's SMTP port, found
by its pid file, checked by its 220 greeting. It writes each message it receives to
`.stack/smtp/mail/` as an `.eml` file; SMTP_SINK_DELAY_MS (the same variable as the settings')
adds a delay per message."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from .layout import HOST, PROJECT_ROOT, DevstackError, Stack, _Out, _show
from .process import _child_env, _pid_runs, _read_pid, _refuse_taken_port, _tail, _wait_gone

SMTP_START_TIMEOUT = 15  # seconds
SMTP_MODULE = "shop.smtp_sink"


def smtp_ping(port: int, host: str = HOST) -> bool:
    """Whether an SMTP server greets on host:port (a 220 line)."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            greeting = sock.recv(512)
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT\r\n")
            return greeting.startswith(b"220")
    except OSError:
        return False


def _ensure_smtp(stack: Stack, say: _Out, actions: list[str]) -> None:
    port = stack.smtp_port
    pid = _read_pid(stack.smtp_pidfile)
    if smtp_ping(port) and _pid_runs(pid, SMTP_MODULE):
        say(f"SMTP sink already running on {HOST}:{port} (pid {pid})")
        return
    _refuse_taken_port(port, "SMTP sink", "EMAIL_HOST/EMAIL_PORT")
    delay = os.environ.get("SMTP_SINK_DELAY_MS") or "0"
    stack.smtp_mail_dir.mkdir(parents=True, exist_ok=True)
    say(f"starting the SMTP sink on {HOST}:{port} (delay {delay} ms, mail in "
        f"{_show(stack.smtp_mail_dir)}) ...")  # fmt: skip
    with open(stack.smtp_log, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", SMTP_MODULE, "--host", HOST, "--port", str(port),
             "--dir", str(stack.smtp_mail_dir), "--delay-ms", delay],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PROJECT_ROOT,
            env=_child_env(), start_new_session=True,
        )  # fmt: skip
    stack.smtp_pidfile.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + SMTP_START_TIMEOUT
    while not smtp_ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise DevstackError(
                f"the SMTP sink did not answer on {HOST}:{port}; see its log "
                f"{stack.smtp_log}:\n{_tail(stack.smtp_log)}"
            )
        time.sleep(0.1)
    actions.append("start smtp")
    say(f"SMTP sink up on {HOST}:{port} (pid {process.pid})")


def _stop_smtp(stack: Stack, say: _Out) -> bool:
    """Stop the sink this state folder started, found by its pid file; leave any other."""
    pid = _read_pid(stack.smtp_pidfile)
    if not _pid_runs(pid, SMTP_MODULE):
        if smtp_ping(stack.smtp_port):
            say(f"SMTP sink on {HOST}:{stack.smtp_port} was not started from "
                f"{_show(stack.root)}: left running")  # fmt: skip
        return False
    say(f"stopping the SMTP sink (pid {pid}) ...")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    _wait_gone(pid, 20, f"SMTP sink (pid {pid})")
    stack.smtp_pidfile.unlink(missing_ok=True)
    return True
