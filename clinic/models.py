"""What every clinical model shares: a public UUID, timestamps, and no hard delete."""

import uuid

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models import Q

# Free text is bounded everywhere (issue 20: a 2.5 MB note made a 27 MB list page): the model's
# validators refuse more (services run them through ``check_fields``), DRF and the admin's forms take
# the bound from ``max_length``.
NOTES_MAX_LENGTH = 5_000
REPORT_MAX_LENGTH = 20_000


def bounded_text(max_length: int = NOTES_MAX_LENGTH, **kwargs) -> models.TextField:
    """A free-text field of at most ``max_length`` characters, blank by default."""
    kwargs.setdefault("blank", True)
    return models.TextField(max_length=max_length, validators=[MaxLengthValidator(max_length)], **kwargs)


def one_of(field, choices, *, blank=False):
    """A check constraint that ``field`` holds one of the codes of ``choices``."""
    allowed = Q(**{f"{field}__in": choices.values})
    if blank:
        allowed |= Q(**{field: ""})
    return models.CheckConstraint(condition=allowed, name=f"%(app_label)s_%(class)s_{field}_code")


def in_range(field, low, high):
    """A check constraint that ``field``, when given, lies in [low, high]."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": low, f"{field}__lte": high}),
        name=f"%(app_label)s_%(class)s_{field}_range",
    )


def not_before(later, earlier):
    """A check constraint that the date ``later``, when given, is not before ``earlier``."""
    return models.CheckConstraint(
        condition=Q(**{f"{later}__isnull": True}) | Q(**{f"{later}__gte": models.F(earlier)}),
        name=f"%(app_label)s_%(class)s_{later}_not_before_{earlier}",
    )


class HardDeleteForbidden(Exception):
    """Clinical rows are archived or retracted (status ``entered_in_error``), never deleted."""


class ClinicalQuerySet(models.QuerySet):
    def delete(self):
        raise HardDeleteForbidden(
            f"{self.model._meta.verbose_name_plural} are never deleted; retract or archive them."
        )


class ClinicalRecord(models.Model):
    # The API's ``id``: integrators never see the database key, which stays free to be a compact
    # integer for joins and bulk inserts.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="id")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = ClinicalQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, *args, **kwargs):
        raise HardDeleteForbidden(f"A {self._meta.verbose_name} is never deleted; retract or archive it.")


class ApiClient(models.Model):
    """Another clinic system that calls the API with ``Authorization: Token <key>``.

    Each client acts through a user of its own (in its role's group), so clients and staff share
    one permission model, one history and one audit trail. Only a hash of the key is kept; the key
    is shown once, when the client is created.
    """

    name = models.CharField(max_length=100, unique=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client")
    key_prefix = models.CharField(max_length=12, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API client"
        ordering = ["name"]

    def __str__(self):
        return self.name


class AuditEvent(models.Model):
    """Who read or changed which patient's data, or tried to, when and from where. Append-only.

    The database refuses UPDATE, DELETE and TRUNCATE on this table (triggers; SQLite has no
    TRUNCATE), so not even the application can rewrite it. Refused requests are recorded too (their
    status says so), and so are logins to the admin, failed ones included (HIPAA 164.312(b)).
    """

    class Action(models.TextChoices):
        READ = "read", "Read"
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        DELETE = "delete", "Delete or retract"
        LOGIN = "login", "Log in"
        LOGOUT = "logout", "Log out"
        LOGIN_FAILED = "login_failed", "Failed login"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_id = models.IntegerField(null=True, blank=True)
    actor = models.CharField(
        max_length=150,
        help_text="The user name at the time (API clients: api:NAME), the name a failed login tried, "
        "patient-link for a patient's signed link, or anonymous.",
    )
    channel = models.CharField(max_length=8, help_text="api, fhir, admin or patient (a patient's link)")
    action = models.CharField(max_length=16, choices=Action.choices)
    resource = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64, blank=True)
    patient_id = models.UUIDField(null=True, blank=True, db_index=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    status = models.PositiveSmallIntegerField()
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["actor_id", "at"])]

    def __str__(self):
        return f"{self.actor} {self.action} {self.resource} {self.object_id}"


class IdempotentRequest(models.Model):
    """The first response to a POST with an ``Idempotency-Key``, returned again to its retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="clinic_idempotency_key_once")]

    def __str__(self):
        return f"Idempotency-Key {self.key}"
