"""Read values the writes keep stored, instead of JOINing or aggregating them on every read.

Three values the API shows can be derived from other rows at read time, or read from a
copy stored next to the row that shows them (docs/data.md lists who keeps each copy right):

| value                      | off: computed on every read          | on: the stored copy      |
|----------------------------|--------------------------------------|--------------------------|
| a review's author name     | JOIN auth_user, `username`           | `Review.author_username` |
| a product's rating, count  | `AVG`/`COUNT` over its reviews       | `Product.rating_avg`, `review_count` |
| an order's units, total    | `SUM` over its items                 | `Order.item_count`, `total_amount` |

Off, every page of products JOINs the reviews table and GROUPs BY product, and so does the
page's `COUNT(*)`; on, it reads two columns of the product row. The price is paid on
writes: PostgreSQL triggers (catalog migration 0004, orders migration 0005) recompute the
copies inside every statement that changes what they copy, whoever sends it. The toggle
switches the reads only; the copies are always kept, so either side can be read at any time.

`drift()` and `repair()` below are the check behind `manage.py denormalized_check`: they
compute each copy again from its source rows, independently of the triggers.

Each function annotates the queryset under a name of its own (`average_rating`, ...) and the
serializers read that name: Django refuses an annotation named like a model field, and the
two paths must feed the same serializer field. The computed path rounds and types exactly as
the writes do, so the JSON is byte-identical either way.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import connections, transaction
from django.db.models import Avg, Count, DecimalField, F, QuerySet, Sum
from django.db.models.functions import Coalesce, Round

from shop import toggles

TOGGLE = toggles.register(
    "denormalized_fields",
    group="data_access",
    description="Read stored copies (author name, rating, order totals) instead of JOIN/aggregate",
)

# The types of the stored columns: the computed values are cast to the same.
RATING = DecimalField(max_digits=3, decimal_places=2)
AMOUNT = DecimalField(max_digits=12, decimal_places=2)


def review_author(reviews: QuerySet) -> QuerySet:
    """Annotate `author_name`: the username shown with each review."""
    if not toggles.is_enabled(TOGGLE.name):
        return reviews.annotate(author_name=F("author__username"))  # naive: JOIN auth_user
    return reviews.annotate(author_name=F("author_username"))


def product_rating(products: QuerySet) -> QuerySet:
    """Annotate `average_rating` (rounded half up to 2 places, 0.00 without reviews) and
    `rating_count`."""
    if not toggles.is_enabled(TOGGLE.name):
        # naive: LEFT JOIN the reviews and GROUP BY product. AVG over integers is an exact
        # numeric in PostgreSQL, and ROUND(numeric, 2) rounds half away from zero, as the
        # write path's Decimal quantize(ROUND_HALF_UP) does: 4.025 is 4.03 both ways.
        average = Round(Avg("reviews__rating", output_field=DecimalField()), 2)
        return products.annotate(
            average_rating=Coalesce(average, Decimal("0.00"), output_field=RATING),
            rating_count=Count("reviews"),
        )
    return products.annotate(average_rating=F("rating_avg"), rating_count=F("review_count"))


def order_totals(orders: QuerySet) -> QuerySet:
    """Annotate `unit_count` (units, not lines) and `order_total`."""
    if not toggles.is_enabled(TOGGLE.name):
        # naive: JOIN the items and GROUP BY order.
        return orders.annotate(
            unit_count=Coalesce(Sum("items__quantity"), 0),
            order_total=Coalesce(
                Sum(F("items__unit_price") * F("items__quantity")),
                Decimal("0.00"),
                output_field=AMOUNT,
            ),
        )
    return orders.annotate(unit_count=F("item_count"), order_total=F("total_amount"))


@dataclass(frozen=True)
class StoredCopy:
    """One stored column and the SQL that computes what it must hold, row by row."""

    name: str  # as the models say it: "Product.rating_avg"
    table: str
    column: str
    truth: str  # SELECT id, truth FROM ...: the value for every row of `table`
    # A product's cached pages (catalog/payloads.py) show it, and `table` is the products':
    # repair() invalidates the pages of the rows it rewrites. No cached page shows an author
    # name (the reviews list is not cached) or an order.
    on_product_pages: bool = False


_RATING = """SELECT p.id, {value} AS truth
    FROM catalog_product p LEFT JOIN catalog_review r ON r.product_id = p.id GROUP BY p.id"""
_TOTALS = """SELECT o.id, {value} AS truth
    FROM orders_order o LEFT JOIN orders_orderitem i ON i.order_id = o.id GROUP BY o.id"""

# The arithmetic is the read path's (product_rating and order_totals above): what the off
# side would show is what the copy must hold.
COPIES = [
    StoredCopy(
        "Review.author_username",
        "catalog_review",
        "author_username",
        "SELECT r.id, u.username AS truth FROM catalog_review r "
        "JOIN auth_user u ON u.id = r.author_id",
    ),
    StoredCopy(
        "Product.rating_avg",
        "catalog_product",
        "rating_avg",
        _RATING.format(value="COALESCE(ROUND(AVG(r.rating), 2), 0.00)"),
        on_product_pages=True,
    ),
    StoredCopy(
        "Product.review_count",
        "catalog_product",
        "review_count",
        _RATING.format(value="COUNT(r.id)"),
        on_product_pages=True,
    ),
    StoredCopy(
        "Order.item_count",
        "orders_order",
        "item_count",
        _TOTALS.format(value="COALESCE(SUM(i.quantity), 0)"),
    ),
    StoredCopy(
        "Order.total_amount",
        "orders_order",
        "total_amount",
        _TOTALS.format(value="COALESCE(SUM(i.unit_price * i.quantity), 0.00)"),
    ),
]
# The triggers that keep the copies (catalog migration 0004, orders migration 0005), by table.
UPKEEP_TRIGGERS = {
    "catalog_review": [
        "catalog_review_author_username",
        "catalog_review_rating_insert",
        "catalog_review_rating_update",
        "catalog_review_rating_delete",
    ],
    "auth_user": ["auth_user_username_to_reviews"],
    "orders_orderitem": [
        "orders_orderitem_totals_insert",
        "orders_orderitem_totals_update",
        "orders_orderitem_totals_delete",
    ],
}


def upkeep_triggers(
    *, enabled: bool, tables: list[str] | None = None, using: str = "default"
) -> list[str]:
    """Enable or disable the upkeep triggers of `tables` (default: all of them); returns the
    ones changed. Only the benchmark does this, to measure a write without the upkeep: while
    they are off, writes to those tables leave the copies stale (denormalized_check finds
    them). ALTER TABLE takes an ACCESS EXCLUSIVE lock on its table, so name only the tables
    the measured write touches, and only triggers not already in the wanted state are altered."""
    wanted = "O" if enabled else "D"  # pg_trigger.tgenabled: O fires (origin), D disabled
    names = [name for table in tables or UPKEEP_TRIGGERS for name in UPKEEP_TRIGGERS[table]]
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = ANY(%s) AND t.tgenabled <> %s ORDER BY 1, 2",
            [names, wanted],
        )
        changed = cursor.fetchall()
        for table, name in changed:
            action = "ENABLE" if enabled else "DISABLE"
            cursor.execute(f'ALTER TABLE {table} {action} TRIGGER "{name}"')
    return [name for _, name in changed]


# What the copies are computed from. `repair()` holds them still while it writes.
SOURCE_TABLES = ["auth_user", "catalog_review", "orders_orderitem"]


@dataclass(frozen=True)
class Drift:
    copy: StoredCopy
    rows: int  # rows whose stored value differs from the computed one
    examples: list[tuple[int, object, object]]  # (id, stored, computed), lowest ids first


def drift(*, examples: int = 3, using: str = "default") -> list[Drift]:
    """How many rows of each stored copy differ from what they copy. One REPEATABLE READ
    snapshot for all of them: the triggers commit a copy with its source, so a snapshot never
    shows a write half done, and any drift found is real."""
    found = []
    outermost = not connections[using].in_atomic_block
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if outermost:  # inside a caller's transaction, its snapshot rules apply
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for copy in COPIES:
            cursor.execute(
                f"SELECT t.id, t.{copy.column}, s.truth, count(*) OVER () "
                f"FROM {copy.table} t JOIN ({copy.truth}) s ON s.id = t.id "
                f"WHERE t.{copy.column} IS DISTINCT FROM s.truth ORDER BY t.id LIMIT %s",
                [max(examples, 1)],
            )
            rows = cursor.fetchall()
            found.append(
                Drift(
                    copy=copy,
                    rows=rows[0][3] if rows else 0,
                    examples=[row[:3] for row in rows[:examples]],
                )
            )
    return found


def repair(*, using: str = "default") -> dict[str, int]:
    """Rewrite every drifted copy from its source rows, all in one transaction. Returns the
    rows repaired per copy. The source tables are locked in SHARE mode first: writes to them
    wait until the repair commits, so no copy can drift again while it runs.

    The cached pages that showed a repaired value (a product's rating on its page and on the
    lists) are invalidated once the repair commits, as any write's: the UPDATEs return the
    ids they changed. Without it the cache would serve the drifted value for a whole TTL."""
    from catalog import payloads  # the catalog's pages; catalog imports this module

    repaired, products = {}, set()
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(SOURCE_TABLES)} IN SHARE MODE")
        for copy in COPIES:
            cursor.execute(
                f"UPDATE {copy.table} t SET {copy.column} = s.truth FROM ({copy.truth}) s "
                f"WHERE s.id = t.id AND t.{copy.column} IS DISTINCT FROM s.truth RETURNING t.id"
            )
            ids = [row[0] for row in cursor.fetchall()]
            repaired[copy.name] = len(ids)
            if copy.on_product_pages:
                products.update(ids)
        if products:
            payloads.products_changed_on_commit(*sorted(products), lists=True, using=using)
    return repaired
