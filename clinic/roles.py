"""The roles of API.md, shared by staff users (Django groups) and API clients.

A resource names its kind; a role may read or write a kind or not. Views, the admin and the API
ask ``may`` and nothing else, so the matrix below is the whole permission model.
"""

from __future__ import annotations

from django.db import connection, models


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    NURSE = "nurse", "Nurse"
    FRONT_DESK = "front_desk", "Front desk"
    INTEGRATION_READ = "integration_read", "Integration (read only)"
    # API.md v2: the lab system (or a lab technician), which writes lab results and reads nothing else.
    LAB = "lab", "Laboratory (lab results only)"


class Kind(models.TextChoices):
    """What a resource is, as far as permissions go."""

    CONTACT = "contact", "Patients' contact data"
    CLINICAL = "clinical", "Clinical record (diagnoses, imaging, treatments, outcomes, flags)"
    VISIT = "visit", "Visits and worklists of visits"
    ASSESSMENT = "assessment", "Assessments"
    REMINDER = "reminder", "Reminders"
    # Laboratory results: of the assessments' kind for every role that has those (a nurse writes
    # both), a kind of their own so that the lab role reaches them and nothing else.
    LAB_RESULT = "lab_result", "Laboratory results"


READ = {
    Role.CLINICIAN: set(Kind),
    Role.NURSE: set(Kind),
    Role.FRONT_DESK: {Kind.CONTACT, Kind.VISIT, Kind.REMINDER},
    Role.INTEGRATION_READ: set(Kind),
    # Not even patients' contact data: the lab posts a result with the patient's id from the order.
    Role.LAB: {Kind.LAB_RESULT},
}
WRITE = {
    Role.CLINICIAN: set(Kind),
    Role.NURSE: {Kind.VISIT, Kind.ASSESSMENT, Kind.LAB_RESULT},
    Role.FRONT_DESK: {Kind.CONTACT, Kind.VISIT, Kind.REMINDER},
    Role.INTEGRATION_READ: set(),
    Role.LAB: {Kind.LAB_RESULT},
}


def role_of(user) -> Role | None:
    """The role of a staff user or API client's user: its group, or clinician for a superuser.

    A user in several role groups has the first of ``Role``'s order (``role_sql`` agrees)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.CLINICIAN
    cached = getattr(user, "_hfs_role", False)
    if cached is not False:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = next((role for role in Role if role.value in names), None)
    user._hfs_role = role
    return role


def role_sql(user_id_sql: str) -> tuple[str, list[str]]:
    """The role of the user whose id is ``user_id_sql``, as an SQL subquery and its parameters, for
    the query that finds an API client to answer its role too (one query per request, not two).
    Plain SQL of both engines; a user in several role groups has the first in ``Role``'s order."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    through = get_user_model().groups.through._meta
    quote = connection.ops.quote_name
    roles = list(Role.values)
    marks = ", ".join(["%s"] * len(roles))
    rank = " ".join(f"WHEN %s THEN {index}" for index in range(len(roles)))
    sql = (
        f"(SELECT g.name FROM {quote(Group._meta.db_table)} g "
        f"JOIN {quote(through.db_table)} ug ON ug.{quote(through.get_field('group').column)} = g.id "
        f"WHERE ug.{quote(through.get_field('user').column)} = {user_id_sql} AND g.name IN ({marks}) "
        f"ORDER BY CASE g.name {rank} END LIMIT 1)"
    )
    return sql, [*roles, *roles]


def remember_role(user, value: str | None) -> None:
    """Hand ``role_of`` a role read with the user (``role_column``), so it asks no more."""
    user._hfs_role = Role(value) if value else None


def may(user, kind: Kind, *, write: bool) -> bool:
    role = role_of(user)
    if role is None:
        return False
    return kind in (WRITE if write else READ)[role]


def group_for(role: Role):
    """The Django group of a role (created by a migration; recreated if a test emptied the table)."""
    from django.contrib.auth.models import Group

    return Group.objects.get_or_create(name=role.value)[0]
