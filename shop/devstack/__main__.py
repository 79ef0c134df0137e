"""`python -m shop.devstack up [-q] | down [--purge] | status | env` (the Makefile calls it)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
