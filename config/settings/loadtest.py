"""Load tests: production-like (no DEBUG, no toolbar), but reachable on localhost."""

from config.settings.base import *  # noqa: F403

DEBUG = False
