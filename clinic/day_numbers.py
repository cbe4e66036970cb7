"""Dates as numbers of days, in SQL and in Python alike, for the date arithmetic of queries.

The ORM spells date arithmetic differently on PostgreSQL and SQLite; a day number (days since
1970-01-01) is an integer on both, so "half the window passed" or "a visit's date less its
series' interval" is plain integer arithmetic between columns.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Func, IntegerField

EPOCH = date(1970, 1, 1)


class DayNumber(Func):
    """A date column as a number of days since 1970-01-01."""

    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(%(expressions)s - DATE '1970-01-01')", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="CAST(julianday(%(expressions)s) - 2440587.5 AS INTEGER)", **extra
        )


def day_number(day: date) -> int:
    """The same for a date in Python."""
    return (day - EPOCH).days
