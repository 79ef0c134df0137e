"""The Celery application. Workers: `celery -A config worker -Q default,email,inventory,payment`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("perfshop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
