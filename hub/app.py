"""The hub process and its one wiring place: `Hub.start` builds every part in the order of what
it needs, says who talks to whom, makes every subscription between parts, and serves the one
router list (`ROUTERS`) with the parts the routes ask for (hub/http/deps.py)."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import APIRouter

from hub.access import routes as access_routes
from hub.access.auth import Authenticator
from hub.access.users import UserError, UserStore
from hub.alerts import routes as alert_routes
from hub.alerts.lifecycle import AlertBus, AlertService
from hub.commissioning import provision_routes, walktest_routes
from hub.commissioning.provisioning import Provisioner
from hub.commissioning.walktest import WalkTests
from hub.config import HubConfig
from hub.console import presence_routes
from hub.console import routes as console_routes
from hub.console.board import BedBoard
from hub.console.presence import Consoles, ConsoleWatch
from hub.core.clock import Clock, SystemClock
from hub.core.store import Store
from hub.core.timers import Timers
from hub.escalation import oncall_routes, roster_routes
from hub.escalation import routes as escalation_routes
from hub.escalation.engine import APPRISE_BUDGET_S, Escalation, RegistryContacts
from hub.escalation.policy import EscalationPolicies
from hub.escalation.roster import Roster
from hub.escalation.roster_routes import RosterView
from hub.escalation.roster_watch import RosterWatch
from hub.family import routes as family_routes
from hub.family.view import FamilyView
from hub.http.app import create_app
from hub.http.deps import CLOCK, HIDE_ALERT, NAME_OF, Parts
from hub.ingest.mqtt_link import MqttLink
from hub.ingest.pipeline import Ingest
from hub.notify import routes as push_routes
from hub.notify.apprise_channel import AppriseNotifier
from hub.notify.base import ConsoleNotifier
from hub.notify.push import PushNotifier, PushService
from hub.registry import routes as registry_routes
from hub.registry.index import Registry
from hub.registry.service import RegistryService
from hub.supervisor import routes as supervisor_routes
from hub.supervisor.overview import Sources
from hub.telemetry.maintenance import Maintenance
from hub.telemetry.records import TelemetryRecords
from hub.watch.bed_state import BedStates
from hub.watch.coverage import PolicyCoverage
from hub.watch.rules import Watch
from hub.watch.settings import WatchPolicy

log = logging.getLogger("carewatch.hub")

# Every route of the hub, in the order they are matched.
ROUTERS: tuple[APIRouter, ...] = (
    registry_routes.router,  # sites, zones, rooms, beds, residents, gateways, devices
    access_routes.router,  # sign in, sign out, who am I
    alert_routes.router,  # the alert queue
    presence_routes.router,  # the live stream, and the consoles connected and armed
    escalation_routes.router,  # an alert's escalation, who is on duty, figures
    supervisor_routes.router,  # the supervisor view, its data and CSV exports
    push_routes.router,  # Web Push: key, subscriptions, notification actions
    oncall_routes.router,  # staff "I can't"
    family_routes.router,  # the family app and its API
    roster_routes.router,  # the roster view
    walktest_routes.router,  # walk tests and the installer's page
    console_routes.router,  # bed board, resident pages, handover
    provision_routes.router,  # provisioning and bed labels
)


@dataclass
class Hub:
    """A running hub: every part, built and wired by `Hub.start`; stop it with `stop()`."""

    config: HubConfig
    clock: Clock
    policy: WatchPolicy
    escalation_policies: EscalationPolicies
    store: Store
    users: UserStore
    registry_admin: RegistryService
    registry: Registry
    bus: AlertBus
    alerts: AlertService
    timers: Timers
    upkeep: Maintenance
    walktests: WalkTests
    watch: Watch
    beds: BedStates
    push: PushService
    escalation: Escalation
    roster_watch: RosterWatch
    console_watch: ConsoleWatch
    ingest: Ingest
    mqtt: MqttLink
    web_port: int
    unsubscribe: list[Callable[[], None]]
    _server: uvicorn.Server = field(init=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, config: HubConfig, clock: Clock | None = None) -> Hub:
        """The one wiring place: every part built in the order of what it needs, and every
        subscription between parts made here."""
        clock = clock or SystemClock()
        policy = WatchPolicy(config.watch)
        escalation_policies = EscalationPolicies(config.escalation)
        store = await Store.open(config.database)
        # the time series' tables, there before anything reads or writes them (hub/telemetry)
        await TelemetryRecords(store).create()
        # their upkeep (rollups, retention); on PostgreSQL today's partitions, before any reading
        upkeep = Maintenance(store, config.retention, clock)
        await upkeep.prepare()
        # the users table, with the config file's users and tokens (hub/access/users.py)
        users = await _open_users(store, config, clock)
        # the registry and its one write path (hub/registry/service.py)
        registry_admin = await RegistryService.open(
            store,
            clock,
            config.sites,
            config.organisation,
            config.outbound.policy(),
            rule_coverage=PolicyCoverage(policy),  # rule coverage answered under the watch policy
        )
        registry = registry_admin.registry
        # alerts: the live consoles' bus, and the alert lifecycle that publishes to it
        bus = AlertBus()
        alerts = AlertService(store, bus, clock)
        await alerts.load()
        timers = Timers(store, clock)
        await timers.load()
        # walk tests turn a site's (or gateway's) alerts into test alerts (commissioning/)
        walktests = await WalkTests.open(store, registry, alerts, clock, policy)
        # the rules: the watch raises alerts from items and timers, asking the walk tests
        # whether an alert is a test
        watch = Watch(registry, alerts, timers, policy, clock, walktests.under_test)
        await watch.start()
        # every bed's state, one truth for the board, the family app and the resident page
        beds = BedStates(store, registry)
        # Web Push to phones (hub/notify/push.py)
        push = await PushService.open(store, clock, config, config.web.secret_key)
        # escalation: roster, steps as durable timers, and every channel it notifies through:
        # the consoles on the bus, Apprise, and Web Push only to active users who may see the
        # alert (a family responder, as the escalation's policy says, gets "I'm handling it")
        roster = Roster(config.roster, policy)
        escalation = Escalation(
            store=store,
            alerts=alerts,
            timers=timers,
            roster=roster,
            policies=escalation_policies,
            watch=policy,
            contacts=RegistryContacts(registry),
            names=users.name_of,
            clock=clock,
            managers=users.managers,
            notifiers=[
                ConsoleNotifier(bus),
                AppriseNotifier(
                    budget_s=APPRISE_BUDGET_S,
                    local_time=lambda alert: policy.settings(
                        alert["site"], alert["zone"], alert["resident_code"]
                    ).local(alert["opened_at"]),
                    outbound=config.outbound.policy(),
                ),
                # the engine is built by this very call: asked only once alerts come
                PushNotifier(push, users, lambda alert: escalation.family_may_handle(alert)),
            ],
        )
        # every change of an alert reaches the escalation, from before its first timers are set
        escalates = alerts.add_listener(escalation.on_alert)
        await escalation.start()
        await escalation.deliver_leftovers()
        # a zone nobody covers is a trouble alert at shift start (hub/escalation/roster_watch.py)
        roster_watch = RosterWatch(roster, registry, alerts, timers, policy, clock)
        await roster_watch.check_all()
        # a staffed zone with no armed console is a trouble alert (hub/console/presence.py)
        console_watch = ConsoleWatch(
            Consoles(clock), roster, registry, alerts, timers, policy, clock
        )
        await console_watch.start()
        # items: ingest stores them and hands them to the watch; the MQTT link feeds ingest
        # and tells the watch when another client keeps taking the hub's broker session
        ingest = Ingest(registry, store, watch, clock)
        mqtt = MqttLink(config.broker, ingest, clock, on_takeover=watch.on_hub_takeover)
        unsubscribe = [
            escalates,
            # the watch hands every item on to the bed states and the walk tests
            watch.observe(beds.observe),
            watch.observe(walktests.observe),
            # a registry change: standing timers for new devices, zones' cover checked again
            registry_admin.on_change(watch.start),
            registry_admin.on_change(roster_watch.check_all),
            registry_admin.on_change(console_watch.check_all),
        ]
        try:
            sock = _bind(config.web.host, config.web.port)
        except OSError:
            await store.close()
            raise
        hub = cls(
            config,
            clock,
            policy,
            escalation_policies,
            store,
            users,
            registry_admin,
            registry,
            bus,
            alerts,
            timers,
            upkeep,
            walktests,
            watch,
            beds,
            push,
            escalation,
            roster_watch,
            console_watch,
            ingest,
            mqtt,
            sock.getsockname()[1],
            unsubscribe,
        )
        hub._serve(sock, Authenticator(users, store, clock))
        hub._tasks.append(asyncio.create_task(timers.run(hub._stop), name="hub-timers"))
        hub._tasks.append(
            asyncio.create_task(timers.run_flusher(hub._stop), name="hub-timer-writer")
        )
        hub._tasks.append(asyncio.create_task(mqtt.run(hub._stop), name="hub-mqtt"))
        hub._tasks.append(
            asyncio.create_task(hub.upkeep.run(hub._stop), name="hub-telemetry-upkeep")
        )
        hub._tasks.append(
            asyncio.create_task(console_watch.run(hub._stop), name="hub-console-watch")
        )
        log.info(
            "hub started: %d beds, %d devices, console on http://%s:%d/",
            registry.bed_count(),
            len(registry.devices()),
            config.web.host,
            hub.web_port,
        )
        _freeze_what_start_built()
        return hub

    def _parts(self, auth: Authenticator) -> Parts:
        """What the routes ask for (hub/http/deps.py): each part under its class, or a slot."""
        policy = self.policy
        escalation = self.escalation
        parts = Parts()
        parts.fill(CLOCK, self.clock)
        parts.fill(HIDE_ALERT, self.walktests.hides)
        parts.fill(NAME_OF, self.users.name_of)
        parts.fill(push_routes.RESPONSES, escalation)
        parts.fill(family_routes.HELPDESK, escalation)
        parts.add(
            self.store,
            self.store.audit,
            self.alerts.records,
            self.ingest.records,
            self.registry,
            self.registry_admin,
            auth,
            self.users,
            self.bus,
            self.alerts,
            policy,
            self.beds,
            # the board keeps each zone's tiles encoded, never a walk test's alert
            BedBoard(self.beds, self.walktests.hides),
            self.push,
            escalation,
            escalation.roster,
            RosterView(
                escalation.roster, self.registry, self.store, self.bus, self.users, self.clock
            ),
            self.console_watch,
            self.walktests,
            FamilyView(
                self.registry,
                self.store,
                self.clock,
                self.users.display_names,
                escalation.family_may_handle,
                self.users.responders,
                self.beds,
            ),
            Sources(
                store=self.store,
                registry=self.registry,
                roster=escalation.roster,
                escalation=self.escalation_policies,
                watch=policy,
            ),
            Provisioner(self.registry_admin, self.store, self.config),
        )
        return parts

    def _serve(self, sock: socket.socket, auth: Authenticator) -> None:
        app = create_app(
            routers=ROUTERS,
            parts=self._parts(auth),
            auth=auth,
            secret_key=self.config.web.secret_key,
            secure_cookies=self.config.web.secure_cookies,
            limits=self.config.web.limits,
            health=self.health,
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=5,
            )
        )
        self._server = server
        self._tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name="hub-web"))

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.mqtt.connected.is_set() else "degraded",
            "broker_connected": self.mqtt.connected.is_set(),
            "beds": self.registry.bed_count(),
            "devices": len(self.registry.devices()),
            "live_consoles": self.bus.subscribers,
            "ingest": self.ingest.counters(),
            "push": self.push.counters(),
        }

    @property
    def url(self) -> str:
        return f"http://{self.config.web.host}:{self.web_port}"

    async def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for stop in self.unsubscribe:
            stop()
        self.bus.close()
        self.walktests.progress.close()  # ends the installers' live walk-test streams
        self._server.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.push.close()
        await self.store.close()

    async def wait(self) -> None:
        """Until a component ends by itself (it should not) or the hub is stopped."""
        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)


async def _open_users(store: Store, config: HubConfig, clock: Clock) -> UserStore:
    """The users table, with the config file's users and tokens written into it."""
    users = await UserStore.open(store)
    try:
        await users.sync_config(
            [spec.config_user() for spec in config.users],
            [spec.config_token() for spec in config.tokens],
            clock.now(),
        )
    except UserError:
        await store.close()
        raise
    return users


def _bind(host: str, port: int) -> socket.socket:
    # Named TCP so that asyncio sets TCP_NODELAY on every connection it accepts (it does so only
    # for sockets of proto IPPROTO_TCP): without it, each request after the first on a kept-alive
    # connection waited ~40 ms for the client's delayed ACK before its response body was sent.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _freeze_what_start_built() -> None:
    """Leave what start-up built (the registry, its placements, the timers: millions of objects
    at 10,000 beds) out of the garbage collector's full passes. Each would walk them all, and
    hold every alert for as long as that takes (up to 1.5 s seen at 10,000 beds)."""
    gc.collect()
    gc.freeze()
