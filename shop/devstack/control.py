"""The operations people run: up, down, status (+ format_status) and env_lines."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import TextIO

from .carriers import NAMES as CARRIER_NAMES
from .carriers import _ensure_carriers, _stop_carriers, carriers_ping
from .discovery import PgToolchain, _try_toolchain
from .external import _check_postgres_url, _check_redis_url, _check_tcp, _report_external
from .gateway import _ensure_gateway, _stop_gateway, gateway_ping
from .layout import HOST, MARKER_FILE, DevstackError, Stack, _env, _mask, _Out, _show
from .pgbouncer import _ensure_pgbouncer, _stop_pgbouncer
from .postgres import _ensure_primary, _ensure_replica, _pg_pid, _prepare_dir, _psql, _stop_pg
from .process import _locked, _pid_alive, _read_pid
from .redis import _ensure_redis, _stop_redis, redis_ping
from .smtp import _ensure_smtp, _stop_smtp, smtp_ping

# The servers, in the order `status` lists them.
ROLES = ("primary", "replica", "redis", "broker", "gateway", "smtp", "carriers")


def up(
    verbose: bool = True, *, stack: Stack | None = None, stream: TextIO | None = None
) -> list[str]:
    """Start whatever of primary, replica, the two Redis servers (cache, Celery broker), the
    payment gateway stub, the SMTP sink and the stub carriers is not running; idempotent.

    Returns the actions taken (an empty list when everything was already up). Raises
    DevstackError with a message that says what to do when something can't start.
    """
    stack = stack or Stack.default()
    say = _Out(verbose, stream)
    actions: list[str] = []
    problems: list[str] = []
    database_url = os.environ.get("DATABASE_URL")
    replica_url = os.environ.get("DATABASE_REPLICA_URL")
    redis_url = os.environ.get("REDIS_URL")
    with _locked(stack, claim=True):
        if database_url:
            say(f"DATABASE_URL is set: using {_mask(database_url)} instead of a local primary "
                "and replica")  # fmt: skip
            _report_external("DATABASE_URL", database_url, _check_postgres_url, say, problems)
            if replica_url:
                _report_external(
                    "DATABASE_REPLICA_URL", replica_url, _check_postgres_url, say, problems
                )
            else:
                say(
                    "  note: DATABASE_REPLICA_URL is not set, so the `replica` alias still "
                    f"points at {HOST}:{stack.replica_port}; set DATABASE_REPLICA_URL too"
                )
        else:
            pg = PgToolchain.discover()
            stack.log_dir.mkdir(parents=True, exist_ok=True)
            _prepare_dir(stack.log_dir, pg_owned=True)
            _prepare_dir(stack.socket_dir, pg_owned=True)
            _ensure_primary(pg, stack, say, actions)
            _ensure_pgbouncer(stack, say, actions)  # when installed; in front of the primary
            if replica_url:
                say(f"DATABASE_REPLICA_URL is set: using {_mask(replica_url)} instead of a "
                    "local replica")  # fmt: skip
                _report_external(
                    "DATABASE_REPLICA_URL", replica_url, _check_postgres_url, say, problems
                )
            else:
                _ensure_replica(pg, stack, say, actions)
        for server in stack.redis_servers:
            if url := os.environ.get(server.url_variable):
                say(f"{server.url_variable} is set: using {_mask(url)} instead of a local "
                    f"{server.role}")  # fmt: skip
                if url.startswith(("redis://", "rediss://")):
                    _report_external(server.url_variable, url, _check_redis_url, say, problems)
                else:  # a broker of another kind (amqp:// for RabbitMQ): its port answers
                    _report_external(server.url_variable, url, _check_any_url, say, problems)
            else:
                _ensure_redis(stack, server, say, actions)
        if gateway_url := os.environ.get("PAYMENT_GATEWAY_URL"):
            say(f"PAYMENT_GATEWAY_URL is set: using {_mask(gateway_url)} instead of the stub")
            _report_external("PAYMENT_GATEWAY_URL", gateway_url, _check_http_url, say, problems)
        else:
            _ensure_gateway(stack, say, actions)
        if email_host := os.environ.get("EMAIL_HOST"):
            say(f"EMAIL_HOST is set: mail goes to {email_host} instead of the SMTP sink")
        else:
            _ensure_smtp(stack, say, actions)
        carrier_urls = {
            f"CARRIER_{name.upper()}_URL": os.environ.get(f"CARRIER_{name.upper()}_URL")
            for name in CARRIER_NAMES
        }
        if any(carrier_urls.values()):
            say("CARRIER_*_URL is set: using those carriers instead of the stubs")
            for variable, url in carrier_urls.items():
                if url:
                    _report_external(variable, url, _check_http_url, say, problems)
        else:
            _ensure_carriers(stack, say, actions)
    if problems:
        raise DevstackError("\n".join(problems))
    if not actions:
        local = "" if not (database_url or redis_url) else " (or external)"
        say(f"nothing to do: everything already up{local}")
    return actions


def down(
    verbose: bool = True,
    *,
    purge: bool = False,
    stack: Stack | None = None,
    stream: TextIO | None = None,
) -> list[str]:
    """Stop the stub carriers, the gateway stub, the SMTP sink, replica, primary and both Redis
    servers (fast shutdown); keep the data unless
    `purge`.

    With purge=True, delete the whole state folder afterwards. Returns the actions taken.
    """
    stack = stack or Stack.default()
    say = _Out(verbose, stream)
    actions: list[str] = []
    if not stack.root.exists():
        say(f"nothing to stop: {_show(stack.root)} does not exist")
        return actions
    if purge and not (stack.root / MARKER_FILE).exists() and any(stack.root.iterdir()):
        raise DevstackError(
            f"refusing to purge {stack.root}: it has no {MARKER_FILE} file, so it does not look "
            "like a devstack state folder (check PERFSHOP_STACK_DIR)"
        )
    pg = _try_toolchain() if (stack.primary_dir.exists() or stack.replica_dir.exists()) else None
    with _locked(stack):
        if _stop_pgbouncer(stack, say):
            actions.append("stop pgbouncer")
        if _stop_gateway(stack, say):
            actions.append("stop gateway")
        if _stop_carriers(stack, say):
            actions.append("stop carriers")
        if _stop_smtp(stack, say):
            actions.append("stop smtp")
        for role in ("replica", "primary"):
            if _stop_pg(pg, stack, role, say):
                actions.append(f"stop {role}")
        for server in stack.redis_servers:
            if _stop_redis(stack, server, say):
                actions.append(f"stop {server.role}")
        if not actions:
            say("local stack already stopped")
        if purge:
            say(f"purging {_show(stack.root)}: deleting all local PostgreSQL and Redis data ...")
            outside = [stack.pg_root, stack.socket_dir]
            shutil.rmtree(stack.root)
            for folder in outside:
                if not folder.is_relative_to(stack.root) and folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
            actions.append("purge")
            say(f"purged {stack.root}; `devstack up` starts over from nothing")
        elif actions:
            say(f"stopped; data kept in {_show(stack.root)} (`down --purge` deletes it)")
    return actions


def status(*, stack: Stack | None = None) -> dict:
    """The state of each server, as a dict keyed 'primary', 'replica', 'redis' (the cache),
    'broker' (Celery's Redis), 'gateway', 'smtp' (+ 'state_dir').

    Each entry has: running (bool), state ('running', 'stopped', 'not created'), port, pid,
    and data_dir/log; 'external' is the URL in use instead when the env var for it is set.
    The primary adds streaming_replicas; the replica adds in_recovery and wal_receiver.
    """
    stack = stack or Stack.default()
    have_pg = stack.primary_dir.exists() or stack.replica_dir.exists()
    pg = _try_toolchain() if have_pg else None
    result: dict = {"state_dir": str(stack.root)}
    database_url = os.environ.get("DATABASE_URL")
    replica_url = os.environ.get("DATABASE_REPLICA_URL")
    for role in ("primary", "replica"):
        datadir = stack.data_dir(role)
        pid = _pg_pid(pg, datadir)
        entry: dict = {
            "running": pid is not None,
            "state": "running" if pid else ("stopped" if datadir.exists() else "not created"),
            "port": stack.port(role),
            "pid": pid,
            "data_dir": str(datadir),
            "log": str(stack.pg_log(role)),
            # what the `default` / `replica` aliases in settings use instead of this server
            "external": replica_url if role == "replica" else database_url,
        }
        if pid and pg is not None:
            if role == "primary":
                proc = _psql(
                    pg, stack.primary_port,
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming';",
                    check=False,
                )  # fmt: skip
                entry["streaming_replicas"] = (
                    int(proc.stdout.strip()) if proc.returncode == 0 else None
                )
            else:
                proc = _psql(
                    pg, stack.replica_port,
                    "SELECT pg_is_in_recovery(), "
                    "coalesce((SELECT status FROM pg_stat_wal_receiver), 'none');",
                    check=False,
                )  # fmt: skip
                if proc.returncode == 0 and "|" in proc.stdout:
                    recovery, receiver = proc.stdout.strip().split("|", 1)
                    entry["in_recovery"] = recovery == "t"
                    entry["wal_receiver"] = receiver
                else:
                    entry["in_recovery"] = None
                    entry["wal_receiver"] = "unknown"
        result[role] = entry
    for server in stack.redis_servers:
        redis_pid = _read_pid(server.pidfile)
        redis_up = redis_ping(server.port)
        result[server.role] = {
            "running": redis_up,
            "state": "running" if redis_up else "stopped",
            "port": server.port,
            "pid": redis_pid if redis_up and _pid_alive(redis_pid) else None,
            "data_dir": str(server.dir),
            "log": str(server.log),
            "external": os.environ.get(server.url_variable),
        }
    gateway_pid = _read_pid(stack.gateway_pidfile)
    gateway_up = gateway_ping(stack.gateway_port)
    result["gateway"] = {
        "running": gateway_up,
        "state": "running" if gateway_up else "stopped",
        "port": stack.gateway_port,
        "pid": gateway_pid if gateway_up and _pid_alive(gateway_pid) else None,
        "data_dir": str(stack.gateway_dir),
        "log": str(stack.gateway_log),
        "external": os.environ.get("PAYMENT_GATEWAY_URL"),
    }
    smtp_pid = _read_pid(stack.smtp_pidfile)
    smtp_up = smtp_ping(stack.smtp_port)
    result["smtp"] = {
        "running": smtp_up,
        "state": "running" if smtp_up else "stopped",
        "port": stack.smtp_port,
        "pid": smtp_pid if smtp_up and _pid_alive(smtp_pid) else None,
        "data_dir": str(stack.smtp_mail_dir),
        "log": str(stack.smtp_log),
        "external": os.environ.get("EMAIL_HOST"),
    }
    carriers_pid = _read_pid(stack.carriers_pidfile)
    carriers_up = carriers_ping(list(stack.carrier_ports))
    result["carriers"] = {
        "running": carriers_up,
        "state": "running" if carriers_up else "stopped",
        "port": ",".join(map(str, stack.carrier_ports)),
        "pid": carriers_pid if carriers_up and _pid_alive(carriers_pid) else None,
        "data_dir": str(stack.carriers_dir),
        "log": str(stack.carriers_log),
        "external": os.environ.get("CARRIER_RAPID_URL"),
    }
    return result


def format_status(info: dict) -> list[str]:
    """One line per server, for people."""
    lines = []
    for role in ROLES:
        if role not in info:
            continue
        entry = info[role]
        line = (
            f"{role:<8} {entry['state']:<11} port {entry['port']}  "
            f"pid {entry['pid'] or '-':<7} data {_show(Path(entry['data_dir']))}"
        )
        if role == "primary" and entry.get("streaming_replicas") is not None:
            line += f"  streaming replicas: {entry['streaming_replicas']}"
        if role == "replica" and entry["running"]:
            recovery = {True: "yes", False: "NO", None: "?"}[entry.get("in_recovery")]
            line += f"  in recovery: {recovery}  wal receiver: {entry.get('wal_receiver')}"
        if entry.get("external"):
            line += f"  (app uses {_mask(entry['external'])} instead)"
        lines.append(line)
    return lines


def _check_http_url(url: str) -> str | None:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return _check_tcp(parsed.hostname or "localhost", parsed.port or 80)


def _check_any_url(url: str) -> str | None:
    """A server of a kind the stack does not speak (RabbitMQ for the broker): its port answers."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    default = {"amqp": 5672, "amqps": 5671}.get(parsed.scheme, 0)
    return _check_tcp(parsed.hostname or "localhost", parsed.port or default)


def env_lines() -> list[str]:
    """Shell `export` lines for the URLs the app will use (the local stack unless overridden)."""
    values = {
        "DATABASE_URL": os.environ.get("DATABASE_URL") or _env.DEFAULT_DATABASE_URL,
        "DATABASE_REPLICA_URL": os.environ.get("DATABASE_REPLICA_URL") or _env.DEFAULT_REPLICA_URL,
        "REDIS_URL": os.environ.get("REDIS_URL") or _env.DEFAULT_REDIS_URL,
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL") or _env.DEFAULT_BROKER_URL,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
