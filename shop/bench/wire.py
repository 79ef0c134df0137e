"""Bytes on the wire: one HTTP exchange over a plain socket, every byte of the response counted.

The test client hands the bench a response object, and urllib3 a decoded body: neither says
what crossed the network. For http_caching (a 304 against a 200) and compression (br against
identity) the figure that matters is the response as the server wrote it to the socket: its
status line and headers (a 304 is nothing but headers) and its body as encoded. So this sends
the request itself, `Connection: close`, reads until the server closes, and splits what came
back. Request bytes are counted too (a conditional GET's If-None-Match is on the way up).

It also holds the gunicorns a scenario measures against (`Servers`): started on first use, one
per label (a label is an environment, such as http_caching's `rendered` validator), and all
stopped by the scenario module's `after()`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shop.bench import server

TIMEOUT_S = 30.0
# What the bench's settings add to every response and production never sends (docs/api.md):
# the cost headers (PERF_COST_HEADERS), the cache operations, and the toggles' echo
# (PERF_ALLOW_OVERRIDE). Counted apart, so a figure is what a production client receives.
INSTRUMENTATION = ("x-perf-toggles", "x-db-queries", "x-cache-ops", "server-timing")


@dataclass(frozen=True)
class Exchange:
    status: int
    headers: dict[str, str]  # names in lower case
    header_bytes: int  # the status line, the header lines and the blank line after them
    body_bytes: int  # the body as sent: encoded, chunk framing included
    body: bytes  # the body still content-encoded, chunk framing removed
    request_bytes: int
    ms: float  # connect to the last byte read
    # Of header_bytes, the lines of the INSTRUMENTATION headers (with their CRLF).
    instrumentation_bytes: int = 0

    @property
    def response_bytes(self) -> int:
        """Every byte the server wrote: status line, headers, body."""
        return self.header_bytes + self.body_bytes

    @property
    def production_bytes(self) -> int:
        """The same response as production sends it: without the bench's own headers."""
        return self.response_bytes - self.instrumentation_bytes


def exchange(
    base_url: str,
    path: str,
    headers: Mapping[str, str],
    *,
    method: str = "GET",
    timeout_s: float = TIMEOUT_S,
) -> Exchange:
    """Send one request and read the whole response (the server closes the connection)."""
    parts = urlsplit(base_url)
    host, port = parts.hostname, parts.port or 80
    lines = [f"{method} {path} HTTP/1.1"]
    if not any(name.lower() == "host" for name in headers):
        lines.append(f"Host: {host}:{port}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Connection: close")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    chunks = []
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(request)
        while data := sock.recv(65536):
            chunks.append(data)
    elapsed_ms = (time.perf_counter() - started) * 1000
    raw = b"".join(chunks)
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        raise ConnectionError(f"no complete response from {base_url}{path}: {raw[:200]!r}")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed, instrumentation = {}, 0
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
        if name.strip().lower() in INSTRUMENTATION:
            instrumentation += len(line.encode("latin-1")) + 2  # and its CRLF
    content = _dechunked(body) if parsed.get("transfer-encoding") == "chunked" else body
    return Exchange(
        status=int(status_line.split()[1]),
        headers=parsed,
        header_bytes=len(head) + len(separator),
        body_bytes=len(body),
        body=content,
        request_bytes=len(request),
        ms=elapsed_ms,
        instrumentation_bytes=instrumentation,
    )


def _dechunked(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


class Servers:
    """Gunicorns by label, each with its own environment on top of the bench's, started on
    first use and kept until `close()`."""

    WORKERS = 1  # one request at a time: the exchange's time is the server's, not a queue's

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._urls: dict[str, str] = {}

    def url(self, label: str, env: Mapping[str, str] | None = None) -> str:
        if label not in self._urls:
            environment = {**os.environ, **(env or {})}
            self._urls[label] = self._stack.enter_context(
                server.gunicorn(workers=self.WORKERS, env=environment)
            )
        return self._urls[label]

    def close(self) -> list[str]:
        stopped = [f"stopped the {label} gunicorn" for label in self._urls]
        self._urls.clear()
        self._stack.close()
        return stopped
