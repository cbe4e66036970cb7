"""The page a locked-out sign-in gets (django-axes' ``AXES_LOCKOUT_CALLABLE``).

In the admin's own frame, with status 429; it names neither the username tried nor the address,
and tells the person at the keyboard when to try again and whom to ask.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render


def locked_out(request, original_response=None, credentials=None):
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {**admin.site.each_context(request), "title": "Signing in is paused", "minutes": minutes}
    return render(request, "admin/locked_out.html", context, status=429)
