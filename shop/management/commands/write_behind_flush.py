"""`python manage.py write_behind_flush`: add the product views counted in Redis to
PostgreSQL once, then exit (shop/techniques/write_behind.py, `flush()`). Beat runs the same
flush every WRITE_BEHIND_FLUSH_EVERY_S (catalog.tasks.write_behind_flush); this is for a
deploy script, a cron without Celery, or to look at what is waiting."""

import redis
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from shop.techniques import write_behind


class Command(BaseCommand):
    help = "Add the product views counted in Redis to PostgreSQL (write_behind), once."

    def handle(self, *args, **options):
        try:
            done = write_behind.flush()
        except (redis.RedisError, DatabaseError) as exc:
            raise CommandError(
                f"flush failed ({type(exc).__name__}: {exc}); what was cut stays pending"
            ) from exc
        self.stdout.write(
            f"added {done.views} views of {done.products} products "
            f"({done.applied} batches applied, {done.already_applied} found already applied)"
        )
