"""The visit state machine (DOMAIN.md section 2): which moves there are, and which are corrections.

``followups.visit_moves`` adds the guards that depend on dates, roles and reasons.
"""

from followups.codes import VisitStatus

P, B, C, M, X = (
    VisitStatus.PLANNED,
    VisitStatus.BOOKED,
    VisitStatus.COMPLETED,
    VisitStatus.MISSED,
    VisitStatus.CANCELLED,
)

# planned -> booked -> completed, missed or cancelled; booked -> planned when the booking is
# given up, booked -> booked to reschedule. A planned visit can also be completed (the patient came
# within the window without a booking), missed (its window closed) or cancelled. A completed or
# missed visit changes only by a correction back to booked (a wrong click undone, with a reason);
# a missed visit is otherwise rebooked as a new visit. A cancelled visit stays cancelled.
ALLOWED = {
    P: {B, C, M, X},
    B: {P, B, C, M, X},
    C: {B},
    M: {B},
    X: set(),
}
CORRECTIONS = {(C, B), (M, B)}


def is_correction(current: str, new: str) -> bool:
    return (current, new) in CORRECTIONS


def transition_error(current: str, new: str) -> str | None:
    if new in ALLOWED.get(current, set()):
        return None
    current_label, new_label = VisitStatus(current).label.lower(), VisitStatus(new).label.lower()
    if current == X:
        return "A cancelled visit stays cancelled: book a new visit instead."
    if current == new:
        return f"This visit is {current_label} already."
    allowed = ", ".join(sorted(VisitStatus(s).label.lower() for s in ALLOWED[current]))
    return f"A {current_label} visit can become: {allowed}; not {new_label}."
