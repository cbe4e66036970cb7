"""Logins to the admin in the audit trail, failed ones included (HIPAA 164.312(b), issue 20).

Django's auth signals fire for every login through ``django.contrib.auth``, with or without
django-axes in front (a locked-out attempt is refused by axes' backend, and Django still sends
``user_login_failed``). The row names the account tried, never the password (Django's cleansed
credentials are not even read past the user name). A name that is nobody's account is recorded as
``UNKNOWN_NAME``, not as typed: it is as likely a password typed into the wrong box, and this
table can never be cleaned. A login without a request (``authenticate()`` called from code) is
nobody's attempt at a channel and is not recorded.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from clinic.audit import audit_record
from clinic.models import AuditEvent

CHANNEL = "admin"
RESOURCE = "user"
UNKNOWN_NAME = "(no such user)"


@receiver(user_logged_in, dispatch_uid="clinic.login_audit.logged_in")
def login_record(sender, request, user, **kwargs):
    if request is not None:
        _record(request, AuditEvent.Action.LOGIN, 200, user.get_username(), user.pk)


@receiver(user_logged_out, dispatch_uid="clinic.login_audit.logged_out")
def logout_record(sender, request, user, **kwargs):
    # ``user`` is None when the session had nobody logged in: nothing ended.
    if request is not None and user is not None:
        _record(request, AuditEvent.Action.LOGOUT, 200, user.get_username(), user.pk)


@receiver(user_login_failed, dispatch_uid="clinic.login_audit.login_failed")
def login_failure_record(sender, credentials, request=None, **kwargs):
    if request is not None:
        users = get_user_model()
        tried = str(credentials.get(users.USERNAME_FIELD) or "")
        account = users._default_manager.filter(**{users.USERNAME_FIELD: tried}).values_list("pk", flat=True)
        user_id = account.first() if tried else None
        _record(request, AuditEvent.Action.LOGIN_FAILED, 401, tried if user_id else UNKNOWN_NAME, user_id)


def _record(request, action: str, status: int, username: str, user_id) -> None:
    audit_record(
        request=request,
        channel=CHANNEL,
        resource=RESOURCE,
        status=status,
        targets=[(user_id or "", None)],
        action=action,
        # The name given, not the session's user: at a failed login there is none, and at logout
        # the session is being ended.
        actor=username or "anonymous",
        actor_id=user_id,
    )
