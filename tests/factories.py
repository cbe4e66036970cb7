"""Test data through factory_boy; records that carry rules are made through the services."""

from datetime import date, time, timedelta

import factory

from clinic.roles import Role, group_for
from followups.models import Protocol, ProtocolStep, SessionTemplate, SessionTemplateKind
from followups.protocol_defaults import protocols_load_defaults, session_templates_load_defaults
from patients import codes, services
from patients.models import Patient


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"MRN{n:07d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    date_of_birth = date(1968, 5, 17)
    sex = codes.Sex.FEMALE
    email = factory.LazyAttribute(lambda p: f"{p.mrn.lower()}@patients.example")
    timezone = ""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return services.patient_create(**kwargs)


def diagnosis_for(patient, **overrides):
    fields = {
        "kind": codes.HfsKind.PRIMARY,
        "side": codes.Side.LEFT,
        "diagnosed_on": date(2023, 3, 1),
        "muscles": [codes.Muscle.ORBICULARIS_OCULI],
    }
    fields.update(overrides)
    return services.diagnosis_record(patient=patient, **fields)


def treatment_for(diagnosis, kind, **overrides):
    """A valid treatment of ``kind`` with typical details; overrides replace any field or detail."""
    fields = {"started_on": date(2024, 1, 15), "status": codes.TreatmentStatus.ACTIVE}
    if kind == codes.TreatmentKind.MEDICATION:
        fields["medication"] = {"drug": codes.Drug.CARBAMAZEPINE, "daily_dose_mg": "400"}
    elif kind == codes.TreatmentKind.BOTULINUM_TOXIN:
        fields["status"] = codes.TreatmentStatus.COMPLETED
        fields["botulinum_toxin"] = {
            "product": codes.ToxinProduct.ONABOTULINUMTOXINA,
            "injections": [
                {"muscle": codes.Muscle.ORBICULARIS_OCULI, "units": "15"},
                {"muscle": codes.Muscle.ZYGOMATICUS, "units": "5"},
            ],
        }
    elif kind == codes.TreatmentKind.MVD:
        fields["status"] = codes.TreatmentStatus.COMPLETED
        fields["mvd"] = {"technique": codes.MvdTechnique.INTERPOSITION, "offending_vessels": ["aica"]}
    fields.update(overrides)
    return services.treatment_record(patient=diagnosis.patient, diagnosis=diagnosis, kind=kind, **fields)


def seeded_rows_restore() -> None:
    """Put back what the migrations seed (default protocols, role groups) where a test emptied it."""
    protocols_load_defaults(Protocol, ProtocolStep)
    session_templates_load_defaults(SessionTemplate, SessionTemplateKind, valid_from=date.today())
    for role in Role:
        group_for(role)


def session_template_row(
    *,
    weekday,
    valid_from,
    kinds,
    label="Review clinic",
    starts="09:00",
    ends="10:00",
    minutes=20,
    capacity=1,
    **more,
) -> SessionTemplate:
    """A session template written as a row, without its sessions (a test generates them when it
    wants them; ``followups.sessions.session_template_save`` writes one as staff do)."""
    template = SessionTemplate.objects.create(
        label=label,
        weekday=weekday,
        starts_at=time.fromisoformat(starts),
        ends_at=time.fromisoformat(ends),
        slot_minutes=minutes,
        capacity=capacity,
        valid_from=valid_from,
        **more,
    )
    SessionTemplateKind.objects.bulk_create(
        SessionTemplateKind(template=template, visit_kind=k) for k in kinds
    )
    return template


def bulk_patients(count: int, today: date) -> list[Patient]:
    """``count`` plain patients written in one query, for the tests of a page's cost at length."""
    return Patient.objects.bulk_create(
        Patient(
            mrn=f"BULK{n:06d}",
            given_name="Bulk",
            family_name=f"Patient {n}",
            date_of_birth=today - timedelta(days=365 * 50),
            sex=codes.Sex.FEMALE,
            phone=f"+49 30 {n:07d}",
        )
        for n in range(count)
    )
