"""How follow-up answers changes to the clinical record (the signals of ``patients.signals``).

Each receiver runs inside the transaction of the record's service, so the record, its planned
visits, its outcomes and its flags are committed together or not at all.
"""

from django.dispatch import receiver

from followups import demo  # noqa: F401  (answers patients.demo.demo_batch_seeded)
from followups.flags_store import flags_sync
from followups.services import patient_follow_up_refresh
from patients.signals import diagnosis_changed, imaging_study_changed, patient_changed, treatment_changed


@receiver(treatment_changed, dispatch_uid="followups.treatment_changed")
def _treatment_changed(sender, treatment, change, **kwargs):
    patient_follow_up_refresh(patient=treatment.patient)


@receiver(diagnosis_changed, dispatch_uid="followups.diagnosis_changed")
def _diagnosis_changed(sender, diagnosis, change, **kwargs):
    patient_follow_up_refresh(patient=diagnosis.patient)


@receiver(patient_changed, dispatch_uid="followups.patient_changed")
def _patient_changed(sender, patient, change, **kwargs):
    # Archiving cancels the plan and restoring brings it back; the HLA result moves flags.
    if change != "created":
        patient_follow_up_refresh(patient=patient)


@receiver(imaging_study_changed, dispatch_uid="followups.imaging_study_changed")
def _imaging_changed(sender, study, change, **kwargs):
    flags_sync(patient=study.patient)
