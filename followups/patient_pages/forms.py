"""The one choice a patient makes on a booking page: a slot, named by its public id."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from followups.models import Slot

CHOOSE_A_TIME = _("Please choose a time.")
TIME_GONE = _("Sorry, that time can no longer be booked. Please choose another.")


class SlotChoiceForm(forms.Form):
    slot = forms.UUIDField(error_messages={"required": CHOOSE_A_TIME, "invalid": CHOOSE_A_TIME})

    def clean_slot(self) -> Slot:
        # Whether the visit may take it is the service's to say (a slot taken meanwhile is a
        # message of its own); here only that it exists.
        slot = Slot.objects.select_related("session").filter(uuid=self.cleaned_data["slot"]).first()
        if slot is None:
            raise ValidationError(TIME_GONE, code="slot_unavailable")
        return slot
