"""Changing the registry: check on a working copy, store with the audit record, swap it in.

Every change, from the API, the CLI or a CSV import, goes through `RegistryService.apply`: the
registry's data is copied, the change is checked and applied to the copy (`RegistryData`),
the changed records are written with one audit record each in a single transaction, and only
then does the in-memory `Registry` switch to the new data. A refused change leaves both the
database and the running registry untouched.

On a hub's first start (no site in the database) the configuration's `sites:` seeds the
registry; from then on the database is the source of truth and `sites:` is ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol, TypeVar

from hub.core.audit import AuditEntry
from hub.core.clock import Clock
from hub.core.outbound import OutboundPolicy
from hub.core.store import Store
from hub.registry.contact_urls import masked_contacts, private_url_problem
from hub.registry.csv_import import import_csv
from hub.registry.data import Change, RegistryData, data_from_specs, when
from hub.registry.index import Registry, RegistryIndex
from hub.registry.models import (
    Bed,
    Binding,
    Device,
    RecordBase,
    RegistryError,
    Resident,
    SiteSpec,
    parse_record,
    record_fields,
)
from hub.registry.records import RegistryRecords

log = logging.getLogger("carewatch.hub.registry")

R = TypeVar("R", bound=RecordBase)
# How far ahead of the hub's clock an admission, transfer or discharge may be dated.
FUTURE_SLACK_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change and through which channel (`console`, `api`, `cli`, `config`)."""

    name: str
    channel: str


SYSTEM = Actor("system", "config")
# A last check of a change before it is stored: (data before, data after, the changes); it
# raises a RegistryError to refuse the change whole (the API's scope check, hub/registry/routes.py).
ChangeCheck = Callable[[RegistryData, RegistryData, list[Change]], None]
Visible = Callable[[str, str], bool]  # (site, zone): whether the caller sees that place


class CoverageAnswer(Protocol):
    """Which rules each bed's devices can drive (`beds`, each with its `rules`) and the
    `warnings` for rules switched on that they cannot."""

    def as_dict(self) -> dict[str, Any]: ...


class RuleCoverage(Protocol):
    """Which rules the devices of each bed in scope can drive, over the registry's data: the
    watch knows its rules and their settings (`PolicyCoverage`, hub/watch/coverage.py)."""

    def __call__(
        self,
        data: RegistryData,
        *,
        site: str | None = None,
        zone: str | None = None,
        bed: str | None = None,
        gateway: str | None = None,
        visible: Visible | None = None,
    ) -> CoverageAnswer: ...


class RegistryService:
    def __init__(
        self,
        registry: Registry,
        store: RegistryRecords,
        clock: Clock,
        rule_coverage: RuleCoverage,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.registry = registry
        self._rule_coverage = rule_coverage
        self._store = store
        self._clock = clock
        # Which internal hosts contacts' Apprise URLs may name (`outbound.allowed_hosts`).
        self._outbound = outbound or OutboundPolicy()
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[], Awaitable[None]]] = []

    def on_change(self, listener: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Call `listener` after every change is in place (the watch gives new devices,
        gateways and beds their standing timers); answers the call that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @classmethod
    async def open(
        cls,
        store: Store,
        clock: Clock,
        seed: list[SiteSpec] | None = None,
        organisation: str = "carewatch",
        outbound: OutboundPolicy | None = None,
        *,
        rule_coverage: RuleCoverage,
    ) -> RegistryService:
        """Load the registry from the database, seeding it from `seed` if it holds none."""
        registry_store = await RegistryRecords.open(store)
        data = await registry_store.load()
        service = cls(Registry(data, organisation), registry_store, clock, rule_coverage, outbound)
        if data.is_empty() and seed:
            await service._seed(seed)
        elif seed:
            log.info(
                "registry loaded from the database; the configuration's sites: list is ignored "
                "(it only seeds an empty database)"
            )
        elif data.is_empty():
            log.warning("the registry is empty: add sites through the API or the CLI")
        return service

    async def _seed(self, sites: list[SiteSpec]) -> None:
        data = data_from_specs(sites)
        changes = _changes_of(data)
        summary = dict(Counter(type(c.record).KIND for c in changes))
        entry = AuditEntry(
            self._clock.now(), SYSTEM.name, "registry.seeded", SYSTEM.channel, summary
        )
        await self._store.save(changes, [entry])
        self.registry.load(data)
        log.info("registry seeded from the configuration: %s", summary)

    async def apply(
        self,
        change: Callable[[RegistryData], list[Change]],
        actor: Actor,
        check: ChangeCheck | None = None,
    ) -> list[Change]:
        """Check and make one change (any number of records), or refuse it whole."""
        async with self._lock:
            # Checking and indexing take a while for thousands of beds: off the event loop.
            changes, index = await asyncio.to_thread(self._prepare, change, check)
            now = self._clock.now()
            await self._store.save(changes, [_audit(c, actor, now) for c in changes])
            self.registry.install(index)
        for listener in self._listeners:
            await listener()
        return changes

    def _prepare(
        self, change: Callable[[RegistryData], list[Change]], check: ChangeCheck | None
    ) -> tuple[list[Change], RegistryIndex]:
        before = self.registry.data
        data = before.copy()  # the current data is never changed, only replaced
        changes = change(data)
        if check is not None:
            check(before, data, changes)
        self._check_contact_urls(before, changes)
        return changes, RegistryIndex(data)

    def _check_contact_urls(self, before: RegistryData, changes: list[Change]) -> None:
        """A contact's new Apprise URL must not point at an internal address
        (hub/core/outbound.py). URLs a resident already had are left to the check made when they
        are used."""
        for change in changes:
            record = change.record
            if not isinstance(record, Resident):
                continue
            old = before.find(Resident, record.key)
            known = {url for contact in (old.contacts if old else []) for url in contact.notify}
            for i, contact in enumerate(record.contacts):
                for n, url in enumerate(contact.notify, 1):
                    problem = None if url in known else private_url_problem(url, self._outbound)
                    if problem is not None:
                        raise RegistryError(
                            f"{record.ref}: contacts.{i}.notify: URL {n}: {problem}"
                        )

    async def create(
        self, kind: type[R], fields: dict[str, Any], actor: Actor, check: ChangeCheck | None = None
    ) -> R:
        record = parse_record(kind, fields)
        (change,) = await self.apply(lambda data: [data.create(record)], actor, check)  # type: ignore[arg-type]
        return change.record  # type: ignore[return-value]

    async def update(
        self,
        kind: type[R],
        key: tuple[str, ...],
        patch: dict[str, Any],
        actor: Actor,
        check: ChangeCheck | None = None,
    ) -> R:
        (change,) = await self.apply(lambda data: [data.update(kind, key, patch)], actor, check)
        return change.record  # type: ignore[return-value]

    async def admit(
        self,
        resident: str,
        bed: str,
        at: float | None,
        actor: Actor,
        check: ChangeCheck | None = None,
    ) -> Binding:
        when_ = self._when(at)
        changes = await self.apply(lambda data: data.admit(resident, bed, when_), actor, check)
        return _last_binding(changes)

    async def transfer(
        self,
        resident: str,
        bed: str,
        at: float | None,
        actor: Actor,
        check: ChangeCheck | None = None,
    ) -> Binding:
        when_ = self._when(at)
        changes = await self.apply(lambda data: data.transfer(resident, bed, when_), actor, check)
        return _last_binding(changes)

    async def discharge(
        self, resident: str, at: float | None, actor: Actor, check: ChangeCheck | None = None
    ) -> Binding:
        when_ = self._when(at)
        changes = await self.apply(lambda data: data.discharge(resident, when_), actor, check)
        return _last_binding(changes)

    async def import_csv(
        self, what: str, text: str, actor: Actor, check: ChangeCheck | None = None
    ) -> dict[str, dict[str, int]]:
        """Import a CSV document (`residents`, `beds` or `devices`); how many of what changed."""
        now = self._clock.now()
        changes = await self.apply(lambda data: import_csv(data, what, text, now), actor, check)
        counts: dict[str, dict[str, int]] = {}
        for change in changes:
            kind = counts.setdefault(change.action, {})
            kind[change.record.KIND] = kind.get(change.record.KIND, 0) + 1
        return counts

    def _when(self, at: float | None) -> float:
        now = self._clock.now()
        if at is None:
            return now
        if at > now + FUTURE_SLACK_S:
            raise RegistryError(f"{when(at)} is in the future; the hub's time is {when(now)}")
        return at

    # Reading, with each record's bindings.

    def listing(self, kind: type[RecordBase], site: str | None = None) -> list[dict[str, Any]]:
        """Every record of a kind in key order, only those of `site` if it is given."""
        records = sorted(self.registry.data.all(kind), key=lambda r: r.key)
        if site is not None and "site" in kind.model_fields:
            records = [r for r in records if getattr(r, "site", None) == site]
        return [self.describe(r) for r in records]

    def describe(self, record: RecordBase, history: bool = False) -> dict[str, Any]:
        """A record as the API shows it: beds with their resident, residents with their bed."""
        data = self.registry.data
        fields = record_fields(record)
        if isinstance(record, Bed):
            fields["resident"] = self._binding(data.occupant(record.code))
            if history:
                fields["history"] = [
                    self._binding(b) for b in data.bed_history.get(record.code, [])
                ]
                fields["devices"] = [d.id for d in data.devices_of_bed(record.code)]
                found = self.coverage(bed=record.code).as_dict()
                fields["rules"] = found["beds"][0]["rules"] if found["beds"] else {}
                fields["warnings"] = found["warnings"]
        elif isinstance(record, Resident):
            fields["binding"] = self._binding(data.current_binding(record.code))
            if history:
                past = data.resident_history.get(record.code, [])
                fields["history"] = [self._binding(b) for b in past]
        elif isinstance(record, Device) and history:
            placement = self.registry.placement(record.id)
            fields["placement"] = None if placement is None else asdict(placement)
        return fields

    def coverage(
        self,
        *,
        site: str | None = None,
        zone: str | None = None,
        bed: str | None = None,
        gateway: str | None = None,
        visible: Visible | None = None,
    ) -> CoverageAnswer:
        """Which rules the devices of each bed in scope can drive, and a warning for each rule
        switched on that they cannot (hub/watch/coverage.py)."""
        return self._rule_coverage(
            self.registry.data,
            site=site,
            zone=zone,
            bed=bed,
            gateway=gateway,
            visible=visible,
        )

    def _binding(self, binding: Binding | None) -> dict[str, Any] | None:
        if binding is None:
            return None
        person = self.registry.data.find(Resident, (binding.resident,))
        return {**record_fields(binding), "resident_name": person.name if person else None}


def _changes_of(data: RegistryData) -> list[Change]:
    """Everything in `data` as changes to store: how a seeded registry is written."""
    changes = [Change("created", r) for table in data.tables.values() for r in table.values()]
    bindings = (b for history in data.bed_history.values() for b in history)
    return changes + [Change("started", b) for b in bindings]


def _audit(change: Change, actor: Actor, now: float) -> AuditEntry:
    record = change.record
    # The audit log outlives a contact's change of password: keep Apprise URLs out of it.
    fields = masked_contacts(record_fields(record))
    detail = {"record": record.KIND, "key": "/".join(record.key), "fields": fields}
    return AuditEntry(
        now, actor.name, f"registry.{record.KIND}.{change.action}", actor.channel, detail
    )


def _last_binding(changes: list[Change]) -> Binding:
    record = changes[-1].record
    assert isinstance(record, Binding)
    return record
