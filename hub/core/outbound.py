"""Where the hub may connect when it sends: never to an internal address, unless allowed.

A supervisor types a contact's Apprise URL; a browser hands the hub a push endpoint. Either
could point the hub at something inside the network it runs in (the cloud's metadata service
at 169.254.169.254, Redis on 127.0.0.1, a router's admin page), and the hub would POST an alert
to it: server-side request forgery. So outbound deliveries (Apprise, push) refuse loopback,
link-local, private, unique-local, multicast, unspecified and reserved addresses, IPv4 and IPv6
(an IPv4 address mapped into IPv6, 6to4 or NAT64 is judged by the IPv4 address it carries),
unless an administrator lists the host in `outbound.allowed_hosts` (`OutboundSettings`, the
hub configuration's `outbound:` section).

There are three checks, all made with this module:

- when a URL is saved: `host_problem`, the host as written and every address its name
  resolves to (a name that does not resolve now is accepted: the next two checks remain);
- when it is used: `host_problem` again, just before sending (DNS answers change);
- while it is used: `guard()`. Every TCP connection and UDP datagram that code run inside the
  guard opens, in this thread or in a worker started with a copy of its context (Apprise's
  own worker pool does that), is checked against the address actually connected to. This
  covers redirects, DNS that answers differently a second time, and services that make their
  own connections (SMTP, MQTT). It is a Python audit hook on `socket.connect`,
  `socket.sendto` and `socket.sendmsg`, installed once and idle outside a guard.

Allowing a host allows every address it resolves to, on every port. The guard also accepts
an address that belongs to any host listed exactly (a proxy the hub must use, say).
"""

from __future__ import annotations

import contextvars
import errno
import ipaddress
import re
import socket
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SETTING: Final = "outbound.allowed_hosts"
RESOLVE_TIMEOUT_S: Final = 3.0
_SHARED_V4: Final = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")  # carries an IPv4 address (RFC 6052)
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)
_UNIQUE_LOCAL: Final = ipaddress.IPv6Network("fc00::/7")
_GUARDED_EVENTS: Final = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_INET: Final = frozenset({socket.AF_INET, socket.AF_INET6})
# DNS lookups with a time limit; a lookup that takes too long is given up on, not waited for.
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="carewatch-resolve")


def address_kind(address: IPAddress) -> str | None:
    """What kind of internal address this is ('loopback', 'private', …); None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour
        if address in _NAT64:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            return address_kind(carried)
        if address in _NAT64_LOCAL:
            return "private"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv6Address):
        if address in _UNIQUE_LOCAL:
            return "unique-local"
        if address.is_site_local:
            return "site-local"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global or address in _SHARED_V4:
        return "non-public"
    return None


def ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP address names (`[::1]` too); None for a name."""
    text = host.strip().removeprefix("[").removesuffix("]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def normal_host(host: str) -> str:
    """A host as compared with the allowed list: lower case, no brackets, no final dot."""
    literal = ip_literal(host)
    if literal is not None:
        return str(literal)
    return host.strip().lower().rstrip(".")


def resolve(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address `host` resolves to now; [] if it does not resolve (or not in time)."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    try:
        future = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        answers = future.result(timeout=RESOLVE_TIMEOUT_S)
    except (OSError, UnicodeError, FutureTimeout, RuntimeError):
        return []
    found: list[IPAddress] = []
    for family, *_, sockaddr in answers:
        if family in _INET:
            address = ip_literal(str(sockaddr[0]))
            if address is not None and address not in found:
                found.append(address)
    return found


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """The hosts an administrator allows although they are internal (`outbound.allowed_hosts`):
    exact names or addresses, or `*.domain` for every host under a domain."""

    allowed_hosts: tuple[str, ...] = ()

    @classmethod
    def of(cls, hosts: Iterable[str]) -> OutboundPolicy:
        return cls(tuple(normal_host(host) for host in hosts))

    def allows(self, host: str) -> bool:
        """Whether the administrator listed this host (so its addresses are not checked)."""
        name = normal_host(host)
        return any(
            name.endswith(entry[1:]) if entry.startswith("*.") else name == entry
            for entry in self.allowed_hosts
        )

    def host_problem(
        self, host: str, port: int | None = None, *, lookup: bool = True
    ) -> str | None:
        """Why the hub must not connect to `host`, as `host 10.0.0.5, private`; None if it may.

        With `lookup`, a name is resolved (this blocks: call it off the event loop) and refused
        if any of its addresses is internal; a name that does not resolve is not refused here.
        """
        if self.allows(host):
            return None
        name = normal_host(host)
        literal = ip_literal(name)
        if literal is not None:
            kind = address_kind(literal)
            return None if kind is None else f"host {name}, {kind}"
        if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: always loopback
            return f"host {name}, loopback"
        if not lookup:
            return None
        kinds = sorted({kind for a in resolve(name, port) if (kind := address_kind(a))})
        return f"host {name}, which resolves to a {' and '.join(kinds)} address" if kinds else None

    @contextmanager
    def guard(self, hosts: Sequence[str] = ()) -> Iterator[Guard]:
        """Refuse, while inside, every connection to an internal address that no allowed host
        has. `hosts`: the hosts the delivery names (an allowed one's addresses are accepted)."""
        _install_hook()
        guard = Guard(self, tuple(host for host in hosts if self.allows(host)))
        token = _active.set(guard)
        try:
            yield guard
        finally:
            _active.reset(token)


def private_refusal(what: str, problem: str) -> str:
    """The words a person can act on: `what` (a service, an endpoint) and why."""
    return (
        f"{what} ({problem}) points at a private address; "
        f"an administrator can allow it with {SETTING}"
    )


class OutboundRefused(ConnectionRefusedError):
    """Raised inside a guard instead of connecting; HTTP and mail clients see a refused
    connection and fail as they would for a service that is down."""


@dataclass(slots=True)
class Guard:
    """One delivery's check of the addresses it connects to; `refused` says what it stopped."""

    policy: OutboundPolicy
    hosts: tuple[str, ...]
    refused: list[str] = field(default_factory=list)
    _permitted: frozenset[IPAddress] | None = None

    def check(self, family: int, address: Any) -> None:
        if family not in _INET:
            return  # Unix sockets and the like are not network addresses
        host = address[0] if isinstance(address, tuple) and address else None
        if not isinstance(host, str):
            self._refuse("an address that cannot be checked")
        literal = ip_literal(host)
        candidates = [literal] if literal is not None else resolve(host)
        if not candidates:  # "", "<broadcast>", or a name that does not resolve for us
            self._refuse("an address that cannot be checked")
        for candidate in candidates:
            kind = address_kind(candidate)
            if kind is not None and candidate not in self.permitted():
                self._refuse(f"a {kind} address")

    def permitted(self) -> frozenset[IPAddress]:
        """Addresses of the allowed hosts, looked up once, when first needed."""
        if self._permitted is None:
            names = {*self.hosts, *(h for h in self.policy.allowed_hosts if not h.startswith("*."))}
            self._permitted = frozenset(a for name in names for a in resolve(name))
        return self._permitted

    def _refuse(self, what: str) -> NoReturn:
        self.refused.append(what)
        raise OutboundRefused(errno.ECONNREFUSED, f"carewatch refused a connection to {what}")


_active: contextvars.ContextVar[Guard | None] = contextvars.ContextVar(
    "carewatch_outbound_guard", default=None
)
_hook_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _GUARDED_EVENTS:
        return
    guard = _active.get()
    if guard is None or len(args) < 2 or args[1] is None:
        return
    guard.check(getattr(args[0], "family", -1), args[1])


def _install_hook() -> None:
    """Audit hooks cannot be removed: install ours once, for the life of the process."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True


# A host name, or "*.domain" for every host under it.
HOST_NAME = r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?"


class OutboundSettings(BaseModel):
    """The `outbound:` section of the hub configuration: internal hosts the hub may send to
    after all (docs/configuration.md)."""

    model_config = ConfigDict(extra="forbid")

    # Apprise services and push endpoints at loopback, private, link-local … addresses are
    # refused unless their host is listed here: exact names or addresses, or "*.domain".
    allowed_hosts: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if ip_literal(host) is None and not re.fullmatch(HOST_NAME, host):
                raise ValueError(f"{host!r} is not a host name, an IP address or *.domain")
        return hosts

    def policy(self) -> OutboundPolicy:
        return OutboundPolicy.of(self.allowed_hosts)
