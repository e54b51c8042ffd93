"""Which rules a bed's devices can drive, and the warnings for those switched on that they cannot:
worked out from real registry data and profiles, served by the registry API with its access
control, printed by `carewatch registry check`, and listed by the walk test and its report."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from playwright.async_api import async_playwright, expect

from hub.commissioning.report import ALL_DRIVEN, build_report, render_html, render_pdf
from hub.registry.data import data_from_specs
from hub.registry.models import SiteSpec
from hub.watch.coverage import Coverage, coverage
from hub.watch.settings import WatchConfig, WatchPolicy
from tests.conftest import (
    ADMIN,
    EAST_NURSE,
    FAMILY,
    INSTALLER,
    HubFactory,
    hub_config,
)
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.hub import login
from tests.support.mosquitto import MosquittoBroker

# The standard bed of issue 11, as homes fit it.
STANDARD_BED: list[dict[str, Any]] = [
    {"id": "bed-radar", "gateway": "gw-east", "profile": "seeed-mr60bha2", "bed": "SR-E-101"},
    {"id": "fall-radar", "gateway": "gw-east", "profile": "seeed-mr60fda2", "bed": "SR-E-101"},
    {"id": "room-door", "gateway": "gw-east", "profile": "shelly-blu-door-window", "room": "r101"},
    {"id": "button", "gateway": "gw-east", "profile": "shelly-blu-button1", "bed": "SR-E-101"},
    {"id": "smoke", "gateway": "gw-east", "profile": "bthome-smoke", "room": "r101"},
    {"id": "bath-motion", "gateway": "gw-east", "profile": "shelly-blu-motion", "room": "r101b"},
]
BATHROOM_DOOR = {
    "id": "bath-door",
    "gateway": "gw-east",
    "profile": "shelly-blu-door-window",
    "room": "r101b",
}
FALL_RADAR_ONLY = [
    {"id": "radar-201", "gateway": "gw-west", "profile": "seeed-mr60fda2", "bed": "SR-W-201"}
]


def site(devices: list[dict[str, Any]], flags: list[str] | None = None) -> dict[str, Any]:
    """Sunrise: the standard bed's room and bathroom in the east wing, a bed in the west."""
    resident = {"code": "E-0001", "name": "Mary Jones", "flags": flags or []}
    return {
        "id": "sunrise",
        "name": "Sunrise Care Home",
        "gateways": ["gw-east", "gw-west"],
        "zones": [
            {
                "id": "east",
                "name": "East wing",
                "rooms": [
                    {
                        "id": "r101",
                        "name": "101",
                        "beds": [{"code": "SR-E-101", "resident": resident}],
                    },
                    {"id": "r101b", "name": "101 bathroom", "kind": "bathroom"},
                ],
            },
            {
                "id": "west",
                "name": "West wing",
                "rooms": [{"id": "r201", "name": "201", "beds": [{"code": "SR-W-201"}]}],
            },
        ],
        "devices": devices,
    }


def covered(
    devices: list[dict[str, Any]],
    watch: dict[str, Any] | None = None,
    flags: list[str] | None = None,
    **scope: Any,
) -> Coverage:
    data = data_from_specs([SiteSpec.model_validate(site(devices, flags))])
    return coverage(data, WatchPolicy(WatchConfig.model_validate(watch or {})), **scope)


def rules_warned(found: Coverage, place: str) -> set[str]:
    return {w.rule for w in found.warnings if place in (w.bed, w.room, w.zone)}


def test_the_standard_bed_warns_only_that_motion_alone_cannot_tell_a_bathroom_stay() -> None:
    found = covered(STANDARD_BED, zone="east")
    assert [(w.rule, w.room) for w in found.warnings] == [("prolonged_stay", "r101b")]
    assert found.warnings[0].text == (
        "Room 101 bathroom (bathroom, East wing): too long in the bathroom (45 min) is always "
        "on, but a motion sensor alone cannot tell a still person from an empty room (add a "
        "door contact such as the Shelly BLU Door/Window on the bathroom door, or fit a "
        "presence radar such as the HLK-LD2410)"
    )
    [bed] = found.beds
    assert bed.place == "Bed SR-E-101 (Room 101, East wing)"
    assert bed.rules == {
        "fall": "driven",
        "call_button": "driven",
        "smoke": "driven",
        "bed_exit": "driven",
        "not_up": "driven",
        "inactivity": "driven",
        "vital_signs": "driven",
        "breathing_pause": "driven",
        "door_at_night": "off",
    }
    # a door contact on the bathroom door lets the stay end when someone leaves
    assert covered([*STANDARD_BED, BATHROOM_DOOR], zone="east").warnings == []


def test_a_bed_with_only_a_fall_radar_cannot_tell_in_bed_nor_vital_signs() -> None:
    found = covered(FALL_RADAR_ONLY, zone="west")
    assert rules_warned(found, "SR-W-201") == {
        "call_button",
        "smoke",
        "bed_exit",
        "not_up",
        "vital_signs",
    }
    [bed] = found.beds
    assert (bed.rules["fall"], bed.rules["inactivity"]) == ("driven", "driven")
    assert bed.rules["breathing_pause"] == "cannot"  # but said once, with the vital signs
    text = {w.rule: w.text for w in found.warnings}
    assert text["bed_exit"] == (
        "Bed SR-W-201 (Room 201, West wing): bed exit without return is on, but no device on "
        "this bed can tell whether someone is in it (the presence seen by the MR60FDA2 60 GHz "
        "fall-detection radar means someone in the room, not in the bed; fit a bed radar such "
        "as the MR60BHA1 or MR60BHA2 over the bed, or a pressure mat such as the Linptech PS1BB)"
    )
    assert "not up by 09:30 is on" in text["not_up"]
    assert "no device on this bed measures heart or breathing rate" in text["vital_signs"]


def test_a_pressure_mat_tells_in_bed_but_vital_signs_still_need_a_radar() -> None:
    mat = {"id": "mat", "gateway": "gw-west", "profile": "linptech-ps1bb", "bed": "SR-W-201"}
    found = covered([*FALL_RADAR_ONLY, mat], zone="west")
    assert rules_warned(found, "SR-W-201") == {"call_button", "smoke", "vital_signs"}


def test_a_rule_switched_off_warns_of_nothing() -> None:
    watch = {
        "zones": {"sunrise/west": {"bed_exit": False, "vital_signs": False}},
        "residents": {},
        "defaults": {"up_by": None},
    }
    found = covered(FALL_RADAR_ONLY, watch, zone="west")
    assert rules_warned(found, "SR-W-201") == {"call_button", "smoke"}
    [bed] = found.beds
    assert {rule for rule, state in bed.rules.items() if state == "off"} == {
        "bed_exit",
        "not_up",
        "vital_signs",
        "breathing_pause",
        "door_at_night",
    }


def test_the_night_door_rule_needs_an_exit_door_in_the_zone() -> None:
    # switched on for the zone, or by a wander-risk resident in it
    on = covered(STANDARD_BED, {"zones": {"sunrise/east": {"door_at_night": True}}})
    flagged = covered(STANDARD_BED, flags=["wander_risk"])
    for found, reason in ((on, "set for the zone"), (flagged, "flagged wander risk")):
        [door] = [w for w in found.warnings if w.rule == "door_at_night"]
        assert (door.zone, door.bed) == ("east", None)
        assert door.text.startswith("East wing (Sunrise Care Home): door at night is on (")
        assert reason in door.text and "Mary" not in door.text
        assert found.beds[0].rules["door_at_night"] == "cannot"
    # the west wing has no wanderer and no setting: nothing said of it
    assert [w.zone for w in flagged.warnings if w.rule == "door_at_night"] == ["east"]
    exit_door = [{**d, "role": "exit_door"} if d["id"] == "room-door" else d for d in STANDARD_BED]
    found = covered(exit_door, flags=["wander_risk"])
    assert rules_warned(found, "east") == {"prolonged_stay"}
    assert found.beds[0].rules["door_at_night"] == "driven"


def test_bathrooms_need_presence_or_motion_with_a_door_contact() -> None:
    def bathroom(*profiles: str) -> set[str]:
        devices = [
            {"id": f"d{n}", "gateway": "gw-east", "profile": p, "room": "r101b"}
            for n, p in enumerate(profiles)
        ]
        return rules_warned(covered(devices, zone="east"), "r101b")

    assert bathroom("hlk-ld2410") == set()
    assert bathroom("shelly-blu-motion", "shelly-blu-door-window") == set()
    assert bathroom("shelly-blu-motion") == {"prolonged_stay"}
    assert bathroom("shelly-blu-door-window") == {"prolonged_stay"}
    assert bathroom() == {"prolonged_stay"}


def test_room_devices_drive_falls_and_calls_but_not_the_bed() -> None:
    in_room = [
        {"id": "r", "gateway": "gw-west", "profile": "seeed-mr60fda1", "room": "r201"},
        {"id": "b", "gateway": "gw-west", "profile": "shelly-blu-button1", "room": "r201"},
    ]
    [bed] = covered(in_room, zone="west").beds
    assert (bed.rules["fall"], bed.rules["call_button"]) == ("driven", "driven")
    assert (bed.rules["inactivity"], bed.rules["bed_exit"]) == ("cannot", "cannot")


def test_scope_by_gateway_bed_and_what_the_caller_sees() -> None:
    devices = [*STANDARD_BED, *FALL_RADAR_ONLY]
    assert [b.bed for b in covered(devices, gateway="gw-west").beds] == ["SR-W-201"]
    assert {w.room for w in covered(devices, gateway="gw-east").warnings} == {"r101b"}
    one = covered(devices, bed="SR-W-201")
    assert [b.bed for b in one.beds] == ["SR-W-201"] and rules_warned(one, "r101b") == set()
    east = covered(devices, visible=lambda site, zone: zone == "east")
    assert [b.bed for b in east.beds] == ["SR-E-101"]
    assert {w.zone for w in east.warnings} == {"east"}


# --- the registry API and CLI ---------------------------------------------------------------


async def test_the_registry_api_serves_the_warnings_to_whom_may_see_them(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(sites=[site([*STANDARD_BED, *FALL_RADAR_ONLY])])
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        assert (await client.get("/api/registry/coverage")).status_code == 401
        await login(client, INSTALLER)
        whole = (await client.get("/api/registry/coverage", params={"site": "sunrise"})).json()
        assert {b["bed"] for b in whole["beds"]} == {"SR-E-101", "SR-W-201"}
        assert {(w["rule"], w["bed"] or w["room"]) for w in whole["warnings"]} == {
            ("prolonged_stay", "r101b"),
            *((rule, "SR-W-201") for rule in ("call_button", "smoke", "bed_exit", "not_up")),
            ("vital_signs", "SR-W-201"),
        }
        bed = (await client.get("/api/beds/SR-W-201")).json()
        assert bed["rules"]["bed_exit"] == "cannot"
        assert {w["rule"] for w in bed["warnings"]} == {
            "call_button",
            "smoke",
            "bed_exit",
            "not_up",
            "vital_signs",
        }
        assert "resident" not in bed  # installers never see who is in a bed
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        await login(client, EAST_NURSE)
        east = (await client.get("/api/registry/coverage")).json()
        assert [b["bed"] for b in east["beds"]] == ["SR-E-101"]
        assert [w["room"] for w in east["warnings"]] == ["r101b"]
        hidden = await client.get("/api/registry/coverage", params={"bed": "SR-W-201"})
        assert (hidden.status_code, hidden.json()["detail"]) == (
            404,
            "no bed with code 'SR-W-201'",
        )
        other = await client.get("/api/registry/coverage", params={"site": "elsewhere"})
        assert other.status_code == 404
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        await login(client, FAMILY)
        assert (await client.get("/api/registry/coverage")).status_code == 403
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        await login(client, ADMIN)
        one = await client.get("/api/registry/coverage", params={"bed": "SR-E-101"})
        assert one.json()["warnings"] == []


def test_registry_check_prints_the_warnings(broker: MosquittoBroker, tmp_path: Path) -> None:
    config = hub_config(broker, tmp_path / "hub.db", sites=[site(STANDARD_BED)])
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "carewatch.cli",
            "registry",
            "--config",
            str(path),
            "check",
        ]
        return subprocess.run([*command, *args], capture_output=True, text=True, check=False)

    warned = check("--site", "sunrise")
    assert warned.returncode == 1, warned.stderr
    lines = warned.stdout.splitlines()
    assert lines[0].startswith("Room 101 bathroom (bathroom, East wing): too long in the")
    assert lines[-1].startswith("2 bed(s) checked: ")
    west = check("--site", "sunrise", "--zone", "west", "--json")
    assert json.loads(west.stdout)["beds"][0]["bed"] == "SR-W-201"


# --- the walk test --------------------------------------------------------------------------


async def test_the_walk_test_and_its_report_list_the_warnings_of_its_scope(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(sites=[site([*STANDARD_BED, *FALL_RADAR_ONLY])])
    tests = hub.walktests
    assert tests is not None
    east = await tests.start("sunrise", "gw-east", "ian")
    status = await tests.status(east.id)
    assert [(w["rule"], w["room"]) for w in status["warnings"]] == [("prolonged_stay", "r101b")]
    report = await build_report(tests, east.id)
    html = render_html(report)
    assert "motion sensor alone cannot tell a still person from an empty room" in html
    assert ALL_DRIVEN not in html
    assert b"%PDF" in render_pdf(report, compress=False)[:8]
    assert b"cannot tell a still person" in render_pdf(report, compress=False)
    await tests.stop(east.id, "ian")

    west = await tests.start("sunrise", "gw-west", "ian")
    report = await build_report(tests, west.id)
    assert {w.split(":")[0] for w in report.warnings} == {"Bed SR-W-201 (Room 201, West wing)"}
    assert len(report.warnings) == 5
    await tests.stop(west.id, "ian")


async def test_a_walk_test_with_every_rule_driven_says_so(hub_factory: HubFactory) -> None:
    devices = [*STANDARD_BED, BATHROOM_DOOR]
    spec = copy.deepcopy(site(devices))
    spec["zones"] = spec["zones"][:1]
    hub = await hub_factory(sites=[spec])
    assert hub.walktests is not None
    test = await hub.walktests.start("sunrise", None, "ian")
    report = await build_report(hub.walktests, test.id)
    assert report.warnings == [] and ALL_DRIVEN in render_html(report)


async def test_the_installer_page_shows_the_warnings_of_the_bed_it_was_opened_for(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(sites=[site([*STANDARD_BED, *FALL_RADAR_ONLY])])
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page()
            await page.goto(f"{hub.url}/installer#bed=SR-W-201")
            await page.get_by_test_id("login-user").fill(INSTALLER[0])
            await page.get_by_test_id("login-password").fill(INSTALLER[1])
            await page.get_by_test_id("login-submit").click()
            await expect(page.get_by_test_id("bed-filter")).to_contain_text("SR-W-201")
            await page.get_by_test_id("start").click()
            warnings = page.get_by_test_id("coverage-warning")
            await expect(warnings).to_have_count(5)  # that bed's, not the bathroom's
            await expect(warnings.and_(page.locator('[data-rule="bed_exit"]'))).to_contain_text(
                "Bed SR-W-201 (Room 201, West wing): bed exit without return is on"
            )
            await page.goto(f"{hub.url}/installer")
            await expect(warnings).to_have_count(6)
            await expect(page.get_by_test_id("coverage")).to_contain_text("motion sensor alone")
        finally:
            await chromium.close()
