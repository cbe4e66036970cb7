"""The signed links a patient opens from an e-mail, without a login (DOMAIN.md sections 6, 10, 12).

One module for every such link, so that they are made and checked one way: a link names one
purpose and one public id (a visit's or a patient's uuid, never a row id or anything clinical),
is signed with a salt of its own purpose (a booking link cannot be replayed as a diary link), and
carries the last day it is valid, checked on every use.

- ``booking``: one visit, to book, move or cancel it; valid until its window closes (a booked
  visit's link until its appointment's day).
- ``rebooking``: a missed visit, to book the visit that replaces it; valid 30 days from the day
  the "please rebook" e-mail goes out (the day after the window closed).
- ``diary``: the patient's diary (section 10); valid 30 days from the day it was sent.
- ``opt_out``: the patient's one-click opt-out; never expires (an old e-mail's link must still
  work), and keeps the token format of the first build so that links already sent still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from followups.models import Visit
from patients.models import Patient

BOOKING, REBOOKING, DIARY, OPT_OUT = "booking", "rebooking", "diary", "opt_out"
PURPOSES = (BOOKING, REBOOKING, DIARY, OPT_OUT)
URL_NAMES = {
    BOOKING: "patient-booking",
    REBOOKING: "patient-rebooking",
    DIARY: "patient-diary",
    OPT_OUT: "reminders-opt-out",
}
REBOOKING_LINK_DAYS = 30
DIARY_DAYS = 30
# The opt-out links of the first build were signed with this salt over the bare patient id.
OPT_OUT_SALT = "followups.reminders.opt-out"


class LinkInvalid(Exception):
    """The token was not made here (mistyped, cut short by a mail client, or forged)."""


class LinkExpired(Exception):
    """A genuine link whose last day has passed."""


@dataclass(frozen=True)
class PatientLink:
    purpose: str
    public_id: str
    valid_until: date | None


def _salt(purpose: str) -> str:
    return OPT_OUT_SALT if purpose == OPT_OUT else f"followups.patient-link.{purpose}"


def link_token(purpose: str, public_id, valid_until: date | None = None) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"Unknown link purpose {purpose!r}.")
    if purpose == OPT_OUT:
        return signing.dumps(str(public_id), salt=_salt(purpose))
    if valid_until is None:
        raise ValueError(f"A {purpose} link needs its last valid day.")
    return signing.dumps([str(public_id), valid_until.isoformat()], salt=_salt(purpose), compress=True)


def link_read(token: str, purpose: str, *, today: date | None = None) -> PatientLink:
    """The link a token stands for, if it is genuine, of ``purpose`` and still valid."""
    try:
        payload = signing.loads(token, salt=_salt(purpose))
    except (signing.BadSignature, ValueError, UnicodeError) as error:
        raise LinkInvalid from error
    if purpose == OPT_OUT:
        if not isinstance(payload, str):
            raise LinkInvalid
        return PatientLink(purpose, payload, None)
    try:
        public_id, last_day = payload
        valid_until = date.fromisoformat(last_day)
    except (TypeError, ValueError) as error:
        raise LinkInvalid from error
    if valid_until < (today or timezone.localdate()):
        raise LinkExpired
    return PatientLink(purpose, str(public_id), valid_until)


def link_url(purpose: str, public_id, valid_until: date | None = None) -> str:
    token = link_token(purpose, public_id, valid_until)
    return settings.SITE_URL + reverse(URL_NAMES[purpose], args=[token])


def booking_link_valid_until(visit: Visit) -> date:
    # A visit booked after its window (confirmed by staff) keeps its link until the appointment.
    return max(visit.window_end, timezone.localdate(visit.scheduled_for))


def booking_url(visit: Visit) -> str:
    return link_url(BOOKING, visit.uuid, booking_link_valid_until(visit))


def rebooking_link_valid_until(missed: Visit) -> date:
    # From the day after it was missed: its window's end, or its appointment's day if later.
    missed_on = max(missed.window_end, timezone.localdate(missed.scheduled_for))
    return missed_on + timedelta(days=1 + REBOOKING_LINK_DAYS)


def rebooking_url(missed: Visit) -> str:
    return link_url(REBOOKING, missed.uuid, rebooking_link_valid_until(missed))


def diary_url(patient: Patient, *, sent_on: date) -> str:
    return link_url(DIARY, patient.uuid, sent_on + timedelta(days=DIARY_DAYS))


def opt_out_url(patient: Patient) -> str:
    return link_url(OPT_OUT, patient.uuid)
