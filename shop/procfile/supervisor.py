"""Running the Procfile's processes together: start them, prefix their output, stop them all.

When one process exits, or on Ctrl-C / SIGTERM, all the others get SIGTERM, then SIGKILL (to
their whole process group) after the timeout; a second signal skips the wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO

from shop.procfile.parse import ProcfileError, argv_for, child_environment, commands, expand

SYSTEM_NAME = "procfile"
DEFAULT_TIMEOUT = 10.0
POLL_INTERVAL = 0.05

_COLOURS = ("36", "33", "32", "35", "34", "31")


@dataclass
class _Process:
    name: str
    command: str
    popen: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    asked_to_stop: bool = False
    killed: bool = False
    start_error: str | None = None
    reader: threading.Thread | None = field(default=None, repr=False)

    def poll(self) -> int | None:
        if self.returncode is None and self.popen is not None:
            self.returncode = self.popen.poll()
        return self.returncode

    @property
    def running(self) -> bool:
        return self.popen is not None and self.poll() is None


class _Output:
    """Prefixed, line-at-a-time writes from several threads."""

    def __init__(self, stream: IO[str], names: Iterable[str]):
        names = list(names)
        self.stream = stream
        self.width = max(len(name) for name in [SYSTEM_NAME, *names])
        self.lock = threading.Lock()
        colour = hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")
        self.colours: dict[str, str] = {}
        if colour:
            for index, name in enumerate(names):
                self.colours[name] = _COLOURS[index % len(_COLOURS)]
            self.colours[SYSTEM_NAME] = "1"

    def line(self, name: str, text: str) -> None:
        prefix = f"{name.ljust(self.width)} |"
        if name in self.colours:
            prefix = f"\033[{self.colours[name]}m{prefix}\033[0m"
        with self.lock:
            try:
                self.stream.write(f"{prefix} {text}\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                pass

    def system(self, text: str) -> None:
        self.line(SYSTEM_NAME, text)


def _pump(process: _Process, output: _Output) -> None:
    assert process.popen is not None and process.popen.stdout is not None
    stream = process.popen.stdout
    for raw in iter(stream.readline, b""):
        output.line(process.name, raw.decode("utf-8", "replace").rstrip("\r\n"))
    stream.close()


def _status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"


def _exit_code(returncode: int) -> int:
    """A child's status as a process exit status: 128+N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _stopped_cleanly(returncode: int) -> bool:
    """How a process may end after we sent it SIGTERM."""
    return returncode in (0, -signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM)


def _signal_group(process: _Process, signum: int) -> None:
    if process.popen is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.popen.pid, signum)


def run(
    procfile: str | os.PathLike[str] | None = None,
    only: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stream: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start the Procfile's processes, stream their output, stop them all together.

    Returns the exit status: 0 when every process stopped cleanly, else non-zero.
    """
    entries = commands(procfile)
    if only:
        wanted = list(dict.fromkeys(only))
        unknown = [name for name in wanted if name not in entries]
        if unknown:
            raise ProcfileError(
                f"no process named {', '.join(unknown)} (the Procfile has {', '.join(entries)})"
            )
        entries = {name: entries[name] for name in wanted}

    child_env = child_environment(env)
    processes = [_Process(name, command) for name, command in entries.items()]
    output = _Output(stream if stream is not None else sys.stdout, [p.name for p in processes])

    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)

    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, on_signal)

    try:
        failure = _start_all(processes, output, child_env)
        first_exited: _Process | None = None
        if failure is None:
            first_exited = _wait_for_first_exit(processes, received)
            if first_exited is not None:
                returncode = first_exited.returncode
                assert returncode is not None
                output.system(f"{first_exited.name} exited with {_status(returncode)}")
            else:
                name = signal.Signals(received[0]).name
                output.system(f"received {name}")
        _stop_all(processes, output, timeout, received)
        for process in processes:
            if process.reader is not None:
                process.reader.join(timeout=2)
        return _overall_status(processes, first_exited, failure, output)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _start_all(processes: list[_Process], output: _Output, env: dict[str, str]) -> int | None:
    """Start every process; on the first that cannot start, return its exit status."""
    for process in processes:
        try:
            expanded = expand(process.command, env)
            argv = argv_for(process.command, env)
            process.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # our own SIGINT handling; a group to SIGKILL
            )
        except (OSError, ValueError) as exc:
            process.start_error = str(exc)
            output.system(f"{process.name} could not start: {exc}")
            return 127 if isinstance(exc, FileNotFoundError) else 126
        output.system(f"{process.name} started (pid {process.popen.pid}): {expanded}")
        process.reader = threading.Thread(
            target=_pump, args=(process, output), name=f"procfile-{process.name}", daemon=True
        )
        process.reader.start()
    return None


def _wait_for_first_exit(processes: list[_Process], received: list[int]) -> _Process | None:
    """Block until a process exits (returned) or a signal arrives (None)."""
    while not received:
        for process in processes:
            if process.poll() is not None:
                return process
        time.sleep(POLL_INTERVAL)
    return None


def _stop_all(
    processes: list[_Process], output: _Output, timeout: float, received: list[int]
) -> None:
    signals_before = len(received)
    running = [p for p in processes if p.running]
    if running:
        output.system(f"sending SIGTERM to {', '.join(p.name for p in running)}")
    for process in running:
        process.asked_to_stop = True
        with contextlib.suppress(ProcessLookupError):
            process.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

    deadline = time.monotonic() + timeout
    while any(p.running for p in processes):
        if time.monotonic() >= deadline:
            break
        if len(received) > signals_before:
            output.system("second signal: not waiting any longer")
            break
        time.sleep(POLL_INTERVAL)

    for process in processes:
        if process.running:
            output.system(f"{process.name} still running: sending SIGKILL")
            process.killed = True
            _signal_group(process, signal.SIGKILL)
    for process in processes:
        if process.popen is None:
            continue
        process.returncode = process.popen.wait()
        # Whatever the leader left behind in its group (it normally takes its own children
        # down with it) would otherwise outlive us, holding the output pipe open.
        try:
            os.killpg(process.popen.pid, 0)
        except (ProcessLookupError, PermissionError):
            continue
        output.system(f"{process.name} left processes behind: sending them SIGKILL")
        _signal_group(process, signal.SIGKILL)


def _overall_status(
    processes: list[_Process],
    first_exited: _Process | None,
    start_failure: int | None,
    output: _Output,
) -> int:
    failures: list[int] = []
    if start_failure is not None:
        failures.append(start_failure)
    if first_exited is not None and first_exited.returncode:
        failures.append(_exit_code(first_exited.returncode))
    for process in processes:
        if process.popen is None or process is first_exited:
            continue
        returncode = process.returncode
        assert returncode is not None
        if process.killed:
            output.system(f"{process.name} was killed")
            failures.append(128 + signal.SIGKILL)
        elif process.asked_to_stop and _stopped_cleanly(returncode):
            output.system(f"{process.name} stopped ({_status(returncode)})")
        else:
            output.system(f"{process.name} exited with {_status(returncode)}")
            if returncode:
                failures.append(_exit_code(returncode))
    status = next((code for code in failures if code), 0)
    output.system(f"exiting with status {status}")
    return status
