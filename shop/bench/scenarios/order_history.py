"""The order-history page with every technique off, then every one on, against its SQL floor.

Composite: not one technique's pair but all of them together, on the page a customer opens
first (`GET /api/orders/?page_size=50`, as the customer with the most orders). All off is every
registered toggle off and every scenario module's `before(False)` (db_indexes' indexes
dropped); all on is every toggle on. The SQL floor (`shop/bench/floor.py`) builds the same JSON
in one hand-written statement: the fastest this page could be. The page is also timed cold,
each run a first request (`shop/bench/cold.py`), since a customer's first visit is one.
"""

from orders.selectors import busiest_customer
from shop.bench import floor
from shop.bench.measure import BenchError
from shop.bench.samples import Sample
from shop.bench.scenario import Call, ExtraArm, Scenario
from shop.bench.targets import Target

PAGE_SIZE = 50
PATH = f"/api/orders/?page_size={PAGE_SIZE}"
# The host the test client sends, so the floor's `next` link is the one DRF builds.
BASE_URL = "http://testserver/api/orders/"

_customer: dict[str, int | str] = {}  # set by _prepare: the customer whose history is paged


def _prepare() -> None:
    found = busiest_customer()
    if found is None:
        raise BenchError("no orders in the database: seed it first (manage.py seed)")
    user, _orders = found
    _customer.update(id=user.pk, username=user.username)


def _floor() -> Sample:
    return floor.sample(user_id=_customer["id"], page_size=PAGE_SIZE, base_url=BASE_URL)


def _floor_body() -> bytes:
    return floor.body(user_id=_customer["id"], page_size=PAGE_SIZE, base_url=BASE_URL)


SCENARIO = Scenario(
    name="order_history",
    title="order history, 50 orders with their items, every technique off against every one on",
    prepare=_prepare,
    call=lambda: Call("GET", PATH, user=_customer["username"]),
    every_toggle=True,
    arms=(
        ExtraArm(
            label="floor",
            title="SQL floor",
            run=_floor,
            body=_floor_body,
            source=floor.SQL.strip(),
        ),
    ),
    cold=True,
    # The page's targets: all on sends at most 4 queries, is at least 5× faster than all off
    # at p50, and is within 3× of the SQL floor.
    targets=(
        Target("on.queries", at_most=4, label="all on, queries"),
        Target("speedup_p50", at_least=5, label="all on against all off, p50"),
        Target("arms.floor.on_multiple_p50", at_most=3, label="all on against the SQL floor, p50"),
    ),
    notes="Every registered toggle off against every one on, with every scenario module's "
    "before() hook (db_indexes' indexes dropped off). The SQL floor builds the same JSON in one "
    "hand-written statement; its body is checked byte for byte against all on's.",
)
