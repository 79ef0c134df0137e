"""Stubs of the shipping carriers' quote APIs: small, real HTTP servers on loopback, one per
carrier, so the shop asks them over sockets exactly as it would ask real carriers, each with its
own latency (the async_io technique: one after another, or all at once). `manage.py
carrier_stubs` runs the three, the local stack starts them (shop/devstack/carriers.py), and so
do the Procfile and docker-compose. Latencies come from settings (CARRIER_STUB_LATENCIES_MS).

The API, the part every carrier's rate API has:

    POST /quote   {"country": "DE", "postcode": "10115", "weight_grams": 1200}
        200 {"carrier": "rapid", "service": "express", "price": "9.90", "currency": "EUR",
             "days": 1}                             after the latency
        503 {"detail": "...", "code": "unavailable"}  when the stub is set to fail
    GET  /health  200 {"carrier": "rapid"}

A carrier that is down is a stub that is not running (its port closed); one that hangs is a
stub whose latency is longer than the client's timeout.

Plain Python (standard library only), so the local stack can start it before Django can. A
`Journal` shared by several stubs records when each request arrived and left, in order: the
tests read from it whether the shop's calls overlapped, without timing anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler

from shop.stub_server import StubServer

# What each carrier charges: a base price, a price per started kilogram, days in transit.
RATES = {
    "rapid": ("express", Decimal("6.90"), Decimal("1.50"), 1),
    "national": ("standard", Decimal("4.50"), Decimal("0.90"), 3),
    "economy": ("economy", Decimal("3.20"), Decimal("0.60"), 6),
}
MAX_WEIGHT_GRAMS = 70_000


@dataclass
class Journal:
    """The requests a group of stubs served, in the order they arrived and left: events
    `("start", carrier)` and `("end", carrier)`, and how many were in flight at most.

    `gather`: when set, each request waits (before its latency) until that many requests are in
    flight across the group, or `gather_timeout_s` passes. A client that sends them all at once
    gets past it at once; one that sends them one after another waits the timeout each time. A
    test can then see that calls overlapped from `most_in_flight`, with no clock involved.
    """

    gather: int = 0
    gather_timeout_s: float = 5.0
    events: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Condition()

    def start(self, carrier: str) -> None:
        with self._lock:
            self.events.append(("start", carrier))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._lock.notify_all()
            if self.gather:
                self._lock.wait_for(
                    lambda: self.in_flight >= self.gather, timeout=self.gather_timeout_s
                )

    def end(self, carrier: str) -> None:
        with self._lock:
            self.events.append(("end", carrier))
            self.in_flight -= 1

    def overlapped(self) -> bool:
        """Whether a request ever arrived while another was still being answered."""
        return self.most_in_flight > 1


@dataclass
class CarrierStub:
    """One carrier. Thread-safe: the server answers each request on a thread of its own."""

    name: str
    latency_s: float = 0.0
    fail: bool = False  # answer 503 (after the latency), as a carrier in trouble does
    journal: Journal | None = None
    served: int = 0  # requests answered, for tests

    def __post_init__(self) -> None:
        if self.name not in RATES:
            raise ValueError(f"unknown carrier {self.name!r} (known: {', '.join(RATES)})")
        if self.latency_s < 0:
            raise ValueError(f"latency must not be negative, got {self.latency_s}")
        self._lock = threading.Lock()

    def quote(self, data: object) -> tuple[int, dict]:
        """The answer to one POST /quote: (HTTP status, JSON body), after the latency."""
        if self.journal is not None:
            self.journal.start(self.name)
        try:
            time.sleep(self.latency_s)  # the carrier's network and its rating engine
            with self._lock:
                self.served += 1
            return self._answer(data)
        finally:
            if self.journal is not None:
                self.journal.end(self.name)

    def _answer(self, data: object) -> tuple[int, dict]:
        if self.fail:
            return 503, {"detail": f"{self.name} cannot quote right now", "code": "unavailable"}
        weight = data.get("weight_grams") if isinstance(data, dict) else None
        country = data.get("country") if isinstance(data, dict) else None
        if not isinstance(weight, int) or not 0 < weight <= MAX_WEIGHT_GRAMS:
            return 400, {"detail": "weight_grams must be 1-70000", "code": "invalid"}
        if not isinstance(country, str) or len(country) != 2:
            return 400, {"detail": "country must be a 2-letter code", "code": "invalid"}
        service, base, per_kg, days = RATES[self.name]
        kilograms = -(-weight // 1000)  # started kilograms
        abroad = 0 if country.upper() == "DE" else 2  # from the shop's warehouse in Germany
        price = (base + per_kg * kilograms) * (1 if not abroad else Decimal("1.8"))
        return 200, {
            "carrier": self.name,
            "service": service,
            "price": str(price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
            "currency": "EUR",
            "days": days + abroad,
        }


def _handler(stub: CarrierStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle's algorithm the second waits for
        # the client's delayed ACK of the first (about 40 ms on Linux).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(200, {"carrier": stub.name})
            else:
                self._reply(404, {"detail": "not found", "code": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path != "/quote":
                self._reply(404, {"detail": "not found", "code": "not_found"})
                return
            try:
                data = json.loads(raw or b"{}")
            except ValueError:
                data = None
            self._reply(*stub.quote(data))

        def _reply(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            # The client may have given up (its timeout) and closed the connection.
            with contextlib.suppress(OSError):
                self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per quote would drown the stack's output

    return Handler


def server(stub: CarrierStub, *, host: str = "127.0.0.1", port: int = 0) -> StubServer:
    return StubServer((host, port), _handler(stub))


@contextlib.contextmanager
def running(*stubs: CarrierStub, host: str = "127.0.0.1") -> Iterator[dict[str, str]]:
    """Serve each stub on a free port, on threads, while the block runs; yields their base
    URLs by carrier name, the shape of settings.SHIPPING_CARRIERS. For tests and the bench."""
    servers = [server(stub, host=host) for stub in stubs]
    threads = [threading.Thread(target=httpd.serve_forever, daemon=True) for httpd in servers]
    for thread in threads:
        thread.start()
    try:
        yield {
            stub.name: f"http://{host}:{httpd.server_address[1]}"
            for stub, httpd in zip(stubs, servers, strict=True)
        }
    finally:
        for httpd, thread in zip(servers, threads, strict=True):
            httpd.shutdown()
            httpd.server_close()
            thread.join()


def serve_forever(carriers: list[tuple[str, int, int]], *, host: str) -> None:
    """Serve each (name, port, latency in ms) until interrupted, one thread per carrier."""
    servers = []
    for name, port, latency_ms in carriers:
        servers.append(server(CarrierStub(name, latency_s=latency_ms / 1000), host=host, port=port))
        print(f"carrier stub {name} on http://{host}:{port} (latency {latency_ms} ms)", flush=True)
    threads = [threading.Thread(target=httpd.serve_forever, daemon=True) for httpd in servers]
    for thread in threads:
        thread.start()
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()  # until SIGTERM or Ctrl-C
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _carrier(spec: str) -> tuple[str, int, int]:
    """`rapid:17181:100` → ("rapid", 17181, 100)."""
    try:
        name, port, latency = spec.split(":")
        result = (name, int(port), int(latency))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r} is not name:port:latency_ms") from None
    if name not in RATES or not 1 <= result[1] <= 65535 or result[2] < 0:
        raise argparse.ArgumentTypeError(
            f"{spec!r}: name one of {', '.join(RATES)}, a TCP port, latency 0 or more"
        )
    return result


def main(argv: list[str] | None = None) -> None:
    """`python -m shop.carrier_stub rapid:17181:100 ...`: how the local stack starts them."""
    parser = argparse.ArgumentParser(prog="python -m shop.carrier_stub")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("carriers", nargs="+", type=_carrier, metavar="name:port:latency_ms")
    args = parser.parse_args(argv)
    serve_forever(args.carriers, host=args.host)


if __name__ == "__main__":
    main()
