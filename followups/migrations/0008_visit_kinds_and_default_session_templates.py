"""The kind of clinic each protocol step and visit needs (DOMAIN.md section 12), and the clinic's
default week of sessions."""

from django.db import migrations
from django.utils import timezone

from followups.protocol_defaults import default_visit_kind, session_templates_load_defaults


def set_visit_kinds(apps, schema_editor):
    ProtocolStep = apps.get_model("followups", "ProtocolStep")
    Visit = apps.get_model("followups", "Visit")
    for step in ProtocolStep.objects.select_related("protocol"):
        kind = default_visit_kind(step.protocol.code, step.code)
        if step.visit_kind != kind:
            step.visit_kind = kind
            step.save(update_fields=["visit_kind"])
    for kind in ProtocolStep.objects.values_list("visit_kind", flat=True).distinct():
        Visit.objects.filter(protocol_step__visit_kind=kind).update(visit_kind=kind)
        # A rebooked visit needs the clinic of the visit it replaces.
        Visit.objects.filter(rebooked_from__protocol_step__visit_kind=kind).update(visit_kind=kind)


def load_default_templates(apps, schema_editor):
    session_templates_load_defaults(
        apps.get_model("followups", "SessionTemplate"),
        apps.get_model("followups", "SessionTemplateKind"),
        valid_from=timezone.localdate(),
    )


class Migration(migrations.Migration):
    dependencies = [("followups", "0007_clinic_sessions_slots_visit_kinds")]

    operations = [
        migrations.RunPython(set_visit_kinds, migrations.RunPython.noop),
        migrations.RunPython(load_default_templates, migrations.RunPython.noop),
    ]
