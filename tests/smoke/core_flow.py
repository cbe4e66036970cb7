"""The product's core flow, end to end, on whatever database the settings give.

`make test` runs it on the embedded SQLite defaults that `make run` uses (tests/test_sqlite_smoke.py);
by hand: `python tests/smoke/core_flow.py` after `python manage.py migrate`. It goes through the
services as the API and admin do, each step reads back what it wrote, and the summary is printed
as JSON. The flow grows by appending steps to ``STEPS``.

The last steps do what the worker does with a reminder, in this process: the sweeper's claim and
the send task's delivery, with e-mails written as files under ``VAR_DIR/mail``.
"""

import json
import os
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    import django

    django.setup()

# Models can only be imported once Django is set up, which the lines above do when run as a script.
from django.conf import settings
from django.db import connection
from django.utils import timezone

from followups import services as follow_up
from followups.codes import ReminderKind, ReminderStatus, VisitSource, VisitStatus
from followups.models import Reminder, Visit
from followups.reminders import reminder_deliver, reminders_claim_due
from patients import codes, services
from patients.models import Patient, Treatment

# An operation a month ago: its plan runs five years ahead whatever the day the flow runs.
SURGERY_DAYS_AGO = 30
# Words of this patient's record that no reminder may carry (DOMAIN.md section 6).
CLINICAL_WORDS = ("spasm", "hemifacial", "carbamazepine", "botulinum", "decompression", "interposition")


def database_in_use(flow: dict) -> dict:
    return {"vendor": connection.vendor, "name": str(connection.settings_dict["NAME"])}


def patient_registered(flow: dict) -> dict:
    # A fresh MRN each run, so the flow also runs against a database that already holds one.
    created = services.patient_create(
        mrn=f"SMOKE-{uuid.uuid4().hex[:10].upper()}",
        given_name="Ada",
        family_name="Smoke",
        date_of_birth=date(1966, 4, 2),
        sex=codes.Sex.FEMALE,
        email="ada.smoke@patients.example",
        email_reminders=True,
    )
    flow["patient"] = patient = Patient.objects.get(pk=created.pk)
    return {
        "email_reminders": patient.email_reminders,
        "consent_recorded": patient.email_reminders_consented_at is not None,
        "history_rows": patient.history.count(),
    }


def diagnosis_recorded(flow: dict) -> dict:
    recorded = services.diagnosis_record(
        patient=flow["patient"],
        kind=codes.HfsKind.PRIMARY,
        side=codes.Side.LEFT,
        onset_date=date(2022, 9, 1),
        diagnosed_on=date(2023, 3, 1),
        muscles=[codes.Muscle.ORBICULARIS_OCULI, codes.Muscle.ZYGOMATICUS],
    )
    flow["diagnosis"] = diagnosis = flow["patient"].diagnoses.get(pk=recorded.pk)
    return {
        "kind": diagnosis.kind,
        "side": diagnosis.side,
        "muscles": sorted(diagnosis.muscle_rows.values_list("muscle", flat=True)),
    }


def treatments_recorded(flow: dict) -> dict:
    """One treatment of each kind with its typed detail, as a patient's history often runs."""
    common = {"patient": flow["patient"], "diagnosis": flow["diagnosis"]}
    services.treatment_record(
        **common,
        kind=codes.TreatmentKind.MEDICATION,
        status=codes.TreatmentStatus.STOPPED,
        started_on=date(2023, 3, 1),
        ended_on=date(2023, 8, 1),
        medication={
            "drug": codes.Drug.CARBAMAZEPINE,
            "daily_dose_mg": "400",
            "stop_reason": codes.StopReason.INEFFECTIVE,
        },
    )
    services.treatment_record(
        **common,
        kind=codes.TreatmentKind.BOTULINUM_TOXIN,
        status=codes.TreatmentStatus.COMPLETED,
        started_on=date(2023, 9, 4),
        botulinum_toxin={
            "product": codes.ToxinProduct.ONABOTULINUMTOXINA,
            "injections": [
                {"muscle": codes.Muscle.ORBICULARIS_OCULI, "units": "15"},
                {"muscle": codes.Muscle.ZYGOMATICUS, "units": "5"},
            ],
        },
    )
    services.treatment_record(
        **common,
        kind=codes.TreatmentKind.MVD,
        status=codes.TreatmentStatus.COMPLETED,
        started_on=timezone.localdate() - timedelta(days=SURGERY_DAYS_AGO),
        mvd={"technique": codes.MvdTechnique.INTERPOSITION, "offending_vessels": [codes.Vessel.AICA]},
    )
    treatments = {t.kind: t for t in Treatment.objects.filter(patient=flow["patient"])}
    medication = treatments[codes.TreatmentKind.MEDICATION].medication
    toxin = treatments[codes.TreatmentKind.BOTULINUM_TOXIN].botulinum_toxin
    mvd = treatments[codes.TreatmentKind.MVD].mvd
    return {
        "medication": {"drug": medication.drug, "daily_dose_mg": str(medication.daily_dose_mg)},
        "botulinum_toxin": {
            "product": toxin.product,
            "units": {row.muscle: str(row.units) for row in toxin.injections.all()},
        },
        "mvd": {
            "technique": mvd.technique,
            "offending_vessels": sorted(mvd.vessel_rows.values_list("vessel", flat=True)),
        },
        "history_rows": sum(t.history.count() for t in treatments.values()),
    }


def visits_planned(flow: dict) -> dict:
    """The treatments planned their follow-up visits, each with its reminders, in the same writes."""
    today = timezone.localdate()
    visits = (
        Visit.objects.filter(patient=flow["patient"], source=VisitSource.PROTOCOL)
        .exclude(status=VisitStatus.CANCELLED)
        .select_related("treatment")
    )
    reminders = Reminder.objects.filter(visit__in=visits)
    now = timezone.now()
    last_calls = reminders.filter(kind=ReminderKind.BOOKING_LAST_CALL)
    return {
        "planned_days_by_treatment": {
            kind: sorted(v.protocol_day for v in visits if v.treatment.kind == kind)
            for kind in sorted({v.treatment.kind for v in visits})
        },
        "all_planned_in_an_open_window": all(
            v.status == VisitStatus.PLANNED and v.window_end >= today for v in visits
        ),
        # Planned visits are invited to be booked, never reminded of a time nobody booked.
        "reminder_kinds_per_visit": sorted(
            {tuple(sorted(reminders.filter(visit=v).values_list("kind", flat=True))) for v in visits}
        ),
        "invitations_pending": reminders.filter(
            kind=ReminderKind.BOOKING_INVITATION, status=ReminderStatus.PENDING
        ).count(),
        # A last call whose day has passed (the day-30 visit's, 7 days before its window closes,
        # falls today) is skipped; the others wait for their day.
        "last_calls_as_their_day_says": all(
            r.status == (ReminderStatus.PENDING if r.due_at > now else ReminderStatus.SKIPPED)
            for r in last_calls
        ),
    }


def mail_files() -> set[Path]:
    folder = Path(settings.VAR_DIR) / "mail"
    return set(folder.iterdir()) if folder.is_dir() else set()


def reminder_delivered(flow: dict) -> dict:
    """A booked visit's 1-day reminder, brought due now, claimed and sent as the worker would."""
    visit = follow_up.visit_create(
        patient=flow["patient"], purpose="Review", scheduled_for=timezone.now() + timedelta(days=10)
    )
    reminder = Reminder.objects.get(visit=visit, kind=ReminderKind.VISIT_1D)
    pending = reminder.status
    # As if the calendar had moved on to the day before the appointment.
    now = timezone.now()
    Reminder.objects.filter(pk=reminder.pk).update(due_at=now, next_attempt_at=now)
    flow["reminder"], flow["mail_before"] = reminder, mail_files()

    # The claim also queues a send task on the file broker after commit; no worker runs here, so
    # this process sends, and a worker started later finds the row no longer held.
    flow["claims"] = claims = dict(reminders_claim_due())
    outcome = reminder_deliver(reminder_id=reminder.pk, claim_id=claims[reminder.pk])
    again = reminder_deliver(reminder_id=reminder.pk, claim_id=claims[reminder.pk])
    return {"planned": pending, "claimed": reminder.pk in claims, "outcome": outcome, "again": again}


def reminder_mail_written(flow: dict) -> dict:
    """The e-mail is a file under VAR_DIR/mail, and the reminder row says it was sent."""
    reminder = Reminder.objects.get(pk=flow["reminder"].pk)
    new_files = sorted(mail_files() - flow["mail_before"])
    text = "".join(path.read_text(encoding="utf-8", errors="replace") for path in new_files)
    return {
        "folder": str(Path(settings.VAR_DIR) / "mail"),
        "new_files": len(new_files),
        "status": reminder.status,
        "sent_at_recorded": reminder.sent_at is not None,
        "message_id_in_file": bool(reminder.message_id) and f"Message-ID: {reminder.message_id}" in text,
        "greets_first_name": "Dear Ada," in text,
        "one_click_opt_out": "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text,
        "calendar_attached": "BEGIN:VCALENDAR" in text,
        "clinical_words": sorted(word for word in CLINICAL_WORDS if word in text.lower()),
    }


def api_read(flow: dict) -> dict:
    """An integration client reads the patient and her visits with its key: the key lookup, the
    role, the throttle (the file cache) and the list pages are SQL and caches of this engine too."""
    from django.test import Client

    from clinic.api_clients import api_client_create, api_client_revoke
    from clinic.models import ApiClient

    client, key = api_client_create(name="smoke-front-desk", role="front_desk")
    http = Client(HTTP_AUTHORIZATION=f"Token {key}", HTTP_HOST="localhost")
    patients = http.get("/api/v1/patients/", {"page_size": 1})
    visits = http.get("/api/v1/visits/", {"patient": str(flow["patient"].uuid)})
    first_used = ApiClient.objects.get(pk=client.pk).last_used_at
    api_client_revoke(client=ApiClient.objects.get(pk=client.pk))
    patient = patients.json()["results"][0]
    return {
        "statuses": [patients.status_code, visits.status_code],
        "patient_shown": patient["id"] == str(flow["patient"].uuid),
        "clinical_fields_shown": sorted({"hla_b1502_result", "at_risk_hla_b1502"} & set(patient)),
        "visits_shown": len(visits.json()["results"])
        == Visit.objects.filter(patient=flow["patient"]).count(),
        "last_used_recorded": first_used is not None,
        "revoked_key": http.get("/api/v1/patients/").status_code,
    }


def clinical_rules_v2(flow: dict) -> dict:
    """Rule version 2 on this engine: each treatment judged within its episode, flags dated by
    their facts and acknowledged, visits moved only as DOMAIN.md section 2 allows (the overdue
    condition's subqueries and the histories are SQL of this engine too)."""
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ValidationError

    from clinic.roles import Role, group_for
    from followups.codes import AssessmentSource
    from followups.flags_store import flag_acknowledge
    from followups.models import PatientFlag, TreatmentOutcome
    from followups.predicates import overdue_visits_filter
    from followups.selectors import flags_to_review
    from followups.visit_moves import visit_move

    patient, today = flow["patient"], timezone.localdate()
    surgery_on = today - timedelta(days=SURGERY_DAYS_AGO)
    logs = [
        (date(2023, 2, 20), 20, AssessmentSource.CLINICIAN),  # before the drug course
        (date(2023, 6, 1), 18, AssessmentSource.NURSE),  # on the drug: no better
        (surgery_on - timedelta(days=10), 16, AssessmentSource.CLINICIAN),  # before the MVD
        (today - timedelta(days=5), 0, AssessmentSource.CLINICIAN),  # spasm-free after the MVD
    ]
    for on, spasms, source in logs:
        follow_up.assessment_record(patient=patient, assessed_on=on, spasms_per_day=spasms, source=source)
    outcomes = {
        o.treatment.kind: (o.category, o.rule_version)
        for o in TreatmentOutcome.objects.filter(treatment__patient=patient).select_related("treatment")
    }

    users = get_user_model().objects
    clinician = users.create_user(username=f"smoke-clinician-{uuid.uuid4().hex[:8]}", is_staff=True)
    clinician.groups.add(group_for(Role.CLINICIAN))
    nurse = users.create_user(username=f"smoke-nurse-{uuid.uuid4().hex[:8]}", is_staff=True)
    nurse.groups.add(group_for(Role.NURSE))
    flag = PatientFlag.objects.get(patient=patient, code="imaging_missing")
    flag_acknowledge(flag=flag, by=clinician, note="MRI requested.")

    # The appointment booked earlier in the flow is called off; a review planned three weeks ago
    # was forgotten: the patient is overdue.
    for booked in Visit.objects.filter(patient=patient, status=VisitStatus.BOOKED):
        visit_move(visit=booked, to=VisitStatus.CANCELLED, reason="The patient called it off.")
    forgotten = today - timedelta(days=20)
    follow_up.visit_create(
        patient=patient,
        purpose="Review",
        status=VisitStatus.PLANNED,
        scheduled_for=timezone.now() - timedelta(days=20),
        window_start=forgotten,
        window_end=forgotten + timedelta(days=5),
    )
    overdue = [Visit.objects.filter(overdue_visits_filter(today), patient=patient).count()]
    check = Visit.objects.get(patient=patient, source=VisitSource.PROTOCOL, protocol_day=30)
    try:
        visit_move(visit=check, to=VisitStatus.BOOKED, scheduled_for=timezone.now() + timedelta(days=10))
        outside_window = "booked"
    except ValidationError as error:
        outside_window = error.error_dict["scheduled_for"][0].code
    visit_move(visit=check, to=VisitStatus.COMPLETED)
    visit_move(visit=check, to=VisitStatus.BOOKED, by=nurse, reason="Completed by mistake.")
    check.refresh_from_db()
    # Not overdue any more once the patient holds a booking ahead (the corrected visit of today).
    overdue.append(Visit.objects.filter(overdue_visits_filter(today), patient=patient).count())
    return {
        "outcomes": outcomes,
        "sources": sorted(set(patient.assessments.values_list("source", flat=True))),
        "flag_since": flag.since.isoformat(),
        "flag_to_review": flags_to_review().filter(pk=flag.pk).exists(),
        "outside_window": outside_window,
        "corrected": [check.status, check.history.first().history_change_reason],
        "overdue_before_and_after": overdue,
    }


def slot_booked(flow: dict) -> dict:
    """The clinic's default week becomes dated sessions; a visit takes a place in a slot, and a
    full slot refuses the next booking: the capacity is held by this engine's database too."""
    from django.core.exceptions import ValidationError

    from followups import booking
    from followups.models import Slot
    from followups.visit_moves import visit_move

    today = timezone.localdate()
    made = booking.sessions_generate(today=today)
    visit = Visit.objects.filter(patient=flow["patient"], status=VisitStatus.PLANNED).order_by(
        "scheduled_for"
    )[0]
    suggestion = booking.slot_suggestions(visit=visit)[0]
    booked = visit_move(
        visit=visit,
        to=VisitStatus.BOOKED,
        slot=suggestion.slot,
        confirm_outside_window=not suggestion.inside_window,
    )
    slot = Slot.objects.get(pk=suggestion.slot.pk)
    Slot.objects.filter(pk=slot.pk).update(booked=slot.capacity)
    other = Visit.objects.filter(patient=flow["patient"], status=VisitStatus.PLANNED).order_by(
        "scheduled_for"
    )[0]
    try:
        visit_move(visit=other, to=VisitStatus.BOOKED, slot=slot, confirm_outside_window=True)
        full = "booked"
    except ValidationError as error:
        full = error.error_dict["slot"][0].code
    return {
        "sessions_made": made > 0,
        "again": booking.sessions_generate(today=today),
        "booked_at_slot_time": booked.scheduled_for == slot.starts_at,
        "places_taken": Slot.objects.filter(booked__gt=0).count(),
        "full": full,
    }


def booking_invitation_mailed(flow: dict) -> dict:
    """The day-30 visit's invitation (due since before it was planned, so claimed with the rest)
    goes out: a window and a booking link, no time, no calendar event."""
    invitation = Reminder.objects.filter(
        visit__patient=flow["patient"], kind=ReminderKind.BOOKING_INVITATION, pk__in=flow["claims"]
    ).get()
    before = mail_files()
    outcome = reminder_deliver(reminder_id=invitation.pk, claim_id=flow["claims"][invitation.pk])
    text = "".join(path.read_text(encoding="utf-8", errors="replace") for path in mail_files() - before)
    return {
        "outcome": outcome,
        "names_the_window": "Your follow-up visit is due between" in text,
        "booking_link": "/p/visit/" in text,
        "calendar_attached": "BEGIN:VCALENDAR" in text,
        "clinical_words": sorted(word for word in CLINICAL_WORDS if word in text.lower()),
    }


def session_cancelled(flow: dict) -> dict:
    """The clinic cancels the session the visit was booked in: the visit is planned again, marked
    for the call list, and a notice with the booking link is queued on this engine too."""
    from followups.sessions import session_cancel

    visit = Visit.objects.get(patient=flow["patient"], status=VisitStatus.BOOKED, slot__isnull=False)
    session = visit.slot.session
    session_cancel(session=session, reason="Public holiday")
    visit.refresh_from_db()
    return {
        "visit": visit.status,
        "clinic_cancelled": visit.clinic_cancelled_at is not None,
        "notice": Reminder.objects.get(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED).status,
        "places_left_taken": session.slots.filter(booked__gt=0).count(),
    }


def call_list_worked(flow: dict) -> dict:
    """The call list on this engine (its order and its reasons are SQL of this engine too): a
    patient whose review window closed unbooked is on it, below Ada (a month after her MVD, sent back
    by the cancelled session); a call-later hides her until its day, an unanswered call keeps her
    with her last attempt, a wrong number flags her contact data, and declining ends her follow-up
    and takes her off."""
    from followups.calls.selectors import call_list, call_rows
    from followups.calls.services import contact_attempt_record
    from followups.codes import ContactChannel, ContactOutcome
    from followups.models import ContactAttempt, PatientFlag

    today, now = timezone.localdate(), timezone.now()
    bea = services.patient_create(
        mrn=f"SMOKE-{uuid.uuid4().hex[:10].upper()}",
        given_name="Bea",
        family_name="Smoke",
        date_of_birth=date(1959, 7, 14),
        sex=codes.Sex.FEMALE,
        phone="+49 30 5550123",
    )
    visit = follow_up.visit_create(
        patient=bea,
        purpose="Review",
        status=VisitStatus.PLANNED,
        scheduled_for=now - timedelta(days=25),
        window_start=today - timedelta(days=30),
        window_end=today - timedelta(days=20),
    )
    ours = {flow["patient"].pk: "Ada", bea.pk: "Bea"}
    flow["ours"] = ours

    def listed(on=None) -> list:
        return [
            [
                ours[r.patient.pk],
                r.reason,
                r.days_overdue,
                r.high_risk,
                r.last_attempt and r.last_attempt.outcome,
            ]
            for r in call_rows(call_list(today=on), today=on)
            if r.patient.pk in ours
        ]

    def attempt(outcome, minutes_ago=0, **more):
        contact_attempt_record(
            patient=bea,
            visit=visit,
            channel=ContactChannel.PHONE,
            outcome=outcome,
            at=now - timedelta(minutes=minutes_ago),
            **more,
        )

    on_the_list = listed()
    attempt(ContactOutcome.CALL_LATER, 3, remind_on=today + timedelta(days=7))
    called_later = listed()
    on_the_day = [row for row in listed(today + timedelta(days=7)) if row[0] == "Bea"]
    attempt(ContactOutcome.NO_ANSWER, 2)
    no_answer = listed()
    attempt(ContactOutcome.WRONG_NUMBER, 1)
    wrong_number = [row for row in listed() if row[0] == "Bea"]
    contact_flag = PatientFlag.objects.filter(patient=bea, code="contact_details_invalid").exists()
    attempt(ContactOutcome.DECLINED_FOLLOW_UP)
    return {
        "on_the_list": on_the_list,
        "called_later": called_later,
        "on_the_day": on_the_day,
        "no_answer": no_answer,
        "wrong_number": wrong_number,
        "contact_flag": contact_flag,
        "declined": listed(),
        "ended": Patient.objects.get(pk=bea.pk).follow_up_end_reason,
        "attempts": ContactAttempt.objects.filter(patient=bea).count(),
    }


def lost_list_read(flow: dict) -> dict:
    """The lost-to-follow-up worklist on this engine: a patient due for 400 days who never came is on
    it (with the flag, dated 365 days after the visit was due); Ada and Bea are not."""
    from followups.calls.selectors import call_rows, lost_to_follow_up_list
    from followups.models import PatientFlag

    today = timezone.localdate()
    cy = services.patient_create(
        mrn=f"SMOKE-{uuid.uuid4().hex[:10].upper()}",
        given_name="Cy",
        family_name="Smoke",
        date_of_birth=date(1971, 2, 3),
        sex=codes.Sex.MALE,
    )
    follow_up.visit_create(
        patient=cy,
        purpose="Review",
        status=VisitStatus.PLANNED,
        scheduled_for=timezone.now() - timedelta(days=395),
        window_start=today - timedelta(days=400),
        window_end=today - timedelta(days=390),
    )
    ours = {**flow["ours"], cy.pk: "Cy"}
    flag = PatientFlag.objects.get(patient=cy, code="lost_to_follow_up")
    return {
        "lost": [
            [ours[r.patient.pk], r.reason, r.days_overdue]
            for r in call_rows(lost_to_follow_up_list())
            if r.patient.pk in ours
        ],
        "lost_after_30_days": sorted(ours[p.pk] for p in lost_to_follow_up_list(days=30) if p.pk in ours),
        "flag_since_days_ago": (today - flag.since).days,
    }


STEPS = [
    database_in_use,
    patient_registered,
    diagnosis_recorded,
    treatments_recorded,
    visits_planned,
    reminder_delivered,
    reminder_mail_written,
    booking_invitation_mailed,
    api_read,
    clinical_rules_v2,
    slot_booked,
    session_cancelled,
    call_list_worked,
    lost_list_read,
]


def run(steps=STEPS) -> dict:
    """Run ``steps`` in order; each gets the state the earlier ones left and adds its summary."""
    flow: dict = {}
    return {step.__name__: step(flow) for step in steps}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, sort_keys=True))
