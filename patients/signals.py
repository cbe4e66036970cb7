"""Domain signals of the clinical record, sent inside the writing service's transaction.

``followups`` answers them to re-plan visits and reminders and to recompute outcomes and flags
(ARCHITECTURE.md: ``patients`` never imports ``followups``). A receiver that fails rolls the
whole write back, so the record and its follow-up never disagree.
"""

from django.dispatch import Signal

# Sent after a patient's contact data, consent, time zone or archive state changed.
# Arguments: patient, change ("created" | "updated" | "archived").
patient_changed = Signal()

# Sent after a diagnosis was recorded, changed or retracted.
# Arguments: diagnosis, change ("recorded" | "updated" | "retracted").
diagnosis_changed = Signal()

# Sent after a treatment or any of its details was recorded, changed, stopped or retracted.
# Arguments: treatment, change ("recorded" | "updated" | "retracted").
treatment_changed = Signal()

# Sent after an imaging study was recorded, changed or retracted.
# Arguments: study, change ("recorded" | "updated" | "retracted").
imaging_study_changed = Signal()
