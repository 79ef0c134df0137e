"""local_cache: a small in-process LRU with a short TTL (L1) in front of Redis (L2, which is
cache_aside's: on in these tests unless a test says otherwise), for the token → user lookup and
the category tree.

Counts, not timings: the queries a request sends (X-DB-Queries) and the operations it makes on
the real Redis (shop.bench.metrics.CacheCounter). L1's TTLs are stepped with a clock of the
test's own (`local_cache.clock_set`), never waited for.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from catalog.models import Category
from catalog.selectors import category_with_descendant_ids
from orders import rates
from orders.models import TaxRate
from shop import cache, toggles
from shop.bench.metrics import CACHE_HITS, CACHE_MISSES, CACHE_SETS, CacheCounter
from shop.perf_headers import parse_query_counts
from shop.private_broker import PrivateBroker
from shop.techniques import cache_aside, local_cache
from tests.concurrency import run_concurrently
from tests.factories import CategoryFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db
STATES = [pytest.param(False, id="off"), pytest.param(True, id="on")]


class Clock:
    """A clock the test steps by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    stepped = Clock()
    with local_cache.clock_set(stepped):
        yield stepped


@pytest.fixture
def token(db):
    return Token.objects.create(user=UserFactory())


def layers(enabled: bool, *, redis: bool = True):
    """local_cache at `enabled`, in front of Redis (cache_aside on) or of PostgreSQL."""
    return toggles.override(local_cache=enabled, cache_aside=redis)


def ping(client, key, *, enabled, redis=True):
    """GET the ping with the token; (status, queries, Redis operations)."""
    with layers(enabled, redis=redis), CacheCounter() as ops:
        response = client.get("/api/perf/ping/", HTTP_AUTHORIZATION=f"Token {key}")
    queries = sum(parse_query_counts(response["X-DB-Queries"]).values())
    return response, queries, dict(ops.counts)


@pytest.mark.parametrize("enabled", STATES)
def test_the_first_request_reads_postgresql_and_stores_the_lookup(api_client, token, enabled):
    response, queries, ops = ping(api_client, token.key, enabled=enabled)
    assert response.json() == {"authenticated": True}
    assert queries == 1
    assert ops == {CACHE_MISSES: 1, CACHE_SETS: 1}


def test_off_every_later_request_asks_redis_and_on_none_does(api_client, token):
    ping(api_client, token.key, enabled=False)  # PostgreSQL, stored in Redis
    off, off_queries, off_ops = ping(api_client, token.key, enabled=False)
    assert (off_queries, off_ops) == (0, {CACHE_HITS: 1})

    ping(api_client, token.key, enabled=True)  # Redis, stored in L1
    on, on_queries, on_ops = ping(api_client, token.key, enabled=True)
    assert (on_queries, on_ops) == (0, {})
    assert on.json() == off.json() == {"authenticated": True}


def test_without_redis_off_is_a_query_a_request_and_on_keeps_it_in_the_process(api_client, token):
    """cache_aside off: no shared layer. Off is the code before any cache; on, L1 stands in
    front of PostgreSQL directly."""
    for _ in range(2):
        _response, queries, ops = ping(api_client, token.key, enabled=False, redis=False)
        assert (queries, ops) == (1, {})
    ping(api_client, token.key, enabled=True, redis=False)
    response, queries, ops = ping(api_client, token.key, enabled=True, redis=False)
    assert (response.json(), queries, ops) == ({"authenticated": True}, 0, {})


def test_a_stored_lookup_is_read_on_the_primary(token):
    """A fill about to be cached never reads a replica that may be behind the last eviction."""
    from shop.techniques import read_replica

    seen = []
    with layers(True):
        local_cache.token_user(
            token.key, lambda key: seen.append(read_replica._forced.get()) or (token.user, token)
        )
    assert seen == [True]


@pytest.mark.parametrize("enabled", STATES)
def test_the_user_built_from_the_cache_is_the_user(api_client, token, enabled, rf):
    """Every column authorization reads, from a fresh instance each time (never a shared one)."""
    from shop.authentication import TokenAuthentication

    def authenticate():
        request = rf.get("/", HTTP_AUTHORIZATION=f"Token {token.key}")
        with layers(enabled):
            return TokenAuthentication().authenticate(request)

    first_user, _ = authenticate()  # from PostgreSQL
    user, cached_token = authenticate()  # from Redis (off) or L1 (on)
    assert user is not first_user
    for name in local_cache.USER_FIELDS:
        assert getattr(user, name) == getattr(token.user, name), name
    assert (cached_token.key, cached_token.user_id) == (token.key, token.user_id)
    assert cached_token.created == token.created
    assert "password" not in cache.get(local_cache.token_key(token.key))[0]
    assert "password" in user.get_deferred_fields()


def test_the_cache_key_is_a_hash_of_the_token_never_the_token(token):
    assert token.key not in local_cache.token_key(token.key)


def test_an_unknown_token_is_refused_every_time_and_never_cached(api_client):
    unknown = "0" * 40
    for _ in range(2):
        response, queries, ops = ping(api_client, unknown, enabled=True)
        assert response.status_code == 401
        assert (queries, ops) == (1, {CACHE_MISSES: 1})
    assert len(local_cache.l1(local_cache.TOKENS)) == 0


def test_logging_out_here_takes_effect_at_once(
    api_client, token, django_capture_on_commit_callbacks
):
    ping(api_client, token.key, enabled=True)
    ping(api_client, token.key, enabled=True)  # now in this process's L1
    with layers(True), django_capture_on_commit_callbacks(execute=True):
        logout = api_client.delete("/api/auth/token/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert logout.status_code == 204
    response, _queries, _ops = ping(api_client, token.key, enabled=True)
    assert response.status_code == 401
    key = local_cache.token_key(token.key)
    assert cache.get(key) is cache.MISS  # no user left: the eviction's marker, read as a miss
    assert cache.invalidated(cache.backend().get(key))


def _revoked_by_another_process(token):
    """What a logout in another process leaves here: the row gone and the Redis entry deleted
    (that process's on-commit eviction), this process's L1 untouched."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM authtoken_token WHERE key = %s", [token.key])
    cache.delete(local_cache.token_key(token.key))


def test_a_token_revoked_in_another_process_works_here_until_the_ttl(
    api_client, token, clock, settings
):
    """The staleness bound: LOCAL_CACHE_TOKEN_TTL_S after this process stored it, no longer."""
    ttl = settings.LOCAL_CACHE_TOKEN_TTL_S
    ping(api_client, token.key, enabled=True)  # stored in L1 at clock.now
    _revoked_by_another_process(token)

    clock.now += ttl - 0.001
    response, queries, ops = ping(api_client, token.key, enabled=True)
    assert (response.status_code, queries, ops) == (200, 0, {})  # L1 still answers

    clock.now += 0.001
    response, queries, ops = ping(api_client, token.key, enabled=True)
    assert response.status_code == 401
    assert (queries, ops) == (1, {CACHE_MISSES: 1})  # L1 expired, Redis deleted: PostgreSQL


@pytest.mark.django_db(transaction=True)
def test_a_lookup_read_before_a_logout_commits_is_not_stored_after_it(api_client, token):
    """The classic cache-aside race, on real connections: a request reads the token's row, a
    logout on another connection deletes it and commits (its eviction runs), then the request
    stores what it read. Neither Redis (every process) nor this L1 may keep the revoked token:
    it would keep working for the Redis TTL (60 s), not LOCAL_CACHE_TOKEN_TTL_S."""
    read, revoked = threading.Event(), threading.Event()

    def lookup(key):
        found = Token.objects.select_related("user").get(key=key)
        read.set()
        assert revoked.wait(30)
        return found.user, found

    def work(i):
        with layers(True):
            if i == 0:
                return local_cache.token_user(token.key, lookup)[1].key
            assert read.wait(30)
            Token.objects.filter(pk=token.pk).delete()  # a logout: evicts at once and on commit
            revoked.set()
            return None

    assert run_concurrently(work, count=2) == [token.key, None]
    response, _queries, _ops = ping(api_client, token.key, enabled=True)
    assert response.status_code == 401  # here, at once
    local_cache.clear()  # another process: nothing in its L1
    response, _queries, _ops = ping(api_client, token.key, enabled=True)
    assert response.status_code == 401


def test_off_a_token_revoked_in_another_process_is_refused_at_once(api_client, token, clock):
    ping(api_client, token.key, enabled=False)
    _revoked_by_another_process(token)
    response, _queries, _ops = ping(api_client, token.key, enabled=False)
    assert response.status_code == 401


def test_deactivating_the_user_evicts_their_tokens(
    api_client, token, django_capture_on_commit_callbacks
):
    ping(api_client, token.key, enabled=True)
    user = token.user
    user.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        user.save()
    response, _queries, _ops = ping(api_client, token.key, enabled=True)
    assert response.status_code == 401


def test_a_session_login_does_not_evict(token, django_capture_on_commit_callbacks):
    """last_login is not kept, so writing it (every session login) leaves the entry."""
    with layers(True):
        local_cache.token_user(token.key, lambda key: (token.user, token))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        token.user.save(update_fields=["last_login"])
    assert callbacks == []
    assert cache.get(local_cache.token_key(token.key))[0]["id"] == token.user_id  # kept


def test_redis_down_authenticates_from_postgresql(api_client, token, tmp_path, settings):
    with PrivateBroker(tmp_path / "redis") as private:
        settings.CACHES = {
            "default": {**settings.CACHES["default"], "LOCATION": private.url},
        }
        private.stop()
        for enabled in (False, True):
            response, queries, _ops = ping(api_client, token.key, enabled=enabled)
            assert (response.status_code, queries) == (200, 1)


# --- the L1 container ---------------------------------------------------------------------


def test_l1_is_bounded_and_evicts_the_least_recently_used(clock):
    local = local_cache.LocalCache(maxsize=3, ttl=60)
    for key in "abc":
        local.set(key, key.upper())
    assert local.get("a") == "A"  # a is now the most recent
    local.set("d", "D")
    assert len(local) == 3
    assert local.get("b") is cache.MISS  # the least recently used went
    assert [local.get(key) for key in "acd"] == ["A", "C", "D"]


def test_l1_entries_expire_after_their_ttl(clock):
    local = local_cache.LocalCache(maxsize=3, ttl=5)
    local.set("a", 1)
    clock.now += 4.999
    assert local.get("a") == 1
    clock.now += 0.001
    assert local.get("a") is cache.MISS
    assert len(local) == 0


def test_l1_touches_its_ttlcache_only_under_its_lock():
    """A gunicorn worker's threads share one L1, and `TTLCache` is not thread-safe: every
    access reorders its LRU links and expires old entries. Each access reads the TTL clock,
    so a clock that records whether the L1's lock is held shows every access, of every kind,
    made under it (a race between threads is up to the scheduler; this is not)."""
    local = None
    held: list[bool] = []  # one per clock read: was the lock held?

    def clock() -> float:
        held.append(local._lock.locked())
        return 0.0

    operations = {
        "set": lambda: local.set("a", 1),
        "set past maxsize": lambda: [local.set(key, 1) for key in "bc"],
        "get": lambda: local.get("c"),
        "get a miss": lambda: local.get("a"),
        "evict": lambda: local.evict("c"),
        "evict a miss": lambda: local.evict("z"),
        "len": lambda: len(local),
    }
    reads = {}  # operation: whether the lock was held, at each clock read it made
    with local_cache.clock_set(clock):
        local = local_cache.LocalCache(maxsize=2, ttl=60)
        for name, call in operations.items():
            before = len(held)
            call()
            reads[name] = held[before:]
    assert all(reads.values()), reads  # each operation read the clock
    assert {name: all(locked) for name, locked in reads.items()} == dict.fromkeys(reads, True)


# --- the category tree --------------------------------------------------------------------


@pytest.fixture
def tree(db):
    root = CategoryFactory()
    child = CategoryFactory(parent=root)
    return root, child


@pytest.mark.parametrize("enabled", STATES)
def test_the_category_tree_is_read_once_then_from_the_cache(
    tree, enabled, django_assert_num_queries
):
    root, child = tree
    with layers(enabled):
        with django_assert_num_queries(1):
            first = category_with_descendant_ids(category_id=root.pk)
        with django_assert_num_queries(0), CacheCounter() as ops:
            again = category_with_descendant_ids(category_id=root.pk)
    assert first == again == sorted([root.pk, child.pk])
    assert dict(ops.counts) == ({} if enabled else {CACHE_HITS: 1})


@pytest.mark.parametrize("enabled", STATES)
def test_a_new_category_is_seen_at_once_in_this_process(
    tree, enabled, django_capture_on_commit_callbacks
):
    root, child = tree
    with layers(enabled):
        category_with_descendant_ids(category_id=root.pk)
        with django_capture_on_commit_callbacks(execute=True):
            grandchild = CategoryFactory(parent=child)
        found = category_with_descendant_ids(category_id=root.pk)
    assert found == sorted([root.pk, child.pk, grandchild.pk])


def test_a_category_moved_in_another_process_shows_here_within_the_ttl(tree, clock, settings):
    root, child = tree
    with layers(True):
        assert category_with_descendant_ids(category_id=root.pk) == sorted([root.pk, child.pk])
        Category.objects.filter(pk=child.pk).update(parent=None)  # no signal: another process
        cache.delete(local_cache.CATEGORY_TREE.key())  # what its on-commit eviction does
        clock.now += settings.LOCAL_CACHE_CATEGORY_TTL_S - 0.001
        assert category_with_descendant_ids(category_id=root.pk) == sorted([root.pk, child.pk])
        clock.now += 0.001
        assert category_with_descendant_ids(category_id=root.pk) == [root.pk]


@pytest.mark.parametrize(
    "stampede", [pytest.param(False, id="plain"), pytest.param(True, id="stampede")]
)
def test_a_page_stored_in_redis_is_never_built_from_a_stale_l1(api_client, tree, clock, stampede):
    """L1 may be up to its TTL behind another process's write, but a list page stored in Redis
    is served to every process for the page's TTL: its fill (cache_aside's, or
    stampede_protection's recompute) reads the tree past L1, and leaves L1 as it was."""
    root, child = tree
    product = ProductFactory(category=child)
    path = f"/api/products/?category={root.pk}"
    with layers(True), toggles.override(stampede_protection=stampede):
        assert category_with_descendant_ids(category_id=root.pk) == sorted([root.pk, child.pk])
        assert [p["id"] for p in api_client.get(path).json()["results"]] == [product.pk]
        # Another process moves the child to the top and commits: its evictions reach Redis
        # (the tree's entry, the list generation), not this process's L1.
        Category.objects.filter(pk=child.pk).update(parent=None)
        cache.delete(local_cache.CATEGORY_TREE.key())
        cache_aside.bump_list_generation()
        filled = api_client.get(path)
        assert [p["id"] for p in filled.json()["results"]] == []
        with CacheCounter() as ops:
            hit = api_client.get(path)  # what every process is now served from Redis
        assert ops.counts[CACHE_SETS] == 0 and hit.json()["count"] == 0
        # This process's own L1 is untouched, and bounded by its TTL as before.
        assert category_with_descendant_ids(category_id=root.pk) == sorted([root.pk, child.pk])


# --- the tax and shipping rate tables -------------------------------------------------------


@pytest.mark.parametrize("enabled", STATES)
def test_the_rate_tables_are_read_once_then_from_the_cache(
    api_client, enabled, django_assert_num_queries
):
    rates.seed_rates()
    path = "/api/shipping/rates/?country=FR&weight_grams=1500"
    with layers(enabled):
        with django_assert_num_queries(2):  # each table, once
            first = api_client.get(path)
        with django_assert_num_queries(0), CacheCounter() as ops:
            again = api_client.get(path)
    assert first.json() == again.json()
    assert first.json()["tax_rate"] == "20.00"
    assert dict(ops.counts) == ({} if enabled else {CACHE_HITS: 2})


@pytest.mark.parametrize("enabled", STATES)
def test_a_rate_changed_here_is_seen_at_once(api_client, enabled):
    rates.seed_rates()
    path = "/api/shipping/rates/?country=FR&weight_grams=1500"
    with layers(enabled):
        assert api_client.get(path).json()["tax_rate"] == "20.00"
        TaxRate.objects.filter(country="FR").get().delete()  # now outside the tax area
        answer = api_client.get(path).json()
    assert (answer["zone"], answer["tax_rate"]) == ("world", "0.00")


def test_a_rate_changed_in_another_process_is_seen_here_within_the_ttl(api_client, clock, settings):
    rates.seed_rates()
    path = "/api/shipping/rates/?country=FR&weight_grams=1500"
    with layers(True):
        assert api_client.get(path).json()["tax_rate"] == "20.00"
        TaxRate.objects.filter(country="FR").update(rate=Decimal("5.50"))  # another process:
        cache.delete(local_cache.TAX_RATES.key())  # its eviction reaches Redis, not this L1
        clock.now += settings.LOCAL_CACHE_RATES_TTL_S - 0.001
        assert api_client.get(path).json()["tax_rate"] == "20.00"
        clock.now += 0.001
        assert api_client.get(path).json()["tax_rate"] == "5.50"
