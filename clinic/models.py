"""What every clinical model shares: a public UUID, timestamps, and no hard delete."""

import uuid

from django.db import models


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
