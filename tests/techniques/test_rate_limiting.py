"""rate_limiting: past its bucket a client's login or order gets 429 with Retry-After, before
any query; the Lua bucket admits exactly its capacity to 20 concurrent clients; when Redis does
not answer, orders go through (fail open) and logins get a 503 (fail closed). Off: no limit.
All against the real Redis (the test run's cache database), or a private one to stop."""

import itertools
import threading
import time

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext, override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Order
from shop import rate_limiters, toggles
from shop.private_broker import PrivateBroker
from shop.techniques import rate_limiting
from tests.factories import AddressFactory, UserFactory, VariantFactory

CAPACITY = 3
CLIENTS = 20


@pytest.fixture(autouse=True)
def small_buckets(settings):
    settings.RATE_LIMITING_LOGIN_CAPACITY = CAPACITY
    settings.RATE_LIMITING_LOGIN_PER_MINUTE = 6.0  # one every 10 s
    settings.RATE_LIMITING_ORDERS_CAPACITY = CAPACITY
    settings.RATE_LIMITING_ORDERS_PER_MINUTE = 6.0


@pytest.fixture
def on():
    with toggles.override(rate_limiting=True):
        yield


def _log_in(client, user, **extra):
    return client.post(
        "/api/auth/token/", {"username": user.username, "password": "password"}, **extra
    )


def _customer_with_token():
    user = UserFactory()
    AddressFactory(user=user)
    client = APIClient()
    token = Token.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client, token.key


def _retry_after(response) -> int:
    """The 429's Retry-After: whole seconds, the body's figure too, and at most the 10 s a token
    takes to come back (less when the requests before it took a second or more)."""
    header = response["Retry-After"]
    assert header.isdigit(), header
    assert response.json()["retry_after"] == int(header)
    assert 1 <= int(header) <= 10
    return int(header)


def _place(client, sku):
    return client.post("/api/orders/", {"items": [{"sku": sku, "quantity": 1}]}, format="json")


# --- the token bucket ------------------------------------------------------------------------


def test_the_bucket_gives_its_capacity_then_says_how_long_to_wait():
    limit = rate_limiting.Limit("probe", capacity=3, per_second=0.1, fail_open=True, what="x")
    taken = [rate_limiting.take(limit, "someone") for _ in range(4)]
    assert [d.admitted for d in taken] == [True, True, True, False]
    assert [d.remaining for d in taken[:3]] == [2, 1, 0]
    # 0.1 a second: the next token is 10 s away (less the few ms the calls took).
    assert 9 < taken[3].retry_after_s <= 10
    assert taken[3].retry_after == 10
    assert rate_limiting.take(limit, "someone else").admitted  # a bucket per identity


def test_the_bucket_refills_with_the_time_on_the_redis_clock():
    limit = rate_limiting.Limit("refill", capacity=1, per_second=2, fail_open=True, what="x")
    assert rate_limiting.take(limit, "a").admitted
    refused = rate_limiting.take(limit, "a")
    assert not refused.admitted and 0 < refused.retry_after_s <= 0.5
    time.sleep(1.5)  # three times the wait: one token back, and only one (capacity 1)
    assert rate_limiting.take(limit, "a").admitted
    assert not rate_limiting.take(limit, "a").admitted


def test_the_bucket_expires_once_it_would_be_full_again():
    limit = rate_limiting.Limit("ttl", capacity=2, per_second=0.5, fail_open=True, what="x")
    rate_limiting.take(limit, "a")
    ttl_ms = rate_limiting.client().pttl(rate_limiting.bucket_key(limit, "a"))
    assert 4000 < ttl_ms <= 5000  # 2 tokens at 0.5 a second, plus a second


def _race(attempt, *, setup=lambda i: None, clients=CLIENTS, tries=3) -> list[bool]:
    """`clients` threads, each with what setup(i) returns (its own connection, opened before
    they start), released together by a barrier; each calls attempt(state) `tries` times."""
    barrier = threading.Barrier(clients)
    results: list[list[bool]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def run(i):
        try:
            state = setup(i)
            barrier.wait()
            results[i] = [attempt(state) for _ in range(tries)]
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return [admitted for per_client in results for admitted in per_client]


def _own_connection(_i):
    connection = redis.Redis.from_url(rate_limiting.redis_url(), single_connection_client=True)
    connection.ping()
    return connection


@pytest.mark.parametrize("capacity", [1, 10])
def test_twenty_concurrent_clients_get_exactly_the_capacity(capacity):
    """No refill while the test runs (one token per 10^6 s); 60 attempts, 5 rounds."""
    for round_ in range(5):
        limit = rate_limiting.Limit(
            f"race{round_}", capacity=capacity, per_second=1e-6, fail_open=True, what="x"
        )
        admitted = _race(
            lambda conn, limit=limit: rate_limiting.take(limit, "one", connection=conn).admitted,
            setup=_own_connection,
        )
        assert len(admitted) == CLIENTS * 3
        assert sum(admitted) == capacity, round_


def test_drf_throttle_admits_its_rate_to_one_client_at_a_time():
    """Sequentially DRF's throttle is right: its overshoot below is the race, not its setup."""
    admitted = [rate_limiters.drf_allows(10, 3600, "alone") for _ in range(15)]
    assert admitted == [True] * 10 + [False] * 5


def test_drf_throttle_admits_at_least_its_rate_to_concurrent_clients():
    """DRF's throttle reads the request log, then writes it back: concurrent clients read the
    same log, and more than its rate get through. How many more depends on the interleaving,
    so the overshoot is measured by the bench (shop/bench/scenarios/rate_limiting.py); here:
    never fewer than the rate, and its log is in the same Redis."""
    rate = 10
    admitted = _race(lambda _: rate_limiters.drf_allows(rate, 3600, "race"))
    assert sum(admitted) >= rate
    assert rate_limiting.client().keys(f"{settings.CACHES['default']['KEY_PREFIX']}:*throttle_*")


# --- the middleware ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_logins_past_the_bucket_get_429_with_retry_after_and_no_query(on):
    user = UserFactory()
    client = APIClient()
    for _ in range(CAPACITY):
        assert _log_in(client, user).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = _log_in(client, user)
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    _retry_after(response)  # one login every 10 s, rounded up
    body = response.json()
    assert body["code"] == "rate_limited"
    assert "Too many login attempts" in body["detail"]
    assert len(queries) == 0  # refused before sessions, authentication or the view


@pytest.mark.django_db
def test_the_login_limit_is_per_client_ip_and_covers_every_login(on):
    user = UserFactory()
    client = APIClient()
    for _ in range(CAPACITY):
        _log_in(client, user)
    # The session logins share the IP's bucket: no second door for a guesser.
    assert client.post("/api/auth/login/", {"username": "x", "password": "y"}).status_code == 429
    assert client.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 429
    assert _log_in(client, user, REMOTE_ADDR="10.0.0.7").status_code == 200


@pytest.mark.django_db
def test_behind_a_proxy_the_address_it_saw_is_the_client(on, settings):
    settings.RATE_LIMITING_NUM_PROXIES = 1
    user = UserFactory()
    client = APIClient()
    # The client writes what it likes on the left; the proxy appends the address it saw.
    for n in range(CAPACITY):
        forwarded = f"198.51.100.{n}, 10.0.0.7"
        assert _log_in(client, user, HTTP_X_FORWARDED_FOR=forwarded).status_code == 200
    assert _log_in(client, user, HTTP_X_FORWARDED_FOR="1.2.3.4, 10.0.0.7").status_code == 429
    assert _log_in(client, user, HTTP_X_FORWARDED_FOR="10.0.0.8").status_code == 200


@pytest.mark.django_db
def test_orders_are_limited_per_token_and_a_refused_one_writes_nothing(on):
    variant = VariantFactory(stock=100)
    alice, _ = _customer_with_token()
    bob, _ = _customer_with_token()
    for _ in range(CAPACITY):
        assert _place(alice, variant.sku).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        refused = _place(alice, variant.sku)
    assert refused.status_code == 429
    _retry_after(refused)
    assert "Too many orders placed" in refused.json()["detail"]
    assert len(queries) == 0
    assert Order.objects.count() == CAPACITY
    variant.refresh_from_db()
    assert variant.stock == 100 - CAPACITY
    assert _place(bob, variant.sku).status_code == 201  # another customer, another bucket
    assert alice.get("/api/orders/").status_code == 200  # only placing an order is limited


@pytest.mark.django_db
def test_every_spelling_of_a_token_that_authenticates_takes_from_its_bucket(on):
    """The header is read as DRF's TokenAuthentication reads it (split on any whitespace, the
    keyword in any case): each spelling here authenticates, so each takes from the token's
    bucket, and none falls back to another one."""
    variant = VariantFactory(stock=100)
    alice, key = _customer_with_token()
    spellings = [f"Token {key}", f"Token\t{key}", f"token   {key}", f" TOKEN\t {key} "]
    assert len(spellings) == CAPACITY + 1
    for spelling in spellings[:CAPACITY]:
        alice.credentials(HTTP_AUTHORIZATION=spelling)
        assert _place(alice, variant.sku).status_code == 201, spelling
    alice.credentials(HTTP_AUTHORIZATION=spellings[-1])
    assert _place(alice, variant.sku).status_code == 429
    assert Order.objects.count() == CAPACITY


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Token abc", "abc"),
        ("Token\tabc", "abc"),
        ("tOkEn \t abc  ", "abc"),
        ("Bearer abc", None),  # another scheme: not a token DRF would look up
        ("Tokenabc", None),
        ("", None),
        ("Token", None),  # these two DRF answers with a 401 before any lookup
        ("Token abc def", None),
    ],
)
def test_the_token_is_read_as_drf_reads_it(header, token):
    request = RequestFactory().post("/api/orders/", HTTP_AUTHORIZATION=header)
    assert rate_limiting.token_of(request) == token


@pytest.mark.django_db
def test_orders_without_a_token_share_the_ip_bucket_whatever_their_session_cookie(on):
    """A session-authenticated client cannot get a new bucket by logging in again (a new
    cookie), nor an anonymous one by making cookies up: without a token, the IP is the client."""
    variant = VariantFactory(stock=100)
    user = UserFactory()
    AddressFactory(user=user)
    for _ in range(CAPACITY):
        client = APIClient()
        client.force_login(user)  # a new session, a new cookie
        assert _place(client, variant.sku).status_code == 201
    client = APIClient()
    client.force_login(user)
    assert _place(client, variant.sku).status_code == 429
    anonymous = APIClient()
    anonymous.cookies["sessionid"] = "madeup" + "0" * 26
    assert _place(anonymous, variant.sku).status_code == 429
    assert Order.objects.count() == CAPACITY
    # Another address is another client.
    response = client.post(
        "/api/orders/",
        {"items": [{"sku": variant.sku, "quantity": 1}]},
        format="json",
        REMOTE_ADDR="10.0.0.7",
    )
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_the_raw_token_is_never_in_a_redis_key(on):
    alice, key = _customer_with_token()
    _place(alice, VariantFactory(stock=5).sku)
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    keys = [k.decode() for k in rate_limiting.client().keys(f"{prefix}:ratelimit:orders:*")]
    assert keys and not any(key in k for k in keys)
    assert any(rate_limiting._digest(key) in k for k in keys)


@pytest.mark.django_db
def test_off_nothing_is_limited():
    user = UserFactory()
    client = APIClient()
    with toggles.override(rate_limiting=False):
        statuses = {_log_in(client, user).status_code for _ in range(CAPACITY * 3)}
    assert statuses == {200}


# --- Redis down --------------------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path, monkeypatch):
    """The limiter (and the cache) pointed at a Redis of this test's own, to stop."""
    monkeypatch.setattr(rate_limiting, "_last_warning", {})  # this test's warning is logged
    with PrivateBroker(tmp_path / "redis") as private:
        cache = {**settings.CACHES["default"], "LOCATION": private.url}
        with override_settings(CACHES={"default": cache}, RATE_LIMITING_REDIS_URL=""):
            yield private


@pytest.mark.django_db
def test_redis_down_orders_fail_open(on, private_redis, caplog):
    client, _ = _customer_with_token()
    variant = VariantFactory(stock=100)
    for _ in range(CAPACITY):
        assert _place(client, variant.sku).status_code == 201
    assert _place(client, variant.sku).status_code == 429  # the private Redis does count
    private_redis.stop()
    response = _place(client, variant.sku)
    assert response.status_code == 201, response.content  # let through: availability first
    assert "rate limiting: Redis did not answer" in caplog.text
    assert "orders placed are let through (fail open)" in caplog.text


@pytest.mark.django_db
def test_redis_down_logins_fail_closed(on, private_redis, caplog, settings):
    user = UserFactory()
    client = APIClient()
    assert _log_in(client, user).status_code == 200
    private_redis.stop()
    response = _log_in(client, user)
    assert response.status_code == 503  # no count, no guess: brute force stays bounded
    assert response["Retry-After"] == str(settings.RATE_LIMITING_OUTAGE_RETRY_AFTER_S)
    assert response.json()["code"] == "rate_limiter_unavailable"
    assert "login attempts are refused (fail closed)" in caplog.text
    # Logged-in clients are not affected: their token still works.
    token = Token.objects.get(user=user).key
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/orders/").status_code == 200


@pytest.mark.django_db
def test_redis_down_and_off_nothing_asks_redis(private_redis):
    user = UserFactory()
    private_redis.stop()
    with toggles.override(rate_limiting=False):
        assert _log_in(APIClient(), user).status_code == 200


# --- the algorithms it is compared with --------------------------------------------------------


def _conn():
    return rate_limiting.client()


def _key(name: str) -> str:
    # Under this run's cache prefix, which tests/conftest.py empties before each test.
    return f"{settings.CACHES['default']['KEY_PREFIX']}:compared:{name}"


@pytest.mark.parametrize("algorithm", rate_limiters.ALGORITHMS, ids=lambda a: a.name)
def test_each_algorithm_admits_its_limit_from_a_burst(algorithm):
    limiter = algorithm(limit=5, window_s=60)
    decisions = [limiter.allow(_conn(), _key(algorithm.name)) for _ in range(8)]
    assert [d.admitted for d in decisions] == [True] * 5 + [False] * 3
    assert all(d.retry_after_s > 0 for d in decisions[5:])


def test_the_leaky_bucket_spaces_out_what_it_admits():
    limiter = rate_limiters.LeakyBucket(limit=4, window_s=4)  # one leaves each second
    decisions = [limiter.allow(_conn(), _key("leaky")) for _ in range(5)]
    assert [d.admitted for d in decisions] == [True] * 4 + [False]
    delays = [d.delay_s for d in decisions[:4]]
    assert delays[0] == 0
    assert all(0.9 < later - earlier <= 1.0 for earlier, later in itertools.pairwise(delays))


def _wait_until_redis_ms_in_window(window_ms: int, lo: int, hi: int) -> None:
    while True:
        seconds, micros = _conn().time()
        position = (seconds * 1000 + micros // 1000) % window_ms
        if lo <= position < hi:
            return
        time.sleep(((lo - position) % window_ms) / 1000)


def test_the_fixed_window_admits_twice_its_limit_across_a_boundary():
    """The limit, late in one 2 s window, then the limit again just after the boundary: the
    fixed window takes both bursts (2x its limit within about half a second); the sliding
    log, which counts the last 2 s whatever the window, refuses the second."""
    limit, window_ms = 5, 2000
    limiters = [rate_limiters.FixedWindow(limit, 2), rate_limiters.SlidingLog(limit, 2)]
    _wait_until_redis_ms_in_window(window_ms, 1600, 1800)

    def burst(limiter):
        return sum(limiter.allow(_conn(), _key(limiter.name)).admitted for _ in range(limit))

    first = [burst(limiter) for limiter in limiters]
    _wait_until_redis_ms_in_window(window_ms, 50, 400)
    second = [burst(limiter) for limiter in limiters]
    assert first == [limit, limit]
    assert second == [limit, 0]


@pytest.mark.django_db
def test_redis_refusing_writes_is_the_outage_path(on, private_redis, caplog):
    """A Redis full under `noeviction` refuses the script (`OOM command not allowed`): the
    outage policies, as for a Redis that does not answer."""
    server = redis.Redis.from_url(private_redis.url)
    server.config_set("maxmemory-policy", "noeviction")
    server.config_set("maxmemory", 1)
    server.close()
    client, _ = _customer_with_token()
    variant = VariantFactory(stock=100)
    assert _place(client, variant.sku).status_code == 201  # fail open
    assert _log_in(APIClient(), UserFactory()).status_code == 503  # fail closed
    assert "rate limiting: Redis refused it (OutOfMemoryError" in caplog.text


@pytest.mark.django_db
def test_an_error_of_ours_raises_instead_of_failing_open(on):
    """A bucket key holding another type (WRONGTYPE inside the script) is a bug, not an
    outage: it raises, where an outage would let the order through."""
    client, key = _customer_with_token()
    variant = VariantFactory(stock=100)
    bucket = rate_limiting.bucket_key(
        rate_limiting.orders_limit(), "token:" + rate_limiting._digest(key)
    )
    rate_limiting.client().set(bucket, "not a hash")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        _place(client, variant.sku)


@pytest.mark.django_db
def test_made_up_credentials_share_the_ip_bucket(on):
    """A credential no token could have (not 40 hex digits) buys no bucket of its own: 30
    different ones take from the client's IP bucket, and are refused past its capacity."""
    client = APIClient()
    statuses = []
    for n in range(30):
        client.credentials(HTTP_AUTHORIZATION=f"Token made-up-{n}")
        statuses.append(_place(client, "ANY-SKU").status_code)
    assert statuses == [401] * CAPACITY + [429] * (30 - CAPACITY)
    keys = rate_limiting.client().keys(f"{settings.CACHES['default']['KEY_PREFIX']}:ratelimit:*")
    assert [key.decode().rsplit(":", 2)[-2] for key in keys] == ["ip"]


def _ratelimit_keys() -> list[str]:
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    return sorted(key.decode() for key in rate_limiting.client().keys(f"{prefix}:ratelimit:*"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("proxies", "forwarded"),
    [
        pytest.param(2, "198.51.100.{n}", id="fewer-hops-than-proxies"),
        pytest.param(1, "not-an-address-{n}" + "x" * 2000, id="a-hop-that-is-not-an-ip"),
        # ipaddress takes any zone ID after an IPv6 address: a client's string all the same.
        pytest.param(1, "fe80::1%{n}" + "x" * 2000, id="an-ipv6-hop-with-a-zone-id"),
    ],
)
def test_a_forwarded_hop_no_proxy_wrote_is_the_remote_addrs_bucket(
    on, settings, proxies, forwarded
):
    """A hop the client may have written (fewer hops than proxies, or not an IP address) is
    never the client: the attempts share REMOTE_ADDR's bucket, the only key in Redis."""
    settings.RATE_LIMITING_NUM_PROXIES = proxies
    client = APIClient()
    statuses = [
        client.post(
            "/api/auth/token/",
            {"username": "x", "password": "y"},
            HTTP_X_FORWARDED_FOR=forwarded.format(n=n),
            REMOTE_ADDR="10.0.0.7",
        ).status_code
        for n in range(CAPACITY + 2)
    ]
    assert statuses == [400] * CAPACITY + [429] * 2
    assert [key.rsplit(":", 1)[-1] for key in _ratelimit_keys()] == ["10.0.0.7"]
