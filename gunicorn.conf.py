"""gunicorn reads this file from the directory it starts in (its default `-c`).

- A bad environment variable (PERF_TOGGLES=nope=off) prints one line and stops the server:
  Django is loaded in the master before any worker is forked. Without this, each worker fails
  on its own, and gunicorn's arbiter answers the second failure with a traceback.
- The errors gunicorn answers itself, before Django sees the request (a request line over
  4,094 bytes, more than 100 headers, a malformed request), are JSON like the API's own:
  `{"detail", "code"}`. Stock, they are small HTML pages.
"""

import json
import os

from gunicorn import util


def on_starting(server) -> None:
    import django

    from config.env import BadEnvironment, exit_on_bad_environment

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    try:
        django.setup()
    except BadEnvironment as exc:
        exit_on_bad_environment(exc)


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error, answering JSON instead of HTML."""
    code = reason.lower().replace(" ", "_").replace("-", "_")
    body = json.dumps({"detail": mesg or f"{reason}.", "code": code}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body)


# Workers are forked from the master, which read this file: they call the replacement.
util.write_error = write_json_error
