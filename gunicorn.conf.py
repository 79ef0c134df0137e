"""gunicorn reads this file from the directory it starts in (its default `-c`).

Only one hook: load Django in the master before any worker is forked, so a bad environment
variable (PERF_TOGGLES=nope=off) prints one line and stops the server. Without it each worker
fails on its own, and gunicorn's arbiter answers the second failure with a traceback.
"""

import os


def on_starting(server) -> None:
    import django

    from config.env import BadEnvironment, exit_on_bad_environment

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    try:
        django.setup()
    except BadEnvironment as exc:
        exit_on_bad_environment(exc)
