"""Every admin list of patients' data exports as CSV (issue 16): the rows the list shows with its
filters, search and order, all its pages; readable columns; no clinical column for the front
desk, and no clinical list at all; formulas made text; a fixed number of queries; audited."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.utils import timezone

from clinic.admin_csv import csv_value
from clinic.models import AuditEvent
from followups import services as followups
from followups.codes import ContactOutcome, LabTest, VisitStatus
from followups.models import ContactAttempt, Visit
from patients import codes
from patients import services as record
from tests.admin.conftest import CLINICAL_MARKERS, at_clinic, days
from tests.admin.conftest import overdue_visit as overdue_visit_of
from tests.factories import PatientFactory, bulk_patients, diagnosis_for, treatment_for

ZONE = timezone.get_current_timezone_name()


def when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


# Each list: how its row reaches the patient, and a column that tells its rows apart (its header,
# and the value the list's row has there).
LISTS = {
    "patients/patient": (lambda row: row, "Date of birth", lambda row: row.date_of_birth.isoformat()),
    "patients/diagnosis": (lambda row: row.patient, "Diagnosed on", lambda row: row.diagnosed_on.isoformat()),
    "patients/imagingstudy": (
        lambda row: row.patient,
        "Performed on",
        lambda row: row.performed_on.isoformat(),
    ),
    "patients/treatment": (lambda row: row.patient, "Started on", lambda row: row.started_on.isoformat()),
    "followups/visit": (lambda row: row.patient, f"When ({ZONE})", lambda row: when(row.scheduled_for)),
    "followups/assessment": (lambda row: row.patient, "Assessed on", lambda row: row.assessed_on.isoformat()),
    "followups/labresult": (lambda row: row.patient, "Taken on", lambda row: row.taken_on.isoformat()),
    "followups/treatmentoutcome": (
        lambda row: row.treatment.patient,
        "Treatment started on",
        lambda row: row.treatment.started_on.isoformat(),
    ),
    "followups/patientflag": (lambda row: row.patient, "Flag code", lambda row: row.code),
    "followups/reminder": (lambda row: row.visit.patient, f"Due at ({ZONE})", lambda row: when(row.due_at)),
    "followups/contactattempt": (lambda row: row.patient, f"At ({ZONE})", lambda row: when(row.at)),
}
# The lists of the clinical record: the front desk opens neither them nor their exports.
CLINICAL_LISTS = (
    "patients/diagnosis",
    "patients/imagingstudy",
    "patients/treatment",
    "followups/assessment",
    "followups/labresult",
    "followups/treatmentoutcome",
    "followups/patientflag",
)
FRONT_DESK_LISTS = sorted(set(LISTS) - set(CLINICAL_LISTS))


def export_url(changelist: str) -> str:
    return f"/admin/{changelist}/export.csv/"


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    assert response.streaming
    return list(csv.reader(io.StringIO(response.getvalue().decode())))


def as_dicts(table: list[list[str]]) -> list[dict[str, str]]:
    header, *body = table
    return [dict(zip(header, row, strict=True)) for row in body]


def overdue_visit(patient, *, ended_ago=7, purpose="Carbamazepine monitoring") -> Visit:
    return overdue_visit_of(patient, ended_ago=ended_ago, purpose=purpose)


@pytest.fixture
def neighbour(db, today):
    """Another patient with rows in every list, sharing nothing searchable with the planted one."""
    patient = PatientFactory(email_reminders=True, phone="+44 20 7946 0000", mrn="ZZ-998877")
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(400))
    treatment_for(diagnosis, codes.TreatmentKind.MEDICATION, started_on=today - days(380))
    record.imaging_study_record(
        patient=patient,
        diagnosis=diagnosis,
        performed_on=today - days(390),
        modality=codes.ImagingModality.MRI,
    )
    followups.assessment_record(patient=patient, assessed_on=today - days(30), spasms_per_day="4")
    followups.lab_result_record(patient=patient, test=LabTest.SODIUM, taken_on=today - days(25), value="139")
    overdue_visit(patient)
    return patient


@pytest.fixture
def attempts(planted, neighbour, today):
    for ago, patient in enumerate([planted["patient"], neighbour, planted["patient"]], start=1):
        ContactAttempt.objects.create(
            patient=patient,
            at=at_clinic(today - days(ago), 9),
            channel="phone",
            outcome=ContactOutcome.NO_ANSWER,
        )


def list_rows(client, changelist: str, query: dict) -> list:
    """Every row of the list page for ``query``, in its order (all of them on one page)."""
    response = client.get(f"/admin/{changelist}/", {**query, "all": ""})
    assert response.status_code == 200
    changelist_shown = response.context["cl"]
    rows = list(changelist_shown.result_list)
    assert len(rows) == changelist_shown.result_count
    return rows


# --- the rows of the list -----------------------------------------------------------------------


@pytest.mark.parametrize("changelist", sorted(LISTS))
def test_each_export_has_the_rows_of_its_list_in_its_order(
    planted, neighbour, attempts, clinician, changelist
):
    patient_of, key, key_of = LISTS[changelist]

    rows = list_rows(clinician, changelist, {})
    exported = as_dicts(read_csv(clinician.get(export_url(changelist))))

    assert rows, f"{changelist}: the list is empty, the test proves nothing"
    assert [(r["MRN"], r[key]) for r in exported] == [(patient_of(row).mrn, key_of(row)) for row in rows]
    assert {r["Patient"] for r in exported} <= {
        f"{p.given_name} {p.family_name}" for p in (planted["patient"], neighbour)
    }


@pytest.mark.parametrize("changelist", sorted(LISTS))
def test_each_export_keeps_the_lists_search_and_ordering(planted, neighbour, attempts, clinician, changelist):
    patient_of, key, key_of = LISTS[changelist]
    # Part of the neighbour's MRN, sorted by the list's first column, descending.
    query = {"q": "998877", "o": "-1"}

    rows = list_rows(clinician, changelist, query)
    exported = as_dicts(read_csv(clinician.get(export_url(changelist), query)))

    assert rows and {patient_of(row).pk for row in rows} == {neighbour.pk}
    assert [(r["MRN"], r[key]) for r in exported] == [(patient_of(row).mrn, key_of(row)) for row in rows]


def test_the_export_holds_every_page_of_the_list(planted, neighbour, clinician, monkeypatch):
    monkeypatch.setattr(admin.site._registry[Visit], "list_per_page", 5)
    shown = clinician.get("/admin/followups/visit/", {"p": "2"}).context["cl"]
    assert shown.multi_page and len(shown.result_list) == 5

    exported = read_csv(clinician.get(export_url("followups/visit"), {"p": "2"}))

    assert len(exported) - 1 == shown.result_count == Visit.objects.count()


def test_the_overdue_worklist_exports_as_a_file_named_after_it(planted, neighbour, front_desk, today):
    other = PatientFactory(family_name="Aalto", phone="+49 40 555 0101")
    visit = overdue_visit(other, ended_ago=20)

    response = front_desk.get(export_url("followups/visit"), {"worklist": "overdue"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="hfs-visits-overdue-{today.isoformat()}.csv"'
    )
    assert "no-store" in response["Cache-Control"]
    exported = as_dicts(read_csv(response))
    rows = list_rows(front_desk, "followups/visit", {"worklist": "overdue"})
    assert [r["MRN"] for r in exported] == [row.patient.mrn for row in rows]
    assert {other.mrn, neighbour.mrn} <= {r["MRN"] for r in exported}
    row = next(r for r in exported if r["MRN"] == other.mrn)
    assert row == {
        "Patient": f"{other.given_name} Aalto",
        "MRN": other.mrn,
        # A phone starting with "+" would be a formula to a spreadsheet.
        "Phone": "'+49 40 555 0101",
        f"When ({ZONE})": when(visit.scheduled_for),
        "Window start": visit.window_start.isoformat(),
        "Window end": visit.window_end.isoformat(),
        "Status": "Planned",
        "Status code": "planned",
        "Visit kind": "Review",
        "Visit kind code": "review",
        "Source": "Created by staff",
        "Source code": "manual",
    }


def test_the_list_links_its_export_with_its_query_but_not_its_paging(planted, clinician):
    query = {"worklist": "week", "q": "MRN", "p": "1", "all": ""}
    html = clinician.get("/admin/followups/visit/", query).content.decode()

    assert (
        '<a href="/admin/followups/visit/export.csv/?worklist=week&amp;q=MRN" data-test="export-csv">' in html
    )


@pytest.mark.parametrize("changelist", sorted(LISTS))
def test_every_list_links_its_export(planted, clinician, changelist):
    html = clinician.get(f"/admin/{changelist}/").content.decode()

    assert f'<a href="{export_url(changelist)}" data-test="export-csv">Export as CSV</a>' in html


def test_a_lookup_the_list_refuses_sends_back_to_the_list(planted, clinician):
    response = clinician.get(export_url("followups/visit"), {"no_such_field": "1"})

    assert response.status_code == 302
    assert response["Location"] == "/admin/followups/visit/?e=1"


# --- who gets what ------------------------------------------------------------------------------


def test_the_front_desks_visits_carry_the_kind_of_clinic_and_no_purpose(planted, front_desk, clinician):
    table = read_csv(front_desk.get(export_url("followups/visit")))
    text = "\n".join(",".join(row) for row in table)

    assert "Purpose" not in table[0] and "Visit kind" in table[0]
    assert len(table) - 1 == Visit.objects.filter(patient=planted["patient"]).count()
    assert [marker for marker in CLINICAL_MARKERS if marker in text] == []
    assert all(purpose not in text for purpose in Visit.objects.values_list("purpose", flat=True))

    clinical = as_dicts(read_csv(clinician.get(export_url("followups/visit"))))
    assert {r["Purpose"] for r in clinical} == set(Visit.objects.values_list("purpose", flat=True))


@pytest.mark.parametrize("changelist", FRONT_DESK_LISTS)
def test_the_front_desks_exports_carry_nothing_clinical(planted, attempts, front_desk, changelist):
    table = read_csv(front_desk.get(export_url(changelist)))
    text = "\n".join(",".join(row) for row in table)

    assert len(table) > 1
    assert [marker for marker in CLINICAL_MARKERS if marker in text] == []


def test_the_patients_clinical_columns_are_for_clinical_readers(planted, front_desk, clinician):
    (front,) = as_dicts(read_csv(front_desk.get(export_url("patients/patient"))))
    (clinical,) = as_dicts(read_csv(clinician.get(export_url("patients/patient"))))

    assert not any("HLA" in header for header in front)
    assert clinical["At risk (HLA-B*1502 ancestry)"] == "yes"
    assert {k: v for k, v in clinical.items() if k in front} == front
    assert front["Date of birth"] == planted["patient"].date_of_birth.isoformat()
    assert (front["Sex"], front["Sex code"]) == ("Female", "female")


@pytest.mark.parametrize("changelist", CLINICAL_LISTS)
def test_the_front_desk_is_refused_a_clinical_lists_export_as_the_list(planted, front_desk, changelist):
    assert front_desk.get(f"/admin/{changelist}/").status_code == 403
    response = front_desk.get(export_url(changelist))

    assert response.status_code == 403
    assert not response.streaming
    assert not AuditEvent.objects.filter(path=export_url(changelist), status__lt=400).exists()


def test_an_export_needs_a_staff_login(planted, client):
    response = client.get(export_url("patients/patient"))

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- the cells ----------------------------------------------------------------------------------


def test_cells_a_spreadsheet_would_read_as_formulas_are_text(db, clinician):
    patient = PatientFactory(family_name='=HYPERLINK("http://evil.example")', given_name="@Eve", phone="-1")
    diagnosis_for(patient, notes="+SUM(A1:A9)")

    (row,) = as_dicts(read_csv(clinician.get(export_url("patients/patient"))))
    (diagnosis,) = as_dicts(read_csv(clinician.get(export_url("patients/diagnosis"))))

    assert row["Patient"] == '\'@Eve =HYPERLINK("http://evil.example")'
    assert row["Phone"] == "'-1"
    assert diagnosis["Notes"] == "'+SUM(A1:A9)"
    assert diagnosis["Patient"] == row["Patient"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (Decimal("-12.5"), "-12.5"),
        (-3, "-3"),
        ("-3", "'-3"),
        (True, "yes"),
        (None, ""),
        (date(2026, 3, 1), "2026-03-01"),
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "2026-03-29 03:30"),
    ],
)
def test_values_are_written_as_the_clinic_reads_them(value, cell, settings):
    settings.TIME_ZONE = "Europe/Berlin"  # summer time began at 01:00 UTC that day

    assert csv_value(value) == cell


# --- the cost and the audit ---------------------------------------------------------------------


def bulk_visits(count: int, today) -> None:
    """``count`` patients with a visit each, written in two queries."""
    patients = bulk_patients(count, today)
    Visit.objects.bulk_create(
        Visit(
            patient=p,
            purpose="Review",
            scheduled_for=at_clinic(today + days(1 + n % 30)),
            window_start=today,
            window_end=today + days(40),
            status=VisitStatus.PLANNED,
            source="manual",
        )
        for n, p in enumerate(patients)
    )


@pytest.mark.parametrize("count", [5, 3000])
def test_an_export_costs_the_same_whatever_the_length_of_the_list(
    db, clinician, today, count, django_assert_max_num_queries
):
    bulk_visits(count, today)
    listed = clinician.get("/admin/followups/visit/", {"worklist": "week"}).context["cl"].result_count

    # The session, the user and its role; the protocols its filter offers, the list's count, its
    # rows (one cursor, read in chunks); the audit of the rows exported, in one insert.
    with django_assert_max_num_queries(7):
        table = read_csv(clinician.get(export_url("followups/visit"), {"worklist": "week"}))

    assert len(table) - 1 == listed > 0


def test_every_exported_row_is_audited_as_read_with_its_patient(planted, neighbour, attempts, front_desk):
    url = export_url("followups/contactattempt")

    table = read_csv(front_desk.get(url, {"q": "998877"}))

    attempt = ContactAttempt.objects.get(patient=neighbour)
    assert len(table) == 2
    events = AuditEvent.objects.filter(path=url)
    assert [(e.object_id, e.patient_id, e.action, e.resource, e.channel, e.status) for e in events] == [
        (str(attempt.uuid), neighbour.uuid, "read", "contactattempt", "admin", 200)
    ]
    assert events.get().actor == front_desk.get("/admin/").wsgi_request.user.get_username()


def test_a_big_export_is_audited_row_by_row(db, clinician, today):
    bulk_visits(1200, today)
    url = export_url("followups/visit")

    table = read_csv(clinician.get(url))

    assert len(table) - 1 == 1200
    audited = set(AuditEvent.objects.filter(path=url).values_list("object_id", "patient_id"))
    assert audited == {
        (str(uuid), patient) for uuid, patient in Visit.objects.values_list("uuid", "patient__uuid")
    }


def test_an_export_broken_off_is_audited_as_far_as_it_went(db, clinician, today):
    bulk_visits(1200, today)
    url = export_url("followups/visit")
    response = clinician.get(url)

    first = next(iter(response.streaming_content))
    # The client goes: the server closes the stream. The test client's wrapper of the stream
    # closes the response without closing the test's database connection (``response.close()``
    # would close it, and the test's transaction with it).
    response._iterator.close()

    sent = len(first.decode().splitlines()) - 1
    assert 0 < sent < 1200
    assert AuditEvent.objects.filter(path=url).count() == sent
