from django.db import migrations

from followups.protocol_defaults import protocols_load_defaults


def load(apps, schema_editor):
    protocols_load_defaults(apps.get_model("followups", "Protocol"), apps.get_model("followups", "ProtocolStep"))


class Migration(migrations.Migration):
    dependencies = [("followups", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
