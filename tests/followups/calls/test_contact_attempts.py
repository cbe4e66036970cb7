"""Contact attempts and the effect of each outcome (DOMAIN.md section 9): recorded with what they do,
in one transaction."""

from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import formats, timezone

from followups import booking, services
from followups.calls.follow_up_end import follow_up_end
from followups.calls.selectors import call_list
from followups.calls.services import contact_attempt_record
from followups.codes import (
    ContactChannel,
    ContactOutcome,
    FlagCode,
    ReminderKind,
    ReminderStatus,
    VisitKind,
    VisitMoveError,
    VisitStatus,
)
from followups.flags_store import flags_sync
from followups.models import ContactAttempt, PatientFlag, Reminder, Slot, Visit
from followups.reminders import reminder_deliver, reminders_claim_due
from followups.visit_moves import visit_move
from patients import services as record
from patients.codes import FollowUpEndReason
from tests.factories import PatientFactory, diagnosis_for, session_template_row
from tests.followups.conftest import at_clinic, cancel, complete, days, local, mark_missed, night, refused

PHONE = ContactChannel.PHONE


@pytest.fixture
def due(db, today):
    """A consenting patient's review, planned in a window that closed a week ago: overdue (written as
    a row, its flags then stored as a refresh stores them: the call list reads the stored flags)."""
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
    flags_sync(patient=patient)
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


# --- every outcome's refusals: the field named, nothing written ----------------------------------

OUT = ContactOutcome


def day(on) -> str:
    return formats.date_format(on, "j F Y")


LATER = "Give the day to call again, after today."


def on_call_list(patient) -> bool:
    return call_list().filter(pk=patient.pk).exists()


def record_for(patient, outcome, **more):
    return lambda: contact_attempt_record(patient=patient, channel=PHONE, outcome=outcome, **more)


@pytest.mark.parametrize(
    ("outcome", "ahead", "expected"),
    [
        (OUT.CALL_LATER, None, {"remind_on": [(LATER, "required")]}),
        (OUT.CALL_LATER, -1, {"remind_on": [(LATER, "required")]}),
        (OUT.CALL_LATER, 366, {"remind_on": [("Call again within a year.", "too_far_ahead")]}),
        (
            OUT.NO_ANSWER,
            3,
            {"remind_on": [("Only a call-later attempt has a day to call again.", "not_allowed")]},
        ),
    ],
)
def test_a_day_to_call_again_is_refused_unless_a_call_later_names_one_within_a_year(
    due, today, outcome, ahead, expected
):
    patient, visit = due
    remind_on = None if ahead is None else today + days(ahead)

    refused(record_for(patient, outcome, visit=visit, remind_on=remind_on), expected)


def test_a_call_later_a_year_ahead_is_taken(due, today):
    patient, visit = due

    contact_attempt_record(
        patient=patient, visit=visit, channel=PHONE, outcome=OUT.CALL_LATER, remind_on=today + days(365)
    )

    assert attempts(patient) == [(PHONE, OUT.CALL_LATER, today + days(365))]


BOOK_ONE = "Book the visit in the same step: a slot or a time, one of the two."


def test_an_agreement_names_its_visit_and_one_booking(due, today, no_templates):
    patient, visit = due
    session_template_row(weekday=(today + days(3)).weekday(), valid_from=today, kinds=[VisitKind.REVIEW])
    booking.sessions_generate(today=today)
    slot = Slot.objects.filter(session__on=today + days(3)).first()
    when = at_clinic(today + days(2))

    refused(
        record_for(patient, OUT.AGREED_TO_VISIT),
        {
            "visit": [("Name the visit the patient agreed to.", "required")],
            "slot": [(BOOK_ONE, "required")],
        },
    )
    refused(
        record_for(patient, OUT.AGREED_TO_VISIT, visit=visit, slot=slot, scheduled_for=when),
        {"slot": [(BOOK_ONE, "required")]},
    )
    refused(
        record_for(patient, OUT.NO_ANSWER, visit=visit, scheduled_for=when),
        {"slot": [("Only an agreed visit is booked with the attempt.", "not_allowed")]},
    )
    assert Slot.objects.get(pk=slot.pk).booked == 0


def test_an_agreement_at_a_time_books_the_visit_and_takes_the_patient_off_the_list(due, today):
    patient, visit = due
    assert on_call_list(patient)
    when = at_clinic(today + days(2), 14)

    contact_attempt_record(
        patient=patient,
        visit=visit,
        channel=PHONE,
        outcome=OUT.AGREED_TO_VISIT,
        scheduled_for=when,
        confirm_outside_window=True,
    )

    visit.refresh_from_db()
    assert (visit.status, visit.scheduled_for, visit.slot_id) == (VisitStatus.BOOKED, when, None)
    assert not on_call_list(patient)


def test_a_booking_refused_names_its_own_field_and_writes_nothing(due, today):
    patient, visit = due
    on = today + days(5)

    refused(
        record_for(patient, OUT.AGREED_TO_VISIT, visit=visit, scheduled_for=at_clinic(on)),
        {
            "scheduled_for": [
                (
                    f"{day(on)} is outside the visit's window ({day(visit.window_start)} to "
                    f"{day(visit.window_end)}). Confirm to book it outside the window anyway.",
                    VisitMoveError.OUTSIDE_WINDOW,
                )
            ]
        },
    )


def test_an_archived_patient_is_not_called(due):
    patient, visit = due
    record.patient_archive(patient=patient)

    refused(
        record_for(patient, OUT.NO_ANSWER, visit=visit),
        {"patient": [("This patient is archived.", "archived")]},
    )


# --- wrong number -----------------------------------------------------------------------------


def contact_flag(patient):
    return [
        (f.code, f.since)
        for f in PatientFlag.objects.filter(patient=patient, code=FlagCode.CONTACT_DETAILS_INVALID)
    ]


@pytest.mark.parametrize(
    "change", [{"phone": "+49 30 7654321"}, {"email": "ada.new@patients.example"}], ids=["phone", "email"]
)
def test_a_wrong_number_flags_the_contact_data_until_a_new_phone_or_e_mail(due, today, change):
    patient, visit = due
    at = timezone.now() - timedelta(days=2)

    attempt = contact_attempt_record(
        patient=patient, visit=visit, channel=PHONE, outcome=OUT.WRONG_NUMBER, at=at
    )

    patient.refresh_from_db()
    assert (attempt.at, patient.contact_details_invalid_since) == (at, at)
    assert contact_flag(patient) == [(FlagCode.CONTACT_DETAILS_INVALID, timezone.localdate(at))]
    assert on_call_list(patient)  # still to be reached, another way

    record.patient_update(patient=patient, given_name="Adele")  # unrelated: the flag stays
    record.patient_update(patient=patient, phone=patient.phone, email=patient.email)  # the same data
    patient.refresh_from_db()
    assert patient.contact_details_invalid_since == at
    assert contact_flag(patient) == [(FlagCode.CONTACT_DETAILS_INVALID, timezone.localdate(at))]

    record.patient_update(patient=patient, **change)

    patient.refresh_from_db()
    assert patient.contact_details_invalid_since is None
    assert contact_flag(patient) == []


# --- already seen elsewhere -------------------------------------------------------------------


SEEN = "Give the day the patient was seen elsewhere."


def test_seen_elsewhere_names_its_visit_and_a_past_day(due, today):
    patient, visit = due

    refused(
        record_for(patient, OUT.ALREADY_SEEN_ELSEWHERE),
        {
            "visit": [("Name the visit the patient had elsewhere.", "required")],
            "seen_on": [(SEEN, "required")],
        },
    )
    refused(
        record_for(patient, OUT.ALREADY_SEEN_ELSEWHERE, visit=visit, seen_on=today + days(1)),
        {"seen_on": [("The day seen elsewhere cannot be ahead of today.", "in_future")]},
    )
    refused(
        record_for(patient, OUT.ALREADY_SEEN_ELSEWHERE, visit=visit, seen_on=patient.date_of_birth - days(1)),
        {"seen_on": [("The day seen elsewhere cannot be before the patient's birth.", "before_birth")]},
    )
    refused(
        record_for(patient, OUT.LEFT_MESSAGE, visit=visit, seen_on=today),
        {"seen_on": [("Only a seen-elsewhere attempt has the day seen elsewhere.", "not_allowed")]},
    )
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED


def test_a_planned_visit_seen_elsewhere_is_completed_that_day_at_the_clinic_s_visit_hour(
    due, today, settings
):
    patient, visit = due
    settings.CLINIC_VISIT_HOUR = 8
    seen_on = today - days(9)

    attempt = contact_attempt_record(
        patient=patient, visit=visit, channel=PHONE, outcome=OUT.ALREADY_SEEN_ELSEWHERE, seen_on=seen_on
    )

    visit.refresh_from_db()
    assert (visit.status, local(visit.scheduled_for).date(), local(visit.scheduled_for).hour) == (
        VisitStatus.COMPLETED,
        seen_on,
        8,
    )
    assert (attempt.visit, attempt.seen_on) == (visit, seen_on)
    assert not on_call_list(patient)


def test_seen_elsewhere_today_is_taken_before_the_clinic_s_visit_hour_too(due, today, settings):
    patient, visit = due
    settings.CLINIC_VISIT_HOUR = 23  # later today than now (but in the last hour of the day)

    contact_attempt_record(
        patient=patient, visit=visit, channel=PHONE, outcome=OUT.ALREADY_SEEN_ELSEWHERE, seen_on=today
    )

    visit.refresh_from_db()
    assert visit.status == VisitStatus.COMPLETED
    assert local(visit.scheduled_for).date() == today
    assert visit.scheduled_for <= timezone.now()


def test_a_booked_visit_seen_elsewhere_gives_its_place_back(due, today, no_templates):
    patient, visit = due
    session_template_row(weekday=(today + days(3)).weekday(), valid_from=today, kinds=[VisitKind.REVIEW])
    booking.sessions_generate(today=today)
    slot = Slot.objects.filter(session__on=today + days(3)).first()
    visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot, confirm_outside_window=True)
    assert Slot.objects.get(pk=slot.pk).booked == 1

    contact_attempt_record(
        patient=patient,
        visit=visit,
        channel=PHONE,
        outcome=OUT.ALREADY_SEEN_ELSEWHERE,
        seen_on=today - days(1),
    )

    visit.refresh_from_db()
    assert (visit.status, visit.slot_id, local(visit.scheduled_for).date()) == (
        VisitStatus.COMPLETED,
        None,
        today - days(1),
    )
    assert Slot.objects.get(pk=slot.pk).booked == 0


def test_a_missed_visit_seen_elsewhere_gets_a_completed_rebooking_and_leaves_the_list(due, today, settings):
    patient, planned = due
    complete(planned)
    missed = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=at_clinic(today - days(5))
    )
    mark_missed(missed)
    assert on_call_list(patient)
    seen_on = today - days(3)

    contact_attempt_record(
        patient=patient, visit=missed, channel=PHONE, outcome=OUT.ALREADY_SEEN_ELSEWHERE, seen_on=seen_on
    )

    missed.refresh_from_db()
    attended = Visit.objects.get(rebooked_from=missed)
    assert missed.status == VisitStatus.MISSED  # the record keeps what happened here
    assert (attended.status, local(attended.scheduled_for).date(), local(attended.scheduled_for).hour) == (
        VisitStatus.COMPLETED,
        seen_on,
        settings.CLINIC_VISIT_HOUR,
    )
    assert not on_call_list(patient)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("completed", "This visit is completed already: look at the patient's page."),
        ("cancelled", "This visit is cancelled already: look at the patient's page."),
    ],
)
def test_a_visit_closed_already_is_not_seen_elsewhere(due, today, state, message):
    patient, visit = due
    complete(visit) if state == "completed" else cancel(visit)

    refused(
        record_for(patient, OUT.ALREADY_SEEN_ELSEWHERE, visit=visit, seen_on=today),
        {"visit": [(message, "not_due")]},
    )


# --- ending follow-up ---------------------------------------------------------------------------


def test_declining_takes_the_patient_off_the_call_list_and_keeps_the_attempt(due, today):
    patient, visit = due
    assert on_call_list(patient)

    contact_attempt_record(patient=patient, visit=visit, channel=PHONE, outcome=OUT.DECLINED_FOLLOW_UP)

    assert not on_call_list(patient)
    assert attempts(patient) == [(PHONE, OUT.DECLINED_FOLLOW_UP, None)]
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED  # the record stays as it was
    night(today + days(60))  # the list as of a later day reads what that night stored
    assert not call_list(today=today + days(60)).filter(pk=patient.pk).exists()


@pytest.mark.parametrize("outcome", [OUT.DECLINED_FOLLOW_UP, OUT.MOVED_AWAY, OUT.DECEASED])
def test_an_end_when_follow_up_has_ended_already_is_refused_and_nothing_is_written(due, outcome):
    patient, visit = due
    follow_up_end(patient=patient, reason=FollowUpEndReason.TRANSFERRED)

    refused(
        record_for(patient, outcome, visit=visit),
        {"patient": [("This patient's follow-up has ended already.", "already_ended")]},
    )


# --- the system's own attempt: the missed-visit e-mail --------------------------------------------


def test_the_missed_visit_e_mail_sent_is_the_system_s_attempt_once_other_e_mails_are_none(db, mailoutbox):
    patient = PatientFactory(email="ada.missed@patients.example", email_reminders=True)
    missed = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=timezone.now() - timedelta(minutes=10)
    )
    visit_move(visit=missed, to=VisitStatus.MISSED)
    ahead = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=timezone.now() + timedelta(days=10)
    )
    mails = list(
        Reminder.objects.filter(
            visit__in=(missed, ahead),
            kind__in=(ReminderKind.MISSED_VISIT, ReminderKind.VISIT_1D),
            status=ReminderStatus.PENDING,
        ).order_by("kind")
    )
    assert [r.kind for r in mails] == [ReminderKind.MISSED_VISIT, ReminderKind.VISIT_1D]
    now = timezone.now()
    # As if the calendar had moved on.
    Reminder.objects.filter(pk__in=[r.pk for r in mails]).update(due_at=now, next_attempt_at=now)
    claims = dict(reminders_claim_due())

    outcomes = [
        reminder_deliver(reminder_id=reminder.pk, claim_id=claims[reminder.pk])
        for reminder in mails
        for _ in range(2)  # a duplicated send finds the row no longer held
    ]

    assert outcomes == ["sent", "not held", "sent", "not held"]
    assert len(mailoutbox) == 2
    sent = Reminder.objects.get(visit=missed, kind=ReminderKind.MISSED_VISIT)
    assert list(
        ContactAttempt.objects.filter(patient=patient).values_list("visit", "channel", "outcome", "by", "at")
    ) == [(missed.pk, ContactChannel.EMAIL, OUT.LEFT_MESSAGE, None, sent.sent_at)]


# --- what the review found: a visit that is no longer due, a follow-up that has ended ------------

ENDED = "This patient's follow-up has ended: a clinician resumes it before a visit is booked."


@pytest.fixture
def review_slot(today, no_templates):
    session_template_row(weekday=(today + days(3)).weekday(), valid_from=today, kinds=[VisitKind.REVIEW])
    booking.sessions_generate(today=today)
    return Slot.objects.filter(session__on=today + days(3)).order_by("starts_at")


def test_an_agreement_never_moves_a_booking_made_since_the_list_was_read(due, review_slot):
    """Two staff on the same row, or the patient booking through the link meanwhile: the second
    agreement is refused, the first booking stays where it is."""
    patient, visit = due
    first, second = review_slot[0], review_slot[1]
    contact_attempt_record(
        patient=patient, visit=visit, channel=PHONE, outcome=ContactOutcome.AGREED_TO_VISIT,
        slot=first, confirm_outside_window=True,
    )  # fmt: skip

    refused(
        record_for(
            patient, ContactOutcome.AGREED_TO_VISIT, visit=visit, slot=second, confirm_outside_window=True
        ),
        {"visit": [("This visit is booked already: look at the patient's page.", "not_due")]},
    )
    visit.refresh_from_db()
    assert (visit.slot_id, Slot.objects.get(pk=first.pk).booked, Slot.objects.get(pk=second.pk).booked) == (
        first.pk,
        1,
        0,
    )


def test_a_missed_visit_rebooked_already_is_not_rebooked_again_by_an_agreement(due, today):
    patient, visit = due
    missed = mark_missed(visit)
    services.visit_rebook(visit=missed, scheduled_for=at_clinic(today + days(4)))

    refused(
        record_for(
            patient, ContactOutcome.AGREED_TO_VISIT, visit=missed, scheduled_for=at_clinic(today + days(5))
        ),
        {"visit": [("This visit is rebooked already: look at the patient's page.", "not_due")]},
    )


@pytest.mark.parametrize("outcome", [ContactOutcome.AGREED_TO_VISIT, ContactOutcome.ALREADY_SEEN_ELSEWHERE])
def test_nothing_is_booked_or_completed_once_follow_up_has_ended(due, today, outcome):
    """Staff A records a death; staff B's form, read before, says the patient agreed: refused."""
    patient, visit = due
    missed = mark_missed(visit)
    follow_up_end(patient=patient, reason=FollowUpEndReason.MOVED_AWAY, on=today)
    more = (
        {"scheduled_for": at_clinic(today + days(4))}
        if outcome == ContactOutcome.AGREED_TO_VISIT
        else {"seen_on": today - days(1)}
    )

    refused(record_for(patient, outcome, visit=missed, **more), {"patient": [(ENDED, "follow_up_ended")]})


def test_every_way_of_booking_refuses_a_patient_whose_follow_up_ended(due, today):
    from followups.self_booking import CLOSED, booking_situation, rebooking_situation

    patient, visit = due
    planned_ahead = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=at_clinic(today + days(20)),
        status=VisitStatus.PLANNED,
    )  # fmt: skip
    missed = mark_missed(visit)
    follow_up_end(patient=patient, reason=FollowUpEndReason.DECLINED_FOLLOW_UP, on=today)
    patient.refresh_from_db()

    refused(
        lambda: services.visit_rebook(visit=missed, scheduled_for=at_clinic(today + days(4))),
        {"patient": [(ENDED, VisitMoveError.FOLLOW_UP_ENDED)]},
    )
    refused(
        lambda: services.visit_create(
            patient=patient, purpose="Review", scheduled_for=at_clinic(today + days(4))
        ),
        {"patient": [(ENDED, VisitMoveError.FOLLOW_UP_ENDED)]},
    )
    # The plan's visit ahead was cancelled with the end; a correction cannot book a visit either.
    assert Visit.objects.get(pk=planned_ahead.pk).status == VisitStatus.CANCELLED
    missed = Visit.objects.select_related("patient").get(pk=missed.pk)
    assert rebooking_situation(missed).state == CLOSED
    assert booking_situation(Visit.objects.select_related("patient").get(pk=planned_ahead.pk)).state == CLOSED


def test_visit_move_refuses_a_booking_once_follow_up_has_ended(db, today):
    """A planned visit whose window closed before the end stays on the record (the end cancels
    only what lies ahead); it is not booked while follow-up is ended."""
    patient = PatientFactory()
    visit = services.visit_create(
        patient=patient,
        purpose="Review",
        scheduled_for=at_clinic(today - days(3)),
        status=VisitStatus.PLANNED,
    )
    follow_up_end(patient=patient, reason=FollowUpEndReason.TRANSFERRED, on=today)
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED

    refused(
        lambda: visit_move(
            visit=visit,
            to=VisitStatus.BOOKED,
            scheduled_for=at_clinic(today + days(2)),
            confirm_outside_window=True,
        ),
        {"patient": [(ENDED, VisitMoveError.FOLLOW_UP_ENDED)]},
    )


def test_a_visit_elsewhere_stands_only_for_a_visit_whose_window_was_near(db, today):
    """Never for a review of next month reported as done a year ago, never before its treatment."""
    patient = PatientFactory()
    ahead = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=at_clinic(today + days(60)),
        window_start=today + days(50), window_end=today + days(70), status=VisitStatus.PLANNED,
    )  # fmt: skip
    earliest = today + days(20)

    refused(
        record_for(patient, ContactOutcome.ALREADY_SEEN_ELSEWHERE, visit=ahead, seen_on=today - days(1)),
        {
            "seen_on": [
                (
                    f"A visit elsewhere before {earliest:%d %b %Y} does not stand for this one "
                    f"(its window opens on {today + days(50):%d %b %Y}).",
                    "before_window",
                )
            ]
        },
    )
    assert Visit.objects.get(pk=ahead.pk).status == VisitStatus.PLANNED


def test_a_protocol_visit_is_never_seen_elsewhere_before_the_treatment_it_follows(db, today):
    from tests.followups.conftest import record_mvd

    patient = PatientFactory()
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(60))
    surgery = record_mvd(diagnosis, today - days(12))
    post_op = Visit.objects.filter(treatment=surgery, protocol_day=10).get()
    assert post_op.window_start - timedelta(days=30) < surgery.started_on

    refused(
        record_for(
            patient,
            ContactOutcome.ALREADY_SEEN_ELSEWHERE,
            visit=post_op,
            seen_on=surgery.started_on - days(1),
        ),
        {
            "seen_on": [
                (
                    f"A visit elsewhere before {surgery.started_on:%d %b %Y} does not stand for this one "
                    f"(its window opens on {post_op.window_start:%d %b %Y}).",
                    "before_window",
                )
            ]
        },
    )
