"""Settings come from the environment, and each environment loads what it should."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from config.env import database_from_url

ROOT = Path(__file__).resolve().parents[1]


def _settings_value(module: str, expression: str, **env: str) -> str:
    """Import a settings module in a fresh interpreter and print one expression of it."""
    code = f"import {module} as s; print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_database_urls_become_django_settings():
    db = database_from_url("postgresql://shop:s%40cret@db.internal:6543/perf?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "shop",
        "s@cret",
        "db.internal",
        "6543",
        "perf",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_environment_points_the_project_at_other_servers():
    out = _settings_value(
        "config.settings.base",
        "s.DATABASES['default']['PORT'], s.DATABASES['replica']['HOST'], s.CACHES['default']['LOCATION']",
        DATABASE_URL="postgresql://u@primary.example:7000/x",
        DATABASE_REPLICA_URL="postgresql://u@replica.example:7001/x",
        REDIS_URL="redis://cache.example:7002/3",
    )
    assert out.split() == ["7000", "replica.example", "redis://cache.example:7002/3"]


def test_the_view_counts_wait_in_the_brokers_redis_unless_the_broker_is_not_redis():
    """write_behind's counts default to a Redis that persists (the broker's); with RabbitMQ as
    the broker, to the cache's, never to a URL the Redis client cannot open."""
    value = "s.WRITE_BEHIND_REDIS_URL"
    redis_broker = "redis://broker.example:7003/2"
    assert _settings_value("config.settings.base", value, CELERY_BROKER_URL=redis_broker) == (
        redis_broker
    )
    rabbit = _settings_value(
        "config.settings.base",
        value,
        CELERY_BROKER_URL="amqp://guest:guest@rabbit.example:5672//",
        REDIS_URL="redis://cache.example:7002/3",
    )
    assert rabbit == "redis://cache.example:7002/3"


def test_defaults_are_the_local_stack():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL"} and not k.startswith("PERFSHOP_")
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import config.settings.base as s; print(s.DATABASES['default']['PORT'], s.REDIS_URL)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["15432", "redis://127.0.0.1:16379/0"]


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.production"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("config.settings.local", "True"),
        ("config.settings.test", "False"),
        ("config.settings.loadtest", "False"),
        ("config.settings.production", "False"),
    ],
)
def test_debug_toolbar_only_in_local_settings(module, expected):
    out = _settings_value(module, "'debug_toolbar' in s.INSTALLED_APPS", DJANGO_SECRET_KEY="x")
    assert out == expected


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


BIN = Path(sys.executable).parent
KNOWN = "algorithmic_complexity"  # a toggle the error line lists among the known ones


@pytest.mark.slow
@pytest.mark.parametrize(
    ("entry_point", "variable", "value", "line"),
    [
        ("manage.py", "PERF_TOGGLES", "nope=off", "error: PERF_TOGGLES: unknown toggle 'nope'"),
        (
            "manage.py",
            "PERF_TOGGLES",
            "select_related=off,db_indexes=off",
            "error: PERF_TOGGLES: db_indexes cannot be set in the environment: its state is the "
            "database's. Run `python manage.py db_indexes on|off`.",
        ),
        ("manage.py", "DJANGO_DEBUG", "maybe", "error: DJANGO_DEBUG='maybe' is not a boolean"),
        (
            "manage.py",
            "INVENTORY_LOCKING_STRATEGY",
            "pessimistic",
            "error: INVENTORY_LOCKING_STRATEGY='pessimistic' is not one of conditional_update, ",
        ),
        (
            "manage.py",
            "READ_REPLICA_MAX_LAG_SECONDS",
            "1s",
            "error: READ_REPLICA_MAX_LAG_SECONDS='1s' is not a number",
        ),
        (
            "manage.py",
            "READ_REPLICA_PROBE_SECONDS",
            "-1",
            "error: READ_REPLICA_PROBE_SECONDS='-1' must be 0 or more",
        ),
        ("gunicorn", "PERF_TOGGLES", "nope=off", "error: PERF_TOGGLES: unknown toggle 'nope'"),
        ("celery", "PERF_TOGGLES", "nope=off", "error: PERF_TOGGLES: unknown toggle 'nope'"),
        (
            "manage.py",
            "DATABASE_URL",
            "mysql://user:hunter2@db/shop",
            "error: only postgresql:// database URLs are supported, got a 'mysql' one",
        ),
    ],
)
def test_a_bad_environment_stops_every_entry_point_with_one_line(
    entry_point, variable, value, line
):
    command = {
        "manage.py": [sys.executable, "manage.py", "check"],
        "gunicorn": [str(BIN / "gunicorn"), "config.wsgi:application", "--bind", "127.0.0.1:0"],
        "celery": [str(BIN / "celery"), "-A", "config", "worker", "-Q", f"never-{os.getpid()}"],
    }[entry_point]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", variable: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    errors = [text for text in output.splitlines() if text.startswith("error: ")]
    assert len(errors) == 1, output[-3000:]
    assert errors[0].startswith(line)
    if value == "nope=off":
        assert KNOWN in errors[0]
    assert "hunter2" not in output  # a database URL's password is not printed


@pytest.mark.parametrize("value", ["0", "0.0", "-1"])
def test_a_rate_limit_refilling_nothing_is_a_one_line_error_at_start(value):
    """A bucket refilled at 0 a minute would divide by zero on every limited request."""
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        cwd=ROOT,
        env={**os.environ, "RATE_LIMITING_LOGIN_PER_MINUTE": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"RATE_LIMITING_LOGIN_PER_MINUTE={value!r} must be" in result.stderr
