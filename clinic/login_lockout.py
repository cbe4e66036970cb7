"""The staff login's lockout around django-axes: the page a locked-out sign-in gets
(``AXES_LOCKOUT_CALLABLE``), and what a successful sign-in clears.

The page is in the admin's own frame, with status 429; it names neither the username tried nor
the address, and tells the person at the keyboard when to try again and whom to ask.
"""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.shortcuts import render


def locked_out(request, original_response=None, credentials=None):
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {**admin.site.each_context(request), "title": "Signing in is paused", "minutes": minutes}
    return render(request, "admin/locked_out.html", context, status=429)


@receiver(user_logged_in, dispatch_uid="clinic.login_lockout.count_cleared")
def count_clear(sender, request, user, **kwargs):
    """The signed-in user's own wrong passwords are forgotten, from every address; other usernames'
    failures from this address still count toward the address's lockout."""
    AccessAttempt.objects.filter(username=user.get_username()).delete()
