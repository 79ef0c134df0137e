"""Other servers instead of local ones: when DATABASE_URL, DATABASE_REPLICA_URL or REDIS_URL is
set, `up` starts nothing for it and only checks that something answers there."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from .layout import _mask, _Out
from .redis import redis_ping


def _check_postgres_url(url: str) -> str | None:
    """None when a server answers at `url`, else why not."""
    try:
        import psycopg
    except ImportError:
        psycopg = None
    if psycopg is not None:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return None
        except Exception as exc:  # any failure means "not usable"
            return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    parsed = urlparse(url)
    return _check_tcp(parsed.hostname or "localhost", parsed.port or 5432)


def _check_redis_url(url: str) -> str | None:
    try:
        import redis
    except ImportError:
        redis = None
    if redis is not None:
        try:
            redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5).ping()
            return None
        except Exception as exc:
            return str(exc) or repr(exc)
    parsed = urlparse(url)
    host, port = parsed.hostname or "localhost", parsed.port or 6379
    return None if redis_ping(port, host=host) else f"no PING answer from {host}:{port}"


def _check_tcp(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=5):
            return None
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc}"


def _report_external(name, url, check, say: _Out, problems: list[str]) -> None:
    error = check(url)
    if error is None:
        say(f"  {name} {_mask(url)}: reachable")
    else:
        problems.append(f"{name} is set but {_mask(url)} is not reachable: {error}")
