"""Reading the Procfile and turning its commands into what runs: expanded, split, environment.

Shared by the supervisor (`shop.procfile.supervisor`) and `exec` mode (`shop.procfile.cli`).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

# shop/procfile/parse.py -> the project root, two packages up.
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)\s*:\s*(?P<command>.*?)\s*$")
_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class ProcfileError(ValueError):
    """The Procfile is missing, malformed, or does not name a requested process."""


# --- reading ----------------------------------------------------------------------------------


def default_procfile() -> Path:
    """`./Procfile` when there is one, else the one at the project root."""
    here = Path.cwd() / "Procfile"
    return here if here.is_file() else PROJECT_ROOT / "Procfile"


def parse(text: str) -> dict[str, str]:
    """`name: command` lines, in order. Blank lines and `#` comments are skipped."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENTRY.match(stripped)
        if match is None or not match["command"]:
            raise ProcfileError(f"line {number}: expected `name: command`, got {line!r}")
        name = match["name"]
        if name in entries:
            raise ProcfileError(f"line {number}: process {name!r} is defined twice")
        entries[name] = match["command"]
    return entries


def commands(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The Procfile's raw (unexpanded) commands by process name."""
    procfile = Path(path) if path is not None else default_procfile()
    try:
        text = procfile.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProcfileError(f"no Procfile at {procfile}") from exc
    entries = parse(text)
    if not entries:
        raise ProcfileError(f"{procfile} defines no process")
    return entries


def expand(command: str, env: Mapping[str, str] | None = None) -> str:
    """Expand `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR}`, `$VAR`.

    An unset variable without a default expands to the empty string, as in a shell.
    """
    values = os.environ if env is None else env

    def replace(match: re.Match[str]) -> str:
        if match["bare"]:
            return values.get(match["bare"], "")
        value = values.get(match["braced"])
        op = match["op"]
        if op == ":-" and not value:
            return match["default"]
        if op == "-" and value is None:
            return match["default"]
        return value or ""

    return _VARIABLE.sub(replace, command)


def argv_for(command: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The argument vector a Procfile command runs as: expanded first, then split."""
    argv = shlex.split(expand(command, env))
    if not argv:
        raise ProcfileError(f"command {command!r} expands to nothing")
    return argv


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the processes: unbuffered Python, this interpreter's bin dir first."""
    env = dict(os.environ if base is None else base)
    env.setdefault("PYTHONUNBUFFERED", "1")
    bindir = os.path.dirname(sys.executable)
    path = env.get("PATH", os.defpath).split(os.pathsep)
    if bindir and path[:1] != [bindir]:
        env["PATH"] = os.pathsep.join([bindir, *path])
    return env
