"""Walk tests: commissioning mode for a site or one gateway, with every device ticked off.

While a walk test runs, every alert raised by a device of its site (or gateway) is a test alert:
not escalated, left out of the figures, and hidden from the staff console's list and stream
(`WalkTests.hides`); the installer's page follows the walk test itself. Each device passes the
first time it is triggered during the test (TRIGGER_EVENTS, TRIGGER_READINGS), with the last
signal strength and battery level known for it. Results are kept in `walktest_results`.

When the walk test stops, its test alerts still open are resolved, so that a real alert after
commissioning never becomes a repeat of a hidden test alert.

The status also lists the `warnings` of its scope: rules switched on (by the watch settings)
that the devices fitted cannot drive (hub/watch/coverage.py, docs/rules-and-devices.md), and says
each device and the scope in words for the installer's page (`device_name`, `profile_name`,
`scope_name`): "Call button in room 101", "Sunrise Care Home, gateway East wing", as
hub/registry/labels.py names them everywhere.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, TypeVar

from device_profiles import ProfileError, load_profile
from hub.alerts.lifecycle import ACTIVE_STATES, AlertBus, AlertService
from hub.commissioning.records import ResultRow, WalkTestRecords
from hub.core.clock import Clock
from hub.core.errors import DomainError
from hub.core.store import Store, StoredItem
from hub.registry.data import RegistryData
from hub.registry.index import Placement, Registry
from hub.registry.labels import device_name, gateway_where
from hub.telemetry.records import TelemetryRecords
from hub.watch.coverage import CoverageWarning, coverage
from hub.watch.settings import WatchPolicy

log = logging.getLogger("carewatch.hub.walktest")
T = TypeVar("T")

# What counts as a device being triggered: an event (button press, fall, test button) ...
TRIGGER_EVENTS: Final = frozenset({"call_button", "fall", "device_test"})
# ... or one of these readings turning true (radar presence or motion, someone lying on the
# bed, a door opened, smoke).
TRIGGER_READINGS: Final = frozenset({"presence", "motion", "occupancy", "contact_open", "smoke"})
ALL_STATES: Final = ("open", "acknowledged", "resolved")
ALERTS_SHOWN: Final = 500
END_OUTCOME: Final = "other"
END_NOTE: Final = "walk test ended"


class WalkTestError(DomainError):
    """A request that cannot be met; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class WalkTest:
    id: int
    site: str
    gateway: str | None
    started_by: str
    started_at: float
    ended_by: str | None = None
    ended_at: float | None = None

    @property
    def running(self) -> bool:
        return self.ended_at is None

    def covers(self, site: str, gateway: str | None) -> bool:
        return site == self.site and (self.gateway is None or gateway == self.gateway)

    def during(self, at: float) -> bool:
        return self.started_at <= at and (self.ended_at is None or at <= self.ended_at)

    @property
    def scope(self) -> str:
        return self.site if self.gateway is None else f"{self.site}/{self.gateway}"


@dataclass(frozen=True, slots=True)
class DeviceResult:
    device: str
    passed_at: float
    trigger: str
    rssi: int | None
    battery: float | None


def is_trigger(item: StoredItem) -> bool:
    if item.kind == "event":
        return item.name in TRIGGER_EVENTS and item.value is not False
    return item.name in TRIGGER_READINGS and item.value is True


def describe_trigger(item: StoredItem) -> str:
    return item.name if item.kind == "event" else f"{item.name} {str(item.value).lower()}"


class WalkTests:
    """The walk tests of a hub: started, stopped, observed, and each one's checklist."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        alerts: AlertService,
        clock: Clock,
        policy: WatchPolicy,
    ) -> None:
        self._records = WalkTestRecords(store)
        # the devices' health, for each device's last signal and battery
        self._telemetry = TelemetryRecords(store)
        self._registry = registry
        self._alerts = alerts
        self._clock = clock
        self._policy = policy  # which rules are on, for the coverage warnings
        self._tests: dict[int, WalkTest] = {}
        self._results: dict[int, dict[str, DeviceResult]] = {}
        # last signal and battery seen in items, by device
        self._signal: dict[str, tuple[int | None, float | None]] = {}
        self.progress = AlertBus()  # walk-test changes, for the installer's live page

    @classmethod
    async def open(
        cls,
        store: Store,
        registry: Registry,
        alerts: AlertService,
        clock: Clock,
        policy: WatchPolicy,
    ) -> WalkTests:
        tests = cls(store, registry, alerts, clock, policy)
        await tests._records.create()
        await tests._load()
        return tests

    async def _load(self) -> None:
        for row in await self._records.tests():
            test = WalkTest(**row)
            self._tests[test.id] = test
        for test in self.running():
            self._results[test.id] = await self._stored_results(test.id)

    # --- queries ----------------------------------------------------------------------------

    def running(self) -> list[WalkTest]:
        return [test for test in self._tests.values() if test.running]

    def all(self) -> list[WalkTest]:
        return sorted(self._tests.values(), key=lambda test: -test.id)

    def get(self, test_id: int) -> WalkTest:
        test = self._tests.get(test_id)
        if test is None:
            raise WalkTestError(404, f"There is no walk test {test_id}.")
        return test

    def under_test(self, site: str, gateway: str | None) -> bool:
        """Whether alerts from this site and gateway are walk-test alerts now."""
        return any(test.covers(site, gateway) for test in self.running())

    def hides(self, alert: dict[str, Any]) -> bool:
        """A test alert opened during a walk test of its site or gateway: for the installer,
        not for the staff console."""
        return bool(alert.get("test")) and any(
            test.covers(alert["site"], alert.get("gateway")) and test.during(alert["opened_at"])
            for test in self._tests.values()
        )

    @property
    def organisation(self) -> str:
        return self._registry.organisation

    def site_name(self, site: str) -> str:
        known = self._registry.sites.get(site)
        return known.name if known is not None else site

    def scope_name(self, site: str, gateway: str | None) -> str:
        """The walk test's scope in words: the site's name, and where its gateway is."""
        if gateway is None:
            return self.site_name(site)
        return (
            f"{self.site_name(site)}, gateway {gateway_where(self._registry.data, site, gateway)}"
        )

    async def device_health(self) -> dict[str, dict[str, Any]]:
        """The gateways' last report on each device (signal, battery, last seen)."""
        return await self._telemetry.device_health()

    def devices(self, test: WalkTest) -> list[Placement]:
        places = [p for p in self._registry.devices() if test.covers(p.site, p.gateway)]
        return sorted(places, key=lambda p: (p.gateway, p.bed or "", p.room, p.device))

    def warnings(self, test: WalkTest) -> list[CoverageWarning]:
        """Rules switched on in the walk test's scope that the devices fitted cannot drive."""
        found = coverage(self._registry.data, self._policy, site=test.site, gateway=test.gateway)
        return found.warnings

    async def results(self, test_id: int) -> dict[str, DeviceResult]:
        if test_id in self._results:
            return dict(self._results[test_id])
        return await self._stored_results(test_id)

    async def _stored_results(self, test_id: int) -> dict[str, DeviceResult]:
        rows = await self._records.results(test_id)
        return {row["device"]: DeviceResult(**row) for row in rows}

    async def status(self, test_id: int) -> dict[str, Any]:
        """The walk test and its checklist: every device, passed or not yet."""
        test = self.get(test_id)
        results = await self._with_signal(await self.results(test_id))
        warnings = await asyncio.to_thread(self.warnings, test)  # a big site takes a while
        data = self._registry.data
        places = self.devices(test)
        devices = [_checklist_row(data, place, results.get(place.device)) for place in places]
        passed = sum(1 for row in devices if row["passed_at"] is not None)
        return {
            **self._heading(test, passed, len(devices)),
            "devices": devices,
            "warnings": [asdict(warning) for warning in warnings],
        }

    async def summary(self, test_id: int) -> dict[str, Any]:
        """The walk test without its checklist and warnings, for a list of walk tests: how many
        of its devices passed."""
        test = self.get(test_id)
        results = await self.results(test_id)
        devices = {place.device for place in self.devices(test)}
        return self._heading(test, len(devices & results.keys()), len(devices))

    def _heading(self, test: WalkTest, passed: int, total: int) -> dict[str, Any]:
        return {
            **asdict(test),
            "scope": test.scope,
            "scope_name": self.scope_name(test.site, test.gateway),
            "running": test.running,
            "passed": passed,
            "total": total,
        }

    async def alerts(self, test_id: int) -> list[dict[str, Any]]:
        """The test alerts raised during the walk test from its devices."""
        test = self.get(test_id)
        listed = await self._alerts.records.page(ALL_STATES, ALERTS_SHOWN)
        return [
            alert
            for alert in listed
            if alert["test"]
            and test.covers(alert["site"], alert["gateway"])
            and test.during(alert["opened_at"])
        ]

    # --- changes ----------------------------------------------------------------------------

    async def start(self, site: str, gateway: str | None, user: str) -> WalkTest:
        self._check_scope(site, gateway)
        now = self._clock.now()
        test = WalkTest(
            await self._records.start(site, gateway, user, now), site, gateway, user, now
        )
        self._tests[test.id] = test
        self._results[test.id] = {}
        log.info("walk test %d started on %s by %s", test.id, test.scope, user)
        await self._announce(test.id)
        return test

    def _check_scope(self, site: str, gateway: str | None) -> None:
        if site not in self._registry.sites:
            raise WalkTestError(404, f"There is no site {site}.")
        if gateway is not None and not self._registry.has_gateway(site, gateway):
            raise WalkTestError(404, f"{self.site_name(site)} has no gateway {gateway}.")
        for test in self.running():
            if test.site == site and (test.gateway is None or gateway in (None, test.gateway)):
                where = self.scope_name(test.site, test.gateway)
                raise WalkTestError(
                    409, f"Walk test {test.id} of {where} is running: stop it first."
                )

    async def stop(self, test_id: int, user: str) -> WalkTest:
        test = self.get(test_id)
        if not test.running:
            raise WalkTestError(409, f"Walk test {test_id} has already ended.")
        now = self._clock.now()
        ended = replace(test, ended_by=user, ended_at=now)
        await self._fill_signal(test_id)
        await self._records.stop(test_id, user, now)
        self._tests[test_id] = ended
        self._results.pop(test_id, None)
        await self._resolve_test_alerts(ended, user)
        log.info("walk test %d on %s ended by %s", test_id, test.scope, user)
        await self._announce(test_id)
        return ended

    async def _with_signal(self, results: dict[str, DeviceResult]) -> dict[str, DeviceResult]:
        """Results whose signal or battery was not known when the device passed, completed
        with the last values from its items or from its gateway's device report."""
        health = await self._telemetry.device_health()
        return {device: self._completed(result, health) for device, result in results.items()}

    def _completed(self, result: DeviceResult, health: dict[str, dict[str, Any]]) -> DeviceResult:
        rssi, battery = self._signal.get(result.device, (None, None))
        reported = health.get(result.device, {})
        return replace(
            result,
            rssi=_first(result.rssi, rssi, reported.get("rssi")),
            battery=_first(result.battery, battery, reported.get("battery")),
        )

    async def _fill_signal(self, test_id: int) -> None:
        """Keep the completed signal and battery of each passed device."""
        filled = await self._with_signal(self._results[test_id])
        await self._save_signal(test_id, list(filled.values()))
        self._results[test_id] = filled

    async def _save_signal(self, test_id: int, results: list[DeviceResult]) -> None:
        await self._records.save_signal(test_id, [(r.device, r.rssi, r.battery) for r in results])

    async def _resolve_test_alerts(self, test: WalkTest, user: str) -> None:
        for alert in await self._alerts.records.page(ACTIVE_STATES, None):
            if self.hides(alert):
                await self._alerts.resolve(alert["id"], user, "api", END_OUTCOME, END_NOTE)

    # --- observing the devices --------------------------------------------------------------

    async def observe(self, item: StoredItem, place: Placement) -> None:
        """Hear one accepted item (the watch calls this for every item)."""
        if self._remember_signal(item):
            await self._refresh_signal(item.device)
        if item.historical or not is_trigger(item):
            return
        for test in self.running():
            if test.covers(place.site, place.gateway) and test.during(item.sensed_at):
                await self._tick(test, item)

    def _remember_signal(self, item: StoredItem) -> bool:
        """Keep the device's last signal or battery reading; whether this item was one."""
        if item.name not in ("rssi", "battery") or not isinstance(item.value, int | float):
            return False
        rssi, battery = self._signal.get(item.device, (None, None))
        if item.name == "rssi":
            rssi = int(item.value)
        else:
            battery = float(item.value)
        self._signal[item.device] = (rssi, battery)
        return True

    async def _refresh_signal(self, device: str) -> None:
        """A device that passed before its signal or battery was known (the trigger came
        first in its advert) gets them now."""
        for test in self.running():
            result = self._results[test.id].get(device)
            if result is None or None not in (result.rssi, result.battery):
                continue
            completed = self._completed(result, {})
            if completed == result:
                continue
            self._results[test.id][device] = completed
            await self._save_signal(test.id, [completed])
            await self._announce(test.id)

    async def _tick(self, test: WalkTest, item: StoredItem) -> None:
        results = self._results[test.id]
        if item.device in results:
            return
        health = await self._telemetry.device_health()
        passed = DeviceResult(item.device, item.sensed_at, describe_trigger(item), None, None)
        result = self._completed(passed, health)
        results[item.device] = result
        await self._records.passed(test.id, _result_row(result))
        log.info("walk test %d: %s passed (%s)", test.id, item.device, result.trigger)
        await self._announce(test.id)

    async def _announce(self, test_id: int) -> None:
        self.progress.publish(await self.status(test_id))


def _result_row(result: DeviceResult) -> ResultRow:
    return (result.device, result.passed_at, result.rssi, result.battery, result.trigger)


def _first(*values: T | None) -> T | None:
    return next((value for value in values if value is not None), None)


def model_name(profile: str) -> str:
    """A device's model in words ("Shelly BLU Button1 call button"); an unknown one by its code."""
    try:
        return load_profile(profile).name
    except ProfileError:
        return profile


def _checklist_row(
    data: RegistryData, place: Placement, result: DeviceResult | None
) -> dict[str, Any]:
    name = device_name(data, place.device) or place.device
    return {
        "device": place.device,
        "device_name": name[:1].upper() + name[1:],
        "profile_name": model_name(place.profile),
        "gateway": place.gateway,
        "profile": place.profile,
        "bed": place.bed,
        "room": place.room,
        "room_name": place.room_name,
        "zone_name": place.zone_name,
        "resident_name": place.resident_name,
        "passed_at": result.passed_at if result else None,
        "trigger": result.trigger if result else None,
        "rssi": result.rssi if result else None,
        "battery": result.battery if result else None,
    }
