"""The toggles each benchmark request holds fixed while its own technique is flipped, so the
pair isolates that technique: one source for the bench's scenarios
(`shop/bench/scenarios/<name>.py`, `Scenario.hold`) and the Locust scenarios
(`loadtests/scenarios/<name>.py`, sent in X-Perf-Toggles), which therefore cannot drift apart.

Named `<TECHNIQUE>` or, where a technique measures several requests with different holds,
`<TECHNIQUE>_<REQUEST>`; a request that holds nothing has no entry. Read-only, and plain Python,
importable without Django's set-up (the Locust process has none). The reasons for each hold are
next to the scenario that uses it; tests/shop/test_toggles.py checks both sides use these.
"""

from types import MappingProxyType

# What every catalog-read pair holds off besides cache_aside: http_caching's validator lookup
# (a Redis round trip on both sides) and its headers, and compression's CPU, neither of them
# the pair's technique.
_HTTP_LAYER = {"http_caching": False, "compression": False}

# Every pair that places orders holds rate_limiting off (its entry below says
# "rate_limiting": False): it sends many orders a second as one customer, which the limit
# rightly refuses after its burst, and the pair would then measure 429s.

# The live report: its read model (materialized_view) would answer both sides from its views.
DB_AGGREGATION = MappingProxyType({"materialized_view": False})

# The naive code is lazy model access; fast_serialization's values() path would replace it.
# cache_aside off, in every pair that reads the catalog: a cache hit would stand in for the
# queries the pair is about. And the HTTP layer off (_HTTP_LAYER).
SELECT_RELATED = MappingProxyType(
    {"fast_serialization": False, "cache_aside": False, **_HTTP_LAYER}
)
PREFETCH_RELATED = MappingProxyType({"fast_serialization": False})
# Model instances: fast_serialization's values() rows read only the shown columns either way.
FIELD_SELECTION = MappingProxyType(
    {"fast_serialization": False, "cache_aside": False, **_HTTP_LAYER}
)
# The product list's queries, built every time on both sides.
DENORMALIZED_FIELDS = MappingProxyType({"cache_aside": False, **_HTTP_LAYER})

# Each of the two order techniques holds the other on, so only its own code differs.
# inventory_locking on: its conditional UPDATE is where bulk_writes decides how stock is taken.
# async_tasks on (its default): the request is the order's own writes, the ones these two
# techniques change; the charge, the stock ledger and the email are published on commit, and
# these runs are rolled back, so none of them happens.
BULK_WRITES = MappingProxyType(
    {
        "algorithmic_complexity": True,
        "inventory_locking": True,
        "async_tasks": True,
        "rate_limiting": False,
    }
)
ALGORITHMIC_COMPLEXITY = MappingProxyType(
    {"bulk_writes": True, "async_tasks": True, "rate_limiting": False}
)
# The order's other writes the same on both sides: only how stock is taken differs.
# async_tasks off: the contended rounds commit, and their orders are deleted afterwards; with
# it on, each would leave a capture and a ledger task behind for an order that is gone.
INVENTORY_LOCKING = MappingProxyType(
    {
        "bulk_writes": True,
        "algorithmic_complexity": True,
        "async_tasks": False,
        "rate_limiting": False,
    }
)

# The order's stock and row writes the same few statements on both sides: only where the
# transactions begin and end around the payment call differs. async_tasks off: the payment
# call is in the request.
SHORT_TRANSACTIONS = MappingProxyType(
    {
        "bulk_writes": True,
        "algorithmic_complexity": True,
        "async_tasks": False,
        "rate_limiting": False,
    }
)

# The order's own writes the same on both sides, and short_transactions on: the charge (in
# the request off, on a worker on) is made outside the stock transaction either way.
# transactional_outbox off: the tasks are published on commit, with no relay to wait for.
ASYNC_TASKS = MappingProxyType(
    {
        "bulk_writes": True,
        "algorithmic_complexity": True,
        "inventory_locking": True,
        "short_transactions": True,
        "transactional_outbox": False,
        "rate_limiting": False,
    }
)

# short_transactions on: an order whose charge fails is written, then cancelled with its stock
# back, on both sides, so the pair differs only in whether the charge is sent at all.
# async_tasks off: the request sends the charge itself, and waits for the gateway's timeout.
CIRCUIT_BREAKER = MappingProxyType(
    {"short_transactions": True, "async_tasks": False, "rate_limiting": False}
)

# The order's stock and row writes the same few statements on both sides. async_tasks on: the
# capture, the ledger and the confirmation are tasks, and only how they reach the broker differs.
TRANSACTIONAL_OUTBOX = MappingProxyType(
    {
        "bulk_writes": True,
        "algorithmic_complexity": True,
        "short_transactions": True,
        "async_tasks": True,
        "rate_limiting": False,
    }
)

# read_replica held off: every query on the primary, where each arm's connections go (a
# PgBouncer arm pools the primary's), so the arms differ in how they connect and nothing else.
CONNECTION_POOLING = MappingProxyType({"read_replica": False, "cache_aside": False, **_HTTP_LAYER})

# read_replica held off: the pair's plain and partitioned copies are made on the primary and
# read there, on the bench's own search_path, never from a replica still replaying them.
TABLE_PARTITIONING = MappingProxyType({"read_replica": False})

# Held on, so both sides run the same code and only the indexes differ. read_replica held off:
# the reads stay on the primary, where the side's indexes are built or dropped (and the sweep's
# sampled copies made), so no side is timed before the replica has replayed its DDL.
DB_INDEXES = MappingProxyType(
    {
        "select_related": True,
        "prefetch_related": True,
        "field_selection": True,
        "denormalized_fields": True,
        "read_replica": False,
        "cache_aside": False,
        **_HTTP_LAYER,
    }
)
# The staff filter reads keyset pages: no COUNT(*), the list's contract.
DB_INDEXES_STAFF_FILTER = MappingProxyType({**DB_INDEXES, "cursor_pagination": True})

# Each list with the same queries on both sides, so the pair isolates the serialization.
FAST_SERIALIZATION_ORDER_HISTORY = MappingProxyType({"prefetch_related": True})
FAST_SERIALIZATION_STAFF_ORDERS = MappingProxyType({"cursor_pagination": True})
FAST_SERIALIZATION_PRODUCT_LIST = MappingProxyType(
    {"select_related": True, "field_selection": True, "cache_aside": False, **_HTTP_LAYER}
)

# The catalog reads' queries, every one of them, on the primary: cache_aside off against on.
READ_REPLICA = MappingProxyType({"cache_aside": False, **_HTTP_LAYER})

# The pages' queries at their best (the data-access techniques on) on both sides, so the pair
# measures the cache against good SQL, not against an N+1. read_replica off: both sides read
# the primary, where a fill reads anyway. write_behind on: the product page's view is counted
# in Redis on both sides, so a hit runs no query at all (off, each view is an UPDATE).
CACHE_ASIDE = MappingProxyType(
    {
        "select_related": True,
        "prefetch_related": True,
        "field_selection": True,
        "denormalized_fields": True,
        "fast_serialization": True,
        "read_replica": False,
        "write_behind": True,
        **_HTTP_LAYER,
    }
)

# compression held off: it would shrink the full 200 the 304 is compared with. cache_aside off:
# the full 200 is the page built from PostgreSQL, not a cache hit. local_cache off: with it on,
# a list page waits out its category tree's TTL (30 s) after a token starts before it gets an
# ETag (http_caching.settle_ns), and the pair would start by waiting.
HTTP_CACHING = MappingProxyType({"compression": False, "cache_aside": False, "local_cache": False})
# http_caching held off: no ETag or Cache-Control headers on either side, only the coding
# differs. cache_aside off, as in every catalog pair.
COMPRESSION = MappingProxyType({"http_caching": False, "cache_aside": False})

# The page read from PostgreSQL on both sides. A sparse page bypasses the page cache anyway
# (catalog/payloads.py); held off so that a cached whole page could never stand in for the
# fetch the fields trim. And the HTTP layer off (_HTTP_LAYER): the bytes are the JSON's.
SPARSE_FIELDS = MappingProxyType({"cache_aside": False, **_HTTP_LAYER})

# The session row and the user read on the primary on both sides: the session the pair made
# a moment ago is there at once, whatever the replica's lag.
SESSION_STORE = MappingProxyType({"read_replica": False})


def named(technique: str) -> dict[str, MappingProxyType]:
    """`{"DB_INDEXES": ..., "DB_INDEXES_STAFF_FILTER": ...}`: a technique's holds, by name."""
    prefix = technique.upper()
    return {
        name: value
        for name, value in globals().items()
        if isinstance(value, MappingProxyType) and (name == prefix or name.startswith(prefix + "_"))
    }


# async_tasks on: an order's capture waits on the payment queue, whose depth is what is bounded.
# transactional_outbox off: the request publishes to that queue itself; no relay runs in the job.
BACKPRESSURE = MappingProxyType(
    {"async_tasks": True, "transactional_outbox": False, "rate_limiting": False}
)

# The read-back pair places an order a run, as one customer: rate_limiting off, as above.
READ_REPLICA_READ_BACK = MappingProxyType({"rate_limiting": False})

# The limiter's cost on the cheapest order request (no items: a 400): backpressure off, so
# neither side also reads the payment queue's depth from the broker.
RATE_LIMITING = MappingProxyType({"backpressure": False})

# The live side at its best, the GROUP BY of db_aggregation, not its Python loops. read_replica
# off: both sides on the primary, where the bench's refresh has just committed; a replica gets
# the refreshed views by replication, as any table, a moment later.
MATERIALIZED_VIEW = MappingProxyType({"db_aggregation": True, "read_replica": False})

# cache_aside on: the layer behind L1 is then Redis, and off is the catalog's "every hot lookup
# goes to Redis"; with it off, off would be a query a request (the scenario's postgres arm).
LOCAL_CACHE = MappingProxyType({"cache_aside": True})

# The product page from the cache on both sides (cache_aside on): counting the view is then the
# only statement the page runs, which is where one UPDATE per view hurts most. http_caching off:
# its validator read is not the pair's.
WRITE_BEHIND = MappingProxyType({"cache_aside": True, "http_caching": False})

# cache_aside on: the pair is about how a miss is filled, and only cache-aside misses.
# write_through off: a write deletes the page's entry, as cache_aside's invalidation does.
# The HTTP layer off (_HTTP_LAYER), as in every catalog-read pair.
STAMPEDE_PROTECTION = MappingProxyType({"cache_aside": True, "write_through": False, **_HTTP_LAYER})
# cache_aside on: the product page is cached, and a write either deletes (off) or stores (on)
# its entry. stampede_protection off: a plain entry and a plain miss, so the pair isolates
# what the write does. write_behind on: a page hit then runs no query (a view is counted in
# Redis), so a read's queries say whether it missed. The HTTP layer off (_HTTP_LAYER).
WRITE_THROUGH = MappingProxyType(
    {"cache_aside": True, "stampede_protection": False, "write_behind": True, **_HTTP_LAYER}
)
