"""The seeded default protocols of DOMAIN.md section 5, as plain data.

The data migration loads them once; after that they are the clinic's to edit in the admin.
``protocols_load_defaults`` also restores them where a test database was emptied.
"""

from followups.codes import StepAnchor, StepRepeat

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


def protocols_load_defaults(protocol_model, step_model) -> int:
    """Create the default protocols that are missing (by code); answer how many were created.

    Takes the model classes so that the data migration can pass its historical models.
    """
    created = 0
    for spec in DEFAULT_PROTOCOLS:
        fields = {key: value for key, value in spec.items() if key != "steps"}
        protocol, was_created = protocol_model.objects.get_or_create(code=spec["code"], defaults=fields)
        if was_created:
            created += 1
            step_model.objects.bulk_create(
                step_model(protocol=protocol, order=order, **step) for order, step in enumerate(spec["steps"])
            )
    return created
