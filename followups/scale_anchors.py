"""The anchors of the scales an assessment records (DOMAIN.md section 3), shown beside each field.

A grade typed as a bare number is where mistakes happen (is SMC II "2" or "1"? is Cohen-Albert 3
"obvious" or "severe"?), so the staff form offers each grade as its anchor sentence. The Jankovic
wording is the published original (blepharospasm) set, which the form says; a clinic using the
HFS-adapted set records that in the anchor-set field. HFS-7 item wording is licensed and loaded
by the clinic, never shipped: its items show the 0-4 range only.
"""

from django.utils.translation import gettext_lazy as _

COHEN_ALBERT = (
    (0, _("0 — no spasm")),
    (1, _("1 — increased blinking or slight twitching only with external stimuli")),
    (2, _("2 — spontaneous slight eyelid or face fluttering, no functional impairment")),
    (3, _("3 — obvious spasm, mild functional impairment")),
    (4, _("4 — severe spasm, marked impairment (cannot keep the eye open to read or walk alone)")),
)
SMC = (
    (1, _("I — spasm confined to the area around the eye")),
    (2, _("II — spread to other muscles of the same side")),
    (3, _("III — frequent tonic spasms that interfere with vision")),
    (4, _("IV — disfiguring asymmetry")),
)
JANKOVIC_SEVERITY = (
    (0, _("0 — none")),
    (1, _("1 — increased blinking with external stimuli only")),
    (2, _("2 — mild, noticeable fluttering without functional impairment")),
    (3, _("3 — moderate, very noticeable spasm, mildly incapacitating")),
    (4, _("4 — severely incapacitating (cannot drive, read...)")),
)
JANKOVIC_FREQUENCY = (
    (0, _("0 — none")),
    (1, _("1 — slightly increased frequency of blinking")),
    (2, _("2 — fluttering lasting less than 1 second")),
    (3, _("3 — spasm lasting more than 1 second, eye open more than half the waking time")),
    (4, _("4 — functionally blind: eye closed more than half the waking time")),
)
HOUSE_BRACKMANN = (
    (1, _("I — normal facial function")),
    (2, _("II — mild dysfunction")),
    (3, _("III — moderate dysfunction")),
    (4, _("IV — moderately severe dysfunction")),
    (5, _("V — severe dysfunction")),
    (6, _("VI — total paralysis")),
)
HFS7_ITEM = tuple((n, str(n)) for n in range(5))

# The assessment's fields graded on an anchored scale, and their anchors.
ANCHORS = {
    "cohen_albert_grade": COHEN_ALBERT,
    "smc_grade": SMC,
    "jankovic_severity": JANKOVIC_SEVERITY,
    "jankovic_frequency": JANKOVIC_FREQUENCY,
    "house_brackmann_grade": HOUSE_BRACKMANN,
}
HELP = {
    "spasms_per_day": _("Spasms a day, 0 or more (a count or the patient's estimate)."),
    "episode_duration_seconds": _("A typical spasm's length in seconds."),
    "jankovic_severity": _(
        "Jankovic rating scale, original anchors; total 0-8, a 2-point drop is meaningful."
    ),
    "house_brackmann_grade": _("Facial nerve function, recorded after MVD."),
}
HFS7_HELP = _("0-4, higher is worse (the clinic's loaded wording); answer all seven or none.")
