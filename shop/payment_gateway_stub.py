"""A stub of the outside payment gateway: a small, real HTTP server on loopback, so the shop
talks to it over a socket exactly as it would to a real provider, with a real latency and real
failures. Its latency and failure rate come from settings (PAYMENT_GATEWAY_STUB_LATENCY_MS,
PAYMENT_GATEWAY_STUB_FAILURE_RATE); `manage.py payment_gateway_stub` runs it, the local stack
starts it, and so do the Procfile and docker-compose.

The API, a small subset of what card gateways offer:

    POST /v1/charges             {"amount": "12.50", "currency": "EUR"}, header Idempotency-Key
        201 {"id": "ch_...", "status": "captured", ...}   after the latency
        402 {"id": "ch_...", "status": "declined", "code": "card_declined"}   at the failure rate
        200 the first answer again, header Idempotent-Replayed: true, for a key already used:
            a retry never charges twice. 409 when the key came with another amount.
    POST /v1/charges/<key>/void  the charge under `key` will never be captured: voids it if it
                                 was, and refuses it if it has not arrived yet (a client that gave
                                 up waiting voids a charge it never saw the answer to).
    GET  /v1/charges/<key>       the stored charge, 404 when there is none
    GET  /health                 200

Plain Python (standard library only), so the local stack can start it before Django can. The
work of one request is `GatewayStub.charge()` / `.void()`, plain methods a test calls directly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler

from shop.stub_server import StubServer

KEY = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
_CHARGE_PATH = re.compile(r"^/v1/charges/(?P<key>[^/]+)(?P<void>/void)?$")


@dataclass
class GatewayStub:
    """The gateway's state: every charge by idempotency key. Thread-safe: the server answers
    each request on a thread of its own."""

    latency_s: float = 0.0
    failure_rate: float = 0.0
    seed: int | None = None
    charges: dict[str, dict] = field(default_factory=dict)
    voided: set[str] = field(default_factory=set)
    # Every charge answered with this status after the latency (503: a gateway in maintenance,
    # as a load balancer in front of it says); None: charges are worked on.
    outage_status: int | None = None
    captured_count: int = 0  # charges taken, replays not counted: what a customer is billed
    in_flight: int = 0  # charges being worked on (in their latency) right now
    received: int = 0  # charge requests that arrived, whatever became of them

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure rate must be between 0 and 1, got {self.failure_rate}")
        if self.latency_s < 0:
            raise ValueError(f"latency must not be negative, got {self.latency_s}")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        # One charge per key at a time: a retry racing the first attempt waits for its answer.
        self._key_locks: dict[str, threading.Lock] = {}

    def charge(self, *, key: str, amount: str, currency: str) -> tuple[int, dict]:
        """Take `amount` once per `key`: (HTTP status, JSON body)."""
        with self._lock:
            self.received += 1
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError):
            return 400, {"detail": f"amount {amount!r} is not a decimal number", "code": "invalid"}
        if not value.is_finite() or value <= 0:
            return 400, {"detail": "amount must be positive", "code": "invalid"}
        if self.outage_status is not None:
            time.sleep(self.latency_s)
            return self.outage_status, {"detail": "unavailable", "code": "unavailable"}
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            earlier = self.charges.get(key)
            if earlier is not None:
                if Decimal(earlier["amount"]) != value:
                    return 409, {"detail": "idempotency key reused with another amount",
                                 "code": "idempotency_key_reused"}  # fmt: skip
                return 200, {**earlier, "replayed": True}
            with self._lock:
                self.in_flight += 1
            time.sleep(self.latency_s)  # the network and the card network, both ways
            with self._lock:
                self.in_flight -= 1
                declined = self._random.random() < self.failure_rate
                status = "declined" if declined else "captured"
                if key in self.voided:
                    status = "voided"  # the client gave up and voided it before it arrived
                elif not declined:
                    self.captured_count += 1
            body = {"id": f"ch_{uuid.uuid4().hex[:16]}", "status": status, "amount": str(value),
                    "currency": currency, "idempotency_key": key}  # fmt: skip
            if declined:
                body["code"] = "card_declined"
            self.charges[key] = body
        return (201 if status == "captured" else 402), body

    def void(self, *, key: str) -> tuple[int, dict]:
        with self._lock:
            self.voided.add(key)
            earlier = self.charges.get(key)
            if earlier is not None and earlier["status"] == "captured":
                earlier["status"] = "voided"
                self.captured_count -= 1
        return 200, {"idempotency_key": key, "status": "voided"}

    def lookup(self, *, key: str) -> tuple[int, dict]:
        charge = self.charges.get(key)
        if charge is None:
            return 404, {"detail": f"no charge with key {key!r}", "code": "not_found"}
        return 200, charge


def _handler(stub: GatewayStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
        # The headers and the body go out in two writes; with Nagle's algorithm the second
        # waits for the client's delayed ACK of the first, about 40 ms on Linux, per charge.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(200, {"ok": True})
                return
            match = _CHARGE_PATH.match(self.path)
            if match is None or match["void"]:
                self._reply(404, {"detail": "not found", "code": "not_found"})
                return
            self._reply(*stub.lookup(key=match["key"]))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path == "/v1/charges":
                key = self.headers.get("Idempotency-Key", "")
                try:
                    data = json.loads(raw or b"{}")
                except ValueError:
                    data = None
                if not isinstance(data, dict) or not KEY.fullmatch(key):
                    self._reply(400, {"detail": "send a JSON object and an Idempotency-Key",
                                      "code": "invalid"})  # fmt: skip
                    return
                status, body = stub.charge(
                    key=key, amount=str(data.get("amount")), currency=str(data.get("currency"))
                )
                self._reply(status, body, replayed=bool(body.pop("replayed", False)))
                return
            match = _CHARGE_PATH.match(self.path)
            if match is None or not match["void"]:
                self._reply(404, {"detail": "not found", "code": "not_found"})
                return
            self._reply(*stub.void(key=match["key"]))

        def _reply(self, status: int, body: dict, replayed: bool = False) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            # The client may have timed out and closed the connection: nothing to tell it.
            with contextlib.suppress(OSError):
                self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per charge would drown the stack's output

    return Handler


def server(stub: GatewayStub, *, host: str = "127.0.0.1", port: int = 0) -> StubServer:
    return StubServer((host, port), _handler(stub))


@contextlib.contextmanager
def running(stub: GatewayStub, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `stub` on a thread while the block runs; yields its base URL (port 0: any free
    one). For tests and the bench, which need a gateway of a given latency and failure rate."""
    httpd = server(stub, host=host, port=port)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve_forever(*, host: str, port: int, latency_ms: int, failure_rate: float) -> None:
    httpd = server(GatewayStub(latency_s=latency_ms / 1000, failure_rate=failure_rate),
                   host=host, port=port)  # fmt: skip
    print(
        f"payment gateway stub on http://{host}:{port} "
        f"(latency {latency_ms} ms, failure rate {failure_rate:g})",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        httpd.serve_forever()
    httpd.server_close()


def main(argv: list[str] | None = None) -> None:
    """`python -m shop.payment_gateway_stub --port N ...`: how the local stack starts it."""
    parser = argparse.ArgumentParser(prog="python -m shop.payment_gateway_stub")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    if not 0.0 <= args.failure_rate <= 1.0 or args.latency_ms < 0:
        parser.error("--failure-rate must be within 0..1 and --latency-ms not negative")
    serve_forever(host=args.host, port=args.port, latency_ms=args.latency_ms,
                  failure_rate=args.failure_rate)  # fmt: skip


if __name__ == "__main__":
    main()
