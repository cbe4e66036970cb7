"""FHIR R4 search result parameters (issue 19): ``_count`` paging, ``_summary=count``, ``_total``,
``_sort`` by date, ``_elements``; ``$everything``'s ``_since`` and ``_type``; lenient handling.

Nothing here touches the database: a search builds its resources (``followups.fhir_views``), and
this module orders, subsets and pages them. The order is stable (the sort key, then the resource
id), so a page's ``next`` link, which carries ``_offset``, walks every match exactly once while the
record does not change between pages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from urllib.parse import urlencode

from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import exceptions

COUNT = "_count"
OFFSET = "_offset"  # our own: where a page starts in the ordered matches (the next links carry it)
SUMMARY = "_summary"
TOTAL = "_total"
SORT = "_sort"
ELEMENTS = "_elements"
SINCE = "_since"
TYPE = "_type"
RESULT_PARAMS = (COUNT, OFFSET, SUMMARY, TOTAL, SORT, ELEMENTS)
EVERYTHING_PARAMS = (SINCE, TYPE, COUNT, OFFSET)
MAX_COUNT = 1000  # a larger _count is served as this many (the spec lets a server cap page sizes)
SUMMARIES = ("count", "false")
TOTALS = ("none", "estimate", "accurate")
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}

# Per type: the R4 search parameter of its date, and where the date is in the resource (first found).
DATE_OF: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "Condition": ("recorded-date", (("recordedDate",),)),
    "Procedure": ("date", (("performedDateTime",), ("performedPeriod", "start"))),
    "MedicationStatement": ("effective", (("effectiveDateTime",), ("effectivePeriod", "start"))),
    "Appointment": ("date", (("start",),)),
    "Observation": ("date", (("effectiveDateTime",), ("effectivePeriod", "start"))),
    "Communication": ("sent", (("sent",),)),
    "Slot": ("start", (("start",),)),
    "Schedule": ("date", (("planningHorizon", "start"),)),
}

# Elements of min cardinality 1 in R4: kept whatever ``_elements`` says.
MANDATORY = {
    "Condition": ("subject",),
    "Procedure": ("status", "subject"),
    "MedicationStatement": ("status", "medicationCodeableConcept", "medicationReference", "subject"),
    # start and end too: R4's app-3 lets only a proposed or cancelled appointment go without them.
    "Appointment": ("status", "participant", "start", "end"),
    "Observation": ("status", "code"),
    "Communication": ("status",),
    "Slot": ("schedule", "status", "start", "end"),
    "Schedule": ("actor",),
    "Patient": (),
}
ALWAYS = ("resourceType", "id", "meta")
# Choice elements (``x[x]``): ``_elements=effective`` keeps effectiveDateTime or effectivePeriod.
CHOICES = ("onset", "abatement", "performed", "medication", "effective", "value", "deceased", "multipleBirth")

ELEMENT_TEXT = "([A-Z][A-Za-z]*\\.)?[a-z][A-Za-z0-9]*"
ELEMENTS_SCHEMA = {"type": "string", "pattern": f"^{ELEMENT_TEXT}(,{ELEMENT_TEXT})*$"}
NUMBER_SCHEMA = {"type": "integer", "minimum": 0}
# A day that is one in any year (29 February aside), from year 1, as ``parse_date`` takes it.
DAY_TEXT = (
    "(([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-"
    "((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
    # 29 February of a leap year (every fourth, centuries only every fourth century).
    "|([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)-02-29)"
)
# An instant, as ``_since`` takes it: a day, a time to the second (or finer), and its offset.
INSTANT_TEXT = (
    f"{DAY_TEXT}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{{1,6}})?"
    "(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
INSTANT_SCHEMA = {"type": "string", "pattern": f"^{INSTANT_TEXT}$"}


def _refused(name: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({name: [message]})


def _one(query, name: str) -> str | None:
    values = query.getlist(name)
    if len(values) > 1:
        raise _refused(name, "Give it once.")
    return values[0] if values else None


def _number(query, name: str) -> int | None:
    value = _one(query, name)
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]+", value):
        raise _refused(name, "Give a whole number, 0 or more.")
    return int(value)


def sort_names(resource_type: str) -> list[str]:
    """The ``_sort`` values a search of the type takes: ``date``, its date parameter, descending."""
    names = dict.fromkeys(["date", DATE_OF[resource_type][0]])
    return [*names, *(f"-{name}" for name in names)]


@dataclass(frozen=True)
class Result:
    """What the result parameters of one search ask for."""

    count: int | None = None
    offset: int = 0
    summary_count: bool = False
    total: str | None = None
    descending: bool | None = None  # None: no _sort
    elements: tuple[str, ...] | None = None

    @classmethod
    def of(cls, query, resource_type: str) -> Result:
        count = page_count(query)
        summary = _one(query, SUMMARY)
        if summary is not None and summary not in SUMMARIES:
            raise _refused(SUMMARY, f"Give one of: {', '.join(SUMMARIES)}.")
        total = _one(query, TOTAL)
        if total is not None and total not in TOTALS:
            raise _refused(TOTAL, f"Give one of: {', '.join(TOTALS)}.")
        sort = _one(query, SORT)
        if sort is not None and sort not in sort_names(resource_type):
            raise _refused(SORT, f"Sort by {', '.join(sort_names(resource_type))} only.")
        elements = _one(query, ELEMENTS)
        if elements is not None:
            names = elements.split(",")
            if not all(re.fullmatch(ELEMENT_TEXT, name) for name in names):
                raise _refused(ELEMENTS, "Give element names, separated by commas.")
            elements = tuple(name.rpartition(".")[2] for name in names)
        return cls(
            count=count,
            offset=page_offset(query),
            summary_count=summary == "count",
            total=total,
            descending=None if sort is None else sort.startswith("-"),
            elements=elements,
        )


def page_count(query) -> int | None:
    """``_count``, at most ``MAX_COUNT``; None when not asked."""
    count = _number(query, COUNT)
    return None if count is None else min(count, MAX_COUNT)


def page_offset(query) -> int:
    return _number(query, OFFSET) or 0


def _moment(value) -> datetime | None:
    """A FHIR date or dateTime as an aware datetime (a day as its start in UTC); None if none."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = None if day is None else datetime.combine(day, time.min)
    except ValueError:
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def date_of(resource: dict) -> datetime | None:
    for path in DATE_OF.get(resource["resourceType"], ("", ()))[1]:
        value = resource
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if (moment := _moment(value)) is not None:
            return moment
    return None


def ordered(resources: Sequence, result: Result, *, resource_of=lambda item: item) -> list:
    """The matches in a stable order: as found (each source's rows are ordered), or by date when
    ``_sort`` asks (undated last, ties as found)."""
    by_id = list(resources)
    if result.descending is None:
        return by_id
    dated = [item for item in by_id if date_of(resource_of(item)) is not None]
    undated = [item for item in by_id if date_of(resource_of(item)) is None]
    dated.sort(key=lambda item: date_of(resource_of(item)), reverse=result.descending)
    return dated + undated


def subsetted(resource: dict, elements: tuple[str, ...]) -> dict:
    """``resource`` with only the ``elements`` asked for, the mandatory ones, and a SUBSETTED tag."""
    wanted = {*elements, *ALWAYS, *MANDATORY.get(resource["resourceType"], ())}

    def kept(name: str) -> bool:
        if name in wanted:
            return True
        return any(
            name.startswith(root) and name[len(root) :][:1].isupper() for root in CHOICES if root in wanted
        )

    found = {name: value for name, value in resource.items() if kept(name)}
    meta = dict(found.get("meta", {}))
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    found["meta"] = meta
    return found


def prefers_lenient(request) -> bool:
    """``Prefer: handling=lenient`` (RFC 7240; FHIR R4 search, 3.1.1.4)."""
    prefer = request.headers.get("Prefer", "")
    tokens = {token.strip().lower().replace(" ", "") for token in re.split(r"[,;]", prefer)}
    return "handling=lenient" in tokens


def page_links(
    url: str, pairs: list[tuple[str, str]], *, offset: int, count: int | None, total: int
) -> list[dict]:
    """``self`` and, when ``_count`` pages, ``first``, ``previous`` and ``next``: the same search
    (``pairs``, the parameters used) at another ``_offset``."""
    kept = [(name, value) for name, value in pairs if name != OFFSET]

    def at(start: int) -> str:
        query = [*kept, (OFFSET, str(start))] if start else kept
        return f"{url}?{urlencode(query)}" if query else url

    links = [{"relation": "self", "url": at(offset)}]
    if count is None or count == 0:
        return links
    links.append({"relation": "first", "url": at(0)})
    if offset > 0:
        links.append({"relation": "previous", "url": at(max(0, min(offset, total) - count))})
    if offset + count < total:
        links.append({"relation": "next", "url": at(offset + count)})
    return links


def page(items: list, *, offset: int, count: int | None) -> list:
    return items[offset:] if count is None else items[offset : offset + count]


def since_param(query) -> datetime | None:
    value = _one(query, SINCE)
    if value is None:
        return None
    try:
        moment = parse_datetime(value) if re.fullmatch(INSTANT_TEXT, value) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _refused(SINCE, "Give an instant with its time zone (YYYY-MM-DDThh:mm:ss+zz:zz or Z).")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def types_param(query, served: Sequence[str]) -> set[str] | None:
    value = _one(query, TYPE)
    if value is None:
        return None
    types = set(value.split(","))
    if not types <= set(served):
        raise _refused(TYPE, f"Give resource types among: {', '.join(served)}.")
    return types


def changed_since(resource: dict, since: datetime) -> bool:
    """Whether the resource changed at or after ``since``; one that keeps no time of change is kept."""
    last = _moment(resource.get("meta", {}).get("lastUpdated"))
    return last is None or last >= since
