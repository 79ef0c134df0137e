"""The command line: `python -m shop.procfile [options]` supervises the Procfile's processes,
`python -m shop.procfile exec NAME|COMMAND...` replaces itself with one command (the Docker
entrypoint).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from shop.procfile.parse import ProcfileError, argv_for, child_environment, commands, expand
from shop.procfile.supervisor import DEFAULT_TIMEOUT, run

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


# --- exec (the Docker entrypoint) -------------------------------------------------------------


def exec_command(
    args: list[str],
    procfile: str | os.PathLike[str] | None = None,
    execvpe: Callable[..., NoReturn] = os.execvpe,
) -> NoReturn:
    """Replace this process by a Procfile entry (one name) or by `args`, expanded."""
    env = child_environment()
    argv: list[str] | None = None
    if len(args) == 1 and _NAME.fullmatch(args[0]):
        try:
            entries = commands(procfile)
        except ProcfileError:
            entries = {}
        if args[0] in entries:
            argv = argv_for(entries[args[0]], env)
    if argv is None:
        argv = [expand(arg, env) for arg in args]
    execvpe(argv[0], argv, env)


# --- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shop.procfile",
        description="Run the Procfile's processes together, prefixing their output; stop them "
        "all when one exits or on Ctrl-C. `python -m shop.procfile exec NAME|COMMAND...` "
        "instead replaces itself with one command (the Docker entrypoint).",
    )
    parser.add_argument(
        "--procfile",
        "-f",
        type=Path,
        default=None,
        help="the Procfile to read (default: ./Procfile, else the project's)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated process names to run (default: all of them)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds between SIGTERM and SIGKILL when stopping (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["exec"]:
        rest = args[1:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if not rest:
            print("usage: python -m shop.procfile exec NAME | COMMAND [ARG...]", file=sys.stderr)
            return 2
        try:
            exec_command(rest)
        except FileNotFoundError:
            print(f"procfile: {rest[0]}: command not found", file=sys.stderr)
            return 127
        except OSError as exc:
            print(f"procfile: cannot run {rest[0]!r}: {exc}", file=sys.stderr)
            return 126

    options = _parser().parse_args(args)
    only = [name.strip() for name in (options.only or "").split(",") if name.strip()] or None
    try:
        return run(options.procfile, only=only, timeout=options.timeout)
    except ProcfileError as exc:
        print(f"procfile: {exc}", file=sys.stderr)
        return 2
