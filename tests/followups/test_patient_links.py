"""The signed links a patient opens from an e-mail (followups.patient_links): one purpose each, the
public id and a last day only, valid until that day, and the opt-out links of the first build still
open."""

from datetime import date, timedelta

import pytest
from django.core import signing

from followups.patient_links import (
    BOOKING,
    DIARY,
    OPT_OUT,
    OPT_OUT_SALT,
    REBOOKING,
    LinkExpired,
    LinkInvalid,
    booking_link_valid_until,
    link_read,
    link_token,
    rebooking_link_valid_until,
)

PUBLIC_ID = "0b3c3c8e-6a53-4c0e-9b8f-0d5f1b8f6a11"
TODAY = date(2026, 12, 5)


@pytest.mark.parametrize("purpose", [BOOKING, REBOOKING, DIARY])
def test_a_link_is_valid_up_to_and_including_its_last_day(purpose):
    token = link_token(purpose, PUBLIC_ID, TODAY)

    link = link_read(token, purpose, today=TODAY)

    assert (link.purpose, link.public_id, link.valid_until) == (purpose, PUBLIC_ID, TODAY)
    with pytest.raises(LinkExpired):
        link_read(token, purpose, today=TODAY + timedelta(days=1))


def test_a_link_of_one_purpose_opens_nothing_of_another():
    token = link_token(BOOKING, PUBLIC_ID, TODAY)

    for other in (REBOOKING, DIARY, OPT_OUT):
        with pytest.raises(LinkInvalid):
            link_read(token, other, today=TODAY)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda token: token[:-3],  # cut short by a mail client
        lambda token: token.replace(":", "x", 1),
        lambda token: "x" + token,
        lambda token: "",
        lambda token: "\ud800",
    ],
    ids=["cut-short", "mangled", "prefixed", "empty", "surrogate"],
)
def test_a_mistyped_or_forged_link_is_invalid_never_an_error(spoil):
    token = link_token(BOOKING, PUBLIC_ID, TODAY)

    with pytest.raises(LinkInvalid):
        link_read(spoil(token), BOOKING, today=TODAY)


def test_a_link_signed_with_a_later_day_by_someone_else_is_refused():
    forged = signing.dumps(
        [PUBLIC_ID, "2099-01-01"], key="not-the-secret", salt=f"followups.patient-link.{BOOKING}"
    )

    with pytest.raises(LinkInvalid):
        link_read(forged, BOOKING, today=TODAY)


def test_the_opt_out_link_of_the_first_build_still_opens_and_never_expires():
    first_build = signing.dumps(PUBLIC_ID, salt=OPT_OUT_SALT)

    assert link_read(first_build, OPT_OUT, today=date(2040, 1, 1)).public_id == PUBLIC_ID
    # And the links made now keep that format.
    assert signing.loads(link_token(OPT_OUT, PUBLIC_ID), salt=OPT_OUT_SALT) == PUBLIC_ID


def test_the_token_carries_the_public_id_and_the_last_day_and_nothing_else():
    token = link_token(BOOKING, PUBLIC_ID, TODAY)

    assert signing.loads(token, salt=f"followups.patient-link.{BOOKING}") == [PUBLIC_ID, TODAY.isoformat()]


def test_a_dated_link_needs_its_last_day_and_a_known_purpose():
    with pytest.raises(ValueError):
        link_token(BOOKING, PUBLIC_ID)
    with pytest.raises(ValueError):
        link_token("admin", PUBLIC_ID, TODAY)


class _Visit:
    def __init__(self, window_end, scheduled_for):
        self.window_end, self.scheduled_for = window_end, scheduled_for


def test_a_booking_link_lasts_until_the_window_closes_or_a_later_appointment(settings):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.CLINIC_TIME_ZONE)
    inside = _Visit(date(2027, 3, 20), datetime(2027, 3, 12, 10, tzinfo=zone))
    after = _Visit(date(2027, 3, 20), datetime(2027, 3, 27, 10, tzinfo=zone))

    assert booking_link_valid_until(inside) == date(2027, 3, 20)
    assert booking_link_valid_until(after) == date(2027, 3, 27)
    # A missed visit's rebooking link: 30 days from the day its "please rebook" e-mail goes out.
    assert rebooking_link_valid_until(_Visit(date(2027, 3, 20), None)) == date(2027, 4, 20)
