"""The staff search on the embedded SQLite database of `make run` (issue 16): no trigram index, no
REGEXP_REPLACE, the same answers. Run in a fresh process on a fresh file, as tests/test_sqlite_smoke.py
runs the core flow: the settings read the database from the environment once, at import."""

import json

from tests.smoke import environment, manage

SEARCHES = """
import json
from datetime import date
from patients import services
from patients.models import Patient
from patients.search import patients_matching

for mrn, given, family, born, phone in [
    ("HFS-0042137", "Margarethe", "Lindqvist", date(1968, 5, 17), "+49 30 1234567"),
    ("HFS-0099001", "Anna", "Lindqvist", date(1971, 2, 3), "+49 30 7654321"),
]:
    services.patient_create(
        mrn=mrn, given_name=given, family_name=family, date_of_birth=born, sex="female", phone=phone
    )
terms = ["+49 (30) 123-4567", "030 / 123 45 67", "42137", "lindq", "17.05.1968"]
terms += ["lindqvist 1971-02-03", "Zebedee"]
print(json.dumps({t: sorted(p.mrn for p in patients_matching(Patient.objects.all(), t)) for t in terms}))
"""


def test_the_search_answers_the_same_on_sqlite(tmp_path):
    env = environment(VAR_DIR=tmp_path / "var")
    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr

    searched = manage("shell", "--no-imports", "-c", SEARCHES, env=env)

    assert searched.returncode == 0, searched.stderr
    assert json.loads(searched.stdout.strip().splitlines()[-1]) == {
        "+49 (30) 123-4567": ["HFS-0042137"],
        "030 / 123 45 67": ["HFS-0042137"],
        "42137": ["HFS-0042137"],
        "lindq": ["HFS-0042137", "HFS-0099001"],
        "17.05.1968": ["HFS-0042137"],
        "lindqvist 1971-02-03": ["HFS-0099001"],
        "Zebedee": [],
    }
