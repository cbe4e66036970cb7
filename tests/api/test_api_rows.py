"""Flat lists are answered from ``.values()`` rows (clinic.api_rows): the same bytes, the same audit.

Each list is read twice, once on the row path and once with it switched off (the serializer of
every other endpoint), and the two answers must be equal byte for byte, for every role that may
read the list, page after page, with every kind of value a row can hold (nulls, links both ways,
date-times across a DST change, text with quotes and non-ASCII).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework import serializers

from clinic import api as clinic_api
from clinic.api_rows import row_plan
from clinic.models import AuditEvent
from clinic.roles import Role
from followups import api as followups_api
from followups import services as followups
from followups.codes import ReminderStatus, VisitStatus
from followups.models import PatientFlag, Reminder, TreatmentOutcome, Visit
from followups.visit_moves import visit_move
from patients import codes, demo
from patients import services as patients
from patients.api import PatientOut
from tests.api.conftest import API
from tests.factories import PatientFactory, diagnosis_for, treatment_for


def at(days_ahead: int, hour: int = 11) -> datetime:
    day = timezone.localdate() + timedelta(days=days_ahead)
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(settings.CLINIC_TIME_ZONE))


@pytest.fixture
def varied_rows(db):
    """Patients and visits with every kind of value the row path must answer as the serializer does."""
    ada = PatientFactory(
        given_name="Ada 'Zoë'",
        family_name='Lövelace "the first"',
        email_reminders=True,
        at_risk_hla_b1502=True,
        hla_b1502_result=codes.HlaB1502Result.NEGATIVE,
        timezone="Pacific/Auckland",
    )
    PatientFactory(email="", phone="", email_reminders=False)  # blanks
    patients.patient_archive(patient=PatientFactory())
    diagnosis = diagnosis_for(ada, diagnosed_on=timezone.localdate() - timedelta(days=30))
    started = timezone.localdate() - timedelta(days=14)
    toxin = treatment_for(diagnosis, codes.TreatmentKind.BOTULINUM_TOXIN, started_on=started)
    missed = followups.visit_create(patient=ada, purpose="Review", scheduled_for=at(-3))
    visit_move(visit=missed, to=VisitStatus.MISSED)
    followups.visit_rebook(visit=missed, scheduled_for=at(4, 9))  # rebooked_from / rebooked_as
    cancelled = followups.visit_create(patient=ada, purpose="Ünterbrechung", scheduled_for=at(150, 16))
    visit_move(visit=cancelled, to=VisitStatus.CANCELLED, reason="Patient moved abroad")
    first = Reminder.objects.filter(visit__patient=ada).order_by("pk").first()
    Reminder.objects.filter(pk=first.pk).update(
        status=ReminderStatus.SENT, sent_at=timezone.now(), attempts=1
    )
    assert Visit.objects.filter(treatment=toxin).exists() and Visit.objects.filter(treatment=None).exists()
    return ada


def pages(client, path: str, size: int) -> list[bytes]:
    """Every page of a list, following ``next``, as the bytes the API sent."""
    answers, url = [], f"{API}{path}?page_size={size}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        answers.append(response.content)
        url = response.json()["next"]
    return answers


def audit_of(resource: str, actor: str) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(resource=resource, actor=actor)
        .order_by("id")
        .values_list("actor", "action", "object_id", "patient_id", "status", "method")
    )


@pytest.mark.parametrize(
    ("path", "resource", "roles"),
    [
        ("patients/", "patient", [Role.CLINICIAN, Role.FRONT_DESK, Role.INTEGRATION_READ]),
        ("visits/", "visit", [Role.CLINICIAN, Role.FRONT_DESK]),
        ("reminders/", "reminder", [Role.NURSE, Role.FRONT_DESK]),
    ],
)
def test_a_flat_list_answers_the_bytes_and_audit_of_its_serializer(
    varied_rows, api_as, monkeypatch, path, resource, roles
):
    for role in roles:
        client = api_as(role)
        actor = client.api_client.user.username
        fast = pages(client, path, size=2)
        fast_audit = audit_of(resource, actor)
        with monkeypatch.context() as switched:
            switched.setattr(clinic_api, "row_plan", lambda serializer_class: None)
            slow = pages(client, path, size=2)
        slow_audit = audit_of(resource, actor)[len(fast_audit) :]

        assert len(fast) > 1  # several pages: the cursor works on rows too
        assert fast == slow, role
        assert fast_audit == slow_audit and fast_audit, role


def test_a_patients_outcomes_and_flags_answer_the_bytes_of_their_serializers(db, api_as, monkeypatch):
    demo.seed_demo(patients=40, seed=3)
    call_command("follow_up_refresh", stdout=StringIO())
    outcomes = TreatmentOutcome.objects.all()
    # Nested briefs present and absent, a scale that applies (MVD) and one stored blank (the rest).
    assert outcomes.filter(baseline__isnull=False).exists() and outcomes.filter(current__isnull=True).exists()
    assert outcomes.exclude(soriano_baron="").exists() and outcomes.filter(soriano_baron="").exists()
    assert PatientFlag.objects.exists()
    client = api_as(Role.CLINICIAN)
    paths = [
        f"{API}patients/{uuid}/{part}/"
        for uuid in outcomes.values_list("treatment__patient__uuid", flat=True).distinct()
        for part in ("outcomes", "flags")
    ]

    fast = [client.get(path).content for path in paths]
    with monkeypatch.context() as switched:
        switched.setattr(followups_api, "row_plan", lambda serializer_class: None)
        slow = [client.get(path).content for path in paths]

    assert fast == slow
    assert b'"soriano_baron":null' in b"".join(fast) and b'"baseline":{"id":' in b"".join(fast)


def test_the_front_desk_gets_no_clinical_field_on_the_row_path(varied_rows, api_as):
    rows = api_as(Role.FRONT_DESK).get(f"{API}patients/").json()["results"]

    assert rows and all("hla_b1502_result" not in r and "at_risk_hla_b1502" not in r for r in rows)
    assert all("mrn" in r and "email" in r for r in rows)


def test_only_flat_serializers_get_a_row_plan():
    class WithMethod(serializers.ModelSerializer):
        shout = serializers.SerializerMethodField()

        class Meta:
            model = Visit
            fields = ("purpose", "shout")

    class AcrossManyRows(serializers.ModelSerializer):
        reminder_status = serializers.CharField(source="reminders.status")

        class Meta:
            model = Visit
            fields = ("purpose", "reminder_status")

    class Plain(serializers.Serializer):
        purpose = serializers.CharField()

    def across_treatment(**kwargs):
        # A visit's treatment may be missing: DRF answers null only if the field allows it.
        class AcrossNullable(serializers.ModelSerializer):
            treatment_id = serializers.UUIDField(source="treatment.uuid", read_only=True, **kwargs)

            class Meta:
                model = Visit
                fields = ("treatment_id",)

        return AcrossNullable

    class Customised(serializers.ModelSerializer):
        class Meta:
            model = Visit
            fields = ("purpose",)

        def to_representation(self, instance):
            return {"purpose": instance.purpose.upper()}

    plan = row_plan(PatientOut)
    assert plan is not None
    assert plan.lookups[:2] == ("uuid", "mrn")
    assert row_plan(WithMethod) is None
    assert row_plan(AcrossManyRows) is None  # a reverse foreign key: one row would become many
    assert row_plan(Plain) is None  # no model to read rows of
    assert row_plan(across_treatment()) is None  # DRF leaves the field out where no treatment is
    assert row_plan(across_treatment(allow_null=True)).lookups == ("treatment__uuid",)
    assert row_plan(Customised) is None
    # A nested brief across a foreign key is flat too: its columns under the link's name.
    assert row_plan(followups_api.OutcomeOut).lookups[3:6] == (
        "baseline",
        "baseline__uuid",
        "baseline__assessed_on",
    )
