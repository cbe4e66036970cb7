"""Every admin list of patients' data as a CSV file: the rows the list shows, all of its pages.

An admin adds ``CsvExportAdmin`` before its other bases (it needs ``AuditedAdmin``'s audit of a
row) and says what a row becomes in ``csv_columns(request)``: ``[(header, value of the row)]``,
asked per request so that a role that may not read the clinical record gets no clinical column.
The list page gets an "Export as CSV" link that keeps its query string; the export builds the
admin's own ``ChangeList`` from it, so its filters, search, ordering, ``list_select_related``
and permission are the list's. The rows are streamed from one server-side cursor, so a list of
100,000 rows costs the same few queries as one of ten and never sits in memory.

Values are written as the clinic reads them: dates in ISO, times in the clinic's zone (named in
the column's header, ``clinic_time``), a code as its label beside the code (``coded``), and a
cell a spreadsheet would read as a formula made text (``csv_cell``). Every exported row is
audited as a read, as the list audits the rows of its page, in one insert when the stream ends
(or stops: a download broken off is audited as far as it went).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ALL_VAR, ERROR_FLAG, PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.loader import select_template
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.text import slugify

from clinic.audit import audit_record
from clinic.models import AuditEvent

Column = tuple[str, Callable[[Any], Any]]

# A spreadsheet reads a cell starting with one of these as a formula (CSV injection): such a cell
# is given a leading apostrophe, which spreadsheets show as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows fetched from the cursor at a time, and written to the client at a time.
CHUNK_ROWS = 2000
LINES_PER_WRITE = 500


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_value(value) -> str:
    """A value as the file shows it: ISO dates, times in the clinic's zone, yes/no."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        # A number is no formula: a change of -12.5 % stays a number to the spreadsheet.
        return str(value)
    return csv_cell(value)


def clinic_time(header: str) -> str:
    """The header of a column of times, naming the zone they are given in."""
    return f"{header} ({timezone.get_current_timezone_name()})"


def coded(header: str, field: str, of: Callable[[Any], Any] = lambda row: row) -> list[Column]:
    """A coded field of the row (or of ``of(row)``): its label for people, its code for systems."""
    return [
        (header, lambda row: getattr(of(row), f"get_{field}_display")()),
        (f"{header} code", lambda row: getattr(of(row), field)),
    ]


def patient_columns(of: Callable[[Any], Any] = lambda row: row.patient) -> list[Column]:
    """Whose row it is, on every row of every list."""
    return [
        ("Patient", lambda row: f"{of(row).given_name} {of(row).family_name}"),
        ("MRN", lambda row: of(row).mrn),
    ]


class _Lines:
    """What ``csv.writer`` writes to: each row comes back as its line of text."""

    def write(self, line: str) -> str:
        return line


class CsvExportAdmin:
    """An admin list's "Export as CSV" (see the module's docstring)."""

    change_list_template = "admin/csv_change_list.html"

    def csv_columns(self, request) -> list[Column]:
        raise NotImplementedError

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "export.csv/",
                self.admin_site.admin_view(self.csv_export_view),
                name=f"{opts.app_label}_{opts.model_name}_export_csv",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        opts = self.model._meta
        # The page's own template (an app's or a model's override) with the link added to it.
        names = [
            f"admin/{opts.app_label}/{opts.model_name}/change_list.html",
            f"admin/{opts.app_label}/change_list.html",
            "admin/change_list.html",
        ]
        context = {
            "csv_list_template": select_template(names).template.name,
            "csv_export_url": self._csv_url(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def _csv_url(self, request) -> str:
        # The list's query string without its paging: the export holds every page.
        query = request.GET.copy()
        for name in (PAGE_VAR, ALL_VAR, ERROR_FLAG):
            query.pop(name, None)
        url = self._csv_admin_url("export_csv")
        return f"{url}?{query.urlencode()}" if query else url

    def _csv_admin_url(self, view: str) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", current_app=self.admin_site.name)

    def csv_export_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        request.GET = request.GET.copy()
        request.GET.pop(PAGE_VAR, None)
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            # As the list answers them: back to it, unfiltered, saying so.
            return HttpResponseRedirect(f"{self._csv_admin_url('changelist')}?{ERROR_FLAG}=1")
        rows = changelist.queryset.iterator(chunk_size=CHUNK_ROWS)
        response = StreamingHttpResponse(
            self._csv_lines(request, self.csv_columns(request), rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{self._csv_filename(changelist)}"'
        patch_cache_control(response, no_store=True, private=True)
        return response

    def _csv_filename(self, changelist) -> str:
        # A named list a custom filter picked (a worklist, the flags' review state) names the file;
        # a row's id (the attempts of one patient) says nothing to whoever opens the file.
        picked = [
            slugify(spec.value())
            for spec in changelist.filter_specs
            if isinstance(spec, admin.SimpleListFilter) and spec.value() and not spec.value().isdigit()
        ]
        name = slugify(str(self.model._meta.verbose_name_plural))
        parts = ["hfs", name, *picked, timezone.localdate().isoformat()]
        return f"{'-'.join(part for part in parts if part)}.csv"

    def _csv_lines(self, request, columns: list[Column], rows: Iterable) -> Iterator[str]:
        writer = csv.writer(_Lines())
        targets = []
        try:
            lines = [writer.writerow([header for header, _ in columns])]
            for row in rows:
                lines.append(writer.writerow([csv_value(value(row)) for _, value in columns]))
                # As the list's own audit (``AuditedAdmin._audit``) names a row: once it is written.
                targets.append((getattr(row, "uuid", row.pk), self.audit_patient(row)))
                if len(lines) >= LINES_PER_WRITE:
                    yield "".join(lines)
                    lines = []
            yield "".join(lines)
        finally:
            if targets:
                audit_record(
                    request=request,
                    channel="admin",
                    resource=self.model._meta.model_name,
                    status=200,
                    targets=targets,
                    action=AuditEvent.Action.READ,
                )
