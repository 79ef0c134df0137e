"""Make the order event log append-only in the database itself, not just in Python."""

from django.db import migrations

FORBID = """
CREATE FUNCTION orders_orderevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'orders_orderevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER orders_orderevent_append_only
BEFORE UPDATE OR DELETE ON orders_orderevent
FOR EACH ROW EXECUTE FUNCTION orders_orderevent_append_only();
"""

ALLOW = """
DROP TRIGGER IF EXISTS orders_orderevent_append_only ON orders_orderevent;
DROP FUNCTION IF EXISTS orders_orderevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [migrations.RunSQL(FORBID, ALLOW)]
