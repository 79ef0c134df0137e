"""A tiny real HTTP server on loopback for the bench's HTTP tests: no mock of the client, a
socket it really talks to, answering and stalling as each test says."""

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict = field(default_factory=lambda: {"ok": True})
    stall_s: float = 0.0  # waited before answering


@dataclass(frozen=True)
class Request:
    index: int  # 0-based, in the order the server received them
    path: str
    headers: dict[str, str]


@contextlib.contextmanager
def serve(
    reply: Callable[[Request], Reply], *, threaded: bool = False
) -> Iterator[tuple[str, list[Request]]]:
    """Serve GET. With ONE thread (the default), while it stalls an answer the requests behind
    it wait, as behind a stuck worker; `threaded`, a thread per request, so only the stalled
    one waits. Yields (the base URL, the requests received, in order)."""
    received: list[Request] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            with lock:
                request = Request(len(received), self.path, dict(self.headers.items()))
                received.append(request)
            answer = reply(request)
            if answer.stall_s:
                time.sleep(answer.stall_s)
            body = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The client may have given up on a stalled answer and closed the connection.
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer if threaded else HTTPServer):
        request_queue_size = 64  # a full backlog would add SYN retries of a second
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # a connection the client closed on a stalled answer: expected here

    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
