"""The ASGI entry point: the `asgi` process of the Procfile (uvicorn), which serves the async
views (the shipping estimate, shop/techniques/async_io.py) next to gunicorn's WSGI `web`
process. It serves every URL, as gunicorn does; docs/techniques/async_io.md says why the rest
of the API stays on WSGI."""

import os

from django.core.asgi import get_asgi_application

from config.env import BadEnvironment, exit_on_bad_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

try:
    application = get_asgi_application()
except BadEnvironment as exc:
    exit_on_bad_environment(exc)  # one line and stop, as manage.py does
