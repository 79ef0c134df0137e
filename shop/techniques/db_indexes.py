"""Index the queries the shop actually runs, not only the keys Django indexes by itself.

Off: the indexes Django makes on its own: primary keys, unique constraints, one B-tree per
foreign-key column and a `_like` twin for each unique text column (see docs/data.md). That is
what a team has before anyone looks at a query plan, and for some queries it is enough: the
foreign-key index on `orders_order.user_id` already finds a customer's orders. For others it is
not: the product search (`name ILIKE '%kettle%'`) and the product list (`WHERE is_active ORDER
BY created_at DESC`) read the whole table and sort it, for every page.

On: the seven indexes in INDEXES below, each built for one query and measured on the medium
data set: composite indexes that return rows already in the order the page wants (so a page
of 50 reads 50 rows, not all of them then a sort), partial ones that hold only the rows a query
can match, a covering one (`INCLUDE`) that answers the sales report from the index alone, and a
GIN trigram index that lets `UPPER(name) LIKE '%KETTLE%'` look up three-letter fragments
instead of testing every name.

This technique is not like the others. The off and on paths are not two pieces of code: the
queries are identical, and what differs is the database they run against. So no request can
choose a side: `X-Perf-Toggles: db_indexes=off` is refused with a 400 that names the command
(shop.perf_headers.NOT_PER_REQUEST), and `GET /api/perf/toggles/` lists db_indexes as the
database has it (`in_effect()`, source "database"). What changes the database is
`apply_state()` (the `db_indexes` management command and the benchmark's `before()` hook call
it); the migrations create the indexes, so "on" is the normal state of every database.

An index is not free: every INSERT, and every UPDATE of an indexed column, maintains it, and
it takes disk and cache. Each one below says what it serves and what it costs there. The
queries they serve, run through the domain's selectors, and their plans are in
shop/bench/served_queries.py: this module imports no domain code.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections

from shop import toggles

TOGGLE = toggles.register(
    "db_indexes",
    group="data_access",
    description="composite, partial, covering and trigram indexes; set in the database by "
    "`manage.py db_indexes on|off`, not per request",
)
SWITCH = "python manage.py db_indexes on|off"  # the only way to change the state


@dataclass(frozen=True)
class NamedIndex:
    name: str
    table: str
    sql: str  # "CREATE INDEX <name> ON <table> ...": IF NOT EXISTS and CONCURRENTLY are added
    purpose: str  # one line: the query it serves, in words
    query: str  # the name of that query in shop.bench.served_queries.SERVED_QUERIES
    # An index on an expression has no statistics until ANALYZE: without them the planner
    # guesses how many rows match (3 names for 'kettle'; with statistics ~200; in fact 95).
    expression: bool = False

    def __post_init__(self) -> None:
        # create_sql() inserts keywords after "CREATE INDEX", and _states() looks the index up
        # by name on its table: both are only right if the statement says what the fields say.
        if not self.sql.startswith(f"CREATE INDEX {self.name} ON {self.table} "):
            raise ValueError(f"{self.name}: sql must start 'CREATE INDEX {self.name} ON ...'")

    def create_sql(self, *, concurrently: bool = False) -> str:
        keyword = "CREATE INDEX CONCURRENTLY" if concurrently else "CREATE INDEX"
        return f"{keyword} IF NOT EXISTS{self.sql.removeprefix('CREATE INDEX')}"

    def drop_sql(self, schema: str, *, concurrently: bool = False) -> str:
        # Schema-qualified: a bare name drops whichever index of that name the search_path
        # finds first, which need not be the one on the table the path finds (a bench sample
        # of the table in a schema of its own, without this index, finds the user's).
        keyword = "DROP INDEX CONCURRENTLY" if concurrently else "DROP INDEX"
        return f"{keyword} IF EXISTS {schema}.{self.name}"


# Timings: EXPLAIN ANALYZE execution time of each query's SQL on the medium data set (quiet
# 2-core machine, warm cache, median of 15), off → on.
INDEXES = [
    NamedIndex(
        name="orders_order_user_created_idx",
        table="orders_order",
        # busiest customer (402 orders): 0.31 ms index scan on user_id + top-N sort of all 402
        # → 0.05 ms reading the first 50 in order; a typical customer (14): 0.03 ms either way
        sql="CREATE INDEX orders_order_user_created_idx ON orders_order "
        "(user_id, created_at DESC, id DESC)",
        purpose="a customer's orders, newest first (orders.selectors.order_list)",
        query="customer_orders",
    ),
    NamedIndex(
        name="orders_order_created_idx",
        table="orders_order",
        # 22.6 ms parallel seq scan + top-N sort of 100k rows → 0.03 ms; the staff list's
        # query, which also JOINs auth_user: ~100 ms → 0.3 ms. Also any keyset page.
        sql="CREATE INDEX orders_order_created_idx ON orders_order (created_at DESC, id DESC)",
        purpose="every order, newest first: the staff list and its keyset cursor, the export",
        query="staff_orders",
    ),
    NamedIndex(
        name="orders_order_status_created_idx",
        table="orders_order",
        # staff filter 'placed, last 30 days', first page of 50: a parallel seq scan of 100k
        # orders (status and date tested on each) + top-N sort → the first 51 entries of the
        # index, read in order. Cost: every status change (paid, shipped, cancelled) moves the
        # row's entry, and the update can no longer be a HOT update.
        sql="CREATE INDEX orders_order_status_created_idx ON orders_order "
        "(status, created_at DESC, id DESC)",
        purpose="staff orders in one status and date range, newest first (order_list_all)",
        query="staff_filter",
    ),
    NamedIndex(
        name="orders_order_revenue_created_idx",
        table="orders_order",
        # by-day totals, 30 days: 16.0 ms seq scan → 4.5 ms index-only scan (6.7 ms with only
        # the index above); 366 days: 338 pages read instead of 1,343, but sorting and grouping
        # 56,000 rows is most of the time (60 → 45 ms). Cost: status is in the predicate, so
        # paying, shipping or cancelling an order can no longer be a HOT update.
        sql="CREATE INDEX orders_order_revenue_created_idx ON orders_order (created_at) "
        "INCLUDE (id, item_count, total_amount) WHERE status IN ('paid', 'confirmed', 'shipped')",
        purpose="the sales report's paid, confirmed and shipped orders in a date range, from the index alone",
        query="sales_report",
    ),
    NamedIndex(
        name="catalog_product_name_trgm_idx",
        table="catalog_product",
        # `name__icontains` compiles to UPPER("name"::text) LIKE UPPER('%kettle%'): the index
        # is on that expression. 'kettle': 6.1 ms seq scan → 0.22 ms bitmap index scan; the
        # page's COUNT(*) 5.9 ms → 0.18 ms. Two-letter terms have no trigram to look up and
        # fall back to the index below.
        sql="CREATE INDEX catalog_product_name_trgm_idx ON catalog_product "
        "USING gin (upper(name) gin_trgm_ops)",
        purpose="product search: name contains the term, any case (catalog.selectors.product_list)",
        query="product_search",
        expression=True,
    ),
    NamedIndex(
        name="catalog_product_active_created_idx",
        table="catalog_product",
        # first page: 9.7 ms seq scan + top-N sort of 9,688 wide rows → 0.04 ms; the page's
        # COUNT(*) WHERE is_active: 4.3 ms seq scan → 1.7 ms index-only scan
        sql="CREATE INDEX catalog_product_active_created_idx ON catalog_product "
        "(created_at DESC, id DESC) WHERE is_active",
        purpose="the product list: active products, newest first (catalog.selectors.product_list)",
        query="active_products",
    ),
    NamedIndex(
        name="catalog_review_product_created_idx",
        table="catalog_review",
        # most-reviewed product (610 reviews): 0.26 ms → 0.05 ms; a typical product (10
        # reviews): 0.03 ms either way. Cheap to keep: reviews are written rarely.
        sql="CREATE INDEX catalog_review_product_created_idx ON catalog_review "
        "(product_id, created_at DESC, id DESC)",
        purpose="a product's reviews, newest first (catalog.selectors.review_list)",
        query="product_reviews",
    ),
]
BY_NAME = {index.name: index for index in INDEXES}


# The off path and the on path: the database without the indexes, and with them.


def drop_all(*, using: str = "default") -> list[str]:
    """Drop every index in INDEXES that exists; return the names dropped.

    Outside a transaction it uses DROP INDEX CONCURRENTLY: a plain DROP INDEX takes an ACCESS
    EXCLUSIVE lock on the table, and while it waits for that lock behind one slow query, every
    new read of the table queues behind it. CONCURRENTLY waits for running queries without
    blocking new ones. It cannot run inside a transaction block, so in one (the tests, a
    harness that rolls back) the plain form is used: transactional, and undone on rollback.
    """
    connection = connections[using]
    concurrently = not connection.in_atomic_block
    found = {name: state for name, state in _states(using=using).items() if state is not None}
    with connection.cursor() as cursor:
        for name, (schema, _) in found.items():
            cursor.execute(BY_NAME[name].drop_sql(schema, concurrently=concurrently))
    return list(found)


def create_all(*, using: str = "default", concurrently: bool = False) -> list[str]:
    """Create every index in INDEXES that is missing; return the names created.

    A plain CREATE INDEX lets reads go on but blocks writes to the table until it is built:
    0.1–0.2 s each at medium, which a quiet database does not notice. On a busy one, pass
    `concurrently=True` (outside a transaction): writes go on, the build takes two passes over
    the table. A concurrent build that fails leaves an INVALID index behind, which
    IF NOT EXISTS would then skip, so an invalid one is dropped and built again.

    A table that got an expression index is analyzed afterwards (see NamedIndex.expression).
    """
    connection = connections[using]
    if concurrently and connection.in_atomic_block:
        raise ValueError("CREATE INDEX CONCURRENTLY cannot run inside a transaction")
    states = _states(using=using)
    missing = {name: state for name, state in states.items() if state is None or not state[1]}
    created = []
    with connection.cursor() as cursor:
        if missing and connection.in_atomic_block:
            # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: rows written earlier in
            # this transaction have their checks queued until the commit, and PostgreSQL
            # refuses to build an index on a table with queued checks. Run them now, as the
            # commit would, then defer again.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for name, state in missing.items():
            index = BY_NAME[name]
            if state is not None:  # invalid: a failed concurrent build
                cursor.execute(index.drop_sql(state[0], concurrently=concurrently))
            cursor.execute(index.create_sql(concurrently=concurrently))
            created.append(name)
        for table in dict.fromkeys(BY_NAME[n].table for n in created if BY_NAME[n].expression):
            cursor.execute(f"ANALYZE {table}")
    return created


def apply_state(enabled: bool, *, using: str = "default") -> None:
    """Make the database match the toggle: every index present, or none. Idempotent.

    The benchmark calls this before each side of a db_indexes scenario, and with True at the
    end; `manage.py db_indexes on|off` calls the same functions.
    """
    if enabled:
        create_all(using=using)
    else:
        drop_all(using=using)


def in_effect(*, using: str = "default") -> bool:
    """Whether the technique is on in the database: every index present and valid."""
    return all(present(using=using).values())


def present(*, using: str = "default") -> dict[str, bool]:
    """`{index name: True if it exists and is valid}`, in INDEXES order."""
    return {name: state is not None and state[1] for name, state in _states(using=using).items()}


def _states(*, using: str) -> dict[str, tuple[str, bool] | None]:
    """`{index name: (its schema, whether it is valid), or None when absent}`.

    Each index is looked up on its table as the search_path resolves it (`'<table>'::regclass`),
    which is the table the queries read: an index of the same name on a table of the same name
    in another schema on the path is not this table's. (The bench's sample puts a copy of a
    table first on the path; looking the name up alone would find the user's index instead.)
    A failed concurrent build leaves an invalid index behind."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, n.nspname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND c.relname = ANY(%s)",
            [list(dict.fromkeys(index.table for index in INDEXES)), list(BY_NAME)],
        )
        found = {name: (schema, valid) for name, schema, valid in cursor.fetchall()}
    return {name: found.get(name) for name in BY_NAME}
