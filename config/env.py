"""Reading settings from the environment: one place, explicit defaults."""

import os
import sys
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured


class BadEnvironment(ImproperlyConfigured):
    """An environment variable the project cannot start with. Its message names the variable,
    what is wrong with it and what would do, in one line: manage.py, gunicorn (config/wsgi.py)
    and the Celery worker (config/celery_app.py) print that line and stop, without a traceback."""


def exit_on_bad_environment(exc: BadEnvironment) -> None:
    """Print the one line and stop, as a command-line tool does when it is started wrong."""
    sys.exit(f"error: {exc}")


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise BadEnvironment(f"{name}={raw!r} is not a boolean (use true/false, on/off or 1/0)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise BadEnvironment(f"{name}={raw!r} is not an integer") from exc


def env_float(name: str, default: float, *, positive: bool = False) -> float:
    """A number, 0 or more; with `positive`, more than 0 (a rate something is divided by)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise BadEnvironment(f"{name}={raw!r} is not a number") from exc
    if not value >= 0:  # also refuses nan
        raise BadEnvironment(f"{name}={raw!r} must be 0 or more")
    if positive and not value > 0:
        raise BadEnvironment(f"{name}={raw!r} must be more than 0")
    return value


def env_port(name: str, default: int) -> int:
    port = env_int(name, default)
    if not 1 <= port <= 65535:
        raise BadEnvironment(f"{name}={port} is not a TCP port (1-65535)")
    return port


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# The local stack (`python manage.py devstack up`) listens on these ports. They are
# deliberately not the standard ones, so a machine's own PostgreSQL or Redis is never used
# by accident, and all below 32768: Linux hands out 32768-60999 as the local ports of outgoing
# connections, and a server whose port a client socket holds fails to bind (EADDRINUSE). A second stack on the same machine (the bare-machine CI run, for one) moves
# with PERFSHOP_PRIMARY_PORT, PERFSHOP_REPLICA_PORT, PERFSHOP_REDIS_PORT (the cache),
# PERFSHOP_BROKER_PORT (the Celery broker, a Redis of its own), PERFSHOP_GATEWAY_PORT (the stub
# payment gateway), PERFSHOP_SMTP_PORT (the SMTP sink), PERFSHOP_CARRIER_RAPID_PORT,
# PERFSHOP_CARRIER_NATIONAL_PORT and PERFSHOP_CARRIER_ECONOMY_PORT (the stub carriers); the
# default URLs follow them. PgBouncer, started when it is installed, listens on
# PERFSHOP_PGBOUNCER_PORT.
LOCAL_DB_NAME = "perfshop"
LOCAL_DB_USER = "perfshop"
_LOCAL_PORTS = {
    "LOCAL_PRIMARY_PORT": ("PERFSHOP_PRIMARY_PORT", 15432),
    "LOCAL_REPLICA_PORT": ("PERFSHOP_REPLICA_PORT", 15433),
    "LOCAL_REDIS_PORT": ("PERFSHOP_REDIS_PORT", 16379),
    "LOCAL_PGBOUNCER_PORT": ("PERFSHOP_PGBOUNCER_PORT", 16432),
    "LOCAL_GATEWAY_PORT": ("PERFSHOP_GATEWAY_PORT", 17080),
    "LOCAL_BROKER_PORT": ("PERFSHOP_BROKER_PORT", 16380),
    "LOCAL_SMTP_PORT": ("PERFSHOP_SMTP_PORT", 17025),
    "LOCAL_CARRIER_RAPID_PORT": ("PERFSHOP_CARRIER_RAPID_PORT", 17181),
    "LOCAL_CARRIER_NATIONAL_PORT": ("PERFSHOP_CARRIER_NATIONAL_PORT", 17182),
    "LOCAL_CARRIER_ECONOMY_PORT": ("PERFSHOP_CARRIER_ECONOMY_PORT", 17183),
}
_DEFAULT_URLS = {
    "DEFAULT_DATABASE_URL": "postgresql://{user}@127.0.0.1:{LOCAL_PRIMARY_PORT}/{name}",
    "DEFAULT_REPLICA_URL": "postgresql://{user}@127.0.0.1:{LOCAL_REPLICA_PORT}/{name}",
    "DEFAULT_REDIS_URL": "redis://127.0.0.1:{LOCAL_REDIS_PORT}/0",
    "DEFAULT_GATEWAY_URL": "http://127.0.0.1:{LOCAL_GATEWAY_PORT}",
    "DEFAULT_BROKER_URL": "redis://127.0.0.1:{LOCAL_BROKER_PORT}/0",
    "DEFAULT_CARRIER_RAPID_URL": "http://127.0.0.1:{LOCAL_CARRIER_RAPID_PORT}",
    "DEFAULT_CARRIER_NATIONAL_URL": "http://127.0.0.1:{LOCAL_CARRIER_NATIONAL_PORT}",
    "DEFAULT_CARRIER_ECONOMY_URL": "http://127.0.0.1:{LOCAL_CARRIER_ECONOMY_PORT}",
}


def __getattr__(name: str) -> int | str:
    """The ports and default URLs above, read when first asked for rather than when this module
    loads: every entry point imports this module before it can catch BadEnvironment, so a bad
    PERFSHOP_*_PORT raised here at import would be a traceback, not the one-line error."""
    if name in _LOCAL_PORTS:
        return env_port(*_LOCAL_PORTS[name])
    if name in _DEFAULT_URLS:
        ports = {port: __getattr__(port) for port in _LOCAL_PORTS}
        return _DEFAULT_URLS[name].format(user=LOCAL_DB_USER, name=LOCAL_DB_NAME, **ports)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def database_from_url(url: str) -> dict:
    """Turn `postgresql://user:password@host:port/name?k=v` into a Django DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        # The scheme only: the URL may hold a password, and this line goes to a terminal or a log.
        raise BadEnvironment(
            f"only postgresql:// database URLs are supported, got a {parsed.scheme!r} one"
        )
    options = dict(pair.split("=", 1) for pair in parsed.query.split("&") if "=" in pair)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or LOCAL_DB_NAME,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
    }
