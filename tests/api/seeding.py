"""A patient with a record of every kind, built through the services, for tests that walk the whole API.

``seed_record()`` answers a ``Seeded`` naming every object a route of /api/v1/ or /fhir/ can address:
a diagnosis, an MRI, a treatment of each kind (medication, botulinum toxin, MVD, other), visits in
the states the visit routes act on (booked, planned, missed), a final assessment, sodium results, and
reminders that were sent, are pending and were cancelled. Rows with every optional field left empty sit beside
them. A second patient with a record of their own lets tests check that one patient's rows never show
up under another. The clinic's week has a session template of its own, with its sessions and slots
(beside the default templates the migrations seed, which have no sessions until the nightly run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from followups import codes as follow_codes
from followups import services as follow_up
from followups.codes import ReminderKind, ReminderStatus, VisitKind, VisitStatus
from followups.models import Assessment, ClinicSession, LabResult, Reminder, SessionTemplate, Slot, Visit
from followups.reminders import reminder_cancel, reminder_deliver, reminders_claim_due
from followups.sessions import session_template_save
from followups.visit_moves import visit_move
from patients import codes
from patients.models import Diagnosis, ImagingStudy, Patient, Treatment
from patients.services import imaging_study_record
from tests.factories import PatientFactory, diagnosis_for, treatment_for


@dataclass
class Seeded:
    patient: Patient
    diagnosis: Diagnosis
    imaging_study: ImagingStudy
    medication: Treatment
    toxin: Treatment
    mvd: Treatment
    other_treatment: Treatment
    booked_visit: Visit
    planned_visit: Visit
    missed_visit: Visit
    passed_visit: Visit
    assessment: Assessment
    lab_result: LabResult
    sent_reminder: Reminder
    pending_reminder: Reminder
    cancelled_reminder: Reminder
    other_patient: Patient
    session_template: SessionTemplate
    session: ClinicSession
    slot: Slot

    def flag_id(self):
        """The id of one flag of the patient (for ``flags/{id}/acknowledge/``)."""
        return self.patient.flags.order_by("code", "subject").first().uuid

    def observation_id(self) -> str:
        """The FHIR id of one Observation of the assessment (its spasm frequency)."""
        return f"{self.assessment.uuid}-spasm-frequency"


def aware(days_ahead: int, hour: int = 10) -> datetime:
    moment = timezone.localtime() + timedelta(days=days_ahead)
    return moment.replace(hour=hour, minute=30, second=0, microsecond=0)


def _send(reminder: Reminder) -> Reminder:
    """Claim due reminders as the sweeper would at the reminder's time, and send this one."""
    claims = dict(reminders_claim_due(now=reminder.due_at, batch=1000))
    assert reminder_deliver(reminder_id=reminder.pk, claim_id=claims[reminder.pk]) == "sent"
    return Reminder.objects.get(pk=reminder.pk)


def _record_of(patient: Patient) -> dict:
    diagnosis = diagnosis_for(patient, onset_date=date(2022, 6, 1))
    study = imaging_study_record(
        patient=patient,
        diagnosis=diagnosis,
        performed_on=date(2023, 2, 20),
        modality=codes.ImagingModality.MRI,
        field_strength_tesla="3.0",
        compression_found=codes.CompressionFound.YES,
        sequences=[codes.ImagingSequence.CISS, codes.ImagingSequence.TOF_MRA],
        offending_vessels=[codes.Vessel.AICA],
        report="AICA loop at the root exit zone.",
    )
    treatments = {
        "medication": treatment_for(diagnosis, codes.TreatmentKind.MEDICATION, started_on=date(2023, 4, 1)),
        "toxin": treatment_for(diagnosis, codes.TreatmentKind.BOTULINUM_TOXIN, started_on=date(2024, 1, 10)),
        "mvd": treatment_for(diagnosis, codes.TreatmentKind.MVD, started_on=date(2024, 9, 2)),
        "other_treatment": treatment_for(
            diagnosis, codes.TreatmentKind.OTHER, started_on=date(2024, 2, 1), notes="Acupuncture"
        ),
    }
    assessment = follow_up.assessment_record(
        patient=patient,
        assessed_on=date(2024, 8, 20),
        spasms_per_day="12.5",
        episode_duration_seconds="3.5",
        cohen_albert_grade=3,
        smc_grade=2,
        jankovic_severity=3,
        jankovic_frequency=2,
        jankovic_anchors=follow_codes.JankovicAnchors.HFS_ADAPTED,
        house_brackmann_grade=1,
        triggers=[follow_codes.Trigger.STRESS],
    )

    # Rows with every optional field left empty: the responses must describe their nulls and blanks too.
    imaging_study_record(patient=patient, performed_on=date(2023, 2, 1), modality=codes.ImagingModality.CT)
    follow_up.assessment_record(patient=patient, assessed_on=date(2024, 7, 1))
    # Sodium results (which the carbamazepine course's monitoring does not ask for, so the flags
    # stay as they are): one with every field, one whose interpretation the lab left out.
    lab_result = follow_up.lab_result_record(
        patient=patient,
        test=follow_codes.LabTest.SODIUM,
        taken_on=date(2024, 8, 19),
        value="131.5",
        abnormal=True,
    )
    follow_up.lab_result_record(
        patient=patient, test=follow_codes.LabTest.SODIUM, taken_on=date(2024, 6, 30), value="139.0"
    )

    def manual(days_ahead: int, **fields) -> Visit:
        return follow_up.visit_create(
            patient=patient, purpose="Review of the face", scheduled_for=aware(days_ahead), **fields
        )

    visits = {
        "booked_visit": manual(20, treatment=treatments["mvd"]),
        "planned_visit": manual(25, status=VisitStatus.PLANNED),
        # Marked missed as on the day after it (a visit is missed only once it has passed).
        "missed_visit": visit_move(visit=manual(35), to=VisitStatus.MISSED, now=aware(36)),
        # Booked for two days ago: it can be completed or missed now.
        "passed_visit": manual(-2),
    }
    return {
        "diagnosis": diagnosis,
        "imaging_study": study,
        **treatments,
        **visits,
        "assessment": assessment,
        "lab_result": lab_result,
    }


def seed_record() -> Seeded:
    patient = PatientFactory(
        email_reminders=True,
        phone="+49 30 1234567",
        at_risk_hla_b1502=True,
        hla_b1502_result=codes.HlaB1502Result.NEGATIVE,
    )
    rows = _record_of(patient)
    booked = rows["booked_visit"]
    # A planned visit is not reminded of: its patient is invited to book it (DOMAIN.md 12). The
    # invitation is cancelled before the sweep below, which claims whatever is due by then.
    cancelled = reminder_cancel(
        reminder=Reminder.objects.get(visit=rows["planned_visit"], kind=ReminderKind.BOOKING_INVITATION)
    )
    sent = _send(Reminder.objects.get(visit=booked, kind=ReminderKind.VISIT_7D))
    pending = Reminder.objects.get(visit=booked, kind=ReminderKind.VISIT_1D)
    assert (sent.status, pending.status, cancelled.status) == (
        ReminderStatus.SENT,
        ReminderStatus.PENDING,
        ReminderStatus.CANCELLED,
    )
    other = PatientFactory(email_reminders=True)
    _record_of(other)
    clinic = _injection_clinic()
    session = clinic.sessions.order_by("on").first()
    return Seeded(
        patient=patient,
        **rows,
        sent_reminder=sent,
        pending_reminder=pending,
        cancelled_reminder=cancelled,
        other_patient=other,
        session_template=clinic,
        session=session,
        slot=session.slots.order_by("starts_at").first(),
    )


def _injection_clinic() -> SessionTemplate:
    """A weekly injection clinic from tomorrow's weekday on (its first session is ahead, so it can
    be cancelled), with its sessions of the next 26 weeks."""
    tomorrow = timezone.localdate() + timedelta(days=1)
    return session_template_save(
        label="Injection clinic (room 2)",
        weekday=tomorrow.weekday(),
        starts_at=time(13, 30),
        ends_at=time(15, 30),
        slot_minutes=30,
        capacity=2,
        visit_kinds=[VisitKind.INJECTION],
        valid_from=tomorrow,
    ).template
