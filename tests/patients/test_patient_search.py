"""Finding a patient from the staff panel's search boxes (issue 16): by a name part, part of an
MRN, a phone however it is typed, an e-mail, or a birth date in the formats staff type; every word
narrows. The patient list, the contact attempts, the call list and the dashboard search this way,
and on PostgreSQL every way a word matches is answered from an index."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from clinic.roles import Role, group_for
from followups.codes import ContactChannel, ContactOutcome, VisitKind, VisitStatus
from followups.flags_store import flags_sync
from followups.models import ContactAttempt, Visit
from patients.models import Patient
from patients.search import patients_matching, search_words
from tests.factories import PatientFactory

PATIENTS_URL = "/admin/patients/patient/"
CALL_URL = "/admin/followups/contactattempt/call-list/"
ATTEMPTS_URL = "/admin/followups/contactattempt/"


def staff(role: Role) -> Client:
    user = get_user_model().objects.create_user(username=f"{role.value}-search", password="pw", is_staff=True)
    user.groups.add(group_for(role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def clinician(db):
    return staff(Role.CLINICIAN)


@pytest.fixture
def front_desk(db):
    return staff(Role.FRONT_DESK)


@pytest.fixture
def lindqvist(db):
    return PatientFactory(
        mrn="HFS-0042137",
        given_name="Margarethe",
        family_name="Lindqvist",
        date_of_birth=date(1968, 5, 17),
        email="m.lindqvist@example.org",
        phone="+49 30 1234567",
    )


@pytest.fixture
def others(db):
    """Patients each sharing one thing with Lindqvist, and nothing else of what is searched."""
    return [
        PatientFactory(
            mrn="HFS-0099001",
            given_name="Anna",
            family_name="Lindqvist",
            date_of_birth=date(1971, 2, 3),
            phone="+49 30 7654321",
        ),
        PatientFactory(
            mrn="HFS-0099002",
            given_name="Margarethe",
            family_name="Okafor",
            date_of_birth=date(1968, 5, 17),
            phone="+44 20 7946 0000",
        ),
    ]


def found(term: str, queryset=None) -> list[str]:
    return sorted(p.mrn for p in patients_matching(queryset or Patient.objects.all(), term))


@pytest.mark.parametrize(
    "term",
    ["+49 (30) 123-4567", "+49 30 1234567", "0049 30 1234567", "030 / 123 45 67", "49301234567", "1234567"],
)
def test_a_phone_typed_in_any_formatting_finds_the_patient(lindqvist, others, term):
    assert found(term) == ["HFS-0042137"]


def test_a_phone_shorter_than_four_digits_is_not_read_as_one(lindqvist, others):
    # "123" is in Lindqvist's phone, but matches no MRN, name or e-mail.
    assert found("123") == []


@pytest.mark.parametrize("term", ["42137", "hfs-00421", "0042137", "HFS-0042137"])
def test_part_of_an_mrn_finds_the_patient(lindqvist, others, term):
    assert found(term) == ["HFS-0042137"]


@pytest.mark.parametrize("term", ["lindq", "LINDQVIST", "garet", "Margarethe"])
def test_part_of_a_name_finds_everyone_of_that_name(lindqvist, others, term):
    same_name = [p.mrn for p in others if term.lower() in f"{p.given_name} {p.family_name}".lower()]
    assert found(term) == sorted(["HFS-0042137", *same_name])


def test_part_of_an_e_mail_finds_the_patient(lindqvist, others):
    assert found("m.lindqvist@example") == ["HFS-0042137"]


@pytest.mark.parametrize("term", ["1968-05-17", "17.05.1968", "17/05/1968"])
def test_a_birth_date_in_each_format_finds_who_was_born_that_day(lindqvist, others, term):
    assert found(term) == ["HFS-0042137", "HFS-0099002"]


@pytest.mark.parametrize(
    "term", ["lindqvist 1968-05-17", "Margarethe Lindqvist", "margarethe 030 1234567", "lindqvist 42137"]
)
def test_each_word_narrows(lindqvist, others, term):
    assert found(term) == ["HFS-0042137"]


@pytest.mark.parametrize("term", ["Zebedee", "lindqvist 1999-01-01", "31.02.1968", "+49 30 9999999"])
def test_a_term_that_matches_nobody_finds_nobody(lindqvist, others, term):
    assert found(term) == []


def test_a_pasted_or_crafted_term_of_thousands_of_words_is_cut_to_the_first_few(lindqvist, others):
    # The words past the eighth would match nobody; they are not part of the query at all.
    term = "lindqvist " + " ".join(["zz"] * 1300)
    query = str(patients_matching(Patient.objects.all(), term).query)
    assert query.count("LIKE") < 8 * 8
    assert found("lindqvist margarethe 1968-05-17 " + "ab " * 20) == []
    assert found("lindqvist " * 30) == found("lindqvist")


def test_a_blank_term_keeps_every_row(lindqvist, others):
    assert len(found("   ")) == 3


def test_the_pieces_of_a_number_typed_with_spaces_are_one_word_and_a_date_stays_apart():
    assert search_words("Lindqvist +49 (30) 123-4567 17.05.1968") == [
        "Lindqvist",
        "+49(30)123-4567",
        "17.05.1968",
    ]


def test_rows_with_a_patient_are_searched_by_their_patient(lindqvist, others):
    for patient in [lindqvist, *others]:
        ContactAttempt.objects.create(
            patient=patient, at=timezone.now(), channel=ContactChannel.PHONE, outcome=ContactOutcome.NO_ANSWER
        )

    attempts = patients_matching(ContactAttempt.objects.all(), "+49 (30) 123-4567", prefix="patient__")

    assert [a.patient_id for a in attempts] == [lindqvist.pk]


# --- the pages ----------------------------------------------------------------------------------


def listed(response) -> list[str]:
    assert response.status_code == 200
    return sorted(p.mrn for p in response.context["cl"].result_list)


@pytest.mark.parametrize("term", ["+49 (30) 123-4567", "42137", "17.05.1968 lindqvist"])
def test_the_patient_list_finds_by_phone_mrn_part_and_birth_date(lindqvist, others, clinician, term):
    response = clinician.get(PATIENTS_URL, {"q": term})

    assert listed(response) == ["HFS-0042137"]
    assert "Name, MRN, phone or birth date" in response.content.decode()


def test_the_patient_lists_search_costs_a_fixed_number_of_queries(
    lindqvist, others, clinician, django_assert_max_num_queries
):
    for n in range(30):
        PatientFactory(phone=f"+49 30 12345{n:02d}")
    clinician.get(PATIENTS_URL)  # the session and the user, as on any later page

    # The session, the user and its role, two of Django's permission checks; the count and the
    # page of patients; the audit of the rows shown.
    with django_assert_max_num_queries(8):
        response = clinician.get(PATIENTS_URL, {"q": "030 12345"})

    assert len(response.context["cl"].result_list) == 31


def test_the_contact_attempts_are_searched_by_their_patient(lindqvist, others, front_desk):
    for patient in [lindqvist, *others]:
        ContactAttempt.objects.create(
            patient=patient, at=timezone.now(), channel=ContactChannel.PHONE, outcome=ContactOutcome.NO_ANSWER
        )

    response = front_desk.get(ATTEMPTS_URL, {"q": "0049 30 1234567"})

    assert response.status_code == 200
    assert [a.patient_id for a in response.context["cl"].result_list] == [lindqvist.pk]


def overdue(patient) -> Visit:
    today = timezone.localdate()
    visit = Visit.objects.create(
        patient=patient,
        purpose="Review",
        visit_kind=VisitKind.REVIEW,
        scheduled_for=timezone.now() - timedelta(days=10),
        window_start=today - timedelta(days=13),
        window_end=today - timedelta(days=7),
        status=VisitStatus.PLANNED,
        source="manual",
    )
    flags_sync(patient=patient)
    return visit


def test_the_call_list_keeps_the_rows_whose_patient_matches(lindqvist, others, front_desk):
    for patient in [lindqvist, *others]:
        overdue(patient)
    assert front_desk.get(CALL_URL).context["paginator"].count == 3

    response = front_desk.get(CALL_URL, {"q": "+49 (30) 123-4567"})

    assert response.status_code == 200
    assert [row.patient.pk for row in response.context["rows"]] == [lindqvist.pk]
    assert response.context["paginator"].count == 1
    assert response.context["search"] == "+49 (30) 123-4567"
    csv = front_desk.get(response.context["csv_url"]).content.decode()
    assert "HFS-0042137" in csv and "HFS-0099001" not in csv


def test_the_dashboard_searches_the_patient_list(lindqvist, others, front_desk):
    html = front_desk.get("/admin/").content.decode()

    assert f'<form class="hfs-search" method="get" action="{PATIENTS_URL}"' in html
    assert 'name="q"' in html and "Name, MRN, phone or birth date" in html
    assert listed(front_desk.get(PATIENTS_URL, {"q": "Margarethe Lindqvist"})) == ["HFS-0042137"]


# --- the indexes --------------------------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigram indexes are PostgreSQL's")
@pytest.mark.parametrize(
    ("term", "indexes"),
    [
        (
            "lindq",
            [
                "patients_patient_given_trgm",
                "patients_patient_family_trgm",
                "patients_patient_mrn_trgm",
                "patients_patient_email_trgm",
            ],
        ),
        ("+49 (30) 123-4567", ["patients_patient_mrn_trgm", "patients_patient_phone_trgm"]),
        ("17.05.1968", ["patients_patient_born"]),
    ],
)
def test_on_postgresql_every_way_a_word_matches_has_an_index(lindqvist, others, term, indexes):
    # A handful of rows would be scanned whatever the indexes: without scans of the table or
    # along an index (which reads every row), the planner must find one bitmap scan per way a
    # word can match, or it falls back to the scan it was told not to use.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    plan = patients_matching(Patient.objects.order_by(), term).explain()

    assert "Seq Scan" not in plan
    for index in indexes:
        assert index in plan
