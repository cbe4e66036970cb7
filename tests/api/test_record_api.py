"""The clinical record over the API: patients, diagnoses, imaging studies and treatments.

Every field of API.md on each resource, the filters, writes through the services with their rules
coming back as field messages, archiving by DELETE and retraction by PATCH.
"""

from datetime import date, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from django.utils import timezone

from patients import codes
from patients.models import Diagnosis, ImagingStudy, MedicationDetail, Patient, Treatment
from patients.services import imaging_study_record, treatment_record, treatment_retract
from tests.api.conftest import API, diagnosis_body, imaging_body, medication_body, patient_body
from tests.factories import PatientFactory, diagnosis_for, treatment_for

TOXIN = codes.TreatmentKind.BOTULINUM_TOXIN
MVD = codes.TreatmentKind.MVD
MEDICATION = codes.TreatmentKind.MEDICATION


def url(resource, obj=None):
    if obj is None:
        return f"{API}{resource}/"
    return f"{API}{resource}/{getattr(obj, 'uuid', obj)}/"


def ids(response):
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


def uuids(*objs):
    return sorted(str(obj.uuid) for obj in objs)


def assert_moment(value: str, expected: datetime):
    """A date-time of the API: ISO 8601 with an offset, and the same instant as ``expected``."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    assert parsed == expected


def messages(response):
    """A 400's messages by field, without the machine-readable codes the API puts beside a service's
    messages (``error_codes``, which must name the same fields)."""
    body = response.json()
    error_codes = body.pop("error_codes", None)
    if error_codes is not None:
        assert set(error_codes) == set(body), body
    return body


def toxin_body(diagnosis, started_on, *units, product="onabotulinumtoxinA", **details):
    muscles = [m.value for m in codes.Muscle]
    return {
        "patient": str(diagnosis.patient.uuid),
        "diagnosis": str(diagnosis.uuid),
        "kind": "botulinum_toxin",
        "started_on": started_on,
        "botulinum_toxin": {
            "product": product,
            "injections": [{"muscle": muscles[i], "units": u} for i, u in enumerate(units)],
            **details,
        },
    }


# --- patients -------------------------------------------------------------------------------------


def test_a_patient_has_every_field_of_api_md(clinician, patient_record):
    patient = Patient.objects.get(pk=patient_record.patient.pk)

    body = clinician.get(url("patients", patient)).json()

    assert set(body) == {
        "id",
        "mrn",
        "given_name",
        "family_name",
        "date_of_birth",
        "sex",
        "email",
        "phone",
        "preferred_language",
        "timezone",
        "email_reminders",
        "at_risk_hla_b1502",
        "hla_b1502_result",
        "archived",
        "follow_up_ended_on",
        "follow_up_end_reason",
        "created_at",
        "updated_at",
    }
    assert UUID(body["id"]) == patient.uuid
    assert body["id"] != str(patient.pk)
    assert {k: body[k] for k in ("mrn", "given_name", "family_name", "email", "phone")} == {
        "mrn": patient.mrn,
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "email": patient.email,
        "phone": "",
    }
    assert body["date_of_birth"] == "1968-05-17"
    assert (body["sex"], body["preferred_language"], body["timezone"]) == ("female", "en", "")
    assert (body["email_reminders"], body["at_risk_hla_b1502"], body["hla_b1502_result"]) == (
        False,
        True,
        "negative",
    )
    assert body["archived"] is False
    assert_moment(body["created_at"], patient.created_at)
    assert_moment(body["updated_at"], patient.updated_at)
    # The list shows the same row.
    assert clinician.get(url("patients")).json()["results"] == [body]


def test_a_patient_is_registered_through_the_service(clinician, db):
    body = patient_body(
        mrn="NEW-1",
        phone="+49 30 1234",
        preferred_language="de",
        timezone="Europe/Vienna",
        email_reminders=True,
        at_risk_hla_b1502=True,
        hla_b1502_result="not_tested",
    )

    response = clinician.post(url("patients"), body, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    patient = Patient.objects.get(uuid=created["id"])
    for field, value in body.items():
        assert created[field] == value, field
    assert patient.email_reminders_consented_at is not None  # the service recorded the consent
    assert patient.history.count() == 1
    assert created["archived"] is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email_reminders": True, "email": ""}, "email"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"preferred_language": "tlh"}, "preferred_language"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "17.05.1968"}, "date_of_birth"),
        ({"sex": "f"}, "sex"),
        ({"hla_b1502_result": "maybe"}, "hla_b1502_result"),
        ({"email": "not-an-address"}, "email"),
        ({"mrn": "M" * 33}, "mrn"),
        ({"given_name": ""}, "given_name"),
    ],
)
def test_a_patient_the_rules_refuse_is_a_400_on_its_field(clinician, db, change, field):
    response = clinician.post(url("patients"), patient_body(**change), format="json")
    assert response.status_code == 400
    assert list(messages(response)) == [field]
    assert not Patient.objects.exists()


def test_a_second_patient_with_the_same_mrn_is_refused(clinician, patient_record):
    response = clinician.post(url("patients"), patient_body(mrn=patient_record.patient.mrn), format="json")
    assert response.status_code == 400
    assert messages(response) == {"mrn": ["Patient with this MRN already exists."]}


def test_required_patient_fields_are_named(clinician, db):
    response = clinician.post(url("patients"), {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"mrn", "given_name", "family_name", "date_of_birth", "sex"}


def test_a_patient_is_changed_with_patch_and_put(clinician, patient_record):
    patient = patient_record.patient
    patched = clinician.patch(url("patients", patient), {"phone": "+49 30 9"}, format="json")
    put = clinician.put(
        url("patients", patient), patient_body(mrn=patient.mrn, family_name="Neumann"), format="json"
    )
    incomplete = clinician.put(url("patients", patient), {"mrn": patient.mrn}, format="json")

    assert patched.status_code == put.status_code == 200
    assert patched.json()["phone"] == "+49 30 9"
    assert put.json()["family_name"] == "Neumann"
    assert incomplete.status_code == 400
    assert set(incomplete.json()) == {"given_name", "family_name", "date_of_birth", "sex"}
    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.family_name, stored.date_of_birth) == ("Neumann", date(1970, 2, 3))


def test_a_date_of_birth_after_recorded_dates_is_refused(clinician, patient_record):
    response = clinician.patch(
        url("patients", patient_record.patient), {"date_of_birth": "2023-01-01"}, format="json"
    )
    assert response.status_code == 400
    [message] = response.json()["date_of_birth"]
    assert "records dated before this date of birth" in message


def test_patients_filter_by_mrn_family_name_and_archived(clinician, db):
    ada = PatientFactory(mrn="F-ADA", family_name="Lovelace")
    grace = PatientFactory(mrn="F-GRACE", family_name="Hopper")
    archived = PatientFactory(mrn="F-OLD", family_name="Lovelace")
    clinician.delete(url("patients", archived))

    assert ids(clinician.get(url("patients"), {"mrn": "F-ADA"})) == uuids(ada)
    assert ids(clinician.get(url("patients"), {"mrn": "f-ada"})) == []
    assert ids(clinician.get(url("patients"), {"family_name": "lovelace"})) == uuids(ada, archived)
    assert ids(clinician.get(url("patients"), {"family_name": "Love"})) == []
    assert ids(clinician.get(url("patients"), {"archived": "true"})) == uuids(archived)
    assert ids(clinician.get(url("patients"), {"archived": "false"})) == uuids(ada, grace)
    assert ids(clinician.get(url("patients"), {"archived": "false", "family_name": "LOVELACE"})) == uuids(ada)
    assert ids(clinician.get(url("patients"))) == uuids(ada, grace, archived)


def test_delete_archives_the_patient_and_deletes_nothing(clinician, patient_record):
    patient = patient_record.patient
    counts = [m.objects.count() for m in (Patient, Diagnosis, ImagingStudy, Treatment)]

    response = clinician.delete(url("patients", patient))

    assert response.status_code == 204
    assert response.content == b""
    assert [m.objects.count() for m in (Patient, Diagnosis, ImagingStudy, Treatment)] == counts
    stored = Patient.objects.get(pk=patient.pk)
    assert stored.archived is True and stored.archived_at is not None
    assert clinician.get(url("patients", patient)).json()["archived"] is True
    # The record stays readable, and DELETE again changes nothing.
    assert clinician.get(url("diagnoses", patient_record.diagnosis)).status_code == 200
    assert clinician.delete(url("patients", patient)).status_code == 204
    assert Patient.objects.get(pk=patient.pk).archived_at == stored.archived_at
    # An archived patient takes no new records.
    refused = clinician.post(url("diagnoses"), diagnosis_body(patient), format="json")
    assert refused.status_code == 400
    assert "archived" in refused.json()["patient"][0]


def test_delete_on_an_unknown_patient_is_a_404(clinician, db):
    assert clinician.delete(url("patients", uuid4())).status_code == 404


# --- diagnoses ------------------------------------------------------------------------------------


def test_a_diagnosis_has_every_field_of_api_md(clinician, patient_record):
    diagnosis = Diagnosis.objects.get(pk=patient_record.diagnosis.pk)

    body = clinician.get(url("diagnoses", diagnosis)).json()

    assert body == {
        "id": str(diagnosis.uuid),
        "patient": str(patient_record.patient.uuid),
        "kind": "primary",
        "secondary_cause": "",
        "side": "left",
        "presentation": "typical",
        "onset_date": "2022-08-13",
        "muscles": ["orbicularis_oculi"],
        "status": "confirmed",
        "diagnosed_on": "2023-03-01",
        "notes": "",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert_moment(body["created_at"], diagnosis.created_at)
    assert_moment(body["updated_at"], diagnosis.updated_at)


def test_a_diagnosis_is_recorded_and_changed_through_the_service(clinician, patient_record):
    patient = patient_record.patient
    body = diagnosis_body(
        patient,
        kind="secondary",
        secondary_cause="post_paralytic",
        side="bilateral",
        presentation="atypical",
        onset_date="2021-04-02",
        diagnosed_on="2023-01-10",
        status="provisional",
        muscles=["zygomaticus", "frontalis"],
        notes="After Bell's palsy.",
    )

    created = clinician.post(url("diagnoses"), body, format="json")

    assert created.status_code == 201, created.content
    stored = Diagnosis.objects.get(uuid=created.json()["id"])
    assert {k: created.json()[k] for k in body} == {**body, "muscles": ["frontalis", "zygomaticus"]}
    assert stored.history.count() == 1
    changed = clinician.patch(
        url("diagnoses", stored), {"muscles": ["platysma"], "status": "confirmed"}, format="json"
    )
    assert changed.status_code == 200
    assert (changed.json()["muscles"], changed.json()["status"]) == (["platysma"], "confirmed")
    assert changed.json()["kind"] == "secondary"  # what PATCH did not name stays


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"kind": "secondary"}, {"secondary_cause": ["A secondary diagnosis needs its secondary cause."]}),
        (
            {"secondary_cause": "cpa_tumor"},
            {"secondary_cause": ["A primary diagnosis has no secondary cause."]},
        ),
        ({"onset_date": "2023-07-01"}, {"onset_date": ["The onset is after the diagnosis."]}),
        (
            {"diagnosed_on": "1960-01-01"},
            {"diagnosed_on": ["This date is before the patient's date of birth."]},
        ),
        ({"diagnosed_on": "2999-01-01"}, {"diagnosed_on": ["This date is in the future."]}),
    ],
)
def test_a_diagnosis_the_rules_refuse_is_a_400_with_their_message(clinician, patient_record, change, errors):
    response = clinician.post(
        url("diagnoses"), diagnosis_body(patient_record.patient, **change), format="json"
    )
    assert response.status_code == 400
    assert messages(response) == errors
    assert Diagnosis.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "tertiary"},
        {"side": "up"},
        {"muscles": ["orbicularis_oculi", "nose"]},
        {"muscles": "frontalis"},
    ],
)
def test_a_diagnosis_with_unknown_codes_is_a_400_on_the_field(clinician, patient_record, change):
    response = clinician.post(
        url("diagnoses"), diagnosis_body(patient_record.patient, **change), format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == list(change)


def test_a_record_stays_with_its_patient(clinician, patient_record):
    other = PatientFactory()
    for resource, obj in (
        ("diagnoses", patient_record.diagnosis),
        ("imaging-studies", patient_record.imaging_study),
        ("treatments", patient_record.medication),
    ):
        response = clinician.patch(url(resource, obj), {"patient": str(other.uuid)}, format="json")
        assert response.status_code == 400
        assert messages(response) == {"patient": ["A record stays with its patient."]}
        assert type(obj).objects.get(pk=obj.pk).patient_id == patient_record.patient.pk


def test_diagnoses_filter_by_patient_kind_and_status(clinician, patient_record):
    first = patient_record.diagnosis
    secondary = diagnosis_for(
        patient_record.patient, kind="secondary", secondary_cause="cpa_tumor", status="provisional"
    )
    elsewhere = diagnosis_for(PatientFactory())
    patient = str(patient_record.patient.uuid)

    assert ids(clinician.get(url("diagnoses"), {"patient": patient})) == uuids(first, secondary)
    assert ids(clinician.get(url("diagnoses"), {"kind": "secondary"})) == uuids(secondary)
    assert ids(clinician.get(url("diagnoses"), {"kind": "primary"})) == uuids(first, elsewhere)
    assert ids(clinician.get(url("diagnoses"), {"status": "provisional"})) == uuids(secondary)
    assert ids(clinician.get(url("diagnoses"), {"patient": patient, "kind": "primary"})) == uuids(first)
    assert ids(clinician.get(url("diagnoses"), {"patient": str(uuid4())})) == []


def test_a_diagnosis_is_retracted_by_patch_and_never_deleted(clinician, patient_record):
    diagnosis = patient_record.diagnosis

    response = clinician.patch(url("diagnoses", diagnosis), {"status": "entered_in_error"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "entered_in_error"
    stored = Diagnosis.objects.get(pk=diagnosis.pk)
    assert stored.status == codes.DiagnosisStatus.ENTERED_IN_ERROR
    assert stored.history.first().status == codes.DiagnosisStatus.ENTERED_IN_ERROR
    listed = clinician.get(url("diagnoses"), {"status": "entered_in_error"})
    assert ids(listed) == uuids(diagnosis)
    assert clinician.delete(url("diagnoses", diagnosis)).status_code == 405
    assert Diagnosis.objects.filter(pk=diagnosis.pk).exists()


# --- imaging studies ------------------------------------------------------------------------------


def test_an_imaging_study_has_every_field_of_api_md(clinician, patient_record):
    study = ImagingStudy.objects.get(pk=patient_record.imaging_study.pk)

    body = clinician.get(url("imaging-studies", study)).json()

    assert body == {
        "id": str(study.uuid),
        "patient": str(patient_record.patient.uuid),
        "diagnosis": str(patient_record.diagnosis.uuid),
        "performed_on": "2023-02-19",
        "modality": "mri",
        "sequences": ["ciss", "tof_mra"],
        "field_strength_tesla": 3.0,
        "compression_found": "yes",
        "offending_vessels": ["aica"],
        "lesion_found": None,
        "report": "AICA loop at the root exit zone.",
        "status": "available",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert_moment(body["updated_at"], study.updated_at)


def test_an_imaging_study_is_recorded_through_the_service(clinician, patient_record):
    body = imaging_body(
        patient_record.patient,
        diagnosis=str(patient_record.diagnosis.uuid),
        modality="mra",
        sequences=["fiesta", "contrast_mra"],
        field_strength_tesla=1.5,
        compression_found="no",
        offending_vessels=["none_identified"],
        lesion_found=False,
        report="No contact.",
    )

    response = clinician.post(url("imaging-studies"), body, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert {k: created[k] for k in body} == {**body, "sequences": ["contrast_mra", "fiesta"]}
    assert ImagingStudy.objects.get(uuid=created["id"]).sequence_rows.count() == 2


@pytest.mark.parametrize(
    ("given", "stored"), [(3, 3.0), ("3.0", 3.0), ("1.5", 1.5), (1.5, 1.5), (None, None)]
)
def test_the_field_strength_is_a_number_as_it_reads_back(clinician, patient_record, given, stored):
    body = imaging_body(patient_record.patient, field_strength_tesla=given)
    response = clinician.post(url("imaging-studies"), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["field_strength_tesla"] == stored


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"field_strength_tesla": 2}, {"field_strength_tesla": ["The field strength is 1.5 or 3 T."]}),
        ({"field_strength_tesla": 15}, None),
        ({"field_strength_tesla": "strong"}, None),
        (
            {"offending_vessels": ["none_identified", "aica"]},
            {"offending_vessels": ["'None identified' cannot be combined with a named vessel."]},
        ),
        ({"sequences": ["ciss", "ciss"]}, {"sequences": ["A code is listed twice."]}),
        (
            {"performed_on": "1901-01-01"},
            {"performed_on": ["This date is before the patient's date of birth."]},
        ),
        ({"modality": "xray"}, None),
    ],
)
def test_an_imaging_study_the_rules_refuse_is_a_400(clinician, patient_record, change, errors):
    response = clinician.post(
        url("imaging-studies"), imaging_body(patient_record.patient, **change), format="json"
    )
    assert response.status_code == 400
    if errors is None:
        assert list(messages(response)) == list(change)
    else:
        assert messages(response) == errors
    assert ImagingStudy.objects.count() == 1


def test_imaging_of_a_diagnosis_of_another_patient_is_refused(clinician, patient_record):
    other = diagnosis_for(PatientFactory())
    body = imaging_body(patient_record.patient, diagnosis=str(other.uuid))

    response = clinician.post(url("imaging-studies"), body, format="json")
    patched = clinician.patch(
        url("imaging-studies", patient_record.imaging_study), {"diagnosis": str(other.uuid)}, format="json"
    )

    assert response.status_code == patched.status_code == 400
    assert messages(response) == messages(patched) == {"diagnosis": ["This belongs to another patient."]}
    assert (
        ImagingStudy.objects.get(pk=patient_record.imaging_study.pk).diagnosis_id
        == patient_record.diagnosis.pk
    )


def test_imaging_studies_filter_by_patient_and_are_retracted_by_patch(clinician, patient_record):
    study = patient_record.imaging_study
    other = PatientFactory()
    elsewhere = imaging_study_record(patient=other, performed_on=date(2023, 1, 1), modality="ct")

    assert ids(clinician.get(url("imaging-studies"), {"patient": str(other.uuid)})) == uuids(elsewhere)
    assert ids(clinician.get(url("imaging-studies"))) == uuids(study, elsewhere)

    retracted = clinician.patch(url("imaging-studies", study), {"status": "entered_in_error"}, format="json")
    assert retracted.status_code == 200
    assert retracted.json()["status"] == "entered_in_error"
    assert ImagingStudy.objects.get(pk=study.pk).status == codes.ImagingStatus.ENTERED_IN_ERROR


# --- treatments -----------------------------------------------------------------------------------


def test_each_treatment_has_the_fields_of_api_md_and_only_the_detail_of_its_kind(clinician, patient_record):
    rows = {row["kind"]: row for row in clinician.get(url("treatments")).json()["results"]}
    common = {"id", "patient", "diagnosis", "kind", "status", "started_on", "ended_on", "notes"}

    for kind, row in rows.items():
        assert common | {"medication", "botulinum_toxin", "mvd", "created_at", "updated_at"} == set(row)
        assert (row["patient"], row["diagnosis"]) == (
            str(patient_record.patient.uuid),
            str(patient_record.diagnosis.uuid),
        )
        assert (row["started_on"], row["ended_on"], row["notes"]) == ("2024-01-15", None, "")
        details = {name for name in ("medication", "botulinum_toxin", "mvd") if row[name] is not None}
        assert details == {kind}

    assert rows["medication"]["id"] == str(patient_record.medication.uuid)
    assert rows["medication"]["status"] == "active"
    assert rows["medication"]["medication"] == {
        "drug": "carbamazepine",
        "daily_dose_mg": 400.0,
        "stop_reason": "",
        "dose_changed_on": None,
    }
    assert rows["botulinum_toxin"]["botulinum_toxin"] == {
        "product": "onabotulinumtoxinA",
        "injections": [
            {"muscle": "orbicularis_oculi", "units": 15.0},
            {"muscle": "zygomaticus", "units": 5.0},
        ],
        "total_units": 20.0,
        "wore_off_on": None,
        "self_rated_improvement_pct": None,
    }
    assert rows["mvd"]["mvd"] == {
        "technique": "interposition",
        "offending_vessels": ["aica"],
        "redo": False,
        "redo_of": None,
        "complications": [],
    }
    detail = clinician.get(url("treatments", patient_record.toxin)).json()
    assert detail == rows["botulinum_toxin"]


def test_a_treatment_of_kind_other_has_no_detail(clinician, patient_record):
    body = {
        **medication_body(patient_record.diagnosis, kind="other", notes="Acupuncture"),
        "medication": None,
    }
    response = clinician.post(url("treatments"), body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["medication"], created["botulinum_toxin"], created["mvd"]) == (None, None, None)
    assert created["notes"] == "Acupuncture"


def test_a_medication_is_recorded_and_its_dose_changed(clinician, patient_record):
    response = clinician.post(url("treatments"), medication_body(patient_record.diagnosis), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["medication"] == {
        "drug": "clonazepam",
        "daily_dose_mg": 1.5,
        "stop_reason": "",
        "dose_changed_on": None,
    }

    changed = clinician.patch(
        url("treatments", created["id"]), {"medication": {"daily_dose_mg": "2.5"}}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["medication"]["daily_dose_mg"] == 2.5
    assert changed.json()["medication"]["drug"] == "clonazepam"
    # The service notes when the dose changed.
    assert changed.json()["medication"]["dose_changed_on"] == timezone.localdate().isoformat()

    stopped = clinician.patch(
        url("treatments", created["id"]),
        {"status": "stopped", "ended_on": "2024-06-01", "medication": {"stop_reason": "adverse_effect"}},
        format="json",
    )
    assert stopped.status_code == 200
    assert (stopped.json()["status"], stopped.json()["ended_on"]) == ("stopped", "2024-06-01")
    assert stopped.json()["medication"]["stop_reason"] == "adverse_effect"


def test_a_dose_above_the_ceiling_is_a_400_nested_under_the_detail(clinician, patient_record):
    too_much = {"drug": "carbamazepine", "daily_dose_mg": 1300}
    created = clinician.post(
        url("treatments"), medication_body(patient_record.diagnosis, medication=too_much), format="json"
    )
    changed = clinician.patch(
        url("treatments", patient_record.medication), {"medication": {"daily_dose_mg": 1300}}, format="json"
    )

    message = "Carbamazepine is limited to 1200 mg a day; 1300.00 mg is above it."
    assert created.status_code == changed.status_code == 400
    assert messages(created) == messages(changed) == {"medication": {"daily_dose_mg": [message]}}
    assert Treatment.objects.count() == 3
    assert MedicationDetail.objects.get(treatment=patient_record.medication).daily_dose_mg == 400


def test_a_treatment_for_a_diagnosis_of_another_patient_is_refused(clinician, patient_record):
    other = diagnosis_for(PatientFactory())
    body = {**medication_body(patient_record.diagnosis), "diagnosis": str(other.uuid)}

    response = clinician.post(url("treatments"), body, format="json")

    assert response.status_code == 400
    assert messages(response) == {"diagnosis": ["This belongs to another patient."]}
    assert not Treatment.objects.filter(diagnosis=other).exists()


def test_a_detail_that_does_not_match_the_kind_is_refused(clinician, patient_record):
    body = {
        **medication_body(patient_record.diagnosis),
        "mvd": {"technique": "interposition"},
    }
    missing = {**medication_body(patient_record.diagnosis), "medication": None}

    mismatched = clinician.post(url("treatments"), body, format="json")
    without = clinician.post(url("treatments"), missing, format="json")
    rekinded = clinician.patch(url("treatments", patient_record.medication), {"kind": "mvd"}, format="json")

    assert mismatched.status_code == without.status_code == rekinded.status_code == 400
    assert messages(mismatched) == {"mvd": ["Medication treatments have no mvd details."]}
    assert messages(without) == {"medication": ["A medication treatment needs its details."]}
    assert messages(rekinded) == {"kind": ["A treatment's kind cannot change; record a new treatment."]}


def test_toxin_sessions_keep_to_200_units_of_one_product_in_30_days(clinician, patient_record):
    """The fixture's session gave 20 units of onabotulinumtoxinA on 2024-01-15."""
    diagnosis = patient_record.diagnosis

    over = clinician.post(url("treatments"), toxin_body(diagnosis, "2024-02-01", 100, 81), format="json")
    assert over.status_code == 400
    [message] = over.json()["botulinum_toxin"]["injections"]
    assert message == (
        "This makes 201.00 units of onabotulinumtoxinA between 2024-01-15 and 2024-02-13; "
        "at most 200 units of one product are allowed in any 30 days."
    )
    assert Treatment.objects.filter(kind=TOXIN).count() == 1

    exactly = clinician.post(url("treatments"), toxin_body(diagnosis, "2024-02-01", 100, 80), format="json")
    assert exactly.status_code == 201, exactly.content
    assert exactly.json()["botulinum_toxin"]["total_units"] == 180.0

    # Another product is counted on its own; a month later the window has moved on.
    other = toxin_body(diagnosis, "2024-02-02", 150, product="incobotulinumtoxinA")
    assert clinician.post(url("treatments"), other, format="json").status_code == 201
    later = clinician.post(url("treatments"), toxin_body(diagnosis, "2024-03-03", 150), format="json")
    assert later.status_code == 201, later.content
    # Moving a session into a full window is refused as well.
    moved = clinician.patch(
        url("treatments", later.json()["id"]), {"started_on": "2024-02-10"}, format="json"
    )
    assert moved.status_code == 400
    assert list(moved.json()["botulinum_toxin"]) == ["injections"]


def test_a_retracted_toxin_session_no_longer_counts(clinician, patient_record):
    treatment_retract(treatment=patient_record.toxin)
    response = clinician.post(
        url("treatments"), toxin_body(patient_record.diagnosis, "2024-01-20", 200), format="json"
    )
    assert response.status_code == 201, response.content


def test_total_units_is_read_only(clinician, patient_record):
    body = toxin_body(patient_record.diagnosis, "2024-05-01", 10, 2.5, total_units=999)
    response = clinician.post(url("treatments"), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["botulinum_toxin"]["total_units"] == 12.5


@pytest.mark.parametrize(
    ("details", "errors"),
    [
        ({"injections": []}, {"injections": ["A session needs at least one injected muscle."]}),
        (
            {"injections": [{"muscle": "frontalis", "units": -1}]},
            {"injections": {"0": {"units": ["Units must be more than 0."]}}},
        ),
        ({"self_rated_improvement_pct": 101}, None),
        ({"wore_off_on": "2024-01-01"}, {"wore_off_on": ["The benefit wore off before the injection."]}),
        ({"product": "botox"}, None),
    ],
)
def test_a_toxin_session_the_rules_refuse_is_a_400_under_its_detail(
    clinician, patient_record, details, errors
):
    body = toxin_body(patient_record.diagnosis, "2024-04-01", 10)
    body["botulinum_toxin"].update(details)
    response = clinician.post(url("treatments"), body, format="json")
    assert response.status_code == 400
    assert list(messages(response)) == ["botulinum_toxin"]
    if errors is None:
        assert list(response.json()["botulinum_toxin"]) == list(details)
    else:
        assert response.json()["botulinum_toxin"] == errors


def test_an_mvd_redo_links_the_earlier_surgery_with_its_complications(clinician, patient_record):
    body = {
        **medication_body(patient_record.diagnosis, kind="mvd", status="completed", started_on="2024-09-01"),
        "medication": None,
        "mvd": {
            "technique": "transposition",
            "offending_vessels": ["pica", "vertebral"],
            "redo_of": str(patient_record.mvd.uuid),
            "complications": [
                {"kind": "transient_facial_palsy", "onset_on": "2024-09-03", "resolved_on": "2024-10-15"},
                {"kind": "hearing_loss_permanent", "onset_on": "2024-09-02"},
            ],
        },
    }

    response = clinician.post(url("treatments"), body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["mvd"] == {
        "technique": "transposition",
        "offending_vessels": ["pica", "vertebral"],
        "redo": True,
        "redo_of": str(patient_record.mvd.uuid),
        "complications": [
            {"kind": "hearing_loss_permanent", "onset_on": "2024-09-02", "resolved_on": None},
            {"kind": "transient_facial_palsy", "onset_on": "2024-09-03", "resolved_on": "2024-10-15"},
        ],
    }


@pytest.mark.parametrize(
    ("mvd", "errors"),
    [
        ({"redo_of": "other-patient"}, {"redo_of": ["This belongs to another patient."]}),
        ({"redo_of": "medication"}, {"redo_of": ["Object with uuid={} does not exist."]}),
        ({"redo_of": "later"}, {"redo_of": ["The earlier MVD must be before this one."]}),
        (
            {"complications": [{"kind": "csf_leak", "onset_on": "2024-01-01"}]},
            {"complications": {"0": {"onset_on": ["A complication cannot start before surgery."]}}},
        ),
        (
            {"complications": [{"kind": "csf_leak", "onset_on": "2024-03-01", "resolved_on": "2024-02-01"}]},
            {"complications": {"0": {"resolved_on": ["The end date is before the start date."]}}},
        ),
        (
            {"offending_vessels": ["none_identified", "aica"]},
            {"offending_vessels": ["'None identified' cannot be combined with a named vessel."]},
        ),
    ],
)
def test_an_mvd_the_rules_refuse_is_a_400_under_its_detail(clinician, patient_record, mvd, errors):
    elsewhere = treatment_for(diagnosis_for(PatientFactory()), MVD)
    later = treatment_record(
        patient=patient_record.patient,
        diagnosis=patient_record.diagnosis,
        kind=MVD,
        status="planned",
        started_on=date(2024, 12, 1),
        mvd={"technique": "interposition"},
    )
    targets = {"other-patient": elsewhere, "medication": patient_record.medication, "later": later}
    if "redo_of" in mvd:
        target = targets[mvd["redo_of"]]
        mvd = {"redo_of": str(target.uuid)}
        errors = {"redo_of": [errors["redo_of"][0].format(target.uuid)]}
    body = {
        **medication_body(patient_record.diagnosis, kind="mvd", started_on="2024-02-01"),
        "medication": None,
        "mvd": {"technique": "interposition", **mvd},
    }

    response = clinician.post(url("treatments"), body, format="json")

    assert response.status_code == 400
    assert messages(response) == {"mvd": errors}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"ended_on": "2024-01-01"}, {"ended_on": ["The end date is before the start date."]}),
        ({"started_on": "1950-01-01"}, {"started_on": ["This date is before the patient's date of birth."]}),
        ({"status": "finished"}, None),
        ({"started_on": "soon"}, None),
    ],
)
def test_a_treatment_the_rules_refuse_is_a_400(clinician, patient_record, change, errors):
    response = clinician.patch(url("treatments", patient_record.medication), change, format="json")
    assert response.status_code == 400
    if errors is None:
        assert list(messages(response)) == list(change)
    else:
        assert messages(response) == errors


def test_treatments_filter_by_patient_kind_and_status(clinician, patient_record):
    record = patient_record
    elsewhere = treatment_for(diagnosis_for(PatientFactory()), MEDICATION, status="stopped")
    patient = str(record.patient.uuid)

    assert ids(clinician.get(url("treatments"), {"patient": patient})) == uuids(
        record.medication, record.toxin, record.mvd
    )
    assert ids(clinician.get(url("treatments"), {"kind": "medication"})) == uuids(
        record.medication, elsewhere
    )
    assert ids(clinician.get(url("treatments"), {"kind": "botulinum_toxin"})) == uuids(record.toxin)
    assert ids(clinician.get(url("treatments"), {"status": "completed"})) == uuids(record.toxin, record.mvd)
    assert ids(clinician.get(url("treatments"), {"status": "stopped", "kind": "medication"})) == uuids(
        elsewhere
    )
    assert ids(clinician.get(url("treatments"), {"patient": patient, "kind": "mvd"})) == uuids(record.mvd)


def test_a_treatment_is_retracted_by_patch_and_never_deleted(clinician, patient_record):
    toxin = patient_record.toxin

    response = clinician.patch(url("treatments", toxin), {"status": "entered_in_error"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "entered_in_error"
    assert response.json()["botulinum_toxin"]["total_units"] == 20.0
    assert Treatment.objects.get(pk=toxin.pk).status == codes.TreatmentStatus.ENTERED_IN_ERROR
    assert ids(clinician.get(url("treatments"), {"status": "entered_in_error"})) == uuids(toxin)
    assert clinician.delete(url("treatments", toxin)).status_code == 405
    assert Treatment.objects.count() == 3


def test_updated_since_returns_what_changed_after_a_moment(clinician, patient_record):
    moment = timezone.now()
    assert ids(clinician.get(url("treatments"), {"updated_since": moment.isoformat()})) == []

    clinician.patch(url("treatments", patient_record.mvd), {"notes": "Reviewed."}, format="json")

    since = {"updated_since": (moment - timedelta(microseconds=1)).isoformat()}
    assert ids(clinician.get(url("treatments"), since)) == uuids(patient_record.mvd)
    assert ids(clinician.get(url("diagnoses"), since)) == []


# --- entered in error is final --------------------------------------------------------------------

RETRACTED = "This {} was entered in error and is no longer changed; record a new {} instead."
CREATED_RETRACTED = (
    "A new {} cannot be entered in error; record it with its real status, "
    "and retract it afterwards if it was a mistake."
)


def retracted_record(patient_record, resource):
    if resource == "diagnoses":
        return patient_record.diagnosis, "diagnosis"
    if resource == "imaging-studies":
        return patient_record.imaging_study, "imaging study"
    return patient_record.medication, "treatment"


@pytest.mark.parametrize(
    ("resource", "change"),
    [
        ("diagnoses", {"status": "confirmed"}),
        ("diagnoses", {"status": "provisional", "notes": "Revived."}),
        ("diagnoses", {"notes": "Edited after retraction."}),
        ("imaging-studies", {"status": "available"}),
        ("imaging-studies", {"report": "Edited after retraction."}),
        ("treatments", {"status": "active"}),
        ("treatments", {"status": "completed", "ended_on": "2024-06-01"}),
        ("treatments", {"medication": {"drug": "clonazepam", "daily_dose_mg": "2"}}),
    ],
)
def test_a_retracted_record_patched_back_or_edited_is_a_400_on_status(
    clinician, patient_record, resource, change
):
    record, noun = retracted_record(patient_record, resource)
    assert (
        clinician.patch(url(resource, record), {"status": "entered_in_error"}, format="json").status_code
        == 200
    )
    before = clinician.get(url(resource, record)).json()

    response = clinician.patch(url(resource, record), change, format="json")

    assert response.status_code == 400, response.content
    assert response.json() == {
        "status": [RETRACTED.format(noun, noun)],
        "error_codes": {"status": ["retracted"]},
    }
    assert clinician.get(url(resource, record)).json() == before


@pytest.mark.parametrize("resource", ["diagnoses", "imaging-studies", "treatments"])
def test_a_retracted_record_put_back_is_a_400_on_status(clinician, patient_record, resource):
    record, noun = retracted_record(patient_record, resource)
    body = {
        "diagnoses": lambda: diagnosis_body(patient_record.patient, status="confirmed"),
        "imaging-studies": lambda: imaging_body(patient_record.patient, status="available"),
        "treatments": lambda: medication_body(patient_record.diagnosis, status="active"),
    }[resource]()
    clinician.patch(url(resource, record), {"status": "entered_in_error"}, format="json")

    response = clinician.put(url(resource, record), body, format="json")

    assert response.status_code == 400, response.content
    assert response.json() == {
        "status": [RETRACTED.format(noun, noun)],
        "error_codes": {"status": ["retracted"]},
    }
    assert type(record).objects.get(pk=record.pk).status == "entered_in_error"


@pytest.mark.parametrize("resource", ["diagnoses", "imaging-studies", "treatments"])
def test_retracting_a_retracted_record_again_is_still_a_200(clinician, patient_record, resource):
    record, _ = retracted_record(patient_record, resource)

    for _ in range(2):
        response = clinician.patch(url(resource, record), {"status": "entered_in_error"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "entered_in_error"


@pytest.mark.parametrize(
    ("resource", "noun", "model"),
    [
        ("diagnoses", "diagnosis", Diagnosis),
        ("imaging-studies", "imaging study", ImagingStudy),
        ("treatments", "treatment", Treatment),
    ],
)
def test_a_record_posted_entered_in_error_is_a_400_on_status(
    clinician, patient_record, resource, noun, model
):
    body = {
        "diagnoses": lambda: diagnosis_body(patient_record.patient, status="entered_in_error"),
        "imaging-studies": lambda: imaging_body(patient_record.patient, status="entered_in_error"),
        "treatments": lambda: medication_body(patient_record.diagnosis, status="entered_in_error"),
    }[resource]()
    count = model.objects.count()

    response = clinician.post(url(resource), body, format="json")

    assert response.status_code == 400, response.content
    assert response.json() == {
        "status": [CREATED_RETRACTED.format(noun)],
        "error_codes": {"status": ["invalid_transition"]},
    }
    assert model.objects.count() == count


def test_a_treatment_that_has_begun_patched_back_to_planned_is_a_400(clinician, patient_record):
    response = clinician.patch(url("treatments", patient_record.mvd), {"status": "planned"}, format="json")

    assert response.status_code == 400, response.content
    assert response.json() == {
        "status": ["A completed treatment can become: active, entered in error, stopped; not planned."],
        "error_codes": {"status": ["invalid_transition"]},
    }
    assert Treatment.objects.get(pk=patient_record.mvd.pk).status == codes.TreatmentStatus.COMPLETED
