"""The hub process: wires store, registry, rules, alerts, MQTT and the web server together."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from hub.access.auth import Authenticator
from hub.access.users import UserError, UserStore
from hub.alerts.lifecycle import AlertBus, AlertService
from hub.commissioning.provision_routes import provision_routes
from hub.commissioning.provisioning import Provisioner
from hub.commissioning.walktest import WalkTests
from hub.commissioning.walktest_routes import walktest_routes
from hub.config import HubConfig
from hub.console.presence import Consoles, ConsoleWatch, start_console_watch
from hub.console.presence_routes import console_presence_routes
from hub.console.routes import console_routes
from hub.core.clock import Clock, SystemClock
from hub.core.store import Store
from hub.core.timers import Timers
from hub.escalation.engine import Escalation, start_escalation
from hub.escalation.oncall_routes import oncall_routes
from hub.escalation.roster_routes import RosterView, roster_routes
from hub.escalation.roster_watch import start_roster_watch
from hub.escalation.routes import escalation_routes
from hub.family.routes import family_routes
from hub.http.app import create_app
from hub.ingest.mqtt_link import MqttLink
from hub.ingest.pipeline import Ingest
from hub.notify.push import PushNotifier, PushService
from hub.notify.routes import push_routes
from hub.registry.index import Registry
from hub.registry.service import RegistryService
from hub.supervisor.routes import supervisor_routes
from hub.watch.bed_state import BedStates
from hub.watch.rules import Watch
from hub.watch.settings import WatchPolicy

log = logging.getLogger("carewatch.hub")


@dataclass
class Hub:
    """A running hub. Build it with `Hub.start`, stop it with `stop()`."""

    config: HubConfig
    store: Store
    registry: Registry
    ingest: Ingest
    bus: AlertBus
    alerts: AlertService
    timers: Timers
    watch: Watch
    beds: BedStates
    mqtt: MqttLink
    web_port: int
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    registry_admin: RegistryService | None = None
    escalation: Escalation | None = None
    walktests: WalkTests | None = None
    users: UserStore | None = None
    push: PushService | None = None
    console_watch: ConsoleWatch | None = None

    @classmethod
    async def start(cls, config: HubConfig, clock: Clock | None = None) -> Hub:
        clock = clock or SystemClock()
        store = await Store.open(config.database)
        users = await _open_users(store, config, clock)
        registry_admin = await RegistryService.open(
            store,
            clock,
            config.sites,
            config.organisation,
            config.outbound.policy(),
            WatchPolicy(config.watch),
        )
        registry = registry_admin.registry
        bus = AlertBus()
        alerts = AlertService(store, bus, clock)
        await alerts.load()
        timers = Timers(store, clock)
        await timers.load()
        watch = Watch(registry, alerts, timers, WatchPolicy(config.watch), clock)
        await watch.start()
        # every bed's state, one truth for the board, the family app and the resident page
        beds = BedStates(store, registry)
        watch.item_observers.append(beds.observe)
        registry_admin.on_change(watch.start)
        # escalation: roster, steps as durable timers, notifications (hub/escalation/engine.py)
        escalation = await start_escalation(
            config,
            store=store,
            alerts=alerts,
            timers=timers,
            registry=registry,
            consoles=bus,
            clock=clock,
            names=users.name_of,
            managers=users.managers,
        )
        # Web Push to phones (hub/notify/push.py), one more channel for the escalation
        push = await PushService.open(store, clock, config, config.web.secret_key)
        # only to active users who may see the alert; a family responder gets "I'm handling it"
        escalation.add_notifier(PushNotifier(push, users, escalation.family_may_handle))
        await escalation.deliver_leftovers()
        # a zone nobody covers is a trouble alert at shift start (hub/escalation/roster_watch.py)
        roster_watch = await start_roster_watch(
            escalation.roster, registry, alerts, store, timers, WatchPolicy(config.watch), clock
        )
        registry_admin.on_change(roster_watch.check_all)
        # a staffed zone with no armed console is a trouble alert (hub/console/presence.py)
        console_watch = await start_console_watch(
            Consoles(clock),
            escalation.roster,
            registry,
            alerts,
            store,
            timers,
            WatchPolicy(config.watch),
            clock,
        )
        registry_admin.on_change(console_watch.check_all)
        walktests = await WalkTests.open(  # walk test
            store, registry, alerts, clock, registry_admin.policy
        )
        watch.item_observers.append(walktests.observe)
        watch.under_test = walktests.under_test
        ingest = Ingest(registry, store, watch, clock)
        mqtt = MqttLink(config.broker, ingest, clock, on_takeover=watch.on_hub_takeover)
        try:
            sock = _bind(config.web.host, config.web.port)
        except OSError:
            await store.close()
            raise
        hub = cls(
            config,
            store,
            registry,
            ingest,
            bus,
            alerts,
            timers,
            watch,
            beds,
            mqtt,
            sock.getsockname()[1],
        )
        hub.registry_admin = registry_admin
        hub.escalation = escalation
        hub.walktests = walktests
        hub.users = users
        hub.push = push
        hub.console_watch = console_watch
        hub._serve(sock, registry_admin, Authenticator(users, store, clock))
        hub._tasks.append(asyncio.create_task(timers.run(hub._stop), name="hub-timers"))
        hub._tasks.append(
            asyncio.create_task(timers.run_flusher(hub._stop), name="hub-timer-writer")
        )
        hub._tasks.append(asyncio.create_task(mqtt.run(hub._stop), name="hub-mqtt"))
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

    def _serve(
        self, sock: socket.socket, registry_admin: RegistryService, auth: Authenticator
    ) -> None:
        app = create_app(
            store=self.store,
            alerts=self.alerts,
            bus=self.bus,
            auth=auth,
            registry=self.registry,
            registry_admin=registry_admin,
            secret_key=self.config.web.secret_key,
            secure_cookies=self.config.web.secure_cookies,
            limits=self.config.web.limits,
            health=self.health,
            hide_alert=self.walktests.hides if self.walktests else None,
            consoles=self.console_watch.consoles if self.console_watch else None,
        )
        if self.console_watch is not None:  # consoles connected and armed (api_consoles.py)
            app.include_router(console_presence_routes(self.console_watch))
        if self.escalation is not None:  # escalation and figures routes (hub/escalation/routes.py)
            app.include_router(escalation_routes(self.escalation))
            # the supervisor view, its data and CSV exports (hub/supervisor/routes.py)
            app.include_router(
                supervisor_routes(self.store, self.registry, self.config, self.escalation)
            )
        if self.push is not None and self.escalation is not None and self.users is not None:
            app.include_router(  # Web Push: key, subscriptions, notification actions
                push_routes(
                    self.push,
                    store=self.store,
                    alerts=self.alerts,
                    helpdesk=self.escalation,
                    users=self.users,
                    clock=self.escalation.clock,
                )
            )
            app.include_router(  # staff "I can't" (hub/escalation/oncall_routes.py)
                oncall_routes(
                    self.escalation,
                    store=self.store,
                    hide_alert=self.walktests.hides if self.walktests else None,
                )
            )
            app.include_router(  # the family app and its API (hub/family/routes.py)
                family_routes(
                    registry=self.registry,
                    store=self.store,
                    helpdesk=self.escalation,
                    clock=self.escalation.clock,
                    names=self.users.display_names,
                    responders=self.users.responders,
                    beds=self.beds,
                )
            )
        if self.escalation is not None and self.users is not None:  # roster view (api_roster.py)
            app.include_router(
                roster_routes(
                    RosterView(
                        self.escalation.roster,
                        self.registry,
                        self.store,
                        self.bus,
                        self.users,
                        self.escalation.clock,
                    )
                )
            )
        if self.walktests is not None:  # walk test routes and installer page
            app.include_router(walktest_routes(self.walktests))
        # bed board, resident pages, handover (hub/console/routes.py)
        if self.escalation is not None:
            app.include_router(
                console_routes(
                    store=self.store,
                    beds=self.beds,
                    registry=self.registry,
                    policy=WatchPolicy(self.config.watch),
                    clock=self.escalation.clock,
                    roster=self.escalation.roster,
                    hide_alert=self.walktests.hides if self.walktests else None,
                )
            )
        # provisioning and bed labels (hub/commissioning/provision_routes.py)
        app.include_router(provision_routes(Provisioner(registry_admin, self.store, self.config)))
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
            "push": self.push.counters() if self.push else None,
        }

    @property
    def url(self) -> str:
        return f"http://{self.config.web.host}:{self.web_port}"

    async def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self.bus.close()
        if self.walktests is not None:  # ends the installers' live walk-test streams
            self.walktests.progress.close()
        if self._server is not None:
            self._server.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.push is not None:
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
