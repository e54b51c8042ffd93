"""The family is told that "<name> was alerted" only about staff: a relative that a policy names
directly (`user:daughter`) is reached too, but is never presented as the care service."""

from __future__ import annotations

from tests.conftest import HubFactory, PublishBatch
from tests.hub.family.test_family import QUIET, Home, site_with_contacts
from tests.support.notifier import RecordingNotifier


async def test_a_relative_reached_by_a_step_is_not_named_as_the_staff_response(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    escalation = {"defaults": {"steps": [{"after_min": 0, "notify": "user:daughter"}]}}
    hub = await hub_factory(sites=[site_with_contacts()], escalation=escalation, watch=QUIET)
    assert hub.escalation is not None
    recorder = RecordingNotifier()
    hub.escalation.add_notifier(recorder)
    home = Home(hub, publish_batch)

    await home.open_alert({"dev": "radar-101", "event": "fall", "value": True})
    mary = await home.mary_when(lambda m: bool(recorder.sent) and m["active_alerts"])

    assert recorder.recipients()[0] == "daughter"  # the relative was reached, as recorded
    (alert,) = mary["active_alerts"]
    response = alert["staff_response"]
    # Nobody of the staff was: the step reached no one who answers alerts.
    assert response["kind"] in ("waiting", "nobody_reached")
    assert response["name"] is None
