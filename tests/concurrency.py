"""Racing real transactions: each call on a thread, so on a database connection, of its own."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from django.db import connection

THREADS = 8


def run_concurrently(work, count=THREADS):
    """Start `count` calls of work(i) at the same instant, each on its own DB connection, and
    return their results in order (an exception in a call is raised here)."""
    barrier = Barrier(count)

    def call(i):
        try:
            barrier.wait()
            return work(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))
