"""The product list's largest page, 100 rows: without the technique, each row also brings its
2-4 kB description, which the list never shows."""

from shop.bench import holds
from shop.bench.scenario import Call, Scenario

SCENARIO = Scenario(
    name="field_selection",
    title="product list, 100 rows, without the description",
    call=lambda: Call("GET", "/api/products/?page_size=100"),
    memory=True,  # the descriptions are decoded into Python strings, then dropped
    db_bytes=True,  # what the technique changes: the bytes PostgreSQL sends to Python
    # Model instances: fast_serialization's values() reads only the shown columns either way.
    hold=holds.FIELD_SELECTION,
    notes="The responses are the same size: the difference is what PostgreSQL sends to Python, "
    "the bytes column's 'from the db' figures, counted in every run from psycopg's result "
    "lengths. fast_serialization is held off: its values() rows read only the shown columns, "
    "field_selection or not.",
)
