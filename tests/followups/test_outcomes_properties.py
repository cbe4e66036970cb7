"""Invariants of the outcome rules (DOMAIN.md section 7) over generated symptom logs (hypothesis).

Logs fall around the treatment date T0 (from well before the 180-day baseline lookback to past the
one-year MVD mark), with counts, grades, durations and HFS-7 totals each present or missing, and
spasm-free logs common enough that recurrence and cure come up often.
"""

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from followups.codes import OutcomeCategory as C
from followups.codes import SorianoBaron as SB
from followups.outcomes import SymptomLog, outcome_for_treatment

T0 = date(2024, 1, 15)
PROPERTIES = settings(max_examples=200, deadline=None)

spasm_counts = st.one_of(
    st.none(),
    st.just(Decimal(0)),
    st.decimals(min_value=0, max_value=200, places=2, allow_nan=False, allow_infinity=False),
)
grades = st.one_of(st.none(), st.integers(min_value=0, max_value=4))
durations = st.one_of(
    st.none(), st.decimals(min_value=0, max_value=120, places=1, allow_nan=False, allow_infinity=False)
)
days = st.one_of(
    st.integers(min_value=-200, max_value=800),
    st.sampled_from([-181, -180, 0, 1, 7, 8, 364, 365]),
)


@st.composite
def log_lists(draw, min_size=0):
    size = draw(st.integers(min_value=min_size, max_value=8))
    return [
        SymptomLog(
            id=n,
            on=T0 + timedelta(days=draw(days)),
            spasms_per_day=draw(spasm_counts),
            episode_duration_seconds=draw(durations),
            cohen_albert_grade=draw(grades),
            hfs7_total=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=28))),
        )
        for n in range(1, size + 1)
    ]


def classify(logs, mvd):
    return outcome_for_treatment(is_mvd=mvd, started_on=T0, logs=logs)


def symptom_logs_after_t0(logs):
    """The symptom logs after T0 in the order the rules read them (date, then order of recording)."""
    return sorted(
        (
            log
            for log in logs
            if log.on > T0 and (log.spasms_per_day is not None or log.cohen_albert_grade is not None)
        ),
        key=lambda log: (log.on, log.id),
    )


@PROPERTIES
@given(logs=log_lists(), mvd=st.booleans())
def test_never_cured_unless_the_current_log_is_spasm_free(logs, mvd):
    result = classify(logs, mvd)
    if result.category in (C.CURED, C.DELAYED_CURE):
        assert result.current is not None and result.current.spasm_free
    if result.category != C.INSUFFICIENT_DATA and result.current.spasm_free:
        assert result.category in (C.CURED, C.DELAYED_CURE)


@PROPERTIES
@given(logs=log_lists(), mvd=st.booleans())
def test_delayed_cure_only_after_mvd_and_only_when_first_spasm_free_after_day_7(logs, mvd):
    result = classify(logs, mvd)
    if result.category == C.DELAYED_CURE:
        assert mvd
        assert result.days_to_spasm_free > 7
    if result.category == C.CURED and mvd:
        assert result.days_to_spasm_free <= 7


@PROPERTIES
@given(logs=log_lists(), mvd=st.booleans())
def test_insufficient_data_exactly_when_there_is_no_baseline_or_no_later_log(logs, mvd):
    result = classify(logs, mvd)
    lookback = T0 - timedelta(days=180)
    has_baseline = any(
        lookback <= log.on <= T0 and (log.spasms_per_day is not None or log.cohen_albert_grade is not None)
        for log in logs
    )
    has_later = bool(symptom_logs_after_t0(logs))
    assert (result.category == C.INSUFFICIENT_DATA) == (not has_baseline or not has_later)


@PROPERTIES
@given(logs=log_lists(), mvd=st.booleans())
def test_the_baseline_and_current_logs_are_where_the_text_puts_them(logs, mvd):
    result = classify(logs, mvd)
    if result.baseline is not None:
        assert T0 - timedelta(days=180) <= result.baseline.on <= T0
        assert result.baseline.is_symptom_log
    if result.current is not None:
        assert result.current == symptom_logs_after_t0(logs)[-1]


@PROPERTIES
@given(logs=log_lists(), mvd=st.booleans())
def test_recurrence_exactly_when_an_earlier_log_after_t0_was_spasm_free_and_the_current_is_not(logs, mvd):
    result = classify(logs, mvd)
    if result.category == C.INSUFFICIENT_DATA:
        return
    *earlier, current = symptom_logs_after_t0(logs)
    relapsed = any(log.spasm_free for log in earlier) and not current.spasm_free
    assert (result.category == C.RECURRENCE) == relapsed


@PROPERTIES
@given(logs=log_lists(), mvd=st.booleans())
def test_worse_and_improved_follow_their_thresholds(logs, mvd):
    result = classify(logs, mvd)
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
@given(logs=log_lists(), mvd=st.booleans())
def test_failure_only_after_a_year_of_mvd(logs, mvd):
    result = classify(logs, mvd)
    if result.category in (C.FAILURE, C.UNCHANGED):
        a_year_on = mvd and (result.current.on - T0).days >= 365
        assert result.category == (C.FAILURE if a_year_on else C.UNCHANGED)


@PROPERTIES
@given(logs=log_lists(), mvd=st.booleans(), data=st.data())
def test_the_result_does_not_depend_on_the_order_of_the_logs(logs, mvd, data):
    shuffled = data.draw(st.permutations(logs))
    assert classify(shuffled, mvd) == classify(logs, mvd)


@PROPERTIES
@given(logs=log_lists(), old=log_lists(), mvd=st.booleans())
def test_logs_older_than_the_lookback_change_nothing(logs, old, mvd):
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
    assert classify(logs + too_old, mvd) == classify(logs, mvd)


@PROPERTIES
@given(logs=log_lists(), mvd=st.booleans())
def test_soriano_baron_only_for_mvd_and_matching_the_current_count(logs, mvd):
    result = classify(logs, mvd)
    if not mvd or result.category == C.INSUFFICIENT_DATA:
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
@given(logs=log_lists(), mvd=st.booleans())
def test_days_to_spasm_free_is_the_first_spasm_free_log_after_t0(logs, mvd):
    result = classify(logs, mvd)
    free = [log for log in symptom_logs_after_t0(logs) if log.spasm_free]
    assert result.days_to_spasm_free == ((free[0].on - T0).days if free else None)


@PROPERTIES
@given(logs=log_lists(min_size=1), mvd=st.booleans())
def test_changes_are_computed_from_the_baseline_and_current_logs(logs, mvd):
    result = classify(logs, mvd)
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
