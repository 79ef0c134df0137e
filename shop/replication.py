"""The streaming replica seen from the outside: wait until it has replayed the primary's
latest commit, or hold its replay back for a while. The tests and the read_replica bench use
them to read a replica that has (or deliberately has not) caught up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from time import monotonic, sleep

from django.db import OperationalError, connections

RELOAD_SECONDS = 0.1


def primary_lsn(primary: str = "default") -> str:
    """Where the primary's WAL ends, this session's last commit included. The insert position,
    not pg_current_wal_lsn() (the write position): with synchronous_commit off, as the local
    stack runs, a commit returns before its WAL is written, and the write position may still
    be short of it."""
    with connections[primary].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        return str(cursor.fetchone()[0])


def wait_for(
    lsn: str, *, replica: str = "replica", received_only: bool = False, timeout: float = 10
) -> None:
    """Until the replica has replayed (or, with `received_only`, received) WAL up to `lsn`."""
    function = "pg_last_wal_receive_lsn" if received_only else "pg_last_wal_replay_lsn"
    deadline = monotonic() + timeout
    with connections[replica].cursor() as cursor:
        while True:
            cursor.execute(f"SELECT {function}() >= %s::pg_lsn", [lsn])
            if cursor.fetchone()[0]:
                return
            if monotonic() > deadline:
                raise TimeoutError(f"the replica did not reach {lsn} in {timeout} s")
            sleep(0.01)


def wait_for_replay(*, primary: str = "default", replica: str = "replica") -> None:
    """Until everything committed on the primary so far can be read on the replica."""
    wait_for(primary_lsn(primary), replica=replica)


def caught_up(replica: str | None, *, timeout: float = 120) -> None:
    """Wait for the replay of everything committed so far, if there is a replica to wait for.
    One that does not answer is not waited for: read_replica sends no read to it; nor is an alias
    that points at a primary, which has nothing to replay."""
    if replica is None:
        return
    with suppress(OperationalError):
        with connections[replica].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            if not cursor.fetchone()[0]:
                return  # the alias is a primary (DATABASE_REPLICA_URL set to it): nothing to replay
        wait_for(primary_lsn(), replica=replica, timeout=timeout)


@contextmanager
def apply_delay(seconds: float, *, replica: str = "replica") -> Iterator[None]:
    """The replica replays each commit `seconds` after it was made, for the block only."""
    set_delay(seconds, replica=replica)
    try:
        yield
    finally:
        reset_delay(replica=replica)


def set_delay(
    seconds: float, *, replica: str = "replica", primary: str = "default", timeout: float = 10
) -> None:
    """recovery_min_apply_delay: the replica replays each commit `seconds` after it was made.
    It is the server's setting, so every database on that replica lags while it is set: keep
    it short, and always `reset_delay()`. Needs a superuser on the replica.

    Returns once the delay holds: the startup process (the one replaying) reads the setting
    when it next handles its signal, and nothing shows when it has, so a commit is made and
    watched until the replica receives it and does not replay it."""
    with connections[replica].cursor() as cursor:
        cursor.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(seconds * 1000)}ms'")
        cursor.execute("SELECT pg_reload_conf()")
    deadline = monotonic() + timeout
    while True:
        sleep(RELOAD_SECONDS)
        with connections[primary].cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")  # an xid, so a commit record
        lsn = primary_lsn(primary)
        wait_for(lsn, replica=replica, received_only=True, timeout=timeout)
        sleep(RELOAD_SECONDS)
        with connections[replica].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn() < %s::pg_lsn", [lsn])
            if cursor.fetchone()[0]:
                return
        if monotonic() > deadline:
            raise TimeoutError(f"the replica still replays at once after {timeout} s")


def reset_delay(*, replica: str = "replica") -> bool:
    """Replay at once again; True if a delay was set (a killed run's, say)."""
    with connections[replica].cursor() as cursor:
        cursor.execute("SHOW recovery_min_apply_delay")
        was = cursor.fetchone()[0] not in ("0", "0ms")
        cursor.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
        cursor.execute("SELECT pg_reload_conf()")
    return was
