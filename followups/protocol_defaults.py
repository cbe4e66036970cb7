"""The seeded default protocols of DOMAIN.md section 5, as plain data.

The data migration loads them once; after that they are the clinic's to edit in the admin.
``protocols_load_defaults`` also restores them where a test database was emptied.
"""

from datetime import time

from followups.codes import StepAnchor, StepRepeat, VisitKind

ONCE, UNTIL_DAY = StepRepeat.ONCE, StepRepeat.UNTIL_DAY


def _step(code, purpose, offset, before, after, **extra):
    return {
        "code": code,
        "purpose": purpose,
        "offset_days": offset,
        "window_before_days": before,
        "window_after_days": after,
        **extra,
    }


DEFAULT_PROTOCOLS = [
    {
        "code": "mvd",
        "name": "After microvascular decompression",
        "treatment_kind": "mvd",
        "description": "Anchor: the surgery date. Windows widen with the offset: +-7 days up to day 90, "
        "+-30 days after. While a facial palsy (House-Brackmann II or worse) is recorded, a review "
        "every 21 days until grade I.",
        "steps": [
            _step("day-10", "Facial nerve check (day 10)", 10, 3, 4),
            _step("day-30", "Review (day 30)", 30, 7, 7),
            _step("day-90", "Review (day 90)", 90, 7, 7),
            _step("day-180", "First reliable outcome (day 180)", 180, 30, 30),
            _step("day-365", "One-year outcome (day 365)", 365, 30, 30),
            _step("day-730", "Two-year review (day 730)", 730, 30, 30),
            _step(
                "yearly",
                "Yearly review",
                1095,
                30,
                30,
                repeat=UNTIL_DAY,
                repeat_every_days=365,
                repeat_until_day=1825,
            ),
            _step(
                "palsy-review",
                "Facial nerve review",
                21,
                7,
                7,
                anchor=StepAnchor.FACIAL_PALSY,
                repeat=StepRepeat.WHILE_FACIAL_PALSY,
                repeat_every_days=21,
            ),
        ],
    },
    {
        "code": "botulinum-toxin",
        "name": "After a botulinum toxin session",
        "treatment_kind": "botulinum_toxin",
        "description": "Anchor: the injection date. A new session re-anchors the cycle.",
        "steps": [
            _step("day-21", "Efficacy and side-effect review (day 21)", 21, 7, 7),
            _step("reinjection", "Re-injection visit (day 84)", 84, 0, 21),
        ],
    },
    {
        "code": "medication",
        "name": "During a medication course",
        "treatment_kind": "medication",
        "description": "Anchor: the course start or the last dose change; laboratory checks count "
        "from the course start.",
        "steps": [
            _step("titration-14", "Titration review (day 14)", 14, 3, 3, anchor=StepAnchor.LAST_DOSE_CHANGE),
            _step("titration-28", "Titration review (day 28)", 28, 7, 7, anchor=StepAnchor.LAST_DOSE_CHANGE),
            _step(
                "review-90",
                "Medication review (every 90 days)",
                118,
                14,
                14,
                anchor=StepAnchor.LAST_DOSE_CHANGE,
                repeat=StepRepeat.WHILE_ACTIVE,
                repeat_every_days=90,
            ),
            _step(
                "lab-blood-count",
                "Blood count (every 90 days)",
                90,
                14,
                14,
                repeat=StepRepeat.WHILE_ACTIVE,
                repeat_every_days=90,
                only_for_drug="carbamazepine",
            ),
            _step(
                "lab-sodium",
                "Sodium (every 90 days)",
                90,
                14,
                14,
                repeat=StepRepeat.WHILE_ACTIVE,
                repeat_every_days=90,
                only_for_drug="oxcarbazepine",
            ),
        ],
    },
    {
        "code": "untreated",
        "name": "Diagnosed, not yet treated",
        "treatment_kind": "",
        "description": "Anchor: the date of diagnosis. Cancelled once a treatment is recorded.",
        "steps": [
            _step(
                "review-180",
                "Review (every 180 days)",
                180,
                30,
                30,
                anchor=StepAnchor.DIAGNOSIS,
                repeat=StepRepeat.WHILE_UNTREATED,
                repeat_every_days=180,
            ),
        ],
    },
]


# The kind of clinic each step needs (DOMAIN.md section 12); a step not named here needs a review.
# Kept apart from the steps above: the migration that first loaded them predates the field.
DEFAULT_VISIT_KINDS = {
    ("botulinum-toxin", "reinjection"): VisitKind.INJECTION,
    ("mvd", "day-10"): VisitKind.POST_OP_CHECK,
    ("mvd", "day-30"): VisitKind.POST_OP_CHECK,
    ("medication", "lab-blood-count"): VisitKind.LAB,
    ("medication", "lab-sodium"): VisitKind.LAB,
}


def default_visit_kind(protocol_code: str, step_code: str) -> str:
    return DEFAULT_VISIT_KINDS.get((protocol_code, step_code), VisitKind.REVIEW)


def protocols_load_defaults(protocol_model, step_model) -> int:
    """Create the default protocols that are missing (by code); answer how many were created.

    Takes the model classes so that the data migration can pass its historical models (those of
    before the steps had a visit kind, too).
    """
    has_kind = any(f.name == "visit_kind" for f in step_model._meta.get_fields())
    created = 0
    for spec in DEFAULT_PROTOCOLS:
        fields = {key: value for key, value in spec.items() if key != "steps"}
        protocol, was_created = protocol_model.objects.get_or_create(code=spec["code"], defaults=fields)
        if was_created:
            created += 1
            step_model.objects.bulk_create(
                step_model(
                    protocol=protocol,
                    order=order,
                    **step,
                    **({"visit_kind": default_visit_kind(spec["code"], step["code"])} if has_kind else {}),
                )
                for order, step in enumerate(spec["steps"])
            )
    return created


# A believable clinic week (DOMAIN.md section 12), seeded like the protocols and the clinic's to
# edit: two injection clinics, a post-operative clinic, two review clinics and a laboratory morning.
DEFAULT_SESSION_TEMPLATES = [
    {
        "label": "Injection clinic (room 2)",
        "weekday": 0,
        "starts_at": "08:30",
        "ends_at": "12:30",
        "slot_minutes": 20,
        "capacity": 2,
        "kinds": [VisitKind.INJECTION],
    },
    {
        "label": "Laboratory morning",
        "weekday": 1,
        "starts_at": "08:00",
        "ends_at": "10:00",
        "slot_minutes": 10,
        "capacity": 3,
        "kinds": [VisitKind.LAB],
    },
    {
        "label": "Neurosurgery post-operative clinic",
        "weekday": 1,
        "starts_at": "13:00",
        "ends_at": "16:00",
        "slot_minutes": 20,
        "capacity": 1,
        "kinds": [VisitKind.POST_OP_CHECK, VisitKind.REVIEW],
    },
    {
        "label": "Movement disorders review clinic",
        "weekday": 2,
        "starts_at": "09:00",
        "ends_at": "12:30",
        "slot_minutes": 20,
        "capacity": 1,
        "kinds": [VisitKind.REVIEW],
    },
    {
        "label": "Injection clinic (room 2)",
        "weekday": 3,
        "starts_at": "13:30",
        "ends_at": "16:30",
        "slot_minutes": 20,
        "capacity": 2,
        "kinds": [VisitKind.INJECTION],
    },
    {
        "label": "Review clinic",
        "weekday": 4,
        "starts_at": "09:00",
        "ends_at": "12:00",
        "slot_minutes": 20,
        "capacity": 1,
        "kinds": [VisitKind.REVIEW, VisitKind.LAB],
    },
]


def session_templates_load_defaults(template_model, kind_model, *, valid_from) -> int:
    """Create the default session templates when the clinic has none; answer how many."""
    if template_model.objects.exists():
        return 0
    for spec in DEFAULT_SESSION_TEMPLATES:
        fields = {key: value for key, value in spec.items() if key != "kinds"}
        fields["starts_at"], fields["ends_at"] = (
            time.fromisoformat(spec["starts_at"]),
            time.fromisoformat(spec["ends_at"]),
        )
        template = template_model.objects.create(valid_from=valid_from, **fields)
        kind_model.objects.bulk_create(
            kind_model(template=template, visit_kind=kind) for kind in spec["kinds"]
        )
    return len(DEFAULT_SESSION_TEMPLATES)
