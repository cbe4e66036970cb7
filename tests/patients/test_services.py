"""Every write to the clinical record through its service: the rules of DOMAIN.md sections 2-4 come back
as field messages, nothing is half-written, history is kept, nothing is hard-deleted, and follow-up
hears of each change once, inside the transaction."""

from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils import timezone

from clinic.models import HardDeleteForbidden
from patients import codes, services
from patients.models import (
    Diagnosis,
    DiagnosisMuscle,
    ImagingStudy,
    MvdComplication,
    Patient,
    ToxinInjection,
    Treatment,
)
from patients.signals import diagnosis_changed, imaging_study_changed, patient_changed, treatment_changed
from tests.factories import PatientFactory, diagnosis_for, treatment_for

BIRTH = date(1968, 5, 17)
BEFORE_BIRTH = "This date is before the patient's date of birth."
OTHER_PATIENT = "This belongs to another patient."
ONA = codes.ToxinProduct.ONABOTULINUMTOXINA
ABO = codes.ToxinProduct.ABOBOTULINUMTOXINA
MED = codes.TreatmentKind.MEDICATION
TOXIN = codes.TreatmentKind.BOTULINUM_TOXIN
MVD = codes.TreatmentKind.MVD
OTHER = codes.TreatmentKind.OTHER


def record_counts():
    """Rows of every table of the clinical record and of the follow-up it drives, history included."""
    return {
        model._meta.label: model._default_manager.count()
        for label in ("patients", "followups")
        for model in apps.get_app_config(label).get_models()
    }


def refused(call, expected):
    """Call a service that must refuse: exactly the ``expected`` fields get these messages, and
    nothing at all is written."""
    before = record_counts()
    with pytest.raises(ValidationError) as error:
        call()
    assert record_counts() == before
    messages = error.value.message_dict
    assert set(messages) == set(expected), messages
    for field, message in expected.items():
        assert message in messages[field], messages[field]
    return messages


@pytest.fixture
def sent():
    """Every domain signal sent during the test, as (signal, change, primary key of the record)."""
    calls = []
    wiring = [
        (patient_changed, "patient"),
        (diagnosis_changed, "diagnosis"),
        (treatment_changed, "treatment"),
        (imaging_study_changed, "study"),
    ]
    for signal, argument in wiring:

        def receive(sender, change, _argument=argument, **kwargs):
            record = kwargs[_argument]
            assert isinstance(record, sender)
            calls.append((_argument, change, record.pk))

        signal.connect(receive, weak=False, dispatch_uid=f"test-{argument}")
    yield calls
    for signal, argument in wiring:
        signal.disconnect(dispatch_uid=f"test-{argument}")


@contextmanager
def failing_follow_up(signal):
    """A receiver that fails, as follow-up would if it could not plan the visits."""

    def fail(**kwargs):
        raise RuntimeError("follow-up could not plan")

    signal.connect(fail, weak=False, dispatch_uid="test-failing")
    try:
        yield
    finally:
        signal.disconnect(dispatch_uid="test-failing")


def history_types(record):
    return [row.history_type for row in record.history.order_by("history_id")]


# --- patients -----------------------------------------------------------------------------------

PATIENT = {
    "mrn": "HFS-0001",
    "given_name": "Ada",
    "family_name": "Byron",
    "date_of_birth": BIRTH,
    "sex": codes.Sex.FEMALE,
    "email": "ada@patients.example",
}


@pytest.mark.django_db
def test_a_patient_is_created_with_its_history_and_one_signal(sent):
    patient = services.patient_create(**PATIENT, timezone="Europe/Paris", preferred_language="fr")

    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.mrn, stored.family_name, stored.timezone, stored.preferred_language) == (
        "HFS-0001",
        "Byron",
        "Europe/Paris",
        "fr",
    )
    assert stored.uuid and not stored.archived and stored.email_reminders_consented_at is None
    assert history_types(stored) == ["+"]
    assert sent == [("patient", "created", patient.pk)]


@pytest.mark.django_db
def test_consent_given_at_creation_is_timestamped():
    before = timezone.now()

    patient = services.patient_create(**PATIENT, email_reminders=True)

    assert before <= Patient.objects.get(pk=patient.pk).email_reminders_consented_at <= timezone.now()


def test_the_consent_time_is_set_on_opt_in_kept_while_consenting_and_cleared_on_opt_out(patient):
    assert patient.email_reminders_consented_at is None
    before = timezone.now()

    patient = services.patient_update(patient=patient, email_reminders=True)
    consented_at = Patient.objects.get(pk=patient.pk).email_reminders_consented_at
    assert before <= consented_at <= timezone.now()

    patient = services.patient_update(patient=patient, email_reminders=True, phone="+1 555 0101")
    assert Patient.objects.get(pk=patient.pk).email_reminders_consented_at == consented_at

    patient = services.patient_update(patient=patient, email_reminders=False)
    assert Patient.objects.get(pk=patient.pk).email_reminders_consented_at is None

    patient = services.patient_update(patient=patient, email_reminders=True)
    assert Patient.objects.get(pk=patient.pk).email_reminders_consented_at > consented_at


@pytest.mark.django_db
def test_consent_without_an_e_mail_address_is_refused():
    refused(
        lambda: services.patient_create(**(PATIENT | {"email": ""}), email_reminders=True),
        {"email": "E-mail reminders need an e-mail address."},
    )


def test_removing_the_e_mail_address_of_a_consenting_patient_is_refused(patient):
    patient = services.patient_update(patient=patient, email_reminders=True)

    refused(
        lambda: services.patient_update(patient=patient, email=""),
        {"email": "E-mail reminders need an e-mail address."},
    )
    assert Patient.objects.get(pk=patient.pk).email == patient.email


def test_a_second_patient_with_the_same_mrn_is_refused(patient):
    refused(
        lambda: services.patient_create(**(PATIENT | {"mrn": patient.mrn})),
        {"mrn": "Patient with this MRN already exists."},
    )
    other = PatientFactory()
    refused(
        lambda: services.patient_update(patient=other, mrn=patient.mrn),
        {"mrn": "Patient with this MRN already exists."},
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, {"timezone": "'Mars/Olympus_Mons' is not a known time zone."}),
        ({"preferred_language": "xx"}, {"preferred_language": "Choose one of: en, de, fr."}),
        ({"sex": "dragon"}, {"sex": "Value 'dragon' is not a valid choice."}),
        ({"mrn": ""}, {"mrn": "This field cannot be blank."}),
        ({"email": "not an address"}, {"email": "Enter a valid email address."}),
    ],
)
def test_an_invalid_patient_is_refused_field_by_field(changes, expected):
    refused(lambda: services.patient_create(**(PATIENT | changes)), expected)


@pytest.mark.django_db
def test_a_date_of_birth_in_the_future_is_refused():
    tomorrow = timezone.localdate() + timedelta(days=1)

    refused(
        lambda: services.patient_create(**(PATIENT | {"date_of_birth": tomorrow})),
        {"date_of_birth": "The date of birth is in the future."},
    )


def test_a_field_the_service_does_not_own_is_a_programming_error(patient):
    with pytest.raises(TypeError, match="archived"):
        services.patient_update(patient=patient, archived=True)
    with pytest.raises(TypeError, match="email_reminders_consented_at"):
        services.patient_create(**PATIENT, email_reminders_consented_at=timezone.now())


def test_a_date_of_birth_after_a_recorded_clinical_date_is_refused(diagnosis):
    patient = diagnosis.patient
    study = imaging_for(patient, performed_on=date(2023, 2, 1))

    refused(
        lambda: services.patient_update(patient=patient, date_of_birth=date(2023, 2, 2)),
        {
            "date_of_birth": "The patient has records dated before this date of birth "
            "(the earliest on 2023-02-01)."
        },
    )
    services.imaging_study_retract(study=study)
    refused(
        lambda: services.patient_update(patient=patient, date_of_birth=date(2023, 3, 2)),
        {
            "date_of_birth": "The patient has records dated before this date of birth "
            "(the earliest on 2023-03-01)."
        },
    )
    services.patient_update(patient=patient, date_of_birth=date(2023, 3, 1))
    assert Patient.objects.get(pk=patient.pk).date_of_birth == date(2023, 3, 1)


def test_archive_and_restore_keep_the_record_and_tell_follow_up(patient, sent):
    sent.clear()

    archived = services.patient_archive(patient=patient)
    stored = Patient.objects.get(pk=patient.pk)
    assert stored.archived and stored.archived_at == archived.archived_at is not None
    assert services.patient_archive(patient=patient).archived_at == archived.archived_at

    services.patient_restore(patient=patient)
    stored = Patient.objects.get(pk=patient.pk)
    assert not stored.archived and stored.archived_at is None
    services.patient_restore(patient=patient)

    assert sent == [("patient", "archived", patient.pk), ("patient", "updated", patient.pk)]
    assert history_types(stored) == ["+", "~", "~"]


def test_an_archived_patient_gets_no_new_records(diagnosis):
    services.patient_archive(patient=diagnosis.patient)
    archived = {"patient": "This patient is archived; restore them before adding records."}

    refused(lambda: diagnosis_for(diagnosis.patient), archived)
    refused(lambda: treatment_for(diagnosis, OTHER), archived)
    refused(
        lambda: services.imaging_study_record(
            patient=diagnosis.patient, performed_on=date(2023, 2, 1), modality=codes.ImagingModality.MRI
        ),
        archived,
    )


def test_a_patient_update_is_one_history_row_and_one_signal(patient, sent):
    sent.clear()

    services.patient_update(patient=patient, family_name="Lovelace")

    assert Patient.objects.get(pk=patient.pk).family_name == "Lovelace"
    assert [row.family_name for row in patient.history.order_by("history_id")][-1] == "Lovelace"
    assert history_types(patient) == ["+", "~"]
    assert sent == [("patient", "updated", patient.pk)]


# --- diagnoses ----------------------------------------------------------------------------------


def test_a_diagnosis_is_recorded_with_its_muscles_history_and_one_signal(patient, sent):
    sent.clear()

    diagnosis = diagnosis_for(
        patient,
        kind=codes.HfsKind.SECONDARY,
        secondary_cause=codes.SecondaryCause.CPA_TUMOR,
        onset_date=date(2021, 6, 1),
        muscles=["orbicularis_oculi", "zygomaticus"],
    )

    stored = Diagnosis.objects.get(pk=diagnosis.pk)
    assert (stored.kind, stored.secondary_cause, stored.onset_date) == (
        "secondary",
        "cpa_tumor",
        date(2021, 6, 1),
    )
    assert sorted(stored.muscle_rows.values_list("muscle", flat=True)) == ["orbicularis_oculi", "zygomaticus"]
    assert history_types(stored) == ["+"]
    assert sent == [("diagnosis", "recorded", diagnosis.pk)]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"kind": codes.HfsKind.SECONDARY, "secondary_cause": ""},
            {"secondary_cause": "A secondary diagnosis needs its secondary cause."},
        ),
        (
            {"kind": codes.HfsKind.PRIMARY, "secondary_cause": codes.SecondaryCause.OTHER},
            {"secondary_cause": "A primary diagnosis has no secondary cause."},
        ),
        (
            {"onset_date": date(2023, 3, 2), "diagnosed_on": date(2023, 3, 1)},
            {"onset_date": "The onset is after the diagnosis."},
        ),
        ({"diagnosed_on": BIRTH - timedelta(days=1), "onset_date": None}, {"diagnosed_on": BEFORE_BIRTH}),
        ({"onset_date": BIRTH - timedelta(days=1)}, {"onset_date": BEFORE_BIRTH}),
        ({"muscles": ["orbicularis_oculi", "nose"]}, {"muscles": "Unknown code(s): nose."}),
        ({"muscles": ["mentalis", "mentalis"]}, {"muscles": "A code is listed twice."}),
        ({"side": "up"}, {"side": "Value 'up' is not a valid choice."}),
    ],
)
def test_a_diagnosis_breaking_a_rule_is_refused_on_its_field(patient, fields, expected):
    refused(lambda: diagnosis_for(patient, **fields), expected)


def test_a_diagnosis_in_the_future_is_refused(patient):
    refused(
        lambda: diagnosis_for(patient, diagnosed_on=timezone.localdate() + timedelta(days=1)),
        {"diagnosed_on": "This date is in the future."},
    )


def test_a_diagnosis_on_the_day_of_birth_and_with_onset_on_the_day_of_diagnosis_is_allowed(patient):
    assert diagnosis_for(patient, onset_date=BIRTH, diagnosed_on=BIRTH).pk


def test_every_error_of_a_diagnosis_is_reported_at_once(patient):
    refused(
        lambda: diagnosis_for(
            patient,
            kind=codes.HfsKind.SECONDARY,
            diagnosed_on=BIRTH - timedelta(days=1),
            muscles=["nose"],
        ),
        {
            "secondary_cause": "A secondary diagnosis needs its secondary cause.",
            "diagnosed_on": BEFORE_BIRTH,
            "muscles": "Unknown code(s): nose.",
        },
    )


def test_a_diagnosis_update_keeps_unchanged_muscle_rows_and_replaces_the_others(diagnosis, sent):
    services.diagnosis_update(diagnosis=diagnosis, muscles=["orbicularis_oculi", "frontalis"])
    kept = diagnosis.muscle_rows.get(muscle="orbicularis_oculi").pk
    sent.clear()

    services.diagnosis_update(diagnosis=diagnosis, muscles=["orbicularis_oculi", "platysma"], side="right")

    rows = dict(diagnosis.muscle_rows.values_list("muscle", "pk"))
    assert set(rows) == {"orbicularis_oculi", "platysma"}
    assert rows["orbicularis_oculi"] == kept
    assert Diagnosis.objects.get(pk=diagnosis.pk).side == "right"
    assert sent == [("diagnosis", "updated", diagnosis.pk)]
    assert history_types(diagnosis) == ["+", "~", "~"]
    assert sorted(
        DiagnosisMuscle.history.filter(diagnosis_id=diagnosis.pk).values_list("muscle", "history_type")
    ) == [
        ("frontalis", "+"),
        ("frontalis", "-"),
        ("orbicularis_oculi", "+"),
        ("platysma", "+"),
    ]


def test_a_diagnosis_update_without_muscles_leaves_them_alone(diagnosis):
    services.diagnosis_update(diagnosis=diagnosis, notes="Seen with the neurosurgeon.")

    assert list(diagnosis.muscle_rows.values_list("muscle", flat=True)) == ["orbicularis_oculi"]


def test_a_diagnosis_update_breaking_a_rule_is_refused_and_changes_nothing(diagnosis):
    refused(
        lambda: services.diagnosis_update(diagnosis=diagnosis, kind=codes.HfsKind.SECONDARY, muscles=[]),
        {"secondary_cause": "A secondary diagnosis needs its secondary cause."},
    )
    stored = Diagnosis.objects.get(pk=diagnosis.pk)
    assert stored.kind == codes.HfsKind.PRIMARY
    assert stored.muscle_rows.count() == 1


def test_a_retracted_diagnosis_stays_in_the_record_with_status_entered_in_error(diagnosis, sent):
    sent.clear()

    services.diagnosis_retract(diagnosis=diagnosis)
    services.diagnosis_retract(diagnosis=diagnosis)

    assert Diagnosis.objects.get(pk=diagnosis.pk).status == codes.DiagnosisStatus.ENTERED_IN_ERROR
    assert sent == [("diagnosis", "retracted", diagnosis.pk)]
    assert history_types(diagnosis) == ["+", "~"]


# --- imaging ------------------------------------------------------------------------------------


def imaging_for(patient, **overrides):
    fields = {
        "performed_on": date(2023, 2, 1),
        "modality": codes.ImagingModality.MRI,
        "field_strength_tesla": Decimal("3.0"),
        "sequences": ["ciss", "tof_mra"],
        "offending_vessels": ["aica"],
        "compression_found": codes.CompressionFound.YES,
    }
    return services.imaging_study_record(patient=patient, **(fields | overrides))


def test_an_imaging_study_is_recorded_with_its_sequences_and_vessels(diagnosis, sent):
    sent.clear()

    study = imaging_for(diagnosis.patient, diagnosis=diagnosis, field_strength_tesla="1.5")

    stored = ImagingStudy.objects.get(pk=study.pk)
    assert stored.field_strength_tesla == Decimal("1.5") and stored.diagnosis == diagnosis
    assert sorted(stored.sequence_rows.values_list("sequence", flat=True)) == ["ciss", "tof_mra"]
    assert list(stored.vessel_rows.values_list("vessel", flat=True)) == ["aica"]
    assert sent == [("study", "recorded", study.pk)]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"field_strength_tesla": Decimal("2.0")},
            {"field_strength_tesla": "The field strength is 1.5 or 3 T."},
        ),
        ({"field_strength_tesla": 7}, {"field_strength_tesla": "The field strength is 1.5 or 3 T."}),
        (
            {"field_strength_tesla": "strong"},
            {"field_strength_tesla": "“strong” value must be a decimal number."},
        ),
        (
            {"offending_vessels": ["none_identified", "aica"]},
            {"offending_vessels": "'None identified' cannot be combined with a named vessel."},
        ),
        ({"offending_vessels": ["aica", "carotid"]}, {"offending_vessels": "Unknown code(s): carotid."}),
        ({"sequences": ["ciss", "ciss"]}, {"sequences": "A code is listed twice."}),
        ({"offending_vessels": ["vein", "vein"]}, {"offending_vessels": "A code is listed twice."}),
        ({"sequences": ["ciss", "dwi"]}, {"sequences": "Unknown code(s): dwi."}),
        ({"performed_on": BIRTH - timedelta(days=1)}, {"performed_on": BEFORE_BIRTH}),
        ({"modality": "xray"}, {"modality": "Value 'xray' is not a valid choice."}),
    ],
)
def test_an_imaging_study_breaking_a_rule_is_refused_on_its_field(patient, fields, expected):
    refused(lambda: imaging_for(patient, **fields), expected)


def test_an_imaging_study_with_none_identified_alone_is_allowed(patient):
    study = imaging_for(patient, offending_vessels=["none_identified"], compression_found="no")

    assert list(study.vessel_rows.values_list("vessel", flat=True)) == ["none_identified"]


def test_an_imaging_study_for_another_patients_diagnosis_is_refused(diagnosis):
    other = PatientFactory()

    refused(lambda: imaging_for(other, diagnosis=diagnosis), {"diagnosis": OTHER_PATIENT})
    study = imaging_for(other)
    refused(
        lambda: services.imaging_study_update(study=study, diagnosis=diagnosis), {"diagnosis": OTHER_PATIENT}
    )


def test_an_imaging_update_replaces_the_lists_given_and_keeps_the_others(patient, sent):
    study = imaging_for(patient)
    ciss = study.sequence_rows.get(sequence="ciss").pk
    sent.clear()

    services.imaging_study_update(study=study, offending_vessels=["aica", "vein"], sequences=["ciss"])
    services.imaging_study_update(study=study, report="AICA loop at the root exit zone.")

    assert sorted(study.vessel_rows.values_list("vessel", flat=True)) == ["aica", "vein"]
    assert list(study.sequence_rows.values_list("sequence", "pk")) == [("ciss", ciss)]
    assert ImagingStudy.objects.get(pk=study.pk).report == "AICA loop at the root exit zone."
    assert sent == [("study", "updated", study.pk), ("study", "updated", study.pk)]
    refused(
        lambda: services.imaging_study_update(study=study, offending_vessels=["none_identified", "vein"]),
        {"offending_vessels": "'None identified' cannot be combined with a named vessel."},
    )


def test_a_retracted_imaging_study_stays_with_status_entered_in_error(patient, sent):
    study = imaging_for(patient)
    sent.clear()

    services.imaging_study_retract(study=study)
    services.imaging_study_retract(study=study)

    assert ImagingStudy.objects.get(pk=study.pk).status == codes.ImagingStatus.ENTERED_IN_ERROR
    assert sent == [("study", "retracted", study.pk)]


# --- treatments: shared rules -------------------------------------------------------------------


@pytest.mark.parametrize("kind", [MED, TOXIN, MVD, OTHER])
def test_a_treatment_of_each_kind_is_recorded_with_history_and_one_signal(diagnosis, sent, kind):
    sent.clear()

    treatment = treatment_for(diagnosis, kind)

    stored = Treatment.objects.get(pk=treatment.pk)
    assert (stored.kind, stored.patient, stored.diagnosis) == (kind, diagnosis.patient, diagnosis)
    assert history_types(stored) == ["+"]
    assert sent == [("treatment", "recorded", treatment.pk)]
    for detail in ("medication", "botulinum_toxin", "mvd"):
        assert hasattr(stored, detail) == (services.DETAIL_FOR_KIND.get(kind) == detail)


def test_a_treatment_for_another_patients_diagnosis_is_refused(diagnosis):
    other = PatientFactory()

    refused(
        lambda: services.treatment_record(
            patient=other, diagnosis=diagnosis, kind=OTHER, started_on=date(2024, 1, 15)
        ),
        {"diagnosis": OTHER_PATIENT},
    )


def test_moving_a_treatment_to_another_patients_diagnosis_is_refused(diagnosis):
    treatment = treatment_for(diagnosis, OTHER)
    foreign = diagnosis_for(PatientFactory())

    refused(
        lambda: services.treatment_update(treatment=treatment, diagnosis=foreign),
        {"diagnosis": OTHER_PATIENT},
    )
    assert Treatment.objects.get(pk=treatment.pk).diagnosis == diagnosis


def test_a_treatment_without_a_diagnosis_is_refused(patient):
    refused(
        lambda: services.treatment_record(patient=patient, kind=OTHER, started_on=date(2024, 1, 15)),
        {"diagnosis": "A treatment is for a diagnosis."},
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"started_on": BIRTH - timedelta(days=1)}, {"started_on": BEFORE_BIRTH}),
        (
            {"started_on": date(2024, 1, 15), "ended_on": date(2024, 1, 14)},
            {"ended_on": "The end date is before the start date."},
        ),
        ({"status": "paused"}, {"status": "Value 'paused' is not a valid choice."}),
    ],
)
def test_a_treatment_breaking_a_date_or_code_rule_is_refused(diagnosis, fields, expected):
    refused(lambda: treatment_for(diagnosis, OTHER, **fields), expected)


def test_a_date_that_is_not_a_date_is_refused_on_its_field_not_compared(diagnosis):
    refused(
        lambda: treatment_for(diagnosis, OTHER, started_on="2024-02-30", ended_on=date(2024, 3, 1)),
        {"started_on": "“2024-02-30” value has the correct format (YYYY-MM-DD) but it is an invalid date."},
    )
    refused(
        lambda: treatment_for(
            diagnosis,
            MVD,
            **mvd(complications=[{"kind": "csf_leak", "onset_on": "soon", "resolved_on": date(2024, 2, 1)}]),
        ),
        {
            "mvd.complications.0.onset_on": "“soon” value has an invalid date format. "
            "It must be in YYYY-MM-DD format."
        },
    )


def test_a_treatment_may_be_planned_in_the_future_and_end_on_its_start_day(diagnosis):
    later = timezone.localdate() + timedelta(days=30)

    assert treatment_for(diagnosis, OTHER, status="planned", started_on=later, ended_on=later).pk


def test_a_treatments_kind_cannot_change(diagnosis):
    treatment = treatment_for(diagnosis, MED)

    refused(
        lambda: services.treatment_update(treatment=treatment, kind=TOXIN),
        {"kind": "A treatment's kind cannot change; record a new treatment."},
    )
    assert services.treatment_update(treatment=treatment, kind=MED, notes="same kind").kind == MED


@pytest.mark.parametrize(
    ("kind", "detail", "expected"),
    [
        (
            MED,
            {"botulinum_toxin": {"product": ONA}},
            {"botulinum_toxin": "Medication treatments have no botulinum_toxin details."},
        ),
        (
            TOXIN,
            {"mvd": {"technique": "interposition"}},
            {"mvd": "Botulinum toxin treatments have no mvd details."},
        ),
        (
            MVD,
            {"medication": {"drug": "baclofen"}},
            {"medication": "Microvascular decompression treatments have no medication details."},
        ),
        (
            OTHER,
            {"medication": {"drug": "baclofen"}},
            {"medication": "Other treatments have no medication details."},
        ),
    ],
)
def test_a_detail_that_does_not_match_the_kind_is_refused(diagnosis, kind, detail, expected):
    refused(lambda: treatment_for(diagnosis, kind, **detail), expected)


@pytest.mark.parametrize(
    ("kind", "detail", "message"),
    [
        (MED, "medication", "A medication treatment needs its details."),
        (TOXIN, "botulinum_toxin", "A botulinum toxin treatment needs its details."),
        (MVD, "mvd", "A microvascular decompression treatment needs its details."),
    ],
)
def test_a_missing_detail_is_refused(diagnosis, kind, detail, message):
    refused(lambda: treatment_for(diagnosis, kind, **{detail: None}), {detail: message})


def test_an_unknown_detail_field_is_refused(diagnosis):
    refused(
        lambda: treatment_for(
            diagnosis, MED, medication={"drug": "baclofen", "daily_dose_mg": "30", "route": "oral"}
        ),
        {"medication.route": "Unknown field."},
    )


def test_a_treatment_update_is_one_history_row_and_one_signal(diagnosis, sent):
    treatment = treatment_for(diagnosis, OTHER)
    sent.clear()

    services.treatment_update(treatment=treatment, status="stopped", ended_on=date(2024, 6, 1))

    stored = Treatment.objects.get(pk=treatment.pk)
    assert (stored.status, stored.ended_on) == ("stopped", date(2024, 6, 1))
    assert history_types(stored) == ["+", "~"]
    assert sent == [("treatment", "updated", treatment.pk)]


def test_a_retracted_treatment_stays_with_status_entered_in_error(diagnosis, sent):
    treatment = treatment_for(diagnosis, MED)
    sent.clear()

    services.treatment_retract(treatment=treatment)
    services.treatment_retract(treatment=treatment)

    stored = Treatment.objects.get(pk=treatment.pk)
    assert stored.status == codes.TreatmentStatus.ENTERED_IN_ERROR
    assert stored.medication.daily_dose_mg == Decimal("400")
    assert sent == [("treatment", "retracted", treatment.pk)]
    assert history_types(stored) == ["+", "~"]


# --- medication ---------------------------------------------------------------------------------

CEILINGS = list(codes.DAILY_DOSE_CEILING_MG.items())


def medication(drug, dose, **more):
    return {"medication": {"drug": drug, "daily_dose_mg": dose, **more}}


@pytest.mark.parametrize(("drug", "ceiling"), CEILINGS, ids=[drug for drug, _ in CEILINGS])
def test_a_dose_at_the_ceiling_is_recorded_and_above_it_refused_with_the_ceiling_named(
    diagnosis, drug, ceiling
):
    above = ceiling + Decimal("0.01")

    refused(
        lambda: treatment_for(diagnosis, MED, **medication(drug, str(above))),
        {
            "medication.daily_dose_mg": f"{codes.Drug(drug).label} is limited to {ceiling} mg a day; "
            f"{above} mg is above it."
        },
    )
    treatment = treatment_for(diagnosis, MED, **medication(drug, str(ceiling)))
    assert Treatment.objects.get(pk=treatment.pk).medication.daily_dose_mg == ceiling


@pytest.mark.parametrize("dose", ["0", "-5"])
def test_a_dose_of_zero_or_less_is_refused(diagnosis, dose):
    refused(
        lambda: treatment_for(diagnosis, MED, **medication("other", dose)),
        {"medication.daily_dose_mg": "The daily dose must be more than 0 mg."},
    )


def test_a_dose_that_is_not_a_number_is_refused_on_its_field(diagnosis):
    refused(
        lambda: treatment_for(diagnosis, MED, **medication("baclofen", "lots")),
        {"medication.daily_dose_mg": "“lots” value must be a decimal number."},
    )


def test_switching_to_a_drug_with_a_lower_ceiling_checks_the_dose_against_it(diagnosis):
    treatment = treatment_for(diagnosis, MED, **medication("gabapentin", "900"))

    refused(
        lambda: services.treatment_update(treatment=treatment, medication={"drug": "clonazepam"}),
        {"medication.daily_dose_mg": "Clonazepam is limited to 20 mg a day; 900.00 mg is above it."},
    )
    assert Treatment.objects.get(pk=treatment.pk).medication.drug == "gabapentin"


def test_raising_the_dose_above_the_ceiling_on_update_is_refused(diagnosis):
    treatment = treatment_for(diagnosis, MED)

    refused(
        lambda: services.treatment_update(treatment=treatment, medication={"daily_dose_mg": "1300"}),
        {"medication.daily_dose_mg": "Carbamazepine is limited to 1200 mg a day; 1300 mg is above it."},
    )
    assert Treatment.objects.get(pk=treatment.pk).medication.daily_dose_mg == Decimal("400")


def test_a_dose_change_records_the_day_of_the_change(diagnosis):
    treatment = treatment_for(diagnosis, MED)
    assert treatment.medication.dose_changed_on is None

    services.treatment_update(treatment=treatment, medication={"daily_dose_mg": "400.00"}, notes="same dose")
    assert Treatment.objects.get(pk=treatment.pk).medication.dose_changed_on is None

    services.treatment_update(treatment=treatment, medication={"daily_dose_mg": "600"})
    detail = Treatment.objects.get(pk=treatment.pk).medication
    assert (detail.daily_dose_mg, detail.dose_changed_on) == (Decimal("600"), timezone.localdate())
    doses = [row.daily_dose_mg for row in detail.history.order_by("history_id")]
    assert (doses[0], doses[-1]) == (Decimal("400"), Decimal("600"))


def test_a_dose_change_keeps_the_day_the_clinician_gives(diagnosis):
    treatment = treatment_for(diagnosis, MED)

    services.treatment_update(
        treatment=treatment, medication={"daily_dose_mg": "600", "dose_changed_on": date(2024, 2, 1)}
    )

    assert Treatment.objects.get(pk=treatment.pk).medication.dose_changed_on == date(2024, 2, 1)


def test_a_dose_change_before_the_course_started_is_refused(diagnosis):
    treatment = treatment_for(diagnosis, MED)

    refused(
        lambda: services.treatment_update(
            treatment=treatment, medication={"daily_dose_mg": "600", "dose_changed_on": date(2024, 1, 14)}
        ),
        {"medication.dose_changed_on": "The dose change is before the course started."},
    )


# --- botulinum toxin ----------------------------------------------------------------------------


def toxin(*units, product=ONA, **more):
    muscles = list(codes.Muscle.values)
    injections = [{"muscle": muscles[i], "units": str(u)} for i, u in enumerate(units)]
    return {"botulinum_toxin": {"product": product, "injections": injections, **more}}


def session(diagnosis, on, *units, product=ONA, **fields):
    return treatment_for(diagnosis, TOXIN, started_on=on, **toxin(*units, product=product), **fields)


def limit_message(units, start, product=ONA):
    end = start + timedelta(days=29)
    return (
        f"This makes {units} units of {codes.ToxinProduct(product).label} between {start} and {end}; "
        "at most 200 units of one product are allowed in any 30 days."
    )


JAN_15 = date(2024, 1, 15)


def test_a_toxin_session_keeps_one_row_per_muscle_and_its_history(diagnosis):
    treatment = session(diagnosis, JAN_15, "12.5", "7.5")

    rows = ToxinInjection.objects.filter(session__treatment=treatment).order_by("muscle")
    assert [(row.muscle, row.units) for row in rows] == [
        ("frontalis", Decimal("7.5")),
        ("orbicularis_oculi", Decimal("12.5")),
    ]
    assert all(history_types(row) == ["+"] for row in rows)


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        (toxin("0"), {"botulinum_toxin.injections.0.units": "Units must be more than 0."}),
        (toxin("10", "-1"), {"botulinum_toxin.injections.1.units": "Units must be more than 0."}),
        (toxin(), {"botulinum_toxin.injections": "A session needs at least one injected muscle."}),
        (
            {"botulinum_toxin": {"product": ONA, "injections": [{"muscle": "mentalis", "units": "5"}] * 2}},
            {"botulinum_toxin.injections": "Each muscle is listed once per session."},
        ),
        (
            {"botulinum_toxin": {"product": ONA, "injections": [{"muscle": "chin", "units": "5"}]}},
            {"botulinum_toxin.injections.0.muscle": "Value 'chin' is not a valid choice."},
        ),
        (
            toxin("10", self_rated_improvement_pct=101),
            {"botulinum_toxin.self_rated_improvement_pct": "Give a percentage from 0 to 100."},
        ),
        (
            toxin("10", self_rated_improvement_pct=-1),
            {"botulinum_toxin.self_rated_improvement_pct": "Give a percentage from 0 to 100."},
        ),
        (
            toxin("10", wore_off_on=JAN_15 - timedelta(days=1)),
            {"botulinum_toxin.wore_off_on": "The benefit wore off before the injection."},
        ),
        (toxin("10", product="botox"), {"botulinum_toxin.product": "Value 'botox' is not a valid choice."}),
    ],
)
def test_a_toxin_session_breaking_a_rule_is_refused_on_its_field(diagnosis, detail, expected):
    refused(lambda: treatment_for(diagnosis, TOXIN, started_on=JAN_15, **detail), expected)


def test_a_self_rated_improvement_of_0_or_100_percent_is_allowed(diagnosis):
    assert treatment_for(diagnosis, TOXIN, **toxin("10", self_rated_improvement_pct=0)).pk
    assert treatment_for(
        diagnosis, TOXIN, started_on=date(2024, 9, 1), **toxin("10", self_rated_improvement_pct=100)
    ).pk


def test_exactly_200_units_in_one_session_is_allowed_and_200_01_refused(diagnosis):
    refused(
        lambda: session(diagnosis, JAN_15, "150", "50.01"),
        {"botulinum_toxin.injections": limit_message(Decimal("200.01"), JAN_15)},
    )
    refused(
        lambda: session(diagnosis, JAN_15, "200.01"),
        {"botulinum_toxin.injections": limit_message(Decimal("200.01"), JAN_15)},
    )
    assert session(diagnosis, JAN_15, "150", "50").pk


def test_sessions_29_days_apart_share_the_200_units(diagnosis):
    session(diagnosis, JAN_15, "150")

    refused(
        lambda: session(diagnosis, JAN_15 + timedelta(days=29), "51"),
        {"botulinum_toxin.injections": limit_message(Decimal("201.00"), JAN_15)},
    )
    assert session(diagnosis, JAN_15 + timedelta(days=29), "50").pk


def test_sessions_30_days_apart_do_not_share_the_200_units(diagnosis):
    session(diagnosis, JAN_15, "200")

    assert session(diagnosis, JAN_15 + timedelta(days=30), "200").pk
    assert session(diagnosis, JAN_15 - timedelta(days=30), "200").pk


def test_a_session_recorded_before_existing_ones_is_checked_against_the_later_ones(diagnosis):
    session(diagnosis, JAN_15, "120")
    earlier = JAN_15 - timedelta(days=10)

    refused(
        lambda: session(diagnosis, earlier, "81"),
        {"botulinum_toxin.injections": limit_message(Decimal("201.00"), earlier)},
    )


def test_a_window_that_does_not_start_on_the_new_session_is_checked(diagnosis):
    # The new session (day 20) is within the limit with day 40, but not with day 0.
    session(diagnosis, JAN_15, "150")
    session(diagnosis, JAN_15 + timedelta(days=40), "10")

    refused(
        lambda: session(diagnosis, JAN_15 + timedelta(days=20), "60"),
        {"botulinum_toxin.injections": limit_message(Decimal("210.00"), JAN_15)},
    )


def test_units_of_different_products_are_never_added(diagnosis):
    session(diagnosis, JAN_15, "150", product=ONA)

    assert session(diagnosis, JAN_15, "150", product=ABO).pk
    assert session(diagnosis, JAN_15, "150", product=codes.ToxinProduct.INCOBOTULINUMTOXINA).pk
    refused(
        lambda: session(diagnosis, JAN_15 + timedelta(days=5), "100", product=ABO),
        {"botulinum_toxin.injections": limit_message(Decimal("250.00"), JAN_15, ABO)},
    )


def test_units_of_another_patient_are_never_added(diagnosis):
    session(diagnosis, JAN_15, "150")

    assert session(diagnosis_for(PatientFactory()), JAN_15, "150").pk


def test_a_session_entered_in_error_does_not_count(diagnosis):
    mistaken = session(diagnosis, JAN_15, "150")
    services.treatment_retract(treatment=mistaken)

    assert session(diagnosis, JAN_15, "150").pk


def test_retracting_a_session_with_an_update_is_not_held_to_the_limit(diagnosis):
    session(diagnosis, JAN_15, "150")
    mistaken = session(diagnosis, JAN_15 + timedelta(days=1), "50")
    # Units raised outside the services, as rows imported before the limit was checked would be.
    ToxinInjection.objects.filter(session__treatment=mistaken).update(units=Decimal("150"))

    services.treatment_update(
        treatment=mistaken, status=codes.TreatmentStatus.ENTERED_IN_ERROR, notes="Duplicate import."
    )

    assert Treatment.objects.get(pk=mistaken.pk).status == codes.TreatmentStatus.ENTERED_IN_ERROR


def test_raising_the_units_of_an_existing_session_is_checked_against_its_neighbours(diagnosis):
    session(diagnosis, JAN_15, "150")
    later = session(diagnosis, JAN_15 + timedelta(days=10), "40")

    refused(
        lambda: services.treatment_update(treatment=later, botulinum_toxin=toxin("60")["botulinum_toxin"]),
        {"botulinum_toxin.injections": limit_message(Decimal("210.00"), JAN_15)},
    )
    assert ToxinInjection.objects.get(session__treatment=later).units == Decimal("40")
    services.treatment_update(treatment=later, botulinum_toxin=toxin("50")["botulinum_toxin"])
    assert ToxinInjection.objects.get(session__treatment=later).units == Decimal("50")


def test_moving_an_existing_session_is_checked_and_it_does_not_count_against_itself(diagnosis):
    session(diagnosis, JAN_15, "150")
    later = session(diagnosis, JAN_15 + timedelta(days=30), "150")

    refused(
        lambda: services.treatment_update(treatment=later, started_on=JAN_15 + timedelta(days=29)),
        {"botulinum_toxin.injections": limit_message(Decimal("300.00"), JAN_15)},
    )
    services.treatment_update(treatment=later, started_on=JAN_15 + timedelta(days=31))
    assert Treatment.objects.get(pk=later.pk).started_on == JAN_15 + timedelta(days=31)


def test_changing_the_product_of_a_session_adds_it_to_the_other_products_units(diagnosis):
    session(diagnosis, JAN_15, "150", product=ABO)
    later = session(diagnosis, JAN_15 + timedelta(days=3), "100", product=ONA)

    refused(
        lambda: services.treatment_update(treatment=later, botulinum_toxin={"product": ABO}),
        {"botulinum_toxin.injections": limit_message(Decimal("250.00"), JAN_15, ABO)},
    )


def test_an_update_given_injections_replaces_them_and_keeps_their_history(diagnosis):
    treatment = session(diagnosis, JAN_15, "10", "5")
    first = list(ToxinInjection.objects.filter(session__treatment=treatment))

    services.treatment_update(treatment=treatment, botulinum_toxin=toxin("20")["botulinum_toxin"])

    rows = ToxinInjection.objects.filter(session__treatment=treatment)
    assert [(row.muscle, row.units) for row in rows] == [("orbicularis_oculi", Decimal("20"))]
    assert all(history_types(row) == ["+", "-"] for row in first)
    assert [history_types(row) for row in rows] == [["+"]]


# --- MVD ----------------------------------------------------------------------------------------

SURGERY = date(2024, 1, 15)


def mvd(**detail):
    return {"mvd": {"technique": codes.MvdTechnique.INTERPOSITION, "offending_vessels": ["aica"], **detail}}


def complication(kind, onset_day, resolved_day=None):
    return {
        "kind": kind,
        "onset_on": SURGERY + timedelta(days=onset_day),
        "resolved_on": None if resolved_day is None else SURGERY + timedelta(days=resolved_day),
    }


def test_an_mvd_is_recorded_with_its_vessels_and_complications(diagnosis):
    treatment = treatment_for(
        diagnosis,
        MVD,
        started_on=SURGERY,
        **mvd(offending_vessels=["aica", "vein"], complications=[complication("csf_leak", 3, 10)]),
    )

    detail = Treatment.objects.get(pk=treatment.pk).mvd
    assert sorted(detail.vessel_rows.values_list("vessel", flat=True)) == ["aica", "vein"]
    assert list(detail.complications.values_list("kind", "onset_on", "resolved_on")) == [
        ("csf_leak", SURGERY + timedelta(days=3), SURGERY + timedelta(days=10))
    ]


def test_replacing_complications_keeps_the_ids_of_the_unchanged_ones(diagnosis):
    palsy, leak = complication("delayed_facial_palsy", 10), complication("csf_leak", 3)
    treatment = treatment_for(diagnosis, MVD, started_on=SURGERY, **mvd(complications=[palsy, leak]))
    ids = dict(MvdComplication.objects.filter(mvd__treatment=treatment).values_list("kind", "pk"))

    resolved_palsy = complication("delayed_facial_palsy", 10, 60)
    hearing = complication("hearing_loss_transient", 1)
    services.treatment_update(treatment=treatment, mvd={"complications": [leak, resolved_palsy, hearing]})

    rows = {c.kind: c for c in MvdComplication.objects.filter(mvd__treatment=treatment)}
    assert set(rows) == {"delayed_facial_palsy", "csf_leak", "hearing_loss_transient"}
    assert rows["csf_leak"].pk == ids["csf_leak"]
    assert rows["delayed_facial_palsy"].pk == ids["delayed_facial_palsy"]
    assert rows["delayed_facial_palsy"].resolved_on == SURGERY + timedelta(days=60)
    assert rows["hearing_loss_transient"].pk not in ids.values()
    assert history_types(rows["delayed_facial_palsy"]) == ["+", "~"]

    services.treatment_update(treatment=treatment, mvd={"complications": [hearing]})

    assert list(MvdComplication.objects.filter(mvd__treatment=treatment).values_list("pk", flat=True)) == [
        rows["hearing_loss_transient"].pk
    ]


def test_an_mvd_update_without_complications_leaves_them_alone(diagnosis):
    treatment = treatment_for(
        diagnosis, MVD, started_on=SURGERY, **mvd(complications=[complication("csf_leak", 3)])
    )

    services.treatment_update(treatment=treatment, mvd={"technique": "transposition"})

    detail = Treatment.objects.get(pk=treatment.pk).mvd
    assert detail.technique == "transposition"
    assert detail.complications.count() == 1
    assert list(detail.vessel_rows.values_list("vessel", flat=True)) == ["aica"]


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        (
            mvd(complications=[complication("csf_leak", 5, 4)]),
            {"mvd.complications.0.resolved_on": "The end date is before the start date."},
        ),
        (
            mvd(complications=[complication("csf_leak", 1), complication("stroke", -1)]),
            {"mvd.complications.1.onset_on": "A complication cannot start before surgery."},
        ),
        (
            mvd(complications=[{"kind": "headache", "onset_on": SURGERY}]),
            {"mvd.complications.0.kind": "Value 'headache' is not a valid choice."},
        ),
        (
            mvd(offending_vessels=["none_identified", "aica"]),
            {"mvd.offending_vessels": "'None identified' cannot be combined with a named vessel."},
        ),
        (mvd(technique="laser"), {"mvd.technique": "Value 'laser' is not a valid choice."}),
    ],
)
def test_an_mvd_breaking_a_rule_is_refused_on_its_field(diagnosis, detail, expected):
    refused(lambda: treatment_for(diagnosis, MVD, started_on=SURGERY, **detail), expected)


def test_a_redo_links_to_an_earlier_mvd_of_the_same_patient(diagnosis):
    first = treatment_for(diagnosis, MVD, started_on=date(2020, 6, 1))

    redo = treatment_for(diagnosis, MVD, started_on=SURGERY, **mvd(redo_of=first))

    stored = Treatment.objects.get(pk=redo.pk).mvd
    assert (stored.redo, stored.redo_of) == (True, first)


def test_a_redo_link_to_something_other_than_an_earlier_mvd_of_the_patient_is_refused(diagnosis):
    first = treatment_for(diagnosis, MVD, started_on=date(2020, 6, 1))
    drug = treatment_for(diagnosis, MED, started_on=date(2019, 6, 1))
    foreign = treatment_for(diagnosis_for(PatientFactory()), MVD, started_on=date(2020, 6, 1))

    refused(
        lambda: treatment_for(diagnosis, MVD, started_on=SURGERY, **mvd(redo_of=foreign)),
        {"mvd.redo_of": OTHER_PATIENT},
    )
    refused(
        lambda: treatment_for(diagnosis, MVD, started_on=SURGERY, **mvd(redo_of=drug)),
        {"mvd.redo_of": "A redo links to an earlier MVD."},
    )
    refused(
        lambda: treatment_for(diagnosis, MVD, started_on=date(2020, 6, 1), **mvd(redo_of=first)),
        {"mvd.redo_of": "The earlier MVD must be before this one."},
    )
    refused(
        lambda: services.treatment_update(treatment=first, mvd={"redo_of": first}),
        {"mvd.redo_of": "A redo links to an earlier MVD."},
    )


# --- statuses: entered in error is final ---------------------------------------------------------

EIE = "entered_in_error"


def retracted_message(noun):
    return f"This {noun} was entered in error and is no longer changed; record a new {noun} instead."


def created_retracted_message(noun):
    return (
        f"A new {noun} cannot be entered in error; record it with its real status, "
        "and retract it afterwards if it was a mistake."
    )


def stored_fields(record):
    """The row as stored, with its code lists, to show that a refused write left it as it was."""
    record = type(record).objects.get(pk=record.pk)
    fields = {f.attname: getattr(record, f.attname) for f in record._meta.concrete_fields}
    for related, code in (
        ("muscle_rows", "muscle"),
        ("sequence_rows", "sequence"),
        ("vessel_rows", "vessel"),
    ):
        if hasattr(record, related):
            fields[related] = sorted(getattr(record, related).values_list("pk", code))
    if isinstance(record, Treatment) and hasattr(record, "medication"):
        fields["medication"] = (record.medication.drug, record.medication.daily_dose_mg)
    return fields


def refused_as_retracted(call, record, noun, sent):
    before = stored_fields(record)
    sent.clear()

    error = refused(call, {"status": retracted_message(noun)})

    assert stored_fields(record) == before
    assert sent == []
    return error


def status_codes(call):
    with pytest.raises(ValidationError) as error:
        call()
    return [e.code for e in error.value.error_dict["status"]]


@pytest.mark.parametrize(
    "changes",
    [
        {"status": codes.DiagnosisStatus.CONFIRMED},
        {"status": codes.DiagnosisStatus.PROVISIONAL},
        {"status": codes.DiagnosisStatus.REFUTED},
        {"status": EIE, "notes": "Retracted twice."},
        {"notes": "Edited after retraction."},
        {"side": codes.Side.RIGHT},
        {"muscles": ["frontalis"]},
        {},
    ],
    ids=str,
)
def test_a_retracted_diagnosis_is_neither_revived_nor_edited(diagnosis, sent, changes):
    services.diagnosis_retract(diagnosis=diagnosis)

    refused_as_retracted(
        lambda: services.diagnosis_update(diagnosis=diagnosis, **changes), diagnosis, "diagnosis", sent
    )
    assert status_codes(lambda: services.diagnosis_update(diagnosis=diagnosis, **changes)) == ["retracted"]


@pytest.mark.parametrize(
    "changes",
    [
        {"status": codes.ImagingStatus.AVAILABLE},
        {"report": "Edited after retraction."},
        {"offending_vessels": ["pica"]},
        {"sequences": ["fiesta"]},
    ],
    ids=str,
)
def test_a_retracted_imaging_study_is_neither_revived_nor_edited(patient, sent, changes):
    study = imaging_for(patient)
    services.imaging_study_retract(study=study)

    refused_as_retracted(
        lambda: services.imaging_study_update(study=study, **changes), study, "imaging study", sent
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"status": codes.TreatmentStatus.ACTIVE},
        {"status": codes.TreatmentStatus.COMPLETED},
        {"status": codes.TreatmentStatus.PLANNED},
        {"status": codes.TreatmentStatus.ACTIVE, "ended_on": None, "notes": "Back on it."},
        {"notes": "Edited after retraction."},
        {"ended_on": date(2024, 6, 1)},
        {"medication": {"daily_dose_mg": "600"}},
        {"kind": TOXIN},
    ],
    ids=str,
)
def test_a_retracted_treatment_is_neither_revived_nor_edited(diagnosis, sent, changes):
    treatment = treatment_for(diagnosis, MED)
    services.treatment_retract(treatment=treatment)

    refused_as_retracted(
        lambda: services.treatment_update(treatment=treatment, **changes), treatment, "treatment", sent
    )
    assert status_codes(lambda: services.treatment_update(treatment=treatment, **changes)) == ["retracted"]


def test_retracting_stays_idempotent_after_an_edit_was_refused(diagnosis, sent):
    treatment = treatment_for(diagnosis, MED)
    services.treatment_retract(treatment=treatment)
    with pytest.raises(ValidationError):
        services.treatment_update(treatment=treatment, status=codes.TreatmentStatus.ACTIVE)
    sent.clear()

    services.treatment_retract(treatment=treatment)
    services.diagnosis_retract(diagnosis=diagnosis)
    services.diagnosis_retract(diagnosis=diagnosis)

    assert Treatment.objects.get(pk=treatment.pk).status == EIE
    assert sent == [("diagnosis", "retracted", diagnosis.pk)]


@pytest.mark.parametrize(
    ("make", "noun"),
    [
        (lambda d: diagnosis_for(d.patient, status=EIE), "diagnosis"),
        (lambda d: imaging_for(d.patient, status=EIE), "imaging study"),
        (lambda d: treatment_for(d, MED, status=EIE), "treatment"),
        (lambda d: session(d, JAN_15, "10", status=EIE), "treatment"),
    ],
    ids=["diagnosis", "imaging", "medication", "toxin"],
)
def test_a_record_cannot_be_created_entered_in_error(diagnosis, sent, make, noun):
    sent.clear()

    refused(lambda: make(diagnosis), {"status": created_retracted_message(noun)})

    assert status_codes(lambda: make(diagnosis)) == ["invalid_transition"]
    assert sent == []


@pytest.mark.parametrize(
    ("kind", "status", "new", "message"),
    [
        (
            MED,
            codes.TreatmentStatus.ACTIVE,
            codes.TreatmentStatus.PLANNED,
            "An active treatment can become: completed, entered in error, stopped; not planned.",
        ),
        (
            MVD,
            codes.TreatmentStatus.COMPLETED,
            codes.TreatmentStatus.PLANNED,
            "A completed treatment can become: active, entered in error, stopped; not planned.",
        ),
    ],
)
def test_a_treatment_that_has_begun_is_not_planned_again(diagnosis, sent, kind, status, new, message):
    treatment = treatment_for(diagnosis, kind, status=status)
    before = stored_fields(treatment)
    sent.clear()

    refused(
        lambda: services.treatment_update(treatment=treatment, status=new, notes="x"), {"status": message}
    )

    assert status_codes(lambda: services.treatment_update(treatment=treatment, status=new)) == [
        "invalid_transition"
    ]
    assert stored_fields(treatment) == before
    assert sent == []


def test_a_course_stopped_by_mistake_is_put_back_to_active(diagnosis):
    treatment = treatment_for(diagnosis, MED)
    services.treatment_update(
        treatment=treatment, status=codes.TreatmentStatus.STOPPED, ended_on=date(2024, 6, 1)
    )

    services.treatment_update(treatment=treatment, status=codes.TreatmentStatus.ACTIVE, ended_on=None)

    stored = Treatment.objects.get(pk=treatment.pk)
    assert (stored.status, stored.ended_on) == (codes.TreatmentStatus.ACTIVE, None)


def test_an_update_may_retract_a_live_record_and_follow_up_hears_a_retraction(diagnosis, sent):
    treatment = treatment_for(diagnosis, MED)
    study = imaging_for(diagnosis.patient)
    sent.clear()

    services.treatment_update(treatment=treatment, status=EIE, notes="Wrong patient.")
    services.imaging_study_update(study=study, status=EIE)
    services.diagnosis_update(diagnosis=diagnosis, status=EIE, notes="Duplicate.")

    assert Treatment.objects.get(pk=treatment.pk).notes == "Wrong patient."
    assert Diagnosis.objects.get(pk=diagnosis.pk).status == EIE
    assert sent == [
        ("treatment", "retracted", treatment.pk),
        ("study", "retracted", study.pk),
        ("diagnosis", "retracted", diagnosis.pk),
    ]


def test_a_status_that_is_not_a_code_is_named_once_by_the_field_check(diagnosis):
    messages = refused(
        lambda: services.diagnosis_update(diagnosis=diagnosis, status="cured"),
        {"status": "Value 'cured' is not a valid choice."},
    )

    assert len(messages["status"]) == 1


# --- no hard delete -----------------------------------------------------------------------------


@pytest.fixture
def one_of_each(diagnosis):
    return {
        Patient: diagnosis.patient,
        Diagnosis: diagnosis,
        ImagingStudy: imaging_for(diagnosis.patient),
        Treatment: treatment_for(diagnosis, MED),
    }


@pytest.mark.parametrize("model", [Patient, Diagnosis, ImagingStudy, Treatment], ids=lambda m: m.__name__)
def test_a_clinical_record_is_never_hard_deleted(one_of_each, model):
    record = one_of_each[model]
    before = record_counts()

    with pytest.raises(HardDeleteForbidden):
        record.delete()
    with pytest.raises(HardDeleteForbidden):
        model.objects.filter(pk=record.pk).delete()
    with pytest.raises(HardDeleteForbidden):
        model.objects.all().delete()

    assert record_counts() == before
    assert model.objects.filter(pk=record.pk).exists()


def test_records_are_not_hard_deleted_through_a_patients_relations_either(one_of_each):
    patient = one_of_each[Patient]

    for related in (patient.diagnoses, patient.imaging_studies, patient.treatments):
        with pytest.raises(HardDeleteForbidden):
            related.all().delete()
    assert patient.treatments.count() == 1


# --- follow-up hears of each change inside the transaction --------------------------------------


def test_follow_up_sees_the_saved_detail_when_told_of_a_treatment(diagnosis):
    seen = []

    def receive(treatment, change, **kwargs):
        seen.append((change, ToxinInjection.objects.filter(session__treatment_id=treatment.pk).count()))

    treatment_changed.connect(receive, weak=False, dispatch_uid="test-seen")
    try:
        session(diagnosis, JAN_15, "10", "5")
    finally:
        treatment_changed.disconnect(dispatch_uid="test-seen")

    assert seen == [("recorded", 2)]


@pytest.mark.parametrize(
    ("signal", "write"),
    [
        (patient_changed, lambda d: services.patient_update(patient=d.patient, family_name="Changed")),
        (patient_changed, lambda d: services.patient_archive(patient=d.patient)),
        (diagnosis_changed, lambda d: diagnosis_for(d.patient, muscles=["frontalis", "mentalis"])),
        (diagnosis_changed, lambda d: services.diagnosis_retract(diagnosis=d)),
        (treatment_changed, lambda d: session(d, JAN_15, "10", "5")),
        (
            treatment_changed,
            lambda d: treatment_for(d, MVD, **mvd(complications=[complication("csf_leak", 3)])),
        ),
        (imaging_study_changed, lambda d: imaging_for(d.patient)),
    ],
)
def test_when_follow_up_fails_the_whole_write_is_undone(diagnosis, signal, write):
    before = record_counts()
    patient = Patient.objects.get(pk=diagnosis.patient.pk)

    with failing_follow_up(signal), pytest.raises(RuntimeError, match="follow-up could not plan"):
        write(diagnosis)

    assert record_counts() == before
    assert Patient.objects.get(pk=patient.pk).family_name == patient.family_name
    assert Diagnosis.objects.get(pk=diagnosis.pk).status == diagnosis.status


def test_a_refused_write_sends_no_signal(diagnosis, sent):
    sent.clear()

    with pytest.raises(ValidationError):
        treatment_for(diagnosis, MED, **medication("clonazepam", "21"))
    with pytest.raises(ValidationError):
        diagnosis_for(diagnosis.patient, kind=codes.HfsKind.SECONDARY)
    with pytest.raises(ValidationError):
        services.patient_update(patient=diagnosis.patient, sex="dragon")

    assert sent == []
