"""Contact attempts and the effect of each outcome (DOMAIN.md section 9): recorded with what they do,
in one transaction."""

from datetime import time

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from followups import booking, services
from followups.calls.services import contact_attempt_record
from followups.codes import ContactChannel, ContactOutcome, VisitKind, VisitStatus
from followups.models import ContactAttempt, Slot, Visit
from tests.factories import PatientFactory, diagnosis_for, session_template_row
from tests.followups.conftest import days, mark_missed

PHONE = ContactChannel.PHONE


@pytest.fixture
def due(db, today):
    """A consenting patient's review, planned in a window that closed a week ago: overdue."""
    patient = PatientFactory(email="ada.call@patients.example", email_reminders=True, phone="+49 30 1234567")
    diagnosis_for(patient, diagnosed_on=today - days(400))
    visit = Visit.objects.create(
        patient=patient,
        purpose="Review",
        scheduled_for=timezone.now() - days(10),
        window_start=today - days(14),
        window_end=today - days(7),
        status=VisitStatus.PLANNED,
        source="manual",
    )
    return patient, visit


def attempts(patient):
    return list(ContactAttempt.objects.filter(patient=patient).values_list("channel", "outcome", "remind_on"))


@pytest.mark.parametrize("outcome", [ContactOutcome.NO_ANSWER, ContactOutcome.LEFT_MESSAGE])
def test_an_unanswered_call_is_recorded_and_changes_nothing_else(due, outcome):
    patient, visit = due

    attempt = contact_attempt_record(
        patient=patient, visit=visit, channel=PHONE, outcome=outcome, note="Rang 8 times"
    )

    assert attempts(patient) == [(PHONE, outcome, None)]
    assert (attempt.visit, attempt.note, attempt.by) == (visit, "Rang 8 times", None)
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED


def test_call_later_needs_a_day_ahead(due, today):
    patient, visit = due
    with pytest.raises(ValidationError) as error:
        contact_attempt_record(
            patient=patient, channel=PHONE, outcome=ContactOutcome.CALL_LATER, remind_on=today
        )
    assert list(error.value.message_dict) == ["remind_on"]

    contact_attempt_record(
        patient=patient,
        visit=visit,
        channel=PHONE,
        outcome=ContactOutcome.CALL_LATER,
        remind_on=today + days(7),
    )

    assert attempts(patient) == [(PHONE, ContactOutcome.CALL_LATER, today + days(7))]


def test_agreeing_to_a_visit_books_it_in_the_same_step(due, today, no_templates):
    patient, visit = due
    session_template_row(weekday=(today + days(3)).weekday(), valid_from=today, kinds=[VisitKind.REVIEW])
    booking.sessions_generate(today=today)
    slot = Slot.objects.filter(session__on=today + days(3)).first()

    contact_attempt_record(
        patient=patient,
        visit=visit,
        channel=PHONE,
        outcome=ContactOutcome.AGREED_TO_VISIT,
        slot=slot,
        confirm_outside_window=True,
    )

    visit.refresh_from_db()
    assert (visit.status, visit.slot_id, Slot.objects.get(pk=slot.pk).booked) == (
        VisitStatus.BOOKED,
        slot.pk,
        1,
    )
    assert attempts(patient) == [(PHONE, ContactOutcome.AGREED_TO_VISIT, None)]


def test_an_agreement_without_a_booking_is_refused_and_nothing_is_written(due):
    patient, visit = due

    with pytest.raises(ValidationError) as error:
        contact_attempt_record(
            patient=patient, visit=visit, channel=PHONE, outcome=ContactOutcome.AGREED_TO_VISIT
        )

    assert list(error.value.message_dict) == ["slot"]
    assert not ContactAttempt.objects.exists()


def test_a_booking_refused_undoes_the_attempt_too(due, today):
    patient, visit = due
    # Outside the window and not confirmed: the move refuses, and the attempt goes with it.
    with pytest.raises(ValidationError):
        contact_attempt_record(
            patient=patient,
            visit=visit,
            channel=PHONE,
            outcome=ContactOutcome.AGREED_TO_VISIT,
            scheduled_for=timezone.make_aware(timezone.datetime.combine(today + days(5), time(10))),
        )

    assert not ContactAttempt.objects.exists()
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED


def test_a_missed_visit_agreed_to_is_rebooked(due, today):
    patient, _ = due
    missed = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=timezone.now() - days(20), status=VisitStatus.BOOKED
    )
    mark_missed(missed)
    when = timezone.make_aware(timezone.datetime.combine(today + days(4), time(11)))

    contact_attempt_record(
        patient=patient,
        visit=missed,
        channel=PHONE,
        outcome=ContactOutcome.AGREED_TO_VISIT,
        scheduled_for=when,
    )

    rebooked = Visit.objects.get(rebooked_from=missed)
    assert (rebooked.status, rebooked.scheduled_for) == (VisitStatus.BOOKED, when)


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (ContactOutcome.DECLINED_FOLLOW_UP, "declined_follow_up"),
        (ContactOutcome.MOVED_AWAY, "moved_away"),
        (ContactOutcome.DECEASED, "deceased"),
    ],
)
def test_an_answer_that_ends_follow_up_ends_it(due, outcome, reason, today):
    patient, visit = due

    contact_attempt_record(patient=patient, visit=visit, channel=PHONE, outcome=outcome)

    patient.refresh_from_db()
    assert (patient.follow_up_ended_on, patient.follow_up_end_reason) == (today, reason)
    assert patient.email_reminders is (outcome != ContactOutcome.DECEASED)
    assert attempts(patient) == [(PHONE, outcome, None)]


def test_bad_input_is_refused_field_by_field(due, today):
    patient, _ = due
    other = Visit.objects.create(
        patient=PatientFactory(),
        purpose="Review",
        scheduled_for=timezone.now(),
        window_start=today,
        window_end=today,
        status=VisitStatus.PLANNED,
        source="manual",
    )

    with pytest.raises(ValidationError) as error:
        contact_attempt_record(
            patient=patient, visit=other, channel="pigeon", outcome="maybe", remind_on=today, note="x" * 501
        )

    assert set(error.value.message_dict) == {"channel", "outcome", "visit", "remind_on", "note"}
    assert not ContactAttempt.objects.exists()
