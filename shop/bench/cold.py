"""Making the next request a first request: what a scenario's cold arm resets before each run.

A warm run reuses what earlier runs left behind: the open database connection (its server
process has the catalog cached, psycopg has its prepared statements, if any), and whatever the
request put in the cache. A customer's first request finds none of that. So before each cold
run the bench, untimed:

- closes every database connection Django holds, and shuts the process's pools
  (connection_pooling), so the request opens a new one, as each request does with
  `CONN_MAX_AGE=0`: a new PostgreSQL backend, its catalog caches empty, and a new psycopg
  connection with no prepared statement. With a pool, the reopened pool opens its `min_size`
  connections, and connections_opened counts them;
- deletes the project's keys from every Django cache (Redis): the keys under the cache's
  `KEY_PREFIX`, not the whole Redis database, which the Celery broker may share
  (`CELERY_BROKER_URL` is `REDIS_URL` in the base settings).

What stays warm is the Python process: imported code, URL resolvers, compiled templates.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connections

from shop.bench.measure import BenchError
from shop.techniques import connection_pooling, local_cache

SCAN_BATCH = 1000  # keys per SCAN and per DEL: one round trip per thousand keys


def reset() -> None:
    """New database connections and an empty project cache for the next request."""
    close_connections()
    clear_cache()


def close_connections() -> None:
    """Close every alias's connection; the next query opens a new one. Refused inside a
    transaction, which a closed connection would end half-way (Django then fails every later
    query of it with an unrelated-looking error)."""
    inside = [alias for alias in connections if connections[alias].in_atomic_block]
    if inside:
        raise BenchError(
            f"a cold run opens a new database connection, which would end the transaction "
            f"open on {', '.join(inside)}: run the bench outside one"
        )
    connection_pooling.close_all()


def clear_cache() -> int:
    """Delete the project's keys from every configured cache but the sessions' (session_store:
    state, not a cache; a cold run must not log anyone out), and this process's own
    (local_cache's L1); returns how many Redis keys."""
    local_cache.clear()
    deleted = 0
    for alias in settings.CACHES:
        if alias == getattr(settings, "SESSION_CACHE_ALIAS", None):
            continue
        cache = caches[alias]
        if not isinstance(cache, RedisCache):
            cache.clear()  # a backend of its own holds nothing but the project's keys
            continue
        # Django's Redis keys are "<KEY_PREFIX>:<version>:<key>" (default_key_func).
        client = cache._cache.get_client(write=True)
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{cache.key_prefix}:*", count=SCAN_BATCH):
            batch.append(key)
            if len(batch) == SCAN_BATCH:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
    return deleted
