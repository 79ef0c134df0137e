#!/usr/bin/env python
"""Django's command-line utility for PerfShop."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line

    from config.env import BadEnvironment, exit_on_bad_environment

    try:
        execute_from_command_line(sys.argv)
    except BadEnvironment as exc:
        exit_on_bad_environment(exc)


if __name__ == "__main__":
    main()
