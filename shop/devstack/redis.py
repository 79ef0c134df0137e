"""The Redis side: a daemonized redis-server on the stack's port, PING/SHUTDOWN over plain RESP
(no client library needed)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time

from .discovery import find_redis_server
from .layout import HOST, DevstackError, Stack, _Out, _show
from .process import _pid_alive, _pid_runs, _read_pid, _refuse_taken_port, _run, _tail, _wait_gone

REDIS_START_TIMEOUT = 20  # seconds


def _redis_command(port: int, *args: str, host: str = HOST, timeout: float = 2.0) -> bytes:
    """Send one command over RESP and return the raw reply (b'' if the server closed)."""
    payload = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        try:
            return sock.recv(1024)
        except (ConnectionResetError, TimeoutError):
            return b""


def redis_ping(port: int, host: str = HOST) -> bool:
    try:
        return _redis_command(port, "PING", host=host).startswith(b"+PONG")
    except OSError:
        return False


def _ensure_redis(stack: Stack, say: _Out, actions: list[str]) -> None:
    port = stack.redis_port
    pid = _read_pid(stack.redis_pidfile)
    if redis_ping(port) and _pid_runs(pid, "redis-server"):
        say(f"redis already running on {HOST}:{port} (pid {pid})")
        return
    _refuse_taken_port(port, "Redis server", "REDIS_URL")
    server, source = find_redis_server()
    stack.redis_dir.mkdir(parents=True, exist_ok=True)
    stale = _read_pid(stack.redis_pidfile)
    if stale is not None and not _pid_alive(stale):
        stack.redis_pidfile.unlink(missing_ok=True)
    say(f"starting redis on {HOST}:{port} ({source}) ...")
    _run(
        [server, "--port", str(port), "--bind", HOST, "--daemonize", "yes",
         "--dir", stack.redis_dir, "--pidfile", stack.redis_pidfile,
         "--logfile", stack.redis_log, "--save", "", "--appendonly", "no"],
        timeout=30, detach=True, cwd=stack.redis_dir, what="redis-server",
    )  # fmt: skip
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while not redis_ping(port):
        if time.monotonic() > deadline:
            raise DevstackError(
                f"redis did not answer PING on {HOST}:{port} within {REDIS_START_TIMEOUT}s; "
                f"see its log {stack.redis_log}:\n{_tail(stack.redis_log)}"
            )
        time.sleep(0.1)
    actions.append("start redis")
    say(f"redis up on {HOST}:{port} (pid {_read_pid(stack.redis_pidfile)})")


def _stop_redis(stack: Stack, say: _Out) -> bool:
    """Stop the Redis this state folder started, found by its pid file. A Redis that merely
    answers on the port may be another checkout's: it is left alone."""
    pid = _read_pid(stack.redis_pidfile)
    if not _pid_runs(pid, "redis-server"):
        if redis_ping(stack.redis_port):
            say(
                f"redis on {HOST}:{stack.redis_port} was not started from {_show(stack.root)}: left running"
            )
        return False
    say(f"stopping redis (pid {pid}) ...")
    # SIGTERM is Redis's clean shutdown; with --save "" it writes nothing.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    _wait_gone(pid, 20, f"redis (pid {pid})")
    return True
