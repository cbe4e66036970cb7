"""Invariants of the outcome rules (DOMAIN.md section 7, rule version 2) over generated symptom logs
and treatments (hypothesis).

Logs fall around the treatment date T0 (from well before the 180-day baseline lookback to past the
one-year MVD mark, the edges of a toxin session's peak included), with counts, grades, durations and
HFS-7 totals each present or missing, and spasm-free logs common enough that recurrence and cure come
up often. The treatment is of any kind, with the patient's other treatments starting before, on or
after T0, and a medication course's end date or a toxin session's wear-off date now and then.
"""

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from followups.codes import OutcomeCategory as C
from followups.codes import SorianoBaron as SB
from followups.outcomes import SymptomLog, outcome_for_treatment
from patients.codes import TreatmentKind

T0 = date(2024, 1, 15)
PROPERTIES = settings(max_examples=200, deadline=None)
MVD = TreatmentKind.MVD
MEDICATION = TreatmentKind.MEDICATION
TOXIN = TreatmentKind.BOTULINUM_TOXIN

spasm_counts = st.one_of(
    st.none(),
    st.just(Decimal(0)),
    st.decimals(min_value=0, max_value=200, places=2, allow_nan=False, allow_infinity=False),
)
grades = st.one_of(st.none(), st.integers(min_value=0, max_value=4))
durations = st.one_of(
    st.none(), st.decimals(min_value=0, max_value=120, places=1, allow_nan=False, allow_infinity=False)
)
hfs7_totals = st.one_of(st.none(), st.integers(min_value=0, max_value=28))
days = st.one_of(
    st.integers(min_value=-200, max_value=800),
    st.sampled_from([-181, -180, 0, 1, 6, 7, 8, 42, 43, 364, 365]),
)


def on_day(n: int) -> date:
    return T0 + timedelta(days=n)


@st.composite
def log_lists(draw, min_size=0, days=days, first_id=1):
    size = draw(st.integers(min_value=min_size, max_value=8))
    return [
        SymptomLog(
            id=n,
            on=on_day(draw(days)),
            spasms_per_day=draw(spasm_counts),
            episode_duration_seconds=draw(durations),
            cohen_albert_grade=draw(grades),
            hfs7_total=draw(hfs7_totals),
        )
        for n in range(first_id, first_id + size)
    ]


@dataclass(frozen=True)
class Treatment:
    """The index treatment, started on T0, and the start dates of the patient's other treatments."""

    kind: str
    other_starts: list = field(default_factory=list)
    ended_on: date | None = None
    wore_off_on: date | None = None

    @property
    def is_mvd(self) -> bool:
        return self.kind == MVD

    @property
    def last_day(self) -> date | None:
        """The text's episode, written out again: up to the day before the next start, and for a
        medication course up to its end date."""
        ends = [start - timedelta(days=1) for start in self.other_starts if start > T0]
        if self.kind == MEDICATION and self.ended_on is not None:
            ends.append(self.ended_on)
        return min(ends, default=None)

    def in_episode(self, log: SymptomLog) -> bool:
        return log.on > T0 and (self.last_day is None or log.on <= self.last_day)

    def reads(self, log: SymptomLog) -> bool:
        """Whether the category rules read this log as one "after t0": a toxin session's at its peak."""
        if self.kind == TOXIN:
            return self.in_episode(log) and 7 <= (log.on - T0).days <= 42
        return self.in_episode(log)


@st.composite
def treatments(draw, kinds=tuple(TreatmentKind), later_start=False):
    starts = draw(st.lists(days.map(on_day), max_size=3))
    if later_start:
        starts.append(on_day(draw(st.integers(min_value=1, max_value=800))))
    return Treatment(
        kind=draw(st.sampled_from(kinds)),
        other_starts=starts,
        ended_on=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=800).map(on_day))),
        wore_off_on=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=200).map(on_day))),
    )


def classify(logs, treatment):
    return outcome_for_treatment(
        kind=treatment.kind,
        started_on=T0,
        logs=logs,
        other_starts=treatment.other_starts,
        ended_on=treatment.ended_on,
        wore_off_on=treatment.wore_off_on,
    )


def symptom_logs(logs, keep):
    """The symptom logs that ``keep`` keeps, in the order the rules read them (date, then recording)."""
    return sorted(
        (
            log
            for log in logs
            if keep(log) and (log.spasms_per_day is not None or log.cohen_albert_grade is not None)
        ),
        key=lambda log: (log.on, log.id),
    )


def symptom_logs_read(logs, treatment):
    """The symptom logs the category rules read as "after t0"."""
    return symptom_logs(logs, treatment.reads)


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_never_cured_unless_the_current_log_is_spasm_free(logs, treatment):
    result = classify(logs, treatment)
    if result.category in (C.CURED, C.DELAYED_CURE):
        assert result.current is not None and result.current.spasm_free
    if result.category != C.INSUFFICIENT_DATA and result.current.spasm_free:
        assert result.category in (C.CURED, C.DELAYED_CURE)


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_delayed_cure_only_after_mvd_and_only_when_first_spasm_free_after_day_7(logs, treatment):
    result = classify(logs, treatment)
    if result.category == C.DELAYED_CURE:
        assert treatment.is_mvd
        assert result.days_to_spasm_free > 7
    if result.category == C.CURED and treatment.is_mvd:
        assert result.days_to_spasm_free <= 7


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_insufficient_data_exactly_when_there_is_no_baseline_or_no_later_log(logs, treatment):
    result = classify(logs, treatment)
    lookback = T0 - timedelta(days=180)
    has_baseline = any(
        lookback <= log.on <= T0 and (log.spasms_per_day is not None or log.cohen_albert_grade is not None)
        for log in logs
    )
    has_later = bool(symptom_logs_read(logs, treatment))
    assert (result.category == C.INSUFFICIENT_DATA) == (not has_baseline or not has_later)


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_the_baseline_and_current_logs_are_where_the_text_puts_them(logs, treatment):
    result = classify(logs, treatment)
    if result.baseline is not None:
        assert T0 - timedelta(days=180) <= result.baseline.on <= T0
        assert result.baseline.is_symptom_log
    if result.current is not None:
        assert result.current == symptom_logs_read(logs, treatment)[-1]


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_recurrence_exactly_when_an_earlier_log_after_t0_was_spasm_free_and_the_current_is_not(
    logs, treatment
):
    result = classify(logs, treatment)
    if result.category == C.INSUFFICIENT_DATA:
        return
    *earlier, current = symptom_logs_read(logs, treatment)
    relapsed = any(log.spasm_free for log in earlier) and not current.spasm_free
    assert (result.category == C.RECURRENCE) == relapsed


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_worse_and_improved_follow_their_thresholds(logs, treatment):
    result = classify(logs, treatment)
    pct, grade = result.spasms_per_day_change_pct, result.grade_change
    rose = (pct is not None and pct <= -25) or (grade is not None and grade <= -1)
    fell = (pct is not None and pct >= 50) or (grade is not None and grade >= 1)
    if result.category not in (C.WORSE, C.IMPROVED, C.FAILURE, C.UNCHANGED):
        return
    if rose:
        assert result.category == C.WORSE
    elif fell:
        assert result.category == C.IMPROVED
    else:
        assert result.category in (C.FAILURE, C.UNCHANGED)


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_failure_only_after_a_year_of_mvd(logs, treatment):
    result = classify(logs, treatment)
    if result.category in (C.FAILURE, C.UNCHANGED):
        a_year_on = treatment.is_mvd and (result.current.on - T0).days >= 365
        assert result.category == (C.FAILURE if a_year_on else C.UNCHANGED)


@PROPERTIES
@given(logs=log_lists(), treatment=treatments(), data=st.data())
def test_the_result_does_not_depend_on_the_order_of_the_logs_or_of_the_other_starts(logs, treatment, data):
    shuffled = data.draw(st.permutations(logs))
    starts = data.draw(st.permutations(treatment.other_starts))
    assert classify(shuffled, replace(treatment, other_starts=starts)) == classify(logs, treatment)


@PROPERTIES
@given(logs=log_lists(), old=log_lists(), treatment=treatments())
def test_logs_older_than_the_lookback_change_nothing(logs, old, treatment):
    too_old = [
        SymptomLog(
            id=1000 + log.id,
            on=T0 - timedelta(days=181 + abs((log.on - T0).days)),
            spasms_per_day=log.spasms_per_day,
            cohen_albert_grade=log.cohen_albert_grade,
            hfs7_total=log.hfs7_total,
        )
        for log in old
    ]
    assert classify(logs + too_old, treatment) == classify(logs, treatment)


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_soriano_baron_only_for_mvd_and_matching_the_current_count(logs, treatment):
    result = classify(logs, treatment)
    if not treatment.is_mvd or result.category == C.INSUFFICIENT_DATA:
        assert result.soriano_baron == ""
        return
    current = result.current
    if result.category == C.RECURRENCE:
        assert result.soriano_baron == SB.RECURRENCE
    elif current.spasm_free:
        assert result.soriano_baron == SB.EXCELLENT
    elif current.spasms_per_day is None:
        assert result.soriano_baron == ""
    else:
        assert result.soriano_baron == (SB.GOOD if current.spasms_per_day <= 2 else SB.BAD)


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_days_to_spasm_free_is_the_first_spasm_free_log_of_the_episode(logs, treatment):
    # Of the whole episode, a toxin session's included: how soon the spasms stopped, peak or not.
    result = classify(logs, treatment)
    free = [log for log in symptom_logs(logs, treatment.in_episode) if log.spasm_free]
    assert result.days_to_spasm_free == ((free[0].on - T0).days if free else None)


@PROPERTIES
@given(logs=log_lists(min_size=1), treatment=treatments())
def test_changes_are_computed_from_the_baseline_and_current_logs(logs, treatment):
    result = classify(logs, treatment)
    if result.category == C.INSUFFICIENT_DATA:
        return
    base, now = result.baseline, result.current
    if base.spasms_per_day and now.spasms_per_day is not None:
        expected = (base.spasms_per_day - now.spasms_per_day) / base.spasms_per_day * 100
        assert result.spasms_per_day_change_pct == expected
    else:
        assert result.spasms_per_day_change_pct is None
    if base.cohen_albert_grade is not None and now.cohen_albert_grade is not None:
        assert result.grade_change == base.cohen_albert_grade - now.cohen_albert_grade
    else:
        assert result.grade_change is None


# --- the episode (v2) ---------------------------------------------------------------------------


def after_day(first_day, logs):
    """The same measures, moved to ``first_day`` or later (each keeps its distance from T0 beyond it)."""
    return [
        replace(log, id=1000 + log.id, on=first_day + timedelta(days=abs((log.on - T0).days))) for log in logs
    ]


@PROPERTIES
@given(logs=log_lists(), later=log_lists(), treatment=treatments(later_start=True))
def test_a_log_on_or_after_the_next_treatments_start_never_changes_an_outcome(logs, later, treatment):
    next_start = min(start for start in treatment.other_starts if start > T0)
    assert classify(logs + after_day(next_start, later), treatment) == classify(logs, treatment)


@PROPERTIES
@given(logs=log_lists(), later=log_lists(), treatment=treatments(kinds=[MEDICATION]))
def test_a_log_after_a_medication_course_ended_never_changes_its_outcome(logs, later, treatment):
    if treatment.ended_on is None:
        return
    after_end = after_day(treatment.ended_on + timedelta(days=1), later)
    assert classify(logs + after_end, treatment) == classify(logs, treatment)


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_the_treatments_own_start_among_the_others_changes_nothing(logs, treatment):
    with_own = replace(treatment, other_starts=[*treatment.other_starts, T0])
    assert classify(logs, with_own) == classify(logs, treatment)


@PROPERTIES
@given(
    logs=log_lists(),
    outside=log_lists(min_size=1, days=st.one_of(st.integers(1, 6), st.integers(43, 400)), first_id=1000),
    treatment=treatments(kinds=[TOXIN]),
)
def test_a_toxin_log_outside_its_peak_changes_neither_category_nor_change_only_qol_and_days_to_spasm_free(
    logs, outside, treatment
):
    # Before day 7 or after day 42 a log is no response to the session, but the text reads the
    # quality of life and how soon the spasms stopped over the whole episode: those two may move,
    # and only by a log that carries an HFS-7 score or is spasm-free.
    before, after = classify(logs, treatment), classify(logs + outside, treatment)
    assert replace(after, qol_meaningful_improvement=None, days_to_spasm_free=None) == replace(
        before, qol_meaningful_improvement=None, days_to_spasm_free=None
    )
    if all(log.hfs7_total is None for log in outside):
        assert after.qol_meaningful_improvement == before.qol_meaningful_improvement
    if not any(log.spasm_free for log in outside):
        assert after.days_to_spasm_free == before.days_to_spasm_free


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_benefit_days_are_the_days_to_the_wear_off_date_of_a_toxin_session_only(logs, treatment):
    result = classify(logs, treatment)
    if treatment.kind == TOXIN and treatment.wore_off_on is not None:
        assert result.benefit_days == (treatment.wore_off_on - T0).days
    else:
        assert result.benefit_days is None


@PROPERTIES
@given(logs=log_lists(), treatment=treatments())
def test_quality_of_life_compares_the_baseline_score_with_the_latest_of_the_episode(logs, treatment):
    result = classify(logs, treatment)
    scored = sorted((log for log in logs if log.hfs7_total is not None), key=lambda log: (log.on, log.id))
    before = [log for log in scored if T0 - timedelta(days=180) <= log.on <= T0]
    later = [log for log in scored if treatment.in_episode(log)]
    expected = before[-1].hfs7_total - later[-1].hfs7_total >= Decimal("2.63") if before and later else None
    assert result.qol_meaningful_improvement == expected
