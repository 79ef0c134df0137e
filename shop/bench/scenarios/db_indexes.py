"""The busiest customer's order history, the product search and the product list, each read
without and with the db_indexes technique's indexes.

The toggle cannot take an index away per request, so this module's `before()` drops or creates
them for each side (for real, DROP INDEX CONCURRENTLY outside a transaction) and `after()`
puts them back. At medium, creating all six and analyzing the product table takes about a
second, once per block of runs.
"""

from shop.bench.dataset import busiest_username
from shop.bench.scenario import Call, Scenario
from shop.techniques import db_indexes

# Held on, so both sides run the same code and only the indexes differ.
HOLD = {
    "select_related": True,
    "prefetch_related": True,
    "field_selection": True,
    "denormalized_fields": True,
}

SCENARIO = Scenario(
    name="db_indexes",
    title="order history of the customer with the most orders, page of 50",
    call=lambda: Call("GET", "/api/orders/?page_size=50", user=busiest_username()),
    hold=HOLD,
    notes="Off drops the indexes from the database; the X-Perf-Toggles header alone changes "
    "nothing. The foreign-key index on user_id already finds the orders when off.",
)

EXTRA_SCENARIOS = [
    Scenario(
        name="db_indexes",
        title=f"product search '{db_indexes.SEARCH_EXAMPLE}', page of 50",
        call=lambda: Call("GET", f"/api/products/?search={db_indexes.SEARCH_EXAMPLE}&page_size=50"),
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
        "index on.",
    ),
]


def before(enabled: bool) -> None:
    db_indexes.apply_state(enabled)


def after() -> None:
    db_indexes.apply_state(True)


def plans() -> dict[str, str]:
    return {
        "order history": db_indexes.explain("customer_orders"),
        "product search": db_indexes.explain("product_search"),
        "product list": db_indexes.explain("active_products"),
    }
