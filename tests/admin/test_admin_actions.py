"""Actions of the staff panel: each goes through the service the API uses, so the visit moves,
its reminders are re-planned and the outcome follows; a refusal is shown, never a 500."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.utils import timezone

from followups import services as followups
from followups.codes import OutcomeCategory, ReminderKind, ReminderStatus, VisitStatus
from followups.models import Assessment, Reminder, TreatmentOutcome, Visit
from tests.admin.conftest import at_clinic, days
from tests.factories import PatientFactory, diagnosis_for

ZONE = ZoneInfo(settings.CLINIC_TIME_ZONE)


def act_url(visit) -> str:
    return f"/admin/followups/visit/{visit.pk}/act/"


def page_url(patient) -> str:
    return f"/admin/patients/patient/{patient.pk}/page/"


def local_input(when: datetime) -> str:
    return when.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


def open_reminders(visit):
    return sorted(
        (r.kind, r.visit_time, r.status)
        for r in Reminder.objects.filter(
            visit=visit, status__in=(ReminderStatus.PENDING, ReminderStatus.SKIPPED)
        )
    )


def state(visit):
    """Everything an action could change about a visit and its reminders."""
    visit = Visit.objects.get(pk=visit.pk)
    rows = (
        Reminder.objects.filter(visit=visit)
        .order_by("pk")
        .values_list("pk", "status", "due_at", "visit_time")
    )
    return (visit.status, visit.scheduled_for, visit.cancel_reason, visit.sequence, list(rows))


def post(client, visit, action, **fields):
    data = {"action": action, **{f"{action}-{name}": value for name, value in fields.items()}}
    return client.post(act_url(visit), data)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def planned(db, today):
    """A planned visit in 20 days for a patient who consented to e-mail reminders."""
    patient = PatientFactory(email_reminders=True)
    diagnosis_for(patient, diagnosed_on=today - days(30))
    visit = followups.visit_create(
        patient=patient,
        purpose="Check",
        scheduled_for=at_clinic(today + days(20)),
        status=VisitStatus.PLANNED,
    )
    assert [kind for kind, _, status in open_reminders(visit)] == [
        ReminderKind.VISIT_1D,
        ReminderKind.VISIT_7D,
    ]
    return visit


def test_booking_moves_the_visit_and_re_plans_its_reminders(planned, clinician, today):
    when = datetime.combine(today + days(25), time(14, 30), tzinfo=ZONE)

    response = post(clinician, planned, "book", scheduled_for=local_input(when))

    assert response.status_code == 302
    assert response["Location"] == page_url(planned.patient)
    visit = Visit.objects.get(pk=planned.pk)
    assert (visit.status, visit.scheduled_for) == (VisitStatus.BOOKED, when)
    assert {(kind, t) for kind, t, _ in open_reminders(visit)} == {
        (ReminderKind.VISIT_7D, when),
        (ReminderKind.VISIT_1D, when),
    }
    old = Reminder.objects.filter(visit=visit, visit_time=planned.scheduled_for)
    assert {r.status for r in old} == {ReminderStatus.CANCELLED}


def test_rescheduling_a_booked_visit_re_plans_its_reminders_again(planned, clinician, today):
    first = datetime.combine(today + days(25), time(9, 0), tzinfo=ZONE)
    second = datetime.combine(today + days(30), time(16, 15), tzinfo=ZONE)
    followups.visit_book(visit=planned, scheduled_for=first)

    response = post(clinician, planned, "book", scheduled_for=local_input(second))

    assert response.status_code == 302
    visit = Visit.objects.get(pk=planned.pk)
    assert visit.scheduled_for == second and visit.sequence == 2
    assert {t for _, t, _ in open_reminders(visit)} == {second}


@pytest.mark.parametrize(
    ("action", "status", "reminder_kinds"),
    [
        ("complete", VisitStatus.COMPLETED, []),
        ("missed", VisitStatus.MISSED, [ReminderKind.MISSED_VISIT]),
    ],
)
def test_completing_or_missing_a_visit_goes_through_the_service(
    planned, clinician, action, status, reminder_kinds
):
    response = post(clinician, planned, action)

    assert response.status_code == 302
    assert Visit.objects.get(pk=planned.pk).status == status
    assert [kind for kind, _, _ in open_reminders(planned)] == reminder_kinds


def test_cancelling_needs_a_reason_which_the_service_asks_for(planned, clinician):
    before = state(planned)

    refused = post(clinician, planned, "cancel", reason="  ")

    assert refused.status_code == 200
    assert "Say why the visit is cancelled." in refused.content.decode()
    assert state(planned) == before

    response = post(clinician, planned, "cancel", reason="Moved abroad")

    assert response.status_code == 302
    visit = Visit.objects.get(pk=planned.pk)
    assert (visit.status, visit.cancel_reason) == (VisitStatus.CANCELLED, "Moved abroad")
    assert open_reminders(visit) == []


def test_a_forbidden_transition_shows_the_error_and_changes_nothing(planned, clinician):
    followups.visit_complete(visit=planned)
    before = state(planned)

    response = post(clinician, planned, "missed")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-test="visit-act-error"' in html
    assert "A completed visit cannot change any more." in html
    assert state(planned) == before


def test_a_bad_date_is_a_form_error(planned, clinician):
    before = state(planned)

    response = post(clinician, planned, "book", scheduled_for="tomorrow-ish")

    assert response.status_code == 200
    assert "Enter a valid date/time." in response.content.decode()
    assert state(planned) == before


def test_a_date_too_far_ahead_is_refused_by_the_service(planned, clinician, today):
    before = state(planned)

    response = post(clinician, planned, "book", scheduled_for=f"{today.year + 20}-01-10T10:00")

    assert response.status_code == 200
    assert "more than ten years ahead" in response.content.decode()
    assert state(planned) == before


def test_a_missed_visit_is_rebooked(planned, clinician, today):
    followups.visit_mark_missed(visit=planned)
    when = datetime.combine(today + days(3), time(10, 0), tzinfo=ZONE)

    response = post(clinician, planned, "rebook", scheduled_for=local_input(when))

    assert response.status_code == 302
    rebooked = Visit.objects.get(rebooked_from=planned)
    assert (rebooked.status, rebooked.scheduled_for) == (VisitStatus.BOOKED, when)
    assert open_reminders(planned) == []


def test_the_page_offers_the_visit_s_allowed_actions(planned, clinician):
    html = clinician.get(page_url(planned.patient)).content.decode()

    for action in ("book", "complete", "missed", "cancel"):
        assert f'data-test="visit-{planned.pk}-{action}"' in html
    assert f'data-test="visit-{planned.pk}-unbook"' not in html
    assert f'data-test="visit-{planned.pk}-assess"' in html


def test_an_assessment_recorded_at_a_visit_completes_it_and_changes_the_outcome(planted, clinician, today):
    patient = planted["patient"]
    visit = patient.visits.filter(status=VisitStatus.PLANNED).order_by("scheduled_for").first()
    before = TreatmentOutcome.objects.get(treatment=planted["course"]).category
    assert before == OutcomeCategory.IMPROVED
    form = clinician.get(f"/admin/followups/assessment/add/?patient={patient.pk}&visit={visit.pk}")
    assert form.status_code == 200

    response = clinician.post(
        "/admin/followups/assessment/add/",
        {
            "patient": patient.pk,
            "visit": visit.pk,
            "assessed_on": today.isoformat(),
            "spasms_per_day": "0",
            "cohen_albert_grade": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == page_url(patient)
    assessment = Assessment.objects.get(visit=visit)
    assert assessment.spasms_per_day == 0
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED
    assert TreatmentOutcome.objects.get(treatment=planted["course"]).category == OutcomeCategory.CURED
    html = clinician.get(page_url(patient)).content.decode()
    assert 'data-category="cured"' in html


def test_an_assessment_refused_by_the_service_is_a_form_error(planted, clinician, today):
    patient = planted["patient"]
    count = Assessment.objects.count()

    response = clinician.post(
        "/admin/followups/assessment/add/",
        {"patient": patient.pk, "assessed_on": "1900-01-01", "spasms_per_day": "3"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Assessment.objects.count() == count


def test_a_reminder_is_cancelled_and_resent_from_the_page(planned, clinician):
    reminder = Reminder.objects.filter(visit=planned, status=ReminderStatus.PENDING).first()
    url = f"/admin/followups/reminder/{reminder.pk}/act/"

    response = clinician.post(url, {"action": "cancel"})

    assert response.status_code == 302
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.CANCELLED

    clinician.post(url, {"action": "resend"})

    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.PENDING


def test_a_sent_reminder_is_not_cancelled_and_the_refusal_is_a_message(planned, clinician):
    reminder = Reminder.objects.filter(visit=planned).first()
    Reminder.objects.filter(pk=reminder.pk).update(
        status=ReminderStatus.SENT, sent_at=timezone.now(), next_attempt_at=None
    )

    response = clinician.post(f"/admin/followups/reminder/{reminder.pk}/act/", {"action": "cancel"})

    assert response.status_code == 302
    assert any("cannot be cancelled" in m for m in messages_of(response))
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.SENT


def test_the_changelist_actions_cancel_reminders_through_the_service(planned, clinician):
    pending = list(Reminder.objects.filter(visit=planned, status=ReminderStatus.PENDING))

    response = clinician.post(
        "/admin/followups/reminder/",
        {"action": "cancel_selected", "_selected_action": [r.pk for r in pending]},
    )

    assert response.status_code == 302
    assert {r.status for r in Reminder.objects.filter(pk__in=[r.pk for r in pending])} == {
        ReminderStatus.CANCELLED
    }


def test_an_opt_out_skips_the_patient_s_reminders(planned, clinician):
    patient = planned.patient

    response = clinician.post(f"/admin/patients/patient/{patient.pk}/act/", {"action": "opt_out"})

    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.email_reminders is False and patient.email_reminders_consented_at is None
    assert not Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.PENDING).exists()
    assert {s for _, _, s in open_reminders(planned)} == {ReminderStatus.SKIPPED}


def test_archiving_a_patient_goes_through_the_service(planted, clinician):
    patient = planted["patient"]
    assert patient.flags.exists()

    response = clinician.post(f"/admin/patients/patient/{patient.pk}/act/", {"action": "archive"})

    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.archived and patient.archived_at is not None
    assert not patient.flags.exists()
    assert not Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.PENDING).exists()


def test_an_action_is_post_only(planned, clinician):
    assert (
        clinician.get(f"/admin/patients/patient/{planned.patient.pk}/act/?action=archive").status_code == 403
    )
    reminder = Reminder.objects.filter(visit=planned).first()
    assert clinician.get(f"/admin/followups/reminder/{reminder.pk}/act/?action=cancel").status_code == 403
    planned.patient.refresh_from_db()
    assert not planned.patient.archived
