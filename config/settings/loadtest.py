"""Load tests: production-like (no DEBUG, no toolbar), but reachable on localhost."""

from config.env import env_str
from config.settings.base import *  # noqa: F403

DEBUG = False

# Mail goes over real SMTP, to the local stack's SMTP sink unless EMAIL_HOST/EMAIL_PORT say
# otherwise (base.py): sending costs a connection and a round trip, as it will in production.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
