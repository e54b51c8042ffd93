"""The demo's start banner: where to open it, who to log in as, what the night holds, and what
`--host` exposes when it is not a loopback address."""

from __future__ import annotations

import ipaddress
import socket

from carewatch.demo.home import (
    CARE_SERVICE_PHONE,
    SITE,
    SITE_NAME,
    STAFF,
    UNCOVERED_BED,
    DemoHome,
    family_username,
)
from carewatch.demo.options import LOG_FILE, NIGHT_WAITS_S, DemoOptions
from hub.app import Hub


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def _lan_address() -> str | None:
    """This machine's address on its local network (the one its default route uses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1; a UDP connect sends nothing
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_unspecified else address


def base_urls(host: str, port: int) -> list[str]:
    """Where a browser opens the demo: one URL per address it is reachable at."""
    if host in ("0.0.0.0", ""):
        lan = _lan_address()
        hosts = [h for h in ("127.0.0.1", lan) if h is not None]
    else:
        hosts = [host]
    return [f"http://{h}:{port}" for h in hosts]


def host_warning(host: str, port: int) -> str | None:
    """What `--host` exposes, when it is not a loopback address; None when it is."""
    if _is_loopback(host):
        return None
    where = "every network this machine is on" if host in ("0.0.0.0", "") else f"{host}"
    return (
        f"  WARNING: --host {host} opens the demo to {where}, port {port}:\n"
        "    - anyone who can reach it and has the demo password below sees every resident's\n"
        "      name, bed, alerts and history, and can acknowledge and resolve alerts;\n"
        "    - plain HTTP, no TLS: the password and session cookies cross the network in the\n"
        "      clear, readable by anyone on it (so phones will not offer push or app install);\n"
        "    - the residents are simulated, but what you type (names, phone numbers) is not.\n"
        "    Use it on a network you trust, and stop the demo (Ctrl-C) when you are done.\n"
    )


def announce(options: DemoOptions, hub: Hub, password: str, home: DemoHome) -> None:
    """The start banner: the last thing the demo prints while it runs."""
    gateways = len({b.gateway for b in home.beds})
    family = [b for b in home.beds if b.zone == "family"]
    urls = base_urls(options.web_host, hub.web_port)
    url = urls[-1] if len(urls) > 1 else urls[0]  # the LAN address, when there is one
    others = "".join(f"  Also at:       {other}/\n" for other in urls if other != url)
    assert hub.escalation is not None
    roster, now = hub.escalation.roster, hub.escalation.clock.now()  # the hub's own answer
    shifts = "/".join(shift.name for shift in roster.shifts_at(SITE, now)) or "no"
    on_duty = ", ".join(roster.everyone_on_duty(SITE, now))
    people = "".join(f"    {p.username:<13} {p.name}, {p.does}\n" for p in STAFF)
    families = ", ".join(family_username(bed) for bed in family)
    log_line = (
        "  Logs:          shown above (--verbose)\n"
        if options.verbose
        else f"  Logs:          {options.workdir / LOG_FILE}\n"
    )
    uncovered = home.bed(UNCOVERED_BED)
    print(
        f"\ncarewatch demo is running: {len(home.beds)} beds "
        f"({len(home.beds) - len(family)} in {SITE_NAME}, {len(family)} family beds), "
        f"{gateways} gateways.\n"
        + (host_warning(options.web_host, hub.web_port) or "")
        + f"  Staff console: {url}/\n"
        f"  Supervisor:    {url}/supervisor\n"
        f"  Roster:        {url}/roster\n"
        f"  Family app:    {url}/family\n"
        f"  Installer:     {url}/installer\n"
        + others
        + f"  Log in as nurse (console), manager (supervisor) or "
        f"{family_username(family[-1])} (family app)\n"
        f"  Password (every demo user): {password}\n"
        f"  Users (same password); on duty now ({shifts} shift): {on_duty}\n"
        + people
        + f"    {families}: the families of the two family beds\n"
        f"  Care service phone: {CARE_SERVICE_PHONE}\n"
        "  The night starts when you open the console (or in "
        f"{NIGHT_WAITS_S:g} s): within its first minute\n"
        "  a fall (bed SR-E-104), a call button in the Garden suite "
        f"({UNCOVERED_BED}, {uncovered.resident}),\n"
        "  a call button (family bed FB-OKAFOR) and a smoke alarm (West lounge).\n"
        "  The Garden suite is on nobody's roster (a trouble alert says so at once): its call\n"
        "  reaches nobody at first, so you see NOBODY REACHED and the fallback to the charge\n"
        "  nurse, the manager and every console. An alarm reaches a person only on an open\n"
        "  console or a phone subscribed to push; with none, every alarm is NOBODY REACHED.\n"
        + log_line
        + f"  Data:          {options.workdir}\n"
        + (
            f"  Stopping by itself after {options.duration:g} s.\n"
            if options.duration
            else "  Ctrl-C to stop.\n"
        ),
        flush=True,
    )
