"""Write many rows in a few statements, instead of one statement (and one round trip) per row.

Off: the code a team writes first. Placing an order with N lines runs one conditional
`UPDATE ... SET stock = stock - n` per line (when inventory_locking takes stock with its
conditional-UPDATE strategy, the default: the other strategies write stock their own way), then one `INSERT` per order item and per event;
importing 10,000 products runs one `INSERT` per product and per variant, about 40,000
statements. Every statement is a round trip to PostgreSQL plus Django's per-`save()` work, so
the cost grows with the number of rows even though each statement is fast.

On: the stock of every line is taken by one `UPDATE ... FROM unnest(...)`, and the rows are
inserted with `bulk_create`, in batches of `BATCH` rows: one multi-row `INSERT ... RETURNING id`
per batch, which gives each object its primary key just as `save()` does.

Both paths write the same rows with the same ids (ids are handed out in list order either way),
and both keep the guarantees the order service relies on: stock is checked and taken in the same
statement, so concurrent orders never oversell, and the rows are locked in primary-key order, so
two orders for the same SKUs never deadlock. What changes: `bulk_create` does not call `save()`
and sends no `pre_save`/`post_save` signals (no model here has receivers for them).
"""

from collections.abc import Mapping, Sequence

from django.db import connection
from django.db.models import F, Model

from catalog.models import Variant
from shop import toggles

TOGGLE = toggles.register(
    "bulk_writes",
    group="data_access",
    description="bulk_create and one UPDATE for all lines instead of a statement per row",
)

# Rows per INSERT. Importing 10k products with 30k variants on the medium data set, the INSERTs
# alone (Django 5.2 sends INSERT ... SELECT * FROM UNNEST(one array per column)), 2-core
# machine, load about 1, median of 5 per table, summed: 100 → 1.58 s, 500 → 1.44 s,
# 1000 → 1.19 s, 2000 → 1.18 s, 10000 → 1.35 s. Past 1000 the gain is within the run-to-run
# noise, while the SQL text of a batch grows with it: 10000 peaks 2.2 MB higher than 2000 (short
# descriptions, from an earlier run that measured 100 → 4.97 s, 2000 → 3.52 s).
BATCH = 2000


def insert(model: type[Model], objs: Sequence[Model]) -> None:
    """INSERT every object; each one gets its primary key, as `save()` would give it."""
    if not toggles.is_enabled(TOGGLE.name):
        _insert_naive(objs)
    else:
        _insert_optimized(model, objs)


def _insert_naive(objs: Sequence[Model]) -> None:
    for obj in objs:
        obj.save()  # one INSERT ... RETURNING id per row


def _insert_optimized(model: type[Model], objs: Sequence[Model]) -> None:
    model.objects.bulk_create(objs, batch_size=BATCH)  # one INSERT per BATCH rows


def stock_take(*, quantities: Mapping[int, int]) -> set[int]:
    """Take `quantities[variant_id]` units from each variant that has that many in stock.

    Returns the ids of the variants that did not have enough; their stock is untouched. The
    others' stock is taken either way: the caller rolls the transaction back to undo it.
    """
    if not toggles.is_enabled(TOGGLE.name):
        return _stock_take_naive(quantities)
    return _stock_take_optimized(quantities)


def _stock_take_naive(quantities: Mapping[int, int]) -> set[int]:
    short = set()
    # One conditional UPDATE per line: the check and the decrement are one statement, so no
    # concurrent order can take the same units. Going in primary-key order locks rows in the
    # same order in every transaction, so two orders for the same SKUs cannot deadlock.
    for variant_id in sorted(quantities):
        quantity = quantities[variant_id]
        taken = Variant.objects.filter(pk=variant_id, stock__gte=quantity).update(
            stock=F("stock") - quantity
        )
        if not taken:
            short.add(variant_id)
    return short


# The ORM has no per-row conditional UPDATE for many rows (bulk_update writes values computed
# in Python, with no `stock >= n` check), so this one is SQL. The two arrays are the ids and
# the quantities; the statement text is the same for any number of lines.
#
# `locked` locks every wanted row, in primary-key order, before the UPDATE changes it: the
# UPDATE joins to `locked`, so it can only reach a row the CTE has already produced, and the
# CTE produces (and locks) rows in id order. Without it PostgreSQL would lock rows in whatever
# order its plan visits them, and two orders for the same SKUs could deadlock. MATERIALIZED
# keeps it a separate step. When a row is locked by another order, the lock waits for it and
# then reads the row's newest stock, so `stock >= quantity` is checked against what is left.
_STOCK_TAKE_SQL = """
WITH wanted (id, quantity) AS (
    SELECT * FROM unnest(%s::bigint[], %s::integer[])
),
locked AS MATERIALIZED (
    SELECT variant.id, wanted.quantity
    FROM catalog_variant AS variant
    JOIN wanted ON wanted.id = variant.id
    ORDER BY variant.id
    FOR UPDATE OF variant
)
UPDATE catalog_variant AS variant
SET stock = variant.stock - locked.quantity
FROM locked
WHERE variant.id = locked.id AND variant.stock >= locked.quantity
RETURNING variant.id
"""


def _stock_take_optimized(quantities: Mapping[int, int]) -> set[int]:
    ids = sorted(quantities)
    with connection.cursor() as cursor:
        cursor.execute(_STOCK_TAKE_SQL, [ids, [quantities[variant_id] for variant_id in ids]])
        taken = {variant_id for (variant_id,) in cursor.fetchall()}
    return set(ids) - taken
