"""The permission matrix of the API, generated from the URL resolver (issue 5, item 3).

Every route under ``api/`` (``/api/v1/``, the schema and its docs) and ``fhir/`` that the resolver
knows, with every method it serves, has an entry in ``EXPECTED`` below: what kind of data it is
(API.md, "Roles") and whether the method reads or writes it, what a caller who may gets, and which
seeded object fills its path. A route or method the resolver finds without an entry fails, naming it,
so a new route cannot slip in unreviewed; an entry the resolver does not find fails too.

Each route is requested by every caller (every role through real API clients, and anonymous)
with every method, against a patient with a record of every kind built through the services; each
request runs in a savepoint rolled back afterwards, so every caller meets the same record. The
statuses asserted are exact: 401 without credentials (but for the public routes), 403 for a role
API.md does not let read or write the kind, and the success status of the operation otherwise.

What API.md puts out of reach beyond the roles is only what does not exist: there is no per-object
scoping. So the tests below also check that unknown ids, ids of another type of record, and FHIR
resources a row is not (a medication as a Procedure, a reminder never sent as a Communication)
answer 404 to every role that may read the kind (and 403, as before, to one that may not: a refusal
never tells whether the record exists), and that lists filtered by one patient never show another's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from clinic.roles import Kind, Role
from followups.calls.services import contact_attempt_record
from followups.codes import ContactChannel, ContactOutcome
from followups.models import ContactAttempt
from tests.api.conftest import patient_body
from tests.api.seeding import Seeded, aware, seed_record

ANONYMOUS = "anonymous"
CALLERS = (*(role.value for role in Role), ANONYMOUS)
ROUTE_PREFIXES = ("api/", "fhir/")
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")

# --- API.md, "Roles", written out again: the test does not check clinic.roles against itself ------

EVERY_KIND = frozenset(Kind)
MAY_READ = {
    Role.CLINICIAN: EVERY_KIND,  # read and write everything clinical
    Role.NURSE: EVERY_KIND,  # read everything, write visits and assessments
    Role.FRONT_DESK: frozenset({Kind.CONTACT, Kind.VISIT, Kind.REMINDER}),  # clinical answers 403
    Role.INTEGRATION_READ: EVERY_KIND,  # read everything, write nothing
    Role.LAB: frozenset({Kind.LAB_RESULT}),  # v2: lab results only, not even the patient list
}
MAY_WRITE = {
    Role.CLINICIAN: EVERY_KIND,
    # DOMAIN.md: "write visits and assessments"; lab results are of the assessments' kind there.
    Role.NURSE: frozenset({Kind.VISIT, Kind.ASSESSMENT, Kind.LAB_RESULT}),
    Role.FRONT_DESK: frozenset({Kind.CONTACT, Kind.VISIT, Kind.REMINDER}),
    Role.INTEGRATION_READ: frozenset(),
    Role.LAB: frozenset({Kind.LAB_RESULT}),
}
# DOMAIN.md 12: the clinic's sessions are read as visits are, and set by the clinicians and the front
# desk who run the clinic's week; a nurse books visits into them but does not set them.
RUN_SESSIONS = frozenset({Role.CLINICIAN.value, Role.FRONT_DESK.value})

# --- the table --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One method of one route.

    ``kind`` and ``write`` gate it (``kind`` None: public, no credentials needed); ``ok`` is what a
    caller that may gets. ``at`` names the seeded object whose id fills the path, ``query`` and
    ``body`` what the request sends.
    """

    kind: Kind | None
    write: bool = False
    ok: int = 200
    at: Callable[[Seeded], object] | None = None
    query: Callable[[Seeded], dict] | None = None
    body: Callable[[Seeded], dict] | None = None
    # (caller, status) pairs for a caller the role lets in but the service refuses (a 400).
    refused_for: tuple[tuple[str, int], ...] = ()
    # The roles that may, where a route narrows the writers of its kind (the clinic's sessions).
    only: frozenset[str] | None = None
    # A route of no kind that still wants credentials, any role's (the schema and its page, issue
    # 20): what a caller without them gets.
    anonymous: int | None = None

    def expected(self, caller: str) -> int:
        if caller in dict(self.refused_for):
            return dict(self.refused_for)[caller]
        return self.gate(caller)

    def gate(self, caller: str) -> int:
        """What the roles alone answer: ``ok`` to a caller they let in (whatever the service says)."""
        if self.kind is None:
            return self.anonymous if caller == ANONYMOUS and self.anonymous else self.ok
        if caller == ANONYMOUS:
            return 401
        allowed = (MAY_WRITE if self.write else MAY_READ)[Role(caller)]
        if self.only is not None and caller not in self.only:
            return 403
        return self.ok if self.kind in allowed else 403


def reads(kind: Kind | None, at=None, query=None) -> dict[str, Op]:
    """GET, and the HEAD and OPTIONS that answer with the same gate (OPTIONS describes the resource)."""
    return {method: Op(kind, at=at, query=query) for method in ("GET", "HEAD", "OPTIONS")}


def write(kind: Kind, ok: int, body=None, at=None, refused_for=()) -> Op:
    return Op(kind, write=True, ok=ok, at=at, body=body, refused_for=refused_for)


def move(body=None, at=None, refused_for=()) -> dict[str, Op]:
    """A visit move (POST visits/{id}/<move>/): a write of visits answering the visit, and OPTIONS."""
    return {"POST": write(Kind.VISIT, 200, body, at, refused_for), "OPTIONS": Op(Kind.VISIT, at=at)}


def run_sessions(ok: int, body=None, at=None) -> Op:
    """A write of the clinic's week: visits' kind, for clinicians and the front desk only."""
    return Op(Kind.VISIT, write=True, ok=ok, at=at, body=body, only=RUN_SESSIONS)


def fhir_reads(kind: Kind, at=None, query=None) -> dict[str, Op]:
    """A FHIR read or search: GET and HEAD only (FHIR is read-only: any other method, OPTIONS
    included, is a 405 to anyone)."""
    return {"GET": Op(kind, at=at, query=query), "HEAD": Op(kind, at=at, query=query)}


def _id(name: str) -> Callable[[Seeded], object]:
    return lambda seeded: getattr(seeded, name).uuid


def _of_patient(seeded: Seeded) -> dict:
    return {"patient": str(seeded.patient.uuid)}


def _patient_put(seeded: Seeded) -> dict:
    patient = seeded.patient
    return {
        "mrn": patient.mrn,
        "given_name": "Ada",
        "family_name": patient.family_name,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "sex": patient.sex,
        "email": patient.email,
    }


def _diagnosis_body(seeded: Seeded) -> dict:
    return {
        **_of_patient(seeded),
        "kind": "primary",
        "side": "left",
        "diagnosed_on": "2023-03-01",
        "muscles": ["orbicularis_oculi"],
    }


def _imaging_body(seeded: Seeded) -> dict:
    return {**_of_patient(seeded), "performed_on": "2023-05-20", "modality": "mri"}


def _medication_body(seeded: Seeded) -> dict:
    return {
        **_of_patient(seeded),
        "diagnosis": str(seeded.diagnosis.uuid),
        "kind": "medication",
        "started_on": "2023-04-01",
        "medication": {"drug": "clonazepam", "daily_dose_mg": "1.5"},
    }


def _visit_body(seeded: Seeded) -> dict:
    return {**_of_patient(seeded), "purpose": "Review", "scheduled_for": aware(10).isoformat()}


def _assessment_body(seeded: Seeded) -> dict:
    return {**_of_patient(seeded), "assessed_on": "2024-09-01", "spasms_per_day": 4}


def _lab_result_body(seeded: Seeded) -> dict:
    return {**_of_patient(seeded), "test": "sodium", "taken_on": "2024-09-02", "value": "136.0"}


def _attempt_body(seeded: Seeded) -> dict:
    return {
        **_of_patient(seeded),
        "visit": str(seeded.missed_visit.uuid),
        "channel": "phone",
        "outcome": "no_answer",
    }


def _attempt(seeded: Seeded):
    """The id of a contact attempt about the patient's missed visit: recorded on first use, in the
    test's savepoint (the seeded record has none of its own)."""
    found = ContactAttempt.objects.filter(patient=seeded.patient).first()
    if found is None:
        found = contact_attempt_record(
            patient=seeded.patient,
            visit=seeded.missed_visit,
            channel=ContactChannel.PHONE,
            outcome=ContactOutcome.NO_ANSWER,
        )
    return found.uuid


def _template_body(seeded: Seeded) -> dict:
    template = seeded.session_template
    return {
        "label": "Review clinic",
        "weekday": template.weekday,
        "starts_at": "09:00",
        "ends_at": "10:00",
        "visit_kinds": ["review"],
        "valid_from": template.valid_from.isoformat(),
    }


PATIENT, DIAGNOSIS, STUDY = _id("patient"), _id("diagnosis"), _id("imaging_study")
MEDICATION, MVD, ASSESSMENT = _id("medication"), _id("mvd"), _id("assessment")
LAB_RESULT = _id("lab_result")
BOOKED, MISSED, PASSED = _id("booked_visit"), _id("missed_visit"), _id("passed_visit")
FLAG = lambda seeded: seeded.flag_id()  # noqa: E731
SENT, PENDING, CANCELLED = _id("sent_reminder"), _id("pending_reminder"), _id("cancelled_reminder")
TEMPLATE, SESSION, SLOT = _id("session_template"), _id("session"), _id("slot")
C, CL, V, A, R = Kind.CONTACT, Kind.CLINICAL, Kind.VISIT, Kind.ASSESSMENT, Kind.REMINDER
LAB = Kind.LAB_RESULT
V1 = "api/v1/"

EXPECTED: dict[str, dict[str, Op]] = {
    # -- the clinical record
    f"{V1}patients/": {**reads(C), "POST": write(C, 201, lambda s: patient_body())},
    f"{V1}patients/{{id}}/": {
        **reads(C, PATIENT),
        "PUT": write(C, 200, _patient_put, PATIENT),
        "PATCH": write(C, 200, lambda s: {"phone": "+49 30 7654321"}, PATIENT),
        "DELETE": write(CL, 204, at=PATIENT),  # archives: a clinician's decision (issue 20)
    },
    # DOMAIN.md 9: whoever writes contact data ends follow-up; only a clinician resumes it, and the
    # seeded patient's has not ended, so the clinician's resume is the service's 400.
    f"{V1}patients/{{id}}/end-follow-up/": {
        "POST": write(C, 200, lambda s: {"reason": "discharged"}, PATIENT),
        "OPTIONS": Op(C, at=PATIENT),
    },
    f"{V1}patients/{{id}}/resume-follow-up/": {
        "POST": Op(
            C,
            write=True,
            at=PATIENT,
            body=lambda s: {},
            only=frozenset({Role.CLINICIAN.value}),
            refused_for=((Role.CLINICIAN.value, 400),),
        ),
        "OPTIONS": Op(C, at=PATIENT),
    },
    f"{V1}patients/{{id}}/outcomes/": reads(CL, PATIENT),
    f"{V1}patients/{{id}}/flags/": reads(CL, PATIENT),
    f"{V1}diagnoses/": {**reads(CL), "POST": write(CL, 201, _diagnosis_body)},
    f"{V1}diagnoses/{{id}}/": {
        **reads(CL, DIAGNOSIS),
        "PUT": write(CL, 200, _diagnosis_body, DIAGNOSIS),
        "PATCH": write(CL, 200, lambda s: {"notes": "Reviewed."}, DIAGNOSIS),
    },
    f"{V1}imaging-studies/": {**reads(CL), "POST": write(CL, 201, _imaging_body)},
    f"{V1}imaging-studies/{{id}}/": {
        **reads(CL, STUDY),
        "PUT": write(CL, 200, _imaging_body, STUDY),
        "PATCH": write(CL, 200, lambda s: {"report": "No compression."}, STUDY),
    },
    f"{V1}treatments/": {**reads(CL), "POST": write(CL, 201, _medication_body)},
    f"{V1}treatments/{{id}}/": {
        **reads(CL, MEDICATION),
        "PUT": write(CL, 200, _medication_body, MEDICATION),
        "PATCH": write(CL, 200, lambda s: {"notes": "Taken at night."}, MEDICATION),
    },
    # -- follow-up
    f"{V1}visits/": {**reads(V), "POST": write(V, 201, _visit_body)},
    f"{V1}visits/{{id}}/": {
        **reads(V, BOOKED),
        "PATCH": write(V, 200, lambda s: {"status": "cancelled", "cancel_reason": "Moved away."}, BOOKED),
    },
    # The moves of DOMAIN.md 2 (API.md, v2): each legitimate for the visit it addresses. Only a
    # clinician or nurse corrects: the front desk, which writes visits, is refused by the service.
    f"{V1}visits/{{id}}/book/": move(lambda s: {"scheduled_for": aware(20, hour=15).isoformat()}, BOOKED),
    f"{V1}visits/{{id}}/unbook/": move(at=BOOKED),
    f"{V1}visits/{{id}}/complete/": move(at=PASSED),
    f"{V1}visits/{{id}}/missed/": move(at=PASSED),
    f"{V1}visits/{{id}}/cancel/": move(lambda s: {"reason": "Moved away."}, BOOKED),
    f"{V1}visits/{{id}}/correct/": move(
        lambda s: {"status": "booked", "reason": "Marked missed by mistake."},
        MISSED,
        refused_for=((Role.FRONT_DESK.value, 400),),
    ),
    f"{V1}visits/{{id}}/slot-suggestions/": reads(V, BOOKED),
    f"{V1}visits/{{id}}/rebook/": {
        "POST": write(V, 201, lambda s: {"scheduled_for": aware(40).isoformat()}, MISSED),
        "OPTIONS": Op(V, at=MISSED),
    },
    f"{V1}assessments/": {**reads(A), "POST": write(A, 201, _assessment_body)},
    f"{V1}assessments/{{id}}/": {
        **reads(A, ASSESSMENT),
        "PUT": write(A, 200, lambda s: {**_of_patient(s), "assessed_on": "2024-08-20"}, ASSESSMENT),
        "PATCH": write(A, 200, lambda s: {"smc_grade": 1}, ASSESSMENT),
    },
    # API.md v2: written by the lab system, clinicians and nurses; retracted by PATCH, never edited.
    f"{V1}lab-results/": {**reads(LAB), "POST": write(LAB, 201, _lab_result_body)},
    f"{V1}lab-results/{{id}}/": {
        **reads(LAB, LAB_RESULT),
        "PATCH": write(LAB, 200, lambda s: {"status": "entered_in_error"}, LAB_RESULT),
    },
    f"{V1}reminders/": reads(R),
    f"{V1}reminders/{{id}}/": reads(R, SENT),
    f"{V1}reminders/{{id}}/cancel/": {
        "POST": write(R, 200, lambda s: {"reason": "Asked by phone."}, PENDING),
        "OPTIONS": Op(R, at=PENDING),
    },
    f"{V1}reminders/{{id}}/resend/": {"POST": write(R, 200, at=CANCELLED), "OPTIONS": Op(R, at=CANCELLED)},
    # The clinic's week (DOMAIN.md 12): read as visits, written by clinicians and the front desk.
    f"{V1}session-templates/": {**reads(V), "POST": run_sessions(201, _template_body)},
    f"{V1}session-templates/{{id}}/": {
        **reads(V, TEMPLATE),
        "PUT": run_sessions(200, _template_body, TEMPLATE),
        "PATCH": run_sessions(200, lambda s: {"capacity": 3}, TEMPLATE),
    },
    f"{V1}sessions/": reads(V),
    f"{V1}sessions/{{id}}/": reads(V, SESSION),
    f"{V1}sessions/{{id}}/cancel/": {
        "POST": run_sessions(200, lambda s: {"reason": "Public holiday"}, SESSION),
        "OPTIONS": Op(V, at=SESSION),
    },
    f"{V1}slots/": reads(V),
    f"{V1}slots/{{id}}/": reads(V, SLOT),
    f"{V1}worklists/overdue/": reads(V),
    f"{V1}worklists/due/": reads(V, query=lambda s: {"days": "30"}),
    f"{V1}worklists/flagged/": reads(CL),
    # DOMAIN.md 9: the lists of patients to reach are visits' worklists; attempts are contact data,
    # written by whoever writes it (an attempt ending follow-up is an end-follow-up/), never changed.
    f"{V1}worklists/call-list/": reads(V),
    f"{V1}worklists/lost-to-follow-up/": reads(V),
    f"{V1}contact-attempts/": {**reads(C), "POST": write(C, 201, _attempt_body)},
    f"{V1}contact-attempts/{{id}}/": reads(C, _attempt),
    # Clinicians only: a nurse reads flags but does not write clinical records.
    f"{V1}flags/{{id}}/acknowledge/": {
        "POST": write(CL, 200, lambda s: {"note": "Declines imaging for now."}, FLAG),
        "OPTIONS": Op(CL, at=FLAG),
    },
    # -- the contract itself: for any caller with credentials, whatever the role. The page sends a
    # person who is not signed in to the staff login; it is HTML, so it has no OPTIONS.
    "api/schema/": {method: Op(None, anonymous=401) for method in ("GET", "HEAD", "OPTIONS")},
    "api/docs/": {"GET": Op(None, anonymous=302), "HEAD": Op(None, anonymous=302)},
    # -- FHIR R4
    "fhir/metadata": {"GET": Op(None), "HEAD": Op(None)},
    "fhir/Patient/{id}": fhir_reads(C, PATIENT),
    "fhir/Patient/{id}/$everything": fhir_reads(CL, PATIENT),
    "fhir/Condition": fhir_reads(CL, query=_of_patient),
    "fhir/Condition/{id}": fhir_reads(CL, DIAGNOSIS),
    "fhir/Procedure": fhir_reads(CL, query=_of_patient),
    "fhir/Procedure/{id}": fhir_reads(CL, MVD),
    "fhir/MedicationStatement": fhir_reads(CL, query=_of_patient),
    "fhir/MedicationStatement/{id}": fhir_reads(CL, MEDICATION),
    "fhir/Appointment": fhir_reads(V, query=_of_patient),
    "fhir/Appointment/{id}": fhir_reads(V, BOOKED),
    "fhir/Observation": fhir_reads(A, query=_of_patient),
    "fhir/Observation/{id}": fhir_reads(A, lambda s: s.observation_id()),
    "fhir/Communication": fhir_reads(R, query=_of_patient),
    "fhir/Communication/{id}": fhir_reads(R, SENT),
    # The clinic's sessions: nobody's record, read as visits are.
    "fhir/Schedule": fhir_reads(V),
    "fhir/Schedule/{id}": fhir_reads(V, TEMPLATE),
    "fhir/Slot": fhir_reads(V, query=lambda s: {"schedule": str(s.session_template.uuid)}),
    "fhir/Slot/{id}": fhir_reads(V, SLOT),
}

# --- what the resolver serves -----------------------------------------------------------------------

PARAMETER = re.compile(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>")


def route_template(pattern: str) -> str:
    """``api/v1/^patients/(?P<id>[^/.]+)/$`` or ``fhir/Patient/<str:id>`` -> ``.../{id}...``."""
    template = PARAMETER.sub(lambda m: "{" + (m[1] or m[2]) + "}", pattern)
    return template.replace("^", "").replace("$/", "/").removesuffix("$").replace("\\", "")


def served_methods(callback) -> set[str]:
    """The methods a view answers other than with a 405: a viewset's routed actions, a view's handlers,
    HEAD wherever GET is (Django and DRF add it) and OPTIONS (every class-based view has it), of those
    its ``http_method_names`` allow."""
    actions = getattr(callback, "actions", None)
    if actions is not None:
        view_class, methods = callback.cls, set(actions)
    else:
        view_class = callback.view_class
        methods = {name for name in view_class.http_method_names if hasattr(view_class, name)}
    # as_view(http_method_names=...) narrows what one route answers.
    answered = getattr(callback, "view_initkwargs", {}).get("http_method_names", view_class.http_method_names)
    if "get" in methods:
        methods.add("head")
    if hasattr(view_class, "options"):
        methods.add("options")
    return {name.upper() for name in methods if name in answered}


def resolver_routes() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}

    def walk(resolver: URLResolver, prefix: str):
        for entry in resolver.url_patterns:
            pattern = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry, pattern)
            elif isinstance(entry, URLPattern) and route_template(pattern).startswith(ROUTE_PREFIXES):
                found.setdefault(route_template(pattern), set()).update(served_methods(entry.callback))

    walk(get_resolver(), "")
    return found


SERVED = resolver_routes()
ROUTES = sorted(set(SERVED) | set(EXPECTED))
MATRIX_CASES = sum(len(methods) for methods in EXPECTED.values()) * len(CALLERS)


def test_the_resolver_sees_the_routes_of_api_md():
    # The walk itself must work: an empty resolver would make every check below vacuous.
    assert {"api/v1/patients/{id}/", "fhir/Patient/{id}/$everything", "api/schema/"} <= set(SERVED)
    assert SERVED["api/v1/diagnoses/{id}/"] == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH"}
    assert SERVED["fhir/metadata"] == {"GET", "HEAD"}


def test_every_route_and_method_has_an_entry_and_every_entry_a_route():
    missing = sorted(
        f"{method} /{route}"
        for route, methods in SERVED.items()
        for method in methods - set(EXPECTED.get(route, {}))
    )
    stale = sorted(
        f"{method} /{route}"
        for route, ops in EXPECTED.items()
        for method in set(ops) - SERVED.get(route, set())
    )
    assert not missing, f"served, but with no entry in EXPECTED: {missing}"
    assert not stale, f"in EXPECTED, but the resolver serves no such route or method: {stale}"


def test_the_matrix_size_is_recorded():
    # Every route x method the resolver serves is asked by every caller: the count says how many.
    served = sum(len(methods) for methods in SERVED.values())
    print(f"\npermission matrix: {len(SERVED)} routes, {served} route x method pairs, {MATRIX_CASES} cases")
    assert served * len(CALLERS) == MATRIX_CASES


# --- requests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_once(django_db_setup, django_db_blocker):
    """The record, built once for the module in a transaction rolled back after its last test.

    Each test (``db``) runs in a savepoint inside it, so whatever a test changes is undone before
    the next one, which finds the record exactly as built.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield seed_record()
        transaction.set_rollback(True)


@pytest.fixture
def seeded(seeded_once, db) -> Seeded:
    return seeded_once


@pytest.fixture
def callers(api_as) -> dict[str, APIClient]:
    return {**{role.value: api_as(role) for role in Role}, ANONYMOUS: APIClient()}


def path_of(route: str, object_id) -> str:
    if "{id}" in route:
        assert object_id is not None, f"/{route} needs an object to address"
        return "/" + route.replace("{id}", str(object_id))
    return "/" + route


def send(client: APIClient, method: str, path: str, *, query: dict | None = None, body: dict | None = None):
    if query:
        path += "?" + urlencode(query)
    if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return getattr(client, method.lower())(path)
    return getattr(client, method.lower())(path, body or {}, format="json")


def undone(client: APIClient, method: str, path: str, **data):
    """``send`` in a savepoint rolled back afterwards: the next caller finds the record unchanged."""
    with transaction.atomic():
        response = send(client, method, path, **data)
        transaction.set_rollback(True)
    return response


def brief(response) -> str:
    content = response.content[:300].decode(errors="replace") if response.content else ""
    return f"{response.status_code} {content}"


@pytest.mark.parametrize("route", ROUTES)
def test_every_caller_gets_the_status_of_the_matrix(route, seeded, callers):
    if route not in EXPECTED:
        pytest.fail(f"/{route} is served but has no entry in EXPECTED: review its permissions")
    if route not in SERVED:
        pytest.fail(f"/{route} has an entry in EXPECTED but the resolver serves no such route")
    ops = EXPECTED[route]
    if set(ops) != SERVED[route]:
        pytest.fail(f"/{route}: methods served {sorted(SERVED[route])}, in EXPECTED {sorted(ops)}")
    wrong = []
    for method, op in sorted(ops.items()):
        path = path_of(route, op.at(seeded) if op.at else None)
        query = op.query(seeded) if op.query else None
        body = op.body(seeded) if op.body else None
        for caller in CALLERS:
            response = undone(callers[caller], method, path, query=query, body=body)
            if response.status_code != op.expected(caller):
                wrong.append(
                    f"{caller} {method} {path}: expected {op.expected(caller)}, got {brief(response)}"
                )
            elif method == "HEAD":
                assert response.content == b"", f"{caller} HEAD {path} answered a body"
    assert not wrong, "\n".join(wrong)


# What a request with a method the route does not serve may also carry: none of it is read, so none
# of it may turn the 405 into another answer (issue 20: a query string made it a 400).
UNREAD = {"bare": {}, "query": {"query": {"cursor": "x", "unknown": ""}}, "body": {"body": {"x": 1}}}


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_methods_a_route_does_not_serve_are_405(route, seeded, callers):
    """Clinical records are never deleted, reminders are read-only, FHIR is read-only: what the table
    leaves out is refused, to the caller who could otherwise do anything, with the ``Allow`` header
    RFC 9110 asks of a 405, naming what the route does serve."""
    ops = EXPECTED[route]
    at = next((op.at for op in ops.values() if op.at), None)
    path = path_of(route, at(seeded) if at else None)
    wrong = []
    for method in sorted(set(METHODS) - set(ops)):
        for carrying, data in UNREAD.items():
            response = undone(callers[Role.CLINICIAN], method, path, **data)
            allowed = {name.strip() for name in response.get("Allow", "").split(",") if name.strip()}
            if response.status_code != 405 or not allowed or not allowed <= set(ops):
                wrong.append(f"{method} {path} ({carrying}): {brief(response)} Allow: {sorted(allowed)}")
    assert not wrong, "\n".join(wrong)


# --- out of reach: what does not exist, or is not of the type asked for --------------------------


def unknown_ids(route: str, seeded: Seeded) -> list[str]:
    """Ids that address nothing on ``route``: a fresh UUID, one of a record of another type, and (where
    the route takes any string) one that is no UUID at all."""
    foreign = seeded.diagnosis.uuid if "atient" in route else seeded.patient.uuid
    ids = [str(uuid.uuid4()), str(foreign)]
    if not route.startswith(f"{V1}patients/{{id}}/") or route == f"{V1}patients/{{id}}/":
        ids.append("not-a-uuid")
    return ids


DETAIL_ROUTES = sorted(route for route in EXPECTED if "{id}" in route)


@pytest.mark.parametrize("route", DETAIL_ROUTES)
def test_unknown_ids_are_404_to_whoever_may_and_403_to_whoever_may_not(route, seeded, callers):
    wrong = []
    for object_id in unknown_ids(route, seeded):
        path = path_of(route, object_id)
        for method, op in sorted(EXPECTED[route].items()):
            if method == "OPTIONS":  # describes the resource; it reads no record
                continue
            body = op.body(seeded) if op.body else None
            for caller in CALLERS:
                expected = op.gate(caller)
                expected = 404 if expected == op.ok else expected
                response = undone(callers[caller], method, path, body=body)
                if response.status_code != expected:
                    wrong.append(f"{caller} {method} {path}: expected {expected}, got {brief(response)}")
    assert not wrong, "\n".join(wrong)


def test_a_uuid_path_that_is_no_uuid_is_404_to_anyone(seeded, callers):
    # patients/<uuid:id>/outcomes/ and flags/ only match a UUID: anything else is no route at all.
    for caller in CALLERS:
        for tail in ("outcomes", "flags"):
            assert send(callers[caller], "GET", f"/{V1}patients/not-a-uuid/{tail}/").status_code == 404


UNKNOWN = "3f6d2c1e-9b7a-4e52-8d0c-5a1b2c3d4e5f"  # fixed: test ids must be the same on every worker


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        (f"/{V1}visits/0.5/", "application/json", {"detail": "Not found."}),
        (
            f"/{V1}patients/00000000-0000-4000-8000-000000000000/nothing/",
            "application/json",
            {"detail": "Not found."},
        ),
        ("/api/v2/patients/", "application/json", {"detail": "Not found."}),
        ("/fhir/Patient/x/y/z", "application/fhir+json", None),
    ],
)
def test_a_path_that_names_no_route_answers_a_404_in_the_apis_format(path, content_type, body, clinician):
    """What the resolver does not route is a 404 before any view: in JSON under /api/ (the schema's
    404), an OperationOutcome under /fhir/; elsewhere the HTML page."""
    response = clinician.get(path)
    assert (response.status_code, response["Content-Type"]) == (404, content_type)
    if body is not None:
        assert response.json() == body
    else:
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.json()["issue"][0]["code"] == "not-found"
    assert clinician.get("/nothing-here/")["Content-Type"].startswith("text/html")


FHIR_NOT_OF_THIS_TYPE = {
    # A medication is no Procedure, an MVD no MedicationStatement, an unrecorded scale no
    # Observation, a reminder never sent no Communication.
    "Procedure": lambda s: s.medication.uuid,
    "MedicationStatement": lambda s: s.mvd.uuid,
    "Observation": lambda s: f"{s.assessment.uuid}-hfs7",
    "Communication": lambda s: s.pending_reminder.uuid,
    "Appointment": lambda s: s.sent_reminder.uuid,
    "Condition": lambda s: s.imaging_study.uuid,
}


@pytest.mark.parametrize("resource_type", sorted(FHIR_NOT_OF_THIS_TYPE))
def test_fhir_rows_that_are_not_of_the_type_are_404_and_never_searched(resource_type, seeded, callers):
    out_of_reach = str(FHIR_NOT_OF_THIS_TYPE[resource_type](seeded))
    op = EXPECTED[f"fhir/{resource_type}/{{id}}"]["GET"]
    for caller in CALLERS:
        read = send(callers[caller], "GET", f"/fhir/{resource_type}/{out_of_reach}")
        expected = op.expected(caller)
        assert read.status_code == (404 if expected == 200 else expected), (caller, brief(read))
        if expected == 200:
            bundle = send(callers[caller], "GET", f"/fhir/{resource_type}", query=_of_patient(seeded)).json()
            assert bundle["total"] > 0, f"{resource_type}: nothing searched, so nothing proven"
            assert out_of_reach not in {entry["resource"]["id"] for entry in bundle["entry"]}


PATIENT_LISTS = {
    "diagnoses": "patient",
    "imaging-studies": "patient",
    "treatments": "patient",
    "visits": "patient",
    "assessments": "patient",
    "lab-results": "patient",
    "reminders": "patient",
}


@pytest.mark.parametrize("resource", sorted(PATIENT_LISTS))
def test_a_list_filtered_by_a_patient_never_shows_another_patients_rows(resource, seeded, clinician):
    def patients_in(patient) -> set[str]:
        response = clinician.get(f"/{V1}{resource}/", {"patient": str(patient.uuid), "page_size": 500})
        assert response.status_code == 200, brief(response)
        rows = response.json()["results"]
        assert rows, f"{resource}: no rows for the patient, so nothing proven"
        return {row["patient"] for row in rows}

    assert patients_in(seeded.patient) == {str(seeded.patient.uuid)}
    assert patients_in(seeded.other_patient) == {str(seeded.other_patient.uuid)}


@pytest.mark.parametrize("resource_type", ["Condition", "Procedure", "MedicationStatement", "Observation"])
def test_a_fhir_search_never_shows_another_patients_resources(resource_type, seeded, clinician):
    for patient in (seeded.patient, seeded.other_patient):
        bundle = clinician.get(f"/fhir/{resource_type}", {"patient": str(patient.uuid)}).json()
        subjects = {entry["resource"]["subject"]["reference"] for entry in bundle["entry"]}
        assert subjects == {f"Patient/{patient.uuid}"}
