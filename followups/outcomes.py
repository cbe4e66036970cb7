"""The outcome of a treatment episode, DOMAIN.md section 7, rule version 1: a pure function.

Thresholds are module constants so a reader can check them against DOMAIN.md line by line; a
change to any rule is a new ``RULE_VERSION`` (stored outcomes say which rules produced them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from followups.codes import OutcomeCategory, SorianoBaron

RULE_VERSION = 1

BASELINE_LOOKBACK_DAYS = 180
WORSE_SPASMS_UP_PCT = Decimal(25)
IMPROVED_SPASMS_DOWN_PCT = Decimal(50)
GRADE_STEP = 1
DELAYED_CURE_AFTER_DAYS = 7
FAILURE_AFTER_DAYS = 365
SORIANO_BARON_GOOD_MAX_PER_DAY = Decimal(2)
HFS7_MCID = Decimal("2.63")


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
    rule_version: int = RULE_VERSION


def pct_improvement(baseline: Decimal | None, current: Decimal | None) -> Decimal | None:
    """(baseline - current) / baseline * 100; undefined for a missing value or a zero baseline."""
    if baseline is None or current is None or baseline == 0:
        return None
    return (Decimal(baseline) - Decimal(current)) / Decimal(baseline) * 100


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


def _qol_improved(t0: date, logs: list[SymptomLog]) -> bool | None:
    scored = [log for log in logs if log.hfs7_total is not None]
    before = [log for log in scored if t0 - timedelta(days=BASELINE_LOOKBACK_DAYS) <= log.on <= t0]
    after = [log for log in scored if log.on > t0]
    if not before or not after:
        return None
    return before[-1].hfs7_total - after[-1].hfs7_total >= HFS7_MCID


def outcome_for_treatment(*, is_mvd: bool, started_on: date, logs: Iterable[SymptomLog]) -> Outcome:
    """Classify one treatment episode from its patient's symptom logs (any order)."""
    t0 = started_on
    ordered = sorted(logs, key=lambda log: (log.on, log.id))
    symptom_logs = [log for log in ordered if log.is_symptom_log]
    before = [log for log in symptom_logs if t0 - timedelta(days=BASELINE_LOOKBACK_DAYS) <= log.on <= t0]
    after = [log for log in symptom_logs if log.on > t0]
    baseline = before[-1] if before else None
    current = after[-1] if after else None
    first_free = next((log for log in after if log.spasm_free), None)
    days_to_free = (first_free.on - t0).days if first_free else None
    qol = _qol_improved(t0, ordered)
    if baseline is None or current is None:
        return Outcome(
            OutcomeCategory.INSUFFICIENT_DATA,
            baseline=baseline,
            current=current,
            days_to_spasm_free=days_to_free,
            qol_meaningful_improvement=qol,
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
    )
