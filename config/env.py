"""Reading settings from the environment: one place, explicit defaults."""

import os
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured


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
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, on/off or 1/0)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def env_port(name: str, default: int) -> int:
    port = env_int(name, default)
    if not 1 <= port <= 65535:
        raise ImproperlyConfigured(f"{name}={port} is not a TCP port (1-65535)")
    return port


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# The local stack (`python manage.py devstack up`) listens on these ports. They are
# deliberately not the standard ones, so a machine's own PostgreSQL or Redis is never used
# by accident. A second stack on the same machine (the bare-machine CI run, for one) moves
# with PERFSHOP_PRIMARY_PORT, PERFSHOP_REPLICA_PORT and PERFSHOP_REDIS_PORT; the default URLs
# below follow them.
LOCAL_PRIMARY_PORT = env_port("PERFSHOP_PRIMARY_PORT", 55432)
LOCAL_REPLICA_PORT = env_port("PERFSHOP_REPLICA_PORT", 55433)
LOCAL_REDIS_PORT = env_port("PERFSHOP_REDIS_PORT", 56379)
LOCAL_DB_NAME = "perfshop"
LOCAL_DB_USER = "perfshop"

DEFAULT_DATABASE_URL = (
    f"postgresql://{LOCAL_DB_USER}@127.0.0.1:{LOCAL_PRIMARY_PORT}/{LOCAL_DB_NAME}"
)
DEFAULT_REPLICA_URL = f"postgresql://{LOCAL_DB_USER}@127.0.0.1:{LOCAL_REPLICA_PORT}/{LOCAL_DB_NAME}"
DEFAULT_REDIS_URL = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"


def database_from_url(url: str) -> dict:
    """Turn `postgresql://user:password@host:port/name?k=v` into a Django DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(f"only PostgreSQL URLs are supported, got {url!r}")
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
