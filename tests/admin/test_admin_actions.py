"""Actions of the staff panel: each goes through the service the API uses, so the visit moves,
its reminders are re-planned and the outcome follows; a refusal is shown, never a 500."""

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.utils import timezone

from followups import services as followups
from followups.codes import OutcomeCategory, ReminderKind, ReminderStatus, VisitStatus
from followups.models import Assessment, Reminder, TreatmentOutcome, Visit
from followups.reminders.planning import EVENT_KINDS, WINDOW_KINDS
from followups.visit_moves import visit_move
from patients import admin as patient_admin
from patients.models import Patient
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
    """A planned visit in 20 days, due within days 15 to 30, for a patient who consented to e-mail
    reminders: not an appointment yet, so the patient is invited to book it (DOMAIN.md 6, 12)."""
    patient = PatientFactory(email_reminders=True)
    diagnosis_for(patient, diagnosed_on=today - days(30))
    visit = followups.visit_create(
        patient=patient,
        purpose="Check",
        scheduled_for=at_clinic(today + days(20)),
        window_start=today + days(15),
        window_end=today + days(30),
        status=VisitStatus.PLANNED,
    )
    assert [kind for kind, _, status in open_reminders(visit)] == [
        ReminderKind.BOOKING_INVITATION,
        ReminderKind.BOOKING_LAST_CALL,
    ]
    return visit


@pytest.fixture
def passed(planned, today):
    """A planned visit of the same patient whose window (the last five days) closed yesterday: it
    can be completed, or marked missed."""
    return followups.visit_create(
        patient=planned.patient,
        purpose="Earlier check",
        scheduled_for=at_clinic(today - days(3)),
        window_start=today - days(5),
        window_end=today - days(1),
        status=VisitStatus.PLANNED,
    )


def test_booking_moves_the_visit_and_re_plans_its_reminders(planned, clinician, today):
    when = datetime.combine(today + days(25), time(14, 30), tzinfo=ZONE)

    response = post(clinician, planned, "book", scheduled_for=local_input(when))

    assert response.status_code == 302
    assert response["Location"] == page_url(planned.patient)
    visit = Visit.objects.get(pk=planned.pk)
    assert (visit.status, visit.scheduled_for) == (VisitStatus.BOOKED, when)
    assert {(kind, t) for kind, t, _ in open_reminders(visit) if kind not in EVENT_KINDS} == {
        (ReminderKind.VISIT_7D, when),
        (ReminderKind.VISIT_1D, when),
    }
    invitations = Reminder.objects.filter(visit=visit, kind__in=WINDOW_KINDS)
    assert {r.status for r in invitations} == {ReminderStatus.CANCELLED}


def test_rescheduling_a_booked_visit_re_plans_its_reminders_again(planned, clinician, today):
    first = datetime.combine(today + days(25), time(9, 0), tzinfo=ZONE)
    second = datetime.combine(today + days(30), time(16, 15), tzinfo=ZONE)
    visit_move(visit=planned, to=VisitStatus.BOOKED, scheduled_for=first)

    response = post(clinician, planned, "book", scheduled_for=local_input(second))

    assert response.status_code == 302
    visit = Visit.objects.get(pk=planned.pk)
    assert visit.scheduled_for == second and visit.sequence == 2
    assert {t for kind, t, _ in open_reminders(visit) if kind not in EVENT_KINDS} == {second}


def test_booking_outside_the_window_asks_and_the_checkbox_confirms(planned, clinician, today):
    when = datetime.combine(today + days(40), time(10, 0), tzinfo=ZONE)
    before = state(planned)

    refused = post(clinician, planned, "book", scheduled_for=local_input(when))

    assert refused.status_code == 200
    html = refused.content.decode()
    assert 'class="errorlist"' in html
    assert "is outside the visit&#x27;s window" in html
    assert "Confirm to book it outside the window anyway." in html
    assert 'name="book-confirm_outside_window"' in html
    assert state(planned) == before

    response = post(clinician, planned, "book", scheduled_for=local_input(when), confirm_outside_window="on")

    assert response.status_code == 302
    visit = Visit.objects.get(pk=planned.pk)
    assert (visit.status, visit.scheduled_for) == (VisitStatus.BOOKED, when)


@pytest.mark.parametrize(
    ("action", "status", "reminder_kinds"),
    [
        ("complete", VisitStatus.COMPLETED, []),
        ("missed", VisitStatus.MISSED, [ReminderKind.MISSED_VISIT]),
    ],
)
def test_completing_or_missing_a_visit_goes_through_the_service(
    passed, clinician, action, status, reminder_kinds
):
    response = post(clinician, passed, action)

    assert response.status_code == 302
    assert Visit.objects.get(pk=passed.pk).status == status
    still_open = open_reminders(passed)
    assert [kind for kind, _, _ in still_open if kind not in WINDOW_KINDS] == reminder_kinds
    # The invitations of a window that had closed were skipped when planned, and never go out.
    assert {status for kind, _, status in still_open if kind in WINDOW_KINDS} <= {ReminderStatus.SKIPPED}


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("complete", "This visit is still ahead: it can be completed from "),
        ("missed", "The visit can still take place until "),
    ],
)
def test_completing_or_missing_a_visit_ahead_is_refused_and_shown(planned, clinician, action, message):
    before = state(planned)

    response = post(clinician, planned, action)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-test="visit-act-error"' in html
    assert message in html
    assert state(planned) == before


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


def test_a_forbidden_transition_shows_the_error_and_changes_nothing(passed, clinician):
    visit_move(visit=passed, to=VisitStatus.COMPLETED)
    before = state(passed)

    response = post(clinician, passed, "missed")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-test="visit-act-error"' in html
    assert "A completed visit can become: booked; not missed." in html
    assert state(passed) == before


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


def test_a_missed_visit_is_rebooked(passed, clinician, today):
    visit_move(visit=passed, to=VisitStatus.MISSED)
    when = datetime.combine(today + days(3), time(10, 0), tzinfo=ZONE)

    response = post(clinician, passed, "rebook", scheduled_for=local_input(when))

    assert response.status_code == 302
    rebooked = Visit.objects.get(rebooked_from=passed)
    assert (rebooked.status, rebooked.scheduled_for) == (VisitStatus.BOOKED, when)
    assert open_reminders(passed) == []


def test_the_page_offers_the_visit_s_allowed_actions(planned, passed, clinician):
    html = clinician.get(page_url(planned.patient)).content.decode()

    # A visit ahead: booked or cancelled, but not completed or missed before its day (v2).
    for action in ("book", "cancel"):
        assert f'data-test="visit-{planned.pk}-{action}"' in html
    for action in ("complete", "missed", "unbook", "correct", "rebook"):
        assert f'data-test="visit-{planned.pk}-{action}"' not in html
    # Recording measurements completes a visit, which a visit ahead cannot be.
    assert f'data-test="visit-{planned.pk}-assess"' not in html
    assert f'data-test="visit-{passed.pk}-assess"' in html
    # A visit whose window has closed: every move of a planned visit.
    for action in ("book", "complete", "missed", "cancel"):
        assert f'data-test="visit-{passed.pk}-{action}"' in html
    assert f'data-test="visit-{passed.pk}-unbook"' not in html


def test_the_page_offers_complete_from_the_visit_s_day_and_missed_once_it_has_passed(
    planned, clinician, today
):
    # Booked for tonight: it can be completed today, but it is not missed before its time.
    tonight = followups.visit_create(
        patient=planned.patient, purpose="Tonight", scheduled_for=at_clinic(today, 23) + timedelta(minutes=30)
    )

    html = clinician.get(page_url(planned.patient)).content.decode()

    assert f'data-test="visit-{tonight.pk}-complete"' in html
    assert f'data-test="visit-{tonight.pk}-missed"' not in html
    assert f'data-test="visit-{tonight.pk}-unbook"' in html


# --- corrections (v2): clinicians and nurses only ----------------------------------------------------

WHY = "Marked by mistake: the patient came."


@pytest.mark.parametrize("role", ["clinician", "nurse", "front_desk"])
@pytest.mark.parametrize("wrong", [VisitStatus.COMPLETED, VisitStatus.MISSED])
def test_the_correct_action_is_offered_to_clinicians_and_nurses_only(request, passed, role, wrong):
    visit_move(visit=passed, to=wrong)
    client = request.getfixturevalue(role)

    act = client.get(act_url(passed)).content.decode()
    page = client.get(page_url(passed.patient)).content.decode()

    offered = role != "front_desk"
    assert ('data-test="visit-act-correct"' in act) is offered
    assert (f'data-test="visit-{passed.pk}-correct"' in page) is offered


@pytest.mark.parametrize("role", ["clinician", "nurse"])
def test_a_clinician_or_nurse_corrects_a_visit_with_a_reason_kept_in_its_history(request, passed, role):
    visit_move(visit=passed, to=VisitStatus.MISSED)
    client = request.getfixturevalue(role)
    before = state(passed)

    refused = post(client, passed, "correct", reason=" ")

    assert refused.status_code == 200
    assert "Say why the visit is corrected." in refused.content.decode()
    assert state(passed) == before

    response = post(client, passed, "correct", reason=WHY)

    assert response.status_code == 302
    assert Visit.objects.get(pk=passed.pk).status == VisitStatus.BOOKED
    latest = Visit.history.filter(id=passed.pk).latest()
    assert (latest.status, latest.history_change_reason) == (
        VisitStatus.BOOKED,
        WHY,
    )


def test_the_front_desk_posting_a_correction_is_refused_and_shown(passed, front_desk):
    visit_move(visit=passed, to=VisitStatus.COMPLETED)
    before = state(passed)

    response = post(front_desk, passed, "correct", reason=WHY)

    assert response.status_code == 200
    assert "Only a clinician or a nurse corrects a visit&#x27;s state." in response.content.decode()
    assert state(passed) == before


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


def test_the_assessment_form_shows_each_scales_anchors_and_offers_only_the_patients_own_visits(
    planted, planned, clinician
):
    patient = planted["patient"]
    form = clinician.get(f"/admin/followups/assessment/add/?patient={patient.pk}")
    html = form.content.decode()
    fields = form.context["adminform"].form.fields

    assert "3 — obvious spasm, mild functional impairment" in html
    assert "II — spread to other muscles of the same side" in html
    assert "VI — total paralysis" in html
    assert dict(fields["smc_grade"].choices)[4] == "IV — disfiguring asymmetry"
    offered = set(fields["visit"].queryset.values_list("pk", flat=True))
    own = set(patient.visits.exclude(status=VisitStatus.CANCELLED).values_list("pk", flat=True))
    assert offered == own and own
    assert planned.pk not in offered  # another patient's visit
    assert 'name="visit"' in html and "vForeignKeyRawIdAdminField" not in html

    # Another patient's visit posted by hand is refused on the field, nothing stored.
    count = Assessment.objects.count()
    response = clinician.post(
        "/admin/followups/assessment/add/",
        {"patient": patient.pk, "visit": planned.pk, "assessed_on": "2026-01-01", "cohen_albert_grade": "2"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["visit"]
    assert Assessment.objects.count() == count


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


def test_archiving_a_patient_asks_first_then_goes_through_the_service_and_can_be_undone(planted, clinician):
    patient = planted["patient"]
    act = f"/admin/patients/patient/{patient.pk}/act/"
    assert patient.flags.exists()
    planned_before = set(
        patient.visits.filter(status=VisitStatus.PLANNED).values_list("purpose", "window_start")
    )

    asked = clinician.post(act, {"action": "archive"})
    assert asked.status_code == 200
    assert b'data-test="archive-confirm"' in asked.content
    patient.refresh_from_db()
    assert not patient.archived

    response = clinician.post(act, {"action": "archive", "confirmed": "yes"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.archived and patient.archived_at is not None
    assert not patient.flags.exists()
    assert not Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.PENDING).exists()
    page = clinician.get(f"/admin/patients/patient/{patient.pk}/page/")
    assert b'data-test="patient-restore"' in page.content
    assert b'data-test="patient-archive"' not in page.content

    assert clinician.post(act, {"action": "restore"}).status_code == 302
    patient.refresh_from_db()
    assert not patient.archived and patient.archived_at is None
    assert patient.flags.exists()
    assert set(patient.visits.filter(status=VisitStatus.PLANNED).values_list("purpose", "window_start")) == (
        planned_before
    )


def test_an_action_is_post_only(planned, clinician):
    assert (
        clinician.get(f"/admin/patients/patient/{planned.patient.pk}/act/?action=archive").status_code == 403
    )
    reminder = Reminder.objects.filter(visit=planned).first()
    assert clinician.get(f"/admin/followups/reminder/{reminder.pk}/act/?action=cancel").status_code == 403
    planned.patient.refresh_from_db()
    assert not planned.patient.archived


def test_archiving_selected_patients_from_the_list_asks_first_naming_each(planted, clinician):
    patient = planted["patient"]
    chosen = {"action": "archive_selected", "_selected_action": [patient.pk]}

    asked = clinician.post("/admin/patients/patient/", chosen)
    assert asked.status_code == 200
    assert b'data-test="archive-selected-confirm"' in asked.content
    assert patient.mrn.encode() in asked.content
    patient.refresh_from_db()
    assert not patient.archived

    done = clinician.post("/admin/patients/patient/", {**chosen, "confirmed": "yes"})
    assert done.status_code == 302
    patient.refresh_from_db()
    assert patient.archived


def test_a_diagnosis_recorded_from_the_patient_page_goes_back_to_it(planted, clinician, today):
    patient = planted["patient"]
    response = clinician.post(
        "/admin/patients/diagnosis/add/",
        {
            "patient": patient.pk,
            "kind": "primary",
            "side": "right",
            "presentation": "typical",
            "status": "provisional",
            "diagnosed_on": today.isoformat(),
            "muscles": ["orbicularis_oculi"],
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    diagnosis = patient.diagnoses.order_by("-pk").first()
    assert response["Location"] == f"{page_url(patient)}#diagnosis-{diagnosis.pk}"


def test_a_diagnosis_added_in_a_popup_closes_the_popup_instead_of_opening_the_patient_page(
    planted, clinician, today
):
    patient = planted["patient"]
    response = clinician.post(
        "/admin/patients/diagnosis/add/?_popup=1",
        {
            "_popup": "1",
            "patient": patient.pk,
            "kind": "primary",
            "side": "left",
            "presentation": "typical",
            "status": "provisional",
            "diagnosed_on": today.isoformat(),
        },
    )
    assert response.status_code == 200
    assert b"popup_response" in response.content or b"data-popup-response" in response.content


def test_archiving_every_patient_a_filtered_list_selects_posts_back_to_that_list(planted, clinician):
    patient = planted["patient"]
    listed = f"/admin/patients/patient/?q={patient.mrn}"
    chosen = {"action": "archive_selected", "_selected_action": [patient.pk], "select_across": "1"}
    asked = clinician.post(listed, chosen)
    assert asked.status_code == 200
    html = asked.content.decode()
    assert f'action="{listed}"' in html and 'name="select_across" value="1"' in html
    assert clinician.post(listed, {**chosen, "confirmed": "yes"}).status_code == 302
    patient.refresh_from_db()
    assert patient.archived


def test_cancelling_a_visit_from_the_patient_page_asks_on_its_own_page_with_the_reason(planned, clinician):
    page = clinician.get(page_url(planned.patient)).content.decode()
    link = (
        re.search(rf'href="([^"]+)"\s+data-test="visit-{planned.pk}-cancel"', page)
        .group(1)
        .replace("&amp;", "&")
    )
    asked = clinician.get(link)
    assert asked.status_code == 200
    assert b'data-test="visit-act-cancel"' in asked.content
    planned.refresh_from_db()
    assert planned.status == VisitStatus.PLANNED

    back = f"{page_url(planned.patient)}#visit-{planned.pk}"
    done = clinician.post(
        act_url(planned), {"action": "cancel", "cancel-reason": "Moved abroad", "next": back}
    )
    assert (done.status_code, done["Location"]) == (302, back)
    planned.refresh_from_db()
    assert planned.status == VisitStatus.CANCELLED


def test_archiving_more_patients_at_once_than_the_action_takes_is_refused_and_archives_nobody(
    planted, clinician, monkeypatch
):
    monkeypatch.setattr(patient_admin, "ARCHIVE_AT_ONCE", 1)
    PatientFactory()
    chosen = {"action": "archive_selected", "_selected_action": [planted["patient"].pk], "select_across": "1"}
    response = clinician.post("/admin/patients/patient/", {**chosen, "confirmed": "yes"}, follow=True)
    assert "archive at most 1 at once" in response.content.decode()
    assert not Patient.objects.filter(archived=True).exists()
