"""After a seed commits: drop this database's Redis state, which describes the rows it replaced.

The seed truncates with RESTART IDENTITY, so the new product 42 is not the old one. Left alone,
Redis would serve the new product 42 the old one's cached page (up to its TTL), the old category
tree (up to an hour) and the old pages' HTTP validators (http_caching), and write_behind would
flush the old products' pending view counts onto the new ones.

What goes, matched with the ':' after each prefix, so the keys of a database whose name starts
with this one's (`perfshop` and `perfshop_fig`) stay:
- the cache's entries, `<KEY_PREFIX>:<version>:*` on the cache Redis (the pages, their
  validators, local_cache's shared layer, list generations, fill locks);
- write_behind's counts, `<WRITE_BEHIND_KEY_PREFIX>:*` on its Redis;
- this process's local_cache L1.

What stays: the circuit breaker's state (the payment gateway's health, not rows), the rate
limiter's buckets (clients, not rows), and sessions (a session names its user by id and by a
hash of the password hash: a session outlives a seed only for a user with the same id,
username and password hash, the same account as far as Django can tell).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from django.conf import settings

from shop import cache
from shop.techniques import local_cache, write_behind

WARNING = "warning: "  # how a warning's line starts: `seed --quiet` still prints those
SCAN_COUNT = 1000  # keys SCAN looks at per call: a few ms of Redis time each
UNLINK_BATCH = 1000  # keys per UNLINK: freed in the background, one round trip a batch


def drop(*, out: Callable[[str], None]) -> int:
    """Drop this database's keys from Redis and this process's L1; print one line saying how
    many keys went, and one warning for each Redis that did not answer. Never raises for
    Redis: the seed has committed, and its keys expire with their TTLs anyway."""
    local_cache.clear()
    dropped = 0
    for name, client, pattern, consequence in _stores():
        try:
            dropped += unlink_matching(client(), pattern)
        except cache.OUTAGE as exc:
            out(f"{WARNING}{name} did not answer ({type(exc).__name__}: {exc}): {consequence}")
    out(f"Dropped {dropped:,} Redis keys of this database (cached pages, view counts)")
    return dropped


def _stores() -> Iterator[tuple[str, Callable[[], object], str, str]]:
    backend = cache.backend()
    yield (
        "the cache's Redis",
        lambda: backend._cache.get_client(write=True),
        f"{glob_escape(backend.key_prefix)}:{backend.version}:*",
        "cached pages show the replaced rows until their TTLs (an hour at most)",
    )
    yield (
        "write_behind's Redis",
        write_behind.client,
        f"{glob_escape(settings.WRITE_BEHIND_KEY_PREFIX)}:*",
        "its pending view counts will be flushed onto the new products of the same ids",
    )


def unlink_matching(client, pattern: str) -> int:
    """UNLINK every key matching `pattern`, in batches as SCAN finds them; how many went."""
    dropped = 0
    for batch in _batches(client.scan_iter(match=pattern, count=SCAN_COUNT), UNLINK_BATCH):
        dropped += client.unlink(*batch)
    return dropped


def _batches(keys: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def glob_escape(text: str) -> str:
    """`text` matched literally by a Redis MATCH pattern (a database name may hold `[` or `*`)."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
