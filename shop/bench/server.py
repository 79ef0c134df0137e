"""The Procfile's gunicorn, started for the bench on a free loopback port and always stopped.

The HTTP modes of `manage.py bench` (`--http`, `--open-loop`) measure the server a deployment
runs, not the in-process test client: the Procfile's `web` line, expanded as `shop.procfile`
expands it, bound to `127.0.0.1:0` (the kernel picks a free port; gunicorn prints it) and run
with the settings the bench itself runs with (config.settings.loadtest: DEBUG off).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from shop.bench.measure import BenchError
from shop.procfile import PROJECT_ROOT, argv_for, child_environment, commands

START_TIMEOUT_S = 60.0  # Django loads in the master before any worker forks
STOP_TIMEOUT_S = 10.0
_LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


@contextlib.contextmanager
def gunicorn(*, workers: int | None = None, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start the Procfile's `web` process on a free loopback port; yield its base URL
    (`http://127.0.0.1:PORT`). It is stopped on the way out, whatever happened: an error,
    Ctrl-C, or SIGTERM (which `manage.py bench` turns into KeyboardInterrupt)."""
    child_env = child_environment(env)
    child_env["WEB_BIND"] = "127.0.0.1:0"
    child_env.setdefault("DJANGO_SETTINGS_MODULE", os.environ.get("DJANGO_SETTINGS_MODULE", ""))
    if workers is not None:
        child_env["WEB_WORKERS"] = str(workers)
    argv = argv_for(commands()["web"], child_env)
    with tempfile.TemporaryDirectory(prefix="perfshop-bench-") as tmp:
        log = Path(tmp) / "gunicorn.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,  # gunicorn.conf.py is read from the directory it starts in
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group to SIGKILL; Ctrl-C reaches only us
            )
        try:
            yield _wait_until_listening(process, log)
        finally:
            _stop(process)


def _wait_until_listening(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        text = log.read_text(errors="replace")
        if found := _LISTENING.search(text):
            return found[1]
        if process.poll() is not None or time.monotonic() > deadline:
            tail = "\n".join(text.splitlines()[-15:])
            raise BenchError(f"gunicorn did not start (exit status {process.poll()}):\n{tail}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (gunicorn finishes the requests in flight), then SIGKILL to whatever of its
    group is left: a worker can outlive a master that died or timed out."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
