"""The API's request bodies: JSON only (API.md), refused with a 400 before any view sees them when
they could not be answered.

Two kinds of JSON parse fine and still break a request later, both found by the security audit
(issue 20):
- a lone UTF-16 surrogate (``"\\ud800"``): Python decodes it into a ``str`` that cannot be encoded
  again, so any error message repeating the value (an unknown choice, an unknown field name) could
  not be rendered;
- nesting far deeper than any resource has: walking it raises ``RecursionError``.
Both are refused here, once, for every endpoint, as a parse error naming what is wrong.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# The deepest body the API takes: a treatment with its detail holding a list of injections is 4.
MAX_DEPTH = 20
NOT_UNICODE = "The body holds text that is not valid Unicode (a lone surrogate)."


def _refuse_unanswerable(value, depth: int = 1) -> None:
    """Walk ``value`` iteratively (no recursion to exhaust) for the two faults above."""
    pending = [(value, depth)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ParseError(NOT_UNICODE) from None
        elif isinstance(item, dict | list):
            if level > MAX_DEPTH:
                raise ParseError(f"The body nests deeper than {MAX_DEPTH} levels.")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)


class CheckedJSONParser(JSONParser):
    """JSON, as DRF parses it, then checked for what could not be answered."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # nesting deep enough to exhaust the decoder itself
            raise ParseError(f"The body nests deeper than {MAX_DEPTH} levels.") from None
        _refuse_unanswerable(data)
        return data
