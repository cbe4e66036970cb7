# The indexes of the staff search (patients/search.py, issue 16).
#
# The trigram indexes are PostgreSQL's (pg_trgm, GIN): they are built here, by SQL run only on
# PostgreSQL, and kept out of the models' state, which SQLite would otherwise be asked to build
# whenever it remakes the patient table. Their expressions are exactly what the search compares,
# as EXPLAIN showed (tests/patients/test_patient_search.py keeps it so):
# - Django's icontains is ``UPPER("col"::text) LIKE UPPER('%word%')``; a trigram index on the bare
#   column is not used for it, one on ``UPPER(col)`` is (a Bitmap Index Scan per column).
# - The phone is compared on its digits, ``REGEXP_REPLACE(phone, '[^0-9]', '', 'g')``
#   (``PhoneDigits``), with ``LIKE '%digits%'``.

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

TRIGRAM_INDEXES = {
    "patients_patient_mrn_trgm": "UPPER(mrn)",
    "patients_patient_given_trgm": "UPPER(given_name)",
    "patients_patient_family_trgm": "UPPER(family_name)",
    "patients_patient_email_trgm": "UPPER(email)",
    "patients_patient_phone_trgm": "REGEXP_REPLACE(phone, '[^0-9]', '', 'g')",
}


def trigram_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON patients_patient USING gin (({expression}) gin_trgm_ops)"
        )


def trigram_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0007_call_list_indexes"),
    ]

    operations = [
        # Nothing on SQLite: CreateExtension does nothing on other databases.
        TrigramExtension(),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(fields=["date_of_birth"], name="patients_patient_born"),
        ),
        migrations.RunPython(trigram_indexes_create, trigram_indexes_drop, elidable=False),
    ]
