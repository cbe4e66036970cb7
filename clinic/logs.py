"""Keeping patient data out of the logs that name request paths.

Django logs the path of every 4xx answer ("Not Found: /p/visit/<token>/") and of a refused CSRF
check, and the development server logs every request line. A patient link's token is the patient's
key to their appointment, so paths are logged without it; and a query string carries what staff
searched for (a family name, an MRN), so request lines are logged without it. gunicorn's access
log (clinic.gunicorn) follows the same two rules.
"""

import logging
import re

# The paths that carry a patient's token: the patient pages (under p/) and the opt-out.
LINK_PATH = re.compile(r"(/p/(?:visit|rebook)/|/reminders/opt-out/)[^/\s\"'?]+")
# A path's query string inside a logged request line, up to the space before the protocol.
QUERY_STRING = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")


def hide_link_tokens(text: str) -> str:
    return LINK_PATH.sub(r"\1[token]", text)


def hide_query_strings(text: str) -> str:
    return QUERY_STRING.sub(r"\1?[query]", text)


def _hide_in_paths(text: str) -> str:
    return hide_query_strings(hide_link_tokens(text))


class _Rewrite(logging.Filter):
    """Rewrites a record's message with ``rewrite`` before any handler formats it."""

    rewrite = staticmethod(str)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = self.rewrite(message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


class HideLinkTokens(_Rewrite):
    rewrite = staticmethod(hide_link_tokens)


class HidePaths(_Rewrite):
    """For request lines: both the tokens and the query strings."""

    rewrite = staticmethod(_hide_in_paths)
