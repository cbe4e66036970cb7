"""The patient page: its sections, the recovery chart drawn from the assessments, the timeline,
and a cost that does not grow with the record."""

import re
from datetime import timedelta

import pytest

from followups import services as followups
from followups.codes import ReminderStatus, VisitStatus
from followups.models import Reminder, TreatmentOutcome, Visit
from tests.admin.conftest import LOGS, at_clinic, days

SECTIONS = (
    "patient-flags",
    "patient-outcomes",
    "patient-demographics",
    "patient-chart",
    "patient-diagnoses",
    "patient-imaging",
    "patient-treatments",
    "patient-assessments",
    "patient-lab-results",
    "patient-visits",
    "patient-reminders",
    "patient-timeline",
)


def page_url(patient) -> str:
    return f"/admin/patients/patient/{patient.pk}/page/"


def marks(html: str, test_id: str) -> list[dict]:
    """The attributes of every element carrying ``data-test=test_id``."""
    found = []
    for tag in re.findall(rf'<[a-z]+ [^>]*data-test="{test_id}"[^>]*>', html):
        found.append(dict(re.findall(r'([a-z-]+)="([^"]*)"', tag)))
    return found


def test_the_page_shows_every_section_to_a_clinician(planted, clinician):
    patient = planted["patient"]

    response = clinician.get(page_url(patient))

    assert response.status_code == 200
    html = response.content.decode()
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    for value in (patient.mrn, patient.family_name, patient.email, "+49 30 1234567", "Not tested"):
        assert value in html
    assert marks(html, "consent")[0]["data-consent"] == "yes"
    for marker in (
        "Orbicularis oculi",
        "CISS",
        "PLANTED-TREATMENT-NOTE",
        "131.5",
    ):
        assert marker in html
    assert "Carbamazepine 400 mg/day" in html
    assert "Orbicularis oculi 15 U, Zygomaticus 5 U" in html


def test_the_flags_and_current_outcomes_are_shown_as_stored(planted, clinician):
    patient = planted["patient"]

    html = clinician.get(page_url(patient)).content.decode()

    flags = {m["data-test"].removeprefix("flag-") for m in marks(html, r"flag-[a-z0-9_]+")}
    assert flags == set(patient.flags.values_list("code", flat=True))
    assert "hla_b1502_missing" in flags
    shown = [m["data-category"] for m in marks(html, "outcome-category")]
    stored = TreatmentOutcome.objects.filter(treatment__patient=patient).order_by("-treatment__started_on")
    assert shown == [o.category for o in stored]
    assert len(shown) == 2


def test_the_chart_has_one_point_per_symptom_log_and_marks_each_treatment(planted, clinician, today):
    patient = planted["patient"]

    html = clinician.get(page_url(patient)).content.decode()

    chart = html[html.index('id="patient-chart"') : html.index('id="patient-diagnoses"')]
    assert "<svg" in chart and "<script" not in chart
    # Every asset the page loads is the project's own (no CDN).
    assert all(
        src.startswith("/static/") for src in re.findall(r'(?:src|href)="([^"#?]+\.(?:js|css))"', html)
    )
    expected = sorted(
        ((today - days(ago)).isoformat(), spasms, grade) for ago, (spasms, grade) in LOGS.items()
    )
    spasms = marks(html, "chart-spasms")
    grades = marks(html, "chart-grade")
    assert [(p["data-date"], p["data-value"]) for p in spasms] == [(on, s) for on, s, _ in expected]
    assert [(p["data-date"], int(p["data-value"])) for p in grades] == [(on, g) for on, _, g in expected]
    # Later is further right; more spasms is higher up (a smaller y).
    xs = [float(p["cx"]) for p in spasms]
    assert xs == sorted(xs)
    by_value = sorted(spasms, key=lambda p: float(p["data-value"]))
    assert [float(p["cy"]) for p in by_value] == sorted((float(p["cy"]) for p in spasms), reverse=True)
    treatments = {m["data-date"] for m in marks(html, "chart-treatment")}
    assert treatments == {planted["toxin"].started_on.isoformat(), planted["course"].started_on.isoformat()}


def test_a_retracted_assessment_leaves_the_chart(planted, clinician):
    retracted = planted["logs"][2]
    followups.assessment_retract(assessment=retracted)

    html = clinician.get(page_url(planted["patient"])).content.decode()

    assert retracted.assessed_on.isoformat() not in {p["data-date"] for p in marks(html, "chart-spasms")}
    assert len(marks(html, "chart-spasms")) == len(LOGS) - 1
    assert "Entered in error" in html


def test_the_timeline_dates_every_kind_of_event_newest_first(planted, clinician):
    html = clinician.get(page_url(planted["patient"])).content.decode()

    events = marks(html, "timeline-event")
    kinds = {e["data-what"] for e in events}
    assert kinds == {"diagnosis", "imaging", "treatment", "assessment", "lab", "visit", "reminder"}
    dates = [e["data-date"] for e in events]
    assert dates == sorted(dates, reverse=True)
    assert planted["diagnosis"].diagnosed_on.isoformat() in {
        e["data-date"] for e in events if e["data-what"] == "diagnosis"
    }


def test_reminders_that_went_nowhere_are_folded_away_not_mixed_into_the_timeline(planted, clinician):
    patient = planted["patient"]
    quiet = Reminder.objects.filter(
        visit__patient=patient, status__in=(ReminderStatus.SKIPPED, ReminderStatus.CANCELLED)
    )
    assert quiet.exists(), "planning leaves skipped reminders behind"
    html = clinician.get(page_url(patient)).content.decode()

    shown = re.findall(r'data-test="timeline-event".*?<a href="#[^"]+">(.*?)</a>', html, re.S)
    folded = re.findall(r'data-test="timeline-quiet-event".*?<a href="#[^"]+">(.*?)</a>', html, re.S)
    assert not [text for text in shown if text.endswith((": skipped", ": cancelled"))]
    assert len(folded) == quiet.count()
    assert '<details class="hfs-fold" data-test="timeline-quiet">' in html
    assert f"<summary>Skipped or cancelled reminders ({quiet.count()})</summary>" in html


def test_the_visits_are_split_upcoming_next_first_then_history_with_actions_in_a_menu(planted, clinician):
    patient = planted["patient"]
    html = clinician.get(page_url(patient)).content.decode()

    def rows(part):
        table = html.split(f'data-test="visits-{part}"', 1)[1].split("</table>", 1)[0]
        return [int(pk) for pk in re.findall(r'<tr id="visit-(\d+)" data-test="visit"', table)]

    upcoming = list(
        patient.visits.filter(status__in=(VisitStatus.PLANNED, VisitStatus.BOOKED))
        .order_by("scheduled_for", "pk")
        .values_list("pk", flat=True)
    )
    assert rows("upcoming") == upcoming and upcoming
    history = patient.visits.filter(status__in=(VisitStatus.COMPLETED, VisitStatus.MISSED))
    assert sorted(rows("history")) == sorted(history.values_list("pk", flat=True))
    first = upcoming[0]
    assert f'<details class="hfs-menu" data-test="visit-{first}-menu">' in html


def test_the_page_of_a_patient_with_no_log_says_so(db, clinician, make_staff):
    from tests.factories import PatientFactory

    patient = PatientFactory()

    html = clinician.get(page_url(patient)).content.decode()

    assert "No symptom log recorded yet." in html
    assert 'data-test="recovery-chart"' not in html


def test_the_change_form_and_the_list_link_to_the_page(planted, clinician):
    patient = planted["patient"]
    url = page_url(patient)

    assert url in clinician.get(f"/admin/patients/patient/{patient.pk}/change/").content.decode()
    assert url in clinician.get("/admin/patients/patient/").content.decode()


def test_an_unknown_patient_is_a_404(db, clinician):
    assert clinician.get("/admin/patients/patient/999999/page/").status_code == 404
    assert clinician.get("/admin/patients/patient/nope/page/").status_code == 404


@pytest.mark.parametrize("extra", [0, 29])
def test_the_page_costs_the_same_whatever_the_length_of_the_record(
    planted, clinician, today, extra, django_assert_max_num_queries
):
    patient = planted["patient"]
    for n in range(extra):
        followups.assessment_record(
            patient=patient, assessed_on=today - days(n), spasms_per_day=str(n), cohen_albert_grade=n % 5
        )
    Visit.objects.bulk_create(
        Visit(
            patient=patient,
            purpose=f"Check {n}",
            scheduled_for=at_clinic(today + timedelta(days=n + 1)),
            window_start=today + timedelta(days=n + 1),
            window_end=today + timedelta(days=n + 1),
            status=VisitStatus.BOOKED,
            source="manual",
        )
        for n in range(extra)
    )

    with django_assert_max_num_queries(22):  # + the contact history
        html = clinician.get(page_url(patient)).content.decode()

    assert len(marks(html, "chart-spasms")) == len(LOGS) + extra


def test_a_clinician_records_every_part_of_the_record_from_the_page_a_nurse_only_measurements(
    planted, clinician, nurse
):
    patient = planted["patient"]
    record_buttons = ("diagnosis-add", "imaging-add", "treatment-add-mvd", "assessment-add", "lab-result-add")
    html = clinician.get(page_url(patient)).content.decode()
    assert [b for b in record_buttons if f'data-test="{b}"' not in html] == []

    html = nurse.get(page_url(patient)).content.decode()
    shown = [b for b in record_buttons if f'data-test="{b}"' in html]
    assert shown == ["assessment-add", "lab-result-add"]


def test_every_page_names_the_clinics_time_zone_and_a_visit_is_named_by_the_clinics_day(
    db, clinician, settings
):
    from django.utils import timezone

    from tests.factories import PatientFactory

    html = clinician.get("/admin/").content.decode()
    assert f"times in {settings.TIME_ZONE} (" in html
    # 00:30 in Berlin is the day before in UTC: the visit is named by the clinic's day.
    patient = PatientFactory()
    day = timezone.localdate() + timedelta(days=20)
    visit = followups.visit_create(patient=patient, purpose="Check", scheduled_for=at_clinic(day, hour=0))
    assert str(visit) == f"Check ({day:%Y-%m-%d}, booked)"


def test_the_front_desk_never_reads_a_cancel_reason_that_names_the_treatment(planted, clinician, front_desk):
    from patients.services import treatment_retract

    patient = planted["patient"]
    treatment_retract(treatment=planted["course"])
    reasons = set(
        patient.visits.filter(status=VisitStatus.CANCELLED)
        .exclude(cancel_reason="")
        .values_list("cancel_reason", flat=True)
    )
    assert reasons, "retracting the course cancels its visits with a reason"

    clinical = clinician.get(page_url(patient)).content.decode()
    desk = front_desk.get(page_url(patient)).content.decode()
    assert all(reason in clinical for reason in reasons)
    assert [reason for reason in reasons if reason in desk] == []
