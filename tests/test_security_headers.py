"""What every answer tells the browser (issue 20, production mode): a Content-Security-Policy with no
inline script, and no copy of patient data kept in a cache."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from clinic.roles import Role, group_for

pytestmark = pytest.mark.django_db

STAFF_PAGES = ["/admin/", "/admin/patients/patient/", "/admin/followups/visit/", "/api/docs/"]


@pytest.fixture
def staff():
    user = get_user_model().objects.create_user("nurse-headers", is_staff=True)
    user.groups.add(group_for(Role.NURSE))
    client = Client()
    client.force_login(user)
    return client


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.parametrize(
    ("path", "status"),
    [*((page, 200) for page in STAFF_PAGES), ("/admin/login/", 200), ("/p/visit/not-a-token/", 404)],
)
def test_every_page_carries_a_policy_without_inline_script_or_other_hosts(staff, path, status):
    response = (Client() if path == "/admin/login/" else staff).get(path)

    assert response.status_code == status, path
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert not any(re.search(r"https?:|\*|unsafe-eval", " ".join(v)) for v in policy.values())
    # A <style> block needs the nonce of its response (named only where the page used one).
    assert policy["style-src"][0] == "'self'"
    assert all(re.fullmatch(r"'nonce-[\w+/=-]+'", value) for value in policy["style-src"][1:])


def test_a_style_block_carries_the_nonce_of_its_own_response(staff):
    first, second = staff.get("/api/docs/"), staff.get("/api/docs/")
    nonces = [directives(r)["style-src"][1][len("'nonce-") : -1] for r in (first, second)]

    assert nonces[0] != nonces[1]
    assert f'<style nonce="{nonces[0]}">' in first.content.decode()


@pytest.mark.parametrize(
    "path", [*STAFF_PAGES, "/api/v1/patients/", "/api/schema/", "/fhir/metadata", "/p/visit/not-a-token/"]
)
def test_nothing_the_application_answers_is_kept_in_a_cache(staff, path):
    response = staff.get(path)

    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= cache_control, path


def test_the_project_s_static_files_keep_their_cache_lifetime(tmp_path, settings):
    from django.core.management import call_command

    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", "--noinput", verbosity=0)

    response = Client().get("/static/followups/patient.css")

    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
    response.close()
