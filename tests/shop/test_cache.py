"""shop/cache.py's backend: Django's Redis cache, with one redis-py client per connection pool
instead of one built for every operation."""

import pytest
import redis
from django.core.cache import caches
from django.test import override_settings

from shop import cache
from shop.private_broker import PrivateBroker


def test_every_operation_uses_the_same_client():
    backend = caches["default"]
    assert isinstance(backend, cache.RedisCache)
    client = backend._cache.get_client()
    assert backend._cache.get_client("any key") is client
    assert backend._cache.get_client(write=True) is client  # one server: one pool


def test_the_client_reconnects_after_redis_comes_back(tmp_path, settings):
    """A client kept between operations keeps no connection of its own: after a restart its
    pool opens a new one, and a restart costs one miss, never an error."""
    with PrivateBroker(tmp_path / "redis") as private:
        options = {**settings.CACHES["default"], "LOCATION": private.url}
        with override_settings(CACHES={"default": options}):
            caches["default"].set("k", 1)  # a connection of the pool is open
            assert cache.get("k") == 1
            private.stop()
            assert cache.get("k") is cache.MISS  # down: a miss
            private.start()
            assert cache.set("k", 2, timeout=60)
            assert cache.get("k") == 2


@pytest.mark.parametrize("operation", ["get", "set", "delete"])
def test_the_shared_cache_answers_as_before(operation):
    key = cache.key("test", operation, version=1)
    if operation == "get":
        assert cache.get(key) is cache.MISS
    elif operation == "set":
        assert cache.set(key, {"a": 1}, timeout=60) and cache.get(key) == {"a": 1}
    else:
        cache.set(key, 1, timeout=60)
        cache.delete(key)
        assert cache.get(key) is cache.MISS


def test_an_error_of_ours_raises_instead_of_passing_for_an_outage(caplog):
    """Only an outage (no answer, OOM, READONLY) is a miss or a no-op: an INCR of a value that
    is not an integer is a bug of the caller, and raises instead of logging a warning."""
    key = cache.key("test", "counter", version=1)
    cache.set(key, "1", timeout=60)  # a pickled string, not a Redis integer
    with pytest.raises(redis.exceptions.ResponseError, match="not an integer"):
        cache.incr(key)
    server = caches["default"]._cache.get_client()
    server.delete(caches["default"].make_key(key))
    server.hset(caches["default"].make_key(key), "f", "v")  # a hash where a value should be
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        cache.get(key)
    assert "failed" not in caplog.text


def test_redis_refusing_writes_keeps_serving_what_it_holds(tmp_path, settings, caplog, monkeypatch):
    """Full under `noeviction`, Redis refuses the INCR of a generation and the SET of a token
    but still serves both: the invalidation is lost until the TTLs, and the warning says so."""
    with PrivateBroker(tmp_path / "redis") as private:
        options = {**settings.CACHES["default"], "LOCATION": private.url}
        with override_settings(CACHES={"default": options}):
            generation = cache.key("test", "generation", version=1)
            token = cache.key("test", "token", version=1)
            assert cache.add(generation, 1, timeout=None)
            assert cache.set(token, 100, timeout=60)
            server = redis.Redis.from_url(private.url)
            server.config_set("maxmemory-policy", "noeviction")
            server.config_set("maxmemory", 1)
            server.close()
            monkeypatch.setattr(cache, "_last_warning", 0.0)  # one warning per 10 s
            assert cache.incr(generation) is None
            assert "incr failed: Redis refused it (OutOfMemoryError" in caplog.text
            assert "what it invalidates is left to the TTLs" in caplog.text
            monkeypatch.setattr(cache, "_last_warning", 0.0)  # one warning per 10 s
            assert cache.set(token, 200, timeout=60) is False
            assert "an entry Redis holds under the key is left to the TTLs" in caplog.text
            assert (cache.get(generation), cache.get(token)) == (1, 100)  # served, stale


# --- invalidation markers and the fill's compare-and-set ------------------------------------


def test_an_invalidated_key_reads_as_a_counted_miss():
    cache.set("cache-test:page", {"price": "10.00"}, timeout=60)
    cache.invalidate("cache-test:page")
    with cache.counting() as ops:
        assert cache.get("cache-test:page") is cache.MISS
        assert cache.get_many(["cache-test:page"]) == {}
    assert (ops.hits, ops.misses) == (0, 2)
    assert cache.invalidated(cache.backend().get("cache-test:page"))  # a marker, not a DEL


def test_a_fill_stores_over_what_it_saw_and_never_over_a_later_invalidation():
    key = "cache-test:page"
    _value, seen = cache.get_seen(key)
    assert seen == cache.ABSENT
    assert cache.set_if_unchanged(key, "first", seen=seen, timeout=60) is True

    _value, seen = cache.get_seen(key)  # a stored value, read back: its digest
    cache.invalidate(key)  # a write drops it while the fill computes
    assert cache.set_if_unchanged(key, "old row", seen=seen, timeout=60) is False
    assert cache.get(key) is cache.MISS

    _value, seen = cache.get_seen(key)  # the marker, seen by the next fill
    cache.invalidate(key)  # another write: a new marker
    assert cache.set_if_unchanged(key, "old row", seen=seen, timeout=60) is False
    _value, seen = cache.get_seen(key)
    assert cache.set_if_unchanged(key, "new row", seen=seen, timeout=60) is True
    assert cache.get(key) == "new row"


def test_a_value_read_back_is_compared_by_its_stored_bytes():
    """What was seen is the bytes Redis held, as read: nothing is pickled a second time to
    compare (a stale entry refreshed under stampede_protection's lock)."""
    key = "cache-test:page"
    cache.set(key, {"tags": ["b", "a"], "rating": 0.1 + 0.2}, timeout=60)
    value, seen = cache.get_seen(key)
    assert value == {"tags": ["b", "a"], "rating": 0.1 + 0.2}
    assert seen == cache.backend()._cache.get_client().get(cache.backend().make_key(key))
    assert cache.set_if_unchanged(key, "refreshed", seen=seen, timeout=60) is True
    assert cache.set_if_unchanged(key, "again", seen=seen, timeout=60) is False
