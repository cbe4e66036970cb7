"""Names carry no control characters (issue 20): a CR/LF splits an e-mail header or a CSV row, a
direction mark makes a name display as another. Real names, joiners included, are taken."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from patients import services as record
from patients.models import Patient
from patients.services import NAME_CONTROL
from tests.factories import PatientFactory


@pytest.mark.parametrize(
    "name",
    [
        "Ada\r\nBcc: x@example.org",
        "Ada\tLovelace",
        "Ada\x00",
        "\u202eecalevoL",
        "Ada\u2066Lovelace\u2069",
        "A\u200fda",
    ],
)
@pytest.mark.parametrize("field", ["given_name", "family_name"])
def test_a_name_with_control_characters_is_refused(db, field, name):
    patient = PatientFactory()

    with pytest.raises(ValidationError) as refused:
        record.patient_update(patient=patient, **{field: name})

    assert refused.value.message_dict == {field: [NAME_CONTROL]}
    assert getattr(Patient.objects.get(pk=patient.pk), field) != name


@pytest.mark.parametrize("name", ["O'Brien-Müller", "Zoë", "محمد\u200cرضا", "José María", "Nguyễn"])
def test_real_names_are_taken_zero_width_joiners_included(db, name):
    patient = record.patient_update(patient=PatientFactory(), family_name=name)
    assert patient.family_name == name
