"""`python manage.py db_indexes on|off|status|explain`: the db_indexes technique's real switch.

The toggle cannot add or remove an index per request, so this command is what changes the
database (and the benchmark calls the same functions). See docs/techniques/db_indexes.md.
"""

from time import perf_counter

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from shop.bench import served_queries
from shop.techniques import db_indexes


class Command(BaseCommand):
    help = (
        "Create (on) or drop (off) the db_indexes technique's indexes, list them (status), or "
        "print EXPLAIN ANALYZE of the queries they serve (explain [QUERY ...])."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["on", "off", "status", "explain"])
        parser.add_argument(
            "queries",
            nargs="*",
            metavar="QUERY",
            help=f"for explain: {', '.join(served_queries.SERVED_QUERIES)} (default: all)",
        )
        parser.add_argument(
            "--concurrently",
            action="store_true",
            help="on: CREATE INDEX CONCURRENTLY, which does not block writes (slower)",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, action: str, queries: list[str], concurrently: bool, **options):
        using = options["database"]
        if queries and action != "explain":
            raise CommandError("query names go with explain only")
        if action == "on":
            started = perf_counter()
            created = db_indexes.create_all(using=using, concurrently=concurrently)
            how = "CREATE INDEX CONCURRENTLY" if concurrently else "CREATE INDEX"
            self._done(f"created {len(created)} ({how})", created, started)
        elif action == "off":
            started = perf_counter()
            dropped = db_indexes.drop_all(using=using)
            self._done(f"dropped {len(dropped)} (DROP INDEX CONCURRENTLY)", dropped, started)
        elif action == "status":
            self._status(using)
        else:
            self._explain(queries or list(served_queries.SERVED_QUERIES), using)

    def _done(self, summary: str, names: list[str], started: float) -> None:
        for name in names:
            self.stdout.write(f"  {name}")
        self.stdout.write(f"{summary} in {perf_counter() - started:.2f} s")

    def _status(self, using: str) -> None:
        present = db_indexes.present(using=using)
        self.stdout.write(
            f"{sum(present.values())} of {len(present)} db_indexes indexes present "
            f"on the {using!r} database"
        )
        for index in db_indexes.INDEXES:
            state = "present" if present[index.name] else "ABSENT "
            self.stdout.write(f"  {state}  {index.name:36} {index.purpose}")
        self.stdout.write(
            "X-Perf-Toggles refuses db_indexes, and PERF_TOGGLES changes no index: "
            "`db_indexes on|off` does."
        )

    def _explain(self, queries: list[str], using: str) -> None:
        unknown = [name for name in queries if name not in served_queries.SERVED_QUERIES]
        if unknown:
            raise CommandError(
                f"unknown query {', '.join(unknown)} "
                f"(known: {', '.join(served_queries.SERVED_QUERIES)})"
            )
        for name in queries:
            index = next(index for index in db_indexes.INDEXES if index.query == name)
            self.stdout.write(self.style.MIGRATE_HEADING(f"{name} ({index.name}): {index.purpose}"))
            try:
                self.stdout.write(served_queries.explain(name, using=using))
            except LookupError as exc:
                raise CommandError(f"{name}: {exc}") from exc
            self.stdout.write("")
