"""The database refuses an impossible clinical record on its own, whatever path goes around the services.

Every row here is written with the ORM directly (``objects.create``/``bulk_create``), so nothing but
the database's check and unique constraints stands in the way; each refusal names the constraint
that fired, and a neighbouring valid row shows where the boundary lies.
"""

import itertools
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from patients import codes
from patients.models import (
    BotulinumToxinDetail,
    Diagnosis,
    DiagnosisMuscle,
    ImagingSequenceRow,
    ImagingStudy,
    ImagingVesselRow,
    MedicationDetail,
    MvdComplication,
    MvdDetail,
    MvdVesselRow,
    Patient,
    ToxinInjection,
    Treatment,
)

pytestmark = pytest.mark.django_db

_mrns = itertools.count(1)
NOW = datetime(2024, 1, 15, 9, 30, tzinfo=timezone.get_fixed_timezone(0))


def refused(make, *constraints):
    """Assert that the database refuses what ``make`` writes, through one of ``constraints``."""
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        make()
    assert any(constraint in str(error.value) for constraint in constraints), str(error.value)


# --- valid rows, written straight through the ORM -----------------------------------------------


def new_patient(**overrides):
    fields = {
        "mrn": f"DB{next(_mrns):07d}",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "date_of_birth": date(1968, 5, 17),
        "sex": codes.Sex.FEMALE,
    }
    return Patient.objects.create(**(fields | overrides))


def new_diagnosis(**overrides):
    fields = {
        "patient": overrides.pop("patient", None) or new_patient(),
        "kind": codes.HfsKind.PRIMARY,
        "side": codes.Side.LEFT,
        "diagnosed_on": date(2023, 3, 1),
    }
    return Diagnosis.objects.create(**(fields | overrides))


def new_imaging(**overrides):
    fields = {
        "patient": new_patient(),
        "performed_on": date(2023, 2, 1),
        "modality": codes.ImagingModality.MRI,
    }
    return ImagingStudy.objects.create(**(fields | overrides))


def new_treatment(kind=codes.TreatmentKind.OTHER, **overrides):
    diagnosis = new_diagnosis()
    fields = {
        "patient": diagnosis.patient,
        "diagnosis": diagnosis,
        "kind": kind,
        "started_on": date(2024, 1, 15),
    }
    return Treatment.objects.create(**(fields | overrides))


def new_medication(**overrides):
    fields = {"drug": codes.Drug.CARBAMAZEPINE, "daily_dose_mg": Decimal("400")}
    fields |= overrides
    fields.setdefault("treatment", new_treatment(codes.TreatmentKind.MEDICATION))
    return MedicationDetail.objects.create(**fields)


def new_toxin_session(**overrides):
    fields = {
        "treatment": new_treatment(codes.TreatmentKind.BOTULINUM_TOXIN),
        "product": codes.ToxinProduct.ONABOTULINUMTOXINA,
    }
    return BotulinumToxinDetail.objects.create(**(fields | overrides))


def new_injection(**overrides):
    fields = {"muscle": codes.Muscle.ORBICULARIS_OCULI, "units": Decimal("15")}
    fields |= overrides
    fields.setdefault("session", new_toxin_session())
    return ToxinInjection.objects.create(**fields)


def new_mvd(**overrides):
    fields = {"technique": codes.MvdTechnique.INTERPOSITION}
    fields |= overrides
    fields.setdefault("treatment", new_treatment(codes.TreatmentKind.MVD))
    return MvdDetail.objects.create(**fields)


def new_complication(**overrides):
    fields = {"kind": codes.MvdComplicationKind.CSF_LEAK, "onset_on": date(2024, 1, 20)}
    fields |= overrides
    fields.setdefault("mvd", new_mvd())
    return MvdComplication.objects.create(**fields)


BUILDERS = {
    Patient: new_patient,
    Diagnosis: new_diagnosis,
    DiagnosisMuscle: lambda **o: DiagnosisMuscle.objects.create(
        **({"diagnosis": new_diagnosis(), "muscle": codes.Muscle.FRONTALIS} | o)
    ),
    ImagingStudy: new_imaging,
    ImagingSequenceRow: lambda **o: ImagingSequenceRow.objects.create(
        **({"study": new_imaging(), "sequence": codes.ImagingSequence.CISS} | o)
    ),
    ImagingVesselRow: lambda **o: ImagingVesselRow.objects.create(
        **({"study": new_imaging(), "vessel": codes.Vessel.AICA} | o)
    ),
    Treatment: new_treatment,
    MedicationDetail: new_medication,
    BotulinumToxinDetail: new_toxin_session,
    ToxinInjection: new_injection,
    MvdDetail: new_mvd,
    MvdVesselRow: lambda **o: MvdVesselRow.objects.create(
        **({"mvd": new_mvd(), "vessel": codes.Vessel.AICA} | o)
    ),
    MvdComplication: new_complication,
}


def clinical_models():
    return [
        m for m in apps.get_app_config("patients").get_models() if not m.__name__.startswith("Historical")
    ]


def coded_fields():
    """Every (model, field) that stores a code of a vocabulary."""
    return [
        (model, field)
        for model in clinical_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.CharField) and field.choices
    ]


def test_every_clinical_model_has_a_builder_here():
    assert set(BUILDERS) == set(clinical_models())


def test_the_builders_write_valid_rows():
    for model, build in BUILDERS.items():
        assert build().pk is not None, model


# --- vocabularies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "field"), coded_fields(), ids=[f"{m.__name__}.{f.name}" for m, f in coded_fields()]
)
def test_a_code_outside_the_vocabulary_is_refused(model, field):
    def build(value):
        return BUILDERS[model](**{field.name: value} | companions(model, field.name, value))

    constraints = [f"patients_{model.__name__.lower()}_{field.name}_code"]
    if model is MedicationDetail and field.name == "drug":
        # An unknown drug has no ceiling either; whichever check the database runs first refuses it.
        constraints.append("patients_medication_dose_within_ceiling")

    refused(lambda: build("not_a_code"), *constraints)
    refused(lambda: build(field.choices[0][0].upper()), *constraints)
    if field.blank:
        assert build("").pk
    else:
        refused(lambda: build(""), *constraints)
    for code, _label in field.choices:
        assert build(code).pk


def companions(model, field_name, value):
    """What a row needs beside ``value`` to be valid otherwise: a secondary diagnosis has a cause,
    and a dose fits the lowest ceiling whatever the drug."""
    if model is MedicationDetail and field_name == "drug":
        return {"daily_dose_mg": Decimal("10")}
    if model is Diagnosis and field_name == "kind" and value == codes.HfsKind.SECONDARY:
        return {"secondary_cause": codes.SecondaryCause.OTHER}
    if model is Patient and field_name == "follow_up_end_reason" and value:
        return {"follow_up_ended_on": date(2026, 1, 5)}  # an end has its reason and its day
    if model is Diagnosis and field_name == "secondary_cause" and value:
        return {"kind": codes.HfsKind.SECONDARY}
    return {}


def test_the_vocabulary_fields_are_the_ones_the_domain_names():
    assert {f"{m.__name__}.{f.name}" for m, f in coded_fields()} == {
        "Patient.sex",
        "Patient.hla_b1502_result",
        "Patient.follow_up_end_reason",
        "Diagnosis.kind",
        "Diagnosis.secondary_cause",
        "Diagnosis.side",
        "Diagnosis.presentation",
        "Diagnosis.status",
        "DiagnosisMuscle.muscle",
        "ImagingStudy.modality",
        "ImagingStudy.compression_found",
        "ImagingStudy.status",
        "ImagingSequenceRow.sequence",
        "ImagingVesselRow.vessel",
        "Treatment.kind",
        "Treatment.status",
        "MedicationDetail.drug",
        "MedicationDetail.stop_reason",
        "BotulinumToxinDetail.product",
        "ToxinInjection.muscle",
        "MvdDetail.technique",
        "MvdVesselRow.vessel",
        "MvdComplication.kind",
    }


# --- patients -----------------------------------------------------------------------------------


def test_the_mrn_is_unique():
    new_patient(mrn="MRN-1")

    refused(lambda: new_patient(mrn="MRN-1"), "patients_patient_mrn")
    refused(
        lambda: Patient.objects.bulk_create(
            [Patient(mrn="MRN-2", **_names()), Patient(mrn="MRN-2", **_names())]
        ),
        "patients_patient_mrn",
    )


def _names():
    return {"given_name": "Ada", "family_name": "Byron", "date_of_birth": date(1970, 1, 1), "sex": "female"}


def test_e_mail_consent_needs_an_e_mail_address_and_a_time():
    constraint = "patients_patient_consent_needs_email_and_time"

    refused(lambda: new_patient(email_reminders=True, email="", email_reminders_consented_at=NOW), constraint)
    refused(lambda: new_patient(email_reminders=True, email="a@b.example"), constraint)
    refused(lambda: new_patient(email_reminders=True), constraint)
    assert new_patient(email_reminders=True, email="a@b.example", email_reminders_consented_at=NOW).pk
    assert new_patient(email_reminders=False, email="").pk


def test_an_archived_patient_has_an_archive_time_and_only_an_archived_one_does():
    constraint = "patients_patient_archived_has_time"

    refused(lambda: new_patient(archived=True), constraint)
    refused(lambda: new_patient(archived=False, archived_at=NOW), constraint)
    assert new_patient(archived=True, archived_at=NOW).pk


def test_archiving_without_a_time_is_refused_on_update_too():
    patient = new_patient()

    refused(
        lambda: Patient.objects.filter(pk=patient.pk).update(archived=True),
        "patients_patient_archived_has_time",
    )


# --- diagnoses ----------------------------------------------------------------------------------


def test_a_secondary_diagnosis_needs_a_cause():
    refused(
        lambda: new_diagnosis(kind=codes.HfsKind.SECONDARY, secondary_cause=""),
        "patients_diagnosis_secondary_cause_iff_secondary",
    )
    assert new_diagnosis(kind=codes.HfsKind.SECONDARY, secondary_cause=codes.SecondaryCause.CPA_TUMOR).pk


def test_a_primary_diagnosis_has_no_cause():
    refused(
        lambda: new_diagnosis(kind=codes.HfsKind.PRIMARY, secondary_cause=codes.SecondaryCause.CPA_TUMOR),
        "patients_diagnosis_secondary_cause_iff_secondary",
    )


def test_the_onset_is_not_after_the_diagnosis():
    refused(
        lambda: new_diagnosis(onset_date=date(2023, 3, 2), diagnosed_on=date(2023, 3, 1)),
        "patients_diagnosis_diagnosed_on_not_before_onset_date",
    )
    assert new_diagnosis(onset_date=date(2023, 3, 1), diagnosed_on=date(2023, 3, 1)).pk
    assert new_diagnosis(onset_date=None, diagnosed_on=date(2023, 3, 1)).pk


def test_a_muscle_is_listed_once_per_diagnosis():
    diagnosis = new_diagnosis()
    DiagnosisMuscle.objects.create(diagnosis=diagnosis, muscle=codes.Muscle.FRONTALIS)

    refused(
        lambda: DiagnosisMuscle.objects.create(diagnosis=diagnosis, muscle=codes.Muscle.FRONTALIS),
        "patients_diagnosis_muscle_once",
    )
    refused(
        lambda: DiagnosisMuscle.objects.bulk_create(
            [
                DiagnosisMuscle(diagnosis=diagnosis, muscle="mentalis"),
                DiagnosisMuscle(diagnosis=diagnosis, muscle="mentalis"),
            ]
        ),
        "patients_diagnosis_muscle_once",
    )
    assert DiagnosisMuscle.objects.create(diagnosis=new_diagnosis(), muscle=codes.Muscle.FRONTALIS).pk


# --- imaging ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tesla", ["1.0", "2.0", "1.4", "1.6", "7.0", "0.0"])
def test_a_field_strength_other_than_1_5_or_3_tesla_is_refused(tesla):
    refused(
        lambda: new_imaging(field_strength_tesla=Decimal(tesla)), "patients_imagingstudy_field_strength_known"
    )


@pytest.mark.parametrize("tesla", ["1.5", "3.0", "3", None])
def test_a_field_strength_of_1_5_or_3_tesla_or_none_is_allowed(tesla):
    assert new_imaging(field_strength_tesla=tesla and Decimal(tesla)).pk


def test_a_sequence_and_a_vessel_are_listed_once_per_study():
    study = new_imaging()
    ImagingSequenceRow.objects.create(study=study, sequence=codes.ImagingSequence.CISS)
    ImagingVesselRow.objects.create(study=study, vessel=codes.Vessel.AICA)

    refused(
        lambda: ImagingSequenceRow.objects.create(study=study, sequence=codes.ImagingSequence.CISS),
        "patients_imaging_sequence_once",
    )
    refused(
        lambda: ImagingVesselRow.objects.create(study=study, vessel=codes.Vessel.AICA),
        "patients_imaging_vessel_once",
    )
    refused(
        lambda: ImagingVesselRow.objects.bulk_create(
            [ImagingVesselRow(study=study, vessel="vein"), ImagingVesselRow(study=study, vessel="vein")]
        ),
        "patients_imaging_vessel_once",
    )
    assert ImagingSequenceRow.objects.create(study=study, sequence=codes.ImagingSequence.FIESTA).pk
    assert ImagingVesselRow.objects.create(study=study, vessel=codes.Vessel.PICA).pk


# --- treatments ---------------------------------------------------------------------------------


def test_a_treatment_does_not_end_before_it_starts():
    refused(
        lambda: new_treatment(started_on=date(2024, 1, 15), ended_on=date(2024, 1, 14)),
        "patients_treatment_ended_on_not_before_started_on",
    )
    assert new_treatment(started_on=date(2024, 1, 15), ended_on=date(2024, 1, 15)).pk


def test_moving_the_end_before_the_start_is_refused_on_update_too():
    treatment = new_treatment(started_on=date(2024, 1, 15), ended_on=date(2024, 3, 1))

    refused(
        lambda: Treatment.objects.filter(pk=treatment.pk).update(ended_on=date(2024, 1, 1)),
        "patients_treatment_ended_on_not_before_started_on",
    )


CEILINGS = list(codes.DAILY_DOSE_CEILING_MG.items())


@pytest.mark.parametrize(("drug", "ceiling"), CEILINGS, ids=[drug for drug, _ in CEILINGS])
def test_a_dose_above_the_drugs_ceiling_is_refused(drug, ceiling):
    refused(
        lambda: new_medication(drug=drug, daily_dose_mg=ceiling + Decimal("0.01")),
        "patients_medication_dose_within_ceiling",
    )
    assert new_medication(drug=drug, daily_dose_mg=ceiling).pk


def test_a_dose_allowed_for_one_drug_is_refused_for_a_drug_with_a_lower_ceiling():
    detail = new_medication(drug=codes.Drug.GABAPENTIN, daily_dose_mg=Decimal("900"))

    refused(
        lambda: MedicationDetail.objects.filter(pk=detail.pk).update(drug=codes.Drug.CLONAZEPAM),
        "patients_medication_dose_within_ceiling",
    )


def test_other_drugs_have_no_ceiling_in_the_database():
    assert new_medication(drug=codes.Drug.OTHER, daily_dose_mg=Decimal("99999.99")).pk


@pytest.mark.parametrize("drug", codes.Drug.values)
@pytest.mark.parametrize("dose", ["0", "-0.01", "-400"])
def test_a_dose_of_zero_or_less_is_refused(drug, dose):
    refused(
        lambda: new_medication(drug=drug, daily_dose_mg=Decimal(dose)), "patients_medication_dose_positive"
    )


@pytest.mark.parametrize("units", ["0", "-0.01", "-15", "200.01", "1000"])
def test_toxin_units_at_or_below_zero_or_above_200_are_refused(units):
    refused(lambda: new_injection(units=Decimal(units)), "patients_toxininjection_units_range")


@pytest.mark.parametrize("units", ["0.01", "2.5", "200"])
def test_toxin_units_above_zero_up_to_200_are_allowed(units):
    assert new_injection(units=Decimal(units)).pk


def test_a_muscle_is_injected_once_per_session():
    session = new_toxin_session()
    new_injection(session=session, muscle=codes.Muscle.CORRUGATOR)

    refused(
        lambda: new_injection(session=session, muscle=codes.Muscle.CORRUGATOR),
        "patients_injection_muscle_once",
    )
    refused(
        lambda: ToxinInjection.objects.bulk_create(
            [
                ToxinInjection(session=session, muscle="platysma", units=Decimal(5)),
                ToxinInjection(session=session, muscle="platysma", units=Decimal(5)),
            ]
        ),
        "patients_injection_muscle_once",
    )


@pytest.mark.parametrize("pct", [101, 1000])
def test_a_self_rated_improvement_above_100_percent_is_refused(pct):
    refused(
        lambda: new_toxin_session(self_rated_improvement_pct=pct),
        "patients_botulinumtoxindetail_self_rated_improvement_pct_range",
    )


def test_a_negative_self_rated_improvement_is_refused():
    # PositiveSmallIntegerField brings its own ">= 0" check, which fires first.
    refused(lambda: new_toxin_session(self_rated_improvement_pct=-1), "self_rated_improvement_pct")


@pytest.mark.parametrize("pct", [0, 100, None])
def test_a_self_rated_improvement_from_0_to_100_percent_or_none_is_allowed(pct):
    assert new_toxin_session(self_rated_improvement_pct=pct).pk


def test_a_redo_link_is_only_for_a_redo():
    earlier = new_treatment(codes.TreatmentKind.MVD, started_on=date(2020, 6, 1))

    refused(lambda: new_mvd(redo=False, redo_of=earlier), "patients_mvd_redo_link_only_for_redo")
    assert new_mvd(redo=True, redo_of=earlier).pk
    assert new_mvd(redo=True, redo_of=None).pk


def test_a_vessel_is_listed_once_per_mvd():
    mvd = new_mvd()
    MvdVesselRow.objects.create(mvd=mvd, vessel=codes.Vessel.VERTEBRAL)

    refused(
        lambda: MvdVesselRow.objects.create(mvd=mvd, vessel=codes.Vessel.VERTEBRAL),
        "patients_mvd_vessel_once",
    )


def test_a_complication_does_not_resolve_before_its_onset():
    refused(
        lambda: new_complication(onset_on=date(2024, 1, 20), resolved_on=date(2024, 1, 19)),
        "patients_mvdcomplication_resolved_on_not_before_onset_on",
    )
    assert new_complication(onset_on=date(2024, 1, 20), resolved_on=date(2024, 1, 20)).pk
    assert new_complication(onset_on=date(2024, 1, 20), resolved_on=None).pk
