"""Finding a patient from the one search box of the staff panel (issue 16).

Staff type what they have in front of them: a name, part of an MRN read off a letter, a phone
number however the caller or the record wrote it, or a birth date in the clinic's or the ISO
format. Every word of the term must match something of the patient; "müller 1968-05-17" narrows
to the Müllers born that day.

On PostgreSQL each way a word can match has an index (migration ``patients 0008``): GIN trigram
indexes on ``UPPER(...)`` of the names, the MRN and the e-mail, which is what Django's
``icontains`` compares (``UPPER(col::text) LIKE UPPER('%word%')``: an index on the bare column is
not used for it, one on ``UPPER(col)`` is), one on the phone's digits (``PhoneDigits``, the very
expression the query compares), and a B-tree on the birth date. A word's alternatives become one
``BitmapOr`` of index scans, so a search at 100,000 patients reads only the matching rows; words
shorter than three characters have no trigram and are compared row by row. SQLite has none of
these indexes: the same query scans the table, slower but the same answer.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from django.db.models import CharField, F, Func, Q, QuerySet, Value
from django.db.models.functions import Replace
from django.db.models.lookups import Contains

# Under every search box that searches this way.
SEARCH_HELP_TEXT = "Name, MRN, phone or birth date"
# The formats a birth date is typed in: ISO, and the day-first ones of the clinic's letters.
BIRTH_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")
# What a person types into a search box is a few words: a longer term (pasted text, a crafted
# URL) is cut, so it cannot make one request build and run a query of thousands of LIKEs.
MAX_TERM_CHARACTERS = 200
MAX_WORDS = 8
# Fewer digits than this would match a good part of every phone book: such a word is not read as
# a phone number (it still matches an MRN containing it).
MIN_PHONE_DIGITS = 4
# A word of nothing but digits and the characters phone numbers are written with: the pieces of
# one number typed with spaces ("+49 (30) 123-4567", "030 / 123 45 67") are read together.
NUMBER_PIECE = re.compile(r"[\d+()\-./]+")
# What separates a phone's digits as people write them; SQLite, which has no REGEXP_REPLACE,
# removes these (PostgreSQL removes every non-digit).
PHONE_SEPARATORS = (" ", "-", "+", "(", ")", ".", "/")


class PhoneDigits(Func):
    """A phone number's digits alone, so that "+49 30 1234567" and "+49 (30) 123-4567" compare equal.

    Computed by the database rather than stored beside the phone: every path that writes a
    patient (services, the demo seed's bulk inserts, an import) gets it right without a second
    column to keep in sync. Migration ``patients 0008`` indexes exactly this expression on
    PostgreSQL; changing it here unindexes the phone search (tests/patients/test_patient_search.py
    catches that).
    """

    function = "REGEXP_REPLACE"
    output_field = CharField()

    def __init__(self, expression):
        super().__init__(expression, Value("[^0-9]"), Value(""), Value("g"))

    def as_sqlite(self, compiler, connection, **extra_context):
        stripped = self.get_source_expressions()[0]
        for separator in PHONE_SEPARATORS:
            stripped = Replace(stripped, Value(separator), Value(""))
        return compiler.compile(stripped)


def birth_date_typed(word: str) -> date | None:
    for pattern in BIRTH_DATE_FORMATS:
        try:
            return datetime.strptime(word, pattern).date()
        except ValueError:
            continue
    return None


def _is_number_piece(word: str) -> bool:
    return bool(NUMBER_PIECE.fullmatch(word)) and birth_date_typed(word) is None


def _is_number(word: str) -> bool:
    return _is_number_piece(word) and any(character.isdigit() for character in word)


def search_words(term: str) -> list[str]:
    """The words of a term, with the pieces of a number typed with spaces joined into one."""
    words: list[str] = []
    for token in term.split():
        if words and _is_number_piece(token) and _is_number_piece(words[-1]):
            words[-1] += token
        else:
            words.append(token)
    return words


def _phone_digits_typed(word: str) -> str:
    # Leading zeros dropped: "0049 30 ..." and "+49 30 ..." give the same digits, and a number
    # dialled inside the country ("030 1234567") is found inside the stored "+49 30 1234567".
    return re.sub(r"\D", "", word).lstrip("0")


def _word_matches(word: str, prefix: str) -> Q:
    # A number is not looked for in the names, which hold none: besides, with the names the
    # planner estimated five long patterns dearer than a scan of the table (180 ms at 100,000
    # patients instead of 10 ms).
    fields = ("mrn", "email") if _is_number(word) else ("given_name", "family_name", "mrn", "email")
    matches = Q()
    for field in fields:
        matches |= Q(**{f"{prefix}{field}__icontains": word})
    born = birth_date_typed(word)
    if born is not None:
        matches |= Q(**{f"{prefix}date_of_birth": born})
        return matches
    digits = _phone_digits_typed(word)
    if len(digits) >= MIN_PHONE_DIGITS:
        matches |= Q(Contains(PhoneDigits(F(f"{prefix}phone")), digits))
    return matches


def patients_matching(queryset: QuerySet, term: str, *, prefix: str = "") -> QuerySet:
    """The rows of ``queryset`` whose patient matches every word of ``term``.

    ``queryset`` holds patients, or rows with a patient (``prefix="patient__"``); each condition is
    on the patient's own row, so no row is repeated and no DISTINCT is needed.
    """
    words = search_words(term[:MAX_TERM_CHARACTERS])[:MAX_WORDS]
    if not words:
        return queryset
    wanted = Q()
    for word in words:
        wanted &= _word_matches(word, prefix)
    return queryset.filter(wanted)


class SearchByPatient:
    """An admin list whose rows each belong to one patient, searched as the patient list is: one
    box, the same words, on every list (issue 16). ``patient_path`` is the way from a row to its
    patient. ``search_fields`` only makes the admin show the box; no row repeats, as each has
    one patient, so no DISTINCT."""

    patient_path = "patient__"
    search_fields = ("=patient__mrn",)
    search_help_text = SEARCH_HELP_TEXT

    def get_search_results(self, request, queryset, search_term):
        return patients_matching(queryset, search_term, prefix=self.patient_path), False
