"""Run the Procfile's long-running processes together, like foreman or honcho, stdlib only.

    python -m shop.procfile [--procfile PATH] [--only web,worker-email] [--timeout SECONDS]

Each Procfile line is `name: command`. `${VAR:-default}`, `${VAR-default}`, `${VAR}` and `$VAR`
are expanded from the environment, then the command is split with `shlex.split` and started
without a shell. Every output line is prefixed with the process name (`web    | ...`). When
one process exits, or on Ctrl-C / SIGTERM, all the others get SIGTERM, then SIGKILL (to their
whole process group) after `--timeout` seconds; a second Ctrl-C skips the wait. The exit
status is non-zero when a process failed: it exited by itself with a non-zero status, could
not be started, or had to be killed.

Commands are looked up on PATH with the running interpreter's own bin directory first, so
`.venv/bin/python -m shop.procfile` finds the virtualenv's gunicorn and celery without an
activated virtualenv.

    python -m shop.procfile exec web
    python -m shop.procfile exec gunicorn ... --bind '${WEB_BIND:-127.0.0.1:8000}' ...

replaces the current process (no supervision, no prefixes) with one command: a Procfile entry
by name, or the given arguments, each expanded the same way. The Docker image uses it as its
entrypoint, so docker-compose can run the Procfile's very strings, with `$${VAR}` escaped so
that the container's environment fills them in rather than the host's.

The package: `parse` reads the Procfile and expands its commands, `supervisor` runs them
together, `cli` holds `exec` mode and the command line (`__main__` runs it).
"""

from shop.procfile.cli import exec_command, main
from shop.procfile.parse import (
    PROJECT_ROOT,
    ProcfileError,
    argv_for,
    child_environment,
    commands,
    default_procfile,
    expand,
    parse,
)
from shop.procfile.supervisor import DEFAULT_TIMEOUT, POLL_INTERVAL, SYSTEM_NAME, run

__all__ = [
    "DEFAULT_TIMEOUT",
    "POLL_INTERVAL",
    "PROJECT_ROOT",
    "SYSTEM_NAME",
    "ProcfileError",
    "argv_for",
    "child_environment",
    "commands",
    "default_procfile",
    "exec_command",
    "expand",
    "main",
    "parse",
    "run",
]
