"""Clinical dates lie in a sane range (issue 20): never before the patient's birth, a fact never in
the future, a plan (a treatment's start or end) at most two years ahead. A treatment started on
9999-12-31, or a dose change, a toxin's wear-off or a complication then, was a 500 (the day
arithmetic of planning and of the safety window overflowed); each is now a 400 on its field."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from patients import codes
from patients.models import Treatment
from tests.factories import PatientFactory, diagnosis_for, treatment_for

FAR = date(9999, 12, 31)
TOXIN, MED, MVD = codes.TreatmentKind.BOTULINUM_TOXIN, codes.TreatmentKind.MEDICATION, codes.TreatmentKind.MVD


@pytest.fixture
def diagnosis(db):
    return diagnosis_for(PatientFactory())


def _refused(diagnosis, kind, **overrides) -> dict:
    count = Treatment.objects.count()
    with pytest.raises(ValidationError) as refused:
        treatment_for(diagnosis, kind, **overrides)
    assert Treatment.objects.count() == count
    return {field: [e.code for e in errors] for field, errors in refused.value.error_dict.items()}


@pytest.mark.parametrize("kind", [TOXIN, MED, MVD])
def test_a_treatment_started_in_year_9999_is_refused_on_its_field(diagnosis, kind):
    assert _refused(diagnosis, kind, started_on=FAR, status=codes.TreatmentStatus.PLANNED) == {
        "started_on": ["too_far_ahead"]
    }


def test_a_treatment_is_planned_up_to_two_years_ahead(diagnosis):
    today = timezone.localdate()
    planned = treatment_for(
        diagnosis, MVD, started_on=today + timedelta(days=730), status=codes.TreatmentStatus.PLANNED
    )
    assert planned.started_on == today + timedelta(days=730)
    assert _refused(
        diagnosis, MVD, started_on=today + timedelta(days=731), status=codes.TreatmentStatus.PLANNED
    ) == {"started_on": ["too_far_ahead"]}


@pytest.mark.parametrize(
    ("kind", "detail", "field"),
    [
        (MED, {"medication": {"drug": "carbamazepine", "daily_dose_mg": "400", "dose_changed_on": FAR}},
         "medication.dose_changed_on"),
        (TOXIN, {"botulinum_toxin": {"product": "onabotulinumtoxinA", "wore_off_on": FAR,
                                     "injections": [{"muscle": "orbicularis_oculi", "units": "10"}]}},
         "botulinum_toxin.wore_off_on"),
        (MVD, {"mvd": {"technique": "interposition", "offending_vessels": ["aica"],
                       "complications": [{"kind": "hearing_loss_transient", "onset_on": FAR}]}},
         "mvd.complications.0.onset_on"),
    ],
)  # fmt: skip
def test_a_detail_dated_in_year_9999_is_a_fact_in_the_future(diagnosis, kind, detail, field):
    assert _refused(diagnosis, kind, **detail) == {field: ["in_future"]}
