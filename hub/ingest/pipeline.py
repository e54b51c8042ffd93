"""Ingest: validate what arrives over MQTT, check who sent it, drop repeats, run rules, store.

Every rejection is counted by reason and logged with the site and gateway it concerns. A bad item
never takes the good items of its batch down with it, and a message that cannot be handled, for
whatever reason, never takes the other messages of its burst down with it: it is rejected and
counted alone (`internal_error` when the fault is the hub's), and the rest is still watched and
stored.

Alarms first (docs/watch.md, "Alarms first"): a data batch that carries an alarm (a fall, a call,
smoke) is handled before the telemetry that arrived with or before it, together with its own
gateway's earlier messages (its lane), so that every gateway's messages are still handled in
their order and none is taken for a repeat. The alarm is watched, and reaches the console,
before any of that telemetry is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson
from pydantic import ValidationError

from contract.wire import (
    MAX_JSON_DEPTH,
    MAX_PAYLOAD_BYTES,
    TopicAddress,
    WireDevicesReport,
    WireEnvelope,
    WireItem,
    WireStatus,
    data_topic,
    parse_topic,
)
from hub.core.clock import Clock
from hub.core.store import Store, StoredItem
from hub.registry.index import Placement, Registry
from hub.telemetry.records import DeviceHealth, TelemetryRecords
from hub.watch.rules import INSTANT_EVENTS, Watch

log = logging.getLogger("carewatch.hub.ingest")

_CONTAINERS = (dict, list)  # what JSON arrays and objects parse into
MAX_BURST: Final = 20  # messages handled per transaction at most; bounds the wait of the first
# Events that raise an emergency alert (a fall, a call button); with smoke true, the alarms.
ALARM_EVENTS: Final = frozenset(
    name for name, (_, priority) in INSTANT_EVENTS.items() if priority == "emergency"
)
ALARM_READING: Final = "smoke"

Gateway = tuple[str, str]  # (site, gateway)


@dataclass(frozen=True, slots=True)
class _Arrival:
    """A message as it arrived, with what the alarm lanes need to know of it."""

    topic: str
    payload: bytes
    gateway: Gateway | None  # None: not a gateway's topic (rejected in its turn)
    alarm: bool

    @property
    def message(self) -> tuple[str, bytes]:
        return self.topic, self.payload


def _arrival(topic: str, payload: bytes) -> _Arrival:
    address = parse_topic(topic)
    if address is None:
        return _Arrival(topic, payload, None, alarm=False)
    alarm = address.channel == "data" and carries_alarm(payload)
    return _Arrival(topic, payload, (address.site, address.gateway), alarm)


def carries_alarm(payload: bytes) -> bool:
    """True if a data batch holds an alarm: an event of ALARM_EVENTS (but a clearing `false`)
    or a smoke reading `true`.

    A cheap first look, not a judgement: a byte search, and a parse only when it finds either
    word. A payload it cannot read, or one that spells the words with escapes, is not an alarm
    here; ingest judges it in its turn, in arrival order.
    """
    if b'"event"' not in payload and b'"smoke"' not in payload:
        return False
    if len(payload) > MAX_PAYLOAD_BYTES:
        return False
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return False
    return any(isinstance(item, dict) and _is_alarm(item) for item in items)


def _is_alarm(item: dict[str, Any]) -> bool:
    event = item.get("event")
    if isinstance(event, str) and event in ALARM_EVENTS:
        return item.get("value") is not False
    return item.get("reading") == ALARM_READING and item.get("value") is True


def _lanes(
    queue: Iterable[_Arrival], last: dict[Gateway, int]
) -> tuple[list[_Arrival], list[_Arrival]]:
    """`queue` split into the lanes (each gateway of `last`'s messages up to and including its
    position `last[gateway]`, in order) and the rest, in order."""
    lanes: list[_Arrival] = []
    rest: list[_Arrival] = []
    for index, arrival in enumerate(queue):
        gateway = arrival.gateway
        in_lane = gateway is not None and index <= last.get(gateway, -1)
        (lanes if in_lane else rest).append(arrival)
    return lanes, rest


def _last_alarms(queue: Iterable[_Arrival]) -> dict[Gateway, int]:
    """Each gateway's position of its last alarm in `queue`."""
    return {
        arrival.gateway: index
        for index, arrival in enumerate(queue)
        if arrival.alarm and arrival.gateway is not None
    }


class Arrivals:
    """Messages read from the broker and not handled yet, in arrival order.

    The MQTT link's reader puts every message here as soon as it has it, whatever ingest is
    doing meanwhile; its handler takes bursts: the alarm lanes first, then the oldest messages.
    While `Ingest.handle_many` works through a burst inside `handled_here()`, it takes an alarm
    that arrives here in front of the rest of that burst.
    """

    def __init__(self, burst: int = MAX_BURST) -> None:
        self._burst = burst
        self._queue: deque[_Arrival] = deque()
        self._alarms = 0
        self._ready = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def alarm_waiting(self) -> bool:
        return self._alarms > 0

    def put(self, topic: str, payload: bytes, *, more: bool = False) -> None:
        """Add a message; `more`: the reader already has more behind it. The handler is woken
        for an alarm at once, otherwise once the reader has caught up or a burst is full."""
        arrival = _arrival(topic, payload)
        self._queue.append(arrival)
        self._alarms += arrival.alarm
        if arrival.alarm or not more or len(self._queue) >= self._burst:
            self._ready.set()

    def close(self) -> None:
        """Nothing more comes: `next_burst` hands out what is left, then an empty burst."""
        self._closed = True
        self._ready.set()

    async def next_burst(self) -> list[tuple[str, bytes]]:
        """Up to a burst of messages, the alarm lanes first (a lane is never cut short), then
        the oldest; waits for them. Empty only once closed and emptied: the handler stops there.

        Woken with nothing left to take (ingest took an alarm's lane in front of its burst
        meanwhile, `take_lanes`), it waits again; handing back an empty burst then stopped the
        hub's ingest for good, silently (seen twice under the 10,000-bed benchmark)."""
        while True:
            await self._ready.wait()
            burst = self.take_lanes()
            while self._queue and len(burst) < self._burst:
                burst.append(self._queue.popleft())
            if not self._queue and not self._closed:
                self._ready.clear()
            if burst or self._closed:
                return [arrival.message for arrival in burst]

    def take_lanes(self) -> list[_Arrival]:
        """Take the alarm lanes out: every message of each gateway with an alarm waiting, up to
        and including its last alarm, in arrival order."""
        if not self._alarms:
            return []
        lanes, rest = _lanes(self._queue, _last_alarms(self._queue))
        self._queue, self._alarms = deque(rest), 0
        return lanes

    @contextlib.contextmanager
    def handled_here(self) -> Iterator[None]:
        """Inside, `Ingest.handle_many` takes alarms arriving here in front of its burst."""
        token = _ARRIVALS.set(self)
        try:
            yield
        finally:
            _ARRIVALS.reset(token)


_ARRIVALS: ContextVar[Arrivals | None] = ContextVar("carewatch_arrivals", default=None)


@dataclass(frozen=True, slots=True)
class _Accepted:
    seq: int
    item: StoredItem
    placement: Placement


@dataclass(frozen=True, slots=True)
class _Prepared:
    site: str
    gateway: str
    mark: tuple[str, int]
    fresh: list[_Accepted]

    @property
    def topic(self) -> str:
        return data_topic(self.site, self.gateway)


class Ingest:
    def __init__(self, registry: Registry, store: Store, watch: Watch, clock: Clock) -> None:
        self._registry = registry
        self._store = store
        # the telemetry tables, which only ingest writes
        self.records = TelemetryRecords(store)
        self._watch = watch
        self._clock = clock
        self._marks: dict[tuple[str, str], tuple[str, int] | None] = {}
        self.rejected: Counter[str] = Counter()
        self.accepted = 0
        self.duplicates = 0
        self.gaps = 0

    def counters(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            **{f"rejected_{reason}": n for reason, n in sorted(self.rejected.items())},
        }

    async def handle(self, topic: str, payload: bytes) -> None:
        await self.handle_many([(topic, payload)])

    async def handle_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Messages in arrival order; consecutive data batches are stored in one transaction.

        Under load that is what keeps the hub ahead of its gateways: one commit per burst,
        not one per batch. Status and device reports keep their place in their gateway's order.

        Alarms first: the lanes of the gateways whose batches carry an alarm are handled, and
        committed, before the rest of the burst. Inside `Arrivals.handled_here()`, an alarm
        that arrives while the burst is handled is taken in front of the rest of it, with its
        gateway's messages still waiting in this burst.

        Each message is handled in isolation: whatever goes wrong with one, even a fault of the
        hub's own, rejects and counts that message alone. Nothing but cancellation leaves here.
        """
        waiting = _ARRIVALS.get()
        arrived = [_arrival(topic, payload) for topic, payload in messages]
        lanes, rest = _lanes(arrived, _last_alarms(arrived))
        pending = await self._handle_in_order(lanes, [])
        if lanes and rest:
            await self._commit(pending)  # the alarms do not wait for the rest to be read
            pending = []
        queue = deque(rest)
        while queue:
            pending = await self._handle_in_order([queue.popleft()], pending)
            if waiting is None or not queue:
                continue
            await asyncio.sleep(0)  # the reader may bring an alarm in meanwhile
            if not waiting.alarm_waiting:
                continue
            late = waiting.take_lanes()
            # Their gateways' messages still in this burst came first: they go first.
            ahead, behind = _lanes(queue, {a.gateway: len(queue) for a in late if a.gateway})
            pending = await self._handle_in_order([*ahead, *late], pending)
            await self._commit(pending)
            pending, queue = [], deque(behind)
        await self._commit(pending)

    async def _handle_in_order(
        self, arrivals: Iterable[_Arrival], pending: list[_Prepared]
    ) -> list[_Prepared]:
        """Handle `arrivals` in their order after `pending`; the batches prepared and not yet
        committed are handed back. A status or device report commits what came before it."""
        for arrival in arrivals:
            topic = arrival.topic
            try:
                other = await self._take(topic, arrival.payload, pending)
            except Exception:
                self._fault(topic, "while reading the message")
                continue
            if other is None:
                continue
            await self._commit(pending)  # what came before is stored first
            pending = []
            address, body = other
            try:
                if address.channel == "status":
                    await self._handle_status(address, body, topic)
                else:
                    await self._handle_devices(address, body, topic)
            except Exception:
                self._fault(topic, f"while handling the {address.channel} message")
        return pending

    async def _take(
        self, topic: str, payload: bytes, pending: list[_Prepared]
    ) -> tuple[TopicAddress, object] | None:
        """Read one message. A data batch is prepared and added to `pending`; a status or
        device report is handed back, to be handled once what came before it is stored."""
        parsed = self._parse(topic, payload)
        if parsed is None:
            return None
        address, body = parsed
        if address.channel != "data":
            return parsed
        prepared = await self._prepare_batch(address, body, topic)
        if prepared is not None:
            pending.append(prepared)
        return None

    def _parse(self, topic: str, payload: bytes) -> tuple[TopicAddress, object] | None:
        """The message's address and JSON body, with bounds on both; None if rejected."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            self._reject("oversized", topic, f"{len(payload)} bytes")
            return None
        address = parse_topic(topic)
        if address is None or address.channel == "cmd":
            self._reject("bad_topic", topic, "not a gateway data or status topic")
            return None
        if not self._registry.has_gateway(address.site, address.gateway):
            self._reject("unknown_gateway", topic, "gateway is not registered to this site")
            return None
        try:
            # orjson refuses NaN and Infinity, integers over 64 bits, numbers that overflow a
            # double, invalid UTF-8 and nesting over 1,024 levels.
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            self._reject("malformed", topic, f"not JSON: {exc}")
            return None
        if _nested_deeper_than(body, MAX_JSON_DEPTH):
            self._reject("malformed", topic, f"nested deeper than {MAX_JSON_DEPTH} levels")
            return None
        return address, body

    async def _handle_status(self, address: TopicAddress, body: object, topic: str) -> None:
        try:
            status = WireStatus.model_validate(body)
        except ValidationError as exc:
            self._reject("malformed", topic, _first_error(exc))
            return
        known = await self.records.gateway_status(address.site, address.gateway)
        if status.state == "offline" and known is not None and status.bdseq < known[1]:
            log.info("stale death message ignored", extra=_where(address))
            return
        now = self._clock.now()
        await self.records.set_gateway_status(
            address.site, address.gateway, status.state, status.bdseq, now
        )
        await self._watch.on_gateway_status(
            address.site, address.gateway, status.state == "online", now
        )
        log.info("gateway %s", status.state, extra=_where(address))

    async def _handle_devices(self, address: TopicAddress, body: object, topic: str) -> None:
        try:
            report = WireDevicesReport.model_validate(body)
        except ValidationError as exc:
            self._reject("malformed", topic, _first_error(exc))
            return
        now = self._clock.now()
        await self._watch.on_gateway_heard(address.site, address.gateway, now)
        owned = [
            (device, place)
            for device in report.devices
            if (place := self._owned(address, device.dev, topic, now)) is not None
        ]
        await self.records.save_device_health(
            DeviceHealth(d.dev, d.online, d.last_seen, d.battery, d.rssi, report.at)
            for d, _ in owned
        )
        for device, place in owned:
            await self._watch.on_device_health(place, device.online, now)

    def _owned(self, address: TopicAddress, device: str, topic: str, at: float) -> Placement | None:
        """The device's placement at `at` if it belongs to the gateway whose topic carried it."""
        placement = self._registry.placement(device, at)
        if placement is None:
            self._reject("unknown_device", topic, f"device {device!r} is not registered")
            return None
        if (placement.site, placement.gateway) != (address.site, address.gateway):
            self._reject(
                "foreign_device",
                topic,
                f"device {device!r} belongs to gateway {placement.site}/{placement.gateway}",
            )
            return None
        return placement

    async def _prepare_batch(
        self, address: TopicAddress, body: object, topic: str
    ) -> _Prepared | None:
        try:
            batch = WireEnvelope.model_validate(body)
        except ValidationError as exc:
            self._reject("malformed", topic, _first_error(exc))
            return None
        received_at = self._clock.now()
        await self._watch.on_gateway_heard(address.site, address.gateway, received_at)
        accepted = [
            ok
            for index, raw in enumerate(batch.items)
            if (ok := self._accept_item(address, batch.seq + index, raw, received_at, topic))
        ]
        fresh = await self._drop_repeats(address, batch.epoch, accepted)
        if not fresh:
            return None
        # The batch's last number, even if that item was refused: it was used, not lost.
        mark = (batch.epoch, batch.seq + len(batch.items) - 1)
        self._marks[(address.site, address.gateway)] = mark  # the next batch is judged by it
        return _Prepared(address.site, address.gateway, mark, fresh)

    async def _commit(self, pending: list[_Prepared]) -> None:
        """Let the watch see the prepared batches, then store them in one transaction together
        with the timers the watch started or stopped meanwhile.

        Rules run first so that a timer is stored with the reading that started it, and a fall
        is raised before, not after, its burst is written; alarms (events and smoke readings)
        are watched before the other readings, each device's alarms in their order. A batch
        whose rules fail is rejected (`internal_error`) and only its sequence mark is stored;
        the other batches are watched and stored all the same.
        """
        if not pending:
            return
        entries = [(index, entry) for index, batch in enumerate(pending) for entry in batch.fresh]
        # Events and smoke first: a fall must not wait behind a thousand readings of the burst.
        entries.sort(key=lambda indexed: not _watched_first(indexed[1].item))
        failed: set[int] = set()
        try:
            with self._store.joining_batch():
                for index, entry in entries:
                    if index in failed:
                        continue
                    try:
                        await self._watch.on_item(entry.item, entry.placement)
                    except Exception:
                        failed.add(index)
                        self._fault(pending[index].topic, f"the watch failed on item {entry.seq}")
        finally:
            # Also if cancelled meanwhile: what was accepted is stored.
            kept = [replace(p, fresh=[]) if i in failed else p for i, p in enumerate(pending)]
            self.accepted += await self._save(kept)  # counted once stored and watched

    async def _save(self, pending: list[_Prepared]) -> int:
        """Store the batches in one transaction; if that fails, one by one, so that only the
        batch at fault is lost. The number of items stored."""
        try:
            await self._save_together(pending)
            return sum(len(p.fresh) for p in pending)
        except Exception:
            if len(pending) == 1:
                self._fault(pending[0].topic, "storing the batch failed")
                return 0
            log.exception(
                "storing %d batches together failed; storing them one by one", len(pending)
            )
        stored = 0
        for prepared in pending:
            try:
                await self._save_together([prepared])
            except Exception:
                self._fault(prepared.topic, "storing the batch failed")
            else:
                stored += len(prepared.fresh)
        return stored

    async def _save_together(self, pending: list[_Prepared]) -> None:
        try:
            await self.records.save_batches(
                [(p.site, p.gateway, *p.mark, [a.item for a in p.fresh]) for p in pending]
            )
        except BaseException:
            for prepared in pending:  # not stored: forget the marks, so a redelivery is taken
                self._marks.pop((prepared.site, prepared.gateway), None)
            raise

    def _accept_item(
        self, address: TopicAddress, seq: int, raw: object, received_at: float, topic: str
    ) -> _Accepted | None:
        try:
            item = WireItem.model_validate(raw)
        except ValidationError as exc:
            self._reject("malformed_item", topic, f"item {seq}: {_first_error(exc)}")
            return None
        placement = self._owned(address, item.dev, topic, item.at)
        if placement is None:
            return None
        stored = StoredItem(
            device=item.dev,
            kind=item.kind,
            name=item.name,
            value=item.value,
            sensed_at=item.at,
            received_at=received_at,
            historical=item.hist,
        )
        return _Accepted(seq, stored, placement)

    async def _mark(self, address: TopicAddress) -> tuple[str, int] | None:
        """The gateway's de-duplication mark; the hub is its only writer, so it is kept here
        after the first read instead of being queried for every batch."""
        key = (address.site, address.gateway)
        if key not in self._marks:
            self._marks[key] = await self.records.sequence_mark(*key)
        return self._marks[key]

    async def _drop_repeats(
        self, address: TopicAddress, epoch: str, accepted: list[_Accepted]
    ) -> list[_Accepted]:
        """Keep items newer than the gateway's high-water mark; QoS 1 may deliver twice."""
        mark = await self._mark(address)
        last_seq = 0
        if mark is not None and mark[0] == epoch:
            last_seq = mark[1]
        elif mark is not None:
            log.warning("gateway outbox epoch changed; sequence restarts", extra=_where(address))
        fresh = [a for a in accepted if a.seq > last_seq]
        self.duplicates += len(accepted) - len(fresh)
        if fresh and fresh[0].seq > last_seq + 1 and last_seq > 0:
            self.gaps += 1
            log.warning(
                "sequence gap: expected %d, got %d",
                last_seq + 1,
                fresh[0].seq,
                extra=_where(address),
            )
        return fresh

    def _fault(self, topic: str, detail: str) -> None:
        """Reject a message for a fault of the hub's own, logged with the exception."""
        self._reject("internal_error", topic, detail, fault=True)

    def _reject(self, reason: str, topic: str, detail: str, *, fault: bool = False) -> None:
        """Count and log a rejection; `fault` (the hub's own) logs the exception being handled."""
        self.rejected[reason] += 1
        address = parse_topic(topic)
        where = _where(address) if address is not None else {}
        level = logging.ERROR if fault else logging.WARNING
        log.log(
            level,
            "rejected %s on %s: %s",
            reason,
            topic[:200],
            detail[:300],
            extra=where,
            exc_info=fault,
        )


def _watched_first(item: StoredItem) -> bool:
    """Events and smoke readings (true or false, so that one detector's keep their order)."""
    return item.kind == "event" or item.name == ALARM_READING


def _where(address: TopicAddress) -> dict[str, str]:
    return {"site": address.site, "gateway": address.gateway}


def _nested_deeper_than(body: object, limit: int) -> bool:
    """True if arrays and objects nest more than `limit` levels deep in `body`.

    Level by level and without recursion: no deeper than `limit + 1` levels is ever looked at.
    """
    level: list[dict[Any, Any] | list[Any]] = [body] if isinstance(body, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        inner: list[dict[Any, Any] | list[Any]] = []
        for container in level:
            values = container.values() if isinstance(container, dict) else container
            for value in values:
                if isinstance(value, _CONTAINERS):
                    inner.append(value)
        level = inner
    return False


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "payload"
    return f"{where}: {err['msg']}"
