"""docker-compose.yml: valid for docker-compose, and running exactly the Procfile's commands.

Needs no Docker engine (`docker-compose config` only reads the file) and no database.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shop import procfile

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
WORKERS = ("worker-default", "worker-email", "worker-inventory", "worker-payment")
PROCFILE_SERVICES = ("web", "asgi", *WORKERS, "gateway", "smtp", "carriers", "beat", "relay")
APP_SERVICES = ("migrate", "web", "asgi", *WORKERS, "gateway", "smtp", "carriers", "relay")


def compose_command() -> list[str] | None:
    """docker-compose (v1, what CI installs), else the `docker compose` plugin, else None."""
    if exe := shutil.which("docker-compose"):
        return [exe]
    if docker := shutil.which("docker"):
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


def normalize(command: str) -> str:
    """Compose's `$$` is a literal `$`; whitespace (YAML folding) is not significant."""
    return " ".join(command.replace("$$", "$").split())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_docker_compose_config_accepts_the_file():
    command = compose_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI must validate docker-compose.yml, but neither `docker-compose` nor the "
                "`docker compose` plugin is installed"
            )
        pytest.skip("docker-compose is not installed here (CI installs it and runs this check)")
    result = subprocess.run(
        [*command, "--file", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    complaints = [
        line
        for line in result.stderr.splitlines()
        if line.lstrip().upper().startswith(("WARN", "ERROR")) or "is not set" in line
    ]
    assert complaints == []


def test_the_stack_has_its_services(services):
    expected = {
        "db-primary",
        "db-replica",
        "pgbouncer",
        "redis",
        "broker",
        "migrate",
        "web",
        *WORKERS,
        "gateway",
        "smtp",
        "beat",
        "relay",
    }
    assert expected <= set(services)


def test_pgbouncer_pools_per_transaction_in_front_of_the_primary(services):
    pgbouncer = services["pgbouncer"]
    assert pgbouncer["depends_on"]["db-primary"]["condition"] == "service_healthy"
    ini = (ROOT / "docker/pgbouncer/pgbouncer.ini").read_text()
    assert "pool_mode = transaction" in ini
    assert "* = host=db-primary port=5432" in ini


def test_every_procfile_line_is_a_service(services):
    assert set(procfile.commands(ROOT / "Procfile")) == set(PROCFILE_SERVICES) <= set(services)


@pytest.mark.parametrize("name", PROCFILE_SERVICES)
def test_app_commands_are_the_procfiles(services, name):
    raw = services[name]["command"]
    assert isinstance(raw, str), f"{name}'s command must be a string, like the Procfile's"
    assert normalize(raw) == normalize(procfile.commands(ROOT / "Procfile")[name])


@pytest.mark.parametrize("name", PROCFILE_SERVICES)
def test_app_commands_leave_variables_to_the_container(services, name):
    # A single `$` would be filled in by docker-compose from the host's environment (where
    # WEB_BIND is unset, so gunicorn would bind 127.0.0.1 inside the container). `$$` hands
    # `${VAR:-default}` to the image's entrypoint, which expands it from the container's.
    raw = services[name]["command"]
    assert "$" not in raw.replace("$$", ""), raw


def test_the_image_expands_and_runs_procfile_commands():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["python", "-m", "shop.procfile", "exec"]' in dockerfile
    assert 'CMD ["web"]' in dockerfile
    assert "COPY manage.py Procfile ./" in dockerfile


def test_app_services_share_one_definition(compose, services):
    app = compose["x-app"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == app["build"], name
        assert service["image"] == app["image"], name
        assert service["environment"] == app["environment"], name


def test_app_environment_points_at_the_containers(compose):
    env = compose["x-app"]["environment"]
    assert env["DATABASE_URL"] == "postgresql://perfshop:perfshop@db-primary:5432/perfshop"
    assert env["DATABASE_REPLICA_URL"] == "postgresql://perfshop:perfshop@db-replica:5432/perfshop"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["CELERY_BROKER_URL"] == "redis://broker:6379/0"
    assert (env["EMAIL_HOST"], env["EMAIL_PORT"]) == ("smtp", "17025")
    assert env["WEB_BIND"] == "0.0.0.0:8000"
    assert "config.settings." in env["DJANGO_SETTINGS_MODULE"]


@pytest.mark.parametrize("name", ["web", "asgi", *WORKERS])
def test_app_waits_for_healthy_backends_and_migrations(services, name):
    depends_on = services[name]["depends_on"]
    for backend in ("db-primary", "db-replica", "redis", "broker", "gateway", "smtp"):
        assert depends_on[backend] == {"condition": "service_healthy"}, backend
    assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
    if name in ("web", "asgi"):  # the servers of the shipping estimate
        assert depends_on["carriers"] == {"condition": "service_healthy"}


def test_app_environment_points_at_the_carriers(compose):
    env = compose["x-app"]["environment"]
    assert [env[f"CARRIER_{name}_URL"] for name in ("RAPID", "NATIONAL", "ECONOMY")] == [
        f"http://carriers:{port}" for port in (17181, 17182, 17183)
    ]


def test_backends_have_healthchecks(services):
    for name in ("db-primary", "db-replica"):
        assert "pg_isready" in " ".join(services[name]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["broker"]["healthcheck"]["test"])
    assert "smtplib" in " ".join(services["smtp"]["healthcheck"]["test"])


def test_the_broker_is_a_redis_of_its_own_that_keeps_its_queue(services):
    broker = services["broker"]
    assert broker["image"] == services["redis"]["image"]
    assert "--appendonly" in broker["command"] and "yes" in broker["command"]
    assert any(volume.endswith(":/data") for volume in broker["volumes"])


def test_replica_is_cloned_by_its_entrypoint_script(services):
    replica = services["db-replica"]
    assert replica["image"] == services["db-primary"]["image"] == "postgres:15"
    mounts = {v.split(":")[0]: v.split(":")[1] for v in replica["volumes"] if v.startswith("./")}
    script = ROOT / "docker/postgres/replica-entrypoint.sh"
    assert mounts["./docker/postgres/replica-entrypoint.sh"] in replica["entrypoint"]
    text = script.read_text(encoding="utf-8")
    assert "pg_basebackup" in text and "--write-recovery-conf" in text
    assert "--wal-method=stream" in text
    assert os.access(script, os.X_OK)


def test_primary_creates_the_replication_role_and_slot(services):
    primary = services["db-primary"]
    init_mounts = [v for v in primary["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert init_mounts == [
        "./docker/postgres/primary-init.sh:/docker-entrypoint-initdb.d/10-replication.sh:ro"
    ]
    text = (ROOT / "docker/postgres/primary-init.sh").read_text(encoding="utf-8")
    assert "REPLICATION" in text and "pg_create_physical_replication_slot" in text
    assert "host replication" in text
    assert os.access(ROOT / "docker/postgres/primary-init.sh", os.X_OK)
