"""The HTTP server under the stubs of outside services (shop/payment_gateway_stub.py,
shop/carrier_stub.py): a thread per request, on loopback, quiet about clients that gave up."""

from http.server import ThreadingHTTPServer


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a full backlog would add SYN retries of a second
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hung up mid-answer (its timeout): expected, not an error
