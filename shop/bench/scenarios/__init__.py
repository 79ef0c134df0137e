"""One module per technique, named as its toggle, each defining `SCENARIO`."""
