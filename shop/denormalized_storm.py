"""A storm of concurrent writes to what the denormalized copies copy, to show they stay right.

`run()` starts `workers` threads, each with its own database connection, for a bounded time.
Each thread loops over a random mix of writes, aimed at a small hot set of products, users and
orders so that writes really collide:

- review create (the service, with a user object loaded at the start: stale after a rename),
  review delete (the ORM's delete, or raw SQL), and a queryset update() of a rating;
- a rename of a user (save(), or a queryset update());
- an order item insert, a quantity update, a delete, and one UPDATE over several orders' items.

Every write is its own transaction. A refused write (a second review by the same author, a
product or item another thread just deleted) is counted and the loop goes on. It writes to
the database it runs against for good: run it on a seeded scratch database.
`manage.py denormalized_storm` runs it and then `denormalized_check`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from psycopg.errors import DeadlockDetected

from catalog import services as catalog_services
from catalog.models import Product, Review, Variant
from orders.models import Order, OrderItem
from shop.errors import Conflict, NotFound

HOT_PRODUCTS = 12
HOT_USERS = 40
HOT_ORDERS = 12


@dataclass
class Hot:
    """The rows the storm aims at, chosen once from the seeded data."""

    product_ids: list[int]
    users: list  # User objects, never refreshed: review_create gets a stale name after renames
    order_ids: list[int]
    variants: list[tuple[int, str, str, Decimal]]  # id, sku, product name, price


@dataclass
class Totals:
    done: Counter = field(default_factory=Counter)  # writes committed, by kind
    refused: Counter = field(default_factory=Counter)  # expected refusals, by kind
    # Deadlocks PostgreSQL broke by rolling one transaction back, by kind: see _worker.
    deadlocks: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # anything else, by exception name
    first_deadlock: str = ""  # PostgreSQL's account of the first one: who waited for what
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, outcome: str) -> None:
        with self.lock:
            getattr(self, outcome)[kind] += 1


def hot_set(*, rng: random.Random) -> Hot:
    product_ids = list(
        Product.objects.filter(is_active=True).order_by("id").values_list("id", flat=True)[:200]
    )
    users = list(get_user_model().objects.filter(is_staff=False).order_by("id")[:400])
    order_ids = list(
        Order.objects.filter(items__isnull=False)
        .order_by("id")
        .distinct()
        .values_list("id", flat=True)[:200]
    )
    variants = list(
        Variant.objects.order_by("id").values_list("id", "sku", "product__name", "price")[:50]
    )
    if not (product_ids and users and order_ids and variants):
        raise ValueError("the storm needs seeded data: run `manage.py seed --size small` first")
    return Hot(
        product_ids=rng.sample(product_ids, min(HOT_PRODUCTS, len(product_ids))),
        users=rng.sample(users, min(HOT_USERS, len(users))),
        order_ids=rng.sample(order_ids, min(HOT_ORDERS, len(order_ids))),
        variants=variants,
    )


def _review_create(rng: random.Random, hot: Hot, n: int) -> None:
    catalog_services.review_create(
        product_id=rng.choice(hot.product_ids),
        author=rng.choice(hot.users),
        rating=rng.randint(1, 5),
        title="storm",
        body="storm",
    )


def _review_delete(rng: random.Random, hot: Hot, n: int) -> None:
    ids = list(
        Review.objects.filter(product_id=rng.choice(hot.product_ids)).values_list("id", flat=True)
    )
    if not ids:
        raise NotFound("no review left")
    if rng.random() < 0.5:
        Review.objects.filter(pk=rng.choice(ids)).delete()  # the ORM's delete
    else:
        doomed = rng.sample(ids, min(2, len(ids)))
        with connection.cursor() as cursor:  # raw SQL, two reviews at once
            cursor.execute("DELETE FROM catalog_review WHERE id = ANY(%s)", [doomed])


def _rating_update(rng: random.Random, hot: Hot, n: int) -> None:
    # A queryset update() across products: one user's reviews, all re-rated at once.
    reviews = Review.objects.filter(author_id=rng.choice(hot.users).pk)
    _lock_in_id_order(reviews).update(rating=rng.randint(1, 5))


def _rename(rng: random.Random, hot: Hot, n: int) -> None:
    user = rng.choice(hot.users)
    name = f"storm{user.pk}-{n}"
    if rng.random() < 0.5:
        get_user_model().objects.filter(pk=user.pk).update(username=name)
    else:
        fresh = get_user_model().objects.get(pk=user.pk)
        fresh.username = name
        fresh.save(update_fields=["username"])


def _item_insert(rng: random.Random, hot: Hot, n: int) -> None:
    variant_id, sku, name, price = rng.choice(hot.variants)
    OrderItem.objects.create(
        order_id=rng.choice(hot.order_ids),
        variant_id=variant_id,
        product_name=name,
        sku=sku,
        unit_price=price,
        quantity=rng.randint(1, 3),
    )


def _item_update(rng: random.Random, hot: Hot, n: int) -> None:
    ids = list(
        OrderItem.objects.filter(order_id=rng.choice(hot.order_ids)).values_list("id", flat=True)
    )
    if not ids:
        raise NotFound("no item left")
    OrderItem.objects.filter(pk=rng.choice(ids)).update(quantity=rng.randint(1, 5))


def _item_delete(rng: random.Random, hot: Hot, n: int) -> None:
    ids = list(
        OrderItem.objects.filter(order_id=rng.choice(hot.order_ids)).values_list("id", flat=True)
    )
    if len(ids) < 2:  # keep one: an order with no items is legal, but less interesting
        raise NotFound("no item to spare")
    OrderItem.objects.filter(pk=rng.choice(ids)).delete()


def _items_bulk_update(rng: random.Random, hot: Hot, n: int) -> None:
    # One statement over several orders: the trigger locks them all, in id order.
    orders = rng.sample(hot.order_ids, min(4, len(hot.order_ids)))
    items = OrderItem.objects.filter(order_id__in=orders)
    _lock_in_id_order(items).update(quantity=F("quantity") % 5 + 1)


def _lock_in_id_order(rows):
    """Lock the rows a multi-row UPDATE will write in id order first, as the application's
    own code should: two UPDATEs whose plans scan the same rows in different orders can
    deadlock on the rows themselves, triggers or not. The storm wants any deadlock it
    reports to be one the triggers caused."""
    ids = list(rows.select_for_update().order_by("id").values_list("id", flat=True))
    return rows.model.objects.filter(pk__in=ids)


WRITES: dict[str, tuple[int, Callable[[random.Random, Hot, int], None]]] = {
    # kind: (weight, write)
    "review create": (5, _review_create),
    "review delete": (3, _review_delete),
    "rating update()": (1, _rating_update),
    "rename": (2, _rename),
    "item insert": (3, _item_insert),
    "item update": (3, _item_update),
    "item delete": (2, _item_delete),
    "items update() x4": (1, _items_bulk_update),
}
# What a write may run into when another thread got there first; anything else is an error.
REFUSALS = (Conflict, NotFound, IntegrityError)


def _worker(
    index: int, hot: Hot, seed: int, deadline: float, totals: Totals, stop: threading.Event
) -> None:
    rng = random.Random(seed * 1000 + index)
    kinds = list(WRITES)
    weights = [WRITES[kind][0] for kind in kinds]
    n = 0
    try:
        while time.monotonic() < deadline and not stop.is_set():
            n += 1
            kind = rng.choices(kinds, weights)[0]
            try:
                with transaction.atomic():
                    WRITES[kind][1](rng, hot, index * 10_000_000 + n)
            except REFUSALS as exc:
                totals.count(f"{kind} ({type(exc).__name__})", "refused")
            except DatabaseError as exc:
                cause = exc.__cause__ or exc
                if isinstance(cause, DeadlockDetected):
                    # PostgreSQL rolls one transaction back whole, copies included, so a
                    # deadlock never leaves drift; an application would retry. Counted
                    # apart from errors: the triggers lock in id order to avoid them.
                    totals.count(kind, "deadlocks")
                    if not totals.first_deadlock:
                        totals.first_deadlock = getattr(cause.diag, "message_detail", "") or ""
                else:
                    totals.count(f"{kind}: {type(cause).__name__}", "errors")
            else:
                totals.count(kind, "done")
    finally:
        connection.close()


def run(
    *,
    seconds: float,
    workers: int,
    seed: int = 1,
    progress: Callable[[float, Totals], None] | None = None,
) -> Totals:
    """Run the storm; call progress(elapsed, totals) about once a second."""
    rng = random.Random(seed)
    hot = hot_set(rng=rng)
    totals, stop = Totals(), threading.Event()
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(target=_worker, args=(i, hot, seed, deadline, totals, stop))
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            time.sleep(1.0)
            if progress is not None:
                progress(time.monotonic() - started, totals)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return totals
