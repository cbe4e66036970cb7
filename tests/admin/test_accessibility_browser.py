"""axe-core on the staff panel's daily pages, in a real browser at 1280 x 800 (issue 16).

axe-core comes from npm (``package.json``; ``make test`` installs it) and is read from disk into
the page by Playwright: the product itself serves no npm asset. A serious or critical violation
of WCAG 2 A/AA on the dashboard, a patient page, the forms of the record and the lists fails the
test, in the light and the dark theme.
"""

import json
from pathlib import Path

import pytest

from clinic.roles import Role
from tests.admin.conftest import log_in, waiting_patient

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_defaults"),
]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"]}});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + ": " + n.failureSummary)}));
}"""


def pages(patient, treatment) -> dict[str, str]:
    return {
        "dashboard": "/admin/",
        "patient page": f"/admin/patients/patient/{patient.pk}/page/",
        "MVD form": f"/admin/patients/treatment/add/?patient={patient.pk}&kind=mvd",
        "toxin form": f"/admin/patients/treatment/add/?patient={patient.pk}&kind=botulinum_toxin",
        "treatment summary": f"/admin/patients/treatment/{treatment.pk}/change/",
        "assessment form": f"/admin/followups/assessment/add/?patient={patient.pk}",
        "patient list": "/admin/patients/patient/?q=" + patient.family_name,
        "overdue list": "/admin/followups/visit/?worklist=overdue",
        "call list": "/admin/followups/contactattempt/call-list/",
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_or_critical_violation_on_the_daily_pages(
    chromium, live_server, make_staff, planted, today, scheme
):
    assert AXE.is_file(), "axe-core is installed by `make test` (npm ci)"
    waiting_patient("Adeyemi", 40, today)
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 800}, color_scheme=scheme
    )
    page = context.new_page()
    try:
        log_in(page, make_staff(Role.CLINICIAN))
        found = {}
        for name, url in pages(planted["patient"], planted["course"]).items():
            page.goto(url)
            page.evaluate(AXE.read_text())
            violations = page.evaluate(RUN_AXE)
            if violations:
                found[name] = violations
        assert found == {}, json.dumps(found, indent=1)
    finally:
        context.close()
