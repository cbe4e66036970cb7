"""The OpenAPI schema and its page: for signed-in staff and API clients only, built once, throttled
(issue 20: public, and rebuilt at 0.5-2 s of CPU on every request)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from clinic import api_docs
from clinic.roles import Role

pytestmark = pytest.mark.django_db

SCHEMA = "/api/schema/"


def test_nobody_signed_out_gets_the_schema(anonymous):
    response = anonymous.get(SCHEMA, {"format": "json"})

    assert response.status_code == 401
    assert "paths" not in response.content.decode()


@pytest.mark.parametrize("role", list(Role))
def test_every_role_s_api_client_gets_the_schema(api_as, role):
    # An integrator needs it to write a client, whatever their client may do with the API.
    response = api_as(role).get(SCHEMA, {"format": "json"})

    assert response.status_code == 200
    assert "/api/v1/patients/" in response.json()["paths"]


def test_signed_in_staff_get_the_schema_and_its_page():
    browser = Client()
    browser.force_login(get_user_model().objects.create_user("reader", is_staff=True))

    assert browser.get(SCHEMA, {"format": "json"}).status_code == 200
    page = browser.get("/api/docs/")
    assert page.status_code == 200
    assert 'src="/api/docs/?script="' in page.content.decode()


def test_the_page_sends_a_signed_out_visitor_to_the_staff_login_and_back():
    response = Client().get("/api/docs/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/api/docs/"
    # Its script holds the schema's address only: refused, not redirected (it is no page).
    assert Client().get("/api/docs/?script=").status_code in (401, 403)


def test_the_schema_is_built_once_per_process_and_language(api_as, monkeypatch):
    built = []
    original = SchemaGenerator.get_schema

    def counting(self, *args, **kwargs):
        built.append(1)
        return original(self, *args, **kwargs)

    api_docs._built.clear()
    monkeypatch.setattr(SchemaGenerator, "get_schema", counting)
    client = api_as(Role.INTEGRATION_READ)

    first = client.get(SCHEMA, {"format": "json"})
    again = client.get(SCHEMA, {"format": "json"})
    as_yaml = client.get(SCHEMA)
    german = client.get(SCHEMA, {"format": "json", "lang": "de"})

    assert [r.status_code for r in (first, again, as_yaml, german)] == [200] * 4
    assert first.content == again.content
    assert as_yaml.content.startswith(b"openapi: 3")
    assert len(built) == 2  # English once (JSON and YAML alike), German once

    # Languages and versions the site does not have are no new copies (each would be kept).
    for n in range(3):
        assert client.get(SCHEMA, {"format": "json", "lang": f"zz{n}", "version": f"v{n}"}).status_code == 200
    assert len(built) == 2
    assert len(api_docs._built) == 2


def test_the_schema_is_throttled_per_caller(api_as, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "schema": "2/min"},
    }
    client = api_as(Role.CLINICIAN)

    other = api_as(Role.INTEGRATION_READ)

    statuses = [client.get(SCHEMA, {"format": "json"}).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert other.get(SCHEMA, {"format": "json"}).status_code == 200
