"""Logins to the admin, failed ones included, are in the audit trail; passwords never are."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from clinic.models import AuditEvent

LOGIN = "/admin/login/"
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(username="dr.ramos", password=PASSWORD, is_staff=True)


def logins() -> list[tuple]:
    rows = AuditEvent.objects.filter(resource="user").order_by("id")
    return [(e.action, e.actor, e.actor_id, e.channel, e.status, e.method, e.path) for e in rows]


def log_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})


def test_a_failed_login_records_the_account_tried_and_not_the_password(staff):
    response = log_in(Client(), staff.username, "not-the-password")

    assert response.status_code == 200  # the form again, with its error
    assert logins() == [("login_failed", staff.username, staff.pk, "admin", 401, "POST", LOGIN)]
    [event] = AuditEvent.objects.all()
    assert "not-the-password" not in " ".join(str(value) for value in vars(event).values())


def test_a_name_nobody_has_is_not_written_down_as_typed(db):
    # Likely a password typed into the name's box: the append-only table would keep it for ever.
    log_in(Client(), "Winter2026!", "whatever")
    log_in(Client(), "", "whatever")  # refused by the form: no attempt reached authentication

    [(action, actor, actor_id, *_)] = logins()
    assert (action, actor, actor_id) == ("login_failed", "(no such user)", None)
    assert not AuditEvent.objects.filter(actor__contains="Winter").exists()


def test_a_login_and_a_logout_are_recorded_with_the_account(staff):
    browser = Client()
    assert log_in(browser, "dr.ramos", PASSWORD).status_code == 302
    assert browser.post("/admin/logout/").status_code == 200

    assert logins() == [
        ("login", "dr.ramos", staff.pk, "admin", 200, "POST", LOGIN),
        ("logout", "dr.ramos", staff.pk, "admin", 200, "POST", "/admin/logout/"),
    ]


def test_a_logout_without_a_login_records_nothing(db):
    Client().post("/admin/logout/")
    assert logins() == []
