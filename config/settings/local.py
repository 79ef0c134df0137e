"""Development on your own machine: DEBUG on and the debug toolbar available."""

from config.env import env_bool, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import INSTALLED_APPS, MIDDLEWARE

DEBUG = env_bool("DJANGO_DEBUG", True)

if env_bool("DEBUG_TOOLBAR", True):
    INSTALLED_APPS = [*INSTALLED_APPS, "debug_toolbar"]
    # After the cost and toggle middleware, so X-DB-Queries and Server-Timing keep their place
    # as the outermost measurement and the toolbar sees the request's toggles.
    _after = MIDDLEWARE.index("shop.perf_headers.PerfToggleMiddleware") + 1
    MIDDLEWARE = [
        *MIDDLEWARE[:_after],
        "debug_toolbar.middleware.DebugToolbarMiddleware",
        *MIDDLEWARE[_after:],
    ]
    INTERNAL_IPS = ["127.0.0.1", "::1"]
    # The stock panels, five of them replaced by ones that never record credentials and never
    # read a body the view did not (config/toolbar.py says what each one changes).
    DEBUG_TOOLBAR_PANELS = [
        "config.toolbar.HistoryPanel",
        "debug_toolbar.panels.versions.VersionsPanel",
        "debug_toolbar.panels.timer.TimerPanel",
        "config.toolbar.SettingsPanel",
        "config.toolbar.HeadersPanel",
        "config.toolbar.RequestPanel",
        "config.toolbar.SQLPanel",
        "debug_toolbar.panels.staticfiles.StaticFilesPanel",
        "debug_toolbar.panels.templates.TemplatesPanel",
        "debug_toolbar.panels.alerts.AlertsPanel",
        "config.toolbar.CachePanel",
        "debug_toolbar.panels.signals.SignalsPanel",
        "debug_toolbar.panels.tasks.TasksPanel",
        "debug_toolbar.panels.community.CommunityPanel",
        "debug_toolbar.panels.redirects.RedirectsPanel",
        "debug_toolbar.panels.profiling.ProfilingPanel",
    ]
    DEBUG_TOOLBAR_CONFIG = {"SHOW_TOOLBAR_CALLBACK": "config.toolbar.show_toolbar"}

# Mail goes over real SMTP, to the local stack's SMTP sink unless EMAIL_HOST/EMAIL_PORT say
# otherwise (base.py): sending costs a connection and a round trip, as it will in production.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
