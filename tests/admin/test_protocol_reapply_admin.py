"""Re-applying an edited protocol from the staff panel (issue 18): an action on the protocol list
that records a run of its patients in chunks and hands them to the workers, never in the request."""

import pytest

from clinic.roles import Role
from followups import tasks
from followups.models import FollowUpRun, Protocol
from patients.codes import TreatmentKind
from tests.admin.conftest import client_for

pytestmark = pytest.mark.django_db

PROTOCOLS = "/admin/followups/protocol/"


@pytest.fixture
def queued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(tasks.follow_up_run_chunk, "delay", sent.append)
    return sent


def reapply(client, protocol):
    return client.post(PROTOCOLS, {"action": "reapply", "_selected_action": [protocol.pk]}, follow=True)


def test_a_clinician_re_plans_the_patients_of_a_protocol_through_the_workers(
    make_staff, planted, queued, django_capture_on_commit_callbacks
):
    toxin = Protocol.objects.get(treatment_kind=TreatmentKind.BOTULINUM_TOXIN)

    with django_capture_on_commit_callbacks(execute=True):
        response = reapply(client_for(make_staff(Role.CLINICIAN)), toxin)

    run = FollowUpRun.objects.get(kind="protocol", subject=toxin.code)
    assert run.patients >= 1 and run.done == 0  # the request re-planned nobody itself
    assert queued == list(run.chunks.order_by("pk").values_list("pk", flat=True))
    assert f"{run.patients} patients to re-plan" in response.content.decode()


def test_a_nurse_cannot_re_plan_by_protocol(make_staff, planted, queued):
    toxin = Protocol.objects.get(treatment_kind=TreatmentKind.BOTULINUM_TOXIN)

    response = reapply(client_for(make_staff(Role.NURSE)), toxin)

    assert response.status_code in (200, 403)
    assert not FollowUpRun.objects.filter(kind="protocol").exists()
    assert queued == []
