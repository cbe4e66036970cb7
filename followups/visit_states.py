"""The visit state machine: which moves staff, planning and the nightly task may make."""

from followups.codes import VisitStatus

P, B, C, M, X = (
    VisitStatus.PLANNED,
    VisitStatus.BOOKED,
    VisitStatus.COMPLETED,
    VisitStatus.MISSED,
    VisitStatus.CANCELLED,
)

# planned -> booked -> completed, missed or cancelled; booked -> planned when the booking is
# given up. A planned visit can also be completed (the patient came without a booking), missed
# (its window closed) or cancelled; a missed visit can still be completed (the patient came late
# the same day) or closed as cancelled when nobody will rebook it. Completed and cancelled end it.
ALLOWED = {
    P: {B, C, M, X},
    B: {P, B, C, M, X},
    M: {C, X},
    C: set(),
    X: set(),
}


def transition_error(current: str, new: str) -> str | None:
    if new in ALLOWED.get(current, set()):
        return None
    if not ALLOWED.get(current):
        return f"A {VisitStatus(current).label.lower()} visit cannot change any more."
    allowed = ", ".join(sorted(VisitStatus(s).label.lower() for s in ALLOWED[current]))
    current_label, new_label = VisitStatus(current).label.lower(), VisitStatus(new).label.lower()
    return f"A {current_label} visit can become: {allowed}; not {new_label}."
