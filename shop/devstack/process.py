"""Running things: commands (as the postgres account when we are root), pids and log tails,
waiting for a process to go, and the per-state-folder lock around `up`/`down`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .layout import HOST, MARKER_FILE, PG_SYSTEM_USER, DevstackError, Stack


def _pg_account() -> pwd.struct_passwd | None:
    """The OS account that runs PostgreSQL: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if not useradd:
        raise DevstackError(
            f"running as root, PostgreSQL must run as the `{PG_SYSTEM_USER}` system user, which "
            "does not exist and cannot be created here (no useradd); create it, or run devstack "
            "as an ordinary user"
        )
    subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return pwd.getpwnam(PG_SYSTEM_USER)


def _child_env() -> dict[str, str]:
    """Our environment without libpq variables, so PGHOST/PGPORT/... can't redirect anything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def _run(
    cmd: Sequence[str | os.PathLike],
    *,
    as_pg: bool = False,
    check: bool = True,
    timeout: float | None = 120,
    input: str | None = None,
    cwd: Path | None = None,
    detach: bool = False,
    what: str | None = None,
) -> subprocess.CompletedProcess:
    """Run a command; as the postgres account if `as_pg` and we are root.

    Output goes through temporary files, not pipes: a daemon that a command starts (pg_ctl,
    redis-server --daemonize) must never hold our pipe open.
    """
    kwargs: dict = {}
    env = _child_env()
    if as_pg and (account := _pg_account()) is not None:
        kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    argv = [str(c) for c in cmd]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            proc = subprocess.run(
                argv,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                env=env,
                cwd=str(cwd) if cwd else "/",
                timeout=timeout,
                start_new_session=detach,
                **kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            raise DevstackError(
                f"{what or argv[0]} did not finish within {timeout:.0f}s: {shlex.join(argv)}"
            ) from exc
        except OSError as exc:
            raise DevstackError(f"cannot run {argv[0]}: {exc}") from exc
        out.seek(0)
        err.seek(0)
        proc.stdout, proc.stderr = out.read(), err.read()
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise DevstackError(
            f"{what or argv[0]} failed (exit {proc.returncode}): {shlex.join(argv)}\n{detail}"
        )
    return proc


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _refuse_taken_port(port: int, what: str, variable: str) -> None:
    """Fail clearly, before starting anything, when another process holds our port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        if probe.connect_ex((HOST, port)) != 0:
            return
    raise DevstackError(
        f"{HOST}:{port} is already in use, so the local {what} cannot start there. Another "
        "PerfShop checkout's stack may be running: stop it with `make down` in that checkout. "
        f"Or set {variable} to use a server you already have."
    )


def _pid_runs(pid: int | None, program: str) -> bool:
    """Whether `pid` is alive and runs `program`. A pid file outlives a crash or a reboot, and
    its number may since belong to an unrelated process that must never be signalled."""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False  # it exited meanwhile
    except OSError:
        return True  # no /proc to ask: trust the pid file
    return program.encode() in cmdline


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log file yet)"
    return "\n".join("    " + line for line in text[-lines:])


def _wait_gone(pid: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            raise DevstackError(f"{what} did not stop within {timeout:.0f}s")
        time.sleep(0.1)


@contextlib.contextmanager
def _locked(stack: Stack, *, claim: bool = False) -> Iterator[None]:
    """One `up`/`down` at a time per state folder (tests and people run them concurrently).

    `claim` (only `up` does) marks the folder as the stack's, which `down --purge` requires
    before it deletes anything: a mistaken PERFSHOP_STACK_DIR is never claimed by `down`."""
    stack.root.mkdir(parents=True, exist_ok=True)
    marker = stack.root / MARKER_FILE
    if claim:
        stack.root.chmod(0o755)  # the postgres user must be able to traverse it
        if not marker.exists():
            marker.write_text(
                "State of the PerfShop local stack (shop/devstack/). Safe to delete.\n"
            )
    with open(stack.root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
