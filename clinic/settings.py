"""Settings for HFS Follow-up, read from the environment (django-environ).

Every setting has one obvious default so that a fresh checkout runs with nothing installed but
Python: SQLite, a file-system Celery broker and e-mails written as files, all under ``var/``.
Production (``DJANGO_ENV=production``) has no defaults for secrets or infrastructure and refuses to
start without them. The README lists every variable; keep the two in step.
"""

from datetime import timedelta as _timedelta
from pathlib import Path

import environ
from celery.schedules import crontab as _crontab
from csp.constants import NONCE as _NONCE
from csp.constants import NONE as _NONE
from csp.constants import SELF as _SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'development' or 'production', not {DJANGO_ENV!r}.")
IS_PRODUCTION = DJANGO_ENV == "production"

if IS_PRODUCTION:
    # Without EMAIL_URL reminders would go to files nobody reads, and without SITE_URL every link
    # in them would point at a developer's machine: both fail silently, so refuse to start instead.
    _required = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "EMAIL_URL", "SITE_URL")
    _missing = [name for name in _required if not env.str(name, default="")]
    if _missing:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs these environment variables, which are not set: "
            + ", ".join(_missing)
        )

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

_DEVELOPMENT_SECRET_KEY = "development-only-key-never-used-in-production-0123456789abcdef"
# Production refuses to start without its own key (above), and with this one: it is public, yet
# long and varied enough that `check --deploy` would not flag it.
SECRET_KEY = env.str("SECRET_KEY", default=_DEVELOPMENT_SECRET_KEY)
if IS_PRODUCTION and SECRET_KEY == _DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_ENV=production needs its own SECRET_KEY, not the development one.")
DEBUG = env.bool("DEBUG", default=not IS_PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
    "axes",
    "clinic",
    "patients",
    "followups",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "clinic.middleware.NoStore",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "clinic.middleware.SessionIdleTimeout",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Refused requests for a patient's data (401, 403, 404) belong in the audit trail too.
    "clinic.audit_refused.RefusedRequestAudit",
    # Last, as django-axes asks: it turns a locked-out login into its own answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "clinic.urls"
WSGI_APPLICATION = "clinic.wsgi.application"
ASGI_APPLICATION = "clinic.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "clinic" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hfs_followup.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        # SQLite creates the file but not its folder, and on a fresh checkout `var/` does not exist
        # yet (nothing else is sure to make it first: with REDIS_URL set, the cache does not).
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded path runs web, worker and beat against one file: WAL lets readers go on while
    # one writes, and IMMEDIATE transactions queue writers instead of failing with "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # No JIT compilation: the lists' queries are estimated costly (a subquery per listed row) but
    # run in milliseconds, and compiling them first cost seconds (5.4 s of a 5.5 s call list page
    # at 100,000 patients, bench/staff.py). PostgreSQL's own advice for short OLTP queries.
    connection_options = DATABASES["default"].setdefault("OPTIONS", {})
    if "jit" not in connection_options.get("options", ""):  # DATABASE_URL may set options of its own
        connection_options["options"] = f"{connection_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker ----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="hfs"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast commands (inspect, shutdown) would otherwise land in ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task running when the broker connection drops cannot be acknowledged any more: cancel it
# (its row's lease brings the work back) instead of letting the worker trip over the ack.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=90)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery's Django fixup closes the database connection around every task unless this is set, so
# each reminder paid for a new PostgreSQL connection (bench: 49 sends/s, 125/s when reused). With it,
# a worker process keeps its connection across tasks; ``clinic.celery`` still drops a connection
# that is broken or older than CONN_MAX_AGE before each task, as Django does between requests.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# --- E-mail -----------------------------------------------------------------------------------
_email_url = env.str("EMAIL_URL", default="")
if _email_url:
    _email = env.email_url_config(_email_url)
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
    EMAIL_PORT = _email["EMAIL_PORT"] or 25
    EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
    EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
    EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
    EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"] or str(VAR_DIR / "mail")
    EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
else:
    EMAIL_BACKEND = "clinic.mail_folder.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")

# --- The clinic -------------------------------------------------------------------------------
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
CLINIC_NAME = env.str("CLINIC_NAME", default="Neurology Clinic")
CLINIC_PHONE = env.str("CLINIC_PHONE", default="+1 555 0100")
CLINIC_ADDRESS = env.str("CLINIC_ADDRESS", default="1 Example Street, Springfield")
CLINIC_TIME_ZONE = env.str("CLINIC_TIME_ZONE", default="Europe/Berlin")
CLINIC_VISIT_HOUR = env.int("CLINIC_VISIT_HOUR", default=9)
if not 0 <= CLINIC_VISIT_HOUR <= 23:
    raise ImproperlyConfigured("CLINIC_VISIT_HOUR must be an hour from 0 to 23.")
# Lost to follow-up (DOMAIN.md section 9): follow-up due and no attended visit for this many days.
LOST_TO_FOLLOW_UP_DAYS = env.int("LOST_TO_FOLLOW_UP_DAYS", default=365)
if not 30 <= LOST_TO_FOLLOW_UP_DAYS <= 3650:
    raise ImproperlyConfigured("LOST_TO_FOLLOW_UP_DAYS must be a number of days from 30 to 3650.")
# The sender is what a patient's inbox shows first: the clinic, never the condition it follows.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"{CLINIC_NAME} <appointments@clinic.invalid>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = CLINIC_TIME_ZONE
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Auth -------------------------------------------------------------------------------------
# The proxies in front of the application that append to X-Forwarded-For (clinic.client_address):
# 0 when clients reach it directly (the header is then ignored), 1 behind compose's TLS proxy.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
if not 0 <= NUM_PROXIES <= 5:
    raise ImproperlyConfigured("NUM_PROXIES must be a number of proxies from 0 to 5.")

# django-axes first: it refuses a locked-out username or address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Brute force on the staff login: after LOGIN_FAILURE_LIMIT wrong passwords for one username, or
# from one address, that username or address is locked out for LOGIN_LOCKOUT_MINUTES (a 429 page
# saying so). By username alone too, so that a botnet's many addresses cannot share one account's
# guesses; by address alone, so that one machine cannot try a list of usernames. A success clears
# that username's count only (clinic.login_lockout), never the address's: axes' own reset would
# wipe every failure from the address, so a colleague at the same desk could guess another
# account's password between their own logins. ``axes_reset_username`` lifts a lockout early.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = _timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "clinic.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "clinic.login_lockout.locked_out"
# The attempts are in the audit trail (clinic.login_audit); axes keeps only its counts.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Lockouts are lifted by `manage.py axes_reset_username` or in the staff panel's own page for
# superusers (clinic/admin.py), not through axes' admin pages, which ignore the clinic's roles.
AXES_ENABLE_ADMIN = False

# Staff sessions end after SESSION_IDLE_MINUTES without a request, and in any case
# SESSION_MAX_HOURS after signing in (a shared front-desk computer left signed in).
SESSION_IDLE_SECONDS = env.int("SESSION_IDLE_MINUTES", default=30) * 60
SESSION_COOKIE_AGE = env.int("SESSION_MAX_HOURS", default=10) * 3600
if not 60 <= SESSION_IDLE_SECONDS <= SESSION_COOKIE_AGE:
    raise ImproperlyConfigured("SESSION_IDLE_MINUTES must be at least 1 and at most SESSION_MAX_HOURS.")
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "clinic.api_auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["clinic.api_auth.RolePermission"],
    # JSON only (API.md): the schema then says so and generated clients send one body, not three.
    "DEFAULT_PARSER_CLASSES": ["clinic.parsers.CheckedJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_RATES": {
        "client": env.str("API_THROTTLE_RATE", default="1200/min"),
        # The schema and its page: built once per process, but still nothing to hammer.
        "schema": env.str("SCHEMA_THROTTLE_RATE", default="30/min"),
    },
    "EXCEPTION_HANDLER": "clinic.api.api_exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HFS Follow-up API",
    "DESCRIPTION": "Follow-up of patients with hemifacial spasm: the integration contract.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["clinic.api_schema.keep_dollar_in_paths"],
    "ENUM_NAME_OVERRIDES": {
        "MuscleEnum": "patients.codes.Muscle",
        "HfsKindEnum": "patients.codes.HfsKind",
        "DiagnosisStatusEnum": "patients.codes.DiagnosisStatus",
        "ImagingStatusEnum": "patients.codes.ImagingStatus",
        "VesselEnum": "patients.codes.Vessel",
        "TreatmentStatusEnum": "patients.codes.TreatmentStatus",
        "VisitStatusEnum": "followups.codes.VisitStatus",
        "AssessmentStatusEnum": "followups.codes.AssessmentStatus",
        "FlagCodeEnum": "followups.codes.FlagCode",
        "TreatmentKindEnum": "patients.codes.TreatmentKind",
        "VisitKindEnum": "followups.codes.VisitKind",
        "FollowUpEndReasonEnum": "patients.codes.FollowUpEndReason",
        "LabTestEnum": "followups.codes.LabTest",
    },
}

# --- Security ---------------------------------------------------------------------------------
# Content-Security-Policy (django-csp): scripts and styles from the project only, no inline script
# anywhere (the admin and the patient pages have none); a <style> block needs the response's nonce
# and a style attribute is allowed (it cannot run anything nor read the page). Nothing from other
# hosts, no framing, forms post only back here.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_SELF],
        "script-src": [_SELF],
        "style-src": [_SELF, _NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": [_SELF, "data:"],
        "font-src": [_SELF],
        "connect-src": [_SELF],
        "object-src": [_NONE],
        "base-uri": [_NONE],
        "frame-ancestors": [_NONE],
        "form-action": [_SELF],
    }
}

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if IS_PRODUCTION:
    # TLS ends at the proxy in front of gunicorn, which says so in X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Logging ----------------------------------------------------------------------------------
# Log lines carry ids and codes, never patient data: nothing here formats request bodies.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # A patient link's token is a key to their appointment, a query string what staff searched for
    # (a name, an MRN): paths are logged without the one, request lines without either (clinic.logs).
    "filters": {
        "hide_link_tokens": {"()": "clinic.logs.HideLinkTokens"},
        "hide_paths": {"()": "clinic.logs.HidePaths"},
    },
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes logs every sign-in; the audit trail has them (clinic.login_audit).
        "axes": {"level": "WARNING"},
        "django.request": {"filters": ["hide_link_tokens"]},
        "django.server": {"filters": ["hide_paths"]},
        "django.security.csrf": {"filters": ["hide_link_tokens"]},
    },
}

# --- Patient pages (followups/patient_pages: booking links, DOMAIN.md section 12) ----------------
# django-ratelimit counts in the default cache (Redis whenever REDIS_URL is set: one count for
# every web process); each request counts once per address and once per link.
PATIENT_PAGES_RATE_PER_ADDRESS = "60/m"
PATIENT_PAGES_RATE_PER_LINK = "20/m"
RATELIMIT_IP_META_KEY = "followups.patient_pages.limits.client_address"
# A form refused for its CSRF token explains itself to a patient; staff pages keep Django's page.
CSRF_FAILURE_VIEW = "followups.patient_pages.views.csrf_failure"

# --- Reminders (DOMAIN.md section 6; the flow in followups/reminders/__init__.py) -----------
REMINDER_SEND_HOUR = env.int("REMINDER_SEND_HOUR", default=9)
# How often beat runs the sweeper, how many rows one claim takes, and at most how many one sweep.
REMINDER_SWEEP_SECONDS = env.float("REMINDER_SWEEP_SECONDS", default=60.0)
REMINDER_BATCH_SIZE = env.int("REMINDER_BATCH_SIZE", default=100)
REMINDER_SWEEP_MAX = env.int("REMINDER_SWEEP_MAX", default=5000)
# A claimed row not sent within the lease is claimable again (a killed worker, a lost message).
REMINDER_LEASE_SECONDS = env.int("REMINDER_LEASE_SECONDS", default=300)
REMINDER_SEND_TIME_LIMIT = env.int("REMINDER_SEND_TIME_LIMIT", default=60)
# Reminders per send task: they share one SMTP connection (bench: see BENCHMARKS.md).
REMINDER_SEND_CHUNK = env.int("REMINDER_SEND_CHUNK", default=20)
REMINDER_MAX_ATTEMPTS = env.int("REMINDER_MAX_ATTEMPTS", default=8)
REMINDER_RETRY_BASE_SECONDS = env.int("REMINDER_RETRY_BASE_SECONDS", default=60)
REMINDER_RETRY_MAX_SECONDS = env.int("REMINDER_RETRY_MAX_SECONDS", default=3600)
if REMINDER_LEASE_SECONDS <= REMINDER_SEND_TIME_LIMIT:
    raise ImproperlyConfigured("REMINDER_LEASE_SECONDS must be longer than REMINDER_SEND_TIME_LIMIT.")

# --- Follow-up runs (issue 18; the flow in followups/runs/__init__.py) --------------------------
# The nightly refresh, a protocol's re-application and `follow_up_refresh` are runs of chunks of
# patients that any number of workers take; each chunk under a lease, resumed where it stopped.
FOLLOW_UP_CHUNK_SIZE = env.int("FOLLOW_UP_CHUNK_SIZE", default=200)
# A chunk starts no new patient after this long and queues the rest; its task's soft limit is 80 %.
FOLLOW_UP_CHUNK_SECONDS = env.float("FOLLOW_UP_CHUNK_SECONDS", default=30.0)
FOLLOW_UP_CHUNK_TIME_LIMIT = env.float("FOLLOW_UP_CHUNK_TIME_LIMIT", default=60.0)
FOLLOW_UP_CHUNK_LEASE_SECONDS = env.float("FOLLOW_UP_CHUNK_LEASE_SECONDS", default=120.0)
FOLLOW_UP_CHUNK_MAX_ATTEMPTS = env.int("FOLLOW_UP_CHUNK_MAX_ATTEMPTS", default=3)
FOLLOW_UP_SWEEP_SECONDS = env.float("FOLLOW_UP_SWEEP_SECONDS", default=60.0)
# The health check (manage.py follow_up_run_check): started by this hour, finished within these minutes.
FOLLOW_UP_NIGHTLY_DUE_HOUR = env.int("FOLLOW_UP_NIGHTLY_DUE_HOUR", default=3)
FOLLOW_UP_RUN_MAX_MINUTES = env.int("FOLLOW_UP_RUN_MAX_MINUTES", default=60)
if not (
    FOLLOW_UP_CHUNK_SECONDS < FOLLOW_UP_CHUNK_TIME_LIMIT * 0.8
    and FOLLOW_UP_CHUNK_TIME_LIMIT < FOLLOW_UP_CHUNK_LEASE_SECONDS
):
    raise ImproperlyConfigured(
        "FOLLOW_UP_CHUNK_SECONDS must be under 80 % of FOLLOW_UP_CHUNK_TIME_LIMIT, "
        "and FOLLOW_UP_CHUNK_TIME_LIMIT under FOLLOW_UP_CHUNK_LEASE_SECONDS."
    )

# Static entries only; each names a thin task that polls the database (ARCHITECTURE.md).
CELERY_BEAT_SCHEDULE = {
    "reminders-sweep": {"task": "reminders.sweep", "schedule": REMINDER_SWEEP_SECONDS},
    # Crontab hours are in CELERY_TIMEZONE, the clinic's.
    "followups-daily": {"task": "followups.daily", "schedule": _crontab(hour=1, minute=30)},
    "sessions-generate": {"task": "booking.sessions_generate", "schedule": _crontab(hour=1, minute=0)},
    # Chunks of a follow-up run whose worker died or whose message was lost are queued again.
    "follow-up-runs-sweep": {"task": "followups.runs_sweep", "schedule": FOLLOW_UP_SWEEP_SECONDS},
}
CELERY_TIMEZONE = CLINIC_TIME_ZONE
