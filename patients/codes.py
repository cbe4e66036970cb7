"""The clinical vocabularies of DOMAIN.md section 2: the stored codes and their labels.

Codes are the contract (API.md, FHIR mapping, database check constraints); labels are for people
and translatable.
"""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _


class FollowUpEndReason(models.TextChoices):
    """Why a patient's follow-up ended (DOMAIN.md section 9): the record stays, the follow-up stops."""

    DECLINED_FOLLOW_UP = "declined_follow_up", _("Declined follow-up")
    MOVED_AWAY = "moved_away", _("Moved away")
    DECEASED = "deceased", _("Deceased")
    TRANSFERRED = "transferred", _("Transferred to another clinic")
    DISCHARGED = "discharged", _("Discharged")


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Unknown")


class HlaB1502Result(models.TextChoices):
    POSITIVE = "positive", _("Positive")
    NEGATIVE = "negative", _("Negative")
    NOT_TESTED = "not_tested", _("Not tested")


class HfsKind(models.TextChoices):
    PRIMARY = "primary", _("Primary")
    SECONDARY = "secondary", _("Secondary")


class SecondaryCause(models.TextChoices):
    POST_PARALYTIC = "post_paralytic", _("Post-paralytic (Bell's palsy, facial-nerve injury)")
    CPA_TUMOR = "cpa_tumor", _("Cerebellopontine-angle tumour")
    OTHER_TUMOR = "other_tumor", _("Other tumour (e.g. parotid)")
    VASCULAR_MALFORMATION = "vascular_malformation", _("Vascular malformation (AVM, aneurysm)")
    VERTEBROBASILAR_DOLICHOECTASIA = (
        "vertebrobasilar_dolichoectasia",
        _("Vertebrobasilar dolichoectasia"),
    )
    DEMYELINATING = "demyelinating", _("Demyelinating disease (multiple sclerosis)")
    BRAINSTEM_LESION = "brainstem_lesion", _("Brainstem lesion")
    BONY_ABNORMALITY = "bony_abnormality", _("Bony abnormality")
    OTHER = "other", _("Other")


class Presentation(models.TextChoices):
    TYPICAL = "typical", _("Typical (starts around the eye)")
    ATYPICAL = "atypical", _("Atypical (starts in the lower face)")


class Side(models.TextChoices):
    LEFT = "left", _("Left")
    RIGHT = "right", _("Right")
    BILATERAL = "bilateral", _("Bilateral")


class DiagnosisStatus(models.TextChoices):
    PROVISIONAL = "provisional", _("Provisional")
    CONFIRMED = "confirmed", _("Confirmed")
    REFUTED = "refuted", _("Refuted")
    ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")


class Muscle(models.TextChoices):
    ORBICULARIS_OCULI = "orbicularis_oculi", _("Orbicularis oculi")
    FRONTALIS = "frontalis", _("Frontalis")
    CORRUGATOR = "corrugator", _("Corrugator")
    ZYGOMATICUS = "zygomaticus", _("Zygomaticus")
    LEVATOR_LABII = "levator_labii", _("Levator labii")
    ORBICULARIS_ORIS = "orbicularis_oris", _("Orbicularis oris")
    BUCCINATOR = "buccinator", _("Buccinator")
    MENTALIS = "mentalis", _("Mentalis")
    PLATYSMA = "platysma", _("Platysma")


class ImagingModality(models.TextChoices):
    MRI = "mri", _("MRI")
    MRA = "mra", _("MR angiography")
    CT = "ct", _("CT")
    ANGIOGRAPHY = "angiography", _("Catheter angiography")


class ImagingSequence(models.TextChoices):
    CISS = "ciss", _("CISS")
    FIESTA = "fiesta", _("FIESTA")
    T2_3D_OTHER = "t2_3d_other", _("Other 3D T2")
    TOF_MRA = "tof_mra", _("Time-of-flight MRA")
    CONTRAST_MRA = "contrast_mra", _("Contrast MRA")
    T1_CONTRAST = "t1_contrast", _("T1 with contrast")
    ROUTINE_T2 = "routine_t2", _("Routine T2")


# The sequences that show the nerve's root exit zone well enough to count as HFS imaging.
HIGH_RESOLUTION_SEQUENCES = frozenset({ImagingSequence.CISS, ImagingSequence.FIESTA})

FIELD_STRENGTHS_TESLA = (Decimal("1.5"), Decimal("3.0"))


class CompressionFound(models.TextChoices):
    YES = "yes", _("Yes")
    NO = "no", _("No")
    INDETERMINATE = "indeterminate", _("Indeterminate")


class Vessel(models.TextChoices):
    AICA = "aica", _("Anterior inferior cerebellar artery")
    PICA = "pica", _("Posterior inferior cerebellar artery")
    VERTEBRAL = "vertebral", _("Vertebral artery")
    BASILAR = "basilar", _("Basilar artery")
    SCA = "sca", _("Superior cerebellar artery")
    VEIN = "vein", _("Vein")
    NONE_IDENTIFIED = "none_identified", _("None identified")


class ImagingStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")


class TreatmentKind(models.TextChoices):
    MEDICATION = "medication", _("Medication")
    BOTULINUM_TOXIN = "botulinum_toxin", _("Botulinum toxin")
    MVD = "mvd", _("Microvascular decompression")
    OTHER = "other", _("Other")


class TreatmentStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    ACTIVE = "active", _("Active")
    COMPLETED = "completed", _("Completed")
    STOPPED = "stopped", _("Stopped")
    ENTERED_IN_ERROR = "entered_in_error", _("Entered in error")


class Drug(models.TextChoices):
    CARBAMAZEPINE = "carbamazepine", _("Carbamazepine")
    OXCARBAZEPINE = "oxcarbazepine", _("Oxcarbazepine")
    CLONAZEPAM = "clonazepam", _("Clonazepam")
    GABAPENTIN = "gabapentin", _("Gabapentin")
    BACLOFEN = "baclofen", _("Baclofen")
    OTHER = "other", _("Other")


# DOMAIN.md section 2: a daily dose above these is rejected (by the service and the database).
DAILY_DOSE_CEILING_MG = {
    Drug.CARBAMAZEPINE: Decimal("1200"),
    Drug.OXCARBAZEPINE: Decimal("2400"),
    Drug.CLONAZEPAM: Decimal("20"),
    Drug.BACLOFEN: Decimal("80"),
    Drug.GABAPENTIN: Decimal("3600"),
}


class StopReason(models.TextChoices):
    INEFFECTIVE = "ineffective", _("Ineffective")
    ADVERSE_EFFECT = "adverse_effect", _("Adverse effect")
    TAPER_SUCCESS = "taper_success", _("Tapered successfully")
    SWITCHED = "switched", _("Switched")
    OTHER = "other", _("Other")


class ToxinProduct(models.TextChoices):
    ONABOTULINUMTOXINA = "onabotulinumtoxinA", _("onabotulinumtoxinA")
    ABOBOTULINUMTOXINA = "abobotulinumtoxinA", _("abobotulinumtoxinA")
    INCOBOTULINUMTOXINA = "incobotulinumtoxinA", _("incobotulinumtoxinA")
    OTHER = "other", _("Other")


# DOMAIN.md section 4: more than this many units of one product within any window of this many
# days is an error. Units of different products are never added together.
TOXIN_UNITS_LIMIT = 200
TOXIN_WINDOW_DAYS = 30


class MvdTechnique(models.TextChoices):
    INTERPOSITION = "interposition", _("Interposition")
    TRANSPOSITION = "transposition", _("Transposition")


class MvdComplicationKind(models.TextChoices):
    TRANSIENT_FACIAL_PALSY = "transient_facial_palsy", _("Transient facial palsy")
    DELAYED_FACIAL_PALSY = "delayed_facial_palsy", _("Delayed facial palsy")
    PERMANENT_FACIAL_PALSY = "permanent_facial_palsy", _("Permanent facial palsy")
    HEARING_LOSS_TRANSIENT = "hearing_loss_transient", _("Transient hearing loss")
    HEARING_LOSS_PERMANENT = "hearing_loss_permanent", _("Permanent hearing loss")
    CSF_LEAK = "csf_leak", _("CSF leak")
    MENINGITIS = "meningitis", _("Meningitis")
    STROKE = "stroke", _("Stroke")
    OTHER = "other", _("Other")


class RecordStateError(models.TextChoices):
    """Why a change of a diagnosis', imaging study's or treatment's status was refused."""

    RETRACTED = "retracted", _("A retracted record does not change")
    INVALID_TRANSITION = "invalid_transition", _("No such change of status")
