"""The sales report's read model (materialized_view): three materialized views of the revenue
orders (paid, confirmed, shipped: orders.selectors.REVENUE_STATUSES), and the time they were
last refreshed.

- orders_sales_day: orders, units and revenue per UTC calendar day (the report's `by_day`);
- orders_sales_day_product: units and revenue per UTC day and product (`top_products` in range);
- orders_sales_product: units and revenue per product over all time, an upper bound on any
  range's, which lets the report sum the range for a few candidate products only;
- orders_sales_refresh: one row, when the three were last refreshed and how long it took.

Each view has a UNIQUE index over every row, which `REFRESH MATERIALIZED VIEW CONCURRENTLY`
requires (shop.techniques.materialized_view.refresh). WITH DATA: they are filled as they are
created, so a migrated database never serves an empty report. The SQL is frozen here; the
statuses must match REVENUE_STATUSES (tests/techniques/test_materialized_view.py checks the
answers off and on agree, placed and cancelled orders included).
"""

from django.db import migrations

REVENUE = "o.status IN ('paid', 'confirmed', 'shipped')"
DAY = "(o.created_at AT TIME ZONE 'UTC')::date"  # the live report's UTC calendar day

FORWARD = f"""
CREATE MATERIALIZED VIEW orders_sales_day AS
    SELECT {DAY} AS day,
           count(*) AS orders,
           sum(o.item_count)::bigint AS units,
           sum(o.total_amount) AS revenue
      FROM orders_order o
     WHERE {REVENUE}
     GROUP BY 1
  WITH DATA;
CREATE UNIQUE INDEX orders_sales_day_key ON orders_sales_day (day);

CREATE MATERIALIZED VIEW orders_sales_day_product AS
    SELECT {DAY} AS day,
           v.product_id,
           sum(i.quantity)::bigint AS units,
           sum(i.unit_price * i.quantity) AS revenue
      FROM orders_order o
      JOIN orders_orderitem i ON i.order_id = o.id
      JOIN catalog_variant v ON v.id = i.variant_id
     WHERE {REVENUE}
     GROUP BY 1, 2
  WITH DATA;
CREATE UNIQUE INDEX orders_sales_day_product_key ON orders_sales_day_product (day, product_id);
-- A candidate product's days in range, read from the index alone.
CREATE INDEX orders_sales_day_product_by_product
    ON orders_sales_day_product (product_id, day) INCLUDE (units, revenue);

CREATE MATERIALIZED VIEW orders_sales_product AS
    SELECT v.product_id,
           sum(i.quantity)::bigint AS units,
           sum(i.unit_price * i.quantity) AS revenue
      FROM orders_order o
      JOIN orders_orderitem i ON i.order_id = o.id
      JOIN catalog_variant v ON v.id = i.variant_id
     WHERE {REVENUE}
     GROUP BY 1
  WITH DATA;
CREATE UNIQUE INDEX orders_sales_product_key ON orders_sales_product (product_id);
CREATE INDEX orders_sales_product_by_revenue ON orders_sales_product (revenue DESC, product_id);

CREATE TABLE orders_sales_refresh (
    id smallint PRIMARY KEY CHECK (id = 1),
    refreshed_at timestamptz NOT NULL,
    seconds double precision NOT NULL
);
INSERT INTO orders_sales_refresh (id, refreshed_at, seconds) VALUES (1, now(), 0);
"""

REVERSE = """
DROP TABLE IF EXISTS orders_sales_refresh;
DROP MATERIALIZED VIEW IF EXISTS orders_sales_product;
DROP MATERIALIZED VIEW IF EXISTS orders_sales_day_product;
DROP MATERIALIZED VIEW IF EXISTS orders_sales_day;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_inventory_locking_version"),
        ("orders", "0008_order_states_stock_ledger"),
    ]

    operations = [migrations.RunSQL(FORWARD, reverse_sql=REVERSE)]
