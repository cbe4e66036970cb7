"""``create_staff_user NAME --role ROLE``: a staff-panel login in its role's group, its password
judged by Django's validators and never printed (issue 16)."""

import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import RequestFactory

from clinic.roles import Role, role_of
from tests.smoke import ROOT, environment

PASSWORD = "quiet-harbour-lantern-42"


@pytest.fixture
def no_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    monkeypatch.delenv("STAFF_USER_PASSWORD", raising=False)


@pytest.fixture
def terminal(monkeypatch):
    """A terminal whose person types the given answers, in order, to the password prompts."""

    def typing(*answers):
        prompts = []
        answered = iter(answers)
        monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
        monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or next(answered))
        return prompts

    return typing


def create(*args) -> str:
    out = StringIO()
    call_command("create_staff_user", *args, stdout=out, stderr=out)
    return out.getvalue()


def signs_in(username: str, password: str):
    return authenticate(RequestFactory().post("/admin/login/"), username=username, password=password)


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.NURSE, Role.FRONT_DESK])
def test_a_staff_user_is_made_in_the_group_of_their_role(db, no_terminal, role):
    out = create("ana", "--role", role.value, "--password", PASSWORD, "--email", "ana@clinic.example")

    user = get_user_model().objects.get(username="ana")
    assert user.is_staff and user.is_active and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == [role.value]
    assert role_of(user) == role
    assert user.email == "ana@clinic.example"
    assert signs_in("ana", PASSWORD) == user
    assert f"in role {role.label}" in out and PASSWORD not in out


def test_at_a_terminal_the_password_is_asked_twice(db, terminal):
    prompts = terminal(PASSWORD, PASSWORD)

    out = create("ben", "--role", "nurse")

    assert prompts == ["Password: ", "Password (again): "]
    assert signs_in("ben", PASSWORD).username == "ben" and PASSWORD not in out


def test_two_different_answers_at_the_terminal_make_no_user(db, terminal):
    terminal(PASSWORD, PASSWORD + "x")

    with pytest.raises(CommandError, match="The two passwords differ"):
        create("ben", "--role", "nurse")
    assert not get_user_model().objects.filter(username="ben").exists()


def test_without_a_terminal_the_password_comes_from_the_environment(db, no_terminal, monkeypatch):
    monkeypatch.setenv("STAFF_USER_PASSWORD", PASSWORD)

    out = create("cleo", "--role", "front_desk")

    assert signs_in("cleo", PASSWORD).username == "cleo" and PASSWORD not in out


def test_without_a_terminal_or_the_variable_it_refuses(db, no_terminal):
    with pytest.raises(CommandError, match="No password: run this at a terminal .* STAFF_USER_PASSWORD"):
        create("dan", "--role", "clinician")
    assert not get_user_model().objects.filter(username="dan").exists()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short"),
        ("password123", "This password is too common"),
        ("8341729561", "This password is entirely numeric"),
        ("erin.mallory", "The password is too similar to the username"),
    ],
)
def test_the_password_validators_judge_the_password(db, no_terminal, password, message):
    with pytest.raises(CommandError, match=f"The password is refused: .*{message}") as refused:
        create("erin.mallory", "--role", "nurse", "--password", password)
    assert password not in str(refused.value)
    assert not get_user_model().objects.filter(username="erin.mallory").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fay", "--role", "surgeon"], "Unknown role 'surgeon'. Staff roles: clinician, nurse, front_desk."),
        (["fay", "--role", "lab"], "create_api_client NAME --role lab"),
        (["fay", "--role", "integration_read"], "create_api_client NAME --role integration_read"),
        (["fay bar", "--role", "nurse"], "NAME: Enter a valid username"),
        (["fay", "--role", "nurse", "--email", "not-an-address"], "--email: Enter a valid email address."),
        (["fay", "--role", "nurse", "--update"], "There is no user 'fay' to update"),
    ],
)
def test_what_it_refuses(db, no_terminal, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create(*args, "--password", PASSWORD)
    assert not get_user_model().objects.filter(username__startswith="fay").exists()


def test_an_existing_name_is_refused_and_left_as_it_was(db, no_terminal):
    create("gus", "--role", "front_desk", "--password", PASSWORD)

    with pytest.raises(CommandError, match="A user 'gus' exists already.* --update"):
        create("gus", "--role", "clinician", "--password", PASSWORD + "-new")

    user = get_user_model().objects.get(username="gus")
    assert role_of(user) == Role.FRONT_DESK and signs_in("gus", PASSWORD) == user


def test_update_moves_the_role_keeps_other_groups_and_the_password_unless_given(db, no_terminal):
    create("hal", "--role", "front_desk", "--password", PASSWORD)
    user = get_user_model().objects.get(username="hal")
    user.groups.create(name="rota-editors")

    out = create("hal", "--role", "nurse", "--update")

    assert sorted(user.groups.values_list("name", flat=True)) == ["nurse", "rota-editors"]
    assert signs_in("hal", PASSWORD) == user and "updated in role Nurse" in out

    create("hal", "--role", "nurse", "--update", "--password", PASSWORD + "-new")
    assert signs_in("hal", PASSWORD) is None and signs_in("hal", PASSWORD + "-new") == user


def test_update_at_a_terminal_keeps_the_password_on_an_empty_answer(db, no_terminal, terminal):
    create("kit", "--role", "nurse", "--password", PASSWORD)
    prompts = terminal("")

    create("kit", "--role", "clinician", "--update")

    assert prompts == ["Password (empty keeps the current one): "]
    user = get_user_model().objects.get(username="kit")
    assert role_of(user) == Role.CLINICIAN and signs_in("kit", PASSWORD) == user


def test_update_leaves_superusers_and_api_clients_alone(db, no_terminal):
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    call_command("create_api_client", "ehr", "--role", "integration_read", stdout=StringIO())

    with pytest.raises(CommandError, match="'root' is a superuser"):
        create("root", "--role", "front_desk", "--update")
    with pytest.raises(CommandError, match="'api:ehr' is not a staff user"):
        create("api:ehr", "--role", "nurse", "--update")


def manage(*args, **variables) -> subprocess.CompletedProcess:
    """``manage.py`` in a process of its own on the test database, its input not a terminal."""
    db = connection.settings_dict
    url = "postgres://{}@{}:{}/{}".format(
        db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["NAME"]
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment(DATABASE_URL=url, **variables),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_as_an_operator_runs_it_from_a_shell(seeded_defaults):
    done = manage("create_staff_user", "ida", "--role", "nurse", STAFF_USER_PASSWORD=PASSWORD)
    refused = manage("create_staff_user", "jo", "--role", "nurse")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Staff user 'ida' created in role Nurse; they sign in at /admin/."
    assert PASSWORD not in done.stdout + done.stderr
    user = get_user_model().objects.get(username="ida")
    assert user.is_staff and role_of(user) == Role.NURSE and signs_in("ida", PASSWORD) == user
    assert refused.returncode == 1 and "No password" in refused.stderr
    assert not get_user_model().objects.filter(username="jo").exists()
