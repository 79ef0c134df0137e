"""`python manage.py devstack up|down|status|env|binaries`: the local stack (see shop/devstack/)."""

from django.core.management.base import BaseCommand, CommandError

from shop.devstack import DevstackError, cli


class Command(BaseCommand):
    help = (
        "Local PostgreSQL primary + streaming replica + Redis under .stack/: "
        "up (idempotent), down [--purge], status, env, binaries."
    )
    # The stack is what the database checks would need: don't run them first.
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        cli.add_actions(parser)

    def handle(self, *args, action, quiet=False, purge=False, **options):
        try:
            status = cli.run(action, quiet=quiet, purge=purge, out=self.stdout)
        except DevstackError as exc:
            raise CommandError(str(exc)) from exc
        if status:
            raise CommandError(f"devstack {action} failed", returncode=status)
