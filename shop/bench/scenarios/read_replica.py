"""Where the read-only endpoints' queries run, off (all on the primary) and on (the replica),
and whether a customer reads their own new order back with the replica 2 s behind.

The reads: the product list (anonymous), a product page, a search and a customer's order
history (with its token lookup). Each side reports `primary_share`, the share of the request's
queries that ran on the primary; the target is at most 0.1 with the toggle on.

The read-back: each run places an order for real (it commits: a rolled-back order would keep
the whole request, and so the check, on the primary), then `metrics()`, untimed, asks for it
as the same customer, at once, with the replica replaying 2 s late:
- `stale_reads`: the read-back answered 404 with the technique as the side has it (target 0);
- `stale_reads_without_pin`: the same read-back with the user's marker ignored and the lag
  bound out of the way, so only the replica answers: the stale read read-your-writes prevents.
The order is then cancelled, so its stock comes back; the cancelled orders stay (the order
event log is append-only), as the Locust write scenarios' do.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.http import HttpResponse
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from catalog.models import Product, Variant
from orders.models import Order
from orders.services import order_cancel
from shop import replication, toggles
from shop.bench import holds, placed_orders
from shop.bench.scenario import Call, Scenario
from shop.bench.scenarios.bulk_writes import order_answer
from shop.perf_headers import TOGGLE_HEADER
from shop.techniques import read_replica

TECHNIQUE = "read_replica"
PAGE_SIZE = 20
DELAY_SECONDS = 2  # the target's replica delay
SEARCH = "pro"  # "Pro", "Professional"...: in many seeded product names (shop.seed.text)
READER = "user2"  # places and reads back the orders of the read-your-writes check

_ids: dict[str, object] = {}


def _caught_up() -> None:
    """The seeded rows are on the replica (a fresh seed may still be replaying): both sides
    must answer from the same data. Without a replica, both sides read the primary."""
    replica = read_replica.replica_alias()
    if replica is not None:
        replication.reset_delay(replica=replica)
        replication.caught_up(replica)


def _product_prepare() -> None:
    _caught_up()
    _ids["product"] = (
        Product.objects.filter(is_active=True)
        .annotate(n=Count("variants"))
        .order_by("-n", "id")
        .values_list("id", flat=True)
        .first()
    )


def _history_prepare() -> None:
    _caught_up()
    user = (
        get_user_model()
        .objects.annotate(n=Count("orders"))
        .order_by("-n", "id")
        .values_list("username", flat=True)
        .first()
    )
    _ids["customer"] = user
    # The pair reads as a customer who has not just written: a round another scenario committed
    # as this user must not pin the on side to the primary.
    read_replica.forget_writes(get_user_model().objects.get(username=user).pk)


NOTES = (
    "primary_share is the share of the request's queries run on the primary; the target is "
    "at most 0.1 on."
)

SCENARIO = Scenario(
    name=TECHNIQUE,
    title=f"product list, {PAGE_SIZE} rows, anonymous",
    prepare=_caught_up,
    call=lambda: Call("GET", f"/api/products/?page_size={PAGE_SIZE}"),
    hold=holds.READ_REPLICA,  # the catalog's queries, not a cache hit
    notes=NOTES,
)


def _stale_prepare() -> None:
    _caught_up()
    if not get_user_model().objects.filter(username=READER).exists():
        raise LookupError(f"{READER} does not exist: seed the database first")
    sku = (
        Variant.objects.filter(product__is_active=True, stock__gte=100)
        .order_by("id")
        .values_list("sku", flat=True)
        .first()
    )
    _ids["sku"] = sku
    # From here until after(): every database on this replica replays 2 s late.
    replica = read_replica.replica_alias()
    if replica is not None:
        replication.set_delay(DELAY_SECONDS, replica=replica)


def _read_back(order_id: int, side: str) -> bool:
    """Whether the reader, asking at once for the order they just placed, misses it."""
    token = Token.objects.get(user__username=READER)
    response = Client().get(
        f"/api/orders/{order_id}/",
        headers={"Authorization": f"Token {token.key}", TOGGLE_HEADER: f"{TECHNIQUE}={side}"},
    )
    if response.status_code not in (200, 404):
        raise RuntimeError(f"reading the order back answered {response.status_code}")
    return response.status_code == 404


def _stale_metrics(response: HttpResponse) -> dict[str, float]:
    order_id = response.json()["id"]
    echoed = toggles.parse(response.get(TOGGLE_HEADER, ""))
    side = "on" if echoed.get(TECHNIQUE, toggles.is_enabled(TECHNIQUE)) else "off"
    try:
        stale = _read_back(order_id, side)
        with override_settings(
            READ_REPLICA_PIN_SECONDS=0, READ_REPLICA_MAX_LAG_SECONDS=DELAY_SECONDS * 1000
        ):
            stale_without_pin = _read_back(order_id, side)
    finally:
        _forget(order_id)
    return {"stale_reads": int(stale), "stale_reads_without_pin": int(stale_without_pin)}


def _forget(order_id: int) -> None:
    """Cancel the order, so its stock comes back, then delete it: the data is as it was."""
    order_cancel(user=get_user_model().objects.get(username=READER), order_id=order_id)
    placed_orders.delete(Order.objects.filter(pk=order_id))


EXTRA_SCENARIOS = [
    Scenario(
        name=TECHNIQUE,
        title="product page",
        prepare=_product_prepare,
        call=lambda: Call("GET", f"/api/products/{_ids['product']}/"),
        hold=holds.READ_REPLICA,  # the catalog's queries, not a cache hit
        notes=NOTES,
    ),
    Scenario(
        name=TECHNIQUE,
        title=f"product search, {PAGE_SIZE} rows, anonymous",
        prepare=_caught_up,
        call=lambda: Call("GET", f"/api/products/?search={SEARCH}&page_size={PAGE_SIZE}"),
        hold=holds.READ_REPLICA,  # the catalog's queries, not a cache hit
        notes=NOTES,
    ),
    Scenario(
        name=TECHNIQUE,
        title=f"order history, {PAGE_SIZE} orders, token",
        prepare=_history_prepare,
        call=lambda: Call("GET", f"/api/orders/?page_size={PAGE_SIZE}", user=_ids["customer"]),
        notes=NOTES + " The token lookup is a read too.",
    ),
    Scenario(
        name=TECHNIQUE,
        title=f"place an order, read it back at once, replica {DELAY_SECONDS} s behind",
        prepare=_stale_prepare,
        call=lambda: Call(
            "POST",
            "/api/orders/",
            data={"items": [{"sku": _ids["sku"], "quantity": 1}]},
            user=READER,
        ),
        commits=True,  # over HTTP nothing would cancel the orders: the HTTP modes skip it
        hold=holds.READ_REPLICA_READ_BACK,  # an order a run, as one customer: no rate limit
        answer=order_answer,
        metrics=_stale_metrics,
        repeat=10,  # the whole replica server lags while it runs: keep it short
        notes=f"Commits for real: each order is cancelled and deleted after its run. "
        f"stale_reads: the read-back missed the order (target 0 on); stale_reads_without_pin: "
        f"the same read-back without the user's marker and with no lag bound, the stale read "
        f"read-your-writes prevents. The replica replays {DELAY_SECONDS} s late for the "
        f"whole server meanwhile.",
    ),
]


def after() -> list[str]:
    """Replay at once again (also after a killed run)."""
    replica = read_replica.replica_alias()
    if replica is None:
        return []
    restored = ["recovery_min_apply_delay"] if replication.reset_delay(replica=replica) else []
    read_replica.health.reset()
    return restored
