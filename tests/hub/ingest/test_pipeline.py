"""Hub ingest through a real Mosquitto: bad input is rejected and counted, good input survives."""

from __future__ import annotations

import json
import time

from contract.wire import MAX_PAYLOAD_BYTES, data_topic, status_topic
from tests.conftest import HubFactory, PublishBatch
from tests.support.hub import active_alerts, fall, publish_raw
from tests.support.mosquitto import MosquittoBroker
from tests.support.waiting import eventually


async def test_fall_opens_one_alert_naming_bed_room_and_resident(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    await publish_batch("sunrise", "gw-east", [fall("radar-101")], seq=1)

    async def opened() -> bool:
        return len(await active_alerts(hub)) == 1

    await eventually(opened)
    (alert,) = await active_alerts(hub)
    assert alert["rule"] == "fall"
    assert alert["priority"] == "emergency"
    assert alert["bed"] == "SR-E-101"
    assert alert["room_name"] == "101"
    assert alert["zone_name"] == "East wing"
    assert alert["resident_name"] == "Mary Jones"
    assert alert["resident_code"] == "E-0001"
    assert alert["late_s"] is None


async def test_redelivered_batch_raises_one_alert_not_two(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    items = [fall("radar-101")]
    await publish_batch("sunrise", "gw-east", items, seq=7)
    await publish_batch("sunrise", "gw-east", items, seq=7)
    await publish_batch("sunrise", "gw-east", [fall("radar-102")], seq=8)

    async def second_bed_seen() -> bool:
        return len(await active_alerts(hub)) == 2

    await eventually(second_bed_seen)
    # An alarm is announced before its batch is stored (alarms first): wait for the store too.
    await eventually(lambda: hub.ingest.accepted == 2)
    alerts = await active_alerts(hub)
    assert sorted(a["bed"] for a in alerts) == ["SR-E-101", "SR-E-102"]
    assert all(a["count"] == 1 for a in alerts)
    assert hub.ingest.duplicates == 1
    assert await hub.ingest.records.count_rows("events") == 2


async def test_repeat_trigger_adds_to_the_open_alert(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    await publish_batch("sunrise", "gw-east", [fall("radar-101")], seq=1)
    await publish_batch("sunrise", "gw-east", [fall("radar-101")], seq=2)

    async def counted_twice() -> bool:
        alerts = await active_alerts(hub)
        return len(alerts) == 1 and alerts[0]["count"] == 2

    await eventually(counted_twice)


async def test_fall_cleared_is_recorded_but_does_not_close_the_alert(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    await publish_batch("sunrise", "gw-east", [fall("radar-101"), fall("radar-101", False)], seq=1)

    async def cleared() -> bool:
        alerts = await active_alerts(hub)
        return len(alerts) == 1 and alerts[0]["cleared_at"] is not None

    await eventually(cleared)
    (alert,) = await active_alerts(hub)
    assert alert["state"] == "open"


async def test_smoke_in_a_room_names_the_room(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    smoke = {"dev": "smoke-101", "at": time.time(), "reading": "smoke", "value": True}
    await publish_batch("sunrise", "gw-east", [smoke], seq=1)

    async def opened() -> bool:
        return len(await active_alerts(hub)) == 1

    await eventually(opened)
    (alert,) = await active_alerts(hub)
    assert (alert["rule"], alert["room"], alert["bed"]) == ("smoke", "r101", None)


async def test_backlog_fall_is_alerted_and_marked_late(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    sensed = time.time() - 600
    await publish_batch(
        "sunrise", "gw-east", [{**fall("radar-101"), "at": sensed, "hist": True}], seq=1
    )

    async def opened() -> bool:
        return len(await active_alerts(hub)) == 1

    await eventually(opened)
    (alert,) = await active_alerts(hub)
    assert alert["late_s"] is not None and alert["late_s"] >= 599


async def test_bad_input_is_counted_and_good_items_still_alert(
    hub_factory: HubFactory, publish_batch: PublishBatch, broker: MosquittoBroker
) -> None:
    hub = await hub_factory()
    east = data_topic("sunrise", "gw-east")
    await publish_raw(broker, east, b"{not json")
    await publish_raw(broker, east, b'{"epoch":"0123abcd","seq":1}')
    await publish_raw(broker, east, b"x" * (MAX_PAYLOAD_BYTES + 1))
    await publish_raw(broker, "carewatch/v1/Sunrise Home!/gw-east/data", b"{}")
    await publish_raw(broker, data_topic("sunrise", "gw-nobody"), b"{}")
    await publish_raw(broker, status_topic("sunrise", "gw-east"), b'{"state":"maybe"}')
    # A neighbour's garbage in the same batch as a real fall.
    garbage = [
        {"dev": "radar-101", "at": time.time(), "event": "explosion"},
        {"dev": "radar-101", "at": time.time(), "reading": "heart_rate", "value": "fast"},
        {"dev": "ghost-1", "at": time.time(), "event": "fall"},
        fall("radar-102"),
    ]
    await publish_batch("sunrise", "gw-east", garbage, seq=1)

    async def alerted() -> bool:
        return len(await active_alerts(hub)) == 1

    await eventually(alerted)
    await eventually(lambda: hub.ingest.counters().get("accepted", 0) >= 1)  # stored after
    (alert,) = await active_alerts(hub)
    assert alert["bed"] == "SR-E-102"
    counters = hub.ingest.counters()
    assert counters["rejected_malformed"] == 3
    assert counters["rejected_oversized"] == 1
    assert counters["rejected_bad_topic"] == 1
    assert counters["rejected_unknown_gateway"] == 1
    assert counters["rejected_malformed_item"] == 2
    assert counters["rejected_unknown_device"] == 1
    assert counters["accepted"] == 1


async def test_gateway_cannot_report_another_gateways_devices(
    hub_factory: HubFactory, publish_batch: PublishBatch
) -> None:
    hub = await hub_factory()
    # gw-west publishes a fall for a device that belongs to gw-east, on its own topic...
    await publish_batch("sunrise", "gw-west", [fall("radar-101")], seq=1)
    # ...and a fall of its own device under gw-east's topic.
    await publish_batch("sunrise", "gw-east", [fall("radar-201")], seq=1)
    await publish_batch("sunrise", "gw-west", [fall("radar-201")], seq=2)

    async def own_device_alerted() -> bool:
        return len(await active_alerts(hub)) == 1

    await eventually(own_device_alerted)
    (alert,) = await active_alerts(hub)
    assert alert["bed"] == "SR-W-201"
    assert hub.ingest.counters()["rejected_foreign_device"] == 2


async def test_stale_death_message_does_not_mark_a_live_gateway_offline(
    hub_factory: HubFactory, broker: MosquittoBroker
) -> None:
    hub = await hub_factory()
    topic = status_topic("sunrise", "gw-east")
    await publish_raw(broker, topic, json.dumps({"state": "online", "bdseq": 5}).encode())
    await publish_raw(broker, topic, json.dumps({"state": "offline", "bdseq": 4}).encode())
    await publish_raw(
        broker, topic, json.dumps({"state": "online", "bdseq": 5, "at": 1.0}).encode()
    )

    async def recorded() -> bool:
        return await hub.ingest.records.gateway_status("sunrise", "gw-east") == ("online", 5)

    await eventually(recorded)
    await publish_raw(broker, topic, json.dumps({"state": "offline", "bdseq": 5}).encode())

    async def offline() -> bool:
        return await hub.ingest.records.gateway_status("sunrise", "gw-east") == ("offline", 5)

    await eventually(offline)
