"""PgBouncer in transaction mode in front of the primary, when the `pgbouncer` binary is
installed (Debian: `apt-get install pgbouncer`). It is optional: without it the stack starts as
before and the bench's pgbouncer arm says why it is skipped.

Any database name is passed through to the primary (`* = host=... port=...`), so a developer's
own database (DATABASE_URL's name) is reachable through it too. Authentication is the stack's:
trust on loopback; PgBouncer still wants each user named in its auth file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from .layout import HOST, LOCAL_DB_USER, DevstackError, Stack, _Out, _show
from .process import _pid_runs, _read_pid, _refuse_taken_port, _run, _tail, _wait_gone

START_TIMEOUT = 10  # seconds
# Server connections per (database, user): the most the primary sees from PgBouncer for the
# app's database, however many client connections the web processes open to PgBouncer.
DEFAULT_POOL_SIZE = 20
MAX_CLIENT_CONN = 500


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (str(p) for p in (Path("/usr/sbin/pgbouncer"), Path("/usr/bin/pgbouncer")) if p.exists()),
        None,
    )


def config_text(stack: Stack) -> str:
    """pgbouncer.ini for the stack."""
    folder = stack.pgbouncer_dir
    return "\n".join(
        [
            "[databases]",
            f"* = host={HOST} port={stack.primary_port}",
            "",
            "[pgbouncer]",
            f"listen_addr = {HOST}",
            f"listen_port = {stack.pgbouncer_port}",
            f"unix_socket_dir = {folder}",
            "auth_type = trust",
            f"auth_file = {folder / 'userlist.txt'}",
            # A server connection goes back to the pool at the end of each transaction: a few
            # server connections serve many clients, at the price of nothing session-level
            # (prepared statements, WITH HOLD cursors, SET) surviving a transaction.
            "pool_mode = transaction",
            f"default_pool_size = {DEFAULT_POOL_SIZE}",
            f"max_client_conn = {MAX_CLIENT_CONN}",
            f"logfile = {folder / 'pgbouncer.log'}",
            f"pidfile = {folder / 'pgbouncer.pid'}",
            "",
        ]
    )


def pgbouncer_up(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _ensure_pgbouncer(stack: Stack, say: _Out, actions: list[str]) -> None:
    binary = find_pgbouncer()
    if binary is None:
        say("pgbouncer is not installed: not started (apt-get install pgbouncer)")
        return
    folder, port = stack.pgbouncer_dir, stack.pgbouncer_port
    pid = _read_pid(folder / "pgbouncer.pid")
    if _pid_runs(pid, "pgbouncer") and pgbouncer_up(port):
        say(f"pgbouncer already running on {HOST}:{port} (pid {pid})")
        return
    _refuse_taken_port(port, "PgBouncer", "PERFSHOP_PGBOUNCER_PORT")
    from .postgres import _prepare_dir

    _prepare_dir(folder, pg_owned=True)
    (folder / "pgbouncer.ini").write_text(config_text(stack))
    (folder / "userlist.txt").write_text(f'"{LOCAL_DB_USER}" ""\n')
    # As root it runs as the postgres account, as PostgreSQL does: PgBouncer refuses root.
    log = folder / "pgbouncer.log"
    say(f"starting pgbouncer on {HOST}:{port} (transaction mode, log {_show(log)}) ...")
    _run([binary, "-d", folder / "pgbouncer.ini"], as_pg=True, detach=True, cwd=folder,
         what="pgbouncer")  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while not pgbouncer_up(port):
        if time.monotonic() > deadline:
            raise DevstackError(
                f"pgbouncer did not listen on {HOST}:{port} within {START_TIMEOUT}s; see its "
                f"log {log}:\n{_tail(log)}"
            )
        time.sleep(0.1)
    actions.append("start pgbouncer")
    say(f"pgbouncer up on {HOST}:{port} (pid {_read_pid(folder / 'pgbouncer.pid')})")


def _stop_pgbouncer(stack: Stack, say: _Out) -> bool:
    """Stop the PgBouncer this state folder started, found by its pid file."""
    pid = _read_pid(stack.pgbouncer_dir / "pgbouncer.pid")
    if not _pid_runs(pid, "pgbouncer"):
        return False
    say(f"stopping pgbouncer (pid {pid}) ...")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)  # immediate shutdown: its clients go with the stack
    _wait_gone(pid, 20, f"pgbouncer (pid {pid})")
    return True
