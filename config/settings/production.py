"""Production: secrets must come from the environment; nothing debug-only is loaded."""

from config.env import BadEnvironment, env_bool, env_str
from config.settings.base import *  # noqa: F403

DEBUG = False
# A header must never change how production runs: ignored whatever the environment says.
PERF_ALLOW_OVERRIDE = False
# Nor does any client learn what a request cost the database (X-DB-Queries, Server-Timing).
PERF_COST_HEADERS = False
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    raise BadEnvironment("DJANGO_SECRET_KEY must be set in production")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
