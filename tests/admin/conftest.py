"""Staff users in their roles' groups, and one patient whose record has something in every section.

The record is made through the services, so its visits, reminders, outcomes and flags are those
production would derive. Its clinical values are planted to be unmistakable, so a page that must
show no clinical data can be scanned for them.
"""

import os
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from playwright.sync_api import sync_playwright

from clinic.roles import Role, group_for
from followups import services as followups
from followups.codes import LabTest, VisitKind, VisitStatus
from followups.flags_store import flags_sync
from followups.models import SessionTemplate, Visit
from followups.sessions import session_template_save
from patients import codes
from patients import services as record
from tests.factories import PatientFactory, diagnosis_for, treatment_for

# Words and values of the planted record that only clinical readers may see.
CLINICAL_MARKERS = (
    "PLANTED-DIAGNOSIS-NOTE",
    "PLANTED-IMAGING-REPORT",
    "PLANTED-TREATMENT-NOTE",
    "PLANTED-ASSESSMENT-NOTE",
    "Carbamazepine",
    "carbamazepine",
    "Onabotulinum",
    "HLA-B",
    "Cohen-Albert",
    "37.25",
    "Diagnoses",
    "Imaging",
    "Treatments",
    "Assessments",
    "Laboratory",
    "Flags",
    "Current outcome",
    "recovery-chart",
)

# Spasms per day and Cohen-Albert grade of the planted symptom logs, by days before today.
LOGS = {240: ("40", 3), 150: ("12.5", 2), 60: ("37.25", 3), 10: ("3", 1)}


def days(n: int) -> timedelta:
    return timedelta(days=n)


def at_clinic(on: date, hour: int = 11) -> datetime:
    return datetime.combine(on, time(hour), tzinfo=ZoneInfo(settings.CLINIC_TIME_ZONE))


@pytest.fixture
def today() -> date:
    return timezone.localdate()


@pytest.fixture
def make_staff(db):
    def make(role: Role | None, *, superuser: bool = False):
        name = f"{role.value if role else 'super'}-{get_user_model().objects.count()}"
        user = get_user_model().objects.create_user(
            username=name, password="pw", is_staff=True, is_superuser=superuser
        )
        if role is not None:
            user.groups.add(group_for(role))
        return user

    return make


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def clinician(make_staff):
    return client_for(make_staff(Role.CLINICIAN))


@pytest.fixture
def superuser(make_staff):
    return client_for(make_staff(None, superuser=True))


@pytest.fixture
def nurse(make_staff):
    return client_for(make_staff(Role.NURSE))


@pytest.fixture
def front_desk(make_staff):
    return client_for(make_staff(Role.FRONT_DESK))


@pytest.fixture
def planted(db, today):
    """A patient with a diagnosis, an MRI, a toxin session and a carbamazepine course, four
    symptom logs, a lab result, the visits and reminders planning made, outcomes and flags."""
    patient = PatientFactory(email_reminders=True, at_risk_hla_b1502=True, phone="+49 30 1234567")
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(300), notes="PLANTED-DIAGNOSIS-NOTE")
    record.imaging_study_record(
        patient=patient,
        diagnosis=diagnosis,
        performed_on=today - days(290),
        modality=codes.ImagingModality.MRI,
        sequences=[codes.ImagingSequence.CISS],
        compression_found=codes.CompressionFound.YES,
        offending_vessels=["aica"],
        report="PLANTED-IMAGING-REPORT",
    )
    toxin = treatment_for(
        diagnosis,
        codes.TreatmentKind.BOTULINUM_TOXIN,
        started_on=today - days(200),
        notes="PLANTED-TREATMENT-NOTE",
    )
    course = treatment_for(diagnosis, codes.TreatmentKind.MEDICATION, started_on=today - days(100))
    logs = [
        followups.assessment_record(
            patient=patient,
            assessed_on=today - days(ago),
            spasms_per_day=spasms,
            cohen_albert_grade=grade,
            notes="PLANTED-ASSESSMENT-NOTE",
        )
        for ago, (spasms, grade) in LOGS.items()
    ]
    followups.lab_result_record(
        patient=patient, test=LabTest.SODIUM, taken_on=today - days(20), value="131.5"
    )
    patient.refresh_from_db()
    return {"patient": patient, "diagnosis": diagnosis, "toxin": toxin, "course": course, "logs": logs}


# --- clinic sessions (issue 13) --------------------------------------------------------------------


def session_template(
    *,
    on: date,
    kinds=(VisitKind.REVIEW,),
    label: str = "Review clinic",
    starts: str = "09:00",
    ends: str = "10:00",
    minutes: int = 20,
    capacity: int = 1,
    valid_to: date | None = None,
) -> SessionTemplate:
    """A weekly template on ``on``'s weekday, in force from today, written through the service: its
    sessions of the next 26 weeks (``on``'s among them) are there at once."""
    return session_template_save(
        visit_kinds=list(kinds),
        label=label,
        weekday=on.weekday(),
        starts_at=time.fromisoformat(starts),
        ends_at=time.fromisoformat(ends),
        slot_minutes=minutes,
        capacity=capacity,
        valid_from=timezone.localdate(),
        valid_to=valid_to,
    ).template


# --- a real browser (issue 6, item 6) -----------------------------------------------------------

# Debian's Chromium, never a browser Playwright downloads (.ci/run installs the package).
CHROMIUM = os.environ.get("HFS_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking switches Chromium keeps dialling Google on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots are kept as test artifacts, next to the checkout unless told otherwise.
ARTIFACTS = Path(os.environ.get("HFS_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


@pytest.fixture(scope="module")
def chromium():
    # Playwright's synchronous API keeps an event loop in this thread, so Django would refuse the
    # test's own ORM calls as "async unsafe"; they run strictly between browser calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_page(chromium, live_server):
    """A fresh browser context (no cookies) on the live server, closed after the test."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, user, password: str = "pw") -> None:
    """Log in through the admin's own login form, as staff do."""
    page.goto("/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def screenshot(page, name: str, *, element=None) -> Path:
    """Save a PNG of the whole page (or of one element) under test-artifacts/browser/; answer its path."""
    path = ARTIFACTS / "browser" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if element is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        element.screenshot(path=str(path))
    assert path.stat().st_size > 1000, f"{path} is empty"
    return path


def overdue_visit(patient, *, ended_ago: int, purpose: str = "Toxin re-injection") -> Visit:
    """A planned review whose window closed ``ended_ago`` days ago, unbooked: overdue, with the
    flags stored as the nightly run stores them (the overdue list and the call list read those)."""
    today = timezone.localdate()
    visit = Visit.objects.create(
        patient=patient,
        purpose=purpose,
        visit_kind=VisitKind.REVIEW,
        scheduled_for=at_clinic(today - days(ended_ago + 3)),
        window_start=today - days(ended_ago + 6),
        window_end=today - days(ended_ago),
        status=VisitStatus.PLANNED,
        source="manual",
    )
    flags_sync(patient=patient)
    return visit


def waiting_patient(family_name: str, overdue_days: int, today: date):
    """A patient whose review window closed ``overdue_days`` ago without a booking."""
    patient = PatientFactory(
        family_name=family_name, phone=f"+49 30 55{overdue_days:04d}", email_reminders=True
    )
    return patient, overdue_visit(patient, ended_ago=overdue_days)
