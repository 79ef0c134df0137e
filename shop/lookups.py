"""Query expressions the ORM lacks."""

from django.db.models import Lookup


class AnyOf(Lookup):
    """`column = ANY(%s)`: a list of values sent as one array parameter.

    `slug__in=values` renders one placeholder per value, each prepared by the field and quoted
    by psycopg one by one: for the 30,000 SKUs of a large import that is 190 ms, against 35 ms
    as one array (the same rows, the same plan). For the 50 order ids of a page it saves about
    a tenth of a millisecond of Python per query. The statement text also stays the same for
    any number of values. Used as an expression, `filter(AnyOf(F("sku"), skus))`, it needs no
    registering.
    """

    lookup_name = "any_of"
    prepare_rhs = False  # the list is the parameter, not a value of the column's type

    def get_db_prep_lookup(self, value, connection):
        return "%s", [list(value)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]
