"""The clinical record of DOMAIN.md sections 2-4.

The database enforces what it can (codes, ranges, date order, the secondary-cause rule, dose
ceilings, uniqueness) so that no path around the services can store an impossible record; the
services enforce the same rules first and turn a violation into a field message. Lists of codes
(muscles, sequences, vessels) are rows of small child tables, not free-form JSON.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from clinic.models import REPORT_MAX_LENGTH, ClinicalRecord, bounded_text, in_range, not_before, one_of
from patients import codes


class Patient(ClinicalRecord):
    mrn = models.CharField("MRN", max_length=32, unique=True)
    given_name = models.CharField(max_length=150)
    family_name = models.CharField(max_length=150, db_index=True)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=16, choices=codes.Sex.choices)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    preferred_language = models.CharField(max_length=16, default="en")
    # An IANA zone name; blank means the clinic's (CLINIC_TIME_ZONE).
    timezone = models.CharField(max_length=64, blank=True)
    email_reminders = models.BooleanField(
        "e-mail reminder consent", default=False, help_text="The patient agreed to e-mail reminders."
    )
    email_reminders_consented_at = models.DateTimeField(null=True, blank=True)
    at_risk_hla_b1502 = models.BooleanField(
        "at-risk ancestry for HLA-B*1502",
        default=False,
        help_text="Ancestry for which carbamazepine's boxed warning asks for HLA-B*1502 screening.",
    )
    hla_b1502_result = models.CharField(
        "HLA-B*1502 result",
        max_length=16,
        choices=codes.HlaB1502Result.choices,
        default=codes.HlaB1502Result.NOT_TESTED,
    )
    archived = models.BooleanField(default=False, db_index=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Follow-up ended (DOMAIN.md section 9): the record stays open, but no visit is planned, no
    # reminder sent and no worklist shows the patient until a clinician resumes it.
    follow_up_ended_on = models.DateField(null=True, blank=True)
    follow_up_end_reason = models.CharField(
        max_length=24, choices=codes.FollowUpEndReason.choices, blank=True
    )
    # The day a clinician last resumed follow-up: visits due before it no longer make the patient
    # overdue or lost (they belong to the follow-up that ended), nor does the time it was ended.
    follow_up_resumed_on = models.DateField(null=True, blank=True)
    # A call reached a wrong number (DOMAIN.md section 9): the contact data await an update, which
    # clears it (``patient_update`` with a new phone or e-mail). Raises ``contact_details_invalid``.
    contact_details_invalid_since = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        # The staff search by birth date (patients/search.py). Its trigram indexes on the names,
        # the MRN, the e-mail and the phone's digits are PostgreSQL's alone, so they live in
        # migration 0008 rather than here, where SQLite would be asked to build them too.
        indexes = [models.Index(fields=["date_of_birth"], name="patients_patient_born")]
        constraints = [
            one_of("sex", codes.Sex),
            one_of("hla_b1502_result", codes.HlaB1502Result),
            one_of("follow_up_end_reason", codes.FollowUpEndReason, blank=True),
            models.CheckConstraint(
                condition=Q(email_reminders=False)
                | (~Q(email="") & Q(email_reminders_consented_at__isnull=False)),
                name="patients_patient_consent_needs_email_and_time",
                violation_error_message="E-mail reminders need an e-mail address.",
            ),
            models.CheckConstraint(
                condition=Q(follow_up_ended_on__isnull=True, follow_up_end_reason="")
                | (Q(follow_up_ended_on__isnull=False) & ~Q(follow_up_end_reason="")),
                name="patients_patient_follow_up_ended_with_reason",
            ),
            models.CheckConstraint(
                condition=Q(archived=False, archived_at__isnull=True)
                | Q(archived=True, archived_at__isnull=False),
                name="patients_patient_archived_has_time",
            ),
        ]

    def __str__(self):
        # The MRN, not the name: this string ends up in admin messages and logs.
        return f"Patient {self.mrn}"


class Diagnosis(ClinicalRecord):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="diagnoses")
    kind = models.CharField(max_length=16, choices=codes.HfsKind.choices)
    secondary_cause = models.CharField(max_length=40, choices=codes.SecondaryCause.choices, blank=True)
    side = models.CharField(max_length=16, choices=codes.Side.choices)
    presentation = models.CharField(
        max_length=16, choices=codes.Presentation.choices, default=codes.Presentation.TYPICAL
    )
    onset_date = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=codes.DiagnosisStatus.choices, default=codes.DiagnosisStatus.CONFIRMED
    )
    diagnosed_on = models.DateField()
    notes = bounded_text()

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "diagnoses"
        ordering = ["-diagnosed_on", "-id"]
        constraints = [
            one_of("kind", codes.HfsKind),
            one_of("secondary_cause", codes.SecondaryCause, blank=True),
            one_of("side", codes.Side),
            one_of("presentation", codes.Presentation),
            one_of("status", codes.DiagnosisStatus),
            models.CheckConstraint(
                condition=Q(kind=codes.HfsKind.PRIMARY, secondary_cause="")
                | (Q(kind=codes.HfsKind.SECONDARY) & ~Q(secondary_cause="")),
                name="patients_diagnosis_secondary_cause_iff_secondary",
            ),
            not_before("diagnosed_on", "onset_date"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} HFS, {self.get_side_display().lower()} ({self.diagnosed_on})"


class DiagnosisMuscle(models.Model):
    """One muscle or region the spasm involves."""

    diagnosis = models.ForeignKey(Diagnosis, on_delete=models.PROTECT, related_name="muscle_rows")
    muscle = models.CharField(max_length=32, choices=codes.Muscle.choices)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            one_of("muscle", codes.Muscle),
            models.UniqueConstraint(fields=["diagnosis", "muscle"], name="patients_diagnosis_muscle_once"),
        ]

    def __str__(self):
        return self.get_muscle_display()


class ImagingStudy(ClinicalRecord):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="imaging_studies")
    diagnosis = models.ForeignKey(
        Diagnosis, on_delete=models.PROTECT, related_name="imaging_studies", null=True, blank=True
    )
    performed_on = models.DateField()
    modality = models.CharField(max_length=16, choices=codes.ImagingModality.choices)
    field_strength_tesla = models.DecimalField(
        "field strength (T)", max_digits=2, decimal_places=1, null=True, blank=True
    )
    compression_found = models.CharField(
        "neurovascular compression found",
        max_length=16,
        choices=codes.CompressionFound.choices,
        default=codes.CompressionFound.INDETERMINATE,
    )
    lesion_found = models.BooleanField(null=True, blank=True)
    report = bounded_text(REPORT_MAX_LENGTH)
    status = models.CharField(
        max_length=20, choices=codes.ImagingStatus.choices, default=codes.ImagingStatus.AVAILABLE
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "imaging studies"
        ordering = ["-performed_on", "-id"]
        constraints = [
            one_of("modality", codes.ImagingModality),
            one_of("compression_found", codes.CompressionFound),
            one_of("status", codes.ImagingStatus),
            models.CheckConstraint(
                condition=Q(field_strength_tesla__isnull=True)
                | Q(field_strength_tesla__in=codes.FIELD_STRENGTHS_TESLA),
                name="patients_imagingstudy_field_strength_known",
            ),
        ]

    def __str__(self):
        return f"{self.get_modality_display()} ({self.performed_on})"


class ImagingSequenceRow(models.Model):
    study = models.ForeignKey(ImagingStudy, on_delete=models.PROTECT, related_name="sequence_rows")
    sequence = models.CharField(max_length=16, choices=codes.ImagingSequence.choices)

    history = HistoricalRecords()

    class Meta:
        verbose_name = "imaging sequence"
        constraints = [
            one_of("sequence", codes.ImagingSequence),
            models.UniqueConstraint(fields=["study", "sequence"], name="patients_imaging_sequence_once"),
        ]

    def __str__(self):
        return self.get_sequence_display()


class ImagingVesselRow(models.Model):
    study = models.ForeignKey(ImagingStudy, on_delete=models.PROTECT, related_name="vessel_rows")
    vessel = models.CharField(max_length=16, choices=codes.Vessel.choices)

    history = HistoricalRecords()

    class Meta:
        verbose_name = "offending vessel on imaging"
        constraints = [
            one_of("vessel", codes.Vessel),
            models.UniqueConstraint(fields=["study", "vessel"], name="patients_imaging_vessel_once"),
        ]

    def __str__(self):
        return self.get_vessel_display()


class Treatment(ClinicalRecord):
    """One treatment: a medication course, one botulinum toxin session, an MVD, or other.

    Exactly one detail row (``medication``, ``botulinum_toxin`` or ``mvd``) matches ``kind``;
    ``other`` has none. For a toxin session or an MVD ``started_on`` is the injection or surgery
    date, the anchor of its follow-up.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="treatments")
    diagnosis = models.ForeignKey(Diagnosis, on_delete=models.PROTECT, related_name="treatments")
    kind = models.CharField(max_length=20, choices=codes.TreatmentKind.choices)
    status = models.CharField(
        max_length=20, choices=codes.TreatmentStatus.choices, default=codes.TreatmentStatus.ACTIVE
    )
    started_on = models.DateField()
    ended_on = models.DateField(null=True, blank=True)
    notes = bounded_text()

    history = HistoricalRecords()

    class Meta:
        ordering = ["-started_on", "-id"]
        indexes = [
            models.Index(fields=["patient", "kind", "started_on"]),
            # The treatments of a kind begun in a span, whoever's (the call list's "after MVD", the
            # nightly run's dated turns), without reading every treatment.
            models.Index(fields=["kind", "started_on"], name="patients_treatment_kind_day"),
        ]
        constraints = [
            one_of("kind", codes.TreatmentKind),
            one_of("status", codes.TreatmentStatus),
            not_before("ended_on", "started_on"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} from {self.started_on}"


def _dose_within_ceilings():
    allowed = Q()
    for drug, ceiling in codes.DAILY_DOSE_CEILING_MG.items():
        allowed |= Q(drug=drug, daily_dose_mg__lte=ceiling)
    return allowed


class MedicationDetail(models.Model):
    treatment = models.OneToOneField(Treatment, on_delete=models.PROTECT, related_name="medication")
    drug = models.CharField(max_length=20, choices=codes.Drug.choices)
    daily_dose_mg = models.DecimalField("daily dose (mg)", max_digits=7, decimal_places=2)
    stop_reason = models.CharField(max_length=20, choices=codes.StopReason.choices, blank=True)
    # The medication protocol re-anchors its titration reviews at the last dose change.
    dose_changed_on = models.DateField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            one_of("drug", codes.Drug),
            one_of("stop_reason", codes.StopReason, blank=True),
            models.CheckConstraint(
                condition=Q(daily_dose_mg__gt=0), name="patients_medication_dose_positive"
            ),
            models.CheckConstraint(
                condition=Q(drug=codes.Drug.OTHER) | _dose_within_ceilings(),
                name="patients_medication_dose_within_ceiling",
            ),
        ]

    def __str__(self):
        return f"{self.get_drug_display()} {self.daily_dose_mg} mg/day"


class BotulinumToxinDetail(models.Model):
    treatment = models.OneToOneField(Treatment, on_delete=models.PROTECT, related_name="botulinum_toxin")
    product = models.CharField(max_length=24, choices=codes.ToxinProduct.choices)
    wore_off_on = models.DateField("benefit wore off on", null=True, blank=True)
    self_rated_improvement_pct = models.PositiveSmallIntegerField(
        "self-rated improvement (%)", null=True, blank=True
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = "botulinum toxin session"
        constraints = [
            one_of("product", codes.ToxinProduct),
            in_range("self_rated_improvement_pct", 0, 100),
        ]

    def __str__(self):
        return self.get_product_display()


class ToxinInjection(models.Model):
    """The units of one product injected into one muscle at one session."""

    session = models.ForeignKey(BotulinumToxinDetail, on_delete=models.PROTECT, related_name="injections")
    muscle = models.CharField(max_length=32, choices=codes.Muscle.choices)
    units = models.DecimalField(max_digits=6, decimal_places=2)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            one_of("muscle", codes.Muscle),
            models.CheckConstraint(
                condition=Q(units__gt=0, units__lte=codes.TOXIN_UNITS_LIMIT),
                name="patients_toxininjection_units_range",
            ),
            models.UniqueConstraint(fields=["session", "muscle"], name="patients_injection_muscle_once"),
        ]

    def __str__(self):
        return f"{self.get_muscle_display()}: {self.units} U"


class MvdDetail(models.Model):
    treatment = models.OneToOneField(Treatment, on_delete=models.PROTECT, related_name="mvd")
    technique = models.CharField(max_length=16, choices=codes.MvdTechnique.choices)
    redo = models.BooleanField(default=False, help_text="A repeat decompression on the same side.")
    # The earlier MVD when it is in this record; a redo after surgery elsewhere has none.
    redo_of = models.ForeignKey(
        Treatment, on_delete=models.PROTECT, related_name="redone_by", null=True, blank=True
    )
    # The staff user who operated (a clinician): the outcome audit compares surgeons (DOMAIN.md 11).
    # Unknown for an operation recorded from another hospital's letter.
    surgeon = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = "MVD detail"
        constraints = [
            one_of("technique", codes.MvdTechnique),
            models.CheckConstraint(
                condition=Q(redo_of__isnull=True) | Q(redo=True),
                name="patients_mvd_redo_link_only_for_redo",
            ),
        ]

    def __str__(self):
        return self.get_technique_display()


class MvdVesselRow(models.Model):
    mvd = models.ForeignKey(MvdDetail, on_delete=models.PROTECT, related_name="vessel_rows")
    vessel = models.CharField(max_length=16, choices=codes.Vessel.choices)

    history = HistoricalRecords()

    class Meta:
        verbose_name = "offending vessel at surgery"
        constraints = [
            one_of("vessel", codes.Vessel),
            models.UniqueConstraint(fields=["mvd", "vessel"], name="patients_mvd_vessel_once"),
        ]

    def __str__(self):
        return self.get_vessel_display()


class MvdComplication(models.Model):
    mvd = models.ForeignKey(MvdDetail, on_delete=models.PROTECT, related_name="complications")
    kind = models.CharField(max_length=32, choices=codes.MvdComplicationKind.choices)
    onset_on = models.DateField()
    resolved_on = models.DateField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["onset_on", "id"]
        constraints = [
            one_of("kind", codes.MvdComplicationKind),
            not_before("resolved_on", "onset_on"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} from {self.onset_on}"
