"""The FHIR R4 read endpoints (API.md, "FHIR R4") against a record built through the services.

Every resource the server emits is validated with the ``fhir.resources`` R4B models, and, since
those models check structure and cardinality but not the required value-set bindings nor the
invariants that matter here, with the FHIR codes and rules written out below from the specification.
Mappings are asserted against the rows they come from, read back from the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class

from clinic.models import AuditEvent
from clinic.roles import READ, Kind, Role, group_for
from followups import codes as follow_codes
from followups import services as follow_up
from followups.codes import ReminderKind, ReminderStatus, VisitStatus
from followups.fhir_urls import urlpatterns as fhir_routes
from followups.models import Assessment, LabResult, Reminder, Visit
from followups.reminders import reminder_deliver, reminders_claim_due
from followups.visit_moves import visit_move
from patients import codes
from patients import services as record
from patients.models import Diagnosis, Treatment
from tests.factories import PatientFactory, diagnosis_for, treatment_for

FHIR = "/fhir/"
FHIR_JSON = "application/fhir+json"

# --- what the specification requires and the R4B models do not check -----------------------------

ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# Required bindings (FHIR R4 value sets), by resource type and element.
REQUIRED_CODES = {
    "Patient": {"gender": {"male", "female", "other", "unknown"}},
    "Appointment": {
        "status": {
            "proposed",
            "pending",
            "booked",
            "arrived",
            "fulfilled",
            "cancelled",
            "noshow",
            "entered-in-error",
            "checked-in",
            "waitlist",
        }
    },
    "Observation": {
        "status": {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    },
    "Procedure": {
        "status": {
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        }
    },
    "MedicationStatement": {
        "status": {
            "active",
            "completed",
            "entered-in-error",
            "intended",
            "stopped",
            "on-hold",
            "unknown",
            "not-taken",
        }
    },
    "Communication": {
        "status": {
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        }
    },
    "Slot": {"status": {"busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error"}},
    "Bundle": {"type": {"searchset"}},
    "CapabilityStatement": {"status": {"draft", "active", "retired", "unknown"}, "kind": {"instance"}},
}
CONDITION_CLINICAL = {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}
CONDITION_VERIFICATION = {
    "unconfirmed",
    "provisional",
    "differential",
    "confirmed",
    "refuted",
    "entered-in-error",
}
PARTICIPANT_STATUS = {"accepted", "declined", "tentative", "needs-action"}
OBSERVATION_CATEGORY = {
    "social-history",
    "vital-signs",
    "imaging",
    "laboratory",
    "procedure",
    "survey",
    "exam",
    "therapy",
    "activity",
}
ISSUE_SEVERITY = {"fatal", "error", "warning", "information"}
HL7_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"

# API.md: the visit states onto Appointment.status.
APPOINTMENT_STATUS_OF = {
    VisitStatus.PLANNED: "proposed",
    VisitStatus.BOOKED: "booked",
    VisitStatus.COMPLETED: "fulfilled",
    VisitStatus.MISSED: "noshow",
    VisitStatus.CANCELLED: "cancelled",
}


def _no_empty_values(value, where="$"):
    """FHIR JSON has no empty strings, arrays or objects, and no nulls (ele-1)."""
    assert value not in (None, "", [], {}), f"empty value at {where}"
    if isinstance(value, dict):
        for key, item in value.items():
            _no_empty_values(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _no_empty_values(item, f"{where}[{n}]")


def codes_of(concept: dict, system_suffix: str | None = None) -> list[str]:
    return [
        c["code"]
        for c in concept.get("coding", [])
        if system_suffix is None or c["system"].endswith(system_suffix)
    ]


def assert_valid(resource: dict) -> dict:
    """Validate one resource with its R4B model, its required bindings and the invariants in play."""
    kind = resource["resourceType"]
    get_fhir_model_class(kind).model_validate(resource)
    _no_empty_values(resource)
    if "id" in resource:
        assert ID.match(resource["id"]), resource["id"]
    for element, allowed in REQUIRED_CODES.get(kind, {}).items():
        assert resource[element] in allowed, (kind, element, resource[element])
    if kind == "Bundle":
        # bdl-1 allows it: a searchset (left out when the search asked _total=none).
        self_url = next(link["url"] for link in resource["link"] if link["relation"] == "self")
        assert ("total" in resource) != ("_total=none" in self_url)
        entries = resource.get("entry", [])
        urls = [entry["fullUrl"] for entry in entries if "fullUrl" in entry]
        assert len(urls) == len(set(urls))  # bdl-7
        for entry in entries:
            assert entry["search"]["mode"] in {"match", "include", "outcome"}
            if entry["search"]["mode"] != "outcome":  # an outcome is no resource of this server
                assert entry["fullUrl"].endswith(
                    f"/{entry['resource']['resourceType']}/{entry['resource']['id']}"
                )
            assert_valid(entry["resource"])
    elif kind == "Condition":
        verification = codes_of(resource["verificationStatus"], "condition-ver-status")
        assert len(verification) == 1 and verification[0] in CONDITION_VERIFICATION
        if verification == ["entered-in-error"]:
            assert "clinicalStatus" not in resource  # con-5
        else:
            clinical = codes_of(resource["clinicalStatus"], "condition-clinical")  # con-3
            assert len(clinical) == 1 and clinical[0] in CONDITION_CLINICAL
    elif kind == "Appointment":
        assert ("start" in resource) == ("end" in resource)  # app-2
        for participant in resource["participant"]:
            assert participant["status"] in PARTICIPANT_STATUS
    elif kind == "Observation":
        for category in resource.get("category", []):  # left out by _elements
            assert set(codes_of(category, "observation-category")) <= OBSERVATION_CATEGORY
        own_code = resource["code"]["coding"][0]["code"]
        for component in resource.get("component", []):
            assert component["code"]["coding"][0]["code"] != own_code  # obs-7
    elif kind == "Communication":
        assert "payload" not in resource and "note" not in resource
    elif kind == "OperationOutcome":
        for issue in resource["issue"]:
            assert issue["severity"] in ISSUE_SEVERITY
    return resource


def fhir_json(response, status=200) -> dict:
    assert response.status_code == status, response.content[:2000]
    assert response["Content-Type"].startswith(FHIR_JSON)
    return assert_valid(response.json())


def outcome(response, status: int, issue_code: str) -> dict:
    body = fhir_json(response, status)
    assert body["resourceType"] == "OperationOutcome"
    assert {issue["code"] for issue in body["issue"]} == {issue_code}
    return body


def by_type(bundle: dict) -> dict[str, dict[str, dict]]:
    found: dict[str, dict[str, dict]] = {}
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        found.setdefault(resource["resourceType"], {})[resource["id"]] = resource
    return found


def ref(resource_type: str, row) -> dict:
    return {"reference": f"{resource_type}/{row.uuid}"}


def as_decimal(value) -> Decimal:
    return Decimal(str(value))


# --- a full record, built through the services ---------------------------------------------------


@dataclass
class FullRecord:
    patient: object
    diagnoses: dict[str, Diagnosis]
    treatments: list[Treatment]
    assessments: list[Assessment]
    visits: dict[str, Visit]
    sent: Reminder


def _aware(days_ahead: int, hour: int = 10) -> datetime:
    moment = timezone.localtime() + timedelta(days=days_ahead)
    return moment.replace(hour=hour, minute=30, second=0, microsecond=0)


def _send(reminder: Reminder) -> Reminder:
    """Claim due reminders as the sweeper would at the reminder's time, and send this one."""
    claims = dict(reminders_claim_due(now=reminder.due_at, batch=1000))
    assert reminder_deliver(reminder_id=reminder.pk, claim_id=claims[reminder.pk]) == "sent"
    return Reminder.objects.get(pk=reminder.pk)


def _hfs7(answers):
    return {f"hfs7_item_{n}": answer for n, answer in enumerate(answers, start=1)}


def build_full_record() -> FullRecord:
    patient = PatientFactory(email_reminders=True, phone="+49 30 1234567", preferred_language="de")
    primary = diagnosis_for(
        patient,
        onset_date=date(2022, 6, 1),
        muscles=[codes.Muscle.ORBICULARIS_OCULI, codes.Muscle.ZYGOMATICUS],
        notes="Twitching began around the left eye.",
    )
    diagnoses = {
        "confirmed": primary,
        "provisional": diagnosis_for(
            patient,
            kind=codes.HfsKind.SECONDARY,
            secondary_cause=codes.SecondaryCause.CPA_TUMOR,
            side=codes.Side.RIGHT,
            presentation=codes.Presentation.ATYPICAL,
            status=codes.DiagnosisStatus.PROVISIONAL,
        ),
        "refuted": diagnosis_for(patient, side=codes.Side.BILATERAL, status=codes.DiagnosisStatus.REFUTED),
        "entered_in_error": record.diagnosis_retract(diagnosis=diagnosis_for(patient)),
    }
    first_mvd = treatment_for(
        primary,
        codes.TreatmentKind.MVD,
        started_on=date(2024, 9, 2),
        mvd={
            "technique": codes.MvdTechnique.TRANSPOSITION,
            "offending_vessels": [codes.Vessel.AICA, codes.Vessel.VEIN],
            "complications": [
                {
                    "kind": codes.MvdComplicationKind.TRANSIENT_FACIAL_PALSY,
                    "onset_on": date(2024, 9, 4),
                    "resolved_on": date(2024, 10, 1),
                }
            ],
        },
    )
    treatments = [
        treatment_for(
            primary,
            codes.TreatmentKind.MEDICATION,
            started_on=date(2023, 4, 1),
            ended_on=date(2023, 9, 1),
            status=codes.TreatmentStatus.STOPPED,
            medication={
                "drug": codes.Drug.CARBAMAZEPINE,
                "daily_dose_mg": "600",
                "stop_reason": codes.StopReason.INEFFECTIVE,
            },
        ),
        treatment_for(
            primary,
            codes.TreatmentKind.MEDICATION,
            started_on=date(2023, 9, 2),
            medication={"drug": codes.Drug.BACLOFEN, "daily_dose_mg": "12.5"},
        ),
        treatment_for(primary, codes.TreatmentKind.BOTULINUM_TOXIN, started_on=date(2024, 1, 10)),
        first_mvd,
        treatment_for(
            primary,
            codes.TreatmentKind.MVD,
            started_on=date(2025, 3, 3),
            status=codes.TreatmentStatus.PLANNED,
            mvd={
                "technique": codes.MvdTechnique.INTERPOSITION,
                "offending_vessels": [codes.Vessel.PICA],
                "redo_of": first_mvd,
            },
        ),
        treatment_for(primary, codes.TreatmentKind.OTHER, started_on=date(2024, 2, 1), notes="Acupuncture"),
        record.treatment_retract(
            treatment=treatment_for(primary, codes.TreatmentKind.BOTULINUM_TOXIN, started_on=date(2024, 5, 1))
        ),
    ]
    assessments = [
        follow_up.assessment_record(
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
            **_hfs7([3, 2, 4, 1, 0, 2, 3]),
        ),
        follow_up.assessment_record(patient=patient, assessed_on=date(2024, 10, 1), spasms_per_day="0"),
        follow_up.assessment_record(patient=patient, assessed_on=date(2024, 11, 1), jankovic_severity=1),
        follow_up.assessment_retract(
            assessment=follow_up.assessment_record(
                patient=patient, assessed_on=date(2024, 12, 1), house_brackmann_grade=2
            )
        ),
    ]

    def manual(days_ahead, **fields):
        return follow_up.visit_create(
            patient=patient, purpose="Review of the face", scheduled_for=_aware(days_ahead), **fields
        )

    visits = {
        VisitStatus.PLANNED: manual(25, status=VisitStatus.PLANNED),
        VisitStatus.BOOKED: manual(20, treatment=first_mvd),
        # Completed and missed as on the day after each (neither move is made for a visit ahead).
        VisitStatus.COMPLETED: visit_move(visit=manual(30), to=VisitStatus.COMPLETED, now=_aware(31)),
        VisitStatus.MISSED: visit_move(visit=manual(35), to=VisitStatus.MISSED, now=_aware(36)),
        VisitStatus.CANCELLED: visit_move(
            visit=manual(40), to=VisitStatus.CANCELLED, reason="The patient moved away."
        ),
    }
    sent = _send(Reminder.objects.get(visit=visits[VisitStatus.BOOKED], kind=ReminderKind.VISIT_7D))
    return FullRecord(patient, diagnoses, treatments, assessments, visits, sent)


@pytest.fixture
def full_record(db) -> FullRecord:
    return build_full_record()


@pytest.fixture
def front_desk(api_as):
    return api_as(Role.FRONT_DESK)


def everything(client, patient) -> dict:
    bundle = fhir_json(client.get(f"{FHIR}Patient/{patient.uuid}/$everything"))
    assert bundle["type"] == "searchset"
    assert bundle["total"] == len(bundle["entry"])
    return bundle


def search(client, resource_type: str, patient) -> dict:
    bundle = fhir_json(client.get(f"{FHIR}{resource_type}", {"patient": str(patient.uuid)}))
    assert bundle["type"] == "searchset" and bundle["total"] == len(bundle.get("entry", []))
    return bundle


# --- $everything --------------------------------------------------------------------------------

# The observations an assessment gives: the measure, its id suffix and category (followups/fhir.py).
SCALES = {
    "spasm-frequency": ("survey", lambda a: a.spasms_per_day),
    "episode-duration": ("survey", lambda a: a.episode_duration_seconds),
    "cohen-albert": ("exam", lambda a: a.cohen_albert_grade),
    "smc": ("exam", lambda a: a.smc_grade),
    "jankovic": (
        "survey",
        lambda a: a.jankovic_total if a.jankovic_total is not None else a.jankovic_severity,
    ),
    "house-brackmann": ("exam", lambda a: a.house_brackmann_grade),
    "hfs7": ("survey", lambda a: a.hfs7_total),
}


def expected_observation_ids(patient) -> set[str]:
    scales = {
        f"{a.uuid}-{suffix}"
        for a in Assessment.objects.filter(patient=patient)
        for suffix, (_, measure) in SCALES.items()
        if measure(a) is not None
    }
    return scales | {f"{r.uuid}-lab" for r in LabResult.objects.filter(patient=patient)}


def test_lab_results_are_laboratory_observations_with_their_loinc_codes(clinician, full_record):
    patient = full_record.patient
    today = timezone.localdate()
    sodium = follow_up.lab_result_record(
        patient=patient,
        test="sodium",
        taken_on=today - timedelta(days=3),
        value=Decimal("131.5"),
        abnormal=True,
    )
    count = follow_up.lab_result_record(patient=patient, test="blood_count", taken_on=today, abnormal=False)
    retracted = follow_up.lab_result_record(
        patient=patient, test="sodium", taken_on=today, value=Decimal("140")
    )
    LabResult.objects.filter(pk=retracted.pk).update(status="entered_in_error")

    found = by_type(search(clinician, "Observation", patient))["Observation"]
    assert {f"{r.uuid}-lab" for r in (sodium, count, retracted)} <= set(found)
    first = assert_valid(found[f"{sodium.uuid}-lab"])
    assert codes_of(first["category"][0]) == ["laboratory"]
    assert codes_of(first["code"], "loinc.org") == ["2951-2"]
    assert first["valueQuantity"] == {
        "value": 131.5,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert codes_of(first["interpretation"][0]) == ["A"]
    assert first["effectiveDateTime"] == (today - timedelta(days=3)).isoformat()
    blood = assert_valid(found[f"{count.uuid}-lab"])
    assert codes_of(blood["code"], "loinc.org") == ["58410-2"]
    assert "valueQuantity" not in blood and codes_of(blood["interpretation"][0]) == ["N"]
    assert found[f"{retracted.uuid}-lab"]["status"] == "entered-in-error"

    read = fhir_json(clinician.get(f"{FHIR}Observation/{sodium.uuid}-lab"))
    assert read == found[f"{sodium.uuid}-lab"]
    assert set(by_type(everything(clinician, patient))["Observation"]) == expected_observation_ids(patient)


def test_everything_holds_every_row_of_the_record_and_validates(clinician, full_record):
    patient = full_record.patient
    bundle = everything(clinician, patient)
    found = by_type(bundle)

    assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
    assert set(found["Patient"]) == {str(patient.uuid)}
    assert set(found["Condition"]) == {str(d.uuid) for d in patient.diagnoses.all()}
    treatments = Treatment.objects.filter(patient=patient)
    assert set(found["Procedure"]) == {
        str(t.uuid) for t in treatments if t.kind in (codes.TreatmentKind.MVD, codes.TreatmentKind.OTHER)
    }
    assert set(found["MedicationStatement"]) == {
        str(t.uuid)
        for t in treatments
        if t.kind in (codes.TreatmentKind.MEDICATION, codes.TreatmentKind.BOTULINUM_TOXIN)
    }
    assert set(found["Appointment"]) == {str(v.uuid) for v in Visit.objects.filter(patient=patient)}
    assert set(found["Observation"]) == expected_observation_ids(patient)
    assert set(found["Communication"]) == {
        str(r.uuid) for r in Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.SENT)
    }
    # The record has every treatment kind, every diagnosis and visit status, every scale.
    assert {t.kind for t in treatments} == set(codes.TreatmentKind.values)
    assert {d.status for d in patient.diagnoses.all()} == set(codes.DiagnosisStatus.values)
    assert {v.status for v in Visit.objects.filter(patient=patient)} == set(VisitStatus.values)
    assert {oid.split("-", 5)[5] for oid in found["Observation"]} == set(SCALES)
    assert len(found["Communication"]) == 1


def test_everything_of_an_unknown_patient_is_a_404_outcome(clinician, db):
    outcome(clinician.get(f"{FHIR}Patient/{PatientFactory.build().uuid}/$everything"), 404, "not-found")
    outcome(clinician.get(f"{FHIR}Patient/not-a-uuid/$everything"), 404, "not-found")


@pytest.mark.parametrize("kind", codes.TreatmentKind.values)
def test_everything_runs_the_same_queries_for_one_treatment_or_ten(api_as, db, kind):
    def record_with(count: int):
        patient = PatientFactory(email_reminders=True)
        diagnosis = diagnosis_for(patient, muscles=[codes.Muscle.ORBICULARIS_OCULI, codes.Muscle.FRONTALIS])
        earlier = None
        for n in range(count):
            started_on = date(2020, 1, 1) + timedelta(days=100 * n)
            details = {}
            if kind == codes.TreatmentKind.MVD and earlier:
                redo = {"technique": codes.MvdTechnique.INTERPOSITION, "offending_vessels": ["aica"]}
                details["mvd"] = {**redo, "redo_of": earlier}
            earlier = treatment_for(diagnosis, kind, started_on=started_on, **details)
            follow_up.assessment_record(
                patient=patient,
                assessed_on=started_on,
                spasms_per_day=n,
                smc_grade=1,
                jankovic_severity=1,
                jankovic_frequency=1,
                **_hfs7([1] * 7),
            )
            visit = follow_up.visit_create(patient=patient, purpose="Review", scheduled_for=_aware(20 + n))
            _send(Reminder.objects.get(visit=visit, kind=ReminderKind.VISIT_7D))
        return patient

    counts = {}
    for size in (1, 10):
        patient = record_with(size)
        client = api_as(Role.INTEGRATION_READ)  # each a first request: the same key bookkeeping
        with CaptureQueriesContext(connection) as queries:
            bundle = everything(client, patient)
        counts[size] = len(queries)
        assert len(by_type(bundle)["Communication"]) == size
    assert counts[1] == counts[10], counts
    assert counts[10] <= 25, counts


# --- Patient ------------------------------------------------------------------------------------


def test_patient_read_maps_the_row(clinician, full_record):
    patient = full_record.patient
    patient.refresh_from_db()
    body = fhir_json(clinician.get(f"{FHIR}Patient/{patient.uuid}"))
    assert body["id"] == str(patient.uuid)
    assert body["gender"] == patient.sex
    assert body["birthDate"] == patient.date_of_birth.isoformat()
    assert body["active"] is not patient.archived
    assert body["name"][0]["family"] == patient.family_name and body["name"][0]["given"] == [
        patient.given_name
    ]
    assert [i["value"] for i in body["identifier"]] == [patient.mrn]
    assert {(t["system"], t["value"]) for t in body["telecom"]} == {
        ("email", patient.email),
        ("phone", patient.phone),
    }
    assert codes_of(body["communication"][0]["language"]) == [patient.preferred_language]
    assert datetime.fromisoformat(body["meta"]["lastUpdated"]) == patient.updated_at


def test_an_archived_patient_is_served_as_inactive(clinician, db):
    patient = record.patient_archive(patient=PatientFactory())
    assert fhir_json(clinician.get(f"{FHIR}Patient/{patient.uuid}"))["active"] is False


@pytest.mark.parametrize("bad_id", ["00000000-0000-0000-0000-000000000000", "nonsense", "1"])
def test_unknown_ids_are_404_operation_outcomes(clinician, db, bad_id):
    outcome(clinician.get(f"{FHIR}Patient/{bad_id}"), 404, "not-found")
    outcome(clinician.get(f"{FHIR}Condition/{bad_id}"), 404, "not-found")


# --- Condition ----------------------------------------------------------------------------------


def test_conditions_map_status_side_kind_and_cause(clinician, full_record):
    found = by_type(search(clinician, "Condition", full_record.patient))["Condition"]
    for diagnosis in Diagnosis.objects.filter(patient=full_record.patient).prefetch_related("muscle_rows"):
        condition = found[str(diagnosis.uuid)]
        # DOMAIN.md: our statuses are Condition.verificationStatus words.
        assert codes_of(condition["verificationStatus"]) == [diagnosis.status.replace("_", "-")]
        clinical = codes_of(condition.get("clinicalStatus", {}))
        if diagnosis.status == codes.DiagnosisStatus.REFUTED:
            assert clinical and "active" not in clinical
        elif diagnosis.status != codes.DiagnosisStatus.ENTERED_IN_ERROR:
            assert clinical == ["active"]
        assert condition["subject"] == ref("Patient", full_record.patient)
        assert condition["recordedDate"] == diagnosis.diagnosed_on.isoformat()
        assert condition.get("onsetDateTime") == (diagnosis.onset_date and diagnosis.onset_date.isoformat())
        assert "13753008" in codes_of(condition["code"], "snomed.info/sct")
        assert codes_of(condition["code"], "/hfs-kind") == [diagnosis.kind]
        sites = condition["bodySite"]
        assert codes_of(sites[0], "/side") == [diagnosis.side]
        assert sorted(c for site in sites[1:] for c in codes_of(site, "/muscle")) == sorted(
            row.muscle for row in diagnosis.muscle_rows.all()
        )
        causes = [e for e in condition.get("extension", []) if e["url"].endswith("condition-dueTo")]
        if diagnosis.secondary_cause:
            assert codes_of(causes[0]["valueCodeableConcept"]) == [diagnosis.secondary_cause]
        else:
            assert causes == []
        assert [n["text"] for n in condition.get("note", [])] == (
            [diagnosis.notes] if diagnosis.notes else []
        )


# --- Procedure and MedicationStatement ----------------------------------------------------------


# Treatment statuses (DOMAIN.md calls them FHIR-like) onto the Procedure and MedicationStatement codes.
PROCEDURE_STATUS_OF = {
    codes.TreatmentStatus.PLANNED: "preparation",
    codes.TreatmentStatus.ACTIVE: "in-progress",
    codes.TreatmentStatus.COMPLETED: "completed",
    codes.TreatmentStatus.STOPPED: "stopped",
    codes.TreatmentStatus.ENTERED_IN_ERROR: "entered-in-error",
}
MEDICATION_STATEMENT_STATUS_OF = {
    **PROCEDURE_STATUS_OF,
    codes.TreatmentStatus.PLANNED: "intended",
    codes.TreatmentStatus.ACTIVE: "active",
}


def test_procedures_are_the_mvds_and_other_treatments(clinician, full_record):
    found = by_type(search(clinician, "Procedure", full_record.patient))["Procedure"]
    rows = Treatment.objects.filter(
        patient=full_record.patient, kind__in=(codes.TreatmentKind.MVD, codes.TreatmentKind.OTHER)
    ).select_related("diagnosis", "mvd__redo_of")
    assert set(found) == {str(t.uuid) for t in rows}
    for treatment in rows:
        procedure = found[str(treatment.uuid)]
        assert codes_of(procedure["code"], "/treatment-kind") == [treatment.kind]
        assert procedure["reasonReference"] == [ref("Condition", treatment.diagnosis)]
        assert codes_of(procedure["bodySite"][0], "/side") == [treatment.diagnosis.side]
        assert procedure["status"] == PROCEDURE_STATUS_OF[treatment.status]
        if treatment.kind == codes.TreatmentKind.MVD:
            detail = treatment.mvd
            assert procedure["performedDateTime"] == treatment.started_on.isoformat()
            assert sorted(c for item in procedure.get("complication", []) for c in codes_of(item)) == sorted(
                detail.complications.values_list("kind", flat=True)
            )
            extensions = {}
            for item in procedure["extension"]:
                extensions.setdefault(item["url"].rsplit("/", 1)[-1], []).append(item)
            assert sorted(e["valueCoding"]["code"] for e in extensions["offending-vessel"]) == sorted(
                detail.vessel_rows.values_list("vessel", flat=True)
            )
            assert extensions["mvd-technique"][0]["valueCoding"]["code"] == detail.technique
            assert extensions["mvd-redo"][0]["valueBoolean"] is detail.redo
            if detail.redo_of:
                assert extensions["mvd-redo-of"][0]["valueReference"] == ref("Procedure", detail.redo_of)
        else:
            assert procedure["performedPeriod"]["start"] == treatment.started_on.isoformat()
            assert [n["text"] for n in procedure["note"]] == [treatment.notes]


def test_medication_statements_carry_the_dose_or_the_injections(clinician, full_record):
    found = by_type(search(clinician, "MedicationStatement", full_record.patient))["MedicationStatement"]
    rows = Treatment.objects.filter(
        patient=full_record.patient,
        kind__in=(codes.TreatmentKind.MEDICATION, codes.TreatmentKind.BOTULINUM_TOXIN),
    ).select_related("diagnosis", "medication", "botulinum_toxin")
    assert set(found) == {str(t.uuid) for t in rows}
    for treatment in rows:
        statement = found[str(treatment.uuid)]
        assert statement["status"] == MEDICATION_STATEMENT_STATUS_OF[treatment.status]
        assert statement["subject"] == ref("Patient", full_record.patient)
        assert statement["reasonReference"] == [ref("Condition", treatment.diagnosis)]
        if treatment.kind == codes.TreatmentKind.MEDICATION:
            medication = treatment.medication
            assert codes_of(statement["medicationCodeableConcept"], "/drug") == [medication.drug]
            if medication.drug == codes.Drug.CARBAMAZEPINE:
                assert codes_of(statement["medicationCodeableConcept"], "rxnorm") == ["2002"]
            (dosage,) = statement["dosage"]
            ratio = dosage["doseAndRate"][0]["rateRatio"]
            assert as_decimal(ratio["numerator"]["value"]) == medication.daily_dose_mg
            assert (ratio["numerator"]["code"], ratio["denominator"]) == (
                "mg",
                {"value": 1, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"},
            )
            assert statement["effectivePeriod"]["start"] == treatment.started_on.isoformat()
            assert statement["effectivePeriod"].get("end") == (
                treatment.ended_on and treatment.ended_on.isoformat()
            )
            reasons = [c for concept in statement.get("statusReason", []) for c in codes_of(concept)]
            assert reasons == ([medication.stop_reason] if medication.stop_reason else [])
        else:
            session = treatment.botulinum_toxin
            assert codes_of(statement["medicationCodeableConcept"], "/toxin-product") == [session.product]
            assert statement["effectiveDateTime"] == treatment.started_on.isoformat()
            injected = {
                codes_of(dose["site"], "/muscle")[0]: as_decimal(
                    dose["doseAndRate"][0]["doseQuantity"]["value"]
                )
                for dose in statement["dosage"]
            }
            assert injected == {row.muscle: row.units for row in session.injections.all()}
    assert {t.status for t in rows} >= {"stopped", "active", "completed", "entered_in_error"}


# --- Appointment --------------------------------------------------------------------------------


def test_the_five_visit_statuses_map_as_api_md_says(api_as, full_record):
    # As a nurse sees them: the front desk's leave out description and reason (test_front_desk_privacy).
    found = by_type(search(api_as(Role.NURSE), "Appointment", full_record.patient))["Appointment"]
    for status, visit in full_record.visits.items():
        visit.refresh_from_db()
        appointment = found[str(visit.uuid)]
        assert visit.status == status
        assert appointment["status"] == APPOINTMENT_STATUS_OF[status]
    for visit in Visit.objects.filter(patient=full_record.patient).select_related("diagnosis"):
        appointment = found[str(visit.uuid)]
        assert appointment["status"] == APPOINTMENT_STATUS_OF[visit.status]
        assert datetime.fromisoformat(appointment["start"]) == visit.scheduled_for
        assert datetime.fromisoformat(appointment["end"]) > visit.scheduled_for
        assert appointment["requestedPeriod"] == [
            {"start": visit.window_start.isoformat(), "end": visit.window_end.isoformat()}
        ]
        assert appointment["participant"][0]["actor"] == ref("Patient", full_record.patient)
        assert appointment["description"] == visit.purpose
        assert appointment.get("reasonReference", []) == (
            [ref("Condition", visit.diagnosis)] if visit.diagnosis else []
        )
        assert appointment.get("cancelationReason", {}).get("text", "") == visit.cancel_reason


# --- Observation --------------------------------------------------------------------------------


def test_each_scale_of_an_assessment_is_a_coded_observation(clinician, full_record):
    found = by_type(search(clinician, "Observation", full_record.patient))["Observation"]
    assert set(found) == expected_observation_ids(full_record.patient)
    for assessment in Assessment.objects.filter(patient=full_record.patient):
        for suffix, (category, measure) in SCALES.items():
            if measure(assessment) is None:
                continue
            observation = found[f"{assessment.uuid}-{suffix}"]
            assert [codes_of(c, "observation-category") for c in observation["category"]] == [[category]]
            assert codes_of(observation["code"], "/observation") == [suffix]
            assert observation["status"] == assessment.status.replace("_", "-")
            assert observation["effectiveDateTime"] == assessment.assessed_on.isoformat()
            assert observation["subject"] == ref("Patient", full_record.patient)
            value = observation.get("valueQuantity", {}).get("value", observation.get("valueInteger"))
            if suffix == "jankovic":
                components = {codes_of(c["code"])[0]: c["valueInteger"] for c in observation["component"]}
                expected = {
                    f"jankovic-{part}": getattr(assessment, f"jankovic_{part}")
                    for part in ("severity", "frequency")
                    if getattr(assessment, f"jankovic_{part}") is not None
                }
                assert components == expected
                assert value == assessment.jankovic_total
            elif suffix == "hfs7":
                items = [c["valueInteger"] for c in observation["component"]]
                assert items == [getattr(assessment, f) for f in Assessment.HFS7_ITEMS]
                assert value == assessment.hfs7_total == sum(items)
            else:
                assert as_decimal(value) == measure(assessment)
        units = {
            o["valueQuantity"]["code"]
            for o in found.values()
            if o["id"].startswith(str(assessment.uuid)) and "valueQuantity" in o
        }
        assert units <= {"/d", "s"}


def test_an_observation_is_read_by_its_derived_id(clinician, full_record):
    assessment = full_record.assessments[0]
    body = fhir_json(clinician.get(f"{FHIR}Observation/{assessment.uuid}-hfs7"))
    assert body["valueInteger"] == Assessment.objects.get(pk=assessment.pk).hfs7_total
    # The second assessment has a spasm count only: it has no HFS-7 observation.
    outcome(clinician.get(f"{FHIR}Observation/{full_record.assessments[1].uuid}-hfs7"), 404, "not-found")
    outcome(clinician.get(f"{FHIR}Observation/{assessment.uuid}-nonsense"), 404, "not-found")


# --- Communication ------------------------------------------------------------------------------


def test_only_sent_reminders_are_communications_and_they_say_nothing(api_as, full_record):
    reminders = Reminder.objects.filter(visit__patient=full_record.patient).select_related("visit")
    assert {r.status for r in reminders} - {ReminderStatus.SENT}, "the record has reminders not sent"
    found = by_type(search(api_as(Role.FRONT_DESK), "Communication", full_record.patient))["Communication"]
    sent = [r for r in reminders if r.status == ReminderStatus.SENT]
    assert set(found) == {str(r.uuid) for r in sent} == {str(full_record.sent.uuid)}
    for reminder in sent:
        communication = found[str(reminder.uuid)]
        assert communication["status"] == "completed"
        assert communication["basedOn"] == [ref("Appointment", reminder.visit)]
        assert datetime.fromisoformat(communication["sent"]) == reminder.sent_at
        assert communication["recipient"] == [ref("Patient", full_record.patient)]
        assert codes_of(communication["topic"], "/reminder-kind") == [reminder.kind]
        assert not {"payload", "note", "reasonCode", "reasonReference"} & set(communication)


# --- roles, errors, wire format -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "front_desk_status"),
    [
        ("Condition?patient={id}", 403),
        ("Procedure?patient={id}", 403),
        ("MedicationStatement?patient={id}", 403),
        ("Observation?patient={id}", 403),
        ("Patient/{id}/$everything", 403),
        ("Patient/{id}", 200),
        ("Appointment?patient={id}", 200),
        ("Communication?patient={id}", 200),
    ],
)
def test_roles_gate_fhir_as_they_gate_the_api(api_as, patient, path, front_desk_status):
    url = FHIR + path.format(id=patient.uuid)
    response = api_as(Role.FRONT_DESK).get(url)
    if front_desk_status == 403:
        outcome(response, 403, "forbidden")
    else:
        fhir_json(response)
    for role in (Role.CLINICIAN, Role.NURSE, Role.INTEGRATION_READ):
        fhir_json(api_as(role).get(url))


def test_staff_sessions_pass_the_same_role_gate(client, patient):
    url = f"{FHIR}Condition?patient={patient.uuid}"
    for role, status in ((Role.NURSE, 200), (Role.FRONT_DESK, 403)):
        user = get_user_model().objects.create_user(f"staff-{role.value}")
        user.groups.add(group_for(role))
        client.force_login(user)
        assert fhir_json(client.get(url), status)["resourceType"] == (
            "Bundle" if status == 200 else "OperationOutcome"
        )


def test_without_credentials_a_401_outcome(anonymous, patient):
    response = anonymous.get(f"{FHIR}Patient/{patient.uuid}")
    outcome(response, 401, "login")
    assert response["WWW-Authenticate"] == "Token"
    outcome(anonymous.get(f"{FHIR}Condition", {"patient": str(patient.uuid)}), 401, "login")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "subject=Patient/{id}",
        "patient={id}&_count=ten",
        "patient={id}&_sort=_id",
        "patient={id}&status=active",
        "patient=not-a-uuid",
        "patient={id}&patient={id}",
    ],
)
def test_a_search_without_patient_or_with_another_parameter_is_a_400_outcome(clinician, patient, query):
    outcome(clinician.get(f"{FHIR}Condition?" + query.format(id=patient.uuid)), 400, "invalid")


def test_a_search_for_an_unknown_patient_is_an_empty_searchset(clinician, db):
    bundle = fhir_json(clinician.get(f"{FHIR}Condition", {"patient": str(PatientFactory.build().uuid)}))
    assert bundle["total"] == 0 and "entry" not in bundle


def test_a_patient_reference_and_format_json_are_accepted(clinician, full_record):
    plain = search(clinician, "Condition", full_record.patient)
    response = clinician.get(
        f"{FHIR}Condition",
        {"patient": f"Patient/{full_record.patient.uuid}", "_format": "json"},
        HTTP_ACCEPT="application/json",
    )
    assert by_type(fhir_json(response)).keys() == by_type(plain).keys()
    assert fhir_json(response)["total"] == plain["total"]
    outcome(
        clinician.get(f"{FHIR}Condition", {"patient": str(full_record.patient.uuid), "_format": "xml"}),
        406,
        "not-supported",
    )


def test_fhir_is_read_only(clinician, patient):
    outcome(clinician.post(f"{FHIR}Condition", {}, format="json"), 405, "not-supported")
    outcome(clinician.delete(f"{FHIR}Patient/{patient.uuid}"), 405, "not-supported")


def test_reads_of_each_type_answer_the_search_entry(clinician, full_record):
    for entry in everything(clinician, full_record.patient)["entry"]:
        resource = entry["resource"]
        body = fhir_json(clinician.get(f"{FHIR}{resource['resourceType']}/{resource['id']}"))
        assert body == resource
        assert entry["fullUrl"] == f"http://testserver{FHIR}{resource['resourceType']}/{resource['id']}"


def test_references_point_at_resources_of_the_same_answer(clinician, full_record):
    bundle = everything(clinician, full_record.patient)
    served = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}

    def references(value):
        if isinstance(value, dict):
            if set(value) == {"reference"}:
                yield value["reference"]
            for item in value.values():
                yield from references(item)
        elif isinstance(value, list):
            for item in value:
                yield from references(item)

    assert set(references([e["resource"] for e in bundle["entry"]])) <= served


# --- audit --------------------------------------------------------------------------------------


def test_every_resource_returned_is_audited_on_the_fhir_channel(api_as, full_record):
    client = api_as(Role.INTEGRATION_READ)
    search(client, "Condition", full_record.patient)
    rows = AuditEvent.objects.filter(channel="fhir", resource="Condition")
    assert {r.object_id for r in rows} == {str(d.uuid) for d in full_record.patient.diagnoses.all()}
    assert {(r.patient_id, r.actor, r.action, r.status) for r in rows} == {
        (full_record.patient.uuid, client.api_client.user.username, AuditEvent.Action.READ, 200)
    }
    bundle = everything(client, full_record.patient)
    rows = AuditEvent.objects.filter(channel="fhir", path__endswith="/$everything")
    assert sorted((r.resource, r.object_id) for r in rows) == sorted(
        (e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
    )
    assert {r.patient_id for r in rows} == {full_record.patient.uuid}
    before = AuditEvent.objects.count()
    api_as(Role.FRONT_DESK).get(f"{FHIR}Condition", {"patient": str(full_record.patient.uuid)})
    # A refusal shows nothing, and is recorded as the attempt it was (clinic.audit_refused).
    [refused] = AuditEvent.objects.order_by("id")[before:]
    assert (refused.resource, refused.object_id, refused.status) == ("Condition", "", 403)


# --- metadata -----------------------------------------------------------------------------------


# The clinic's sessions: searched by their own parameters (tests/api/test_fhir_sessions.py).
CLINIC_TYPES = {"Schedule", "Slot"}


def _routes() -> dict[str, set[str]]:
    """What fhir_urls serves, per resource type: read, search-type, or $operation."""
    served: dict[str, set[str]] = {}
    for route in fhir_routes:
        assert isinstance(route, URLPattern)
        parts = str(route.pattern).split("/")
        if parts == ["metadata"]:
            continue
        what = "search-type" if len(parts) == 1 else "read" if len(parts) == 2 else parts[2]
        served.setdefault(parts[0], set()).add(what)
    return served


def test_metadata_lists_exactly_what_is_served_and_needs_no_credentials(anonymous, db):
    statement = fhir_json(anonymous.get(f"{FHIR}metadata"))
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"].startswith("4.0")
    (rest,) = statement["rest"]
    listed = {}
    for resource in rest["resource"]:
        ways = {i["code"] for i in resource["interaction"]}
        ways |= {f"${o['name']}" for o in resource.get("operation", [])}
        listed[resource["type"]] = ways
        if "search-type" in ways and resource["type"] not in CLINIC_TYPES:
            assert [p["name"] for p in resource["searchParam"]] == ["patient"]
    assert listed == _routes()
    assert set(listed) == {
        "Patient",
        "Condition",
        "Procedure",
        "MedicationStatement",
        "Appointment",
        "Observation",
        "Communication",
        *CLINIC_TYPES,
    }


def test_every_role_that_reads_assessments_reads_lab_results_so_one_observation_type_serves_both():
    # Lab results are served as Observations beside the assessments' scales, under the
    # assessments' permission: a role given one without the other would need its own split.
    assert [
        role for role, kinds in READ.items() if Kind.ASSESSMENT in kinds and Kind.LAB_RESULT not in kinds
    ] == []
