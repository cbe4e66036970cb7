"""Ending and resuming a patient's follow-up (DOMAIN.md section 9): what ends, what is kept, what
``deceased`` withdraws, and the protocols planning again on resume."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from clinic.roles import Role
from followups import booking, services
from followups.calls.follow_up_end import follow_up_end, follow_up_resume
from followups.codes import ReminderStatus, VisitStatus
from followups.models import Reminder, Visit
from followups.selectors import worklist_due, worklist_overdue
from followups.tasks import followups_daily
from patients.codes import FollowUpEndReason
from tests.factories import PatientFactory, diagnosis_for
from tests.followups.conftest import days, live, record_toxin


@pytest.fixture
def followed(db, today):
    """A consenting patient after a toxin session of today: two protocol visits ahead (reminded),
    a manual visit booked ahead, and last month's review attended."""
    patient = PatientFactory(given_name="Ada", email="ada.end@patients.example", email_reminders=True)
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(60))
    record_toxin(diagnosis, today)
    manual = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=timezone.now() + days(20), status=VisitStatus.BOOKED
    )
    return patient, manual


def open_ahead(patient):
    return Visit.objects.filter(patient=patient, status__in=(VisitStatus.PLANNED, VisitStatus.BOOKED))


def test_ending_follow_up_cancels_every_visit_ahead_and_its_reminders_and_keeps_the_record(followed, today):
    patient, manual = followed
    ahead = list(open_ahead(patient).values_list("pk", flat=True))
    assert len(ahead) >= 3
    history, visits = patient.history.count(), Visit.objects.filter(patient=patient).count()

    follow_up_end(patient=patient, reason=FollowUpEndReason.MOVED_AWAY, on=today)

    patient.refresh_from_db()
    assert (patient.follow_up_ended_on, patient.follow_up_end_reason) == (today, "moved_away")
    assert patient.email_reminders is True  # moving away withdraws nothing
    cancelled = Visit.objects.filter(pk__in=ahead)
    assert set(cancelled.values_list("status", flat=True)) == {VisitStatus.CANCELLED}
    assert set(cancelled.values_list("cancel_reason", flat=True)) == {"Follow-up ended: Moved away."}
    assert Visit.objects.filter(patient=patient).count() == visits  # nothing deleted
    assert not Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.PENDING).exists()
    assert patient.history.count() == history + 1
    assert patient.history.first().history_change_reason == "Follow-up ended: Moved away."


def test_a_patient_whose_follow_up_ended_reaches_no_worklist_plan_or_reminder(followed, today):
    patient, manual = followed
    follow_up_end(patient=patient, reason=FollowUpEndReason.DISCHARGED, on=today)

    # Nothing is booked for the patient until a clinician resumes follow-up, not even by hand.
    with pytest.raises(ValidationError) as refused:
        services.visit_create(patient=patient, purpose="Review", scheduled_for=timezone.now() + days(10))
    assert refused.value.message_dict == {
        "patient": ["This patient's follow-up has ended: a clinician resumes it before a visit is booked."]
    }
    assert not worklist_due(days=30).filter(patient=patient).exists()
    assert not worklist_overdue().filter(patient=patient).exists()
    # The nightly run leaves the patient alone: no series rolled forward, no flag raised.
    before = Visit.objects.filter(patient=patient).count()
    assert followups_daily()["refreshed"] == 0
    assert Visit.objects.filter(patient=patient).count() == before
    assert not patient.flags.exists()


def test_deceased_also_withdraws_e_mail_consent(followed, today):
    patient, _ = followed

    follow_up_end(patient=patient, reason=FollowUpEndReason.DECEASED, on=today - days(2))

    patient.refresh_from_db()
    assert (patient.email_reminders, patient.email_reminders_consented_at) == (False, None)
    assert patient.follow_up_ended_on == today - days(2)


def test_a_booked_place_is_given_back_when_follow_up_ends(db, today):
    from followups.models import Slot
    from tests.followups.test_booking import template

    patient = PatientFactory()
    toxin = record_toxin(diagnosis_for(patient, diagnosed_on=today - days(30)), today)
    template(weekday=(today + days(90)).weekday(), kinds=["injection"], valid_from=today, label="Injections")
    booking.sessions_generate(today=today)
    visit = live(toxin)[1]
    slot = booking.slot_suggestions(visit=visit)[0].slot
    from followups.visit_moves import visit_move

    visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot)

    follow_up_end(patient=patient, reason=FollowUpEndReason.TRANSFERRED)

    visit.refresh_from_db()
    assert (visit.status, visit.slot_id, Slot.objects.get(pk=slot.pk).booked) == (
        VisitStatus.CANCELLED,
        None,
        0,
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"reason": "bored"}, {"reason"}),
        ({"reason": "moved_away", "on": "tomorrow"}, {"on"}),
    ],
)
def test_a_bad_end_is_refused_and_nothing_changes(followed, fields, expected, today):
    patient, _ = followed
    fields = {"on": today + days(1) if fields.get("on") == "tomorrow" else None, **fields}
    if fields["on"] is None:
        del fields["on"]
    before = list(open_ahead(patient).values_list("pk", "status"))

    with pytest.raises(ValidationError) as error:
        follow_up_end(patient=patient, **fields)

    assert set(error.value.message_dict) == expected
    patient.refresh_from_db()
    assert patient.follow_up_ended_on is None
    assert list(open_ahead(patient).values_list("pk", "status")) == before


def test_follow_up_ends_once(followed):
    patient, _ = followed
    follow_up_end(patient=patient, reason=FollowUpEndReason.DECLINED_FOLLOW_UP)

    with pytest.raises(ValidationError) as error:
        follow_up_end(patient=patient, reason=FollowUpEndReason.MOVED_AWAY)

    assert error.value.message_dict == {"patient": ["This patient's follow-up has ended already."]}


def test_a_clinician_resumes_follow_up_and_the_protocols_plan_again_as_of_that_day(followed, today):
    patient, manual = followed
    follow_up_end(patient=patient, reason=FollowUpEndReason.DECLINED_FOLLOW_UP)
    with pytest.raises(ValidationError) as error:
        follow_up_resume(patient=patient, role=Role.FRONT_DESK)
    assert list(error.value.message_dict) == ["patient"]

    follow_up_resume(patient=patient, role=Role.CLINICIAN)

    patient.refresh_from_db()
    assert (patient.follow_up_ended_on, patient.follow_up_end_reason) == (None, "")
    # The toxin's protocol visits are planned again; the manual booking cancelled by the end stays so.
    replanned = Visit.objects.filter(patient=patient, status=VisitStatus.PLANNED, source="protocol")
    assert replanned.exists()
    assert all(visit.window_end >= today for visit in replanned)
    manual.refresh_from_db()
    assert manual.status == VisitStatus.CANCELLED
    assert Reminder.objects.filter(visit__in=replanned, status=ReminderStatus.PENDING).exists()


def test_an_end_recorded_late_cancels_the_bookings_from_its_own_day(db, today):
    """A death learnt of a week later: the appointment of three days ago was no missed visit."""
    patient = PatientFactory()
    since_death = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=timezone.now() - days(3)
    )
    before_death = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=timezone.now() - days(9)
    )

    follow_up_end(patient=patient, reason=FollowUpEndReason.DECEASED, on=today - days(7))

    assert Visit.objects.get(pk=since_death.pk).status == VisitStatus.CANCELLED
    assert Visit.objects.get(pk=before_death.pk).status == VisitStatus.BOOKED  # the clinic settles it


def test_resuming_starts_afresh_the_visits_missed_before_do_not_make_the_patient_overdue_or_lost(db, today):
    """Back after a year away: the visit missed before follow-up ended is history, not a reason to
    call or a year "lost"; a visit missed after the resumption is overdue as any other."""
    from followups.calls.selectors import call_list, lost_to_follow_up_list
    from followups.codes import FlagCode
    from tests.followups.conftest import at_clinic, mark_missed

    patient = PatientFactory()
    old = mark_missed(
        services.visit_create(patient=patient, purpose="Review", scheduled_for=at_clinic(today - days(400)))
    )
    follow_up_end(patient=patient, reason=FollowUpEndReason.MOVED_AWAY, on=today - days(300))
    clinician = Role.CLINICIAN

    follow_up_resume(patient=patient, role=clinician)

    patient.refresh_from_db()
    assert patient.follow_up_resumed_on == today
    assert not call_list(today=today).filter(pk=patient.pk).exists()
    assert not lost_to_follow_up_list(today=today).filter(pk=patient.pk).exists()
    assert not patient.flags.filter(
        code__in=(FlagCode.OVERDUE_FOLLOW_UP, FlagCode.LOST_TO_FOLLOW_UP)
    ).exists()
    assert Visit.objects.get(pk=old.pk).status == VisitStatus.MISSED  # kept on the record

    later = mark_missed(
        services.visit_create(patient=patient, purpose="Review", scheduled_for=at_clinic(today))
    )
    assert list(
        call_list(today=today + days(1)).filter(pk=patient.pk).values_list("due_visit_id", flat=True)
    ) == [later.pk]
