"""The embedded defaults that `make run` uses carry the core flow: SQLite under VAR_DIR, no services.

On PostgreSQL the same services are tested in depth; this is the one run on the file database,
where a migration or a constraint that only PostgreSQL accepts would otherwise go unnoticed. The
flow ends with a reminder claimed and sent as the worker does it, written as a file under VAR_DIR.
"""

import json
import sys

from tests.smoke import environment, manage, run


def test_a_fresh_checkout_migrates_and_runs_the_core_flow_on_sqlite_under_var(tmp_path):
    # Not created beforehand: on a fresh checkout `var/` does not exist either.
    var_dir = tmp_path / "var"
    env = environment(VAR_DIR=var_dir)

    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    flow = run([sys.executable, "tests/smoke/core_flow.py"], env)
    assert flow.returncode == 0, flow.stderr

    summary = json.loads(flow.stdout)
    database_file = var_dir / "hfs_followup.sqlite3"
    assert summary["database_in_use"] == {"vendor": "sqlite", "name": str(database_file)}
    assert database_file.is_file()
    assert summary["patient_registered"] == {
        "email_reminders": True,
        "consent_recorded": True,
        "history_rows": 1,
    }
    assert summary["diagnosis_recorded"] == {
        "kind": "primary",
        "side": "left",
        "muscles": ["orbicularis_oculi", "zygomaticus"],
    }
    assert summary["treatments_recorded"] == {
        "medication": {"drug": "carbamazepine", "daily_dose_mg": "400.00"},
        "botulinum_toxin": {
            "product": "onabotulinumtoxinA",
            "units": {"orbicularis_oculi": "15.00", "zygomaticus": "5.00"},
        },
        "mvd": {"technique": "interposition", "offending_vessels": ["aica"]},
        "history_rows": 3,
    }
    # The operation of a month ago planned its five years; the older treatments' windows are closed.
    assert summary["visits_planned"] == {
        "planned_days_by_treatment": {"mvd": [30, 90, 180, 365, 730, 1095, 1460, 1825]},
        "all_planned_in_an_open_window": True,
        "reminder_kinds_per_visit": [["booking_invitation", "booking_last_call"]],
        "invitations_pending": 8,
        "last_calls_as_their_day_says": True,
    }
    assert summary["reminder_delivered"] == {
        "planned": "pending",
        "claimed": True,
        "outcome": "sent",
        "again": "not held",
    }
    assert summary["reminder_mail_written"] == {
        "folder": str(var_dir / "mail"),
        "new_files": 1,
        "status": "sent",
        "sent_at_recorded": True,
        "message_id_in_file": True,
        "greets_first_name": True,
        "one_click_opt_out": True,
        "calendar_attached": True,
        "clinical_words": [],
    }
    # The appointment reminder and the invitation: nothing else was sent.
    assert len(list((var_dir / "mail").iterdir())) == 2
    assert summary["api_read"] == {
        "statuses": [200, 200],
        "patient_shown": True,
        "clinical_fields_shown": [],
        "visits_shown": True,
        "last_used_recorded": True,
        "revoked_key": 401,
    }
    # Rule version 2: the drug course is not credited with the MVD's cure (version 1 said cured);
    # the flag is dated by the diagnosis and left the worklist once acknowledged; a time outside
    # the window is refused, a wrong "completed" corrected with its reason in the history; a visit
    # past its window is overdue until the patient holds a booking ahead.
    assert summary["clinical_rules_v2"] == {
        "outcomes": {
            "medication": ["unchanged", 2],
            "botulinum_toxin": ["insufficient_data", 2],
            "mvd": ["delayed_cure", 2],
        },
        "sources": ["clinician", "nurse"],
        "flag_since": "2023-03-01",
        "flag_to_review": False,
        "outside_window": "outside_window",
        "corrected": ["booked", "Completed by mistake."],
        "overdue_before_and_after": [1, 0],
    }
    # The default week of sessions is generated once; a slot's capacity holds on SQLite as well.
    assert summary["slot_booked"] == {
        "sessions_made": True,
        "again": 0,
        "booked_at_slot_time": True,
        "places_taken": 1,
        "full": "slot_full",
    }
    assert summary["booking_invitation_mailed"] == {
        "outcome": "sent",
        "names_the_window": True,
        "booking_link": True,
        "calendar_attached": False,
        "clinical_words": [],
    }
    assert summary["session_cancelled"] == {
        "visit": "planned",
        "clinic_cancelled": True,
        "notice": "pending",
        "places_left_taken": 0,
    }
    # The call list (section 9) on SQLite: Ada first (a month after her MVD), sent back by the
    # cancelled session; Bea's review window closed 20 days ago. Each outcome does what it says.
    ada = ["Ada", "clinic_cancelled", 0, True, None]
    assert summary["call_list_worked"] == {
        "on_the_list": [ada, ["Bea", "window_closed", 20, False, None]],
        "called_later": [ada],
        "on_the_day": [["Bea", "window_closed", 27, False, "call_later"]],
        "no_answer": [ada, ["Bea", "window_closed", 20, False, "no_answer"]],
        "wrong_number": [["Bea", "window_closed", 20, False, "wrong_number"]],
        "contact_flag": True,
        "declined": [ada],
        "ended": "declined_follow_up",
        "attempts": 4,
    }
    assert summary["lost_list_read"] == {
        "lost": [["Cy", "window_closed", 390]],
        "lost_after_30_days": ["Cy"],
        "flag_since_days_ago": 35,
    }
