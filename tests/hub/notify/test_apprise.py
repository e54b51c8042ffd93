"""Apprise fallback channels against real services on loopback: a JSON webhook, an SMTP server
(aiosmtpd) and an ntfy-style HTTP endpoint; and contacts' Apprise URLs checked at input."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from hub.core.outbound import OutboundPolicy
from hub.notify.apprise_channel import AppriseNotifier
from hub.notify.base import DeliveryResult, Notification, Recipient
from hub.registry.contact_urls import url_problem
from hub.registry.csv_import import ImportRejected, import_csv
from hub.registry.models import Contact, RegistryError, Resident, parse_record
from tests.conftest import ADMIN, HubFactory
from tests.hub.registry.test_registry import T0, small

# The services below run on this machine: allowed explicitly, as an administrator would
# (outbound.allowed_hosts); anything else internal is refused
# (tests/hub/notify/test_outbound_and_exports.py).
LOOPBACK = OutboundPolicy.of(["127.0.0.1"])
OPENED_0300 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC).timestamp()
FALL_ALERT: dict[str, Any] = {
    "id": 7,
    "rule": "fall",
    "priority": "emergency",
    "site": "sunrise",
    "zone_name": "East wing",
    "room_name": "101",
    "bed": "SR-E-101",
    "resident_name": "Mary Jones",
    "opened_at": OPENED_0300,
}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackHttp:
    """A small HTTP server on 127.0.0.1 that answers every POST with 200 and keeps it."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        kept = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                kept.append(Received(self.path, headers, self.rfile.read(length)))
                reply = b'{"id": "m1", "event": "message"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackHttp:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def http_endpoint() -> Iterator[LoopbackHttp]:
    with LoopbackHttp() as server:
        yield server


def closed_port() -> int:
    """A loopback port nothing listens on: a service that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server accepted: messages, envelope recipients and the logins used."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"mail-s3cret")


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """aiosmtpd on loopback: plain SMTP with AUTH allowed without TLS (loopback only)."""
    mailbox, port = Mailbox(), closed_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def notification(*urls: str, **alert: Any) -> Notification:
    daughter = Recipient("contact", "Anna Jones", "Anna Jones", apprise=urls)
    return Notification({**FALL_ALERT, **alert}, daughter, 2, "escalate", "family_contacts")


EXPECTED_BODY = [
    "Alert: fall (emergency) Mary Jones · SR-E-101 · East wing",
    "Resident: Mary Jones",
    "Bed: SR-E-101, room 101, East wing",
    "Since: 03:00 on 22 Nov 2026 (UTC)",
]


async def test_a_json_webhook_receives_the_alert(http_endpoint: LoopbackHttp) -> None:
    url = f"json://127.0.0.1:{http_endpoint.port}/hook"

    result = await AppriseNotifier(outbound=LOOPBACK).send(notification(url))

    assert result == DeliveryResult(True, "json ok")
    (posted,) = http_endpoint.received
    assert posted.path == "/hook"
    payload = posted.json()
    assert payload["title"] == "EMERGENCY: fall · Mary Jones"
    assert payload["message"].splitlines() == EXPECTED_BODY
    assert payload["type"] == "failure"


async def test_a_family_contact_is_given_the_care_service_number(
    http_endpoint: LoopbackHttp,
) -> None:
    url = f"json://127.0.0.1:{http_endpoint.port}/hook"
    with_number = dataclasses.replace(notification(url), call="+44 20 7946 0999")

    result = await AppriseNotifier(outbound=LOOPBACK).send(with_number)

    assert result.delivered, result
    (posted,) = http_endpoint.received
    assert posted.json()["message"].splitlines() == [
        *EXPECTED_BODY,
        "Care service: +44 20 7946 0999",
    ]


async def test_an_email_reaches_a_plain_smtp_server_with_the_contacts_login(
    smtp_server: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp_server
    url = (
        f"mailto://carewatch:mail-s3cret@127.0.0.1:{port}"
        "?from=hub@sunrise.example&to=anna@family.example&mode=insecure"
    )

    result = await AppriseNotifier(outbound=LOOPBACK).send(notification(url, priority="trouble"))

    assert result == DeliveryResult(True, "mailto ok")
    assert mailbox.logins == [("carewatch", "mail-s3cret")]
    assert mailbox.recipients == [["anna@family.example"]]
    (mail,) = mailbox.messages
    assert mail["Subject"] == "TROUBLE: fall · Mary Jones"
    body = mail.get_body(("plain", "html"))
    assert body is not None
    assert "Bed: SR-E-101, room 101, East wing" in body.get_content()


async def test_a_refused_login_is_a_failed_attempt_that_names_no_secret(
    smtp_server: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp_server
    url = f"mailto://carewatch:wrong-pw@127.0.0.1:{port}?from=hub@sunrise.example&mode=insecure"

    result = await AppriseNotifier(outbound=LOOPBACK).send(notification(url))

    assert result == DeliveryResult(False, "mailto failed")
    assert mailbox.logins == [("carewatch", "wrong-pw")]
    assert mailbox.messages == []


@pytest.mark.parametrize(
    ("query", "priority", "expected"),
    [
        ("", "emergency", "max"),  # wakes the phone: ntfy's top ("urgent") priority
        ("?priority=high", "emergency", "high"),  # the contact's own choice is kept
        ("", "routine", None),
    ],
)
async def test_ntfy_gets_the_urgent_priority_for_an_alert_that_must_wake_someone(
    http_endpoint: LoopbackHttp, query: str, priority: str, expected: str | None
) -> None:
    url = f"ntfy://127.0.0.1:{http_endpoint.port}/carewatch-anna{query}"

    result = await AppriseNotifier(outbound=LOOPBACK).send(notification(url, priority=priority))

    assert result == DeliveryResult(True, "ntfy ok")
    (posted,) = http_endpoint.received
    assert posted.headers.get("x-priority") == expected
    payload = posted.json()
    assert payload["topic"] == "carewatch-anna"
    assert payload["title"] == f"{priority.upper()}: fall · Mary Jones"


async def test_each_service_is_tried_and_counted_on_its_own(http_endpoint: LoopbackHttp) -> None:
    up = f"json://127.0.0.1:{http_endpoint.port}/hook"
    down = f"json://127.0.0.1:{closed_port()}/hook"
    ntfy_down = f"ntfy://user:ntfy-s3cret@127.0.0.1:{closed_port()}/topic"

    partly = await AppriseNotifier(outbound=LOOPBACK).send(notification(down, up, ntfy_down))
    nobody = await AppriseNotifier(outbound=LOOPBACK).send(notification(ntfy_down))

    assert partly == DeliveryResult(True, "json#1 failed, json#2 ok, ntfy failed")
    assert nobody == DeliveryResult(False, "ntfy failed")
    assert len(http_endpoint.received) == 1


async def test_a_contact_without_urls_now_is_not_reached() -> None:
    notifier = AppriseNotifier(outbound=LOOPBACK)

    assert not notifier.accepts(Recipient("contact", "Anna Jones", "Anna Jones"))
    assert await notifier.send(notification()) == DeliveryResult(
        False, "no Apprise URL for this contact now"
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ntfy.sh/topic", "not an Apprise URL"),
        ("fax://user:tok-123@example.org", "Apprise has no service fax://"),
        ("tgram://bot-s3cret", "the Telegram URL (tgram://…) is incomplete or has a wrong part"),
        ("json://a b", "one word without spaces"),
    ],
)
def test_an_unusable_url_is_explained_without_its_secrets(url: str, says: str) -> None:
    problem = url_problem(url)

    assert problem is not None and says in problem
    assert "s3cret" not in problem and "tok-123" not in problem


def test_a_contact_is_reachable_by_push_or_apprise_alone_and_keeps_at_most_five_urls() -> None:
    by_push = parse_record(Contact, {"name": "Anna", "relation": "family", "user": "anna"})
    by_ntfy = parse_record(
        Contact, {"name": "Ben", "relation": "family", "notify": [" ntfy://ntfy.sh/ben "]}
    )

    assert (by_push.user, by_ntfy.notify) == ("anna", ["ntfy://ntfy.sh/ben"])
    with pytest.raises(RegistryError, match="needs a way to be reached"):
        parse_record(Contact, {"name": "Cy", "relation": "family"})
    with pytest.raises(RegistryError, match="at most 5"):
        urls = [f"ntfy://ntfy.sh/t{n}" for n in range(6)]
        parse_record(Contact, {"name": "Di", "relation": "family", "notify": urls})
    with pytest.raises(RegistryError, match="user: String should match pattern"):
        parse_record(Contact, {"name": "Ed", "relation": "family", "user": "ed jones"})


async def test_the_registry_api_refuses_a_contact_with_a_bad_apprise_url(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory()
    contact = {
        "name": "Anna Jones",
        "relation": "family",
        "notify": ["ntfy://ntfy.sh/anna", "tgram://bot-s3cret"],
    }
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        logged_in = await client.post(
            "/api/login", json={"username": ADMIN[0], "password": ADMIN[1]}
        )
        csrf = {"X-CSRF-Token": logged_in.json()["csrf_token"]}
        refused = await client.patch(
            "/api/residents/E-0001", json={"contacts": [contact]}, headers=csrf
        )
        good = {**contact, "notify": contact["notify"][:1], "user": "daughter"}
        accepted = await client.patch(
            "/api/residents/E-0001", json={"contacts": [good]}, headers=csrf
        )

    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert detail.startswith("contacts.0.notify: URL 2: the Telegram URL (tgram://…) is incomplete")
    assert "s3cret" not in refused.text
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["contacts"] == [
        {
            "name": "Anna Jones",
            "relation": "family",
            "phone": None,
            "email": None,
            "user": "daughter",
            "notify": ["ntfy://ntfy.sh/anna"],
        }
    ]


def test_a_csv_gives_contacts_a_user_and_several_urls_and_refuses_a_bad_url() -> None:
    header = "code,name,contact1_name,contact1_relation,contact1_user,contact1_notify"
    good = "E-0301,Grace Ng,Alan Ng,family,alan.ng,ntfy://ntfy.sh/alan  mailto://alan@example.org"
    data = small()

    import_csv(data, "residents", f"{header}\n{good}\n", T0)
    with pytest.raises(ImportRejected) as caught:
        import_csv(data.copy(), "residents", f"{header}\nE-0302,Obi Ode,Ada,family,,sms://x\n", T0)

    (alan,) = data.get(Resident, ("E-0301",)).contacts
    assert (alan.user, alan.notify) == (
        "alan.ng",
        ["ntfy://ntfy.sh/alan", "mailto://alan@example.org"],
    )
    (problem,) = caught.value.problems
    assert problem.line == 2
    assert "contacts.0.notify: URL 1: Apprise has no service sms://" in problem.problem
