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
BULK_WRITES = MappingProxyType({"algorithmic_complexity": True})
ALGORITHMIC_COMPLEXITY = MappingProxyType({"bulk_writes": True})

# The order's stock and row writes the same few statements on both sides: only where the
# transactions begin and end around the payment call differs.
SHORT_TRANSACTIONS = MappingProxyType({"bulk_writes": True, "algorithmic_complexity": True})

# Held on, so both sides run the same code and only the indexes differ.
DB_INDEXES = MappingProxyType(
    {
        "select_related": True,
        "prefetch_related": True,
        "field_selection": True,
        "denormalized_fields": True,
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
