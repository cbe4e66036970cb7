"""Dockerfile, docker-compose.yml and Procfile, checked without a Docker engine.

No engine runs here, so the files are read as the engine would read them and every command in them
is parsed by the program it starts (gunicorn, celery, manage.py), whose app and modules must load.
Where it can be done on this machine, the image's steps run for real: its collectstatic, its
default command and its health check.
"""

import importlib
import json
import re
import secrets
import shlex
import socket
import subprocess
import time
import tomllib
import warnings
from pathlib import Path

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from click import ClickException
from django.core.management import CommandError, get_commands, load_command_class
from django.urls import resolve
from gunicorn.config import Config as GunicornConfig
from gunicorn.util import import_app

from tests.smoke import ROOT, environment, manage, run

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("migrate", "web", "worker", "beat")
SETTINGS_SOURCE = (ROOT / "clinic" / "settings.py").read_text()
# Every variable clinic/settings.py reads: env.str("NAME", ...), env.db_url("NAME", ...) and so on.
SETTINGS_READ = frozenset(re.findall(r'\benv\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', SETTINGS_SOURCE))
PRODUCTION_SETTINGS = (
    "DJANGO_ENV",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "SITE_URL",
    "CLINIC_NAME",
    "CLINIC_PHONE",
    "CLINIC_ADDRESS",
    "CLINIC_TIME_ZONE",
    "CLINIC_VISIT_HOUR",
)
# What `docker compose up` needs from the shell or .env: the secrets, which have no default.
COMPOSE_VARIABLES = {
    "SECRET_KEY": secrets.token_urlsafe(64),
    "POSTGRES_PASSWORD": secrets.token_hex(16),
    "APP_DB_PASSWORD": secrets.token_hex(16),
}
# Read by `manage.py db_grant_app_role --password-env`, in the migrate service only, not by settings.
MIGRATE_ONLY = {"APP_DB_PASSWORD"}
MIGRATE_COMMAND = (
    "python manage.py migrate --noinput"
    " && python manage.py db_grant_app_role hfs_app --password-env APP_DB_PASSWORD"
)


# --- reading the files as Docker does ------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comment lines dropped."""
    instructions, pending = [], ""
    for line in text.splitlines():
        if not pending and not line.strip():
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


DOCKERFILE = dockerfile_instructions((ROOT / "Dockerfile").read_text())


def dockerfile(keyword: str) -> list[str]:
    return [arguments for instruction, arguments in DOCKERFILE if instruction == keyword]


def dockerfile_cmd() -> list[str]:
    [cmd] = dockerfile("CMD")
    return json.loads(cmd)  # the exec form is a JSON array


def dockerfile_env() -> dict[str, str]:
    return dict(pair.split("=", 1) for line in dockerfile("ENV") for pair in shlex.split(line))


def dockerfile_healthcheck() -> str:
    """The shell-form command of HEALTHCHECK, after its options."""
    [healthcheck] = dockerfile("HEALTHCHECK")
    return re.fullmatch(r"(?:--\S+\s+)*CMD\s+(.+)", healthcheck).group(1)


class MissingVariable(Exception):
    pass


_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$."""

    def replace(match: re.Match) -> str:
        if match.group() == "$$":
            return "$"
        name, op, arg = match["name"] or match["bare"], match["op"], match["arg"]
        current = variables.get(name)
        absent = current is None or (current == "" and bool(op) and op.startswith(":"))
        if absent and op in (":-", "-"):
            return arg
        if absent and op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def container_environment(service: str, variables=COMPOSE_VARIABLES) -> dict[str, str]:
    """What the container sees: the image's ENV, then the service's environment on top."""
    declared = SERVICES[service].get("environment") or {}
    assert isinstance(declared, dict), f"{service}: use the mapping form of environment"
    env = dockerfile_env()
    for name, value in declared.items():
        if value is not None:
            env[name] = interpolate(str(value), variables)
        elif name in variables:  # listed without a value: passed through only when set
            env[name] = variables[name]
        else:
            env.pop(name, None)
    return env


def service_command(service: str) -> list[str]:
    command = SERVICES[service].get("command", dockerfile_cmd())
    return shlex.split(command) if isinstance(command, str) else list(command)


def healthcheck_command(test) -> list[str]:
    """A compose healthcheck ``test`` as the argv it runs ($$ is compose's escape for $)."""
    kind, *rest = ["CMD-SHELL", test] if isinstance(test, str) else test
    if kind == "CMD":
        return [interpolate(arg, {}) for arg in rest]
    if kind == "CMD-SHELL":
        return shlex.split(interpolate(rest[0], {}))
    return []  # NONE: no check at all


# --- what a command names must exist -------------------------------------------------------------


def command_problems(argv: list[str]) -> list[str]:
    """Why ``argv`` would not start here (and so not in the image): empty when it would."""
    program, *args = argv
    if program == "gunicorn":
        return _gunicorn_problems(args)
    if program == "celery":
        return _celery_problems(args)
    if program == "python" and args[:1] == ["manage.py"]:
        return _manage_problems(args[1:])
    if program == "sh" and args[:1] == ["-c"] and len(args) == 2:
        # A chain of commands, each of which must start: ``a && b``.
        return [problem for step in args[1].split("&&") for problem in command_problems(shlex.split(step))]
    if program == "python" and args[:1] == ["-c"]:
        try:
            compile(args[1], "<python -c>", "exec")
        except SyntaxError as error:
            return [f"python -c does not compile: {error}"]
        return []
    return [f"no rule to check {program!r}; teach tests/test_deployment.py what it must name"]


def _gunicorn_problems(args: list[str]) -> list[str]:
    try:
        parsed = GunicornConfig().parser().parse_args(args)
    except SystemExit:
        return [f"gunicorn refuses the arguments {args}"]
    if len(parsed.args) != 1:
        return [f"gunicorn needs exactly one application, got {parsed.args}"]
    if parsed.config:
        # ``python:module`` names a module of the project; a file path would have to be in the image.
        if not parsed.config.startswith("python:"):
            return [f"gunicorn's config {parsed.config} is not a module of the project"]
        try:
            importlib.import_module(parsed.config.removeprefix("python:"))
        except ImportError as error:
            return [f"gunicorn cannot load its config {parsed.config}: {error!r}"]
    try:
        with warnings.catch_warnings():
            # WhiteNoise notes that STATIC_ROOT is empty: collectstatic fills it in the image, not here.
            warnings.filterwarnings("ignore", "No directory at", UserWarning)
            import_app(parsed.args[0])
    except Exception as error:
        return [f"gunicorn cannot load {parsed.args[0]}: {error!r}"]
    return []


def _celery_problems(args: list[str]) -> list[str]:
    app_name, index = None, 0
    while index < len(args) and args[index].startswith("-"):
        option, _, value = args[index].partition("=")
        if option not in ("-A", "--app"):
            return [f"no rule for the celery option {option}"]
        if not value:
            index += 1
            value = args[index]
        app_name, index = value, index + 1
    if app_name is None or index == len(args):
        return [f"celery needs -A and a subcommand: {args}"]
    try:
        app = find_app(app_name)
    except Exception as error:
        return [f"celery cannot find the app {app_name!r}: {error!r}"]
    problems = []
    if not isinstance(app, Celery):
        problems.append(f"{app_name!r} names {app!r}, not a Celery app")
    # Django's convention: the package exposes the app, so shared tasks bind to it at import.
    if getattr(importlib.import_module(app_name), "celery_app", None) is not app:
        problems.append(f"the module {app_name!r} does not expose the app as celery_app")
    name, rest = args[index], args[index + 1 :]
    if name not in celery_cli.commands:
        return [*problems, f"celery has no subcommand {name!r}"]
    context = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    try:
        # Parses the options as celery would, including their checks, without running anything.
        celery_cli.commands[name].make_context(name, list(rest), obj=context)
    except ClickException as error:
        problems.append(f"celery {name}: {error.format_message()}")
    return problems


def _manage_problems(args: list[str]) -> list[str]:
    if not (ROOT / "manage.py").is_file():
        return ["manage.py is missing"]
    name, *rest = args
    commands = get_commands()
    if name not in commands:
        return [f"manage.py has no command {name!r}"]
    try:
        load_command_class(commands[name], name).create_parser("manage.py", name).parse_args(rest)
    except CommandError as error:
        return [f"manage.py {name}: {error}"]
    return []


# --- compose: services, images, order ------------------------------------------------------------


def test_compose_runs_the_app_processes_and_what_they_need():
    assert set(SERVICES) == {*APP_SERVICES, "db", "redis", "mailcatcher"}
    assert SERVICES["db"]["image"].startswith("postgres:15")
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert SERVICES["mailcatcher"]["image"].startswith("axllent/mailpit")


def test_every_app_process_comes_from_the_one_dockerfile_and_the_rest_from_images():
    builds = {service: SERVICES[service].get("build") for service in SERVICES}
    for service in APP_SERVICES:
        assert builds[service] == {"context": ".", "dockerfile": "Dockerfile"}, service
    assert (ROOT / "Dockerfile").is_file()
    # One image name, so compose builds once and every process runs the same code.
    assert len({SERVICES[service]["image"] for service in APP_SERVICES}) == 1
    assert all(builds[service] is None for service in ("db", "redis", "mailcatcher"))


def test_the_database_keeps_its_data_in_a_named_volume():
    volumes = SERVICES["db"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in volumes
    assert "postgres-data" in COMPOSE["volumes"]


def test_the_app_processes_wait_for_the_schema_and_for_healthy_services():
    for service in ("web", "worker", "beat"):
        assert SERVICES[service]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "db": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, service
    assert SERVICES["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert service_command("migrate") == ["sh", "-c", MIGRATE_COMMAND]
    assert SERVICES["migrate"]["restart"] == "no"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_app_command_names_modules_that_exist(service):
    assert command_problems(service_command(service)) == []


def test_web_runs_gunicorn_and_worker_and_beat_run_celery_from_the_clinic_app():
    assert service_command("web")[:2] == ["gunicorn", "clinic.wsgi:application"]
    assert service_command("worker")[:4] == ["celery", "-A", "clinic", "worker"]
    assert service_command("beat")[:4] == ["celery", "-A", "clinic", "beat"]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["gunicorn", "clinic.wsgy:application"], "No module named 'clinic.wsgy'"),
        (["gunicorn", "clinic.wsgi:app"], "Failed to find attribute 'app'"),
        (["gunicorn", "--bnd", "0.0.0.0:8000", "clinic.wsgi:application"], "gunicorn refuses"),
        (["celery", "-A", "clinik", "worker"], "No module named 'clinik'"),
        (["celery", "-A", "patients", "worker"], "cannot find the app 'patients'"),
        (["celery", "-A", "clinic", "wroker"], "no subcommand 'wroker'"),
        (["celery", "-A", "clinic", "beat", "--pidfle=/tmp/beat.pid"], "No such option '--pidfle'"),
        (["celery", "-A", "clinic", "worker", "--loglevel=LOUD"], "'LOUD' is not one of"),
        (["python", "manage.py", "migrat"], "no command 'migrat'"),
        (["python", "manage.py", "migrate", "--no-such-option"], "unrecognized arguments"),
        (["uwsgi", "--module", "clinic.wsgi"], "no rule to check 'uwsgi'"),
    ],
)
def test_the_command_check_catches_misspelt_modules_options_and_programs(argv, problem):
    [found] = command_problems(argv)
    assert problem in found


# --- health checks -------------------------------------------------------------------------------


def test_every_long_running_service_has_a_health_check():
    for service, config in SERVICES.items():
        if service in ("migrate", "web"):
            continue
        assert healthcheck_command(config["healthcheck"]["test"]), service
        assert not config["healthcheck"].get("disable"), service


def test_web_uses_the_images_health_check_and_runs_the_images_command():
    # The image's HEALTHCHECK probes gunicorn, so it fits only the service running the image's CMD.
    assert "healthcheck" not in SERVICES["web"]
    assert service_command("web") == dockerfile_cmd()
    # ... and publishes the port gunicorn and the probe use.
    [published] = SERVICES["web"]["ports"]
    assert published.rsplit(":", 1)[1] == dockerfile_env()["PORT"]


def test_the_one_off_migrate_step_turns_the_web_probe_off():
    assert SERVICES["migrate"]["healthcheck"] == {"disable": True}


@pytest.mark.parametrize("service", ["worker", "beat"])
def test_worker_and_beat_health_checks_fit_their_process(service):
    argv = healthcheck_command(SERVICES[service]["healthcheck"]["test"])
    if service == "worker":
        assert argv[:5] == ["celery", "-A", "clinic", "inspect", "ping"]
        assert command_problems(argv) == []
    else:
        # The probe reads the pid file that beat's own command writes.
        [pidfile] = [arg.split("=", 1)[1] for arg in service_command("beat") if arg.startswith("--pidfile=")]
        assert argv[:2] == ["kill", "-0"]
        assert f"cat {pidfile}" in argv[2]


# --- compose: the environment --------------------------------------------------------------------


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_environments_name_only_settings_the_code_reads_and_cover_production(service):
    names = set(SERVICES[service]["environment"])

    assert names - SETTINGS_READ - (MIGRATE_ONLY if service == "migrate" else set()) == set()
    assert set(PRODUCTION_SETTINGS) - names == set()
    assert SERVICES[service]["environment"]["DJANGO_ENV"] == "production"


def test_the_settings_names_are_read_from_settings_py():
    # Guards the pattern above: were it to find nothing, the subset checks would prove nothing.
    assert set(PRODUCTION_SETTINGS) | {"DEBUG", "CELERY_BROKER_URL", "DEFAULT_FROM_EMAIL"} <= SETTINGS_READ


@pytest.mark.parametrize("secret", sorted(COMPOSE_VARIABLES))
def test_compose_has_no_default_for_a_secret(secret):
    without = {name: value for name, value in COMPOSE_VARIABLES.items() if name != secret}

    # The owner's password reaches only the migrate service; the others connect as the app's role.
    with pytest.raises(MissingVariable, match=secret):
        container_environment("migrate" if secret == "POSTGRES_PASSWORD" else "web", without)


def test_the_urls_point_at_the_compose_services():
    env = container_environment("web")
    db = SERVICES["db"]["environment"]

    password = interpolate(db["POSTGRES_PASSWORD"], COMPOSE_VARIABLES)
    assert password == COMPOSE_VARIABLES["POSTGRES_PASSWORD"]
    owner_url = f"postgres://{db['POSTGRES_USER']}:{password}@db:5432/{db['POSTGRES_DB']}"
    assert container_environment("migrate")["DATABASE_URL"] == owner_url
    # web, worker and beat connect as the application's role, which owns no table.
    app_password = COMPOSE_VARIABLES["APP_DB_PASSWORD"]
    for service in ("web", "worker", "beat"):
        assert container_environment(service)["DATABASE_URL"] == (
            f"postgres://hfs_app:{app_password}@db:5432/{db['POSTGRES_DB']}"
        )
    assert container_environment("migrate")["APP_DB_PASSWORD"] == app_password
    assert "APP_DB_PASSWORD" not in env
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["EMAIL_URL"] == "smtp://mailcatcher:1025"
    assert env["SITE_URL"] == "http://localhost:8000"
    # Listed without a value and not set: left out, so the settings' own default applies.
    assert "CLINIC_NAME" not in env
    passed = container_environment("web", {**COMPOSE_VARIABLES, "CLINIC_NAME": "HFS Unit"})
    assert passed["CLINIC_NAME"] == "HFS Unit"


def test_the_compose_environment_passes_the_deployment_checks(tmp_path):
    env = container_environment("web") | {"VAR_DIR": tmp_path / "var", "STATIC_ROOT": tmp_path / "static"}

    checked = manage("check", "--deploy", "--fail-level", "WARNING", env=environment(**env))

    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- the image ----------------------------------------------------------------------------------


def test_the_image_uses_the_projects_python_and_runs_as_a_non_root_user():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.search(r">=(3\.\d+)", requires).group(1)
    assert dockerfile("FROM") == [f"python:{version}-slim"]
    assert dockerfile("USER")[-1] not in ("root", "0")


def test_the_image_env_names_only_settings_or_runtime_knobs():
    python = {
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
    gunicorn = {"PORT", "WEB_CONCURRENCY"}  # read by gunicorn itself: bind address and workers

    assert set(dockerfile_env()) - SETTINGS_READ - python - gunicorn == set()


def test_the_images_command_and_health_check_name_what_exists():
    assert command_problems(dockerfile_cmd()) == []
    probe = shlex.split(dockerfile_healthcheck())
    assert command_problems(probe) == []
    assert "/healthz" in probe[2]
    assert resolve("/healthz").url_name == "healthz"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] != "#"
    }
    assert {".git", ".venv", "var", ".env", "**/__pycache__", ".pytest_cache", ".ruff_cache"} <= ignored


def test_the_images_collectstatic_step_runs_with_its_placeholder_environment(tmp_path):
    [step] = [command for command in dockerfile("RUN") if "collectstatic" in command]
    env = environment(**dockerfile_env() | {"STATIC_ROOT": tmp_path / "static", "VAR_DIR": tmp_path / "var"})

    built = run(["sh", "-c", step], env, timeout=300)

    assert built.returncode == 0, built.stderr
    # Production's manifest storage wrote its manifest: without it, every page would fail to render.
    assert (tmp_path / "static" / "staticfiles.json").is_file()
    assert (tmp_path / "static" / "admin" / "css" / "base.css").is_file()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_images_command_serves_and_its_health_check_passes(tmp_path):
    """The container's web process and probe, run here with the compose environment."""
    port = _free_port()
    env = environment(
        **container_environment("web")
        | {
            "PORT": port,
            # As in a real deployment, only the site's own name: the probe must present it.
            "ALLOWED_HOSTS": "clinic.example",
            # One worker is enough to answer; the image's three only cost start-up time here.
            "WEB_CONCURRENCY": 1,
            "VAR_DIR": tmp_path / "var",
            "STATIC_ROOT": tmp_path / "static",
        }
    )
    probe = ["sh", "-c", dockerfile_healthcheck()]

    # Nothing listens yet: the probe must be able to fail.
    assert run(probe, env, timeout=30).returncode != 0

    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(service_command("web"), cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30  # the image's start period
        while (checked := run(probe, env, timeout=30)).returncode != 0 and time.monotonic() < deadline:
            assert server.poll() is None, Path(log.name).read_text()
            time.sleep(0.3)
        assert checked.returncode == 0, checked.stderr + Path(log.name).read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


# --- Procfile (make run) -------------------------------------------------------------------------


def _supervised_command(argv: list[str]) -> list[str]:
    """The command inside a restart loop (``sh -c 'until CMD; do ...; done'``), else argv itself."""
    if argv[:2] == ["sh", "-c"]:
        loop = argv[2]
        assert loop.startswith("until ") and "; do " in loop, loop
        return shlex.split(loop[len("until ") : loop.index("; do ")])
    return argv


def test_each_procfile_command_names_modules_that_exist():
    lines = (ROOT / "Procfile").read_text().splitlines()
    processes = dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))

    assert set(processes) == {"web", "worker", "beat"}
    for name, command in processes.items():
        assert command_problems(_supervised_command(shlex.split(command))) == [], name
