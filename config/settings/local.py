"""Development on your own machine: DEBUG on and the debug toolbar available."""

from config.env import env_bool
from config.settings.base import *  # noqa: F403
from config.settings.base import INSTALLED_APPS, MIDDLEWARE

DEBUG = env_bool("DJANGO_DEBUG", True)

if env_bool("DEBUG_TOOLBAR", True):
    INSTALLED_APPS = [*INSTALLED_APPS, "debug_toolbar"]
    # After the cost and toggle middleware, so X-DB-Queries and Server-Timing keep their place
    # as the outermost measurement and the toolbar sees the request's toggles.
    _after = MIDDLEWARE.index("shop.middleware.PerfToggleMiddleware") + 1
    MIDDLEWARE = [
        *MIDDLEWARE[:_after],
        "debug_toolbar.middleware.DebugToolbarMiddleware",
        *MIDDLEWARE[_after:],
    ]
    INTERNAL_IPS = ["127.0.0.1", "::1"]
