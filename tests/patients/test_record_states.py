"""The status moves of diagnoses, imaging studies and treatments, every pair of statuses; no database.

The expected moves are written out here, in the clinic's codes, rather than read from the module:
a move added to or dropped from a table by mistake then fails a test instead of agreeing with it.
"""

import pytest

from patients import codes, record_states

# Every move a clinician may make, as "current -> new"; staying put is not a move.
DIAGNOSIS_MOVES = {
    "provisional -> confirmed",
    "provisional -> refuted",
    "provisional -> entered_in_error",
    "confirmed -> provisional",
    "confirmed -> refuted",
    "confirmed -> entered_in_error",
    "refuted -> provisional",
    "refuted -> confirmed",
    "refuted -> entered_in_error",
}
IMAGING_MOVES = {"available -> entered_in_error"}
TREATMENT_MOVES = {
    "planned -> active",
    "planned -> completed",
    "planned -> stopped",
    "planned -> entered_in_error",
    "active -> completed",
    "active -> stopped",
    "active -> entered_in_error",
    "completed -> active",
    "completed -> stopped",
    "completed -> entered_in_error",
    "stopped -> active",
    "stopped -> completed",
    "stopped -> entered_in_error",
}

KINDS = {
    "diagnosis": (["provisional", "confirmed", "refuted", "entered_in_error"], DIAGNOSIS_MOVES),
    "imaging_study": (["available", "entered_in_error"], IMAGING_MOVES),
    "treatment": (["planned", "active", "completed", "stopped", "entered_in_error"], TREATMENT_MOVES),
}
TABLES = {
    "diagnosis": record_states.DIAGNOSIS,
    "imaging_study": record_states.IMAGING_STUDY,
    "treatment": record_states.TREATMENT,
}
PAIRS = [
    (kind, current, new) for kind, (statuses, _) in KINDS.items() for current in statuses for new in statuses
]


@pytest.mark.parametrize(
    ("kind", "choices"),
    [
        ("diagnosis", codes.DiagnosisStatus),
        ("imaging_study", codes.ImagingStatus),
        ("treatment", codes.TreatmentStatus),
    ],
)
def test_the_statuses_judged_are_those_of_the_domain(kind, choices):
    statuses, _ = KINDS[kind]

    assert sorted(statuses) == sorted(choices.values)
    assert sorted(TABLES[kind].allowed) == sorted(choices.values)


@pytest.mark.parametrize(("kind", "current", "new"), PAIRS, ids=[" ".join(p) for p in PAIRS])
def test_every_pair_of_statuses_is_allowed_or_refused_as_the_clinic_decided(kind, current, new):
    _, moves = KINDS[kind]
    allowed = current == new or f"{current} -> {new}" in moves

    for kind_or_table in (kind, TABLES[kind]):
        error = record_states.transition_error(kind_or_table, current, new)
        if allowed:
            assert error is None
        else:
            assert error, f"{current} -> {new} should be refused"


@pytest.mark.parametrize("kind", list(KINDS))
def test_entered_in_error_has_no_way_out_and_every_live_status_may_be_retracted(kind):
    statuses, _ = KINDS[kind]
    live = [status for status in statuses if status != "entered_in_error"]

    for status in live:
        assert record_states.transition_error(kind, "entered_in_error", status) is not None
        assert record_states.transition_error(kind, status, "entered_in_error") is None


@pytest.mark.parametrize(
    ("kind", "current", "new", "message"),
    [
        (
            "diagnosis",
            "entered_in_error",
            "confirmed",
            "A diagnosis entered in error is final: it cannot become confirmed. "
            "Record a new diagnosis instead.",
        ),
        (
            "imaging_study",
            "entered_in_error",
            "available",
            "An imaging study entered in error is final: it cannot become available. "
            "Record a new imaging study instead.",
        ),
        (
            "treatment",
            "entered_in_error",
            "active",
            "A treatment entered in error is final: it cannot become active. Record a new treatment instead.",
        ),
        (
            "treatment",
            "active",
            "planned",
            "An active treatment can become: completed, entered in error, stopped; not planned.",
        ),
        (
            "treatment",
            "completed",
            "planned",
            "A completed treatment can become: active, entered in error, stopped; not planned.",
        ),
        (
            "treatment",
            "stopped",
            "planned",
            "A stopped treatment can become: active, completed, entered in error; not planned.",
        ),
    ],
)
def test_a_refusal_says_what_the_record_can_become_in_the_clinics_words(kind, current, new, message):
    assert record_states.transition_error(kind, current, new) == message


@pytest.mark.parametrize(
    ("current", "new", "unknown"),
    [
        ("confirmed", "cured", "cured"),
        ("cured", "confirmed", "cured"),
        ("", "", ""),
        ("confirmed", None, None),
    ],
)
def test_a_code_that_is_not_a_status_is_named_not_judged(current, new, unknown):
    message = record_states.transition_error("diagnosis", current, new)

    assert message == f"'{unknown}' is not a status of a diagnosis."


@pytest.mark.parametrize(
    ("kind", "noun"),
    [("diagnosis", "diagnosis"), ("imaging_study", "imaging study"), ("treatment", "treatment")],
)
def test_only_a_retracted_record_is_closed_to_every_change(kind, noun):
    statuses, _ = KINDS[kind]

    for status in statuses:
        message = record_states.retracted_error(kind, status)
        if status == "entered_in_error":
            assert message == (
                f"This {noun} was entered in error and is no longer changed; record a new {noun} instead."
            )
        else:
            assert message is None


@pytest.mark.parametrize(
    ("kind", "noun"),
    [("diagnosis", "diagnosis"), ("imaging_study", "imaging study"), ("treatment", "treatment")],
)
def test_a_new_record_may_start_in_any_status_but_entered_in_error(kind, noun):
    statuses, _ = KINDS[kind]

    for status in statuses:
        message = record_states.initial_error(TABLES[kind], status)
        if status == "entered_in_error":
            assert message == (
                f"A new {noun} cannot be entered in error; record it with its real status, "
                "and retract it afterwards if it was a mistake."
            )
        else:
            assert message is None
    assert record_states.initial_error(kind, "retracted") == f"'retracted' is not a status of a {noun}."
