"""Where the stack lives and what it is called: the Stack (state folder, data folders, ports,
the pg_root fallback for root), the names and constants every part shares, DevstackError, and
how paths, URLs and progress lines are shown to people."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlparse, urlunparse

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

try:
    from config import env as _env
except ModuleNotFoundError:  # run as a script from outside the project root
    sys.path.insert(0, str(PROJECT_ROOT))
    from config import env as _env

LOCAL_DB_NAME = _env.LOCAL_DB_NAME
LOCAL_DB_USER = _env.LOCAL_DB_USER

HOST = "127.0.0.1"
PG_SUPERUSER = "postgres"  # bootstrap superuser inside the cluster
PG_SYSTEM_USER = "postgres"  # OS account that runs PostgreSQL when we are root
REPLICATION_SLOT = "perfshop_replica"
MARKER_FILE = ".perfshop-devstack"


class DevstackError(RuntimeError):
    """Something the person running the stack has to fix; the message says what."""


@dataclass(frozen=True)
class Stack:
    """Where the stack lives and which ports it uses."""

    root: Path
    # Read when a Stack is made, not when this module loads: a bad PERFSHOP_*_PORT is then a
    # one-line error from the command (config.env.BadEnvironment), not an import traceback.
    primary_port: int = field(default_factory=lambda: _env.LOCAL_PRIMARY_PORT)
    replica_port: int = field(default_factory=lambda: _env.LOCAL_REPLICA_PORT)
    redis_port: int = field(default_factory=lambda: _env.LOCAL_REDIS_PORT)
    pgbouncer_port: int = field(default_factory=lambda: _env.LOCAL_PGBOUNCER_PORT)
    gateway_port: int = field(default_factory=lambda: _env.LOCAL_GATEWAY_PORT)
    broker_port: int = field(default_factory=lambda: _env.LOCAL_BROKER_PORT)
    smtp_port: int = field(default_factory=lambda: _env.LOCAL_SMTP_PORT)
    # The stub carriers' ports, in settings.SHIPPING_CARRIERS' order (rapid, national, economy).
    carrier_ports: tuple[int, int, int] = field(
        default_factory=lambda: (
            _env.LOCAL_CARRIER_RAPID_PORT,
            _env.LOCAL_CARRIER_NATIONAL_PORT,
            _env.LOCAL_CARRIER_ECONOMY_PORT,
        )
    )

    @classmethod
    def default(cls) -> Stack:
        override = os.environ.get("PERFSHOP_STACK_DIR")
        root = Path(override).expanduser() if override else PROJECT_ROOT / ".stack"
        return cls(root=root.absolute())

    @property
    def pg_root(self) -> Path:
        """Where PostgreSQL's data and logs live: the state folder itself, unless we are root
        and the postgres account cannot reach it (a project under /root, mode 0700). Then a
        folder of the same name in /var/tmp, which `down --purge` deletes too."""
        if os.geteuid() != 0 or _others_can_traverse(self.root):
            return self.root
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
        return Path("/var/tmp") / f"perfshop-{digest}"

    @property
    def primary_dir(self) -> Path:
        return self.pg_root / "pg-primary"

    @property
    def replica_dir(self) -> Path:
        return self.pg_root / "pg-replica"

    @property
    def log_dir(self) -> Path:
        return self.pg_root / "log"

    @property
    def pgbouncer_dir(self) -> Path:
        """Its config, pid file and log: where the postgres account it runs as can write."""
        return self.pg_root / "pgbouncer"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def redis_pidfile(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def redis_log(self) -> Path:
        return self.redis_dir / "redis.log"

    @property
    def broker_dir(self) -> Path:
        return self.root / "broker"

    @property
    def redis_servers(self) -> tuple[RedisServer, RedisServer]:
        """The two Redis servers: the cache and, apart from it, the Celery broker."""
        return (
            RedisServer("redis", "Redis (cache)", self.redis_port, self.redis_dir, "REDIS_URL"),
            RedisServer(
                "broker", "Redis (Celery broker)", self.broker_port, self.broker_dir,
                "CELERY_BROKER_URL", persistent=True,
            ),
        )  # fmt: skip

    def redis_server(self, role: str) -> RedisServer:
        return next(server for server in self.redis_servers if server.role == role)

    @property
    def smtp_dir(self) -> Path:
        return self.root / "smtp"

    @property
    def smtp_pidfile(self) -> Path:
        return self.smtp_dir / "smtp.pid"

    @property
    def smtp_log(self) -> Path:
        return self.smtp_dir / "smtp.log"

    @property
    def smtp_mail_dir(self) -> Path:
        """The messages the sink received, one .eml file each."""
        return self.smtp_dir / "mail"

    @property
    def gateway_dir(self) -> Path:
        return self.root / "gateway"

    @property
    def gateway_pidfile(self) -> Path:
        return self.gateway_dir / "gateway.pid"

    @property
    def gateway_log(self) -> Path:
        return self.gateway_dir / "gateway.log"

    @property
    def carriers_dir(self) -> Path:
        return self.root / "carriers"

    @property
    def carriers_pidfile(self) -> Path:
        return self.carriers_dir / "carriers.pid"

    @property
    def carriers_log(self) -> Path:
        return self.carriers_dir / "carriers.log"

    @property
    def socket_dir(self) -> Path:
        run = self.pg_root / "run"
        # A Unix socket path must fit in ~107 bytes; fall back to a short private /tmp folder.
        if len(str(run / f".s.PGSQL.{self.replica_port}.lock")) <= 100:
            return run
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"perfshop-{digest}"

    def pg_log(self, role: str) -> Path:
        return self.log_dir / f"pg-{role}.log"

    def data_dir(self, role: str) -> Path:
        return self.primary_dir if role == "primary" else self.replica_dir

    def port(self, role: str) -> int:
        return {
            "primary": self.primary_port,
            "replica": self.replica_port,
            "redis": self.redis_port,
            "broker": self.broker_port,
            "gateway": self.gateway_port,
            "smtp": self.smtp_port,
        }[role]


@dataclass(frozen=True)
class RedisServer:
    """One local redis-server: its role in `status` ("redis" is the cache, "broker" Celery's),
    port, folder (pid file, log, data) and the URL variable that names a server to use instead.
    The broker's keeps its data across restarts (append-only file): queued tasks outlive a
    `down`/`up`, as they would a real broker's restart; the cache's keeps nothing."""

    role: str
    what: str
    port: int
    dir: Path
    url_variable: str
    persistent: bool = False

    @property
    def pidfile(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def log(self) -> Path:
        return self.dir / "redis.log"


def _others_can_traverse(path: Path) -> bool:
    """Whether an unrelated account (postgres) can reach `path`: every existing ancestor
    must be searchable by others. Folders we create later get mode 0755."""
    for folder in [path, *path.parents]:
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            return False
    return True


def _show(path: Path) -> str:
    """A path as people want to read it: relative to the project when inside it."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _mask(url: str) -> str:
    """The URL with its password hidden."""
    try:
        parsed = urlparse(url)
    except ValueError:
        return url
    if not parsed.password:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return urlunparse(parsed._replace(netloc=netloc))


class _Out:
    def __init__(self, verbose: bool, stream: TextIO | None):
        self.verbose = verbose
        self.stream = stream

    def __call__(self, line: str) -> None:
        if not self.verbose:
            return
        stream = self.stream or sys.stdout
        stream.write(line + "\n")
        with contextlib.suppress(Exception):
            stream.flush()
