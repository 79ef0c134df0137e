"""The JSON parser every endpoint uses: DRF's, with one more malformed body it refuses."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, with a body nested too deeply answered as a 400.

    The stdlib decoder recurses once per level of nesting. About 1,000 levels (a 2 kB body of
    `[[[[...`) exceed Python's recursion limit, and the `RecursionError` that follows is not a
    `ValueError`, so DRF would let it through as a 500. No body of this API nests more than a
    few levels.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
