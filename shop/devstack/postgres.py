"""The PostgreSQL side: initdb and the managed postgresql.conf block, start/stop, the app role
and database, the replication slot, the replica made with pg_basebackup -R, and the queries
that tell whether a server runs and the replica streams."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .discovery import PgToolchain
from .layout import (
    HOST,
    LOCAL_DB_NAME,
    LOCAL_DB_USER,
    PG_SUPERUSER,
    REPLICATION_SLOT,
    DevstackError,
    Stack,
    _Out,
    _show,
)
from .process import _pg_account, _pid_runs, _read_pid, _refuse_taken_port, _run, _tail, _wait_gone

PG_START_TIMEOUT = 120  # seconds
STREAMING_WAIT = 15


def _pg_settings(stack: Stack, role: str, bindir: Path) -> list[tuple[str, str, str]]:
    """(name, value, comment) for the managed block of postgresql.conf.

    Sized for a 2-core / 24 GB dev box that bulk-loads test data: generous WAL and checkpoint
    spacing, a moderate shared_buffers (other services share the machine).
    """
    settings = [
        ("listen_addresses", HOST, "loopback only"),
        ("port", str(stack.port(role)), ""),
        ("unix_socket_directories", str(stack.socket_dir), ""),
        ("cluster_name", f"perfshop-{role}", "also the replica's application_name"),
        ("max_connections", "200", ""),
        ("shared_buffers", "256MB", ""),
        ("work_mem", "16MB", ""),
        ("maintenance_work_mem", "256MB", ""),
        ("effective_cache_size", "4GB", ""),
        ("random_page_cost", "1.1", "SSD"),
        ("effective_io_concurrency", "200", ""),
        ("wal_level", "replica", ""),
        ("max_wal_senders", "5", ""),
        ("max_replication_slots", "5", ""),
        ("max_slot_wal_keep_size", "10GB", "a forgotten slot can't fill the disk"),
        ("hot_standby", "on", ""),
        ("max_wal_size", "4GB", "fewer checkpoints during bulk loads"),
        ("min_wal_size", "256MB", ""),
        ("checkpoint_timeout", "15min", ""),
        ("checkpoint_completion_target", "0.9", ""),
        # fsync stays on (a crash must not corrupt the cluster), but a dev stack can lose the
        # last few hundred milliseconds of commits after a crash: commits return sooner.
        ("synchronous_commit", "off", "dev stack only: may lose the last commits on a crash"),
        ("track_io_timing", "on", ""),
        ("log_line_prefix", "%m [%p] %q%u@%d ", ""),
        ("log_timezone", "UTC", ""),
        ("timezone", "UTC", ""),
    ]
    if role == "replica":
        settings.append(("hot_standby_feedback", "on", "no query cancels from primary vacuum"))
    if _has_pg_stat_statements(bindir):
        settings.append(("shared_preload_libraries", "pg_stat_statements", ""))
        settings.append(("pg_stat_statements.track", "all", ""))
    return settings


def _has_pg_stat_statements(bindir: Path) -> bool:
    pg_config = bindir / "pg_config"
    if not os.access(pg_config, os.X_OK):
        return False
    try:
        proc = _run([pg_config, "--pkglibdir"], check=False, timeout=20)
    except DevstackError:
        return False
    pkglibdir = proc.stdout.strip()
    return proc.returncode == 0 and (Path(pkglibdir) / "pg_stat_statements.so").is_file()


CONF_BEGIN = "# >>> perfshop devstack: managed block, rewritten by `devstack up` >>>"
CONF_END = "# <<< perfshop devstack <<<"
PG_HBA = """\
# PerfShop dev stack: trust, but only on the private socket folder and on 127.0.0.1.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
local   replication  all                  trust
host    all          all   127.0.0.1/32   trust
host    replication  all   127.0.0.1/32   trust
"""


def _write_conf(datadir: Path, settings: list[tuple[str, str, str]]) -> bool:
    """Put our settings in a managed block at the end of postgresql.conf. True if it changed."""
    conf = datadir / "postgresql.conf"
    text = conf.read_text()
    base = re.sub(
        rf"\n*{re.escape(CONF_BEGIN)}.*?{re.escape(CONF_END)}\n?", "\n", text, flags=re.S
    ).rstrip("\n")
    lines = [CONF_BEGIN]
    for name, value, comment in settings:
        quoted = "'" + value.replace("'", "''") + "'"
        lines.append(f"{name} = {quoted}" + (f"  # {comment}" if comment else ""))
    lines.append(CONF_END)
    new = base + "\n\n" + "\n".join(lines) + "\n"
    if new == text:
        return False
    conf.write_text(new)  # an existing file keeps its owner (postgres)
    return True


def _system_identifier(datadir: Path) -> bytes | None:
    """The cluster's system identifier: the first 8 bytes of global/pg_control."""
    try:
        with open(datadir / "global" / "pg_control", "rb") as fh:
            return fh.read(8)
    except OSError:
        return None


def _prepare_dir(path: Path, *, pg_owned: bool, mode: int = 0o755) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if pg_owned and (account := _pg_account()) is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(mode)


def _pg_pid(pg: PgToolchain | None, datadir: Path) -> int | None:
    """The postmaster's pid when the server of `datadir` runs (pg_ctl status), else None."""
    if not (datadir / "PG_VERSION").exists():
        return None
    if pg is None:  # no binaries: trust postmaster.pid when its process is alive
        pid = _read_pid(datadir / "postmaster.pid")
        return pid if _pid_runs(pid, "postgres") else None
    proc = _run([pg.exe("pg_ctl"), "-D", datadir, "status"], as_pg=True, check=False, timeout=30)
    if proc.returncode != 0:
        return None
    match = re.search(r"PID:\s*(\d+)", proc.stdout)
    return int(match.group(1)) if match else _read_pid(datadir / "postmaster.pid")


def _psql(
    pg: PgToolchain, port: int, sql: str, *, dbname: str = "postgres", check: bool = True
) -> subprocess.CompletedProcess:
    return _run(
        [pg.exe("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
         "-h", HOST, "-p", str(port), "-U", PG_SUPERUSER, "-d", dbname, "-f", "-"],
        input=sql, check=check, timeout=60, what="psql",
    )  # fmt: skip


def _pg_ready(pg: PgToolchain, port: int) -> bool:
    proc = _run(
        [pg.exe("pg_isready"), "-q", "-h", HOST, "-p", str(port), "-t", "2",
         "-U", PG_SUPERUSER, "-d", "postgres"],
        check=False, timeout=10,
    )  # fmt: skip
    return proc.returncode == 0


def _start_pg(pg: PgToolchain, stack: Stack, role: str, say: _Out) -> int:
    datadir, port, log = stack.data_dir(role), stack.port(role), stack.pg_log(role)
    variable = "DATABASE_URL" if role == "primary" else "DATABASE_REPLICA_URL"
    _refuse_taken_port(port, f"{role} PostgreSQL server", variable)
    say(f"starting {role} on {HOST}:{port} (log {_show(log)}) ...")
    proc = _run(
        [pg.exe("pg_ctl"), "-D", datadir, "-l", log, "-w", "-t", str(PG_START_TIMEOUT), "start"],
        as_pg=True, check=False, timeout=PG_START_TIMEOUT + 30, detach=True, cwd=stack.pg_root,
    )  # fmt: skip
    if proc.returncode != 0:
        raise DevstackError(
            f"the {role} PostgreSQL server did not start on {HOST}:{port}; see its log "
            f"{log}:\n{_tail(log)}\n(pg_ctl said: {proc.stdout.strip()} {proc.stderr.strip()})"
        )
    deadline = time.monotonic() + PG_START_TIMEOUT
    while not _pg_ready(pg, port):
        if time.monotonic() > deadline:
            raise DevstackError(
                f"the {role} PostgreSQL server started but does not accept connections on "
                f"{HOST}:{port} after {PG_START_TIMEOUT}s; see its log {log}:\n{_tail(log)}"
            )
        time.sleep(0.3)
    return _pg_pid(pg, datadir) or 0


def _running_pid(pg: PgToolchain, stack: Stack, role: str) -> int | None:
    """The pid of a server that runs and answers; None when it is not running.

    A server that is shutting down, still starting, or whose postmaster was just killed has a
    live pid without answering: wait until it either answers or is gone.
    """
    datadir, port = stack.data_dir(role), stack.port(role)
    pid = _pg_pid(pg, datadir)
    deadline = time.monotonic() + PG_START_TIMEOUT
    while pid is not None and not _pg_ready(pg, port):
        if time.monotonic() > deadline:
            raise DevstackError(
                f"the {role} PostgreSQL server (pid {pid}) runs but does not accept connections "
                f"on {HOST}:{port}; see its log {stack.pg_log(role)}:\n{_tail(stack.pg_log(role))}"
            )
        time.sleep(0.3)
        pid = _pg_pid(pg, datadir)
    return pid


def _stop_pg(pg: PgToolchain | None, stack: Stack, role: str, say: _Out) -> bool:
    datadir = stack.data_dir(role)
    pid = _pg_pid(pg, datadir)
    if pid is None:
        return False
    say(f"stopping {role} (pid {pid}) ...")
    if pg is not None:
        _run(
            [pg.exe("pg_ctl"), "-D", datadir, "-m", "fast", "-w", "-t", "120", "stop"],
            as_pg=True, timeout=150, what=f"pg_ctl stop ({role})",
        )  # fmt: skip
        return True
    os.kill(pid, signal.SIGINT)  # what `pg_ctl -m fast stop` sends
    _wait_gone(pid, 120, f"the {role} PostgreSQL server (pid {pid})")
    return True


def _q_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _q_lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ensure_role_and_db(pg: PgToolchain, stack: Stack) -> None:
    user, db = LOCAL_DB_USER, LOCAL_DB_NAME
    sql = f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_q_lit(user)}) THEN
    CREATE ROLE {_q_ident(user)} LOGIN SUPERUSER;
  ELSIF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_q_lit(user)}
                    AND rolsuper AND rolcanlogin) THEN
    ALTER ROLE {_q_ident(user)} LOGIN SUPERUSER;
  END IF;
END $$;
SELECT 'CREATE DATABASE {_q_ident(db)} OWNER {_q_ident(user)}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {_q_lit(db)})
\\gexec
"""
    _psql(pg, stack.primary_port, sql)


def _ensure_slot(pg: PgToolchain, stack: Stack, *, fresh: bool = False) -> None:
    slot = _q_lit(REPLICATION_SLOT)
    sql = ""
    if fresh:  # a new base backup: release the WAL an old replica's slot was holding
        sql += (
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            f"WHERE slot_name = {slot} AND NOT active;\n"
        )
    sql += (
        f"SELECT pg_create_physical_replication_slot({slot}, true) WHERE NOT EXISTS "
        f"(SELECT FROM pg_replication_slots WHERE slot_name = {slot});\n"
    )
    _psql(pg, stack.primary_port, sql)


def _check_version(pg: PgToolchain, datadir: Path, role: str) -> None:
    try:
        made_by = int((datadir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return
    if made_by != pg.major:
        raise DevstackError(
            f"the {role} data folder {datadir} was made by PostgreSQL {made_by}, but the binaries "
            f"found are PostgreSQL {pg.major} ({pg.source}); start over with "
            "`python -m shop.devstack down --purge` (this deletes the local data)"
        )


def _ensure_primary(pg: PgToolchain, stack: Stack, say: _Out, actions: list[str]) -> None:
    datadir = stack.primary_dir
    if not (datadir / "PG_VERSION").exists():
        if datadir.exists():  # a half-done initdb: nothing worth keeping
            shutil.rmtree(datadir)
        _prepare_dir(datadir, pg_owned=True, mode=0o700)
        say(f"initdb primary in {_show(datadir)} (PostgreSQL {pg.major}, {pg.source}) ...")
        _run(
            [pg.exe("initdb"), "-D", datadir, "-U", PG_SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C"],
            as_pg=True, timeout=300, cwd=stack.pg_root, what="initdb",
        )  # fmt: skip
        (datadir / "pg_hba.conf").write_text(PG_HBA)
        actions.append("initdb primary")
    _check_version(pg, datadir, "primary")
    changed = _write_conf(datadir, _pg_settings(stack, "primary", pg.bindir))
    pid = _running_pid(pg, stack, "primary")
    if pid is None:
        pid = _start_pg(pg, stack, "primary", say)
        actions.append("start primary")
        say(f"primary up on {HOST}:{stack.primary_port} (pid {pid})")
    else:
        if changed:
            _run([pg.exe("pg_ctl"), "-D", datadir, "reload"], as_pg=True, check=False)
            say("primary: postgresql.conf changed and was reloaded; settings that need a "
                "restart apply after `devstack down` + `devstack up`")  # fmt: skip
            actions.append("reload primary")
        say(f"primary already running on {HOST}:{stack.primary_port} (pid {pid})")
    _ensure_role_and_db(pg, stack)


def _replica_rebuild_reason(stack: Stack) -> str | None:
    replica = stack.replica_dir
    if not (replica / "PG_VERSION").exists():
        return "no replica yet" if not replica.exists() else "incomplete replica folder"
    if not (replica / "standby.signal").exists():
        return "the replica folder is not a standby"
    if _system_identifier(replica) != _system_identifier(stack.primary_dir):
        return "the primary was re-initialised"
    return None


def _ensure_replica(pg: PgToolchain, stack: Stack, say: _Out, actions: list[str]) -> None:
    datadir = stack.replica_dir
    reason = _replica_rebuild_reason(stack)
    if reason:
        if _stop_pg(pg, stack, "replica", say):
            actions.append("stop stale replica")
        if datadir.exists():
            shutil.rmtree(datadir)
        _prepare_dir(datadir, pg_owned=True, mode=0o700)
        _ensure_slot(pg, stack, fresh=True)
        say(f"pg_basebackup replica into {_show(datadir)} ({reason}; slot {REPLICATION_SLOT}) ...")
        _run(
            [pg.exe("pg_basebackup"), "-h", HOST, "-p", str(stack.primary_port),
             "-U", PG_SUPERUSER, "-D", datadir, "-R", "-X", "stream", "-S", REPLICATION_SLOT,
             "--checkpoint=fast", "--no-password"],
            as_pg=True, timeout=3600, cwd=stack.pg_root, what="pg_basebackup",
        )  # fmt: skip
        actions.append("pg_basebackup replica")
    else:
        _ensure_slot(pg, stack)
    _check_version(pg, datadir, "replica")
    changed = _write_conf(datadir, _pg_settings(stack, "replica", pg.bindir))
    pid = _running_pid(pg, stack, "replica")
    if pid is not None:
        if changed:
            _run([pg.exe("pg_ctl"), "-D", datadir, "reload"], as_pg=True, check=False)
            actions.append("reload replica")
        if "start primary" not in actions:
            say(f"replica already running on {HOST}:{stack.replica_port} (pid {pid})")
            return
        # The primary was just (re)started: the replica reconnects within a few seconds.
        say(f"replica already running on {HOST}:{stack.replica_port} (pid {pid}); reconnecting")
    else:
        pid = _start_pg(pg, stack, "replica", say)
        actions.append("start replica")
    deadline = time.monotonic() + STREAMING_WAIT
    receiver = _replica_receiver(pg, stack)
    while receiver != "streaming" and time.monotonic() < deadline:
        time.sleep(0.3)
        receiver = _replica_receiver(pg, stack)
    if receiver == "streaming":
        say(f"replica up on {HOST}:{stack.replica_port} (pid {pid}), streaming from the primary")
    else:
        say(
            f"WARNING: replica up on {HOST}:{stack.replica_port} (pid {pid}) but its WAL receiver "
            f"is {receiver!r}, not streaming after {STREAMING_WAIT}s; see "
            f"{stack.pg_log('replica')}"
        )


def _replica_receiver(pg: PgToolchain, stack: Stack) -> str:
    proc = _psql(
        pg, stack.replica_port,
        "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none');", check=False,
    )  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"
