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

# The naive code is lazy model access; fast_serialization's values() path would replace it.
SELECT_RELATED = MappingProxyType({"fast_serialization": False})
PREFETCH_RELATED = MappingProxyType({"fast_serialization": False})
# Model instances: fast_serialization's values() rows read only the shown columns either way.
FIELD_SELECTION = MappingProxyType({"fast_serialization": False})

# Each of the two order techniques holds the other on, so only its own code differs.
# inventory_locking on: its conditional UPDATE is where bulk_writes decides how stock is taken.
# async_tasks on (its default): the request is the order's own writes, the ones these two
# techniques change; the charge, the stock ledger and the email are published on commit, and
# these runs are rolled back, so none of them happens.
BULK_WRITES = MappingProxyType(
    {"algorithmic_complexity": True, "inventory_locking": True, "async_tasks": True}
)
ALGORITHMIC_COMPLEXITY = MappingProxyType({"bulk_writes": True, "async_tasks": True})
# The order's other writes the same on both sides: only how stock is taken differs.
# async_tasks off: the contended rounds commit, and their orders are deleted afterwards; with
# it on, each would leave a capture and a ledger task behind for an order that is gone.
INVENTORY_LOCKING = MappingProxyType(
    {"bulk_writes": True, "algorithmic_complexity": True, "async_tasks": False}
)

# The order's stock and row writes the same few statements on both sides: only where the
# transactions begin and end around the payment call differs. async_tasks off: the payment
# call is in the request.
SHORT_TRANSACTIONS = MappingProxyType(
    {"bulk_writes": True, "algorithmic_complexity": True, "async_tasks": False}
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
    }
)

# short_transactions on: an order whose charge fails is written, then cancelled with its stock
# back, on both sides, so the pair differs only in whether the charge is sent at all.
# async_tasks off: the request sends the charge itself, and waits for the gateway's timeout.
CIRCUIT_BREAKER = MappingProxyType({"short_transactions": True, "async_tasks": False})

# The order's stock and row writes the same few statements on both sides. async_tasks on: the
# capture, the ledger and the confirmation are tasks, and only how they reach the broker differs.
TRANSACTIONAL_OUTBOX = MappingProxyType(
    {
        "bulk_writes": True,
        "algorithmic_complexity": True,
        "short_transactions": True,
        "async_tasks": True,
    }
)

# read_replica held off: every query on the primary, where each arm's connections go (a
# PgBouncer arm pools the primary's), so the arms differ in how they connect and nothing else.
CONNECTION_POOLING = MappingProxyType({"read_replica": False})

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
    }
)
# The staff filter reads keyset pages: no COUNT(*), the list's contract.
DB_INDEXES_STAFF_FILTER = MappingProxyType({**DB_INDEXES, "cursor_pagination": True})

# Each list with the same queries on both sides, so the pair isolates the serialization.
FAST_SERIALIZATION_ORDER_HISTORY = MappingProxyType({"prefetch_related": True})
FAST_SERIALIZATION_STAFF_ORDERS = MappingProxyType({"cursor_pagination": True})
FAST_SERIALIZATION_PRODUCT_LIST = MappingProxyType(
    {"select_related": True, "field_selection": True}
)


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
BACKPRESSURE = MappingProxyType({"async_tasks": True, "transactional_outbox": False})

# cache_aside on: the pair is about how a miss is filled, and only cache-aside misses.
# write_through off: a write deletes the page's entry, as cache_aside's invalidation does.
STAMPEDE_PROTECTION = MappingProxyType({"cache_aside": True, "write_through": False})
# cache_aside on: the product page is cached, and a write either deletes (off) or stores (on)
# its entry. stampede_protection off: a plain entry and a plain miss, so the pair isolates
# what the write does.
WRITE_THROUGH = MappingProxyType({"cache_aside": True, "stampede_protection": False})
