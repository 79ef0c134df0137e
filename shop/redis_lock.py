"""A lock in Redis that expires: `SET key token NX PX ttl` to take it, a compare-and-delete
to give it back.

It expires so that a process that dies holding it does not block everyone for good. The price:
a holder that stalls past the TTL (a long GC pause, a slow statement, a swapped-out VM) loses
the lock without knowing, and the next holder goes ahead while it is still working. Whatever it
guards must therefore check, where the data lives, that nobody else wrote in between (a
version or a fencing token): docs/techniques/inventory_locking.md shows the failure and the
check. The inventory_locking technique uses it; anything that needs one lock across processes
can.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

# Deletes the key only if it still holds our token: after our lock expired and another holder
# took it, a plain DEL would release theirs.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# Between two tries for a held lock: short, since holders keep it for a transaction (a few
# milliseconds), and random, so waiters do not retry in step.
_POLL_S = (0.001, 0.005)


class LockTimeout(Exception):
    """The lock was held by others for longer than the caller would wait."""


@dataclass(frozen=True)
class Lock:
    key: str
    token: str


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    # One client per process: it holds a connection pool and is safe to share between threads.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def acquire(key: str, *, ttl_ms: int, wait_ms: int) -> Lock:
    """Take the lock on `key` for `ttl_ms`, waiting up to `wait_ms` for its holder to give it
    back or for it to expire; raise LockTimeout after that."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_ms / 1000
    while not client().set(key, token, nx=True, px=ttl_ms):
        if time.monotonic() >= deadline:
            raise LockTimeout(f"{key} was held for more than {wait_ms} ms")
        time.sleep(random.uniform(*_POLL_S))
    return Lock(key=key, token=token)


def release(lock: Lock) -> bool:
    """Give the lock back if it is still ours; False when it had expired (and may be another's)."""
    return bool(client().eval(_RELEASE, 1, lock.key, lock.token))
