"""The pure rules of the clinical record (DOMAIN.md sections 2 and 4), at every boundary; no database."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patients import codes, rules
from patients.rules import ToxinExcess, ToxinSession, toxin_units_excess

CENT = Decimal("0.01")
DAY = timedelta(days=1)
JAN_1 = date(2024, 1, 1)

# --- daily dose ceilings ------------------------------------------------------------------------

CEILINGS = [
    (codes.Drug.CARBAMAZEPINE, "1200"),
    (codes.Drug.OXCARBAZEPINE, "2400"),
    (codes.Drug.CLONAZEPAM, "20"),
    (codes.Drug.BACLOFEN, "80"),
    (codes.Drug.GABAPENTIN, "3600"),
]


def test_the_ceilings_are_those_of_the_domain_and_cover_every_named_drug():
    assert {drug: str(ceiling) for drug, ceiling in codes.DAILY_DOSE_CEILING_MG.items()} == dict(CEILINGS)
    assert set(codes.DAILY_DOSE_CEILING_MG) == set(codes.Drug.values) - {codes.Drug.OTHER}


@pytest.mark.parametrize(("drug", "ceiling"), CEILINGS)
def test_a_dose_exactly_at_the_ceiling_is_allowed(drug, ceiling):
    assert rules.dose_ceiling_error(drug, Decimal(ceiling)) is None


@pytest.mark.parametrize(("drug", "ceiling"), CEILINGS)
def test_a_dose_one_hundredth_of_a_mg_above_the_ceiling_is_refused_naming_drug_and_ceiling(drug, ceiling):
    dose = Decimal(ceiling) + CENT

    assert rules.dose_ceiling_error(drug, dose) == (
        f"{codes.Drug(drug).label} is limited to {ceiling} mg a day; {dose} mg is above it."
    )


@pytest.mark.parametrize("drug", codes.Drug.values)
@pytest.mark.parametrize("dose", ["0", "0.00", "-0.01", "-400"])
def test_a_dose_of_zero_or_less_is_refused_for_every_drug(drug, dose):
    assert rules.dose_ceiling_error(drug, Decimal(dose)) == "The daily dose must be more than 0 mg."


@pytest.mark.parametrize("drug", codes.Drug.values)
def test_the_smallest_positive_dose_is_allowed(drug):
    assert rules.dose_ceiling_error(drug, CENT) is None


def test_other_drugs_have_no_ceiling():
    assert rules.dose_ceiling_error(codes.Drug.OTHER, Decimal("99999.99")) is None


@given(
    drug=st.sampled_from(codes.Drug.values),
    dose=st.decimals(min_value=-10, max_value=10000, places=2, allow_nan=False, allow_infinity=False),
)
def test_a_dose_is_refused_exactly_when_it_is_not_in_the_open_closed_range_up_to_the_ceiling(drug, dose):
    ceiling = codes.DAILY_DOSE_CEILING_MG.get(drug, Decimal("Infinity"))

    assert (rules.dose_ceiling_error(drug, dose) is None) == (0 < dose <= ceiling)


# --- secondary cause ----------------------------------------------------------------------------


@pytest.mark.parametrize("cause", codes.SecondaryCause.values)
def test_a_secondary_diagnosis_with_any_cause_is_allowed(cause):
    assert rules.secondary_cause_error(codes.HfsKind.SECONDARY, cause) is None


def test_a_secondary_diagnosis_without_a_cause_is_refused():
    assert (
        rules.secondary_cause_error(codes.HfsKind.SECONDARY, "")
        == "A secondary diagnosis needs its secondary cause."
    )


@pytest.mark.parametrize("cause", codes.SecondaryCause.values)
def test_a_primary_diagnosis_with_a_cause_is_refused(cause):
    assert (
        rules.secondary_cause_error(codes.HfsKind.PRIMARY, cause)
        == "A primary diagnosis has no secondary cause."
    )


def test_a_primary_diagnosis_without_a_cause_is_allowed():
    assert rules.secondary_cause_error(codes.HfsKind.PRIMARY, "") is None


# --- dates --------------------------------------------------------------------------------------

BIRTH = date(1968, 5, 17)


def test_a_date_on_the_day_of_birth_is_allowed_and_the_day_before_is_refused():
    assert rules.date_before_birth_error(BIRTH, BIRTH) is None
    assert rules.date_before_birth_error(BIRTH + DAY, BIRTH) is None
    assert (
        rules.date_before_birth_error(BIRTH - DAY, BIRTH)
        == "This date is before the patient's date of birth."
    )


def test_a_missing_date_is_not_before_birth():
    assert rules.date_before_birth_error(None, BIRTH) is None


def test_an_end_on_the_start_day_is_allowed_and_the_day_before_is_refused():
    assert rules.end_before_start_error(JAN_1, JAN_1) is None
    assert rules.end_before_start_error(JAN_1, JAN_1 + DAY) is None
    assert rules.end_before_start_error(JAN_1, JAN_1 - DAY) == "The end date is before the start date."


@pytest.mark.parametrize(
    ("start", "end"), [(None, JAN_1), (JAN_1, None), (None, None), ("soon", JAN_1), (JAN_1, "")]
)
def test_an_open_ended_or_unstarted_period_has_no_order_error(start, end):
    assert rules.end_before_start_error(start, end) is None


# --- offending vessels --------------------------------------------------------------------------

NAMED_VESSELS = [v for v in codes.Vessel.values if v != codes.Vessel.NONE_IDENTIFIED]


@pytest.mark.parametrize("vessel", NAMED_VESSELS)
def test_none_identified_cannot_be_combined_with_a_named_vessel(vessel):
    message = "'None identified' cannot be combined with a named vessel."
    assert rules.vessels_error([codes.Vessel.NONE_IDENTIFIED, vessel]) == message
    assert rules.vessels_error([vessel, codes.Vessel.NONE_IDENTIFIED]) == message


@pytest.mark.parametrize(
    "vessels", [[], ["none_identified"], ["none_identified", "none_identified"], ["aica"], NAMED_VESSELS]
)
def test_none_identified_alone_or_any_named_vessels_are_allowed(vessels):
    assert rules.vessels_error(vessels) is None


def test_vessels_can_be_any_iterable_even_a_one_shot_generator():
    assert rules.vessels_error(v for v in ["aica", "none_identified"]) is not None


# --- toxin units per 30 days --------------------------------------------------------------------


def sessions(*pairs):
    return [ToxinSession(JAN_1 + timedelta(days=day), Decimal(units)) for day, units in pairs]


def test_the_limit_and_window_are_those_of_the_domain():
    assert (codes.TOXIN_UNITS_LIMIT, codes.TOXIN_WINDOW_DAYS) == (200, 30)


def test_no_sessions_or_one_session_within_the_limit_is_no_excess():
    assert toxin_units_excess([]) is None
    assert toxin_units_excess(sessions((0, "200"))) is None


def test_exactly_200_units_in_one_window_is_allowed_and_200_01_is_refused():
    assert toxin_units_excess(sessions((0, "120"), (10, "80"))) is None
    assert toxin_units_excess(sessions((0, "120"), (10, "80.01"))) == ToxinExcess(
        JAN_1, JAN_1 + timedelta(days=29), Decimal("200.01")
    )


def test_one_session_above_the_limit_is_an_excess_on_its_own():
    assert toxin_units_excess(sessions((0, "200.01"))) == ToxinExcess(
        JAN_1, JAN_1 + timedelta(days=29), Decimal("200.01")
    )


def test_sessions_29_days_apart_share_a_window():
    excess = toxin_units_excess(sessions((0, "150"), (29, "51")))

    assert excess == ToxinExcess(JAN_1, JAN_1 + timedelta(days=29), Decimal("201"))


def test_sessions_30_days_apart_never_share_a_window():
    assert toxin_units_excess(sessions((0, "200"), (30, "200"))) is None


def test_the_order_in_which_sessions_are_given_does_not_matter():
    assert toxin_units_excess(sessions((40, "150"), (0, "10"), (20, "60"))) == ToxinExcess(
        JAN_1 + timedelta(days=20), JAN_1 + timedelta(days=49), Decimal("210")
    )


def test_the_excess_window_starts_on_a_session_not_on_the_earliest_calendar_day_that_overlaps():
    # Days 5..34 hold both sessions, but so does the window starting on the first session (day 10),
    # which is the one reported.
    excess = toxin_units_excess(sessions((10, "150"), (34, "100")))

    assert excess == ToxinExcess(JAN_1 + timedelta(days=10), JAN_1 + timedelta(days=39), Decimal("250"))


def test_a_window_that_does_not_start_on_the_newest_session_is_found():
    # The excess lies in the window of the first session; the last session alone is fine.
    assert toxin_units_excess(sessions((0, "150"), (20, "60"), (45, "10"))) == ToxinExcess(
        JAN_1, JAN_1 + timedelta(days=29), Decimal("210")
    )


def test_sessions_on_the_same_day_are_added():
    assert toxin_units_excess(sessions((3, "100"), (3, "100.01"))).units == Decimal("200.01")


def test_the_rule_adds_only_what_it_is_given_so_units_of_different_products_are_never_added():
    # The caller passes one product at a time: 150 U of two products on one day are two separate
    # checks, each within the limit.
    onabotulinum = sessions((0, "150"))
    abobotulinum = sessions((0, "150"))

    assert toxin_units_excess(onabotulinum) is None
    assert toxin_units_excess(abobotulinum) is None
    assert toxin_units_excess(onabotulinum + abobotulinum) is not None


def test_limit_and_window_can_be_given():
    assert toxin_units_excess(sessions((0, "60"), (6, "50")), limit=100, window_days=7) is not None
    assert toxin_units_excess(sessions((0, "60"), (7, "50")), limit=100, window_days=7) is None


def _brute_force_windows(all_sessions, window_days):
    """Every calendar window that touches a session, with its units, earliest start first."""
    first = min(s.given_on for s in all_sessions)
    last = max(s.given_on for s in all_sessions)
    start = first - timedelta(days=window_days - 1)
    while start <= last:
        end = start + timedelta(days=window_days - 1)
        units = sum((s.units for s in all_sessions if start <= s.given_on <= end), Decimal(0))
        yield start, end, units
        start += DAY


session_lists = st.lists(
    st.builds(
        ToxinSession,
        given_on=st.integers(min_value=0, max_value=120).map(lambda day: JAN_1 + timedelta(days=day)),
        units=st.decimals(min_value="0.01", max_value="200", places=2),
    ),
    max_size=8,
)


@given(all_sessions=session_lists, window_days=st.sampled_from([1, 7, 29, 30, 31]))
def test_the_excess_agrees_with_a_brute_force_check_of_every_calendar_window(all_sessions, window_days):
    found = toxin_units_excess(all_sessions, window_days=window_days)

    over = [w for w in _brute_force_windows(all_sessions, window_days) if w[2] > 200] if all_sessions else []
    assert (found is None) == (not over)
    if found is not None:
        # The reported window is the earliest one over the limit, slid forward to its first session.
        earliest_start = over[0][0]
        first_session = min(s.given_on for s in all_sessions if s.given_on >= earliest_start)
        assert found.window_start == first_session
        assert found.window_end == found.window_start + timedelta(days=window_days - 1)
        assert found.units == sum(
            (s.units for s in all_sessions if found.window_start <= s.given_on <= found.window_end),
            Decimal(0),
        )
        assert found.units > 200
