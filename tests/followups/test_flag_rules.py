"""The flag rules of DOMAIN.md sections 4 and 8 (rule version 2) on plain values: ``flags_for`` over
``FlagInputs`` built by hand, no database. Every rule, each boundary, and each flag's code, subject,
detail and ``since`` (the date of the fact that raised it, never the day it was computed)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followups.codes import FlagCode as F
from followups.codes import LabTest
from followups.codes import OutcomeCategory as O
from followups.flags import (
    DiagnosisFacts,
    Flag,
    FlagInputs,
    GradeFacts,
    LabFacts,
    OverdueVisitFacts,
    StudyFacts,
    TreatmentFacts,
    flags_for,
)
from patients.codes import (
    DiagnosisStatus,
    Drug,
    HfsKind,
    HlaB1502Result,
    ImagingModality,
    ImagingSequence,
    SecondaryCause,
    TreatmentKind,
    TreatmentStatus,
)

TODAY = date(2025, 6, 15)
PROPERTIES = settings(max_examples=150, deadline=None)
MED = TreatmentKind.MEDICATION
TOXIN = TreatmentKind.BOTULINUM_TOXIN
MVD = TreatmentKind.MVD
LABELS = {MED: "Medication", TOXIN: "Botulinum toxin", MVD: "Microvascular decompression"}
_ids = itertools.count(1)


def ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def treatment(
    kind, started_on, *, status=None, drug="", outcome=None, current_on=None, diagnosis=HfsKind.PRIMARY
):
    n = next(_ids)
    if status is None:
        status = TreatmentStatus.ACTIVE if kind == MED else TreatmentStatus.COMPLETED
    return TreatmentFacts(
        id=n,
        uuid=f"treatment-{n}",
        kind=kind,
        status=status,
        started_on=started_on,
        diagnosis_kind=diagnosis,
        label=LABELS[kind],
        drug=drug,
        outcome=outcome,
        outcome_current_on=current_on,
    )


def course(started_on, drug=Drug.CARBAMAZEPINE, **fields):
    return treatment(MED, started_on, drug=drug, **fields)


def session(started_on, **fields):
    return treatment(TOXIN, started_on, **fields)


def surgery(started_on, **fields):
    return treatment(MVD, started_on, **fields)


def diagnosis(diagnosed_on, *, kind=HfsKind.PRIMARY, status=DiagnosisStatus.CONFIRMED, cause=""):
    return DiagnosisFacts(f"diagnosis-{next(_ids)}", kind, status, cause, diagnosed_on)


def grade(on, value):
    return GradeFacts(next(_ids), on, value)


def mri(*sequences, modality=ImagingModality.MRI):
    return StudyFacts(modality, frozenset(sequences))


def inputs(*treatments, **fields) -> FlagInputs:
    return FlagInputs(treatments=tuple(treatments), **fields)


def of(flags, code) -> list[Flag]:
    return [f for f in flags if f.code == code]


def flags(data: FlagInputs, today: date = TODAY, code=None) -> list[Flag]:
    found = flags_for(data, today=today)
    return found if code is None else of(found, code)


def consider(t, since_first, reached):
    return Flag(
        F.CONSIDER_MVD_EVALUATION,
        t.uuid,
        f"{t.label} since {since_first}, outcome {t.outcome}: "
        "consider evaluation for microvascular decompression.",
        reached,
    )


# --- botox_interval_short (section 4; v2: the latest pair only) -----------------------------------


@pytest.mark.parametrize(("gap", "flagged"), [(1, True), (83, True), (84, False), (120, False)])
def test_a_toxin_session_less_than_84_days_after_the_previous_one_is_flagged(gap, flagged):
    first = session(ago(300))
    latest = session(first.started_on + timedelta(days=gap))

    expected = Flag(
        F.BOTOX_INTERVAL_SHORT,
        latest.uuid,
        f"Toxin session of {latest.started_on} came {gap} days after the previous one "
        "(at least 84 expected).",
        latest.started_on,
    )
    assert flags(inputs(first, latest), code=F.BOTOX_INTERVAL_SHORT) == ([expected] if flagged else [])


def test_one_toxin_session_raises_no_interval_flag():
    assert flags(inputs(session(ago(10)))) == []


def test_an_old_short_pair_followed_by_a_normal_pair_raises_nothing():
    first = session(ago(300))
    short = session(ago(270))  # 30 days after the first: history, not a flag (v2)
    latest = session(ago(170))  # 100 days after the previous one

    assert flags(inputs(first, short, latest), code=F.BOTOX_INTERVAL_SHORT) == []


def test_a_short_latest_pair_after_normal_ones_is_flagged_with_the_latest_sessions_date():
    sessions = [session(ago(400)), session(ago(300)), session(ago(200)), session(ago(150))]

    [flag] = flags(inputs(*sessions), code=F.BOTOX_INTERVAL_SHORT)

    assert (flag.subject, flag.since) == (sessions[-1].uuid, ago(150))
    assert "came 50 days after the previous one" in flag.detail


def test_other_treatments_between_toxin_sessions_do_not_break_the_pair():
    first, latest = session(ago(100)), session(ago(60))
    data = inputs(
        first, course(ago(80), drug=Drug.CLONAZEPAM), surgery(ago(70), status=TreatmentStatus.STOPPED), latest
    )

    assert [(f.subject, f.since) for f in flags(data, code=F.BOTOX_INTERVAL_SHORT)] == [
        (latest.uuid, ago(60))
    ]


@st.composite
def toxin_histories(draw):
    """Older sessions at any gaps, then the latest pair at a gap around the 84-day edge."""
    older_gaps = draw(st.lists(st.integers(min_value=1, max_value=400), max_size=6))
    last_gap = draw(st.one_of(st.integers(min_value=1, max_value=200), st.sampled_from([83, 84])))
    on = ago(3000)
    older = []
    for gap in older_gaps:
        older.append(session(on))
        on += timedelta(days=gap)
    previous = session(on)
    latest = session(on + timedelta(days=last_gap))
    return older, previous, latest


@PROPERTIES
@given(toxin_histories())
def test_sessions_older_than_the_latest_pair_never_change_the_interval_flag(history):
    older, previous, latest = history

    with_history = flags(inputs(*older, previous, latest), code=F.BOTOX_INTERVAL_SHORT)

    assert with_history == flags(inputs(previous, latest), code=F.BOTOX_INTERVAL_SHORT)
    gap = (latest.started_on - previous.started_on).days
    assert [(f.subject, f.since) for f in with_history] == (
        [(latest.uuid, latest.started_on)] if gap < 84 else []
    )


# --- hla_b1502_missing (section 4) ----------------------------------------------------------------


def at_risk(*treatments, result=HlaB1502Result.NOT_TESTED, **fields):
    return inputs(*treatments, at_risk_hla_b1502=True, hla_b1502_result=result, **fields)


@pytest.mark.parametrize("status", [TreatmentStatus.ACTIVE, TreatmentStatus.PLANNED])
def test_carbamazepine_for_an_at_risk_patient_without_a_result_is_flagged_since_the_course_start(status):
    started = TODAY + timedelta(days=10) if status == TreatmentStatus.PLANNED else ago(5)
    c = course(started, status=status)

    assert flags(at_risk(c), code=F.HLA_B1502_MISSING) == [
        Flag(
            F.HLA_B1502_MISSING,
            c.uuid,
            f"Carbamazepine from {started} without an HLA-B*1502 result for a patient of at-risk ancestry.",
            started,
        )
    ]


@pytest.mark.parametrize(
    ("risk", "result", "drug", "status"),
    [
        (False, HlaB1502Result.NOT_TESTED, Drug.CARBAMAZEPINE, TreatmentStatus.ACTIVE),
        (True, HlaB1502Result.NEGATIVE, Drug.CARBAMAZEPINE, TreatmentStatus.ACTIVE),
        (True, HlaB1502Result.POSITIVE, Drug.CARBAMAZEPINE, TreatmentStatus.ACTIVE),
        (True, HlaB1502Result.NOT_TESTED, Drug.OXCARBAZEPINE, TreatmentStatus.ACTIVE),
        (True, HlaB1502Result.NOT_TESTED, Drug.CARBAMAZEPINE, TreatmentStatus.STOPPED),
        (True, HlaB1502Result.NOT_TESTED, Drug.CARBAMAZEPINE, TreatmentStatus.COMPLETED),
    ],
)
def test_no_hla_flag_without_all_of_its_conditions(risk, result, drug, status):
    data = inputs(course(ago(5), drug=drug, status=status), at_risk_hla_b1502=risk, hla_b1502_result=result)

    assert flags(data, code=F.HLA_B1502_MISSING) == []


# --- lab_monitoring_due (section 4) ---------------------------------------------------------------


def lab_due(c, since, test="Complete blood count", drug="carbamazepine"):
    return Flag(
        F.LAB_MONITORING_DUE, c.uuid, f"{test} due: none in the last 90 days of the {drug} course.", since
    )


def test_a_course_without_any_lab_is_due_since_its_start():
    c = course(ago(10))

    assert flags(inputs(c), code=F.LAB_MONITORING_DUE) == [lab_due(c, ago(10))]


@pytest.mark.parametrize(("taken_days_ago", "since"), [(0, None), (89, None), (90, None), (91, 0), (150, 59)])
def test_a_lab_covers_90_days_and_the_flag_counts_from_the_day_after(taken_days_ago, since):
    c = course(ago(300))
    data = inputs(c, labs=(LabFacts(LabTest.BLOOD_COUNT, ago(taken_days_ago)),))

    expected = [] if since is None else [lab_due(c, ago(since))]
    assert flags(data, code=F.LAB_MONITORING_DUE) == expected


def test_the_latest_lab_counts_and_a_lab_of_another_test_does_not():
    c = course(ago(300))
    labs = (
        LabFacts(LabTest.BLOOD_COUNT, ago(250)),
        LabFacts(LabTest.BLOOD_COUNT, ago(120)),
        LabFacts(LabTest.SODIUM, ago(3)),
    )

    assert flags(inputs(c, labs=labs), code=F.LAB_MONITORING_DUE) == [
        lab_due(c, ago(120) + timedelta(days=91))
    ]


def test_a_lab_before_the_course_counts_and_never_moves_since_before_the_start():
    started = ago(10)
    recent = LabFacts(LabTest.BLOOD_COUNT, ago(95))  # covered the course's first days
    long_ago = LabFacts(LabTest.BLOOD_COUNT, ago(400))

    assert flags(inputs(c := course(started), labs=(recent,)), code=F.LAB_MONITORING_DUE) == [
        lab_due(c, ago(4))
    ]
    assert flags(inputs(c, labs=(long_ago,)), code=F.LAB_MONITORING_DUE) == [lab_due(c, started)]


def test_a_lab_dated_after_the_day_judged_does_not_count():
    c = course(ago(300))
    data = inputs(c, labs=(LabFacts(LabTest.BLOOD_COUNT, ago(200)), LabFacts(LabTest.BLOOD_COUNT, ago(5))))

    # Judged 100 days ago, the lab of 5 days ago had not been taken.
    assert flags(data, today=ago(100), code=F.LAB_MONITORING_DUE) == [lab_due(c, ago(109))]
    assert flags(data, code=F.LAB_MONITORING_DUE) == []


def test_oxcarbazepine_needs_a_sodium_result_not_a_blood_count():
    c = course(ago(10), drug=Drug.OXCARBAZEPINE)
    blood_count = LabFacts(LabTest.BLOOD_COUNT, ago(1))

    assert flags(inputs(c, labs=(blood_count,)), code=F.LAB_MONITORING_DUE) == [
        lab_due(c, ago(10), test="Serum sodium", drug="oxcarbazepine")
    ]
    assert (
        flags(inputs(c, labs=(blood_count, LabFacts(LabTest.SODIUM, ago(1)))), code=F.LAB_MONITORING_DUE)
        == []
    )


@pytest.mark.parametrize(
    ("drug", "status", "started"),
    [
        (Drug.CLONAZEPAM, TreatmentStatus.ACTIVE, -10),
        (Drug.GABAPENTIN, TreatmentStatus.ACTIVE, -10),
        (Drug.CARBAMAZEPINE, TreatmentStatus.PLANNED, -10),
        (Drug.CARBAMAZEPINE, TreatmentStatus.PLANNED, 10),
        (Drug.CARBAMAZEPINE, TreatmentStatus.STOPPED, -10),
        (Drug.CARBAMAZEPINE, TreatmentStatus.COMPLETED, -10),
        (Drug.CARBAMAZEPINE, TreatmentStatus.ACTIVE, 1),
    ],
)
def test_only_an_active_course_of_a_monitored_drug_started_by_today_is_due(drug, status, started):
    data = inputs(course(TODAY + timedelta(days=started), drug=drug, status=status))

    assert flags(data, code=F.LAB_MONITORING_DUE) == []


def test_an_active_course_starting_today_is_due_today():
    c = course(TODAY)

    assert flags(inputs(c), code=F.LAB_MONITORING_DUE) == [lab_due(c, TODAY)]


@PROPERTIES
@given(
    started=st.integers(min_value=0, max_value=600),
    taken=st.lists(st.integers(min_value=-30, max_value=900), max_size=5),
)
def test_the_lab_flag_holds_exactly_without_a_lab_in_the_last_90_days_and_since_lies_in_the_course(
    started, taken
):
    c = course(ago(started))
    labs = tuple(LabFacts(LabTest.BLOOD_COUNT, ago(n)) for n in taken)

    found = flags(inputs(c, labs=labs), code=F.LAB_MONITORING_DUE)

    covered = any(0 <= n <= 90 for n in taken)
    assert bool(found) is not covered
    for flag in found:
        assert c.started_on <= flag.since <= TODAY


# --- consider_mvd_evaluation (section 8) ------------------------------------------------------------


@pytest.mark.parametrize(("days_on", "flagged"), [(89, False), (90, True), (200, True)])
def test_a_course_without_benefit_suggests_an_mvd_evaluation_from_its_90th_day(days_on, flagged):
    c = course(ago(days_on), drug=Drug.CLONAZEPAM, outcome=O.UNCHANGED)

    expected = [consider(c, ago(days_on), ago(days_on) + timedelta(days=90))]
    assert flags(inputs(c), code=F.CONSIDER_MVD_EVALUATION) == (expected if flagged else [])


def test_the_flag_turns_on_by_the_calendar_with_since_the_90th_day():
    c = course(ago(89), drug=Drug.CLONAZEPAM, outcome=O.WORSE)

    assert flags(inputs(c), code=F.CONSIDER_MVD_EVALUATION) == []
    assert flags(inputs(c), today=TODAY + timedelta(days=1), code=F.CONSIDER_MVD_EVALUATION) == [
        consider(c, ago(89), TODAY + timedelta(days=1))
    ]
    # Computed a month later, the fact is still the day the course reached 90 days.
    assert flags(inputs(c), today=TODAY + timedelta(days=30), code=F.CONSIDER_MVD_EVALUATION) == [
        consider(c, ago(89), TODAY + timedelta(days=1))
    ]


@pytest.mark.parametrize(
    ("outcome", "flagged"),
    [
        (O.UNCHANGED, True),
        (O.WORSE, True),
        (O.IMPROVED, False),
        (O.CURED, False),
        (O.INSUFFICIENT_DATA, False),
        (O.RECURRENCE, False),
        (None, False),
    ],
)
def test_only_an_unchanged_or_worse_outcome_suggests_an_mvd_evaluation(outcome, flagged):
    c = course(ago(120), drug=Drug.CLONAZEPAM, outcome=outcome)

    assert bool(flags(inputs(c), code=F.CONSIDER_MVD_EVALUATION)) is flagged


def test_no_mvd_suggestion_for_secondary_hfs():
    c = course(ago(120), drug=Drug.CLONAZEPAM, outcome=O.UNCHANGED, diagnosis=HfsKind.SECONDARY)
    s = session(ago(120), outcome=O.UNCHANGED, diagnosis=HfsKind.SECONDARY)

    assert flags(inputs(c, s), code=F.CONSIDER_MVD_EVALUATION) == []


@pytest.mark.parametrize(
    "status", [TreatmentStatus.PLANNED, TreatmentStatus.STOPPED, TreatmentStatus.COMPLETED]
)
def test_only_an_active_course_suggests_an_mvd_evaluation(status):
    c = course(ago(120), drug=Drug.CLONAZEPAM, outcome=O.UNCHANGED, status=status)

    assert flags(inputs(c), code=F.CONSIDER_MVD_EVALUATION) == []


def test_a_toxin_series_counts_from_its_first_session_and_is_judged_by_the_latest():
    first = session(ago(200), outcome=O.IMPROVED)
    latest = session(ago(30), outcome=O.UNCHANGED)

    assert flags(inputs(first, latest), code=F.CONSIDER_MVD_EVALUATION) == [
        consider(latest, ago(200), ago(110))
    ]
    # The latest session helped: nothing, whatever the earlier ones did.
    helped = session(ago(30), outcome=O.IMPROVED)
    assert flags(inputs(session(ago(200), outcome=O.UNCHANGED), helped), code=F.CONSIDER_MVD_EVALUATION) == []


def test_a_toxin_series_younger_than_90_days_waits():
    first, latest = session(ago(80)), session(ago(10), outcome=O.WORSE)

    assert flags(inputs(first, latest), code=F.CONSIDER_MVD_EVALUATION) == []
    assert flags(inputs(first, latest), today=TODAY + timedelta(days=10), code=F.CONSIDER_MVD_EVALUATION) == [
        consider(latest, ago(80), TODAY + timedelta(days=10))
    ]


def test_a_stopped_latest_toxin_session_ends_the_series():
    first = session(ago(200))
    latest = session(ago(30), outcome=O.UNCHANGED, status=TreatmentStatus.STOPPED)

    assert flags(inputs(first, latest), code=F.CONSIDER_MVD_EVALUATION) == []


def test_a_course_and_a_toxin_series_each_suggest_an_mvd_evaluation():
    c = course(ago(150), drug=Drug.CLONAZEPAM, outcome=O.WORSE)
    s = session(ago(100), outcome=O.UNCHANGED)

    assert flags(inputs(c, s), code=F.CONSIDER_MVD_EVALUATION) == [
        consider(c, ago(150), ago(60)),
        consider(s, ago(100), ago(10)),
    ]


@pytest.mark.parametrize(
    ("mvd_status", "suppressed"),
    [
        (TreatmentStatus.PLANNED, True),
        (TreatmentStatus.ACTIVE, True),
        (TreatmentStatus.COMPLETED, True),
        (TreatmentStatus.STOPPED, False),
    ],
)
def test_an_mvd_planned_under_way_or_done_means_the_evaluation_has_happened(mvd_status, suppressed):
    c = course(ago(150), drug=Drug.CLONAZEPAM, outcome=O.UNCHANGED)
    s = session(ago(100), outcome=O.WORSE)
    # Before or after the treatments, the MVD's date does not matter: it is recorded (v2).
    for on in (ago(300), TODAY + timedelta(days=30)):
        data = (
            inputs(surgery(on, status=mvd_status), c, s)
            if on < TODAY
            else inputs(c, s, surgery(on, status=mvd_status))
        )

        found = flags(data, code=F.CONSIDER_MVD_EVALUATION)

        assert found == (
            [] if suppressed else [consider(c, ago(150), ago(60)), consider(s, ago(100), ago(10))]
        )


@PROPERTIES
@given(
    st.lists(
        st.tuples(
            st.sampled_from([MED, TOXIN]),
            st.integers(min_value=0, max_value=700),
            st.sampled_from([None, *O.values]),
            st.sampled_from([TreatmentStatus.ACTIVE, TreatmentStatus.COMPLETED, TreatmentStatus.STOPPED]),
        ),
        max_size=6,
    ),
    st.sampled_from([TreatmentStatus.PLANNED, TreatmentStatus.ACTIVE, TreatmentStatus.COMPLETED]),
)
def test_no_mvd_suggestion_ever_once_an_mvd_is_recorded(rows, mvd_status):
    treatments = sorted(
        (treatment(kind, ago(n), outcome=outcome, status=status) for kind, n, outcome, status in rows),
        key=lambda t: t.started_on,
    )

    assert (
        flags(inputs(*treatments, surgery(ago(1), status=mvd_status)), code=F.CONSIDER_MVD_EVALUATION) == []
    )


# --- imaging_missing and secondary_cause_unconfirmed (section 8) ------------------------------------


IMAGING_MISSING = "Confirmed diagnosis without an MRI that includes a CISS or FIESTA sequence."


def test_a_confirmed_diagnosis_without_a_high_resolution_mri_is_flagged_since_its_diagnosis():
    d = diagnosis(ago(30))

    assert flags(inputs(diagnoses=(d,))) == [Flag(F.IMAGING_MISSING, d.uuid, IMAGING_MISSING, ago(30))]


@pytest.mark.parametrize(
    ("studies", "flagged"),
    [
        ((), True),
        ((mri(ImagingSequence.ROUTINE_T2, ImagingSequence.TOF_MRA),), True),
        ((mri(ImagingSequence.CISS, modality=ImagingModality.MRA),), True),
        ((mri(ImagingSequence.FIESTA, modality=ImagingModality.CT),), True),
        ((mri(ImagingSequence.CISS),), False),
        ((mri(ImagingSequence.FIESTA, ImagingSequence.ROUTINE_T2),), False),
        ((mri(ImagingSequence.ROUTINE_T2), mri(ImagingSequence.CISS)), False),
    ],
)
def test_an_mri_with_ciss_or_fiesta_satisfies_the_imaging_flag(studies, flagged):
    data = inputs(diagnoses=(diagnosis(ago(30)),), studies=studies)

    assert bool(flags(data, code=F.IMAGING_MISSING)) is flagged


@pytest.mark.parametrize("status", [DiagnosisStatus.PROVISIONAL, DiagnosisStatus.REFUTED])
def test_only_a_confirmed_diagnosis_asks_for_imaging(status):
    assert flags(inputs(diagnoses=(diagnosis(ago(30), status=status),)), code=F.IMAGING_MISSING) == []


def test_each_confirmed_diagnosis_carries_its_own_imaging_flag():
    older, newer = diagnosis(ago(400)), diagnosis(ago(20))

    assert [
        (f.subject, f.since) for f in flags(inputs(diagnoses=(older, newer)), code=F.IMAGING_MISSING)
    ] == [
        (older.uuid, ago(400)),
        (newer.uuid, ago(20)),
    ]


def secondary(cause=SecondaryCause.CPA_TUMOR, status=DiagnosisStatus.PROVISIONAL):
    return diagnosis(ago(5), kind=HfsKind.SECONDARY, status=status, cause=cause)


@pytest.mark.parametrize(
    ("cause", "studies", "reason"),
    [
        (SecondaryCause.CPA_TUMOR, (), "no imaging"),
        (SecondaryCause.OTHER, (), "no imaging"),
        (SecondaryCause.OTHER, (mri(ImagingSequence.CISS),), "cause recorded as 'other'"),
        (SecondaryCause.OTHER, (mri(modality=ImagingModality.CT),), "cause recorded as 'other'"),
        (SecondaryCause.CPA_TUMOR, (mri(modality=ImagingModality.CT),), None),
        (SecondaryCause.POST_PARALYTIC, (mri(ImagingSequence.ROUTINE_T2),), None),
    ],
)
def test_a_secondary_diagnosis_without_imaging_or_with_cause_other_is_unconfirmed(cause, studies, reason):
    d = secondary(cause)

    expected = [Flag(F.SECONDARY_CAUSE_UNCONFIRMED, d.uuid, f"Secondary diagnosis with {reason}.", ago(5))]
    assert flags(inputs(diagnoses=(d,), studies=studies)) == (expected if reason else [])


def test_a_primary_diagnosis_is_never_secondary_unconfirmed():
    assert flags(inputs(diagnoses=(diagnosis(ago(5)),)), code=F.SECONDARY_CAUSE_UNCONFIRMED) == []


def test_a_confirmed_secondary_diagnosis_without_imaging_carries_both_flags_since_its_diagnosis():
    d = secondary(status=DiagnosisStatus.CONFIRMED)

    assert {(f.code, f.subject, f.since) for f in flags(inputs(diagnoses=(d,)))} == {
        (F.IMAGING_MISSING, d.uuid, ago(5)),
        (F.SECONDARY_CAUSE_UNCONFIRMED, d.uuid, ago(5)),
    }


# --- recurrence_after_mvd and facial_palsy_after_mvd (section 8) -----------------------------------


def test_a_recurrence_after_mvd_is_flagged_since_the_current_log():
    s = surgery(ago(200), outcome=O.RECURRENCE, current_on=ago(3))

    assert flags(inputs(s)) == [
        Flag(F.RECURRENCE_AFTER_MVD, s.uuid, f"Recurrence after the MVD of {ago(200)}.", ago(3))
    ]


@pytest.mark.parametrize("outcome", [O.CURED, O.DELAYED_CURE, O.FAILURE, O.UNCHANGED, O.IMPROVED, None])
def test_no_recurrence_flag_for_another_outcome(outcome):
    assert flags(inputs(surgery(ago(200), outcome=outcome, current_on=ago(3)))) == []


def test_a_stopped_mvd_raises_no_mvd_flag():
    s = surgery(ago(200), outcome=O.RECURRENCE, current_on=ago(3), status=TreatmentStatus.STOPPED)

    assert flags(inputs(s, graded=(grade(ago(190), 4),))) == []


def palsy(s, graded_on, value):
    return Flag(
        F.FACIAL_PALSY_AFTER_MVD,
        s.uuid,
        f"House-Brackmann grade {value} on {graded_on} after the MVD of {s.started_on}.",
        graded_on,
    )


@pytest.mark.parametrize(("value", "flagged"), [(1, False), (2, True), (3, True), (6, True)])
def test_a_house_brackmann_grade_of_two_or_worse_after_mvd_is_a_palsy_since_the_grade(value, flagged):
    s = surgery(ago(20))

    found = flags(inputs(s, graded=(grade(ago(5), value),)))

    assert found == ([palsy(s, ago(5), value)] if flagged else [])


def test_the_latest_grade_after_the_surgery_decides():
    s = surgery(ago(60))
    before = grade(ago(61), 5)
    on_the_day = grade(ago(60), 4)

    assert flags(inputs(s, graded=(before, on_the_day))) == []
    assert flags(inputs(s, graded=(before, grade(ago(40), 3), grade(ago(10), 1)))) == []
    assert flags(inputs(s, graded=(grade(ago(40), 1), grade(ago(10), 2)))) == [palsy(s, ago(10), 2)]
    # The order the grades come in does not matter; a later one moves since.
    assert flags(inputs(s, graded=(grade(ago(2), 4), grade(ago(40), 3)))) == [palsy(s, ago(2), 4)]


def test_two_grades_of_one_day_are_ordered_by_their_record():
    s = surgery(ago(60))

    assert flags(inputs(s, graded=(GradeFacts(1, ago(5), 3), GradeFacts(2, ago(5), 1)))) == []
    assert flags(inputs(s, graded=(GradeFacts(1, ago(5), 1), GradeFacts(2, ago(5), 3)))) == [
        palsy(s, ago(5), 3)
    ]


def test_a_grade_after_a_redo_belongs_to_the_redo():
    first, redo = surgery(ago(400)), surgery(ago(20))

    assert flags(inputs(first, redo, graded=(grade(ago(5), 3),))) == [palsy(redo, ago(5), 3)]


def test_a_grade_before_a_redo_stays_with_the_first_surgery():
    first, redo = surgery(ago(400)), surgery(ago(20))
    graded = (grade(ago(300), 2), grade(ago(5), 1))

    assert flags(inputs(first, redo, graded=graded)) == [palsy(first, ago(300), 2)]


def test_a_planned_redo_ahead_takes_no_grade_and_a_stopped_one_does_not_split_them():
    first = surgery(ago(400))
    graded = (grade(ago(300), 2),)

    planned = surgery(TODAY + timedelta(days=20), status=TreatmentStatus.PLANNED)
    assert flags(inputs(first, planned, graded=graded)) == [palsy(first, ago(300), 2)]
    stopped = surgery(ago(350), status=TreatmentStatus.STOPPED)
    assert flags(inputs(first, stopped, graded=graded)) == [palsy(first, ago(300), 2)]


# --- overdue_follow_up (section 8) ------------------------------------------------------------------


def test_an_overdue_visit_is_flagged_since_its_window_closed():
    missed = OverdueVisitFacts("visit-1", "Toxin review", "Missed", ago(12))
    lapsed = OverdueVisitFacts("visit-2", "Untreated review", "Planned", ago(3))

    assert flags(inputs(overdue=(missed, lapsed))) == [
        Flag(F.OVERDUE_FOLLOW_UP, "visit-1", f"Toxin review: missed, window closed on {ago(12)}.", ago(12)),
        Flag(
            F.OVERDUE_FOLLOW_UP, "visit-2", f"Untreated review: planned, window closed on {ago(3)}.", ago(3)
        ),
    ]


# --- archived patients, and everything at once ------------------------------------------------------


def everything() -> FlagInputs:
    c = course(ago(200), outcome=O.UNCHANGED)
    return FlagInputs(
        at_risk_hla_b1502=True,
        treatments=(
            c,
            session(ago(150)),
            session(ago(100), outcome=O.WORSE),
            surgery(ago(60), status=TreatmentStatus.STOPPED, outcome=O.RECURRENCE),
        ),
        diagnoses=(secondary(SecondaryCause.OTHER, status=DiagnosisStatus.CONFIRMED),),
        graded=(grade(ago(50), 4),),
        overdue=(OverdueVisitFacts("visit-1", "Review", "Missed", ago(12)),),
    )


def test_every_rule_speaks_in_one_call():
    assert {f.code for f in flags(everything())} == {
        F.BOTOX_INTERVAL_SHORT,
        F.HLA_B1502_MISSING,
        F.LAB_MONITORING_DUE,
        F.CONSIDER_MVD_EVALUATION,
        F.IMAGING_MISSING,
        F.SECONDARY_CAUSE_UNCONFIRMED,
        F.OVERDUE_FOLLOW_UP,
    }
    mvd = surgery(ago(60), outcome=O.RECURRENCE, current_on=ago(2))
    assert {f.code for f in flags(inputs(mvd, graded=(grade(ago(50), 3),)))} == {
        F.RECURRENCE_AFTER_MVD,
        F.FACIAL_PALSY_AFTER_MVD,
    }


def test_an_archived_patient_has_no_flags():
    data = everything()

    assert flags(FlagInputs(**{**data.__dict__, "archived": True})) == []
    assert flags(FlagInputs(archived=True)) == []


def test_a_stopped_toxin_session_was_not_given_and_raises_no_interval_flag():
    first = session(ago(100))
    stopped = session(ago(40), status=TreatmentStatus.STOPPED)

    assert flags(inputs(first, stopped)) == []
    given_too_soon = session(ago(40))
    assert [f.code for f in flags(inputs(first, given_too_soon))] == [F.BOTOX_INTERVAL_SHORT]
