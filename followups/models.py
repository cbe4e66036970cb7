"""Follow-up: protocols and their steps, visits, what is measured at a visit, and what is derived.

Protocols are data the clinic edits; visits are planned from them by ``followups.planning``.
Outcomes and flags are derived rows, recomputed in the transaction of the write that changes
their inputs; nothing else writes them.
"""

import uuid
from datetime import date, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from clinic.day_numbers import DayNumber
from clinic.models import ClinicalRecord, bounded_text, in_range, not_before, one_of
from followups import codes
from followups.runs import codes as run_codes
from patients import codes as record_codes
from patients.models import Diagnosis, Patient, Treatment


class Protocol(models.Model):
    """A follow-up schedule for one kind of treatment, or for a diagnosed, untreated patient."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    # Blank for the protocol of diagnosed patients with no treatment yet.
    treatment_kind = models.CharField(
        max_length=20, choices=record_codes.TreatmentKind.choices, blank=True, unique=True
    )
    description = bounded_text()

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [one_of("treatment_kind", record_codes.TreatmentKind, blank=True)]

    def __str__(self):
        return self.name


class ProtocolStep(models.Model):
    """One visit (or one series of visits) of a protocol.

    The visit falls ``offset_days`` after the step's anchor date; a repeating step adds
    ``repeat_every_days`` again and again, up to ``repeat_until_day`` or while its condition
    holds. The booking window is ``window_before_days`` before to ``window_after_days`` after.
    """

    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="steps")
    code = models.SlugField(max_length=40, help_text="Stable name of the step within its protocol.")
    purpose = models.CharField(max_length=200)
    anchor = models.CharField(
        max_length=20, choices=codes.StepAnchor.choices, default=codes.StepAnchor.TREATMENT_START
    )
    offset_days = models.PositiveIntegerField()
    window_before_days = models.PositiveIntegerField(default=7)
    window_after_days = models.PositiveIntegerField(default=7)
    repeat = models.CharField(max_length=20, choices=codes.StepRepeat.choices, default=codes.StepRepeat.ONCE)
    repeat_every_days = models.PositiveIntegerField(null=True, blank=True)
    repeat_until_day = models.PositiveIntegerField(null=True, blank=True)
    # Steps that apply to one drug only (the laboratory checks of carbamazepine, oxcarbazepine).
    only_for_drug = models.CharField(max_length=20, choices=record_codes.Drug.choices, blank=True)
    # The kind of clinic session the visit needs (DOMAIN.md section 12).
    visit_kind = models.CharField(
        max_length=16, choices=codes.VisitKind.choices, default=codes.VisitKind.REVIEW
    )
    order = models.PositiveSmallIntegerField(default=0)

    history = HistoricalRecords()

    class Meta:
        ordering = ["protocol", "order", "offset_days"]
        constraints = [
            one_of("anchor", codes.StepAnchor),
            one_of("repeat", codes.StepRepeat),
            one_of("only_for_drug", record_codes.Drug, blank=True),
            one_of("visit_kind", codes.VisitKind),
            models.UniqueConstraint(fields=["protocol", "code"], name="followups_step_code_once"),
            models.CheckConstraint(
                condition=Q(repeat=codes.StepRepeat.ONCE, repeat_every_days__isnull=True)
                | (~Q(repeat=codes.StepRepeat.ONCE) & Q(repeat_every_days__gt=0)),
                name="followups_step_repeat_has_interval",
            ),
            models.CheckConstraint(
                condition=~Q(repeat=codes.StepRepeat.UNTIL_DAY)
                | Q(repeat_until_day__gte=models.F("offset_days")),
                name="followups_step_until_day_after_offset",
            ),
        ]

    def __str__(self):
        return f"{self.protocol.code}: {self.purpose}"


class SessionTemplate(models.Model):
    """A recurring clinic session (DOMAIN.md section 12): a weekday's hours, cut into slots of
    ``slot_minutes`` that each take ``capacity`` visits of the kinds the session serves. Dated
    sessions are generated from it 26 weeks ahead (``followups.booking.sessions_generate``)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="id")
    label = models.CharField(max_length=120, help_text="Room or team, as staff and patients see it.")
    weekday = models.PositiveSmallIntegerField(help_text="0 = Monday ... 6 = Sunday.")
    starts_at = models.TimeField(help_text="Clinic time.")
    ends_at = models.TimeField(help_text="Clinic time.")
    slot_minutes = models.PositiveSmallIntegerField(default=15)
    capacity = models.PositiveSmallIntegerField(default=1, help_text="Visits one slot takes.")
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["weekday", "starts_at", "label"]
        constraints = [
            in_range("weekday", 0, 6),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="followups_template_ends_after_start"
            ),
            models.CheckConstraint(condition=Q(slot_minutes__gte=5), name="followups_template_slot_minutes"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="followups_template_capacity"),
            not_before("valid_to", "valid_from"),
        ]

    def __str__(self):
        return self.label


class SessionTemplateKind(models.Model):
    """A kind of visit a template's sessions serve."""

    template = models.ForeignKey(SessionTemplate, on_delete=models.CASCADE, related_name="kind_rows")
    visit_kind = models.CharField(max_length=16, choices=codes.VisitKind.choices)

    class Meta:
        constraints = [
            one_of("visit_kind", codes.VisitKind),
            models.UniqueConstraint(fields=["template", "visit_kind"], name="followups_template_kind_once"),
        ]

    def __str__(self):
        return self.get_visit_kind_display()


class ClinicSession(models.Model):
    """One dated session of a template: its slots are where visits are booked. Cancelled for a
    day (a holiday) rather than deleted, with the reason."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="id")
    template = models.ForeignKey(SessionTemplate, on_delete=models.PROTECT, related_name="sessions")
    on = models.DateField()
    starts_at = models.TimeField()
    ends_at = models.TimeField()
    label = models.CharField(max_length=120)
    cancelled = models.BooleanField(default=False)
    cancel_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["on", "starts_at", "label"]
        indexes = [models.Index(fields=["on"])]
        constraints = [
            models.UniqueConstraint(fields=["template", "on"], name="followups_session_once_a_day"),
            models.CheckConstraint(
                condition=Q(cancelled=False) | ~Q(cancel_reason=""),
                name="followups_session_cancel_has_reason",
            ),
        ]

    def __str__(self):
        return f"{self.label} ({self.on})"


class Slot(models.Model):
    """A time of a session that takes up to ``capacity`` booked visits.

    ``booked`` counts them; the booking service raises it with a conditional update and the
    database refuses it past the capacity, so two bookings racing for the last place never both
    succeed, on PostgreSQL and SQLite alike."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="id")
    session = models.ForeignKey(ClinicSession, on_delete=models.PROTECT, related_name="slots")
    starts_at = models.DateTimeField()
    capacity = models.PositiveSmallIntegerField()
    booked = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["starts_at"])]
        constraints = [
            models.UniqueConstraint(fields=["session", "starts_at"], name="followups_slot_once"),
            models.CheckConstraint(
                condition=Q(booked__lte=models.F("capacity")), name="followups_slot_within_capacity"
            ),
        ]

    def __str__(self):
        return f"{self.session.label} {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def free(self) -> int:
        return self.capacity - self.booked


class Visit(ClinicalRecord):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="visits")
    treatment = models.ForeignKey(
        Treatment, on_delete=models.PROTECT, related_name="visits", null=True, blank=True
    )
    diagnosis = models.ForeignKey(
        Diagnosis, on_delete=models.PROTECT, related_name="visits", null=True, blank=True
    )
    purpose = models.CharField(max_length=200)
    visit_kind = models.CharField(
        max_length=16, choices=codes.VisitKind.choices, default=codes.VisitKind.REVIEW
    )
    # The slot a booked visit holds (its time is the slot's); none for a free time staff agreed.
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="visits", null=True, blank=True)
    scheduled_for = models.DateTimeField(db_index=True)
    window_start = models.DateField()
    window_end = models.DateField()
    status = models.CharField(
        max_length=16, choices=codes.VisitStatus.choices, default=codes.VisitStatus.PLANNED
    )
    source = models.CharField(max_length=16, choices=codes.VisitSource.choices)
    cancel_reason = models.CharField(max_length=200, blank=True)
    # What planned it: the step, the anchor date and the day of the protocol. Together with the
    # treatment (or diagnosis) they name the visit, which is what makes planning idempotent.
    protocol_step = models.ForeignKey(
        ProtocolStep, on_delete=models.PROTECT, related_name="visits", null=True, blank=True
    )
    anchor_on = models.DateField(null=True, blank=True)
    protocol_day = models.PositiveIntegerField(null=True, blank=True)
    # A missed visit rebooked: the new visit points back at the one the patient missed.
    rebooked_from = models.OneToOneField(
        "self", on_delete=models.PROTECT, related_name="rebooked_as", null=True, blank=True
    )
    # Grows by one at each change of time, for the SEQUENCE of the calendar event sent out.
    sequence = models.PositiveIntegerField(default=0)
    # When the clinic cancelled the session this visit was booked in (DOMAIN.md section 12): the
    # visit went back to planned and waits on the call list (reason ``clinic_cancelled``) until
    # it is booked again, which clears it.
    clinic_cancelled_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["scheduled_for", "id"]
        indexes = [
            models.Index(fields=["status", "scheduled_for"]),
            models.Index(fields=["status", "window_end"]),
            models.Index(fields=["patient", "scheduled_for"]),
            # The call list's planned visits not booked with half their window gone (the sum of
            # the window's day numbers against twice today's), and those a cancelled session sent
            # back: found an index away, not by reading every planned visit (issue 18).
            models.Index(
                DayNumber("window_start") + DayNumber("window_end"),
                F("window_end"),
                F("patient"),
                # The columns the lists read of these visits, so the index alone answers them.
                condition=Q(status="planned"),
                name="followups_visit_half_window",
            ),
            models.Index(
                fields=["window_end"],
                condition=Q(status="planned", clinic_cancelled_at__isnull=False),
                name="followups_visit_sent_back",
            ),
        ]
        constraints = [
            one_of("status", codes.VisitStatus),
            one_of("source", codes.VisitSource),
            one_of("visit_kind", codes.VisitKind),
            not_before("window_end", "window_start"),
            models.CheckConstraint(
                condition=Q(source=codes.VisitSource.MANUAL)
                | Q(protocol_step__isnull=False, anchor_on__isnull=False, protocol_day__isnull=False),
                name="followups_visit_protocol_visit_names_its_step",
            ),
            models.CheckConstraint(
                condition=~Q(status=codes.VisitStatus.CANCELLED) | ~Q(cancel_reason=""),
                name="followups_visit_cancel_has_reason",
            ),
            # One live visit per step, anchor and day of a treatment (or untreated diagnosis);
            # a cancelled one does not count, so a step that applies again gets a new visit.
            models.UniqueConstraint(
                fields=["treatment", "protocol_step", "anchor_on", "protocol_day"],
                condition=Q(source="protocol", treatment__isnull=False) & ~Q(status="cancelled"),
                name="followups_visit_planned_once_per_treatment",
            ),
            models.UniqueConstraint(
                fields=["diagnosis", "protocol_step", "anchor_on", "protocol_day"],
                condition=Q(source="protocol", treatment__isnull=True) & ~Q(status="cancelled"),
                name="followups_visit_planned_once_per_diagnosis",
            ),
        ]

    def __str__(self):
        # The clinic's day: an early-morning visit is still "today" in UTC's yesterday.
        return f"{self.purpose} ({timezone.localdate(self.scheduled_for):%Y-%m-%d}, {self.status})"

    @property
    def due_on(self) -> date:
        """The day the visit aims at (API.md ``due_on``): a protocol visit's day from its anchor,
        else the day staff set. A planned visit's ``scheduled_for`` is no appointment; this is."""
        if self.anchor_on is not None and self.protocol_day is not None:
            return self.anchor_on + timedelta(days=self.protocol_day)
        return timezone.localdate(self.scheduled_for)


HFS7_ITEMS = tuple(f"hfs7_item_{n}" for n in range(1, 8))


class Assessment(ClinicalRecord):
    """What was measured at a visit (DOMAIN.md section 3). Every measure is optional."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, related_name="assessments", null=True, blank=True
    )
    assessed_on = models.DateField()
    status = models.CharField(
        max_length=20, choices=codes.AssessmentStatus.choices, default=codes.AssessmentStatus.FINAL
    )
    spasms_per_day = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    episode_duration_seconds = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    cohen_albert_grade = models.PositiveSmallIntegerField("Cohen-Albert grade", null=True, blank=True)
    contraction_pattern = models.CharField(max_length=8, choices=codes.ContractionPattern.choices, blank=True)
    smc_grade = models.PositiveSmallIntegerField("SMC grade", null=True, blank=True)
    jankovic_severity = models.PositiveSmallIntegerField(null=True, blank=True)
    jankovic_frequency = models.PositiveSmallIntegerField(null=True, blank=True)
    jankovic_anchors = models.CharField(
        "Jankovic anchor set", max_length=12, choices=codes.JankovicAnchors.choices, blank=True
    )
    jankovic_total = models.GeneratedField(
        expression=models.F("jankovic_severity") + models.F("jankovic_frequency"),
        output_field=models.PositiveSmallIntegerField(null=True),
        db_persist=True,
    )
    house_brackmann_grade = models.PositiveSmallIntegerField("House-Brackmann grade", null=True, blank=True)
    hfs7_item_1 = models.PositiveSmallIntegerField(null=True, blank=True)
    hfs7_item_2 = models.PositiveSmallIntegerField(null=True, blank=True)
    hfs7_item_3 = models.PositiveSmallIntegerField(null=True, blank=True)
    hfs7_item_4 = models.PositiveSmallIntegerField(null=True, blank=True)
    hfs7_item_5 = models.PositiveSmallIntegerField(null=True, blank=True)
    hfs7_item_6 = models.PositiveSmallIntegerField(null=True, blank=True)
    hfs7_item_7 = models.PositiveSmallIntegerField(null=True, blank=True)
    # Derived by the database, never entered; empty unless all seven items are answered.
    hfs7_total = models.GeneratedField(
        expression=models.F("hfs7_item_1")
        + models.F("hfs7_item_2")
        + models.F("hfs7_item_3")
        + models.F("hfs7_item_4")
        + models.F("hfs7_item_5")
        + models.F("hfs7_item_6")
        + models.F("hfs7_item_7"),
        output_field=models.PositiveSmallIntegerField(null=True),
        db_persist=True,
    )
    notes = bounded_text()
    # Who recorded it (DOMAIN.md section 3): set by the service from the recorder's role, never
    # entered; a patient's own diary report says ``patient``.
    source = models.CharField(
        max_length=12, choices=codes.AssessmentSource.choices, default=codes.AssessmentSource.CLINICIAN
    )

    history = HistoricalRecords(excluded_fields=["jankovic_total", "hfs7_total"])

    HFS7_ITEMS = HFS7_ITEMS

    class Meta:
        ordering = ["-assessed_on", "-id"]
        indexes = [models.Index(fields=["patient", "assessed_on"])]
        constraints = [
            one_of("status", codes.AssessmentStatus),
            one_of("source", codes.AssessmentSource),
            one_of("contraction_pattern", codes.ContractionPattern, blank=True),
            one_of("jankovic_anchors", codes.JankovicAnchors, blank=True),
            models.CheckConstraint(
                condition=Q(spasms_per_day__isnull=True) | Q(spasms_per_day__gte=0),
                name="followups_assessment_spasms_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(episode_duration_seconds__isnull=True) | Q(episode_duration_seconds__gte=0),
                name="followups_assessment_duration_not_negative",
            ),
            in_range("cohen_albert_grade", 0, 4),
            in_range("smc_grade", 1, 4),
            in_range("jankovic_severity", 0, 4),
            in_range("jankovic_frequency", 0, 4),
            in_range("house_brackmann_grade", 1, 6),
            *(in_range(item, 0, 4) for item in HFS7_ITEMS),
            models.CheckConstraint(
                condition=Q(**{f"{item}__isnull": True for item in HFS7_ITEMS})
                | Q(**{f"{item}__isnull": False for item in HFS7_ITEMS}),
                name="followups_assessment_hfs7_all_or_none",
            ),
        ]

    def __str__(self):
        return f"Assessment of {self.assessed_on}"


class AssessmentTrigger(models.Model):
    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="trigger_rows")
    trigger = models.CharField(max_length=16, choices=codes.Trigger.choices)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            one_of("trigger", codes.Trigger),
            models.UniqueConstraint(fields=["assessment", "trigger"], name="followups_trigger_once"),
        ]

    def __str__(self):
        return self.get_trigger_display()


class AssessmentAdverseEffect(models.Model):
    assessment = models.ForeignKey(Assessment, on_delete=models.PROTECT, related_name="adverse_effect_rows")
    adverse_effect = models.CharField(max_length=20, choices=codes.AdverseEffect.choices)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            one_of("adverse_effect", codes.AdverseEffect),
            models.UniqueConstraint(
                fields=["assessment", "adverse_effect"], name="followups_adverse_effect_once"
            ),
        ]

    def __str__(self):
        return self.get_adverse_effect_display()


class LabResult(ClinicalRecord):
    """A monitoring result that the medication protocol asks for (blood count, sodium)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lab_results")
    test = models.CharField(max_length=16, choices=codes.LabTest.choices)
    taken_on = models.DateField()
    # Sodium in mmol/L; a blood count is recorded as done, with its interpretation.
    value = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    abnormal = models.BooleanField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=codes.AssessmentStatus.choices, default=codes.AssessmentStatus.FINAL
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-taken_on", "-id"]
        indexes = [models.Index(fields=["patient", "test", "taken_on"])]
        constraints = [
            one_of("test", codes.LabTest),
            one_of("status", codes.AssessmentStatus),
            in_range("value", 0, 1000),
        ]

    def __str__(self):
        return f"{self.get_test_display()} on {self.taken_on}"


class TreatmentOutcome(models.Model):
    """The stored outcome of one treatment episode (DOMAIN.md section 7), with its rule version."""

    treatment = models.OneToOneField(Treatment, on_delete=models.CASCADE, related_name="outcome")
    category = models.CharField(max_length=20, choices=codes.OutcomeCategory.choices)
    baseline = models.ForeignKey(
        Assessment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    current = models.ForeignKey(
        Assessment, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    spasms_per_day_change_pct = models.DecimalField(max_digits=12, decimal_places=1, null=True, blank=True)
    duration_change_pct = models.DecimalField(max_digits=12, decimal_places=1, null=True, blank=True)
    grade_change = models.SmallIntegerField(null=True, blank=True)
    soriano_baron = models.CharField(max_length=12, choices=codes.SorianoBaron.choices, blank=True)
    days_to_spasm_free = models.PositiveIntegerField(null=True, blank=True)
    qol_meaningful_improvement = models.BooleanField(null=True, blank=True)
    # A toxin session's benefit: the days from the injection until its effect wore off.
    benefit_days = models.PositiveIntegerField(null=True, blank=True)
    rule_version = models.PositiveSmallIntegerField()
    computed_at = models.DateTimeField(auto_now=True)

    # A change of rules (rule_version) or of the logs shows here as what the outcome was before.
    history = HistoricalRecords(excluded_fields=["computed_at"])

    class Meta:
        constraints = [
            one_of("category", codes.OutcomeCategory),
            one_of("soriano_baron", codes.SorianoBaron, blank=True),
        ]

    def __str__(self):
        return f"{self.get_category_display()} (rule {self.rule_version})"


class ContactAttempt(models.Model):
    """The clinic reaching out to a patient who fell out of follow-up (DOMAIN.md section 9): who,
    when, how and with what answer. Recorded through ``followups.calls.services``; never deleted."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="id")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="contact_attempts")
    # The visit the call was about (the one due), when there was one.
    visit = models.ForeignKey(
        "Visit", on_delete=models.PROTECT, related_name="contact_attempts", null=True, blank=True
    )
    at = models.DateTimeField()
    channel = models.CharField(max_length=16, choices=codes.ContactChannel.choices)
    outcome = models.CharField(max_length=24, choices=codes.ContactOutcome.choices)
    remind_on = models.DateField(null=True, blank=True, help_text="Call again from this day (call later).")
    # The day the patient says they were seen elsewhere (``already_seen_elsewhere``): the visit due
    # is recorded as completed on that day.
    seen_on = models.DateField(null=True, blank=True, help_text="Seen elsewhere on this day.")
    note = models.CharField(max_length=500, blank=True)
    # Who made the attempt; none for the system's own (the automatic missed-visit e-mail).
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["patient", "-at"])]
        constraints = [
            one_of("channel", codes.ContactChannel),
            one_of("outcome", codes.ContactOutcome),
            models.CheckConstraint(
                condition=Q(outcome="call_later", remind_on__isnull=False)
                | (~Q(outcome="call_later") & Q(remind_on__isnull=True)),
                name="followups_contact_remind_on_only_to_call_later",
            ),
            models.CheckConstraint(
                condition=Q(outcome="already_seen_elsewhere", seen_on__isnull=False)
                | (~Q(outcome="already_seen_elsewhere") & Q(seen_on__isnull=True)),
                name="followups_contact_seen_on_only_to_seen_elsewhere",
            ),
        ]

    def __str__(self):
        return f"{self.get_channel_display()}: {self.get_outcome_display()}"


class PatientFlag(models.Model):
    """A flag a clinician should see (DOMAIN.md sections 4 and 8), derived and kept current.

    ``since`` is the date of the fact that raised it (the session, the window's end, the log...).
    A clinician's acknowledgement holds while the fact does: a new ``since`` clears it (a new
    subject is a new flag).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="id")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="flags")
    code = models.CharField(max_length=32, choices=codes.FlagCode.choices)
    # What raised it, so one patient can carry a flag for two treatments at once.
    subject = models.CharField(max_length=64, blank=True)
    # The visit an overdue flag is about (its subject too): the overdue worklist, the call list
    # and the dashboard read who is overdue from the stored flags through it (issue 18).
    visit = models.ForeignKey(
        "Visit", on_delete=models.CASCADE, null=True, blank=True, related_name="flags", editable=False
    )
    detail = models.CharField(max_length=300)
    since = models.DateField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    # A flag is derived and goes when its fact does; a clinician's acknowledgement of it (who, when,
    # the note) is a decision the record keeps: here, in the flag's history.
    history = HistoricalRecords()

    class Meta:
        ordering = ["patient", "code"]
        indexes = [models.Index(fields=["code", "since"])]
        constraints = [
            one_of("code", codes.FlagCode),
            models.UniqueConstraint(fields=["patient", "code", "subject"], name="followups_flag_once"),
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True) | Q(acknowledged_by__isnull=False),
                name="followups_flag_acknowledged_by_someone",
            ),
        ]

    def __str__(self):
        return self.get_code_display()


class Reminder(models.Model):
    """An e-mail to a patient about a visit: a row of the outbox (ARCHITECTURE.md, "Reminders are rows").

    Planned in the transaction of the visit change that calls for it; sent by the sweeper and the
    send task, which hold a row through ``claim_id`` and a lease. Unique per visit, kind and the
    visit time it was planned for, so a reminder is never sent twice for the same appointment.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="id")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="reminders")
    kind = models.CharField(max_length=24, choices=codes.ReminderKind.choices)
    # The appointment time the reminder was planned for; for a booking invitation or last call,
    # which are about a window and not a time, noon UTC of the window's first day,
    # so that booking and giving up a booking never invites twice for the same window.
    visit_time = models.DateTimeField(help_text="The appointment time this reminder was planned for.")
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=codes.ReminderStatus.choices, default=codes.ReminderStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim_id = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Set when a send task took the row and began talking to the mail server: a lease that
    # lapses after this may hide a message the server accepted (a possible duplicate).
    send_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    # A code and an exception name only: SMTP replies can echo the address, which stays out.
    last_error = models.CharField(max_length=200, blank=True)
    status_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            # The sweeper's two questions: pending and due, or sending with a lapsed lease.
            models.Index(
                fields=["next_attempt_at"], name="reminder_pending_due", condition=Q(status="pending")
            ),
            # The dashboard's failed reminders, a few among millions sent.
            models.Index(fields=["updated_at"], name="reminder_failed", condition=Q(status="failed")),
            models.Index(
                fields=["lease_expires_at"], name="reminder_lease_lapsed", condition=Q(status="sending")
            ),
        ]
        constraints = [
            one_of("kind", codes.ReminderKind),
            one_of("status", codes.ReminderStatus),
            models.UniqueConstraint(fields=["visit", "kind", "visit_time"], name="followups_reminder_once"),
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(next_attempt_at__isnull=False),
                name="followups_reminder_pending_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(claim_id__isnull=False, lease_expires_at__isnull=False),
                name="followups_reminder_sending_is_claimed",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.get_status_display().lower()})"


# --- follow-up runs (issue 18; the flow in followups/runs/__init__.py) -------------------------


class FollowUpRun(models.Model):
    """One pass of the follow-up refresh over many patients: the nightly run, an edited protocol
    re-applied, or ``follow_up_refresh``. Its patients are split into chunks that any worker takes;
    the last chunk to finish closes the run. What staff and the health check read."""

    kind = models.CharField(max_length=16, choices=run_codes.RunKind.choices)
    # The clinic day the run is for: a nightly run plans as of this day, however late it finishes.
    clinic_day = models.DateField()
    # What a protocol run re-applies (the protocol's code); blank for the other kinds.
    subject = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        max_length=16, choices=run_codes.RunState.choices, default=run_codes.RunState.RUNNING
    )
    patients = models.PositiveIntegerField(help_text="Patients the run refreshes.")
    # Counted as each chunk finishes; a running run's progress is the sum of its chunks' positions.
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["kind", "clinic_day"], name="followups_run_kind_day")]
        constraints = [
            one_of("kind", run_codes.RunKind),
            one_of("state", run_codes.RunState),
            # Beat firing twice, or someone running the task by hand, finds the day's run.
            models.UniqueConstraint(
                fields=["clinic_day"], condition=Q(kind="nightly"), name="followups_one_nightly_run_a_day"
            ),
            models.CheckConstraint(
                condition=Q(state="running") | Q(finished_at__isnull=False),
                name="followups_run_ended_has_time",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.clinic_day} ({self.get_state_display().lower()})"


class FollowUpRunChunk(models.Model):
    """A slice of a run's patients, taken by one worker at a time under a lease.

    ``position`` is how far it got: the patients before it are refreshed or recorded failed, so a
    chunk taken again (its worker killed, its time up) resumes there. Ids only, never patient data.
    """

    run = models.ForeignKey(FollowUpRun, on_delete=models.CASCADE, related_name="chunks")
    patient_ids = models.JSONField()
    position = models.PositiveIntegerField(default=0)
    failed_ids = models.JSONField(default=list, blank=True)
    # When its task was last handed to the broker: a message lost before any worker claimed the
    # chunk shows as queued long ago and never claimed.
    queued_at = models.DateTimeField(null=True, blank=True)
    claim_id = models.UUIDField(null=True, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Claims since the chunk last moved on: a patient whose refresh kills its worker every time
    # is recorded failed after a few, instead of holding the chunk for ever.
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        indexes = [
            # The sweep's question: unfinished chunks whose lease lapsed or that were never claimed.
            models.Index(
                fields=["claimed_until"],
                name="followups_run_chunk_open",
                condition=Q(finished_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"Chunk {self.pk} of run {self.run_id}: {self.position}/{len(self.patient_ids)}"
