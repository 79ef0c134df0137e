"""`python -m shop.procfile [...]`: see `shop.procfile.cli`."""

import sys

from shop.procfile.cli import main

if __name__ == "__main__":
    sys.exit(main())
