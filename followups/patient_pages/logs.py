"""Keeping the patients' link tokens out of the logs.

Django logs the path of every 4xx answer ("Not Found: /p/visit/<token>/") and of a refused CSRF
check; a token is the patient's key to their appointment, so the logs get the path without it.
"""

import logging
import re

# The paths that carry a patient's token: the patient pages (under p/) and the opt-out.
LINK_PATH = re.compile(r"(/p/(?:visit|rebook)/|/reminders/opt-out/)[^/\s\"']+")


class HideLinkTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = LINK_PATH.sub(r"\1[token]", message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True
