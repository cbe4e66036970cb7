"""The outcome of a treatment episode, DOMAIN.md section 7, rule version 2: a pure function.

Thresholds are module constants so a reader can check them against DOMAIN.md line by line; a
change to any rule is a new ``RULE_VERSION`` (stored outcomes say which rules produced them).

Version 2 reads each treatment within its episode: the logs after the patient's next treatment
starts (or after a medication course ended) belong to that later treatment, never to this one, so
a later MVD's cure no longer credits an earlier drug course. A toxin session is read at its peak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from followups.codes import OutcomeCategory, SorianoBaron
from patients.codes import TreatmentKind

RULE_VERSION = 2

BASELINE_LOOKBACK_DAYS = 180
WORSE_SPASMS_UP_PCT = Decimal(25)
IMPROVED_SPASMS_DOWN_PCT = Decimal(50)
GRADE_STEP = 1
DELAYED_CURE_AFTER_DAYS = 7
FAILURE_AFTER_DAYS = 365
SORIANO_BARON_GOOD_MAX_PER_DAY = Decimal(2)
HFS7_MCID = Decimal("2.63")
# A toxin session's response is read at its peak, both days included; later logs show it wearing off.
TOXIN_PEAK_FROM_DAY = 7
TOXIN_PEAK_TO_DAY = 42


@dataclass(frozen=True)
class SymptomLog:
    """The recovery signals of one assessment: all optional but the date."""

    id: int
    on: date
    spasms_per_day: Decimal | None = None
    episode_duration_seconds: Decimal | None = None
    cohen_albert_grade: int | None = None
    hfs7_total: int | None = None

    @property
    def is_symptom_log(self) -> bool:
        return self.spasms_per_day is not None or self.cohen_albert_grade is not None

    @property
    def spasm_free(self) -> bool:
        if self.spasms_per_day is not None:
            return self.spasms_per_day == 0
        return self.cohen_albert_grade == 0


@dataclass(frozen=True)
class Outcome:
    category: str
    baseline: SymptomLog | None = None
    current: SymptomLog | None = None
    spasms_per_day_change_pct: Decimal | None = None
    duration_change_pct: Decimal | None = None
    grade_change: int | None = None
    soriano_baron: str = ""
    days_to_spasm_free: int | None = None
    qol_meaningful_improvement: bool | None = None
    benefit_days: int | None = None
    rule_version: int = RULE_VERSION


def pct_improvement(baseline: Decimal | None, current: Decimal | None) -> Decimal | None:
    """(baseline - current) / baseline * 100; undefined for a missing value or a zero baseline."""
    if baseline is None or current is None or baseline == 0:
        return None
    return (Decimal(baseline) - Decimal(current)) / Decimal(baseline) * 100


def episode_last_day(
    *, kind: str, started_on: date, other_starts: Iterable[date], ended_on: date | None = None
) -> date | None:
    """The last day of the treatment's episode, or None while it is open.

    Only a treatment starting after ``started_on`` ends the episode: one starting the same day
    would leave it without a single day, and logs after two treatments begun together belong to
    both. For the same reason the caller may pass the treatment's own start among the others.
    """
    later = [start for start in other_starts if start > started_on]
    ends = [min(later) - timedelta(days=1)] if later else []
    if kind == TreatmentKind.MEDICATION and ended_on is not None:
        ends.append(ended_on)
    return min(ends) if ends else None


def _category(*, is_mvd, t0, after, current, spasms_pct, grade_change) -> str:
    earlier = after[:-1]
    if any(log.spasm_free for log in earlier) and not current.spasm_free:
        return OutcomeCategory.RECURRENCE
    if current.spasm_free:
        first_free = next(log for log in after if log.spasm_free)
        if is_mvd and (first_free.on - t0).days > DELAYED_CURE_AFTER_DAYS:
            return OutcomeCategory.DELAYED_CURE
        return OutcomeCategory.CURED
    if (spasms_pct is not None and spasms_pct <= -WORSE_SPASMS_UP_PCT) or (
        grade_change is not None and grade_change <= -GRADE_STEP
    ):
        return OutcomeCategory.WORSE
    if (spasms_pct is not None and spasms_pct >= IMPROVED_SPASMS_DOWN_PCT) or (
        grade_change is not None and grade_change >= GRADE_STEP
    ):
        return OutcomeCategory.IMPROVED
    if is_mvd and (current.on - t0).days >= FAILURE_AFTER_DAYS:
        return OutcomeCategory.FAILURE
    return OutcomeCategory.UNCHANGED


def _soriano_baron(category: str, current: SymptomLog) -> str:
    if category == OutcomeCategory.RECURRENCE:
        return SorianoBaron.RECURRENCE
    if current.spasm_free:
        return SorianoBaron.EXCELLENT
    if current.spasms_per_day is None:
        return ""
    if current.spasms_per_day <= SORIANO_BARON_GOOD_MAX_PER_DAY:
        return SorianoBaron.GOOD
    return SorianoBaron.BAD


def _in_baseline_lookback(log: SymptomLog, t0: date) -> bool:
    return t0 - timedelta(days=BASELINE_LOOKBACK_DAYS) <= log.on <= t0


def _in_toxin_peak(log: SymptomLog, t0: date) -> bool:
    return TOXIN_PEAK_FROM_DAY <= (log.on - t0).days <= TOXIN_PEAK_TO_DAY


def _qol_improved(t0: date, baseline_logs: list[SymptomLog], episode_logs: list[SymptomLog]) -> bool | None:
    before = [log for log in baseline_logs if log.hfs7_total is not None]
    after = [log for log in episode_logs if log.hfs7_total is not None]
    if not before or not after:
        return None
    return before[-1].hfs7_total - after[-1].hfs7_total >= HFS7_MCID


def outcome_for_treatment(
    *,
    kind: str,
    started_on: date,
    logs: Iterable[SymptomLog],
    other_starts: Iterable[date],
    ended_on: date | None = None,
    wore_off_on: date | None = None,
) -> Outcome:
    """Classify one treatment episode from its patient's symptom logs (any order).

    ``other_starts`` are the start dates of the patient's other treatments of any kind, retracted
    ones left out by the caller; ``ended_on`` counts for a medication course, ``wore_off_on`` for
    a toxin session.
    """
    t0 = started_on
    is_mvd = kind == TreatmentKind.MVD
    is_toxin = kind == TreatmentKind.BOTULINUM_TOXIN
    last_day = episode_last_day(kind=kind, started_on=t0, other_starts=other_starts, ended_on=ended_on)
    ordered = sorted(logs, key=lambda log: (log.on, log.id))
    baseline_logs = [log for log in ordered if _in_baseline_lookback(log, t0)]
    episode_logs = [log for log in ordered if log.on > t0 and (last_day is None or log.on <= last_day)]
    before = [log for log in baseline_logs if log.is_symptom_log]
    in_episode = [log for log in episode_logs if log.is_symptom_log]
    after = [log for log in in_episode if _in_toxin_peak(log, t0)] if is_toxin else in_episode
    baseline = before[-1] if before else None
    current = after[-1] if after else None
    # Read over the whole episode, not only a toxin's peak: how soon the spasms stopped is news
    # even when it happened before day 7.
    first_free = next((log for log in in_episode if log.spasm_free), None)
    days_to_free = (first_free.on - t0).days if first_free else None
    qol = _qol_improved(t0, baseline_logs, episode_logs)
    benefit_days = (wore_off_on - t0).days if is_toxin and wore_off_on is not None else None
    if baseline is None or current is None:
        return Outcome(
            OutcomeCategory.INSUFFICIENT_DATA,
            baseline=baseline,
            current=current,
            days_to_spasm_free=days_to_free,
            qol_meaningful_improvement=qol,
            benefit_days=benefit_days,
        )

    spasms_pct = pct_improvement(baseline.spasms_per_day, current.spasms_per_day)
    duration_pct = pct_improvement(baseline.episode_duration_seconds, current.episode_duration_seconds)
    grade_change = (
        baseline.cohen_albert_grade - current.cohen_albert_grade
        if baseline.cohen_albert_grade is not None and current.cohen_albert_grade is not None
        else None
    )
    category = _category(
        is_mvd=is_mvd,
        t0=t0,
        after=after,
        current=current,
        spasms_pct=spasms_pct,
        grade_change=grade_change,
    )
    return Outcome(
        category,
        baseline=baseline,
        current=current,
        spasms_per_day_change_pct=spasms_pct,
        duration_change_pct=duration_pct,
        grade_change=grade_change,
        soriano_baron=_soriano_baron(category, current) if is_mvd else "",
        days_to_spasm_free=days_to_free,
        qol_meaningful_improvement=qol,
        benefit_days=benefit_days,
    )
