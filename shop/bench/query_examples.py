"""The example values the db_indexes queries are run with, by the bench, EXPLAIN and the Locust
scenario alike. Plain constants, importable without Django's set-up (Locust imports them)."""

SEARCH_EXAMPLE = "kettle"  # medium: 92 of the 9,688 active products (Kettle, Kettlebell)

# The staff filter's example: a status few orders are in, over the last 30 days of the data.
FILTER_STATUS = "placed"  # medium: 4,086 of 100,000 orders; 368 in the last 30 days
FILTER_DAYS = 30
