"""The denormalized_fields technique's order copies, kept right by PostgreSQL itself.

Order.item_count and Order.total_amount were written once, by orders.services.order_place;
any later change to an order's items (an admin edit, a queryset update(), raw SQL) left them
wrong. orders_orderitem_totals (AFTER INSERT, UPDATE, DELETE, once per statement) locks the
orders the statement touched in id order, then recomputes their totals from the items.
"""

from django.db import migrations

TOTALS_UPKEEP = """
CREATE FUNCTION orders_order_totals_recompute(order_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Lock first, in id order, so statements touching the same orders wait for each other
    -- instead of deadlocking; then recompute in a new statement, whose READ COMMITTED
    -- snapshot sees the items those transactions committed.
    PERFORM 1 FROM orders_order WHERE id = ANY(order_ids) ORDER BY id FOR UPDATE;
    UPDATE orders_order o
    SET item_count = s.units, total_amount = s.total
    FROM (
        SELECT q.id,
               COALESCE(SUM(i.quantity), 0) AS units,
               COALESCE(SUM(i.unit_price * i.quantity), 0.00) AS total
        FROM orders_order q LEFT JOIN orders_orderitem i ON i.order_id = q.id
        WHERE q.id = ANY(order_ids)
        GROUP BY q.id
    ) s
    WHERE o.id = s.id
      -- order_place writes the right totals with the order: then nothing is rewritten.
      AND (o.item_count, o.total_amount) IS DISTINCT FROM (s.units, s.total);
END;
$$;

CREATE FUNCTION orders_orderitem_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    order_ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT order_id) INTO order_ids FROM new_items;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT order_id) INTO order_ids FROM old_items;
    ELSE
        -- Only the rows whose order, price or quantity changed.
        SELECT array_agg(DISTINCT order_id) INTO order_ids FROM (
            (SELECT id, order_id, unit_price, quantity FROM old_items
             EXCEPT SELECT id, order_id, unit_price, quantity FROM new_items)
            UNION ALL
            (SELECT id, order_id, unit_price, quantity FROM new_items
             EXCEPT SELECT id, order_id, unit_price, quantity FROM old_items)
        ) changed;
    END IF;
    IF order_ids IS NOT NULL THEN
        PERFORM orders_order_totals_recompute(order_ids);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER orders_orderitem_totals_insert
AFTER INSERT ON orders_orderitem REFERENCING NEW TABLE AS new_items
FOR EACH STATEMENT EXECUTE FUNCTION orders_orderitem_totals();

CREATE TRIGGER orders_orderitem_totals_update
AFTER UPDATE ON orders_orderitem REFERENCING OLD TABLE AS old_items NEW TABLE AS new_items
FOR EACH STATEMENT EXECUTE FUNCTION orders_orderitem_totals();

CREATE TRIGGER orders_orderitem_totals_delete
AFTER DELETE ON orders_orderitem REFERENCING OLD TABLE AS old_items
FOR EACH STATEMENT EXECUTE FUNCTION orders_orderitem_totals();

-- Orders written before the trigger existed are brought in line once.
SELECT orders_order_totals_recompute(ARRAY(SELECT id FROM orders_order));
"""

DROP = """
DROP TRIGGER IF EXISTS orders_orderitem_totals_insert ON orders_orderitem;
DROP TRIGGER IF EXISTS orders_orderitem_totals_update ON orders_orderitem;
DROP TRIGGER IF EXISTS orders_orderitem_totals_delete ON orders_orderitem;
DROP FUNCTION IF EXISTS orders_orderitem_totals();
DROP FUNCTION IF EXISTS orders_order_totals_recompute(bigint[]);
"""


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_db_indexes")]

    operations = [migrations.RunSQL(TOTALS_UPKEEP, DROP)]
