"""The Celery application. One worker per queue (Procfile): `celery -A config worker -Q email`.

Every task is a shop.celery_tasks.ShopTask: transient errors retried with backoff, failures
recorded (docs/queues.md). The queues, routes, acks and limits are in config/settings/base.py."""

import os

from celery import Celery, signals

from config.env import BadEnvironment, exit_on_bad_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


class StopOnBadEnvironment:
    """A Celery fix-up, installed before Django's own, that loads Django first in a worker.

    Celery's Django fix-up loads Django in a signal receiver and, when that fails, logs the
    error with its traceback and re-raises it as another traceback. Fix-ups connect their
    receivers in the order they are listed, so this one runs first: a bad environment variable
    (PERF_TOGGLES=nope=off) prints one line and stops the worker. SystemExit passes through
    Celery's signal dispatch, which only catches Exception.
    """

    def __init__(self, app: Celery) -> None:
        signals.import_modules.connect(self.set_up_django, sender=app)

    def set_up_django(self, **kwargs) -> None:
        import django

        try:
            django.setup()
        except BadEnvironment as exc:
            exit_on_bad_environment(exc)


app = Celery(
    "perfshop",
    fixups=["config.celery_app:StopOnBadEnvironment", "celery.fixups.django:fixup"],
    task_cls="shop.celery_tasks:ShopTask",
)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
