"""The staff order filter, the product search and the product list, each read without and with
the db_indexes technique's indexes.

The toggle cannot take an index away per request, so this module's `before()` drops or creates
them for each side (for real, DROP INDEX CONCURRENTLY outside a transaction) and `after()`
puts them back. The bench also calls `after()` at start-up, so a run killed before it could
restore (SIGKILL, a power cut) is repaired by the next one. At medium, creating all seven and
analyzing the product table takes about a second, once per block of runs.
"""

import sys
from urllib.parse import urlencode

from orders.models import Order
from shop import replication
from shop.bench import dataset, served_queries
from shop.bench.measure import BenchError
from shop.bench.scenario import Call, Scenario
from shop.bench.sweep import Sweep
from shop.seed import SIZES
from shop.techniques import db_indexes, read_replica

# Held on, so both sides run the same code and only the indexes differ.
HOLD = {
    "select_related": True,
    "prefetch_related": True,
    "field_selection": True,
    "denormalized_fields": True,
}

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
    hold={**HOLD, "cursor_pagination": True},
    notes="status = 'pending' AND created_at in the range, newest first: a sequential scan of "
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
    # read_replica (on by default) sends the timed reads to the replica: it must have replayed
    # the CREATE or DROP INDEX first, or a side would be timed on the other side's indexes.
    replication.caught_up(read_replica.replica_alias())


def after() -> list[str]:
    """Every index back; returns the names it had to create (none when nothing was missing)."""
    return db_indexes.create_all()


def plans() -> dict[str, str]:
    return {
        "staff filter": served_queries.explain("staff_filter"),
        "product search": served_queries.explain("product_search"),
        "product list": served_queries.explain("active_products"),
    }


# --- the sweep: the staff filter on the small, then the medium data set --------------------
# The scan reads every order, so it grows with the table; the index lookup reads the first
# 51 entries of one status, whatever the table's size. A filter cannot shrink the table the
# scan reads, so each point is a seeded size: the sweep seeds small, then medium (about a
# minute), and leaves the database at medium.
SWEEP_SIZES = {SIZES[size].orders: size for size in ("small", "medium")}


def _seed(orders: int) -> None:
    dataset.ensure(SWEEP_SIZES[orders], out=lambda line: print(line, file=sys.stderr))


SWEEP = Sweep(
    axis="orders in the table",
    points=tuple(SWEEP_SIZES),
    scenario_at=lambda orders: SCENARIO,
    data=_seed,
    fit=lambda orders: Order.objects.count(),  # the table as seeded
    shape="off: linear in the table (a scan and a sort); on: nearly flat (an index lookup)",
)
