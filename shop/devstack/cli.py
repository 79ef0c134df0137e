"""The command line: `python -m shop.devstack up [-q] | down [--purge] | status | env | binaries`.

`manage.py devstack` reuses `add_actions` and `run`, so both spell the same commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .control import down, env_lines, format_status, status, up
from .discovery import find_pg_bindir, find_redis_server
from .layout import DevstackError, _env


def add_actions(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    up_parser = sub.add_parser("up", help="start what is not running (idempotent)")
    up_parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    down_parser = sub.add_parser("down", help="stop everything, keep the data")
    down_parser.add_argument(
        "--purge", action="store_true", help="also delete the state folder (all local data)"
    )
    sub.add_parser("status", help="one line per server")
    sub.add_parser("env", help='print export lines for DATABASE_URL, ... (eval "$(...)")')
    sub.add_parser(
        "binaries",
        help="say which server binaries `up` would use; exit 1 when one it needs is missing",
    )


def run(action: str, *, quiet: bool = False, purge: bool = False, out: TextIO = sys.stdout) -> int:
    """Carry out one action; its exit status. Raises DevstackError for what a person must fix."""
    if action == "up":
        up(verbose=not quiet, stream=out)
    elif action == "down":
        down(purge=purge, stream=out)
    elif action == "status":
        _write_lines(out, format_status(status()))
    elif action == "env":
        _write_lines(out, env_lines())
    elif action == "binaries":
        return _binaries(out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shop.devstack",
        description="Local PostgreSQL primary + streaming replica + Redis (cache, broker) + stubs under .stack/.",
    )
    add_actions(parser)
    args = parser.parse_args(argv)
    try:
        return run(
            args.action, quiet=getattr(args, "quiet", False), purge=getattr(args, "purge", False)
        )
    except (DevstackError, _env.BadEnvironment) as exc:  # a bad PERFSHOP_*_PORT
        print(f"devstack: error: {exc}", file=sys.stderr)
        return 1


def _write_lines(out: TextIO, lines: Sequence[str]) -> None:
    for line in lines:
        out.write(line + "\n")


def _binaries(out: TextIO) -> int:
    """What `up` would run. Servers given by DATABASE_URL / REDIS_URL and CELERY_BROKER_URL
    need no binaries."""
    needed = []
    if not os.environ.get("DATABASE_URL"):
        needed.append(("postgresql", find_pg_bindir))
    if not (os.environ.get("REDIS_URL") and os.environ.get("CELERY_BROKER_URL")):
        needed.append(("redis", find_redis_server))
    missing = 0
    for name, find in needed:
        try:
            _path, origin = find()
            out.write(f"{name:<10} {origin}\n")
        except DevstackError as exc:
            print(f"{name:<10} missing: {exc}", file=sys.stderr)
            missing += 1
    return 1 if missing else 0
