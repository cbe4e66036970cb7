"""The ``lab`` role of API.md v2 (issue 19): its group, beside the four the roles migration made."""

from django.db import migrations

ROLE = "lab"


def create_lab_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=ROLE)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0003_audit_attempts_and_no_truncate")]

    operations = [migrations.RunPython(create_lab_role, migrations.RunPython.noop)]
