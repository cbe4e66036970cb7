"""The record as FHIR R4 resources (API.md, "FHIR R4"): plain functions from rows to JSON-ready dicts.

Nothing here touches the database: each function reads the row it is given and the relations the
views fetched with it (``followups.fhir_views`` names them), so a mapping is tested by building
rows and reading the dict back. Ids are our public UUIDs; an assessment becomes one Observation
per scale, with the id ``<assessment uuid>-<scale>``, and a contact attempt a Communication with
the id ``<attempt uuid>-contact-attempt`` (a sent reminder's Communication has the reminder's).

Codes. Where a published code is certain it is given (SNOMED CT 13753008 "Hemifacial spasm" and
ICD-10 G51.3 on a Condition, RxNorm ingredients of the oral drugs, the HL7 terminology codes
of statuses and categories); every clinical code of ours is also given in a code system of our
own under ``CODE_SYSTEM``, named after the vocabulary in ``patients.codes`` / ``followups.codes``,
whose codes are exactly the stored codes. So nothing is lost when no standard code fits.

Observation categories: ``survey`` for what is scored from the patient's own account or a rating
instrument (HFS-7, the Jankovic rating scale, the symptom log's counts of spasms and their
duration), ``exam`` for the clinician's grade of what the face shows at the visit
(Cohen-Albert intensity, SMC spread, House-Brackmann facial-nerve function).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from followups import codes as follow_codes
from followups.reminders.messages import APPOINTMENT_MINUTES
from patients import codes

FHIR_VERSION = "4.0.1"
SITE = "https://hfs-followup.example/fhir"
CODE_SYSTEM = f"{SITE}/CodeSystem"
EXTENSION = f"{SITE}/StructureDefinition"
MRN_SYSTEM = f"{SITE}/sid/mrn"

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
HL7 = "http://terminology.hl7.org/CodeSystem"

# RxNorm ingredient codes, checked against published tables. Baclofen's could not be confirmed when
# this was written, so it carries our code only, like "other".
RXNORM_INGREDIENT = {
    codes.Drug.CARBAMAZEPINE: "2002",
    codes.Drug.OXCARBAZEPINE: "32624",
    codes.Drug.CLONAZEPAM: "2598",
    codes.Drug.GABAPENTIN: "25480",
}

# API.md: the visit states onto Appointment.status, exactly.
APPOINTMENT_STATUS = {
    follow_codes.VisitStatus.PLANNED: "proposed",
    follow_codes.VisitStatus.BOOKED: "booked",
    follow_codes.VisitStatus.COMPLETED: "fulfilled",
    follow_codes.VisitStatus.MISSED: "noshow",
    follow_codes.VisitStatus.CANCELLED: "cancelled",
}

# DOMAIN.md names the diagnosis statuses after Condition.verificationStatus; a condition that is
# provisional or confirmed is active, a refuted one inactive, and one entered in error has no
# clinical status at all (invariant con-5).
VERIFICATION_STATUS = {
    codes.DiagnosisStatus.PROVISIONAL: "provisional",
    codes.DiagnosisStatus.CONFIRMED: "confirmed",
    codes.DiagnosisStatus.REFUTED: "refuted",
    codes.DiagnosisStatus.ENTERED_IN_ERROR: "entered-in-error",
}
CLINICAL_STATUS = {
    codes.DiagnosisStatus.PROVISIONAL: "active",
    codes.DiagnosisStatus.CONFIRMED: "active",
    codes.DiagnosisStatus.REFUTED: "inactive",
}

PROCEDURE_STATUS = {
    codes.TreatmentStatus.PLANNED: "preparation",
    codes.TreatmentStatus.ACTIVE: "in-progress",
    codes.TreatmentStatus.COMPLETED: "completed",
    codes.TreatmentStatus.STOPPED: "stopped",
    codes.TreatmentStatus.ENTERED_IN_ERROR: "entered-in-error",
}
MEDICATION_STATEMENT_STATUS = {
    codes.TreatmentStatus.PLANNED: "intended",
    codes.TreatmentStatus.ACTIVE: "active",
    codes.TreatmentStatus.COMPLETED: "completed",
    codes.TreatmentStatus.STOPPED: "stopped",
    codes.TreatmentStatus.ENTERED_IN_ERROR: "entered-in-error",
}
OBSERVATION_STATUS = {
    follow_codes.AssessmentStatus.FINAL: "final",
    follow_codes.AssessmentStatus.ENTERED_IN_ERROR: "entered-in-error",
}

# Which treatments each resource carries: an MVD (and an "other" treatment, which has no drug) is
# a Procedure; an oral course and a toxin session are MedicationStatements.
PROCEDURE_KINDS = (codes.TreatmentKind.MVD, codes.TreatmentKind.OTHER)
MEDICATION_KINDS = (codes.TreatmentKind.MEDICATION, codes.TreatmentKind.BOTULINUM_TOXIN)


# --- building blocks ----------------------------------------------------------------------------


def coding(system: str, code: str, display: str | None = None) -> dict:
    found = {"system": system, "code": str(code)}
    if display:
        found["display"] = str(display)
    return found


def own(vocabulary: str, choices, code: str) -> dict:
    """A stored code in our code system for ``vocabulary``, with its label."""
    return coding(f"{CODE_SYSTEM}/{vocabulary}", code, choices(code).label)


def concept(*codings: dict, text: str | None = None) -> dict:
    found: dict = {}
    if codings:
        found["coding"] = list(codings)
    if text:
        found["text"] = str(text)
    return found


def reference(resource_type: str, uuid) -> dict:
    return {"reference": f"{resource_type}/{uuid}"}


def clinic_time(moment: datetime) -> datetime:
    """``moment`` in the clinic's time zone, or in UTC when that zone then kept local mean time: an
    offset in seconds (Berlin's +00:53:28 before 1893) is no RFC 3339 nor FHIR date-time."""
    local = timezone.localtime(moment)
    return moment.astimezone(UTC) if local.utcoffset().total_seconds() % 60 else local


def instant(moment: datetime) -> str:
    return clinic_time(moment).isoformat()


def day(value: date) -> str:
    return value.isoformat()


def number(value: Decimal | int | float):
    """A JSON number that keeps an integer an integer (``400``, not ``400.00``)."""
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def meta(row) -> dict:
    return {"lastUpdated": instant(row.updated_at)}


def extension(name: str, **value) -> dict:
    return {"url": f"{EXTENSION}/{name}", **value}


def _side_site(side: str) -> dict:
    return concept(own("side", codes.Side, side), text=f"{codes.Side(side).label} side of the face")


def _muscle_site(muscle: str) -> dict:
    return concept(own("muscle", codes.Muscle, muscle), text=codes.Muscle(muscle).label)


def _notes(text: str) -> list[dict]:
    return [{"text": text}] if text else []


def _without_empty(resource: dict) -> dict:
    """FHIR forbids empty arrays and objects: drop the optional elements a row left empty."""
    return {key: value for key, value in resource.items() if value not in (None, "", [], {})}


# --- Patient ------------------------------------------------------------------------------------


def patient_resource(patient) -> dict:
    telecom = []
    if patient.email:
        telecom.append({"system": "email", "value": patient.email, "use": "home"})
    if patient.phone:
        telecom.append({"system": "phone", "value": patient.phone})
    return _without_empty(
        {
            "resourceType": "Patient",
            "id": str(patient.uuid),
            "meta": meta(patient),
            "identifier": [
                {
                    "use": "usual",
                    "type": concept(coding(f"{HL7}/v2-0203", "MR", "Medical record number")),
                    "system": MRN_SYSTEM,
                    "value": patient.mrn,
                }
            ],
            "active": not patient.archived,
            "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
            "telecom": telecom,
            # Our sex codes are FHIR's administrative gender codes.
            "gender": patient.sex,
            "birthDate": day(patient.date_of_birth),
            "communication": [
                {
                    "language": concept(coding("urn:ietf:bcp:47", patient.preferred_language)),
                    "preferred": True,
                }
            ]
            if patient.preferred_language
            else [],
        }
    )


# --- Condition ----------------------------------------------------------------------------------


def condition_resource(diagnosis) -> dict:
    """A diagnosis of HFS. Needs ``patient`` and ``muscle_rows`` fetched with it."""
    kind = codes.HfsKind(diagnosis.kind)
    extensions = [
        extension(
            "hfs-presentation", valueCoding=own("presentation", codes.Presentation, diagnosis.presentation)
        )
    ]
    if diagnosis.secondary_cause:
        extensions.insert(
            0,
            {
                "url": "http://hl7.org/fhir/StructureDefinition/condition-dueTo",
                "valueCodeableConcept": concept(
                    own("secondary-cause", codes.SecondaryCause, diagnosis.secondary_cause),
                    text=codes.SecondaryCause(diagnosis.secondary_cause).label,
                ),
            },
        )
    clinical = CLINICAL_STATUS.get(diagnosis.status)
    muscles = sorted(row.muscle for row in diagnosis.muscle_rows.all())
    return _without_empty(
        {
            "resourceType": "Condition",
            "id": str(diagnosis.uuid),
            "meta": meta(diagnosis),
            "extension": extensions,
            "clinicalStatus": concept(coding(f"{HL7}/condition-clinical", clinical)) if clinical else None,
            "verificationStatus": concept(
                coding(f"{HL7}/condition-ver-status", VERIFICATION_STATUS[diagnosis.status])
            ),
            "category": [
                concept(coding(f"{HL7}/condition-category", "problem-list-item", "Problem List Item"))
            ],
            # 13753008 is SNOMED CT's "Hemifacial spasm"; beware 193093009, which is Bell's palsy.
            "code": concept(
                coding(SNOMED, "13753008", "Hemifacial spasm"),
                coding(ICD10, "G51.3", "Clonic hemifacial spasm"),
                own("hfs-kind", codes.HfsKind, kind),
                text=f"{kind.label} hemifacial spasm",
            ),
            "bodySite": [_side_site(diagnosis.side), *(_muscle_site(m) for m in muscles)],
            "subject": reference("Patient", diagnosis.patient.uuid),
            "onsetDateTime": day(diagnosis.onset_date) if diagnosis.onset_date else None,
            "recordedDate": day(diagnosis.diagnosed_on),
            "note": _notes(diagnosis.notes),
        }
    )


# --- Procedure (MVD, other treatments) ----------------------------------------------------------


def procedure_resource(treatment) -> dict:
    """An MVD or another non-drug treatment. Needs ``patient``, ``diagnosis`` and, for an MVD,
    ``mvd`` with ``redo_of``, ``vessel_rows`` and ``complications`` fetched with it."""
    resource = {
        "resourceType": "Procedure",
        "id": str(treatment.uuid),
        "meta": meta(treatment),
        "status": PROCEDURE_STATUS[treatment.status],
        "subject": reference("Patient", treatment.patient.uuid),
        "reasonReference": [reference("Condition", treatment.diagnosis.uuid)],
        "bodySite": [_side_site(treatment.diagnosis.side)],
        "note": _notes(treatment.notes),
    }
    if treatment.kind == codes.TreatmentKind.MVD:
        detail = treatment.mvd
        extensions = [
            extension("mvd-technique", valueCoding=own("mvd-technique", codes.MvdTechnique, detail.technique))
        ]
        extensions += [
            extension("offending-vessel", valueCoding=own("vessel", codes.Vessel, row.vessel))
            for row in sorted(detail.vessel_rows.all(), key=lambda row: row.vessel)
        ]
        extensions.append(extension("mvd-redo", valueBoolean=detail.redo))
        if detail.redo_of is not None:
            extensions.append(
                extension("mvd-redo-of", valueReference=reference("Procedure", detail.redo_of.uuid))
            )
        resource.update(
            extension=extensions,
            category=concept(coding(SNOMED, "387713003", "Surgical procedure")),
            code=concept(
                own("treatment-kind", codes.TreatmentKind, treatment.kind),
                text="Microvascular decompression of the facial nerve",
            ),
            performedDateTime=day(treatment.started_on),
            complication=[
                concept(
                    own("mvd-complication", codes.MvdComplicationKind, row.kind),
                    text=codes.MvdComplicationKind(row.kind).label,
                )
                for row in detail.complications.all()
            ],
        )
    else:
        period = {"start": day(treatment.started_on)}
        if treatment.ended_on:
            period["end"] = day(treatment.ended_on)
        resource.update(
            code=concept(
                own("treatment-kind", codes.TreatmentKind, treatment.kind),
                text="Other treatment of hemifacial spasm",
            ),
            performedPeriod=period,
        )
    return _without_empty(resource)


# --- MedicationStatement (courses, toxin sessions) ----------------------------------------------


def _daily_dose(medication) -> dict:
    """A total per day, however it is divided: a ratio of mg to one day, not a dose and a timing."""
    amount = number(medication.daily_dose_mg)
    return {
        "text": f"{amount} mg per day",
        "doseAndRate": [
            {
                "type": concept(coding(f"{HL7}/dose-rate-type", "ordered", "Ordered")),
                "rateRatio": {
                    "numerator": {"value": amount, "unit": "mg", "system": UCUM, "code": "mg"},
                    "denominator": {"value": 1, "unit": "day", "system": UCUM, "code": "d"},
                },
            }
        ],
    }


def _injection(sequence: int, injection) -> dict:
    # Toxin units are the product's own (not interchangeable, not UCUM units): unit text only.
    units = number(injection.units)
    muscle = codes.Muscle(injection.muscle).label
    return {
        "sequence": sequence,
        "text": f"{units} U into {muscle.lower()}",
        "site": _muscle_site(injection.muscle),
        "route": concept(text="Intramuscular"),
        "doseAndRate": [{"doseQuantity": {"value": units, "unit": "U"}}],
    }


def medication_statement_resource(treatment) -> dict:
    """An oral course or a toxin session. Needs ``patient``, ``diagnosis`` and ``medication`` or
    ``botulinum_toxin`` with its ``injections`` fetched with it."""
    resource = {
        "resourceType": "MedicationStatement",
        "id": str(treatment.uuid),
        "meta": meta(treatment),
        "status": MEDICATION_STATEMENT_STATUS[treatment.status],
        "subject": reference("Patient", treatment.patient.uuid),
        "reasonReference": [reference("Condition", treatment.diagnosis.uuid)],
        "note": _notes(treatment.notes),
    }
    if treatment.kind == codes.TreatmentKind.MEDICATION:
        medication = treatment.medication
        drug = codes.Drug(medication.drug)
        drug_codings = [own("drug", codes.Drug, drug)]
        if drug in RXNORM_INGREDIENT:
            drug_codings.insert(0, coding(RXNORM, RXNORM_INGREDIENT[drug], drug.label.lower()))
        period = {"start": day(treatment.started_on)}
        if treatment.ended_on:
            period["end"] = day(treatment.ended_on)
        resource.update(
            category=concept(coding(f"{HL7}/medication-statement-category", "community", "Community")),
            medicationCodeableConcept=concept(*drug_codings, text=drug.label),
            effectivePeriod=period,
            statusReason=[
                concept(
                    own("stop-reason", codes.StopReason, medication.stop_reason),
                    text=codes.StopReason(medication.stop_reason).label,
                )
            ]
            if medication.stop_reason
            else [],
            dosage=[_daily_dose(medication)],
        )
    else:
        session = treatment.botulinum_toxin
        product = codes.ToxinProduct(session.product)
        injections = sorted(session.injections.all(), key=lambda row: row.muscle)
        resource.update(
            category=concept(coding(f"{HL7}/medication-statement-category", "outpatient", "Outpatient")),
            medicationCodeableConcept=concept(
                own("toxin-product", codes.ToxinProduct, product), text=f"Botulinum toxin ({product.label})"
            ),
            effectiveDateTime=day(treatment.started_on),
            dosage=[_injection(n, row) for n, row in enumerate(injections, start=1)],
        )
    return _without_empty(resource)


# --- Appointment --------------------------------------------------------------------------------


def appointment_resource(visit) -> dict:
    """A visit. Needs ``patient``, ``diagnosis`` and ``slot`` fetched with it.

    ``start`` is the visit time (for a planned visit, the protocol's target); the booking window
    is the requested period. FHIR wants an end with a start: the appointment length of the
    calendar invitation the reminders carry. A visit booked into a clinic session's slot names it.
    """
    status = APPOINTMENT_STATUS[visit.status]
    return _without_empty(
        {
            "resourceType": "Appointment",
            "id": str(visit.uuid),
            "meta": meta(visit),
            "status": status,
            "cancelationReason": concept(text=visit.cancel_reason)
            if visit.status == follow_codes.VisitStatus.CANCELLED
            else None,
            "appointmentType": concept(
                coding(f"{HL7}/v2-0276", "FOLLOWUP", "A follow up visit from a previous appointment")
            ),
            "reasonReference": [reference("Condition", visit.diagnosis.uuid)] if visit.diagnosis_id else [],
            "description": visit.purpose,
            "start": instant(visit.scheduled_for),
            "end": instant(visit.scheduled_for + timedelta(minutes=APPOINTMENT_MINUTES)),
            "minutesDuration": APPOINTMENT_MINUTES,
            "created": instant(visit.created_at),
            "participant": [
                {
                    "actor": reference("Patient", visit.patient.uuid),
                    "required": "required",
                    "status": "needs-action" if status == "proposed" else "accepted",
                }
            ],
            "requestedPeriod": [{"start": day(visit.window_start), "end": day(visit.window_end)}],
            "slot": [reference("Slot", visit.slot.uuid)] if visit.slot_id else [],
        }
    )


# Elements that name the clinical record (a visit's purpose names its treatment; the reason is the
# patient's Condition): only for roles that read it. The front desk reads Appointments to book
# them: it sees the kind of clinic (serviceType), never why (issue 20).
CLINICAL_ELEMENTS = {"Appointment": ("description", "reasonReference")}


def without_clinical(resource: dict) -> dict:
    """``resource`` as a role that does not read the clinical record may see it."""
    hidden = CLINICAL_ELEMENTS.get(resource["resourceType"], ())
    return {name: value for name, value in resource.items() if name not in hidden}


# --- Observation (one per scale of an assessment) -----------------------------------------------


@dataclass(frozen=True)
class Scale:
    """One measure of an assessment as an Observation: the id suffix, code and category."""

    suffix: str
    display: str
    category: str

    def code(self) -> dict:
        return concept(coding(f"{CODE_SYSTEM}/observation", self.suffix, self.display), text=self.display)


SPASM_FREQUENCY = Scale("spasm-frequency", "Spasms per day", "survey")
EPISODE_DURATION = Scale("episode-duration", "Typical spasm episode duration", "survey")
COHEN_ALBERT = Scale("cohen-albert", "Cohen-Albert spasm intensity grade", "exam")
SMC = Scale("smc", "SMC (Samsung Medical Center) grade", "exam")
JANKOVIC = Scale("jankovic", "Jankovic rating scale total", "survey")
HOUSE_BRACKMANN = Scale("house-brackmann", "House-Brackmann facial nerve grade", "exam")
HFS7 = Scale("hfs7", "HFS-7 quality of life total", "survey")
SCALES = (SPASM_FREQUENCY, EPISODE_DURATION, COHEN_ALBERT, SMC, JANKOVIC, HOUSE_BRACKMANN, HFS7)


def observation_id(assessment, scale: Scale) -> str:
    return f"{assessment.uuid}-{scale.suffix}"


def _observation(assessment, scale: Scale, **value) -> dict:
    return _without_empty(
        {
            "resourceType": "Observation",
            "id": observation_id(assessment, scale),
            "meta": meta(assessment),
            "status": OBSERVATION_STATUS[assessment.status],
            "category": [
                concept(coding(f"{HL7}/observation-category", scale.category, scale.category.capitalize()))
            ],
            "code": scale.code(),
            "subject": reference("Patient", assessment.patient.uuid),
            "effectiveDateTime": day(assessment.assessed_on),
            **value,
        }
    )


def _component(code: str, display: str, value: int) -> dict:
    return {
        "code": concept(coding(f"{CODE_SYSTEM}/observation", code, display), text=display),
        "valueInteger": value,
    }


def observation_resources(assessment) -> list[dict]:
    """Every scale the assessment recorded, in ``SCALES`` order. Needs ``patient`` fetched with it."""
    found = []
    if assessment.spasms_per_day is not None:
        quantity = {
            "value": number(assessment.spasms_per_day),
            "unit": "per day",
            "system": UCUM,
            "code": "/d",
        }
        found.append(_observation(assessment, SPASM_FREQUENCY, valueQuantity=quantity))
    if assessment.episode_duration_seconds is not None:
        seconds = number(assessment.episode_duration_seconds)
        quantity = {"value": seconds, "unit": "s", "system": UCUM, "code": "s"}
        found.append(_observation(assessment, EPISODE_DURATION, valueQuantity=quantity))
    if assessment.cohen_albert_grade is not None:
        found.append(_observation(assessment, COHEN_ALBERT, valueInteger=assessment.cohen_albert_grade))
    if assessment.smc_grade is not None:
        found.append(_observation(assessment, SMC, valueInteger=assessment.smc_grade))
    if assessment.jankovic_severity is not None or assessment.jankovic_frequency is not None:
        components = [
            _component(f"jankovic-{part}", f"Jankovic {part}", value)
            for part, value in (
                ("severity", assessment.jankovic_severity),
                ("frequency", assessment.jankovic_frequency),
            )
            if value is not None
        ]
        anchors = (
            concept(own("jankovic-anchors", follow_codes.JankovicAnchors, assessment.jankovic_anchors))
            if assessment.jankovic_anchors
            else None
        )
        found.append(
            _observation(
                assessment,
                JANKOVIC,
                method=anchors,
                valueInteger=assessment.jankovic_total,
                component=components,
            )
        )
    if assessment.house_brackmann_grade is not None:
        found.append(_observation(assessment, HOUSE_BRACKMANN, valueInteger=assessment.house_brackmann_grade))
    if assessment.hfs7_total is not None:
        items = [
            _component(f"hfs7-item-{n}", f"HFS-7 item {n}", getattr(assessment, field))
            for n, field in enumerate(assessment.HFS7_ITEMS, start=1)
        ]
        found.append(_observation(assessment, HFS7, valueInteger=assessment.hfs7_total, component=items))
    return found


# --- Observation (laboratory results) -----------------------------------------------------------

# LOINC's codes of the two monitoring tests of DOMAIN.md section 4, looked up in LOINC itself:
# 2951-2 "Sodium [Moles/volume] in Serum or Plasma", 58410-2 "CBC panel - Blood by Automated count".
LAB_LOINC = {
    follow_codes.LabTest.SODIUM: ("2951-2", "Sodium [Moles/volume] in Serum or Plasma"),
    follow_codes.LabTest.BLOOD_COUNT: ("58410-2", "CBC panel - Blood by Automated count"),
}
INTERPRETATION = f"{HL7}/v3-ObservationInterpretation"


def lab_observation_id(result) -> str:
    return f"{result.uuid}-lab"


def lab_observation_resource(result) -> dict:
    """A lab result as a laboratory Observation: LOINC beside the clinic's own code, sodium as a
    quantity in mmol/L, the blood count by its interpretation alone (DOMAIN.md keeps no value)."""
    loinc, display = LAB_LOINC[result.test]
    value = (
        {"value": number(result.value), "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
        if result.value is not None
        else None
    )
    interpretation = (
        [
            concept(
                coding(INTERPRETATION, "A", "Abnormal")
                if result.abnormal
                else coding(INTERPRETATION, "N", "Normal")
            )
        ]
        if result.abnormal is not None
        else None
    )
    return _without_empty(
        {
            "resourceType": "Observation",
            "id": lab_observation_id(result),
            "meta": meta(result),
            "status": OBSERVATION_STATUS[result.status],
            "category": [concept(coding(f"{HL7}/observation-category", "laboratory", "Laboratory"))],
            "code": concept(
                coding(LOINC, loinc, display),
                own("lab-test", follow_codes.LabTest, result.test),
                text=result.get_test_display(),
            ),
            "subject": reference("Patient", result.patient.uuid),
            "effectiveDateTime": day(result.taken_on),
            "valueQuantity": value,
            "interpretation": interpretation,
        }
    )


# --- Communication (sent reminders) -------------------------------------------------------------


def communication_resource(reminder) -> dict:
    """A reminder that was sent: when, to whom, about which visit; never what it said.

    Needs ``visit`` and its ``patient`` fetched with it.
    """
    patient = reference("Patient", reminder.visit.patient.uuid)
    return {
        "resourceType": "Communication",
        "id": str(reminder.uuid),
        "meta": meta(reminder),
        "basedOn": [reference("Appointment", reminder.visit.uuid)],
        "status": "completed",
        "category": [concept(coding(f"{HL7}/communication-category", "reminder", "Reminder"))],
        "medium": [concept(coding(f"{HL7}/v3-ParticipationMode", "EMAILWRIT", "email"))],
        "subject": patient,
        "topic": concept(own("reminder-kind", follow_codes.ReminderKind, reminder.kind)),
        "sent": instant(reminder.sent_at),
        "recipient": [patient],
    }


# --- Communication (contact attempts) -----------------------------------------------------------

# The channel of an attempt as HL7's ParticipationMode (v3-ParticipationMode, THO; SMSWRIT "SMS
# message" is in the code system from its version 3.1.0 on). Every channel also carries our code.
PARTICIPATION_MODE = {
    follow_codes.ContactChannel.PHONE: ("PHONE", "telephone"),
    follow_codes.ContactChannel.EMAIL: ("EMAILWRIT", "email"),
    follow_codes.ContactChannel.SMS: ("SMSWRIT", "SMS message"),
    follow_codes.ContactChannel.LETTER: ("MAILWRIT", "mail"),
    follow_codes.ContactChannel.IN_PERSON: ("FACE", "face-to-face"),
}
# Nobody was reached and no message was left: the communication did not take place.
NOT_DONE_OUTCOMES = (follow_codes.ContactOutcome.NO_ANSWER, follow_codes.ContactOutcome.WRONG_NUMBER)
CONTACT_ATTEMPT_SUFFIX = "contact-attempt"


def contact_attempt_id(attempt) -> str:
    """``<uuid>-contact-attempt``: a Communication id of its own beside the reminders' (bare UUIDs)."""
    return f"{attempt.uuid}-{CONTACT_ATTEMPT_SUFFIX}"


def contact_attempt_resource(attempt) -> dict:
    """An attempt to reach a patient who fell out of follow-up (DOMAIN.md section 9): how, when,
    about which visit, and what came of it; never its note. Needs ``patient`` and ``visit`` fetched
    with it.

    ``completed`` when someone was reached or a message was left (an e-mail, a letter sent),
    ``not-done`` when nobody was (no answer, a wrong number), with the outcome as the reason. The
    outcome is on every attempt, in the ``contact-outcome`` extension."""
    outcome = own("contact-outcome", follow_codes.ContactOutcome, attempt.outcome)
    not_done = attempt.outcome in NOT_DONE_OUTCOMES
    mode, display = PARTICIPATION_MODE[attempt.channel]
    patient = reference("Patient", attempt.patient.uuid)
    return _without_empty(
        {
            "resourceType": "Communication",
            "id": contact_attempt_id(attempt),
            # An attempt is never changed: its only version is the one recorded.
            "meta": {"lastUpdated": instant(attempt.created_at)},
            "extension": [extension("contact-outcome", valueCoding=outcome)],
            "status": "not-done" if not_done else "completed",
            "statusReason": concept(outcome) if not_done else None,
            "category": [
                concept(coding(f"{CODE_SYSTEM}/communication-category", "contact-attempt", "Contact attempt"))
            ],
            "medium": [
                concept(
                    coding(f"{HL7}/v3-ParticipationMode", mode, display),
                    own("contact-channel", follow_codes.ContactChannel, attempt.channel),
                )
            ],
            "subject": patient,
            "about": [reference("Appointment", attempt.visit.uuid)] if attempt.visit_id else [],
            "sent": instant(attempt.at),
            "recipient": [patient],
        }
    )


# --- Schedule and Slot (the clinic's sessions) --------------------------------------------------

VISIT_KIND_SYSTEM = f"{CODE_SYSTEM}/visit-kind"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _service_types(template) -> list[dict]:
    """The kinds of visit a template's sessions serve. Needs its ``kind_rows`` fetched with it."""
    kinds = sorted(row.visit_kind for row in template.kind_rows.all())
    return [
        concept(own("visit-kind", follow_codes.VisitKind, kind), text=follow_codes.VisitKind(kind).label)
        for kind in kinds
    ]


def _clock(moment) -> str:
    return moment.strftime("%H:%M")


def schedule_resource(template, *, today: date) -> dict:
    """A session template: the weekly hours its dated sessions, and their slots, are cut from. Needs
    ``kind_rows`` fetched with it.

    The actor is the room or team the label names, by display only: the clinic keeps no Location
    for it. The planning horizon is the template's validity; it is active until its last day.
    """
    horizon = {"start": day(template.valid_from)}
    if template.valid_to:
        horizon["end"] = day(template.valid_to)
    return _without_empty(
        {
            "resourceType": "Schedule",
            "id": str(template.uuid),
            "meta": meta(template),
            "active": template.valid_to is None or template.valid_to >= today,
            "serviceType": _service_types(template),
            "actor": [{"display": template.label}],
            "planningHorizon": horizon,
            "comment": (
                f"{WEEKDAYS[template.weekday]}s {_clock(template.starts_at)}-{_clock(template.ends_at)}: "
                f"slots of {template.slot_minutes} minutes, each taking {template.capacity} "
                f"visit{'s' if template.capacity != 1 else ''}."
            ),
        }
    )


def slot_status(slot) -> str:
    """FHIR's slot status: a cancelled session's slots are unavailable, a full slot is busy."""
    if slot.session.cancelled:
        return "busy-unavailable"
    return "busy" if slot.booked >= slot.capacity else "free"


def slot_resource(slot) -> dict:
    """A slot of a dated session. Needs ``session``, its ``template`` and the template's
    ``kind_rows`` fetched with it.

    A slot keeps its start only: it ends a template's slot length later. FHIR R4 has no element for
    a slot's places, so they are in extensions (and in words in the comment). No ``meta``: a slot
    keeps no time of change.
    """
    session, template = slot.session, slot.session.template
    if session.cancelled:
        comment = f"{session.label}: the session is cancelled ({session.cancel_reason})."
    else:
        comment = f"{session.label}: {slot.booked} of {slot.capacity} places booked."
    return _without_empty(
        {
            "resourceType": "Slot",
            "id": str(slot.uuid),
            "extension": [
                extension("slot-capacity", valuePositiveInt=slot.capacity),
                extension("slot-booked", valueUnsignedInt=slot.booked),
            ],
            "serviceType": _service_types(template),
            "schedule": reference("Schedule", template.uuid),
            "status": slot_status(slot),
            "start": instant(slot.starts_at),
            "end": instant(slot.starts_at + timedelta(minutes=template.slot_minutes)),
            "comment": comment,
        }
    )


# --- Bundle, OperationOutcome, CapabilityStatement ----------------------------------------------


def bundle(
    *,
    base: str,
    self_url: str | None = None,
    resources: Iterable[dict],
    total: int | None | bool = True,
    links: list[dict] | None = None,
    outcome: dict | None = None,
) -> dict:
    """A searchset: every resource a match, its full URL where it is read on this server.

    ``total``: True for the number of ``resources``, an int for that number (a page of more
    matches), None for none (``_total=none``). ``links``: the paging links (else ``self_url``).
    ``outcome``: an OperationOutcome about the search itself, as an entry of search mode outcome.
    """
    entries = [
        {
            "fullUrl": f"{base}{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in resources
    ]
    if outcome is not None:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    found = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links or [{"relation": "self", "url": self_url}],
        "entry": entries,
    }
    if total is not None:
        found["total"] = (
            sum(1 for entry in entries if entry["search"]["mode"] == "match") if total is True else total
        )
    return _without_empty(found)


def version_id(resource: dict) -> str:
    """A resource's version: a digest of what is served (whatever the role), so it changes whenever
    the row, or a row it is made from, changes what the resource says, and only then.

    Keyed with the site's secret: the front desk is served the resource without its clinical
    elements but with this version, and a plain digest would let them try each visit purpose
    until one matched."""
    body = json.dumps(resource, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(settings.SECRET_KEY.encode(), body.encode(), hashlib.sha256).hexdigest()[:20]


def versioned(resource: dict) -> dict:
    """``resource`` with ``meta.versionId`` (``version_id`` of it without it)."""
    meta = {key: value for key, value in resource.get("meta", {}).items() if key != "versionId"}
    plain = {**resource, "meta": meta} if meta else {k: v for k, v in resource.items() if k != "meta"}
    return {**resource, "meta": {"versionId": version_id(plain), **meta}}


def operation_outcome(code: str, messages: Sequence[str], *, severity: str = "error") -> dict:
    """Why a request failed; ``code`` is from the FHIR issue-type value set (not-found, invalid...)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": str(message)} for message in messages]
        or [{"severity": severity, "code": code}],
    }


REST_DOCUMENTATION = (
    "Read-only. A search of a patient's resources needs the patient parameter; Schedule and Slot "
    "(the clinic's sessions) are searched by their own. Every search takes _count (paged by next "
    "and previous links), _summary=count, _total, _sort by date and _elements; $everything takes "
    "_since, _type and _count. Any other parameter is refused, unless the request says Prefer: "
    "handling=lenient, when it is ignored (and an OperationOutcome entry says so). Reads carry "
    "meta.versionId, a digest of the resource, and a weak ETag of it."
)
SECURITY_DESCRIPTION = (
    "Authorization: Token <key> for integration clients, or the staff session. "
    "Clinical resources answer 403 to the front-desk role."
)


@dataclass(frozen=True)
class Served:
    """What the server does with one resource type, as the CapabilityStatement lists it."""

    resource_type: str
    read: bool = True
    search_params: tuple[tuple[str, str, str], ...] = ()  # (name, type, documentation)
    operations: tuple[tuple[str, str], ...] = ()  # (name, canonical definition)


def capability_statement(*, base: str, served: Sequence[Served], date_changed: str, software: str) -> dict:
    resources = []
    for item in served:
        interactions = []
        if item.read:
            interactions.append({"code": "read"})
        if item.search_params:
            interactions.append({"code": "search-type"})
        resource = {"type": item.resource_type, "interaction": interactions}
        if item.search_params:
            resource["searchParam"] = [
                {"name": name, "type": kind, "documentation": text} for name, kind, text in item.search_params
            ]
        if item.operations:
            resource["operation"] = [{"name": name, "definition": url} for name, url in item.operations]
        resources.append(resource)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date_changed,
        "publisher": software,
        "kind": "instance",
        "software": {"name": software},
        "implementation": {"description": f"{software}: FHIR R4 read access", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": REST_DOCUMENTATION,
                "security": {"description": SECURITY_DESCRIPTION},
                "resource": resources,
            }
        ],
    }
