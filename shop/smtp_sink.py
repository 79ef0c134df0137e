"""A real SMTP server that keeps every message it receives, for development, tests and the bench.

The email queue's tasks send through Django's SMTP backend to this server on loopback, so sending
costs what it costs against a real mail server (a TCP connection, the SMTP dialogue), and
SMTP_SINK_DELAY_MS adds a fixed time per message, like a distant provider's (the bench's target
is 50 ms). Each message is written as one `.eml` file (the bytes as received) in its folder;
`messages(folder)` reads them back, oldest first.

    python -m shop.smtp_sink --port 17025 --dir .stack/smtp/mail --delay-ms 50
    python manage.py smtp_sink                       # the Procfile's `smtp` line

    with smtp_sink.running(tmp_path / "mail") as sink:   # a test's own, on a free port
        worker = celery_worker("email", env=sink.environment())   # (the smtp_server fixture)
        sink.messages()

The SMTP protocol is aiosmtpd's; what is written here is only what to do with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session


class MailStore:
    """aiosmtpd's handler: writes each message to `folder` as `<time>-<n>.eml`, after `delay_s`."""

    def __init__(self, folder: Path, delay_s: float = 0.0):
        self.folder = Path(folder)
        self.delay_s = delay_s
        self._numbers = itertools.count(1)
        self.folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        name = f"{time.time_ns()}-{os.getpid()}-{next(self._numbers)}.eml"
        # Written under a temporary name and renamed: a reader never sees half a message.
        partial = self.folder / f".{name}.part"
        partial.write_bytes(envelope.original_content or b"")
        partial.rename(self.folder / name)
        return "250 Message accepted for delivery"


def messages(folder: Path) -> list[EmailMessage]:
    """The messages in `folder`, oldest first."""
    files = sorted(Path(folder).glob("*.eml"), key=lambda path: int(path.name.split("-", 1)[0]))
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in files
    ]


@dataclass(frozen=True)
class RunningSink:
    host: str
    port: int
    folder: Path

    def messages(self) -> list[EmailMessage]:
        return messages(self.folder)

    def environment(self) -> dict[str, str]:
        """The environment that makes a Django process (a test's worker) send mail here."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": str(self.port),
        }


async def _start(store: MailStore, host: str, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(store, hostname="perfshop-smtp-sink"), host, port)


@contextlib.contextmanager
def running(
    folder: Path, *, host: str = "127.0.0.1", port: int = 0, delay_ms: float = 0
) -> Iterator[RunningSink]:
    """Serve on a thread of this process while the block runs (port 0: a free one)."""
    # aiosmtpd logs every SMTP command at INFO: a bench's output would be nothing else.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    store = MailStore(folder, delay_s=delay_ms / 1000)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(_start(store, host, port))
    thread = threading.Thread(target=loop.run_forever, name="smtp-sink", daemon=True)
    thread.start()
    try:
        yield RunningSink(host, server.sockets[0].getsockname()[1], store.folder)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def serve_forever(*, host: str, port: int, folder: Path, delay_ms: float) -> None:
    async def serve() -> None:
        server = await _start(MailStore(folder, delay_s=delay_ms / 1000), host, port)
        print(
            f"SMTP sink on {host}:{port}, messages in {folder} (delay {delay_ms:g} ms)", flush=True
        )
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def main(argv: list[str] | None = None) -> None:
    """`python -m shop.smtp_sink --port N --dir FOLDER`: how the local stack starts it."""
    parser = argparse.ArgumentParser(prog="python -m shop.smtp_sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="where messages are written")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added per message")
    args = parser.parse_args(argv)
    if args.delay_ms < 0:
        parser.error("--delay-ms must be 0 or more")
    serve_forever(host=args.host, port=args.port, folder=args.dir, delay_ms=args.delay_ms)


if __name__ == "__main__":
    main()
