"""The clinical record over the API (API.md): patients, diagnoses, imaging studies, treatments.

Serializers only translate: input serializers check shapes and types, the services check the
clinical rules (their field messages come back as the 400), output serializers read rows that the
viewsets fetch with their relations in a fixed number of queries.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from clinic.api import ResourceFilter, ResourceViewSet, StrictBooleanFilter
from clinic.roles import Kind, may
from patients import codes, services
from patients.models import Diagnosis, ImagingStudy, Patient, ToxinInjection, Treatment

TREATMENT_WRITABLE = ("status", "started_on", "ended_on", "notes")

# --- shared fields ------------------------------------------------------------------------------


class StrictInput(serializers.Serializer):
    """An input serializer that refuses fields it does not know, instead of ignoring them, and a
    number or a boolean where it takes text (DRF would turn ``{"reason": 0}`` into "0": a request the
    schema calls invalid, accepted; issue 20, found by schemathesis)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            refused = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
            for name, field in self.fields.items():
                value = data.get(name)
                if (
                    isinstance(field, serializers.CharField)
                    and value is not None
                    and not isinstance(value, str)
                ):
                    refused[name] = [field.error_messages["invalid"]]
            if refused:
                raise serializers.ValidationError(refused)
        return super().to_internal_value(data)


class CodeList(serializers.ListField):
    """A list of codes kept as child rows (muscles, sequences, vessels...)."""

    def __init__(self, choices, related_name: str = "", code_field: str = "", **kwargs):
        self.related_name, self.code_field = related_name, code_field
        super().__init__(child=serializers.ChoiceField(choices=choices), **kwargs)

    def get_attribute(self, instance):
        return instance

    def to_representation(self, instance):
        return sorted(getattr(row, self.code_field) for row in getattr(instance, self.related_name).all())


class RecordRef(serializers.SlugRelatedField):
    """Another record named by its public id; one of another patient is refused by the service."""

    def __init__(self, queryset, **kwargs):
        super().__init__(slug_field="uuid", queryset=queryset, **kwargs)

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            raise
        except (TypeError, ValueError) as error:
            raise serializers.ValidationError("Give the id (a UUID) of an existing record.") from error


def public_id(source: str):
    return serializers.UUIDField(source=source, read_only=True)


# --- patients -----------------------------------------------------------------------------------

PATIENT_CLINICAL_FIELDS = ("at_risk_hla_b1502", "hla_b1502_result")


def hidden_patient_fields(request) -> tuple[str, ...]:
    # The front desk sees contact data only: HLA results are clinical.
    if request is not None and not may(request.user, Kind.CLINICAL, write=False):
        return PATIENT_CLINICAL_FIELDS
    return ()


class PatientOut(serializers.ModelSerializer):
    id = public_id("uuid")
    follow_up_end_reason = serializers.ChoiceField(
        choices=codes.FollowUpEndReason.choices,
        allow_blank=True,
        read_only=True,
        help_text="Why follow-up ended; empty while the patient is in follow-up.",
    )
    # For clinic.api_rows: to_representation below drops what PatientViewSet.hidden_fields() names.
    representation_only_hides_fields = True

    class Meta:
        model = Patient
        fields = (
            "id",
            *services.PATIENT_FIELDS,
            "archived",
            "follow_up_ended_on",
            "follow_up_end_reason",
            "created_at",
            "updated_at",
        )
        # Ended and resumed through patients/{id}/end-follow-up/ and resume-follow-up/ only.
        read_only_fields = ("archived", "follow_up_ended_on", "follow_up_end_reason")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in hidden_patient_fields(self.context.get("request")):
            data.pop(name, None)
        return data


class PatientIn(StrictInput, serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = services.PATIENT_FIELDS
        extra_kwargs = {"mrn": {"validators": []}}

    def validate(self, attrs):
        request = self.context["request"]
        if not may(request.user, Kind.CLINICAL, write=True):
            refused = sorted(set(attrs) & set(PATIENT_CLINICAL_FIELDS))
            if refused:
                raise serializers.ValidationError(
                    {name: ["Your role may not change this."] for name in refused}
                )
        return attrs


class PatientFilter(ResourceFilter):
    mrn = filters.CharFilter()
    family_name = filters.CharFilter(lookup_expr="iexact")
    archived = StrictBooleanFilter()

    class Meta:
        model = Patient
        fields = ["mrn", "family_name", "archived"]


@extend_schema_view(
    destroy=extend_schema(description="Archive the patient: nothing clinical is ever deleted."),
)
class PatientViewSet(ResourceViewSet):
    """Patients and their contact data. DELETE archives."""

    kind = Kind.CONTACT
    resource = "patient"
    queryset = Patient.objects.all()
    serializer_class = PatientOut
    input_serializer_class = PatientIn
    filterset_class = PatientFilter
    patient_lookup = "uuid"

    def hidden_fields(self):
        return hidden_patient_fields(self.request)

    def create_object(self, data):
        return services.patient_create(**data)

    def update_object(self, instance, data):
        return services.patient_update(patient=instance, **data)

    def get_kind(self):
        # Archiving takes a patient out of follow-up: a clinician's decision (as in the staff
        # panel), not the front desk's, though the front desk writes contact data (issue 20).
        return Kind.CLINICAL if self.action == "destroy" else super().get_kind()

    def destroy(self, request, *args, **kwargs):
        patient = services.patient_archive(patient=self.get_object())
        self._audit([patient])
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- diagnoses ----------------------------------------------------------------------------------


class DiagnosisOut(serializers.ModelSerializer):
    id = public_id("uuid")
    patient = public_id("patient.uuid")
    muscles = CodeList(codes.Muscle.choices, "muscle_rows", "muscle", read_only=True)

    class Meta:
        model = Diagnosis
        fields = (
            "id",
            "patient",
            "kind",
            "secondary_cause",
            "side",
            "presentation",
            "onset_date",
            "muscles",
            "status",
            "diagnosed_on",
            "notes",
            "created_at",
            "updated_at",
        )


class DiagnosisIn(StrictInput, serializers.ModelSerializer):
    patient = RecordRef(Patient.objects.all())
    muscles = serializers.ListField(
        child=serializers.ChoiceField(choices=codes.Muscle.choices), required=False
    )

    class Meta:
        model = Diagnosis
        fields = ("patient", *services.DIAGNOSIS_FIELDS, "muscles")


class PatientRecordFilter(ResourceFilter):
    patient = filters.UUIDFilter(field_name="patient__uuid")


class DiagnosisFilter(PatientRecordFilter):
    class Meta:
        model = Diagnosis
        fields = ["patient", "kind", "status"]


def _reject_patient_change(instance, data):
    patient = data.pop("patient", None)
    if patient is not None and patient.pk != instance.patient_id:
        raise serializers.ValidationError({"patient": ["A record stays with its patient."]})


class DiagnosisViewSet(ResourceViewSet):
    """Diagnoses: retracted with PATCH ``{"status": "entered_in_error"}``, never deleted.

    A retracted diagnosis is not changed again (a 400 on ``status``); the moves between statuses are
    those of ``patients.record_states``, checked by the services.
    """

    resource = "diagnosis"
    queryset = Diagnosis.objects.select_related("patient").prefetch_related("muscle_rows")
    serializer_class = DiagnosisOut
    input_serializer_class = DiagnosisIn
    filterset_class = DiagnosisFilter

    def create_object(self, data):
        return services.diagnosis_record(**data)

    def update_object(self, instance, data):
        _reject_patient_change(instance, data)
        if data.get("status") == codes.DiagnosisStatus.ENTERED_IN_ERROR and len(data) == 1:
            return services.diagnosis_retract(diagnosis=instance)
        return services.diagnosis_update(diagnosis=instance, **data)


# --- imaging ------------------------------------------------------------------------------------


class ImagingStudyOut(serializers.ModelSerializer):
    id = public_id("uuid")
    patient = public_id("patient.uuid")
    diagnosis = serializers.SlugRelatedField(slug_field="uuid", read_only=True, allow_null=True)
    sequences = CodeList(codes.ImagingSequence.choices, "sequence_rows", "sequence", read_only=True)
    offending_vessels = CodeList(codes.Vessel.choices, "vessel_rows", "vessel", read_only=True)
    field_strength_tesla = serializers.DecimalField(
        max_digits=2, decimal_places=1, allow_null=True, read_only=True
    )

    class Meta:
        model = ImagingStudy
        fields = (
            "id",
            "patient",
            "diagnosis",
            "performed_on",
            "modality",
            "sequences",
            "field_strength_tesla",
            "compression_found",
            "offending_vessels",
            "lesion_found",
            "report",
            "status",
            "created_at",
            "updated_at",
        )


class ImagingStudyIn(StrictInput, serializers.ModelSerializer):
    patient = RecordRef(Patient.objects.all())
    diagnosis = RecordRef(Diagnosis.objects.all(), required=False, allow_null=True)
    sequences = serializers.ListField(
        child=serializers.ChoiceField(choices=codes.ImagingSequence.choices), required=False
    )
    offending_vessels = serializers.ListField(
        child=serializers.ChoiceField(choices=codes.Vessel.choices), required=False
    )
    # A number, as it reads back; whether it is 1.5 or 3 T is the service's rule (and message).
    field_strength_tesla = serializers.DecimalField(
        max_digits=2, decimal_places=1, required=False, allow_null=True
    )

    class Meta:
        model = ImagingStudy
        fields = ("patient", *services.IMAGING_FIELDS, "sequences", "offending_vessels")


class ImagingStudyFilter(PatientRecordFilter):
    class Meta:
        model = ImagingStudy
        fields = ["patient"]


class ImagingStudyViewSet(ResourceViewSet):
    """Imaging studies: retracted with PATCH ``{"status": "entered_in_error"}`` and then not changed."""

    resource = "imaging_study"
    queryset = ImagingStudy.objects.select_related("patient", "diagnosis").prefetch_related(
        "sequence_rows", "vessel_rows"
    )
    serializer_class = ImagingStudyOut
    input_serializer_class = ImagingStudyIn
    filterset_class = ImagingStudyFilter

    def create_object(self, data):
        return services.imaging_study_record(**data)

    def update_object(self, instance, data):
        _reject_patient_change(instance, data)
        if data.get("status") == codes.ImagingStatus.ENTERED_IN_ERROR and len(data) == 1:
            return services.imaging_study_retract(study=instance)
        return services.imaging_study_update(study=instance, **data)


# --- treatments ---------------------------------------------------------------------------------


class MedicationDetailIO(StrictInput):
    drug = serializers.ChoiceField(choices=codes.Drug.choices)
    daily_dose_mg = serializers.DecimalField(max_digits=7, decimal_places=2)
    stop_reason = serializers.ChoiceField(choices=codes.StopReason.choices, allow_blank=True, required=False)
    dose_changed_on = serializers.DateField(allow_null=True, required=False)


class InjectionIO(StrictInput):
    muscle = serializers.ChoiceField(choices=codes.Muscle.choices)
    units = serializers.DecimalField(max_digits=6, decimal_places=2)


class ToxinDetailIO(StrictInput):
    product = serializers.ChoiceField(choices=codes.ToxinProduct.choices)
    injections = InjectionIO(many=True)
    total_units = serializers.SerializerMethodField()
    wore_off_on = serializers.DateField(allow_null=True, required=False)
    self_rated_improvement_pct = serializers.IntegerField(
        min_value=0, max_value=100, allow_null=True, required=False
    )

    def get_total_units(self, detail) -> float:
        # Units of one session are all of one product, so adding them is meaningful.
        return float(sum(injection.units for injection in detail.injections.all()))


class ComplicationIO(StrictInput):
    kind = serializers.ChoiceField(choices=codes.MvdComplicationKind.choices)
    onset_on = serializers.DateField()
    resolved_on = serializers.DateField(allow_null=True, required=False)


class MvdDetailIO(StrictInput):
    technique = serializers.ChoiceField(choices=codes.MvdTechnique.choices)
    offending_vessels = CodeList(codes.Vessel.choices, "vessel_rows", "vessel", required=False)
    redo = serializers.BooleanField(required=False)
    redo_of = RecordRef(
        Treatment.objects.filter(kind=codes.TreatmentKind.MVD), required=False, allow_null=True
    )
    complications = ComplicationIO(many=True, required=False)

    def to_representation(self, detail):
        data = super().to_representation(detail)
        data["offending_vessels"] = sorted(row.vessel for row in detail.vessel_rows.all())
        return data


DETAILS = {"medication": MedicationDetailIO, "botulinum_toxin": ToxinDetailIO, "mvd": MvdDetailIO}


class TreatmentOut(serializers.ModelSerializer):
    id = public_id("uuid")
    patient = public_id("patient.uuid")
    diagnosis = public_id("diagnosis.uuid")
    medication = serializers.SerializerMethodField()
    botulinum_toxin = serializers.SerializerMethodField()
    mvd = serializers.SerializerMethodField()

    class Meta:
        model = Treatment
        fields = (
            "id",
            "patient",
            "diagnosis",
            "kind",
            "status",
            "started_on",
            "ended_on",
            "notes",
            "medication",
            "botulinum_toxin",
            "mvd",
            "created_at",
            "updated_at",
        )

    def _detail(self, treatment, name):
        if services.DETAIL_FOR_KIND.get(treatment.kind) != name:
            return None
        detail = getattr(treatment, name, None)
        return DETAILS[name](detail).data if detail is not None else None

    @extend_schema_field(MedicationDetailIO(allow_null=True))
    def get_medication(self, treatment):
        return self._detail(treatment, "medication")

    @extend_schema_field(ToxinDetailIO(allow_null=True))
    def get_botulinum_toxin(self, treatment):
        return self._detail(treatment, "botulinum_toxin")

    @extend_schema_field(MvdDetailIO(allow_null=True))
    def get_mvd(self, treatment):
        return self._detail(treatment, "mvd")


class TreatmentIn(StrictInput, serializers.ModelSerializer):
    patient = RecordRef(Patient.objects.all())
    diagnosis = RecordRef(Diagnosis.objects.all())
    medication = MedicationDetailIO(required=False, allow_null=True)
    botulinum_toxin = ToxinDetailIO(required=False, allow_null=True)
    mvd = MvdDetailIO(required=False, allow_null=True)

    class Meta:
        model = Treatment
        fields = ("patient", "diagnosis", "kind", *TREATMENT_WRITABLE, "medication", "botulinum_toxin", "mvd")


class TreatmentFilter(PatientRecordFilter):
    class Meta:
        model = Treatment
        fields = ["patient", "kind", "status"]


class TreatmentViewSet(ResourceViewSet):
    """Treatments with the one detail object that matches their kind.

    Retracted with PATCH ``{"status": "entered_in_error"}`` and then not changed; the other moves
    are those of ``patients.record_states``, checked by the services.
    """

    resource = "treatment"
    queryset = Treatment.objects.select_related(
        "patient", "diagnosis", "medication", "botulinum_toxin", "mvd__redo_of"
    ).prefetch_related(
        Prefetch("botulinum_toxin__injections", queryset=ToxinInjection.objects.order_by("muscle")),
        "mvd__vessel_rows",
        "mvd__complications",
    )
    serializer_class = TreatmentOut
    input_serializer_class = TreatmentIn
    filterset_class = TreatmentFilter

    def create_object(self, data):
        return services.treatment_record(**data)

    def update_object(self, instance, data):
        _reject_patient_change(instance, data)
        if data.get("status") == codes.TreatmentStatus.ENTERED_IN_ERROR and len(data) == 1:
            return services.treatment_retract(treatment=instance)
        return services.treatment_update(treatment=instance, **data)
