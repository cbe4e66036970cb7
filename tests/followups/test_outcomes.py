"""The outcome of a treatment episode (DOMAIN.md section 7, rule version 2), rule by rule and boundary
by boundary, through the pure function alone: no database.

Every log is written as ``log(day, ...)`` where ``day`` counts from the treatment's start (or surgery)
date T0, so each boundary of the text reads off the test: day 0 is T0, day -180 the edge of the baseline
lookback, day 7 / 8 the delayed-cure edge after MVD, day 364 / 365 the MVD failure edge, days 6 / 7 and
42 / 43 the edges of a toxin session's peak. Other treatments' starts and end dates are ``day(n)``.
"""

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest

from followups import outcomes
from followups.codes import OutcomeCategory as C
from followups.codes import SorianoBaron as SB
from followups.outcomes import SymptomLog, episode_last_day, outcome_for_treatment, pct_improvement
from patients.codes import TreatmentKind

T0 = date(2024, 1, 15)
MVD = TreatmentKind.MVD
MEDICATION = TreatmentKind.MEDICATION
TOXIN = TreatmentKind.BOTULINUM_TOXIN
OTHER = TreatmentKind.OTHER
NOT_MVD = [MEDICATION, TOXIN, OTHER]
_ids = itertools.count(1)


def day(n):
    """The date ``n`` days after T0."""
    return T0 + timedelta(days=n)


def log(day, spasms=None, grade=None, duration=None, hfs7=None):
    """A symptom log ``day`` days after T0 (negative: before it)."""
    return SymptomLog(
        id=next(_ids),
        on=T0 + timedelta(days=day),
        spasms_per_day=None if spasms is None else Decimal(str(spasms)),
        episode_duration_seconds=None if duration is None else Decimal(str(duration)),
        cohen_albert_grade=grade,
        hfs7_total=hfs7,
    )


def outcome(*logs, mvd=False, kind=None, starts=(), ended_on=None, wore_off_on=None):
    """The outcome of a treatment started on T0: an MVD with ``mvd``, else an open medication course
    unless ``kind`` says otherwise; ``starts`` are the patient's other treatments' start dates."""
    return outcome_for_treatment(
        kind=kind or (MVD if mvd else MEDICATION),
        started_on=T0,
        logs=logs,
        other_starts=starts,
        ended_on=ended_on,
        wore_off_on=wore_off_on,
    )


def category(*logs, **treatment):
    return outcome(*logs, **treatment).category


# --- the thresholds are those of the text -------------------------------------------------------


def test_the_thresholds_are_those_of_domain_section_7():
    thresholds = {
        "rule version": outcomes.RULE_VERSION,
        "baseline lookback (days)": outcomes.BASELINE_LOOKBACK_DAYS,
        "worse: spasms up (%)": outcomes.WORSE_SPASMS_UP_PCT,
        "improved: spasms down (%)": outcomes.IMPROVED_SPASMS_DOWN_PCT,
        "delayed cure after (days)": outcomes.DELAYED_CURE_AFTER_DAYS,
        "failure after (days)": outcomes.FAILURE_AFTER_DAYS,
        "HFS-7 MCID": outcomes.HFS7_MCID,
        "toxin peak from (day)": outcomes.TOXIN_PEAK_FROM_DAY,
        "toxin peak to (day)": outcomes.TOXIN_PEAK_TO_DAY,
    }
    assert thresholds == {
        "rule version": 2,
        "baseline lookback (days)": 180,
        "worse: spasms up (%)": 25,
        "improved: spasms down (%)": 50,
        "delayed cure after (days)": 7,
        "failure after (days)": 365,
        "HFS-7 MCID": Decimal("2.63"),
        "toxin peak from (day)": 7,
        "toxin peak to (day)": 42,
    }
    assert outcome(log(-10, spasms=10), log(30, spasms=10)).rule_version == 2


# --- baseline and current -----------------------------------------------------------------------


def test_the_baseline_is_the_latest_log_on_or_before_t0_and_current_the_latest_after_it():
    older, baseline = log(-100, spasms=40), log(-5, spasms=10)
    first, current = log(30, spasms=2), log(90, spasms=5)

    result = outcome(current, older, first, baseline)

    assert (result.baseline, result.current) == (baseline, current)
    assert result.spasms_per_day_change_pct == 50
    assert result.category == C.IMPROVED


def test_a_log_on_t0_is_the_baseline_not_the_current_log():
    earlier, on_t0 = log(-20, spasms=40), log(0, spasms=10)

    alone = outcome(earlier, on_t0)
    assert (alone.category, alone.baseline, alone.current) == (C.INSUFFICIENT_DATA, on_t0, None)

    after = log(1, spasms=5)
    result = outcome(earlier, on_t0, after)
    assert (result.baseline, result.current) == (on_t0, after)
    assert result.spasms_per_day_change_pct == 50


def test_the_baseline_looks_back_180_days_and_not_181():
    after = log(30, spasms=10)

    at_180 = log(-180, spasms=20)
    result = outcome(at_180, after)
    assert (result.category, result.baseline) == (C.IMPROVED, at_180)

    at_181 = log(-181, spasms=20)
    result = outcome(at_181, after)
    assert (result.category, result.baseline, result.current) == (C.INSUFFICIENT_DATA, None, after)


@pytest.mark.parametrize(
    "logs",
    [
        pytest.param([], id="no logs at all"),
        pytest.param([log(-10, spasms=10)], id="a baseline and nothing after t0"),
        pytest.param([log(-10, spasms=10), log(0, spasms=0)], id="a baseline and a log on t0"),
        pytest.param([log(30, spasms=0), log(90, spasms=3)], id="logs after t0 and no baseline"),
        pytest.param([log(-181, spasms=10), log(30, spasms=30)], id="the only earlier log is too old"),
    ],
)
@pytest.mark.parametrize("kind", [MVD, *NOT_MVD])
def test_insufficient_data_without_a_baseline_or_without_a_log_after_t0(logs, kind):
    result = outcome(*logs, kind=kind)

    assert result.category == C.INSUFFICIENT_DATA
    assert result.spasms_per_day_change_pct is None
    assert result.grade_change is None
    assert result.soriano_baron == ""


def test_an_assessment_without_a_count_or_a_grade_is_not_a_symptom_log():
    # Quality of life alone (or a duration alone) says nothing about spasms: it is neither the
    # baseline nor the current log.
    baseline, current = log(-10, spasms=10), log(30, spasms=4)
    qol_only, duration_only = log(-2, hfs7=12), log(60, duration=3)

    result = outcome(baseline, qol_only, current, duration_only)

    assert (result.baseline, result.current) == (baseline, current)
    assert outcome(baseline, qol_only, duration_only).category == C.INSUFFICIENT_DATA


def test_an_assessment_without_a_count_or_a_grade_is_not_spasm_free():
    assert not log(30).spasm_free
    assert not log(30, duration=0, hfs7=0).spasm_free


def test_two_logs_on_the_same_day_the_one_recorded_last_is_the_latest():
    baseline = log(-10, spasms=10)
    first, second = log(30, spasms=1), log(30, spasms=0)

    result = outcome(second, baseline, first)

    assert result.current == second
    assert result.category == C.CURED


# --- change -------------------------------------------------------------------------------------


def test_change_in_spasms_duration_and_grade():
    result = outcome(log(-10, spasms=10, duration=20, grade=3), log(60, spasms=4, duration=5, grade=1))

    assert result.spasms_per_day_change_pct == 60
    assert result.duration_change_pct == 75
    assert result.grade_change == 2


def test_a_rise_is_a_negative_change_and_fractions_are_kept():
    result = outcome(log(-10, spasms=3, duration=10, grade=1), log(60, spasms=2, duration=15, grade=3))

    assert result.spasms_per_day_change_pct == (Decimal(1) / 3) * 100
    assert result.duration_change_pct == -50
    assert result.grade_change == -2


@pytest.mark.parametrize(
    ("baseline", "current", "expected"),
    [
        (Decimal(10), Decimal(4), Decimal(60)),
        (Decimal(8), Decimal(10), Decimal(-25)),
        (Decimal(10), Decimal(0), Decimal(100)),
        (Decimal(0), Decimal(5), None),
        (Decimal(0), Decimal(0), None),
        (None, Decimal(5), None),
        (Decimal(5), None, None),
    ],
)
def test_pct_improvement(baseline, current, expected):
    assert pct_improvement(baseline, current) == expected


def test_a_zero_baseline_leaves_the_change_undefined_so_only_the_grade_decides():
    # Baseline spasm-free (0/day), now 20 a day: no percentage, so no "worse" from the count...
    result = outcome(log(-10, spasms=0, duration=0, grade=1), log(60, spasms=20, duration=5, grade=1))
    assert (result.spasms_per_day_change_pct, result.duration_change_pct) == (None, None)
    assert result.category == C.UNCHANGED

    # ...while a grade one step up is.
    assert category(log(-10, spasms=0, grade=1), log(60, spasms=20, grade=2)) == C.WORSE
    assert category(log(-10, spasms=0, grade=2), log(60, spasms=20, grade=1)) == C.IMPROVED


def test_a_missing_count_or_grade_leaves_its_change_undefined():
    result = outcome(log(-10, spasms=10, grade=3), log(60, grade=3))
    assert (result.spasms_per_day_change_pct, result.grade_change, result.category) == (None, 0, C.UNCHANGED)

    result = outcome(log(-10, grade=3), log(60, spasms=10, grade=2))
    assert (result.spasms_per_day_change_pct, result.grade_change, result.category) == (None, 1, C.IMPROVED)

    result = outcome(log(-10, spasms=10), log(60, grade=2))
    assert (result.spasms_per_day_change_pct, result.grade_change, result.category) == (
        None,
        None,
        C.UNCHANGED,
    )


# --- spasm-free ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spasms", "grade", "free"),
    [
        (0, None, True),
        (0, 2, True),  # the count decides when it is there
        ("0.00", 3, True),
        ("0.01", 0, False),
        (1, 0, False),
        (None, 0, True),  # no count: Cohen-Albert grade 0
        (None, 1, False),
    ],
)
def test_spasm_free_is_no_spasm_a_day_or_grade_0_when_the_count_is_missing(spasms, grade, free):
    current = log(60, spasms=spasms, grade=grade)
    assert current.spasm_free is free
    assert (category(log(-10, spasms=10, grade=4), current) == C.CURED) is free


# --- rule 2: recurrence -------------------------------------------------------------------------


def test_recurrence_when_an_earlier_log_after_t0_was_spasm_free_and_the_current_one_is_not():
    result = outcome(log(-10, spasms=10), log(30, spasms=0), log(90, spasms=3), mvd=True)

    assert result.category == C.RECURRENCE
    assert result.soriano_baron == SB.RECURRENCE
    assert result.days_to_spasm_free == 30
    assert result.spasms_per_day_change_pct == 70


def test_recurrence_comes_before_worse_and_improved():
    assert (
        category(log(-10, spasms=10, grade=2), log(30, spasms=0), log(90, spasms=50, grade=4)) == C.RECURRENCE
    )
    assert (
        category(log(-10, spasms=10, grade=3), log(30, spasms=0), log(90, spasms=1, grade=1)) == C.RECURRENCE
    )


def test_recurrence_counts_an_earlier_spasm_free_grade_0_without_a_count():
    assert category(log(-10, spasms=10), log(30, grade=0), log(90, grade=1)) == C.RECURRENCE


def test_a_spasm_free_baseline_is_not_an_earlier_log_after_t0():
    assert category(log(-10, spasms=0, grade=1), log(90, spasms=3, grade=1)) == C.UNCHANGED
    assert category(log(-10, spasms=0), log(0, spasms=0), log(90, spasms=3)) == C.UNCHANGED


def test_spasm_free_again_after_a_relapse_is_cured_not_recurrence():
    assert category(log(-10, spasms=10), log(30, spasms=0), log(60, spasms=2), log(90, spasms=0)) == C.CURED


@pytest.mark.parametrize("kind", [MVD, *NOT_MVD])
def test_recurrence_is_reported_for_any_kind_of_treatment(kind):
    # Inside a toxin session's peak (days 7-42) for every kind alike.
    result = outcome(log(-10, spasms=10), log(10, spasms=0), log(40, spasms=3), kind=kind)
    assert result.category == C.RECURRENCE
    assert result.soriano_baron == (SB.RECURRENCE if kind == MVD else "")


# --- rule 3: cured and delayed cure -------------------------------------------------------------


def test_cured_when_the_current_log_is_spasm_free():
    result = outcome(log(-10, spasms=10, grade=3), log(200, spasms=0, grade=0))

    assert result.category == C.CURED
    assert result.spasms_per_day_change_pct == 100
    assert result.grade_change == 3
    assert result.days_to_spasm_free == 200


def test_cured_when_spasm_free_by_grade_0_without_a_count():
    assert category(log(-10, grade=3), log(30, grade=0)) == C.CURED


def test_cured_even_when_the_count_is_free_but_the_grade_went_up():
    # Rule 3 comes before rule 4; the count decides spasm-free when it is there.
    assert category(log(-10, spasms=10, grade=1), log(30, spasms=0, grade=2)) == C.CURED


def test_mvd_spasm_free_7_days_after_surgery_is_cured_and_8_days_after_is_delayed_cure():
    assert category(log(-10, spasms=10), log(7, spasms=0), mvd=True) == C.CURED
    assert category(log(-10, spasms=10), log(8, spasms=0), mvd=True) == C.DELAYED_CURE


def test_delayed_cure_looks_at_the_first_spasm_free_log_not_the_current_one():
    assert category(log(-10, spasms=10), log(2, spasms=0), log(400, spasms=0), mvd=True) == C.CURED
    assert category(
        log(-10, spasms=10), log(2, spasms=3), log(8, spasms=0), log(400, spasms=0), mvd=True
    ) == (C.DELAYED_CURE)


def test_the_first_spasm_free_log_counts_even_when_spasms_came_back_between():
    logs = (log(-10, spasms=10), log(3, spasms=0), log(20, spasms=4), log(60, spasms=0))
    result = outcome(*logs, mvd=True)
    assert (result.category, result.days_to_spasm_free) == (C.CURED, 3)


def test_a_spasm_free_log_on_the_day_of_surgery_is_baseline_not_cure():
    result = outcome(log(-10, spasms=10), log(0, spasms=0), log(30, spasms=0), mvd=True)
    assert (result.category, result.days_to_spasm_free) == (C.DELAYED_CURE, 30)


@pytest.mark.parametrize(
    ("kind", "days"),
    [*((kind, days) for kind in (MEDICATION, OTHER) for days in (1, 8, 200, 800)), (TOXIN, 8), (TOXIN, 42)],
)
def test_never_delayed_cure_for_a_treatment_other_than_mvd(kind, days):
    assert category(log(-10, spasms=10), log(days, spasms=0), kind=kind) == C.CURED


# --- rule 4: worse ------------------------------------------------------------------------------


def test_worse_when_spasms_rise_by_exactly_25_pct():
    result = outcome(log(-10, spasms=100), log(60, spasms=125))
    assert (result.category, result.spasms_per_day_change_pct) == (C.WORSE, -25)
    assert category(log(-10, spasms=8), log(60, spasms=10)) == C.WORSE


def test_not_worse_when_spasms_rise_by_just_under_25_pct():
    result = outcome(log(-10, spasms=100), log(60, spasms="124.99"))
    assert (result.category, result.spasms_per_day_change_pct) == (C.UNCHANGED, Decimal("-24.99"))


def test_worse_when_the_grade_rises_by_one():
    result = outcome(log(-10, spasms=10, grade=2), log(60, spasms=10, grade=3))
    assert (result.category, result.grade_change) == (C.WORSE, -1)


def test_worse_comes_before_improved_spasms_down_60_pct_but_grade_up_one():
    result = outcome(log(-10, spasms=10, grade=2), log(60, spasms=4, grade=3))
    assert (result.spasms_per_day_change_pct, result.grade_change) == (60, -1)
    assert result.category == C.WORSE


def test_worse_comes_before_improved_spasms_up_25_pct_but_grade_down_one():
    assert category(log(-10, spasms=8, grade=3), log(60, spasms=10, grade=2)) == C.WORSE


def test_worse_after_a_year_of_mvd_is_worse_not_failure():
    assert category(log(-10, spasms=8), log(400, spasms=10), mvd=True) == C.WORSE


# --- rule 5: improved ---------------------------------------------------------------------------


def test_improved_when_spasms_fall_by_exactly_50_pct():
    result = outcome(log(-10, spasms=100), log(60, spasms=50))
    assert (result.category, result.spasms_per_day_change_pct) == (C.IMPROVED, 50)
    assert category(log(-10, spasms=7), log(60, spasms="3.5")) == C.IMPROVED


def test_not_improved_when_spasms_fall_by_just_under_50_pct():
    result = outcome(log(-10, spasms=100), log(60, spasms="50.01"))
    assert (result.category, result.spasms_per_day_change_pct) == (C.UNCHANGED, Decimal("49.99"))


def test_improved_when_the_grade_falls_by_one():
    result = outcome(log(-10, spasms=10, grade=3), log(60, spasms=9, grade=2))
    assert (result.category, result.grade_change) == (C.IMPROVED, 1)


def test_a_shorter_episode_alone_is_not_improved():
    result = outcome(log(-10, spasms=10, duration=60, grade=2), log(60, spasms=9, duration=6, grade=2))
    assert result.duration_change_pct == 90
    assert result.category == C.UNCHANGED


def test_improved_after_a_year_of_mvd_is_improved_not_failure():
    assert category(log(-10, spasms=10), log(400, spasms=5), mvd=True) == C.IMPROVED


# --- rule 6: failure ----------------------------------------------------------------------------


def test_mvd_unchanged_365_days_after_surgery_is_failure_and_364_days_is_unchanged():
    assert category(log(-10, spasms=10), log(365, spasms=10), mvd=True) == C.FAILURE
    assert category(log(-10, spasms=10), log(364, spasms=10), mvd=True) == C.UNCHANGED


def test_failure_looks_at_the_current_log_only():
    # A good spell in the first year does not count: the current log is a year on and unchanged.
    assert category(log(-10, spasms=10), log(200, spasms=2), log(365, spasms=9), mvd=True) == C.FAILURE


@pytest.mark.parametrize("kind", [MEDICATION, OTHER])
@pytest.mark.parametrize("days", [365, 800])
def test_no_failure_for_a_treatment_other_than_mvd(kind, days):
    assert category(log(-10, spasms=10), log(days, spasms=10), kind=kind) == C.UNCHANGED


# --- rule 7: unchanged --------------------------------------------------------------------------


def test_unchanged_between_the_thresholds():
    result = outcome(log(-10, spasms=10, grade=2), log(60, spasms=12, grade=2))
    assert (result.category, result.spasms_per_day_change_pct, result.grade_change) == (C.UNCHANGED, -20, 0)


# --- Soriano-Baron grade (MVD only) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spasms", "grade", "expected"),
    [
        (0, None, SB.EXCELLENT),
        (None, 0, SB.EXCELLENT),
        ("0.5", None, SB.GOOD),
        (1, None, SB.GOOD),
        (2, None, SB.GOOD),
        ("2.01", None, SB.BAD),
        (3, None, SB.BAD),
        (40, 4, SB.BAD),
        (None, 2, ""),  # no count: between good and bad nothing decides
    ],
)
def test_soriano_baron_grade_of_the_current_log(spasms, grade, expected):
    result = outcome(log(-10, spasms=20, grade=3), log(60, spasms=spasms, grade=grade), mvd=True)
    assert result.soriano_baron == expected


def test_soriano_baron_recurrence_whatever_the_count():
    result = outcome(log(-10, spasms=20), log(30, spasms=0), log(90, spasms=1), mvd=True)
    assert (result.category, result.soriano_baron) == (C.RECURRENCE, SB.RECURRENCE)


def test_no_soriano_baron_grade_for_a_treatment_other_than_mvd():
    assert outcome(log(-10, spasms=20), log(60, spasms=0)).soriano_baron == ""
    assert outcome(log(-10, spasms=20), log(60, spasms=5)).soriano_baron == ""


# --- days to spasm-free -------------------------------------------------------------------------


def test_days_to_spasm_free_counts_from_t0_to_the_first_spasm_free_log_after_it():
    logs = (log(-10, spasms=20), log(10, spasms=5), log(45, grade=0), log(90, spasms=0))
    assert outcome(*logs, mvd=True).days_to_spasm_free == 45
    assert outcome(*logs, mvd=False).days_to_spasm_free == 45


def test_no_days_to_spasm_free_while_never_spasm_free_after_t0():
    assert (
        outcome(log(-10, spasms=0), log(0, spasms=0), log(90, spasms=2), mvd=True).days_to_spasm_free is None
    )


def test_days_to_spasm_free_is_known_even_without_a_baseline():
    result = outcome(log(12, spasms=0), mvd=True)
    assert (result.category, result.days_to_spasm_free) == (C.INSUFFICIENT_DATA, 12)


# --- quality of life (HFS-7) --------------------------------------------------------------------


def test_a_drop_of_3_points_is_meaningful_and_of_2_is_not():
    # Totals are whole numbers, so against the MCID of 2.63 the first meaningful drop is 3.
    assert (
        outcome(log(-10, spasms=10, hfs7=15), log(60, spasms=10, hfs7=12)).qol_meaningful_improvement is True
    )
    assert (
        outcome(log(-10, spasms=10, hfs7=15), log(60, spasms=10, hfs7=13)).qol_meaningful_improvement is False
    )
    assert (
        outcome(log(-10, spasms=10, hfs7=15), log(60, spasms=10, hfs7=18)).qol_meaningful_improvement is False
    )


def test_a_drop_of_exactly_the_mcid_is_meaningful():
    # The comparison is ">= 2.63": a fractional score (as HFS-30 subscales would give) on the edge.
    on_edge = outcome(log(-10, hfs7=Decimal("10.63")), log(60, hfs7=Decimal(8)))
    under = outcome(log(-10, hfs7=Decimal("10.62")), log(60, hfs7=Decimal(8)))
    assert (on_edge.qol_meaningful_improvement, under.qol_meaningful_improvement) == (True, False)


def test_quality_of_life_compares_the_latest_scores_either_side_of_t0():
    logs = (
        log(-60, spasms=10, hfs7=10),
        log(-5, spasms=10, hfs7=20),
        log(-2, spasms=10),
        log(30, spasms=10, hfs7=19),
        log(90, spasms=10, hfs7=17),
        log(120, spasms=10),
    )
    assert outcome(*logs).qol_meaningful_improvement is True


def test_quality_of_life_is_unknown_without_a_score_on_either_side():
    assert outcome(log(-10, spasms=10), log(60, spasms=10, hfs7=3)).qol_meaningful_improvement is None
    assert outcome(log(-10, spasms=10, hfs7=20), log(60, spasms=10)).qol_meaningful_improvement is None
    assert (
        outcome(log(-181, hfs7=20), log(-10, spasms=10), log(60, hfs7=3)).qol_meaningful_improvement is None
    )
    assert (
        outcome(log(-180, hfs7=20), log(-10, spasms=10), log(60, hfs7=3)).qol_meaningful_improvement is True
    )


def test_a_score_on_t0_is_the_baseline_score():
    assert outcome(log(0, hfs7=20), log(60, hfs7=17)).qol_meaningful_improvement is True
    assert outcome(log(-10, hfs7=20), log(0, hfs7=3)).qol_meaningful_improvement is None


# --- the episode (v2): until the day before the next treatment starts ----------------------------


def test_the_episode_ends_the_day_before_the_next_treatment_starts():
    baseline, last_day = log(-10, spasms=10), log(99, spasms=4)
    on_next_start, later = log(100, spasms=0), log(150, spasms=0)

    result = outcome(baseline, log(30, spasms=8), last_day, on_next_start, later, starts=[day(100)])

    # The log of the day before counts; the one of the next treatment's first day is its baseline.
    assert (result.category, result.current, result.spasms_per_day_change_pct) == (C.IMPROVED, last_day, 60)
    assert result.days_to_spasm_free is None


def test_only_logs_of_the_episode_make_a_log_after_t0():
    result = outcome(log(-10, spasms=10), log(100, spasms=2), starts=[day(100)])
    assert (result.category, result.current) == (C.INSUFFICIENT_DATA, None)


@pytest.mark.parametrize("kind", [MVD, *NOT_MVD])
def test_a_treatment_of_any_kind_ends_the_episode_of_any_kind(kind):
    # Inside a toxin session's peak, so that only the next start decides.
    kept, dropped = log(19, spasms=8), log(20, spasms=0)
    result = outcome(log(-10, spasms=10), kept, dropped, kind=kind, starts=[day(20)])
    assert (result.category, result.current) == (C.UNCHANGED, kept)


def test_the_next_treatment_is_the_earliest_that_starts_after_t0():
    logs = (log(-10, spasms=10), log(40, spasms=4), log(60, spasms=0), log(90, spasms=0))
    result = outcome(*logs, starts=[day(200), day(-30), day(50), day(80)])
    assert (result.category, result.current.on) == (C.IMPROVED, day(40))


def test_a_treatment_started_the_same_day_does_not_end_the_episode():
    # Two treatments begun together (a course started on the day of a toxin session): the logs after
    # belong to both; ending either episode on its own first day would leave it no day at all.
    baseline, current = log(-10, spasms=10), log(30, spasms=0)
    result = outcome(baseline, current, starts=[T0, day(-400)])
    assert (result.category, result.current, result.days_to_spasm_free) == (C.CURED, current, 30)


def test_treatments_started_before_t0_do_not_end_the_episode():
    result = outcome(log(-10, spasms=10), log(600, spasms=0), starts=[day(-1), day(-200)])
    assert (result.category, result.current.on) == (C.CURED, day(600))


def test_without_a_later_treatment_or_an_end_date_the_episode_is_open():
    result = outcome(log(-10, spasms=10), log(2000, spasms=0), kind=MEDICATION)
    assert (result.category, result.current.on) == (C.CURED, day(2000))


def test_a_medication_course_is_read_up_to_and_including_its_end_date():
    last_day, after_end = log(60, spasms=4), log(61, spasms=0)

    result = outcome(log(-10, spasms=10), last_day, after_end, kind=MEDICATION, ended_on=day(60))

    assert (result.category, result.current, result.days_to_spasm_free) == (C.IMPROVED, last_day, None)


def test_a_course_ended_on_its_first_day_has_no_log_after_t0():
    result = outcome(log(-10, spasms=10), log(1, spasms=0), kind=MEDICATION, ended_on=T0)
    assert (result.category, result.current) == (C.INSUFFICIENT_DATA, None)


@pytest.mark.parametrize(
    ("ended_on", "next_start", "last_day"),
    [
        pytest.param(60, 100, 60, id="the course ended before the next treatment"),
        pytest.param(120, 100, 99, id="the next treatment started while the course ran"),
        pytest.param(60, 61, 60, id="the next treatment started the day after the course ended"),
    ],
)
def test_a_course_ends_at_its_end_date_or_the_day_before_the_next_start_whichever_comes_first(
    ended_on, next_start, last_day
):
    logs = [log(-10, spasms=10), *(log(n, spasms=last_day - n + 1) for n in (last_day - 1, last_day))]
    logs.append(log(last_day + 1, spasms=0))

    result = outcome(*logs, kind=MEDICATION, ended_on=day(ended_on), starts=[day(next_start)])

    assert result.current.on == day(last_day)
    assert result.category == C.IMPROVED
    assert episode_last_day(
        kind=MEDICATION, started_on=T0, other_starts=[day(next_start)], ended_on=day(ended_on)
    ) == day(last_day)


@pytest.mark.parametrize("kind", [MVD, TOXIN, OTHER])
def test_an_end_date_ends_the_episode_of_a_medication_course_only(kind):
    # An operation or an injection is "ended" the day it is done; its effect is what is followed.
    current = log(30, spasms=0)
    result = outcome(log(-10, spasms=10), current, kind=kind, ended_on=T0)
    assert result.current == current
    assert episode_last_day(kind=kind, started_on=T0, other_starts=[], ended_on=T0) is None


@pytest.mark.parametrize(
    ("starts", "ended_on", "expected"),
    [
        ([], None, None),
        ([T0], None, None),
        ([day(-5), T0], None, None),
        ([day(1)], None, T0),
        ([day(30), day(20)], None, day(19)),
        ([], day(40), day(40)),
        ([day(41)], day(40), day(40)),
        ([day(40)], day(40), day(39)),
    ],
)
def test_episode_last_day(starts, ended_on, expected):
    assert (
        episode_last_day(kind=MEDICATION, started_on=T0, other_starts=starts, ended_on=ended_on) == expected
    )


def test_a_drug_course_stopped_as_ineffective_is_not_cured_by_a_later_mvd():
    # The issue: "A drug course stopped as ineffective shows Cured 100 % because a later MVD cured the
    # patient." The course ran from T0 to day 90; the MVD on day 120 cured the spasms.
    logs = (
        log(-10, spasms=20, grade=3),
        log(30, spasms=18, grade=3),
        log(90, spasms=20, grade=3),
        log(119, spasms=22, grade=3),
        log(130, spasms=0, grade=0),
        log(300, spasms=0, grade=0),
    )

    course = outcome(*logs, kind=MEDICATION, ended_on=day(90), starts=[day(120)])
    assert (course.category, course.current.on, course.spasms_per_day_change_pct) == (C.UNCHANGED, day(90), 0)
    assert course.days_to_spasm_free is None

    # Without its end date, the MVD's start still closes the course's episode.
    still_open = outcome(*logs, kind=MEDICATION, starts=[day(120)])
    assert (still_open.category, still_open.current.on) == (C.UNCHANGED, day(119))

    surgery = outcome_for_treatment(kind=MVD, started_on=day(120), logs=logs, other_starts=[T0])
    assert (surgery.category, surgery.baseline.on, surgery.days_to_spasm_free) == (
        C.DELAYED_CURE,
        day(119),
        10,
    )


def test_quality_of_life_is_read_inside_the_episode():
    baseline = log(-10, spasms=10, hfs7=20)
    assert outcome(baseline, log(99, hfs7=15), starts=[day(100)]).qol_meaningful_improvement is True
    assert outcome(baseline, log(100, hfs7=15), starts=[day(100)]).qol_meaningful_improvement is None
    assert (
        outcome(baseline, log(99, hfs7=19), log(100, hfs7=15), starts=[day(100)]).qol_meaningful_improvement
        is False
    )
    ended = outcome(baseline, log(61, hfs7=15), kind=MEDICATION, ended_on=day(60))
    assert ended.qol_meaningful_improvement is None


def test_days_to_spasm_free_is_read_inside_the_episode():
    assert outcome(log(-10, spasms=10), log(99, spasms=0), starts=[day(100)]).days_to_spasm_free == 99
    assert outcome(log(-10, spasms=10), log(100, spasms=0), starts=[day(100)]).days_to_spasm_free is None


def test_the_baseline_may_lie_in_the_episode_of_the_treatment_before():
    # A log before t0 is the baseline whoever's episode it belonged to.
    baseline = log(-1, spasms=10)
    result = outcome(baseline, log(30, spasms=2), starts=[day(-60)])
    assert (result.baseline, result.category) == (baseline, C.IMPROVED)


def test_the_order_of_the_other_starts_does_not_matter():
    logs = (log(-10, spasms=10), log(30, spasms=4), log(60, spasms=0))
    assert outcome(*logs, starts=[day(50), day(90), day(-3)]) == outcome(
        *logs, starts=[day(-3), day(90), day(50)]
    )


# --- a toxin session (v2): read at its peak, days 7 to 42 ---------------------------------------


def toxin(*logs, **treatment):
    return outcome(*logs, kind=TOXIN, **treatment)


@pytest.mark.parametrize(("days", "read"), [(6, False), (7, True), (42, True), (43, False)])
def test_a_toxin_session_is_read_from_day_7_to_day_42(days, read):
    current = log(days, spasms=2)

    result = toxin(log(-10, spasms=10), current)

    assert (result.current, result.category) == (
        (current, C.IMPROVED) if read else (None, C.INSUFFICIENT_DATA)
    )


def test_the_latest_log_of_the_peak_is_the_current_one():
    early, late = log(7, spasms=2), log(42, spasms=9)
    assert toxin(log(-10, spasms=10), early, late, log(43, spasms=0)).current == late
    assert toxin(log(-10, spasms=10), log(6, spasms=0), early, log(43, spasms=30)).current == early


def test_wearing_off_after_the_peak_is_not_a_recurrence():
    result = toxin(log(-10, spasms=10), log(30, spasms=0), log(60, spasms=4), log(90, spasms=10))
    assert (result.category, result.current.on) == (C.CURED, day(30))


def test_recurrence_of_a_toxin_session_looks_at_the_peak_only():
    # Spasm-free on day 3 (before the peak) is not an earlier spasm-free log after t0...
    assert toxin(log(-10, spasms=10), log(3, spasms=0), log(30, spasms=6)).category == C.UNCHANGED
    # ...spasm-free on day 7 is.
    assert toxin(log(-10, spasms=10), log(7, spasms=0), log(30, spasms=6)).category == C.RECURRENCE


def test_the_peak_ends_with_the_episode():
    # A new session on day 30 (too soon, but it happens): its own logs are not this session's peak.
    kept = log(29, spasms=5)
    result = toxin(log(-10, spasms=10), kept, log(30, spasms=0), log(40, spasms=0), starts=[day(30)])
    assert (result.category, result.current) == (C.IMPROVED, kept)


def test_a_toxin_session_counts_days_to_spasm_free_over_its_episode():
    # How soon the spasms stopped is read over the whole episode, before the peak too...
    assert toxin(log(-10, spasms=10), log(3, spasms=0), log(20, spasms=0)).days_to_spasm_free == 3
    # ...and after it, within the episode.
    result = toxin(log(-10, spasms=10), log(20, spasms=5), log(60, spasms=0))
    assert (result.category, result.days_to_spasm_free) == (C.IMPROVED, 60)
    assert toxin(log(-10, spasms=10), log(60, spasms=0), starts=[day(60)]).days_to_spasm_free is None


def test_a_toxin_session_reads_quality_of_life_over_its_episode():
    # The text takes the later HFS-7 score "inside the episode", not at the peak.
    result = toxin(log(-10, spasms=10, hfs7=20), log(20, spasms=2, hfs7=19), log(80, hfs7=15))
    assert (result.category, result.qol_meaningful_improvement) == (C.IMPROVED, True)


@pytest.mark.parametrize("wore_off", [0, 1, 98])
def test_benefit_days_run_from_the_session_to_the_day_the_benefit_wore_off(wore_off):
    result = toxin(log(-10, spasms=10), log(20, spasms=2), wore_off_on=day(wore_off))
    assert result.benefit_days == wore_off


def test_benefit_days_are_known_without_logs_and_unknown_without_a_wear_off_date():
    assert toxin(wore_off_on=day(84)).benefit_days == 84
    assert toxin(wore_off_on=day(84)).category == C.INSUFFICIENT_DATA
    assert toxin(log(-10, spasms=10), log(20, spasms=2)).benefit_days is None


@pytest.mark.parametrize("kind", [MVD, MEDICATION, OTHER])
def test_benefit_days_are_for_a_toxin_session_only(kind):
    assert (
        outcome(log(-10, spasms=10), log(20, spasms=2), kind=kind, wore_off_on=day(84)).benefit_days is None
    )


@pytest.mark.parametrize("kind", [MVD, MEDICATION, OTHER])
def test_the_peak_applies_to_a_toxin_session_only(kind):
    assert outcome(log(-10, spasms=10), log(3, spasms=2), log(60, spasms=4), kind=kind).current.on == day(60)
