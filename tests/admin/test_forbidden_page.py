"""A page of the staff panel that a role may not open answers the panel's own 403 page (issue 16):
the header, the way back to the dashboard, who is signed in and in which role, and why; nothing of
the record it refused. Elsewhere a 403 is what it was, and the panel shows no "View site" link to a
site that does not exist."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from clinic.roles import Role
from clinic.urls import forbidden
from tests.admin.conftest import CLINICAL_MARKERS, client_for


@pytest.mark.parametrize("url", ["/admin/patients/treatment/add/", "/admin/patients/diagnosis/"])
def test_the_front_desk_refused_the_clinical_record_gets_a_page_that_says_why(planted, front_desk, url):
    response = front_desk.get(url)
    html = response.content.decode()

    assert response.status_code == 403
    assert 'data-test="forbidden"' in html
    assert "Your role (Front desk) does not include the clinical record. Ask a clinician" in html
    assert '<a href="/admin/" data-test="forbidden-home">Back to the dashboard</a>' in html
    assert 'data-test="forbidden-role">Front desk<' in html
    assert response.wsgi_request.user.username in html
    assert 'id="logout-form"' in html and 'form="logout-form"' in html
    assert 'id="site-name"' in html  # the panel's own header
    assert [marker for marker in CLINICAL_MARKERS if marker in html] == []
    patient = planted["patient"]
    assert patient.mrn not in html and patient.family_name not in html


def test_a_nurse_refused_a_change_is_told_her_role_only_reads_it(make_staff):
    response = client_for(make_staff(Role.NURSE)).get("/admin/patients/diagnosis/add/")

    assert response.status_code == 403
    assert "Your role (Nurse) may only read the clinical record here." in response.content.decode()


def test_a_page_for_administrators_says_so(make_staff):
    response = client_for(make_staff(Role.CLINICIAN)).get("/admin/clinic/auditevent/")

    assert response.status_code == 403
    assert "This page is for the clinic&#x27;s administrators only." in response.content.decode()


def test_a_staff_user_without_a_role_is_told_so(make_staff):
    response = client_for(make_staff(None)).get("/admin/followups/visit/")

    assert response.status_code == 403
    html = response.content.decode()
    assert "Your account has no role yet, so it does not include visits." in html
    assert 'data-test="forbidden-role">no role<' in html


def test_a_signed_out_visitor_is_still_sent_to_the_login(client, db):
    response = client.get("/admin/patients/treatment/add/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/patients/treatment/add/"


@pytest.mark.parametrize(
    "path", ["/api/v1/patients/", "/fhir/Patient", "/p/visit/token/", "/admin/patients/"]
)
def test_outside_the_panel_or_signed_out_a_403_stays_djangos_plain_one(path, make_staff, rf: RequestFactory):
    request = rf.get(path)
    request.user = make_staff(Role.FRONT_DESK)
    request.user.is_staff = "/admin/" not in path  # a signed-in non-staff user in the panel

    response = forbidden(request, PermissionDenied())

    assert response.status_code == 403
    assert "<h1>403 Forbidden</h1><p></p>" in response.content.decode()
    assert "forbidden" not in response.content.decode()


def test_the_panel_shows_no_view_site_link(clinician):
    html = clinician.get("/admin/").content.decode()

    assert "View site" not in html
