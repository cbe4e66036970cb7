"""A list's query string is read strictly (issue 20): a parameter given a value it cannot take is a
400 naming it, in the API's error format, never a quiet default or no filter at all.

Every list the router serves is asked with each parameter it reads given empty, twice and (where the
parameter has a form) malformed: ``page_size=AAA`` once gave the default page, ``page_size=0`` too,
``page_size=9999`` fewer rows than asked, and ``?patient=`` every patient's rows. The FHIR searches
answer the same refusals as a 400 OperationOutcome.
"""

from __future__ import annotations

import re

import pytest
from django_filters import filters

from clinic.api import OffsetDateTimeFilter, StrictBooleanFilter
from clinic.api_urls import STANDARD_ACTIONS, router
from tests.api.conftest import API

# The lists of the router, with the viewset that serves each.
LISTS = {
    prefix: viewset
    for prefix, viewset, _ in router.registry
    if "list" in getattr(viewset, "routed_actions", STANDARD_ACTIONS)
}
EMPTY = "Give a value, or leave the parameter out."
# Paged by number (its order is computed), not by cursor.
PAGED_BY_NUMBER = {"worklists/call-list", "worklists/lost-to-follow-up"}


def parameters_of(prefix: str) -> list[str]:
    viewset = LISTS[prefix]
    filterset = viewset.filterset_class
    paging = ["page", "page_size"] if prefix in PAGED_BY_NUMBER else ["cursor", "page_size"]
    names = [*(filterset.base_filters if filterset else ()), *viewset.extra_query_params, *paging]
    return sorted(set(names))


# A value of the parameter's form that is no value of it; a free-text filter (mrn) has none.
MALFORMED_BY_FILTER = (
    (filters.UUIDFilter, "not-a-uuid"),
    (OffsetDateTimeFilter, "yesterday"),
    (filters.DateFilter, "2024-02-30"),
    (filters.ChoiceFilter, "no_such_code"),
    (StrictBooleanFilter, "maybe"),
)
MALFORMED_BY_NAME = {"page_size": "AAA", "page": "AAA", "days": "a week", "code": "no_such_flag"}


def malformed_value(prefix: str, name: str) -> str | None:
    if name in MALFORMED_BY_NAME:
        return MALFORMED_BY_NAME[name]
    filterset = LISTS[prefix].filterset_class
    found = filterset.base_filters.get(name) if filterset else None
    return next((value for kind, value in MALFORMED_BY_FILTER if isinstance(found, kind)), None)


LIST_PARAMETERS = [(prefix, name) for prefix in sorted(LISTS) for name in parameters_of(prefix)]
MALFORMED = [(p, n, malformed_value(p, n)) for p, n in LIST_PARAMETERS if malformed_value(p, n)]


def test_every_list_is_asked_about_its_filters():
    # The tables above must keep up with the lists: an empty table would prove nothing.
    assert {"patients", "visits", "worklists/due", "worklists/call-list", "slots"} <= set(LISTS)
    assert ("visits", "patient") in LIST_PARAMETERS and ("patients", "archived") in LIST_PARAMETERS
    assert {name for _, name, _ in MALFORMED} >= {"patient", "status", "updated_since", "from", "cancelled"}


def refused(response, name: str) -> list[str]:
    assert response.status_code == 400, (name, response.status_code, response.content[:300])
    body = response.json()
    assert name in body, body
    return body[name]


@pytest.mark.parametrize(("prefix", "name"), LIST_PARAMETERS)
def test_a_parameter_given_empty_is_a_400_naming_it(clinician, prefix, name):
    messages = refused(clinician.get(f"{API}{prefix}/", {name: ""}), name)
    assert messages == [EMPTY]


@pytest.mark.parametrize(("prefix", "name"), [(p, n) for p, n in LIST_PARAMETERS if n != "page_size"])
def test_a_blank_filter_is_refused_not_ignored(clinician, prefix, name):
    refused(clinician.get(f"{API}{prefix}/", {name: "  "}), name)


@pytest.mark.parametrize(("prefix", "name", "value"), MALFORMED)
def test_a_malformed_value_is_a_400_naming_the_parameter(clinician, prefix, name, value):
    refused(clinician.get(f"{API}{prefix}/", {name: value}), name)


@pytest.mark.parametrize(("prefix", "name", "value"), MALFORMED)
def test_a_parameter_given_twice_is_a_400(clinician, prefix, name, value):
    # Which of the two would count is anyone's guess: neither does.
    assert refused(clinician.get(f"{API}{prefix}/?{name}=1&{name}=2"), name) == ["Give this parameter once."]


@pytest.mark.parametrize("prefix", sorted(LISTS))
@pytest.mark.parametrize("page_size", ["AAA", "null", "0", "-1", "1.5", "9" * 30])
def test_a_page_size_that_is_no_whole_number_from_1_is_a_400(clinician, prefix, page_size):
    messages = refused(clinician.get(f"{API}{prefix}/", {"page_size": page_size}), "page_size")
    assert messages == ["Give a whole number of rows from 1 (at most 500 a page)."]


@pytest.mark.parametrize("prefix", sorted(LISTS))
def test_a_page_size_from_1_is_taken_and_more_than_500_gives_pages_of_500(clinician, prefix, patient_record):
    for page_size in ("1", "500", "501", "100000"):
        response = clinician.get(f"{API}{prefix}/", {"page_size": page_size})
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["results"]) <= int(page_size)


def test_a_patient_filter_given_empty_no_longer_lists_everyones_rows(clinician, patient_record):
    patient = str(patient_record.patient.uuid)
    assert clinician.get(f"{API}treatments/", {"patient": patient}).status_code == 200
    assert clinician.get(f"{API}treatments/?patient=").json() == {"patient": [EMPTY]}


@pytest.mark.parametrize("prefix", sorted(PAGED_BY_NUMBER))
@pytest.mark.parametrize("page", ["0", "-1", "AAA", "1.5", "100001"])
def test_a_page_that_is_no_page_number_is_a_400_naming_it(clinician, prefix, page):
    assert refused(clinician.get(f"{API}{prefix}/", {"page": page}), "page") == [
        "Give a page number from 1 to 100000."
    ]


def test_a_detail_read_refuses_an_empty_parameter_too(clinician, patient_record):
    path = f"{API}patients/{patient_record.patient.uuid}/"
    assert clinician.get(path, {"format": ""}).json() == {"format": [EMPTY]}


# --- FHIR: the same refusals, as an OperationOutcome -------------------------------------------

FHIR_REFUSED = [
    ("Condition", "patient="),
    ("Condition", "patient=not-a-uuid"),
    ("Observation", "patient=%20"),
    ("Appointment", "patient=Patient/"),
    ("Schedule", "active="),
    ("Schedule", "active=maybe"),
    ("Schedule", "service-type="),
    ("Slot", "start="),
    ("Slot", "start=2024-02-30"),
    ("Slot", "schedule=not-a-uuid"),
    ("Slot", "status=,"),
]


@pytest.mark.parametrize(("resource_type", "query"), FHIR_REFUSED)
def test_a_fhir_search_refuses_a_bad_value_with_an_operation_outcome(clinician, resource_type, query):
    response = clinician.get(f"/fhir/{resource_type}?{query}")
    assert response.status_code == 400, response.content[:300]
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "invalid"
    name = query.split("=")[0]
    assert outcome["issue"][0]["diagnostics"].startswith(f"{name}: ")


@pytest.mark.parametrize("prefix", sorted(LISTS))
def test_options_describes_a_list_whatever_its_query_string(clinician, prefix):
    # OPTIONS reads no query: a parameter the list would refuse is no reason to refuse describing it.
    response = clinician.options(f"{API}{prefix}/?not-a-parameter=1&page_size=AAA")

    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize(
    ("day", "valid"),
    [("2024-02-29", True), ("2000-02-29", True), ("1900-02-29", False), ("2023-02-29", False)],
)
def test_the_schema_s_day_pattern_has_leap_days_as_the_server_does(day, valid):
    # A client generated from the schema could not search 29 February (review finding).
    from followups.fhir_views import DAY_TEXT

    assert bool(re.fullmatch(DAY_TEXT, day)) is valid
