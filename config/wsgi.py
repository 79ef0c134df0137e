import os

from django.core.wsgi import get_wsgi_application

from config.env import BadEnvironment, exit_on_bad_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

try:
    application = get_wsgi_application()
except BadEnvironment as exc:
    try:
        from gunicorn.errors import AppImportError
    except ImportError:
        exit_on_bad_environment(exc)
    # gunicorn prints an AppImportError's message alone and stops. Any other error, SystemExit
    # included, is a traceback per worker, and the arbiter starts new workers again and again.
    raise AppImportError(f"error: {exc}") from None
