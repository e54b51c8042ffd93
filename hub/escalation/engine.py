"""Escalation: an alert goes to more people, step by step, until someone answers.

Every alert that is not a test gets one durable timer (kind `escalate`, key the alert id):
- open: firing n notifies step n of the policy, after its delay from opening; past the last
  step, the last step again every `repeat_every_min`;
- acknowledged: the timer becomes a re-alert (`realert_after_min` after the acknowledgement,
  repeating) that tells the acknowledger and the charge nurse again;
- resolved: the timer is cancelled.

Each firing is recorded once (`escalation_steps`, unique per alert, phase and n) in the same
transaction as its planned notification attempts (`notifications`, result `pending`), then
the timer moves to the next firing, then the attempts are delivered and their results written.
A restart therefore neither repeats a step (its record exists) nor loses one (its timer is in
the database); an attempt still pending after a crash is delivered when the hub starts again.

A step may be limited to some channels (push first, Apprise later). A family member who asks
for someone to be sent (`request_help`) makes a step of phase `help` at once, to the staff on
duty for the zone and the charge nurse. A staff member who answers "I can't" (`decline`) moves
the ladder to its next step at once, and is left out of the steps after it. A contact's Apprise
URLs hold secrets: they are read from the registry when an attempt is delivered and never
written to the record.

A step that reaches nobody (nobody on duty, no channel, every delivery failed) is an alarm of
its own: `nobody_reached` is recorded with the reason, the alert's `nobody_reached_at` is set
(every console of the site shows it), and a step of phase `fallback` goes at once to the charge
nurse on duty, the site's supervisors and admins, and every console of the site.

A relative's "I've seen it" (`family_seen`) is recorded and shown to staff and changes nothing
else; "I'm handling it" (`family_handling`) only where the policy makes the family a responder.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, Protocol

from hub.alerts.lifecycle import AlertError, AlertService
from hub.core.audit import AuditEntry
from hub.core.clock import Clock
from hub.core.store import Store
from hub.core.timers import Timer, Timers
from hub.escalation.policy import EscalationPolicies, Period, Policy
from hub.escalation.records import EscalationRecords
from hub.escalation.roster import Roster
from hub.notify.base import (
    DeliveryResult,
    Notification,
    Notifier,
    Recipient,
    RecipientKind,
)
from hub.registry.index import Registry
from hub.registry.labels import channel_words, reached_words
from hub.registry.models import Resident
from hub.watch.settings import WatchPolicy

log = logging.getLogger("carewatch.hub.escalation")

KIND: Final = "escalate"
SEND_TIMEOUT_S: Final = 15.0
# Apprise gives up on a slow service before the engine gives up on the attempt, so that every
# service of a contact gets its own result.
APPRISE_BUDGET_S: Final = SEND_TIMEOUT_S - 3
Phase = Literal["escalate", "realert", "help", "fallback"]
REALERT_TARGETS: Final = ("acknowledger", "charge_nurse")
HELP_TARGETS: Final = ("on_duty_zone", "charge_nurse")
FALLBACK_TARGETS: Final = ("charge_nurse", "site_managers", "site_consoles")
# How a person says whom a step notifies, and what became of an attempt.
TARGET_WORDS: Final[dict[str, str]] = {
    "charge_nurse": "the charge nurse",
    "all_on_duty": "everyone on duty",
    "family_contacts": "the family",
    "acknowledger": "whoever acknowledged",
    "site_managers": "the site's supervisors",
    "site_consoles": "every console at the site",
}
RESULT_WORDS: Final[dict[str, str]] = {
    "pending": "sending",
    "delivered": "delivered",
    "failed": "not delivered",
    "no_channel": "cannot be reached",
}


class ContactLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def user(self) -> str | None: ...
    @property
    def notify(self) -> Sequence[str]: ...


class ContactBook(Protocol):
    """The seam to the registry: a resident's contacts, in calling order, and the number of
    the care service that runs a site."""

    def contacts_for(self, resident_code: str) -> Sequence[ContactLike]: ...
    def care_service_phone(self, site: str) -> str | None: ...


class RegistryContacts:
    """A resident's contacts as the registry holds them now."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def contacts_for(self, resident_code: str) -> Sequence[ContactLike]:
        resident = self._registry.data.find(Resident, (resident_code,))
        return resident.contacts if resident is not None else ()

    def care_service_phone(self, site: str) -> str | None:
        found = self._registry.sites.get(site)
        return found.phone if found is not None else None


@dataclass(frozen=True, slots=True)
class Planned:
    """One notification attempt decided at a step, before delivery."""

    target: str
    recipient: Recipient | None
    channel: str | None
    result: str  # pending, no_channel, no_recipient
    detail: str = ""


class Escalation:
    def __init__(
        self,
        *,
        store: Store,
        alerts: AlertService,
        timers: Timers,
        roster: Roster,
        policies: EscalationPolicies,
        watch: WatchPolicy,
        contacts: ContactBook,
        names: Callable[[str], str],
        clock: Clock,
        managers: Callable[[str], Awaitable[list[str]]],
        notifiers: Sequence[Notifier] = (),
    ) -> None:
        self._store = store
        self.records = EscalationRecords(store)
        self._alerts = alerts
        self._managers = managers
        self._timers = timers
        self._roster = roster
        self._policies = policies
        self._watch = watch
        self._contacts = contacts
        self._names = names
        self._clock = clock
        self._notifiers: list[Notifier] = list(notifiers)
        # One change at a time: an acknowledgement must not race a step that is firing.
        self._lock = asyncio.Lock()
        timers.on(KIND, self._fire)

    def add_notifier(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    @property
    def roster(self) -> Roster:
        return self._roster

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def store(self) -> Store:
        return self._store

    async def start(self) -> None:
        """Create the tables and give every active alert its timer. Once every notifier is
        added, `deliver_leftovers` delivers what a crash left pending."""
        await self.records.create()
        for alert in await self._alerts.records.page(("open", "acknowledged"), limit=None):
            async with self._lock:
                await self._reconcile(alert)

    # --- the timer ------------------------------------------------------------------------

    async def on_alert(self, alert: dict[str, Any]) -> None:
        """An alert changed (hub/app.py subscribes this to the alert service)."""
        async with self._lock:
            await self._reconcile(alert)

    async def _reconcile(self, alert: dict[str, Any]) -> None:
        """Make the alert's timer match its state; a repeat trigger changes nothing."""
        if alert["test"]:
            return
        pending = self._timers.pending(KIND, str(alert["id"]))
        phase = _phase(alert)
        if phase is None:
            await self._timers.cancel(KIND, str(alert["id"]))
        elif pending is not None and pending.payload.get("phase") == phase:
            return
        elif phase == "realert" or not await self.records.has_steps(alert["id"]):
            await self._schedule(alert, phase, 0)

    async def _schedule(self, alert: dict[str, Any], phase: Phase, n: int) -> None:
        due = self._due(alert, phase, n)
        if due is None:
            await self._timers.cancel(KIND, str(alert["id"]))
        else:
            await self._timers.set(KIND, str(alert["id"]), due, {"phase": phase, "n": n})

    def _due(self, alert: dict[str, Any], phase: Phase, n: int) -> float | None:
        policy = self._policy(alert)
        if phase == "realert":
            return policy.realert_due(alert["acknowledged_at"], n)
        if n > 0 and alert["priority"] not in policy.escalate:
            return None
        return policy.step_due(alert["opened_at"], n)

    async def _fire(self, timer: Timer) -> None:
        async with self._lock:
            alert = await self._alerts.records.get(int(timer.key))
            if alert is None or alert["test"]:
                return
            phase, n = timer.payload.get("phase"), int(timer.payload.get("n", 0))
            if phase != _phase(alert):
                await self._reconcile(alert)  # changed before this step came due
                return
            assert phase is not None
            step_id = await self._record_step(alert, phase, n, timer.due_at)
            await self._schedule(alert, phase, n + 1)
        await self._deliver_step(alert, step_id)

    # --- a family member asks for someone to be sent -----------------------------------------

    async def request_help(self, alert_id: int, by: str, channel: str) -> dict[str, Any]:
        """`by` pressed "Send someone": tell the zone's staff on duty and the charge nurse now.

        The alert stays as it is (open or acknowledged); staff still acknowledge and resolve it.
        Returns the escalation summary. Raises AlertError 404 (no such alert) or 409 (resolved,
        or a test alert, which is never escalated).
        """
        async with self._lock:
            alert = await self._alerts.records.get(alert_id)
            if alert is None:
                raise AlertError(404, f"no alert {alert_id}")
            if alert["state"] == "resolved":
                raise AlertError(409, f"alert {alert_id} is resolved; no one needs to be sent")
            if alert["test"]:
                raise AlertError(409, f"alert {alert_id} is a test alert and is not escalated")
            n = await self.records.count_steps(alert_id, "help")
            now = self._clock.now()
            asked = AuditEntry(now, by, "help_requested", channel, {"n": n})
            step_id = await self._record_step(alert, "help", n, now, asked=asked)
        log.info(
            "%s asked for someone to be sent to alert %s (%s)",
            by,
            alert_id,
            channel,
            extra={"site": alert["site"], "bed": alert["bed"], "alert_id": alert_id},
        )
        await self._deliver_step(alert, step_id)
        return await self.summary(alert_id)

    # --- answers: staff "I can't", the family's "I've seen it" and "I'm handling it" ----------

    async def decline(self, alert_id: int, by: str, channel: str) -> dict[str, Any]:
        """Staff member `by` cannot go: record it and fire the next step now, without them.

        AlertError 404 (no such alert) or 409 (not open, or a test alert)."""
        async with self._lock:
            alert = await self._active(alert_id, "declined")
            if alert["state"] != "open":
                raise AlertError(
                    409, f"alert {alert_id} is {alert['state']}; only an open alert can be declined"
                )
            now = self._clock.now()
            await self._alerts.note(alert_id, AuditEntry(now, by, "declined", channel, {}))
            pending = self._timers.pending(KIND, str(alert_id))
            if pending is not None and pending.payload.get("phase") == "escalate":
                n = int(pending.payload.get("n", 0))
            else:
                n = await self.records.count_steps(alert_id, "escalate")
            step_id = await self._record_step(alert, "escalate", n, now)
            await self._schedule(alert, "escalate", n + 1)
        log.info(
            "%s declined alert %s (%s); escalation step %d fired at once",
            by,
            alert_id,
            channel,
            n,
            extra={"site": alert["site"], "bed": alert["bed"], "alert_id": alert_id},
        )
        await self._deliver_step(alert, step_id)
        return await self.summary(alert_id)

    async def family_seen(self, alert_id: int, by: str, channel: str) -> dict[str, Any]:
        """A relative has seen the alert: recorded and shown to staff, nothing else changes."""
        async with self._lock:
            await self._active(alert_id, "seen")
            now = self._clock.now()
            await self._alerts.note(alert_id, AuditEntry(now, by, "family_seen", channel, {}))
        return await self.summary(alert_id)

    async def family_handling(self, alert_id: int, by: str, channel: str) -> dict[str, Any]:
        """A relative handles it, where the policy makes the family a responder: the family's
        own reminders stop; staff steps go on unless the policy says `on_family_handling: pause`.

        AlertError 409 where the policy does not make the family a responder."""
        async with self._lock:
            alert = await self._active(alert_id, "handled")
            policy = self._policy(alert)
            if not policy.family_responder:
                raise AlertError(
                    409,
                    "the care service answers this alert; the family can say “I've seen it” "
                    "or ask for someone to be sent",
                )
            now = self._clock.now()
            entry = AuditEntry(now, by, "family_handling", channel, {})
            await self._alerts.note(alert_id, entry)
            if policy.on_family_handling == "pause" and alert["state"] == "open":
                await self._timers.cancel(KIND, str(alert_id))
        return await self.summary(alert_id)

    def family_may_handle(self, alert: dict[str, Any]) -> bool:
        """Whether the policy of the alert's bed makes the family a responder."""
        return not alert["test"] and self._policy(alert).family_responder

    async def _active(self, alert_id: int, wanted: str) -> dict[str, Any]:
        alert = await self._alerts.records.get(alert_id)
        if alert is None:
            raise AlertError(404, f"no alert {alert_id}")
        if alert["state"] == "resolved":
            raise AlertError(409, f"alert {alert_id} is resolved and cannot be {wanted} now")
        if alert["test"]:
            raise AlertError(409, f"alert {alert_id} is a test alert and is not escalated")
        return alert

    # --- nobody reached ---------------------------------------------------------------------

    async def _deliver_step(self, alert: dict[str, Any], step_id: int) -> None:
        """Deliver a recorded step's attempts; if it reached nobody, raise that alarm."""
        await self._deliver(
            alert,
            await self.records.attempts(alert["id"], step_id=step_id, result="pending"),
        )
        attempts = await self.records.attempts(alert["id"], step_id=step_id)
        if not attempts or any(a["result"] == "delivered" for a in attempts):
            return  # reached someone, or had nobody to reach (the family is handling it)
        if await self.records.told_nobody_reached(alert["id"], step_id):
            return  # a firing repeated after a restart: its alarm went out already
        if attempts[0]["phase"] == "fallback":
            log.error(
                "NOBODY REACHED: the fallback for alert %s reached nobody either: %s",
                alert["id"],
                _reason(attempts),
                extra={"site": alert["site"], "bed": alert["bed"], "alert_id": alert["id"]},
            )
            return
        await self._nobody_reached(alert, attempts)

    async def _nobody_reached(self, alert: dict[str, Any], attempts: list[dict[str, Any]]) -> None:
        now = self._clock.now()
        reason = _reason(attempts)
        detail = {
            "step_id": attempts[0]["step_id"],
            "step": attempts[0]["step"],
            "phase": attempts[0]["phase"],
            "reason": reason,
        }
        entry = AuditEntry(now, "system", "nobody_reached", None, detail)
        async with self._lock:
            try:
                alert = await self._alerts.note(
                    alert["id"], entry, {"nobody_reached_at": alert["nobody_reached_at"] or now}
                )
            except AlertError:
                return  # resolved in the meantime: someone did answer
            n = await self.records.count_steps(alert["id"], "fallback")
            step_id = await self._record_step(alert, "fallback", n, now)
        log.error(
            "NOBODY REACHED for alert %s (%s): %s; telling the fallback people",
            alert["id"],
            alert["rule"],
            reason,
            extra={
                "site": alert["site"],
                "gateway": alert["gateway"],
                "device": alert["device"],
                "bed": alert["bed"],
                "alert_id": alert["id"],
            },
        )
        await self._deliver_step(alert, step_id)

    # --- who is told ------------------------------------------------------------------------

    def _period(self, alert: dict[str, Any]) -> Period:
        settings = self._watch.settings(alert["site"], alert["zone"], alert["resident_code"])
        return "night" if settings.is_night(alert["opened_at"]) else "day"

    def _policy(self, alert: dict[str, Any]) -> Policy:
        return self._policies.policy(alert["site"], alert["resident_code"], self._period(alert))

    async def _targets(self, alert: dict[str, Any], phase: Phase, n: int) -> tuple[str, ...]:
        if phase == "realert":
            return REALERT_TARGETS
        if phase == "help":
            return HELP_TARGETS
        if phase == "fallback":
            return FALLBACK_TARGETS
        targets = self._policy(alert).steps[self._policy(alert).step(n)].notify
        if n == 0 and await self._all_on_duty(alert):
            targets = ("all_on_duty", *targets)
        if await self.records.answers(alert["id"], "family_handling"):
            targets = tuple(t for t in targets if t != "family_contacts")
        return targets

    def _channels(self, alert: dict[str, Any], phase: Phase, n: int) -> tuple[str, ...] | None:
        """The channels a firing may use; None: all of them."""
        if phase != "escalate":
            return None  # help, re-alerts and fallbacks use every channel
        policy = self._policy(alert)
        return policy.steps[policy.step(n)].channels

    async def _all_on_duty(self, alert: dict[str, Any]) -> bool:
        """Smoke: the watch marks the alert for everyone on duty when it opens it."""
        history = await self._store.audit.for_alert(alert["id"])
        opened = next((entry for entry in history if entry["action"] == "opened"), None)
        return alert["rule"] == "smoke" or bool(opened and opened["detail"].get("all_on_duty"))

    async def _recipients(self, target: str, alert: dict[str, Any], at: float) -> list[Recipient]:
        site = alert["site"]
        users: list[str]
        if target == "site_consoles":
            return [Recipient("consoles", f"site:{site}", "every console at the site")]
        if target == "family_contacts":
            code = alert["resident_code"]
            contacts = self._contacts.contacts_for(code) if code else ()
            return [_contact_recipient(contact) for contact in contacts]
        if target == "on_duty_zone":
            users = self._roster.on_duty(site, at, alert["zone"])
        elif target == "charge_nurse":
            users = self._roster.charge_nurses(site, at)
        elif target == "all_on_duty":
            users = self._roster.everyone_on_duty(site, at)
        elif target == "acknowledger":
            users = [alert["acknowledged_by"]] if alert["acknowledged_by"] else []
        elif target == "site_managers":
            users = await self._managers(site)
        else:
            users = [target.removeprefix("user:")]
        return [Recipient("user", user, self._names(user), user=user) for user in users]

    async def _plan(
        self,
        alert: dict[str, Any],
        targets: Sequence[str],
        at: float,
        allowed: tuple[str, ...] | None,
    ) -> list[Planned]:
        notifiers = [n for n in self._notifiers if allowed is None or n.channel in allowed]
        declined = {row["actor"] for row in await self.records.answers(alert["id"], "declined")}
        planned: list[Planned] = []
        seen: set[tuple[str, str]] = set()
        for target in targets:
            everyone = await self._recipients(target, alert, at)
            people = [p for p in everyone if not (p.kind == "user" and p.id in declined)]
            if not people:
                why = "everyone it would reach declined" if everyone else _nobody(target, alert)
                planned.append(Planned(target, None, None, "no_recipient", why))
            for person in people:
                if (person.kind, person.id) in seen:
                    continue
                seen.add((person.kind, person.id))
                channels = [n.channel for n in notifiers if n.accepts(person)]
                planned += [Planned(target, person, channel, "pending") for channel in channels]
                if not channels:
                    planned.append(Planned(target, person, None, "no_channel", _unreached(allowed)))
        return planned

    # --- the record -------------------------------------------------------------------------

    async def _record_step(
        self,
        alert: dict[str, Any],
        phase: Phase,
        n: int,
        due: float,
        asked: AuditEntry | None = None,
    ) -> int:
        """Record firing n with its planned attempts, once; return the step's id. `asked`, the
        request that caused the firing, is recorded in the same transaction."""
        now = self._clock.now()
        targets = await self._targets(alert, phase, n)
        planned = await self._plan(alert, targets, now, self._channels(alert, phase, n))
        step = self._policy(alert).step(n) if phase == "escalate" else n
        kind = "repeat" if phase == "escalate" and n != step else phase
        async with self._store.transaction() as db:
            step_id = await self.records.insert_step(
                db,
                (alert["id"], phase, n, step, self._period(alert), json.dumps(targets), due, now),
            )
            if step_id is None:
                return await self.records.step_id(alert["id"], phase, n)
            if asked is not None:
                await self._audit(alert["id"], asked)
            detail = {"phase": kind, "n": n, "step": step, "targets": list(targets)}
            await self._audit(
                alert["id"], AuditEntry(now, "system", "escalation_step", None, detail)
            )
            for plan in planned:
                attempt_id = await self.records.insert_attempt(
                    db,
                    (
                        alert["id"],
                        step_id,
                        step,
                        kind,
                        plan.target,
                        plan.channel,
                        *_recipient_columns(plan.recipient),
                        now,
                        plan.result,
                        plan.detail,
                    ),
                )
                if plan.result != "pending":
                    await self._audit_attempt(alert["id"], attempt_id, plan, now)
        log.info(
            "escalation %s %d of alert %s: %d attempt(s)",
            kind,
            n,
            alert["id"],
            len(planned),
            extra={"site": alert["site"], "rule": alert["rule"], "alert_id": alert["id"]},
        )
        return step_id

    async def _audit(self, alert_id: int, entry: AuditEntry) -> None:
        # Inside the caller's transaction, on the shared connection.
        await self._store.audit.record([entry], alert_id)

    async def _audit_attempt(self, alert_id: int, attempt: int, plan: Planned, at: float) -> None:
        person = plan.recipient
        detail = {
            "attempt": attempt,
            "target": plan.target,
            "recipient": person.id if person else None,
            "recipient_kind": person.kind if person else None,
            "result": plan.result,
            "detail": plan.detail,
        }
        await self._audit(alert_id, AuditEntry(at, "system", "notification", plan.channel, detail))

    # --- delivery ---------------------------------------------------------------------------

    async def _deliver(self, alert: dict[str, Any], attempts: list[dict[str, Any]]) -> None:
        if not attempts:
            return
        results = await asyncio.gather(*(self._send(alert, row) for row in attempts))
        now = self._clock.now()
        async with self._store.transaction() as db:
            for row, result in zip(attempts, results, strict=True):
                outcome = "delivered" if result.delivered else "failed"
                await self.records.set_result(db, row["id"], outcome, result.detail, now)
                plan = Planned(
                    row["target"], _recipient(row), row["channel"], outcome, result.detail
                )
                await self._audit_attempt(alert["id"], row["id"], plan, now)

    async def _send(self, alert: dict[str, Any], row: dict[str, Any]) -> DeliveryResult:
        notifier = next((n for n in self._notifiers if n.channel == row["channel"]), None)
        recipient = _recipient(row)
        if notifier is None or recipient is None:
            return DeliveryResult(False, f"channel {row['channel']!r} is not available")
        recipient = self._with_apprise_urls(alert, recipient)
        call = (
            self._contacts.care_service_phone(alert["site"])
            if recipient.kind == "contact"
            else None
        )
        notification = Notification(
            alert, recipient, row["step"], row["phase"], row["target"], call
        )
        try:
            return await asyncio.wait_for(notifier.send(notification), SEND_TIMEOUT_S)
        except TimeoutError:
            return DeliveryResult(False, f"no answer within {SEND_TIMEOUT_S:.0f} s")
        except Exception as exc:
            log.exception("notifier %s failed", notifier.channel)
            return DeliveryResult(False, f"{type(exc).__name__}: {exc}")

    def _with_apprise_urls(self, alert: dict[str, Any], person: Recipient) -> Recipient:
        """A contact's Apprise URLs as the registry holds them now (none if they were removed)."""
        code = alert["resident_code"]
        if person.kind != "contact" or not code:
            return person
        contacts = self._contacts.contacts_for(code)
        contact = next((c for c in contacts if c.name == person.id), None)
        return replace(person, apprise=tuple(contact.notify) if contact else ())

    async def deliver_leftovers(self) -> None:
        """Attempts a crash left pending: deliver them if their alert is still active; then
        raise the nobody-reached alarms a crash cut off."""
        leftovers = await self.records.attempts(result="pending")
        for alert_id in dict.fromkeys(row["alert_id"] for row in leftovers):
            alert = await self._alerts.records.get(alert_id)
            rows = [row for row in leftovers if row["alert_id"] == alert_id]
            if alert is not None and alert["state"] != "resolved":
                await self._deliver(alert, rows)
            else:
                await self._skip(rows)
        await self._missed_alarms()

    async def _missed_alarms(self) -> None:
        """Steps of active alerts that reached nobody but whose alarm was never raised (the
        hub stopped between a step's delivery and its alarm): raise it now, once."""
        for step_id, alert_id in await self.records.missed_steps():
            alert = await self._alerts.records.get(alert_id)
            if alert is not None:
                await self._deliver_step(alert, step_id)

    async def _skip(self, rows: list[dict[str, Any]]) -> None:
        await self.records.skip([row["id"] for row in rows])

    # --- what the console and the API show ----------------------------------------------------

    async def summary(self, alert_id: int) -> dict[str, Any]:
        """`escalation_step` (1-based, the last step reached), `notified` (names reached),
        `next_escalation_at`, `help_requested_by` (who asked for someone to be sent)."""
        last_step = await self.records.last_step(alert_id)
        reached = await self.records.attempts(alert_id, result="delivered")
        pending = self._timers.pending(KIND, str(alert_id))
        alert = await self._alerts.records.get(alert_id)
        nobody = await self.records.nobody_reached(alert_id)
        handling = await self.records.answers(alert_id, "family_handling")
        return {
            "escalation_step": None if last_step is None else last_step + 1,
            "notified": list(dict.fromkeys(r["recipient_name"] for r in reached)),
            "reached": [
                {
                    "user": r["recipient_user"],
                    "name": r["recipient_name"],
                    "channel": r["channel"],
                    "channel_name": channel_words(r["channel"]),
                    "text": reached_words(r["recipient_name"], r["channel"]),
                    "at": r["at"],
                }
                for r in reached
            ],
            "next_escalation_at": pending.due_at if pending else None,
            "help_requested_by": await self._answerers(alert_id, "help_requested"),
            "nobody_reached": [_nobody_entry(entry["at"], entry["detail"]) for entry in nobody],
            "nobody_reached_at": alert["nobody_reached_at"] if alert else None,
            "family_seen_by": await self._answerers(alert_id, "family_seen"),
            "family_handling": {"by": self._names(handling[0]["actor"]), "since": handling[0]["at"]}
            if handling
            else None,
            "declined_by": await self._answerers(alert_id, "declined"),
            # The family handles it where the policy holds the staff steps: the console stops
            # reminding (it sounded when the alert opened).
            "console_quiet": bool(handling)
            and alert is not None
            and self._policy(alert).on_family_handling == "pause",
        }

    async def _answerers(self, alert_id: int, action: str) -> list[str]:
        rows = await self.records.answers(alert_id, action)
        return list(dict.fromkeys(self._names(row["actor"]) for row in rows))

    async def history(self, alert_id: int) -> dict[str, Any]:
        """Every step reached, with its attempts and their results, and the next one due."""
        steps = await self.records.steps(alert_id)
        attempts = [
            {**a, "channel_name": channel_words(a["channel"]), "text": _attempt_words(a)}
            for a in await self.records.attempts(alert_id)
        ]
        alert = await self._alerts.records.get(alert_id) or {}
        for step in steps:
            step["targets"] = json.loads(step["targets"])
            step["targets_text"] = [target_words(t, alert, self._names) for t in step["targets"]]
            step["attempts"] = [a for a in attempts if a["step_id"] == step["id"]]
        pending = self._timers.pending(KIND, str(alert_id))
        upcoming = {"due_at": pending.due_at, **pending.payload} if pending else None
        return {
            "alert_id": alert_id,
            "steps": steps,
            "next": upcoming,
            **await self.summary(alert_id),
        }


def target_words(target: str, alert: Mapping[str, Any], names: Callable[[str], str]) -> str:
    """Whom a step notifies, in words: "staff on duty in East wing", "Night Nurse"."""
    if target == "on_duty_zone":
        zone = alert.get("zone_name") or alert.get("zone")
        return f"staff on duty in {zone}" if zone else "staff on duty"
    if target.startswith("user:"):
        return names(target.removeprefix("user:"))
    return TARGET_WORDS.get(target, target.replace("_", " "))


def _attempt_words(attempt: Mapping[str, Any]) -> str:
    """One notification attempt as a sentence: "Night Nurse (console): delivered", "Nobody to
    notify: no one on duty in West wing"."""
    if attempt["result"] == "no_recipient":
        return f"Nobody to notify: {attempt['detail']}"
    who = reached_words(str(attempt["recipient_name"]), attempt["channel"])
    result = RESULT_WORDS.get(str(attempt["result"]), str(attempt["result"]).replace("_", " "))
    # A delivery's own detail can name user names ("on the consoles of nurse"): left out.
    detail = attempt["detail"] if attempt["result"] != "delivered" else ""
    return f"{who}: {result}{f' — {detail}' if detail else ''}"


def _phase(alert: dict[str, Any]) -> Phase | None:
    if alert["state"] == "open":
        return "escalate"
    if alert["state"] == "acknowledged":
        return "realert"
    return None


def _nobody(target: str, alert: Mapping[str, Any]) -> str:
    zone = alert.get("zone_name") or alert.get("zone")
    return {
        "on_duty_zone": f"no one on duty in {zone}" if zone else "no one on duty at this site",
        "charge_nurse": "no charge nurse on duty",
        "family_contacts": "the resident has no contacts",
        "all_on_duty": "no one on duty at this site",
        "acknowledger": "nobody acknowledged",
        "site_managers": "the site has no supervisor or administrator",
    }.get(target, "nobody to notify")


def _reason(attempts: Sequence[Mapping[str, Any]]) -> str:
    """Why a step reached nobody, in words: each target's and each person's reason, once."""
    reasons: list[str] = []
    for attempt in attempts:
        if attempt["result"] == "no_recipient":
            reasons.append(attempt["detail"])
        else:
            who = reached_words(str(attempt["recipient_name"]), attempt["channel"])
            reasons.append(f"{who}: {attempt['detail']}")
    return "; ".join(dict.fromkeys(reasons))


def _nobody_entry(at: float, detail: str) -> dict[str, Any]:
    recorded = json.loads(detail)
    return {
        "step": int(recorded.get("step", 0)) + 1,
        "phase": recorded.get("phase"),
        "at": at,
        "reason": recorded.get("reason", ""),
    }


def _unreached(allowed: tuple[str, ...] | None) -> str:
    if allowed is None:
        return "no delivery channel reaches this person"
    allows = ", ".join(channel_words(channel) for channel in allowed)
    return f"none of the channels this step allows ({allows}) reaches this person"


def _contact_recipient(contact: ContactLike) -> Recipient:
    return Recipient(
        "contact",
        contact.name,
        contact.name,
        contact.phone,
        contact.email,
        user=contact.user,
        apprise=tuple(contact.notify),
    )


def _recipient_columns(person: Recipient | None) -> tuple[Any, ...]:
    """How a recipient is recorded with an attempt: Apprise URLs are left out (secrets)."""
    if person is None:
        return (None, None, None, None, None, None)
    return (person.kind, person.id, person.name, person.phone, person.email, person.user)


def _recipient(row: Mapping[str, Any]) -> Recipient | None:
    if row["recipient_kind"] not in ("user", "contact", "consoles"):
        return None
    kind: RecipientKind = row["recipient_kind"]
    return Recipient(
        kind,
        row["recipient"],
        row["recipient_name"],
        row["phone"],
        row["email"],
        user=row["recipient_user"],
    )
