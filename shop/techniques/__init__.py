"""One module per technique, named as in the catalog. Each registers its toggle on import and
keeps the naive (off) and optimized (on) code side by side."""
