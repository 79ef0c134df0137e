"""The Redis side: daemonized redis-servers, the cache's and the Celery broker's, each on its
port with its own folder, pid file and log (layout.RedisServer); PING over plain RESP (no client
library needed)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time

from .discovery import find_redis_server
from .layout import HOST, DevstackError, RedisServer, Stack, _Out, _show
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


def _ensure_redis(stack: Stack, server: RedisServer, say: _Out, actions: list[str]) -> None:
    port, name = server.port, server.role
    pid = _read_pid(server.pidfile)
    if redis_ping(port) and _pid_runs(pid, "redis-server"):
        say(f"{name} already running on {HOST}:{port} (pid {pid})")
        return
    _refuse_taken_port(port, server.what, server.url_variable)
    binary, source = find_redis_server()
    server.dir.mkdir(parents=True, exist_ok=True)
    stale = _read_pid(server.pidfile)
    if stale is not None and not _pid_alive(stale):
        server.pidfile.unlink(missing_ok=True)
    say(f"starting {name} on {HOST}:{port} ({source}) ...")
    # The broker appends every write to a file (fsync each second), so the tasks queued on it
    # survive its restart; the cache keeps nothing.
    persistence = (
        ["--appendonly", "yes", "--appendfsync", "everysec"]
        if server.persistent
        else ["--appendonly", "no"]
    )
    _run(
        [binary, "--port", str(port), "--bind", HOST, "--daemonize", "yes",
         "--dir", server.dir, "--pidfile", server.pidfile,
         "--logfile", server.log, "--save", "", *persistence],
        timeout=30, detach=True, cwd=server.dir, what="redis-server",
    )  # fmt: skip
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while not redis_ping(port):
        if time.monotonic() > deadline:
            raise DevstackError(
                f"{name} did not answer PING on {HOST}:{port} within {REDIS_START_TIMEOUT}s; "
                f"see its log {server.log}:\n{_tail(server.log)}"
            )
        time.sleep(0.1)
    actions.append(f"start {name}")
    say(f"{name} up on {HOST}:{port} (pid {_read_pid(server.pidfile)})")


def _stop_redis(stack: Stack, server: RedisServer, say: _Out) -> bool:
    """Stop the Redis this state folder started, found by its pid file. A Redis that merely
    answers on the port may be another checkout's: it is left alone."""
    pid = _read_pid(server.pidfile)
    if not _pid_runs(pid, "redis-server"):
        if redis_ping(server.port):
            say(
                f"{server.role} on {HOST}:{server.port} was not started from {_show(stack.root)}: left running"
            )
        return False
    say(f"stopping {server.role} (pid {pid}) ...")
    # SIGTERM is Redis's clean shutdown (the broker's append-only file is flushed first).
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    _wait_gone(pid, 20, f"{server.role} (pid {pid})")
    return True
