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


# The local stack (`python manage.py devstack up`) listens on these ports. They are
# deliberately not the standard ones, so a machine's own PostgreSQL or Redis is never used
# by accident.
LOCAL_PRIMARY_PORT = 55432
LOCAL_REPLICA_PORT = 55433
LOCAL_REDIS_PORT = 56379
LOCAL_DB_NAME = "perfshop"
LOCAL_DB_USER = "perfshop"

DEFAULT_DATABASE_URL = (
    f"postgresql://{LOCAL_DB_USER}@127.0.0.1:{LOCAL_PRIMARY_PORT}/{LOCAL_DB_NAME}"
)
DEFAULT_REPLICA_URL = f"postgresql://{LOCAL_DB_USER}@127.0.0.1:{LOCAL_REPLICA_PORT}/{LOCAL_DB_NAME}"
DEFAULT_REDIS_URL = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"


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


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


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
