"""clinic/settings.py as deployments meet it: names and defaults from ARCHITECTURE.md "Running it".

Each case starts Django in its own process with exactly the environment it names, because the
settings module reads the environment once, at import.
"""

import json
import os
import secrets

import pytest

from clinic.settings import _DEVELOPMENT_SECRET_KEY
from tests.smoke import environment, manage, run

REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "EMAIL_URL", "SITE_URL")
LOCAL_DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hfs_followup")
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/1"

# Sets Django up, runs ``code`` (which leaves its findings in ``found``) and prints them as JSON.
_PROBE = """
import json
import django
django.setup()
from django.conf import settings
{code}
print(json.dumps(found, default=str))
"""


def probe(code: str, env: dict[str, str]) -> dict:
    process = run(
        ["python", "-c", _PROBE.format(code=code)],
        {**env, "DJANGO_SETTINGS_MODULE": "clinic.settings"},
        timeout=60,
    )
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.splitlines()[-1])


def settings_of(*names: str, env: dict[str, str], before: str = "") -> dict:
    return probe(f"{before}\nfound = {{name: getattr(settings, name) for name in {names!r}}}", env)


def refusal(process) -> str:
    """The last line of a failed start: the exception Django could not get past."""
    assert process.returncode != 0, process.stdout
    return process.stderr.strip().splitlines()[-1]


def missing_names(message: str) -> list[str]:
    assert message.startswith("django.core.exceptions.ImproperlyConfigured: DJANGO_ENV=production needs")
    return [name.strip() for name in message.split("not set:", 1)[1].split(",")]


def production(**variables) -> dict[str, str]:
    settings = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DATABASE_URL": LOCAL_DATABASE_URL,
        "REDIS_URL": LOCAL_REDIS_URL,
        "ALLOWED_HOSTS": "clinic.example",
        "EMAIL_URL": "smtp://relay.clinic.example:25",
        "SITE_URL": "https://clinic.example",
    }
    settings.update(variables)
    return environment(**{name: value for name, value in settings.items() if value is not None})


def test_production_without_its_settings_refuses_to_start_and_names_every_one():
    message = refusal(manage("check", env=environment(DJANGO_ENV="production")))

    assert missing_names(message) == list(REQUIRED_IN_PRODUCTION)


def test_production_names_only_what_is_missing_and_counts_a_blank_value_as_missing():
    message = refusal(manage("check", env=production(REDIS_URL=None, ALLOWED_HOSTS="")))

    assert missing_names(message) == ["REDIS_URL", "ALLOWED_HOSTS"]


@pytest.mark.parametrize("name", ["EMAIL_URL", "SITE_URL"])
def test_production_refuses_to_start_without_where_reminders_go_and_what_they_link_to(name):
    # Without them reminders would be written to files, or link to a developer's machine, silently.
    message = refusal(manage("check", env=production(**{name: None})))

    assert missing_names(message) == [name]


def test_production_refuses_the_public_development_secret_key():
    message = refusal(manage("check", env=production(SECRET_KEY=_DEVELOPMENT_SECRET_KEY)))

    assert "needs its own SECRET_KEY" in message


def test_production_with_its_settings_passes_the_deployment_checks():
    checked = manage("check", "--deploy", "--fail-level", "WARNING", env=production())

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues (0 silenced)." in checked.stdout


@pytest.mark.parametrize("value", ["staging", "Production", ""])
def test_an_unknown_django_env_is_refused(value):
    message = refusal(manage("check", env=environment(DJANGO_ENV=value)))

    assert f"DJANGO_ENV must be 'development' or 'production', not {value!r}" in message


def test_the_embedded_defaults_keep_everything_under_var_dir(tmp_path):
    # Not created beforehand, as on a fresh checkout. The database is connected to first, before
    # anything else (the file cache) could make the folder by chance.
    var_dir = tmp_path / "var"
    values = settings_of(
        "DJANGO_ENV",
        "DEBUG",
        "DATABASES",
        "CELERY_BROKER_URL",
        "CELERY_BROKER_TRANSPORT_OPTIONS",
        "EMAIL_BACKEND",
        "EMAIL_FILE_PATH",
        env=environment(VAR_DIR=var_dir),
        before="""
from django.db import connection
connection.ensure_connection()
from django.core.mail import send_mail
send_mail("Smoke", "A message for the file backend.", None, ["patient@patients.example"])
from clinic.celery import app
app.send_task("smoke.nothing")
""",
    )

    assert (values["DJANGO_ENV"], values["DEBUG"]) == ("development", True)
    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(var_dir / "hfs_followup.sqlite3")
    assert (var_dir / "hfs_followup.sqlite3").is_file()

    assert values["CELERY_BROKER_URL"] == "filesystem://"
    queue = var_dir / "broker" / "queue"
    assert values["CELERY_BROKER_TRANSPORT_OPTIONS"]["data_folder_in"] == str(queue)
    assert len(list(queue.iterdir())) == 1

    assert values["EMAIL_BACKEND"] == "clinic.mail_folder.EmailBackend"
    assert values["EMAIL_FILE_PATH"] == str(var_dir / "mail")
    [mail] = (var_dir / "mail").iterdir()
    assert "patient@patients.example" in mail.read_text()


@pytest.mark.parametrize(
    ("email_url", "expected"),
    [
        (
            "smtp://host:2525",
            {"EMAIL_HOST": "host", "EMAIL_PORT": 2525, "EMAIL_USE_TLS": False, "EMAIL_HOST_USER": ""},
        ),
        (
            "smtp+tls://relay-user:relay-password@relay.example:587",
            {
                "EMAIL_HOST": "relay.example",
                "EMAIL_PORT": 587,
                "EMAIL_USE_TLS": True,
                "EMAIL_HOST_USER": "relay-user",
            },
        ),
    ],
)
def test_email_url_selects_the_smtp_backend_with_its_host_and_port(email_url, expected):
    values = settings_of("EMAIL_BACKEND", *expected, env=environment(EMAIL_URL=email_url))

    assert values == {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", **expected}


def test_the_celery_broker_defaults_to_redis_url_and_the_app_uses_it():
    values = probe(
        """
from clinic.celery import app
found = {
    "setting": settings.CELERY_BROKER_URL,
    "app": app.conf.broker_url,
    "transport_options": app.conf.broker_transport_options,
}
""",
        environment(REDIS_URL=LOCAL_REDIS_URL),
    )

    assert values == {"setting": LOCAL_REDIS_URL, "app": LOCAL_REDIS_URL, "transport_options": {}}


def test_an_explicit_celery_broker_url_wins_over_redis_url():
    values = settings_of(
        "CELERY_BROKER_URL",
        env=environment(REDIS_URL=LOCAL_REDIS_URL, CELERY_BROKER_URL="redis://127.0.0.1:6379/7"),
    )

    assert values == {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/7"}
