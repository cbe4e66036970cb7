"""The staff panel's form for a treatment of each kind, with its details, as one service call.

A treatment is one row and the detail of its kind (a medication course's drug and dose, a toxin
session's units per muscle, an MVD's vessels and complications). The panel shows them as one page
of several Django forms; ``TreatmentForms`` validates them together, turns them into the keyword
arguments of ``treatment_record`` / ``treatment_update``, and puts a refusal of the service back
on the field it names (``botulinum_toxin.injections.1.units`` is the units box of the second
muscle entered), so the clinician reads it where it belongs.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Q

from clinic.admin_services import form_add_service_errors
from clinic.roles import Role
from patients import codes
from patients.models import Diagnosis, Patient, Treatment

Kind = codes.TreatmentKind
Status = codes.TreatmentStatus

# What a treatment of each kind usually is when recorded: a course is under way; an injection or
# an operation is recorded once given.
STATUS_WHEN_RECORDED = {
    Kind.MEDICATION: Status.ACTIVE,
    Kind.BOTULINUM_TOXIN: Status.COMPLETED,
    Kind.MVD: Status.COMPLETED,
    Kind.OTHER: Status.ACTIVE,
}
STARTED_ON_LABEL = {
    Kind.MEDICATION: "Course started on",
    Kind.BOTULINUM_TOXIN: "Injected on",
    Kind.MVD: "Operated on",
    Kind.OTHER: "Started on",
}
# Treatments given on one day have no end of their own.
ONE_DAY_KINDS = (Kind.BOTULINUM_TOXIN, Kind.MVD)


class DateInput(forms.DateInput):
    """The browser's own date picker: no script of ours, and typing stays possible."""

    input_type = "date"

    def format_value(self, value):
        return value.isoformat() if hasattr(value, "isoformat") else value


def _date(label: str, *, required: bool = False, help_text: str = "") -> forms.DateField:
    return forms.DateField(label=label, required=required, widget=DateInput, help_text=help_text)


def clinicians() -> Q:
    """Users who may be named the surgeon: clinicians (superusers are clinicians, ``clinic.roles``)."""
    return Q(is_superuser=True) | Q(groups__name=Role.CLINICIAN.value)


def diagnosis_label(diagnosis: Diagnosis) -> str:
    cause = f", {diagnosis.get_secondary_cause_display()}" if diagnosis.secondary_cause else ""
    return (
        f"{diagnosis.get_kind_display()} HFS{cause}, {diagnosis.get_side_display().lower()}, "
        f"diagnosed {diagnosis.diagnosed_on:%Y-%m-%d} ({diagnosis.get_status_display().lower()})"
    )


class TreatmentForm(forms.Form):
    diagnosis = forms.ModelChoiceField(queryset=Diagnosis.objects.none(), empty_label=None)
    status = forms.ChoiceField(choices=[c for c in Status.choices if c[0] != Status.ENTERED_IN_ERROR])
    started_on = _date("Started on", required=True)
    ended_on = _date("Ended on")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))

    def __init__(self, *args, patient: Patient, kind: str, treatment: Treatment | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["diagnosis"]
        # A treatment keeps its diagnosis on the list even once that was retracted: otherwise the
        # select would fall to the first other diagnosis and saving would move the treatment.
        kept = Q(pk=treatment.diagnosis_id) if treatment is not None else Q(pk__in=[])
        field.queryset = patient.diagnoses.filter(
            ~Q(status=codes.DiagnosisStatus.ENTERED_IN_ERROR) | kept
        ).order_by("-diagnosed_on", "-pk")
        field.label_from_instance = diagnosis_label
        self.fields["started_on"].label = STARTED_ON_LABEL[kind]
        if kind in ONE_DAY_KINDS:
            del self.fields["ended_on"]


class MedicationForm(forms.Form):
    drug = forms.ChoiceField(choices=codes.Drug.choices)
    daily_dose_mg = forms.DecimalField(
        label="Daily dose (mg)",
        min_value=Decimal("0.01"),
        max_digits=8,
        decimal_places=2,
        help_text="At most "
        + ", ".join(
            f"{codes.Drug(drug).label.lower()} {ceiling} mg"
            for drug, ceiling in codes.DAILY_DOSE_CEILING_MG.items()
        )
        + " a day.",
    )
    dose_changed_on = _date("Dose changed on", help_text="Left empty, a new dose counts from today.")
    stop_reason = forms.ChoiceField(
        choices=[("", "—"), *codes.StopReason.choices], required=False, label="Why it stopped"
    )

    def __init__(self, *args, editing: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        if not editing:
            del self.fields["dose_changed_on"]

    def service_data(self) -> dict:
        """A new course gives every field; a change only what was changed, as the service takes
        a partial detail: a new dose with its date untouched is dated by the service (today),
        not by the date of the previous change still in the box, and a reason left as it was
        is not rewritten."""
        names = self.changed_data if self.editing else list(self.fields)
        data = {name: self.cleaned_data[name] for name in names}
        if data.get("dose_changed_on", "") is None:
            del data["dose_changed_on"]
        return data


class ToxinForm(forms.Form):
    """A session's units per muscle: one box per muscle, the empty ones not injected."""

    product = forms.ChoiceField(choices=codes.ToxinProduct.choices)
    wore_off_on = _date("Benefit wore off on")
    self_rated_improvement_pct = forms.IntegerField(
        label="Self-rated improvement (%)", required=False, min_value=0, max_value=100
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for muscle, label in codes.Muscle.choices:
            self.fields[self.units_name(muscle)] = forms.DecimalField(
                label=f"{label} (U)",
                required=False,
                min_value=Decimal("0.01"),
                max_digits=7,
                decimal_places=2,
                widget=forms.NumberInput(attrs={"step": "0.5", "data-units": "", "class": "vUnits"}),
            )

    @staticmethod
    def units_name(muscle: str) -> str:
        return f"units_{muscle}"

    def muscle_fields(self):
        return [self[self.units_name(muscle)] for muscle in codes.Muscle.values]

    def other_fields(self):
        return [self[name] for name in ("product", "wore_off_on", "self_rated_improvement_pct")]

    def injected(self) -> list[str]:
        """The muscles given units, in the order the service is told them."""
        return [m for m in codes.Muscle.values if self.cleaned_data.get(self.units_name(m)) is not None]

    def service_data(self) -> dict:
        data = {
            name: self.cleaned_data[name] for name in ("product", "wore_off_on", "self_rated_improvement_pct")
        }
        data["injections"] = [
            {"muscle": muscle, "units": self.cleaned_data[self.units_name(muscle)]}
            for muscle in self.injected()
        ]
        return data

    @classmethod
    def initial_of(cls, detail) -> dict:
        initial = {
            "product": detail.product,
            "wore_off_on": detail.wore_off_on,
            "self_rated_improvement_pct": detail.self_rated_improvement_pct,
        }
        for injection in detail.injections.all():
            initial[cls.units_name(injection.muscle)] = injection.units
        return initial


class MvdForm(forms.Form):
    technique = forms.ChoiceField(choices=codes.MvdTechnique.choices)
    offending_vessels = forms.MultipleChoiceField(
        choices=codes.Vessel.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Offending vessels found at surgery",
    )
    redo_of = forms.ModelChoiceField(
        queryset=Treatment.objects.none(),
        required=False,
        label="Redo of the earlier MVD",
        empty_label="— not a redo —",
    )
    surgeon = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label="— not known (operated elsewhere) —",
    )

    def __init__(self, *args, patient: Patient, treatment: Treatment | None, **kwargs):
        super().__init__(*args, **kwargs)
        earlier = patient.treatments.filter(kind=Kind.MVD)
        kept = (
            Q(pk=treatment.mvd.redo_of_id)
            if treatment is not None and hasattr(treatment, "mvd")
            else Q(pk__in=[])
        )
        earlier = earlier.filter(~Q(status=Status.ENTERED_IN_ERROR) | kept)
        if treatment is not None:
            earlier = earlier.exclude(pk=treatment.pk)
        field = self.fields["redo_of"]
        field.queryset = earlier.order_by("-started_on")
        surgeon = self.fields["surgeon"]
        kept = (
            Q(pk=treatment.mvd.surgeon_id)
            if treatment is not None and hasattr(treatment, "mvd")
            else Q(pk__in=[])
        )
        surgeon.queryset = (
            get_user_model()
            .objects.filter((Q(is_active=True, is_staff=True) & clinicians()) | kept)
            .distinct()
            .order_by("last_name", "first_name", "username")
        )
        surgeon.label_from_instance = lambda user: user.get_full_name() or user.get_username()
        field.label_from_instance = lambda mvd: f"MVD of {mvd.started_on:%Y-%m-%d}"

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        data["redo"] = data["redo_of"] is not None
        return data

    @staticmethod
    def initial_of(detail) -> dict:
        return {
            "technique": detail.technique,
            "offending_vessels": list(detail.vessel_rows.values_list("vessel", flat=True)),
            "redo_of": detail.redo_of_id,
            "surgeon": detail.surgeon_id,
        }


class ComplicationForm(forms.Form):
    """One row of the complications table: its column headings are the labels a screen reader
    needs on each field too."""

    kind = forms.ChoiceField(
        choices=[("", "—"), *codes.MvdComplicationKind.choices],
        required=False,
        widget=forms.Select(attrs={"aria-label": "Complication"}),
    )
    onset_on = forms.DateField(label="Onset", required=False, widget=DateInput(attrs={"aria-label": "Onset"}))
    resolved_on = forms.DateField(
        label="Resolved",
        required=False,
        widget=DateInput(attrs={"aria-label": "Resolved (empty while it lasts)"}),
    )

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("kind") and (cleaned.get("onset_on") or cleaned.get("resolved_on")):
            self.add_error("kind", "Which complication?")
        if cleaned.get("kind") and not cleaned.get("onset_on"):
            self.add_error("onset_on", "When did it start?")
        return cleaned


ComplicationFormSet = forms.formset_factory(ComplicationForm, extra=2, can_delete=True)


class TreatmentForms:
    """The forms of one treatment page: the treatment, the detail of its kind and, for an MVD, its
    complications, validated and written together."""

    def __init__(
        self, *, patient: Patient, kind: str, treatment: Treatment | None = None, data=None, initial=None
    ):
        self.patient, self.kind, self.treatment = patient, kind, treatment
        editing = treatment is not None
        if editing:
            initial = {
                "diagnosis": treatment.diagnosis_id,
                "status": treatment.status,
                "started_on": treatment.started_on,
                "ended_on": treatment.ended_on,
                "notes": treatment.notes,
            }
        else:
            initial = {"status": STATUS_WHEN_RECORDED[kind], **(initial or {})}
        self.treatment_form = TreatmentForm(
            data, patient=patient, kind=kind, treatment=treatment, initial=initial, prefix="treatment"
        )
        self.detail = None
        self.complications = None
        if kind == Kind.MEDICATION:
            detail = getattr(treatment, "medication", None) if editing else None
            initial = (
                {
                    "drug": detail.drug,
                    "daily_dose_mg": detail.daily_dose_mg,
                    "dose_changed_on": detail.dose_changed_on,
                    "stop_reason": detail.stop_reason,
                }
                if detail
                else {}
            )
            self.detail = MedicationForm(data, editing=editing, initial=initial, prefix="medication")
        elif kind == Kind.BOTULINUM_TOXIN:
            detail = getattr(treatment, "botulinum_toxin", None) if editing else None
            initial = ToxinForm.initial_of(detail) if detail else {}
            self.detail = ToxinForm(data, initial=initial, prefix="botulinum_toxin")
        elif kind == Kind.MVD:
            detail = getattr(treatment, "mvd", None) if editing else None
            self.detail = MvdForm(
                data,
                patient=patient,
                treatment=treatment,
                initial=MvdForm.initial_of(detail) if detail else {},
                prefix="mvd",
            )
            complications = (
                [
                    {"kind": c.kind, "onset_on": c.onset_on, "resolved_on": c.resolved_on}
                    for c in detail.complications.order_by("onset_on", "pk")
                ]
                if detail
                else []
            )
            self.complications = ComplicationFormSet(data, initial=complications, prefix="complications")

    @property
    def detail_name(self) -> str | None:
        return {
            Kind.MEDICATION: "medication",
            Kind.BOTULINUM_TOXIN: "botulinum_toxin",
            Kind.MVD: "mvd",
        }.get(self.kind)

    def forms(self) -> list:
        return [f for f in (self.treatment_form, self.detail, self.complications) if f is not None]

    def is_valid(self) -> bool:
        valid = [f.is_valid() for f in self.forms()]  # every form validated, so each shows its errors
        return all(valid)

    def _kept_complications(self) -> list[forms.Form]:
        return [
            form
            for form in self.complications
            if form.cleaned_data.get("kind") and not form.cleaned_data.get("DELETE")
        ]

    def service_data(self) -> dict:
        """The keyword arguments of ``treatment_record`` (with ``patient`` and ``kind``) or
        ``treatment_update`` (with ``treatment``)."""
        data = dict(self.treatment_form.cleaned_data)
        if self.detail is not None:
            detail = self.detail.service_data()
            if self.complications is not None:
                detail["complications"] = [
                    {name: form.cleaned_data[name] for name in ("kind", "onset_on", "resolved_on")}
                    for form in self._kept_complications()
                ]
            data[self.detail_name] = detail
        return data

    def show_refusal(self, error: ValidationError) -> None:
        """Put each message of the service's refusal on the field it names."""
        for key, messages in error.update_error_dict({}).items():
            form, field = self._field_of(key)
            form_add_service_errors(form, ValidationError({field: messages}))

    def _field_of(self, key: str) -> tuple[forms.BaseForm, str]:
        main = self.treatment_form
        head, _, rest = key.partition(".")
        if head != self.detail_name or self.detail is None:
            return main, key if key in main.fields else NON_FIELD_ERRORS
        parts = rest.split(".") if rest else []
        if not parts:
            return self.detail, NON_FIELD_ERRORS
        if parts[0] == "injections" and len(parts) == 3 and parts[1].isdigit():
            injected = self.detail.injected()
            if int(parts[1]) < len(injected):
                return self.detail, ToxinForm.units_name(injected[int(parts[1])])
        if parts[0] == "complications" and len(parts) == 3 and parts[1].isdigit():
            kept = self._kept_complications()
            if int(parts[1]) < len(kept):
                form = kept[int(parts[1])]
                return form, parts[2] if parts[2] in form.fields else NON_FIELD_ERRORS
        if parts[0] in self.detail.fields:
            return self.detail, parts[0]
        return self.detail, NON_FIELD_ERRORS


class StopForm(forms.Form):
    """Stopping a course: the day it stopped and, for a medication, why."""

    ended_on = _date("Stopped on", required=True)
    stop_reason = forms.ChoiceField(choices=codes.StopReason.choices, label="Why it stopped")

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        if kind != Kind.MEDICATION:
            del self.fields["stop_reason"]

    def service_data(self) -> dict:
        data = {"status": Status.STOPPED, "ended_on": self.cleaned_data["ended_on"]}
        if "stop_reason" in self.cleaned_data:
            data["medication"] = {"stop_reason": self.cleaned_data["stop_reason"]}
        return data
