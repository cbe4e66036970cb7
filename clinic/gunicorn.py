"""gunicorn's settings for the web process (``gunicorn -c python:clinic.gunicorn``).

The access log names the path of every request, never its query string: the staff's searches
(``?q=<family name>``, ``?patient=<MRN>``) and filters would otherwise put patients' names and MRNs
in the web server's log, which is kept and shipped with far less care than the database. Paths
that carry a patient link's token (``/p/visit/<token>/``) are logged with the token hidden, as the
application's own log does. The referrer (a full URL, query string included) is not logged either.
"""

from gunicorn.glogging import Logger

from clinic.logs import hide_link_tokens

accesslog = "-"
# Address, time, method, path (no query string), protocol, status, bytes, milliseconds, agent.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
# Blanked whatever the format: a changed format cannot bring a query string back.
QUERY_BEARING_ATOMS = ("r", "q", "f")


class AccessLogWithoutQueries(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = hide_link_tokens(atoms.get("U") or "")
        for name in QUERY_BEARING_ATOMS:
            atoms[name] = "-"
        # Request headers are atoms too ({referer}i): none of them is needed in the log.
        for name in [key for key in atoms if key.endswith("}i")]:
            atoms[name] = "-"
        return atoms


logger_class = AccessLogWithoutQueries
