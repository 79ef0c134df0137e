"""A Redis broker of one's own, to stop and start: the broker outage the transactional_outbox
tests and benchmark cause, without touching the stack's Redis that everyone else uses.

    with PrivateBroker(tmp_dir) as broker, celery_pointed_at(broker.url):
        ...            # tasks this process publishes go to the private broker
        broker.stop()  # the outage: connections refused
        broker.start() # back, on the same port, with the messages it held

The server keeps its messages across the outage (append-only file, written at shutdown and
fsynced every second), as a production broker does: what the outage tests is publishing, not
the broker's own durability. The file is never rewritten, so it holds every command the server
applied, and `pushed()` reads from it every message the broker took. Its port is a free one
below 32768, found at run time, so the restart cannot find it taken by some client's outgoing
connection.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shop.devstack.discovery import find_redis_server
from shop.devstack.redis import redis_ping

HOST = "127.0.0.1"
PORTS = (20000, 32000)  # searched at random; below the client port range (32768-60999)
START_TIMEOUT_S = 15
ENVIRONMENT = ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL")


def free_port() -> int:
    for _ in range(200):
        port = random.randrange(*PORTS)
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS[0]}..{PORTS[1]} on {HOST}")


class PrivateBroker:
    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log = self.directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        server, _source = find_redis_server()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [str(server), "--port", str(self.port), "--bind", HOST, "--dir", str(self.directory),
             "--save", "", "--appendonly", "yes", "--auto-aof-rewrite-percentage", "0",
             "--logfile", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not redis_ping(self.port, host=HOST):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise RuntimeError(
                    f"private redis-server on {HOST}:{self.port} did not start\n{tail}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits; clients are refused from now."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def pushed(self) -> dict[str, str]:
        """Every Celery message the broker took (an LPUSH or RPUSH onto a queue), as task id →
        task name, from its append-only file: what reached the broker, whatever became of it
        after. A message sent again (a publish retried, a message restored) is one id. Read it
        once the broker is stopped; a command cut short at the file's end is left out, as
        Redis leaves it out when it loads the file. Redis 7 keeps the file in `appendonlydir/`
        (in parts, in sequence), Redis 6 as one `appendonly.aof`."""
        files = sorted(self.directory.glob("appendonlydir/*.incr.aof"), key=_sequence)
        files += [path for path in (self.directory / "appendonly.aof",) if path.exists()]
        if not files:
            raise RuntimeError(f"no append-only file in {self.directory}: was the broker started?")
        messages: dict[str, str] = {}
        for path in files:
            for command in aof_commands(path.read_bytes()):
                if command[0].upper() not in (b"LPUSH", b"RPUSH"):
                    continue
                for body in command[2:]:
                    headers = _headers(body)
                    if "id" in headers and "task" in headers:
                        messages.setdefault(headers["id"], headers["task"])
        return messages

    def up(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _sequence(path: Path) -> int:
    """The sequence number in an append-only file's name (`appendonly.aof.3.incr.aof`)."""
    return int(path.name.split(".")[-3])


def _headers(body: bytes) -> dict:
    """A Celery message's headers (task id, task name); empty for anything else pushed."""
    try:
        message = json.loads(body)
    except ValueError:
        return {}
    headers = message.get("headers") if isinstance(message, dict) else None
    return headers if isinstance(headers, dict) else {}


def aof_commands(data: bytes) -> Iterator[list[bytes]]:
    """The commands in an append-only file, each as its parts (`[b"LPUSH", key, value]`): the
    file is the commands in Redis's wire format, arrays of bulk strings, with `#` annotation
    lines between them (aof-timestamp-enabled). A command cut short at the end is left out;
    anything else that does not parse is an error, not a silent stop."""
    at = 0
    while at < len(data):
        if data.startswith(b"#", at):
            end = data.find(b"\r\n", at)
            if end < 0:
                return
            at = end + 2
            continue
        count, at = _length(data, at, b"*")
        if count is None:
            return
        parts = []
        for _ in range(count):
            size, at = _length(data, at, b"$")
            if size is None or at + size + 2 > len(data):
                return
            parts.append(data[at : at + size])
            at += size + 2
        yield parts


def _length(data: bytes, at: int, marker: bytes) -> tuple[int | None, int]:
    """The length on the line at `at` (`*3`, `$5`) and where the line after starts; None when
    the data ends inside the line."""
    end = data.find(b"\r\n", at)
    if end < 0:
        return None, at
    if data[at : at + 1] != marker or not data[at + 1 : end].isdigit():
        raise ValueError(f"not an append-only file: {data[at : at + 20]!r} at byte {at}")
    return int(data[at + 1 : end]), end + 2


def reset_connections() -> None:
    """Forget this process's pooled broker connections (the next publish opens a new one)."""
    from kombu import pools

    from config.celery_app import app

    # The app's pools live in kombu's registry, keyed by the connection's URL: closing them
    # without dropping them there would hand the closed pool back once the URL is restored.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def celery_pointed_at(url: str) -> Iterator[None]:
    """Point this process's Celery app at the broker `url` for the block, then back."""
    from config.celery_app import app

    # Celery reads CELERY_BROKER_URL and CELERY_BROKER_WRITE_URL from the environment before
    # its settings, so those are pointed too while the block lasts.
    saved_conf = {key: app.conf.get(key) for key in ("broker_url", "broker_write_url")}
    saved_env = {key: os.environ.get(key) for key in ENVIRONMENT}
    reset_connections()
    app.conf.broker_url = app.conf.broker_write_url = url
    for key in ENVIRONMENT:
        if saved_env[key] is not None:
            os.environ[key] = url
    try:
        yield
    finally:
        reset_connections()
        app.conf.update(saved_conf)
        for key, value in saved_env.items():
            if value is not None:
                os.environ[key] = value
