"""The dashboard on the admin index: each count, the list behind its link, and its cost."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinic.roles import Role
from followups import services as followups
from followups.codes import FlagCode, ReminderStatus, VisitStatus
from followups.dashboard import dashboard_for
from followups.flags_store import flag_acknowledge, flags_sync
from followups.models import PatientFlag, Reminder, Visit
from followups.selectors import worklist_due, worklist_flagged, worklist_overdue
from followups.visit_moves import visit_move
from patients import codes
from patients import services as record
from tests.admin.conftest import at_clinic, days
from tests.factories import PatientFactory, diagnosis_for, treatment_for


def tile(html: str, test_id: str) -> tuple[int, str]:
    """The count and link of one dashboard tile."""
    match = re.search(rf'<a [^>]*href="([^"]+)"[^>]*data-test="{test_id}"[^>]*data-count="(\d+)"', html, re.S)
    assert match, f"no tile {test_id}"
    return int(match.group(2)), match.group(1).replace("&amp;", "&")


def listed(client, url) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200
    assert "cl" in response.context, "the link did not open a filtered list"
    return sorted(obj.pk for obj in response.context["cl"].result_list)


def new_patient(today, **fields):
    patient = PatientFactory(**fields)
    # Diagnosed 30 days ago: the untreated review is 150 days ahead, out of every list below.
    diagnosis_for(patient, diagnosed_on=today - days(30))
    return patient


def visit(patient, on, hour=11, status=VisitStatus.BOOKED):
    return followups.visit_create(
        patient=patient, purpose="Check", scheduled_for=at_clinic(on, hour), status=status
    )


@pytest.fixture
def clinic_day(db, today):
    """Two visits today, one in three days, one in ten; a missed and a lapsed planned visit of two
    patients with nothing booked ahead, and a missed visit of a patient who has (not overdue, v2);
    two patients with a carbamazepine course for at-risk ancestry; one failed reminder."""
    a, b = new_patient(today), new_patient(today)
    rows = {
        "today": [visit(a, today, 0), visit(b, today, 23)],
        "soon": [visit(a, today + days(3), status=VisitStatus.PLANNED)],
        "later": [visit(b, today + days(10))],
    }
    missed = visit(new_patient(today), today - days(5))
    visit_move(visit=missed, to=VisitStatus.MISSED)  # its time has passed
    lapsed = visit(new_patient(today), today - days(9), status=VisitStatus.PLANNED)
    rows["overdue"] = [missed, lapsed]
    # Missed, but the patient holds a booked visit ahead (today's): not overdue (v2).
    rows["covered"] = [visit(b, today - days(6))]
    visit_move(visit=rows["covered"][0], to=VisitStatus.MISSED)
    done = visit(a, today)
    visit_move(visit=done, to=VisitStatus.COMPLETED)  # from the visit's own day on
    for _ in range(2):
        patient = new_patient(today, at_risk_hla_b1502=True)
        treatment_for(patient.diagnoses.get(), codes.TreatmentKind.MEDICATION, started_on=today - days(5))
    Reminder.objects.filter(pk=Reminder.objects.filter(visit=rows["later"][0]).first().pk).update(
        status=ReminderStatus.FAILED, next_attempt_at=None, last_error="550 mailbox unavailable"
    )
    return rows


def test_the_counts_are_the_worklists_and_each_link_lists_exactly_them(clinic_day, clinician, today):
    html = clinician.get("/admin/").content.decode()

    expected = {
        "today": list(worklist_due(days=0, today=today)),
        "week": list(worklist_due(days=7, today=today)),
        "overdue": list(worklist_overdue()),
    }
    assert sorted(v.pk for v in expected["today"]) == sorted(v.pk for v in clinic_day["today"])
    assert sorted(v.pk for v in expected["overdue"]) == sorted(v.pk for v in clinic_day["overdue"])
    assert clinic_day["covered"][0] not in expected["overdue"]
    # The courses' first reviews (day 14) fall nine days ahead, out of the week.
    assert sorted(v.pk for v in expected["week"]) == sorted(
        v.pk for v in clinic_day["today"] + clinic_day["soon"]
    )
    for key, visits in expected.items():
        count, url = tile(html, f"dashboard-visits-{key}")
        assert count == len(visits) > 0
        assert "worklist=" + key in url
        assert listed(clinician, url) == sorted(v.pk for v in visits)


def test_flag_counts_are_patients_per_flag_and_link_to_those_patients(clinic_day, clinician):
    html = clinician.get("/admin/").content.decode()

    flagged = {f.patient_id for f in worklist_flagged(code=FlagCode.HLA_B1502_MISSING)}
    count, url = tile(html, f"dashboard-flag-{FlagCode.HLA_B1502_MISSING}")
    assert count == len(flagged) == 2
    assert listed(clinician, url) == sorted(flagged)
    count, url = tile(html, f"dashboard-flag-{FlagCode.RECURRENCE_AFTER_MVD}")
    assert count == 0
    assert listed(clinician, url) == []


def test_an_archived_patient_leaves_the_flag_count(clinic_day, clinician):
    flag = PatientFlag.objects.filter(code=FlagCode.HLA_B1502_MISSING).first()
    record.patient_archive(patient=flag.patient)

    count, url = tile(
        clinician.get("/admin/").content.decode(), f"dashboard-flag-{FlagCode.HLA_B1502_MISSING}"
    )

    assert count == 1
    assert flag.patient_id not in listed(clinician, url)


def test_an_acknowledged_flag_leaves_the_flag_count_until_its_fact_changes(clinic_day, clinician, make_staff):
    """v2: the tiles count the flags to review (followups.selectors.flags_to_review)."""
    code = FlagCode.HLA_B1502_MISSING
    first, second = PatientFlag.objects.filter(code=code).order_by("pk")
    assert tile(clinician.get("/admin/").content.decode(), f"dashboard-flag-{code}")[0] == 2

    flag_acknowledge(flag=first, by=make_staff(Role.CLINICIAN), note="Test result requested.")

    count, url = tile(clinician.get("/admin/").content.decode(), f"dashboard-flag-{code}")
    assert count == 1
    assert listed(clinician, url) == [second.patient_id]
    # Recomputed with the same fact, it stays off the count.
    flags_sync(patient=first.patient)
    assert tile(clinician.get("/admin/").content.decode(), f"dashboard-flag-{code}")[0] == 1
    # Acknowledging the other one empties the tile.
    flag_acknowledge(flag=second, by=make_staff(Role.CLINICIAN), note="Test result requested.")
    count, url = tile(clinician.get("/admin/").content.decode(), f"dashboard-flag-{code}")
    assert count == 0
    assert listed(clinician, url) == []


def test_a_patient_with_an_acknowledged_flag_still_counts_for_another_flag(clinic_day, clinician, make_staff):
    flag = PatientFlag.objects.filter(code=FlagCode.HLA_B1502_MISSING).first()
    lab_before = tile(
        clinician.get("/admin/").content.decode(), f"dashboard-flag-{FlagCode.LAB_MONITORING_DUE}"
    )[0]

    flag_acknowledge(flag=flag, by=make_staff(Role.CLINICIAN), note="Test result requested.")

    html = clinician.get("/admin/").content.decode()
    assert tile(html, f"dashboard-flag-{FlagCode.LAB_MONITORING_DUE}")[0] == lab_before > 0
    assert tile(html, f"dashboard-flag-{FlagCode.HLA_B1502_MISSING}")[0] == 1


def test_failed_reminders_count_and_link(clinic_day, clinician):
    failed = list(Reminder.objects.filter(status=ReminderStatus.FAILED))

    count, url = tile(clinician.get("/admin/").content.decode(), "dashboard-reminders-failed")

    assert count == len(failed) == 1
    assert listed(clinician, url) == [failed[0].pk]


def test_the_front_desk_sees_visit_and_reminder_counts_and_no_flags(clinic_day, front_desk):
    html = front_desk.get("/admin/").content.decode()

    assert tile(html, "dashboard-visits-today")[0] == 2
    assert tile(html, "dashboard-reminders-failed")[0] == 1
    assert "dashboard-flag" not in html
    assert "HLA" not in html


def test_the_front_desk_cannot_open_the_flag_filter_behind_a_link(clinic_day, front_desk):
    response = front_desk.get(f"/admin/patients/patient/?flag={FlagCode.HLA_B1502_MISSING}")

    # An unknown filter sends the admin back to the unfiltered list with an error flag.
    assert response.status_code == 302
    assert "e=1" in response["Location"]


def test_the_counts_take_a_query_each(clinic_day, clinician, django_assert_num_queries):
    user = clinician.get("/admin/").wsgi_request.user

    # Three visit worklists, the flags, the reminders, the two call lists, last night's run.
    with django_assert_num_queries(8):
        dashboard = dashboard_for(user=user)

    assert [t.count for t in dashboard.visits] and dashboard.flags and dashboard.reminders


def _index_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/admin/").status_code == 200
    return len(queries)


@pytest.mark.parametrize("count", [1, 30])
def test_the_dashboard_page_costs_the_same_whatever_the_clinic_size(
    db, today, clinician, count, django_assert_max_num_queries
):
    patients = [new_patient(today, at_risk_hla_b1502=True) for _ in range(count)]
    Visit.objects.bulk_create(
        Visit(
            patient=p,
            purpose="Check",
            scheduled_for=at_clinic(today + days(n % 8)),
            window_start=today + days(n % 8),
            window_end=today + days(n % 8),
            status=VisitStatus.BOOKED,
            source="manual",
        )
        for n, p in enumerate(patients)
    )

    with django_assert_max_num_queries(14):  # 13, and last night's run
        html = clinician.get("/admin/").content.decode()

    assert tile(html, "dashboard-visits-week")[0] == count


def test_the_dashboard_says_whether_last_night_s_run_finished(db, clinician, settings):
    # Issue 18: the lists are only as fresh as the nightly run; staff see when it did not finish.
    from django.utils import timezone

    from followups.models import FollowUpRun
    from followups.runs.codes import RunKind, RunState

    settings.FOLLOW_UP_NIGHTLY_DUE_HOUR = 0  # today's run is due whatever the hour of the test
    today = timezone.localdate()

    missing = clinician.get("/admin/").content.decode()
    FollowUpRun.objects.create(
        kind=RunKind.NIGHTLY,
        clinic_day=today,
        state=RunState.FINISHED,
        patients=12,
        done=12,
        finished_at=timezone.now(),
    )
    finished = clinician.get("/admin/").content.decode()

    assert 'data-ok="false"' in missing and f"no nightly run was started for {today}" in missing
    assert 'data-ok="true"' in finished and "12 patients" in finished
