from datetime import date

import pytest
from django.core.exceptions import ValidationError

from patients import codes
from tests.factories import treatment_for


def test_a_recorded_toxin_session_keeps_one_row_per_injected_muscle(diagnosis):
    treatment = treatment_for(diagnosis, codes.TreatmentKind.BOTULINUM_TOXIN)

    rows = treatment.botulinum_toxin.injections.order_by("muscle")
    assert [(row.muscle, int(row.units)) for row in rows] == [("orbicularis_oculi", 15), ("zygomaticus", 5)]


def test_a_dose_above_the_ceiling_is_refused_with_a_field_message(diagnosis):
    with pytest.raises(ValidationError) as error:
        treatment_for(
            diagnosis,
            codes.TreatmentKind.MEDICATION,
            medication={"drug": "carbamazepine", "daily_dose_mg": "1200.01"},
            started_on=date(2024, 2, 1),
        )
    assert "1200" in error.value.message_dict["medication.daily_dose_mg"][0]
