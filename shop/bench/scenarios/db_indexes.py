"""The staff order filter, the product search and the product list, each read without and with
the db_indexes technique's indexes.

The toggle cannot take an index away per request, so this module's `before()` drops or creates
them for each side (for real, DROP INDEX CONCURRENTLY outside a transaction) and `after()`
puts them back. The bench also calls `after()` at start-up, so a run killed before it could
restore (SIGKILL, a power cut) is repaired by the next one. At medium, creating all seven and
analyzing the product table takes about a second, once per block of runs.
"""

from collections.abc import Callable
from urllib.parse import urlencode

from catalog.models import Product
from orders.models import Order
from shop import replication
from shop.bench import holds, served_queries, table_sample
from shop.bench.measure import BenchError
from shop.bench.scenario import Call, Scenario
from shop.bench.sweep import Series, Sweep
from shop.techniques import db_indexes, read_replica

# Held on, so both sides run the same code and only the indexes differ.
HOLD = holds.DB_INDEXES

STAFF = "staff"  # the seeded staff account (not a superuser)


def _staff_filter() -> Call:
    example = served_queries.staff_filter_example()
    if example is None:
        raise BenchError("the staff filter needs orders: seed the database first")
    query = urlencode({**example, "page_size": 50})
    return Call("GET", f"/api/staff/orders/?{query}", user=STAFF)


SCENARIO = Scenario(
    name="db_indexes",
    title=f"staff orders '{served_queries.FILTER_STATUS}', "
    f"last {served_queries.FILTER_DAYS} days, page of 50",
    call=_staff_filter,
    # Keyset pages: no COUNT(*), the list's contract (cursor_pagination's own pair shows it).
    hold=holds.DB_INDEXES_STAFF_FILTER,
    notes="status = 'placed' AND created_at in the range, newest first: a sequential scan of "
    "every order and a sort off (Django indexes neither column), the first 51 entries of the "
    "(status, created_at DESC, id DESC) index on. Both sides pay the staff token's query.",
)

EXTRA_SCENARIOS = [
    Scenario(
        name="db_indexes",
        title=f"product search '{served_queries.SEARCH_EXAMPLE}', page of 50",
        call=lambda: Call(
            "GET", f"/api/products/?search={served_queries.SEARCH_EXAMPLE}&page_size=50"
        ),
        hold=HOLD,
        notes="name ILIKE '%kettle%': a sequential scan of every product off, the trigram "
        "index on upper(name) on.",
    ),
    Scenario(
        name="db_indexes",
        title="product list, newest first, page of 50",
        call=lambda: Call("GET", "/api/products/?page_size=50"),
        hold=HOLD,
        notes="A scan and sort of every active product off, the first 50 entries of a partial "
        "index on. The page's COUNT(*) still visits every active product on (an index-only "
        "scan): see docs/techniques/db_indexes.md.",
    ),
]


def before(enabled: bool) -> None:
    db_indexes.apply_state(enabled)
    # The pairs hold read_replica off, but the composite order-history page reads the replica
    # with every technique on: it must have replayed the CREATE or DROP INDEX first, or a side
    # would be timed on the other side's indexes.
    replication.caught_up(read_replica.replica_alias())


def after() -> list[str]:
    """The sweep's sample gone, then every index back; returns what it had to undo and the
    names it had to create (nothing when nothing was off)."""
    return [*table_sample.release(), *db_indexes.create_all()]


def plans() -> dict[str, str]:
    return {
        "staff filter": served_queries.explain("staff_filter"),
        "product search": served_queries.explain("product_search"),
        "product list": served_queries.explain("active_products"),
    }


# --- the sweep: each query on 1%, 10% and all of its table ----------------------------------
# A scan reads every row, so it grows with the table; an index lookup reads the entries of
# one page, whatever the table's size. A filter cannot shrink the table a scan reads, so the
# smaller points read a sample of the user's tables instead (shop/bench/table_sample.py: a
# copy in a schema of its own, for this process only) and the last reads the tables
# themselves. Nothing is seeded and the user's rows are never written.
# Every table the technique indexes, not only the two the queries scan off (orders_order and
# catalog_product): each side's before() creates or drops the indexes on the table the path
# finds, so a table left out (catalog_review) would lose its real index on the off side.
SAMPLED = tuple(dict.fromkeys(index.table for index in db_indexes.INDEXES))


def _sample(percent: int) -> None:
    if percent >= 100:
        table_sample.release()  # the tables themselves
    else:
        table_sample.use(SAMPLED, percent, skip_indexes=list(db_indexes.BY_NAME))


def _fit(percent: int) -> int | None:
    """The share, if the sample holds orders and products to read; else None (skipped)."""
    if not (Order.objects.exists() and Product.objects.exists()):
        return None
    return percent


def _series(scenario: Scenario, name: str, axis: str, rows: Callable[[], int]) -> Series:
    return Series(name=name, scenario_at=lambda percent: scenario, axis=axis, work=lambda _: rows())


def _is_count(sql: str) -> bool:
    return "COUNT(*)" in sql


def _is_page(sql: str) -> bool:
    reads = 'FROM "orders_order"' in sql or 'FROM "catalog_product"' in sql
    return reads and "COUNT(*)" not in sql


SWEEP = Sweep(
    axis="share of the table (%)",
    points=(1, 10, 100),
    data=_sample,
    fit=_fit,
    series=(
        _series(SCENARIO, "staff filter", "orders in the table", Order.objects.count),
        _series(
            EXTRA_SCENARIOS[0], "product search", "products in the table", Product.objects.count
        ),
        _series(EXTRA_SCENARIOS[1], "product list", "products in the table", Product.objects.count),
    ),
    # The product pages' COUNT(*) apart from the page: the index serves the page, and the
    # count still visits every active product on both sides.
    parts={"count": _is_count, "page": _is_page},
    shape="off: linear in the table (a scan and a sort); on: nearly flat (an index lookup), "
    "except a page's COUNT(*), which visits every matching row on both sides",
)
