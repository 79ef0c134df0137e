"""denormalized_fields under concurrency: each race is forced with real transactions on two
connections, never hoped for.

`_race(first, second)` runs `first` in a transaction on one connection and holds it open
before its commit; then runs `second` on another connection; commits `first` only once
`second` has finished or is waiting for a lock (as pg_stat_activity reports it); then waits
for `second`. So `second` always starts while `first`'s writes are uncommitted: the
interleaving that lost updates when Python recomputed the copies.
"""

import threading
import time
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Avg, Count, F, Sum

from catalog.models import Product, Review
from orders.models import Order, OrderItem
from tests.factories import (
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
    review_by_service,
)

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()
WAIT = 10  # seconds: far beyond any wait here, so a hang fails instead of blocking the suite


def _in_thread(work, started: threading.Event | None = None):
    """Run work() on a thread of its own, so on a connection of its own. Returns the thread
    and a dict that receives the backend pid and any exception."""
    box: dict = {}

    def run():
        try:
            connection.ensure_connection()
            box["pid"] = connection.connection.info.backend_pid
            if started is not None:
                started.set()
            work()
        except BaseException as exc:  # re-raised by the test
            box["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def _waiting_for_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def _race(first, second) -> None:
    written, release = threading.Event(), threading.Event()

    def hold_open():
        with transaction.atomic():
            first()
            written.set()
            assert release.wait(WAIT), "never released"

    first_thread, first_box = _in_thread(hold_open)
    assert written.wait(WAIT), first_box.get("error")
    started = threading.Event()
    second_thread, second_box = _in_thread(lambda: transaction.atomic()(second)(), started)
    assert started.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while second_thread.is_alive() and not _waiting_for_lock(second_box["pid"]):
        assert time.monotonic() < deadline, "second neither finished nor waited for a lock"
        time.sleep(0.01)
    release.set()
    first_thread.join(WAIT)
    second_thread.join(WAIT)
    assert not first_thread.is_alive() and not second_thread.is_alive()
    for box in (first_box, second_box):
        if "error" in box:
            raise box["error"]


def _true_rating(product: Product) -> tuple[Decimal, int]:
    """What rating_avg and review_count must be, computed here from the reviews."""
    stats = Review.objects.filter(product=product).aggregate(avg=Avg("rating"), n=Count("id"))
    average = Decimal(stats["avg"] or 0).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return average, stats["n"]


def _stored_rating(product: Product) -> tuple[Decimal, int]:
    product.refresh_from_db(fields=["rating_avg", "review_count"])
    return product.rating_avg, product.review_count


def _true_totals(order: Order) -> tuple[int, Decimal]:
    stats = OrderItem.objects.filter(order=order).aggregate(
        units=Sum("quantity"), total=Sum(F("unit_price") * F("quantity"))
    )
    return stats["units"] or 0, stats["total"] or Decimal("0.00")


def _stored_totals(order: Order) -> tuple[int, Decimal]:
    order.refresh_from_db(fields=["item_count", "total_amount"])
    return order.item_count, order.total_amount


def test_two_reviews_deleted_at_once_leave_the_count_right():
    product = ProductFactory()
    first, second, _ = (review_by_service(product, rating) for rating in (1, 2, 5))

    _race(
        lambda: Review.objects.get(pk=first.pk).delete(),
        lambda: Review.objects.get(pk=second.pk).delete(),
    )

    assert _stored_rating(product) == _true_rating(product) == (Decimal("5.00"), 1)


def test_a_review_created_while_another_is_deleted_leaves_the_count_right():
    product = ProductFactory()
    doomed, _ = review_by_service(product, 1), review_by_service(product, 3)

    _race(
        lambda: review_by_service(product, 5),
        lambda: Review.objects.get(pk=doomed.pk).delete(),
    )

    assert _stored_rating(product) == _true_rating(product) == (Decimal("4.00"), 2)


def test_a_review_created_while_its_products_other_reviewer_is_deleted():
    """A user's delete cascades to their reviews (of several products) while a review of one
    of those products is being written."""
    product, other = ProductFactory(), ProductFactory()
    leaving = UserFactory()
    review_by_service(product, 1, author=leaving)
    review_by_service(other, 2, author=leaving)
    review_by_service(product, 4)

    _race(lambda: review_by_service(product, 5), lambda: User.objects.get(pk=leaving.pk).delete())

    assert _stored_rating(product) == _true_rating(product) == (Decimal("4.50"), 2)
    assert _stored_rating(other) == _true_rating(other) == (Decimal("0.00"), 0)


def test_a_rename_that_commits_after_the_login_reaches_the_new_review():
    """The request authenticated `author` (old name); the rename commits on another
    connection before the review is written."""
    author = UserFactory(username="before-rename")
    product = ProductFactory()

    def rename():
        User.objects.filter(pk=author.pk).update(username="after-rename")

    thread, box = _in_thread(rename)
    thread.join(WAIT)
    assert "error" not in box
    review = review_by_service(product, author=author)  # `author` still says "before-rename"

    assert review.author_username == "after-rename"  # what the API answers
    assert Review.objects.get(pk=review.pk).author_username == "after-rename"


@pytest.mark.parametrize("rename_first", [False, True], ids=["review-first", "rename-first"])
def test_a_rename_racing_a_new_review_reaches_it(rename_first):
    author = UserFactory(username="before-rename")
    product = ProductFactory()

    def rename():
        user = User.objects.get(pk=author.pk)
        user.username = "after-rename"
        user.save()

    def write():
        review_by_service(product, author=author)  # `author` still says "before-rename"

    if rename_first:
        _race(rename, write)
    else:
        _race(write, rename)

    assert list(Review.objects.values_list("author_username", flat=True)) == ["after-rename"]


@pytest.mark.parametrize(
    "change",
    ["insert", "update", "delete"],
)
def test_concurrent_item_changes_of_one_order_leave_its_totals_right(change):
    first_variant = VariantFactory(price=Decimal("2.50"))
    second_variant = VariantFactory(price=Decimal("10.00"))
    order = OrderFactory(lines=[(first_variant, 1), (second_variant, 2)])
    items = list(order.items.order_by("id"))

    def add(variant, quantity):
        return lambda: OrderItemFactory(order=order, variant=variant, quantity=quantity)

    racers = {
        "insert": (add(first_variant, 3), add(second_variant, 4)),
        "update": (
            lambda: OrderItem.objects.filter(pk=items[0].pk).update(quantity=F("quantity") + 5),
            lambda: OrderItem.objects.filter(pk=items[1].pk).update(quantity=F("quantity") + 1),
        ),
        "delete": (
            lambda: OrderItem.objects.filter(pk=items[0].pk).delete(),
            add(first_variant, 7),
        ),
    }
    _race(*racers[change])

    expected = {
        "insert": (10, Decimal("70.00")),
        "update": (9, Decimal("45.00")),
        "delete": (9, Decimal("37.50")),
    }
    assert _stored_totals(order) == _true_totals(order) == expected[change]
