"""Follow-up vocabularies: visit states, measurements' codes, outcome categories and flag codes."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class VisitStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    BOOKED = "booked", _("Booked")
    COMPLETED = "completed", _("Completed")
    MISSED = "missed", _("Missed")
    CANCELLED = "cancelled", _("Cancelled")


class VisitKind(models.TextChoices):
    """The kind of clinic a visit needs (DOMAIN.md section 12): what a session serves."""

    INJECTION = "injection", _("Injection clinic")
    POST_OP_CHECK = "post_op_check", _("Post-operative check")
    REVIEW = "review", _("Review")
    LAB = "lab", _("Blood test")


class VisitMoveError(models.TextChoices):
    """Why a visit move was refused (DOMAIN.md section 2): the codes beside an API 400's messages."""

    INVALID_TRANSITION = "invalid_transition", _("No such move from the visit's state")
    INVALID_TIME = "invalid_time", _("No date and time with its UTC offset")
    TOO_FAR_AHEAD = "too_far_ahead", _("More than ten years ahead")
    OUTSIDE_WINDOW = "outside_window", _("Outside the visit's window, not confirmed")
    BEFORE_TREATMENT = "before_treatment", _("Before the treatment the visit follows")
    STILL_AHEAD = "still_ahead", _("The visit is still ahead")
    NOT_YET_PASSED = "not_yet_passed", _("The visit has not passed yet")
    REASON_REQUIRED = "reason_required", _("A reason is needed")
    REASON_TOO_LONG = "reason_too_long", _("The reason is too long")
    CORRECTION_NOT_ALLOWED = "correction_not_allowed", _("Only a clinician or nurse corrects a visit")
    ALREADY_REBOOKED = "already_rebooked", _("The missed visit was rebooked already")
    MEASURED_AT_VISIT = "measured_at_visit", _("Measurements were recorded at the visit")
    ARCHIVED = "archived", _("The patient is archived")
    FOLLOW_UP_ENDED = "follow_up_ended", _("The patient's follow-up has ended")
    SLOT_FULL = "slot_full", _("The slot is full")
    SLOT_UNAVAILABLE = "slot_unavailable", _("The slot cannot take this visit")
    TOO_LATE_TO_CHANGE = "too_late_to_change", _("Too close to the appointment to change it online")


class FlagAcknowledgeError(models.TextChoices):
    """Why acknowledging a flag was refused (DOMAIN.md section 8 v2)."""

    NOT_A_CLINICIAN = "not_a_clinician", _("Only a clinician acknowledges a flag")
    NOTE_REQUIRED = "required", _("A note is needed")
    NOTE_TOO_LONG = "max_length", _("The note is too long")
    FLAG_GONE = "flag_gone", _("The flag no longer holds")


class VisitSource(models.TextChoices):
    PROTOCOL = "protocol", _("Planned by protocol")
    MANUAL = "manual", _("Created by staff")


class StepAnchor(models.TextChoices):
    """The date a protocol step counts its offset from."""

    TREATMENT_START = "treatment_start", _("Treatment start (injection, surgery, course start)")
    LAST_DOSE_CHANGE = "last_dose_change", _("Course start or last dose change")
    FACIAL_PALSY = "facial_palsy", _("Latest assessment with House-Brackmann grade II or worse")
    DIAGNOSIS = "diagnosis", _("Date of diagnosis (untreated patients)")


class StepRepeat(models.TextChoices):
    ONCE = "once", _("Once")
    UNTIL_DAY = "until_day", _("Repeat until a given day")
    WHILE_ACTIVE = "while_active", _("Repeat while the treatment is active")
    WHILE_UNTREATED = "while_untreated", _("Repeat while no treatment is recorded")
    WHILE_FACIAL_PALSY = "while_facial_palsy", _("Repeat until House-Brackmann grade I")


class Trigger(models.TextChoices):
    STRESS = "stress", _("Stress")
    FATIGUE = "fatigue", _("Fatigue")
    EMOTION = "emotion", _("Emotion")
    TALKING = "talking", _("Talking")
    EATING = "eating", _("Eating")
    READING = "reading", _("Reading")
    OTHER = "other", _("Other")


class AdverseEffect(models.TextChoices):
    PTOSIS = "ptosis", _("Ptosis")
    FACIAL_WEAKNESS = "facial_weakness", _("Facial weakness")
    DIPLOPIA = "diplopia", _("Diplopia")
    DRY_EYE = "dry_eye", _("Dry eye")
    BRUISING = "bruising", _("Bruising")
    DROWSINESS = "drowsiness", _("Drowsiness")
    DIZZINESS = "dizziness", _("Dizziness")
    HYPONATREMIA = "hyponatremia", _("Hyponatremia")
    RASH = "rash", _("Rash")
    HEARING_LOSS = "hearing_loss", _("Hearing loss")
    OTHER = "other", _("Other")


class ContractionPattern(models.TextChoices):
    TONIC = "tonic", _("Tonic")
    CLONIC = "clonic", _("Clonic")
    MIXED = "mixed", _("Tonic and clonic")


class JankovicAnchors(models.TextChoices):
    ORIGINAL = "original", _("Original (blepharospasm wording)")
    HFS_ADAPTED = "hfs_adapted", _("Adapted to hemifacial spasm")


class AssessmentStatus(models.TextChoices):
    FINAL = "final", _("Final")
    ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")


class AssessmentSource(models.TextChoices):
    """Who recorded an assessment (DOMAIN.md section 3)."""

    CLINICIAN = "clinician", _("Clinician")
    NURSE = "nurse", _("Nurse")
    PATIENT = "patient", _("Patient")


class LabTest(models.TextChoices):
    BLOOD_COUNT = "blood_count", _("Complete blood count")
    SODIUM = "sodium", _("Serum sodium")


class OutcomeCategory(models.TextChoices):
    INSUFFICIENT_DATA = "insufficient_data", _("Insufficient data")
    RECURRENCE = "recurrence", _("Recurrence")
    CURED = "cured", _("Cured")
    DELAYED_CURE = "delayed_cure", _("Delayed cure")
    WORSE = "worse", _("Worse")
    IMPROVED = "improved", _("Improved")
    FAILURE = "failure", _("Failure")
    UNCHANGED = "unchanged", _("Unchanged")


class SorianoBaron(models.TextChoices):
    EXCELLENT = "excellent", _("Excellent (no spasms)")
    GOOD = "good", _("Good (1-2 a day)")
    BAD = "bad", _("Bad (more than 2 a day)")
    RECURRENCE = "recurrence", _("Recurrence")


class FlagCode(models.TextChoices):
    # DOMAIN.md section 4 (safety warnings)
    BOTOX_INTERVAL_SHORT = "botox_interval_short", _("Toxin session less than 12 weeks after the last")
    HLA_B1502_MISSING = "hla_b1502_missing", _("Carbamazepine without HLA-B*1502 result (at-risk ancestry)")
    LAB_MONITORING_DUE = "lab_monitoring_due", _("Laboratory monitoring due")
    # DOMAIN.md section 8 (clinical attention)
    CONSIDER_MVD_EVALUATION = "consider_mvd_evaluation", _("Consider MVD evaluation")
    IMAGING_MISSING = "imaging_missing", _("No high-resolution MRI (CISS/FIESTA)")
    SECONDARY_CAUSE_UNCONFIRMED = "secondary_cause_unconfirmed", _("Secondary cause unconfirmed")
    RECURRENCE_AFTER_MVD = "recurrence_after_mvd", _("Recurrence after MVD")
    FACIAL_PALSY_AFTER_MVD = "facial_palsy_after_mvd", _("Facial palsy after MVD")
    OVERDUE_FOLLOW_UP = "overdue_follow_up", _("Overdue follow-up")
    # DOMAIN.md section 9 (the call list)
    LOST_TO_FOLLOW_UP = "lost_to_follow_up", _("Lost to follow-up")
    CONTACT_DETAILS_INVALID = "contact_details_invalid", _("Contact details to update")


class ContactChannel(models.TextChoices):
    """How the clinic tried to reach a patient (DOMAIN.md section 9)."""

    PHONE = "phone", _("Phone")
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("Text message")
    LETTER = "letter", _("Letter")
    IN_PERSON = "in_person", _("In person")


class ContactOutcome(models.TextChoices):
    """What came of a contact attempt (DOMAIN.md section 9)."""

    NO_ANSWER = "no_answer", _("No answer")
    LEFT_MESSAGE = "left_message", _("Left a message")
    AGREED_TO_VISIT = "agreed_to_visit", _("Agreed to a visit")
    CALL_LATER = "call_later", _("Asked to be called later")
    WRONG_NUMBER = "wrong_number", _("Wrong number")
    ALREADY_SEEN_ELSEWHERE = "already_seen_elsewhere", _("Already seen elsewhere")
    DECLINED_FOLLOW_UP = "declined_follow_up", _("Declined follow-up")
    MOVED_AWAY = "moved_away", _("Moved away")
    DECEASED = "deceased", _("Deceased")


class CallReason(models.TextChoices):
    """Why a patient is on the call list (DOMAIN.md sections 9 and 12)."""

    MISSED = "missed", _("Missed visit")
    WINDOW_CLOSED = "window_closed", _("Window closed unbooked")
    NOT_BOOKED = "not_booked", _("Not booked, window half passed")
    CLINIC_CANCELLED = "clinic_cancelled", _("Clinic cancelled the session")


class ReminderKind(models.TextChoices):
    VISIT_7D = "visit_7d", _("7 days before the visit")
    VISIT_1D = "visit_1d", _("1 day before the visit")
    MISSED_VISIT = "missed_visit", _("After a missed visit")
    BOOKING_INVITATION = "booking_invitation", _("Invitation to book a planned visit")
    BOOKING_LAST_CALL = "booking_last_call", _("Last call to book a planned visit")
    BOOKING_CONFIRMATION = "booking_confirmation", _("Confirmation of a booking")
    APPOINTMENT_CANCELLED = "appointment_cancelled", _("The clinic cancelled the appointment")


class ReminderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    SKIPPED = "skipped", _("Skipped")
