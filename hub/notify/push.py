"""Web Push: VAPID keys, the browsers' push subscriptions, and the notifier that pushes alerts.

A phone's browser subscribes with the hub's public VAPID key (`applicationServerKey`) and
gives the hub a push subscription: an endpoint URL at its push service (FCM, Mozilla, Apple,
Windows) and the keys to encrypt for it. The hub encrypts each message for the browser
(RFC 8291, aes128gcm), signs a VAPID token (RFC 8292) and POSTs it to the endpoint (RFC 8030).

- The key pair is made once, on the first start, and kept in the database (`push_vapid`; the
  SQL of the push tables is in `hub/notify/records.py`).
- Endpoints must be at an allowed push service (`push.allowed_hosts`): the hub must not be
  made to POST to arbitrary, perhaps internal, URLs. Nor to an internal address at all
  (hub/core/outbound.py) unless `outbound.allowed_hosts` allows its host: checked when a browser
  subscribes, and again, with the name resolved and every connection watched, at each push.
- A push carries an action token so that the notification's own buttons reach the hub
  without a session: the token is the credential. Staff get "I'm going" (acknowledge) and
  "I can't" (decline); a family member "I've seen it", "Send someone" and, where the policy
  makes the family a responder, "I'm handling it".
- A person is pushed only while their account is active and the alert is in their scope now;
  the service worker confirms each push it receives (`confirmed_at` of the subscription), so
  that a phone that has stopped receiving shows as not reachable.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from py_vapid import Vapid02
from py_vapid.utils import b64urlencode
from pywebpush import WebPushException, webpush

from hub.access.permissions import Grant, Principal
from hub.access.users import User
from hub.core.audit import AuditEntry
from hub.core.clock import Clock
from hub.core.errors import DomainError
from hub.core.outbound import OutboundPolicy, private_refusal
from hub.core.store import Store
from hub.notify import records
from hub.notify.base import DeliveryResult, Notification, Recipient
from hub.notify.settings import PushConfig, PushSettings

log = logging.getLogger("carewatch.hub.push")

CHANNEL: Final = "push"
ACTION_SALT: Final = "carewatch-push-action"
ACTION_MAX_AGE_S: Final = 24 * 3600
POST_TIMEOUT_S: Final = 10.0
MAX_SUBSCRIPTIONS_PER_USER: Final = 10
ACCEPTED: Final = frozenset({200, 201, 202})
GONE: Final = frozenset({404, 410})  # the browser unsubscribed, or the subscription expired
URGENT: Final = frozenset({"emergency", "urgent"})

# The buttons of a pushed notification, most important first (Chrome shows two).
Audience = Literal["staff", "family"]
STAFF_ACTIONS: Final = (
    {"action": "acknowledge", "title": "I'm going"},
    {"action": "decline", "title": "I can't"},
)
SEEN: Final = {"action": "seen", "title": "I've seen it"}
SEND_SOMEONE: Final = {"action": "send_someone", "title": "Send someone"}
HANDLING: Final = {"action": "handling", "title": "I'm handling it"}
# An endpoint is a plain URL: no spaces, backslashes or user info that parsers might read
# differently from one another.
_URL_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]!$&'()*+,;=%]+")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class PushError(DomainError):
    """A request the push side refuses; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    username: str
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str
    created_at: float
    last_result: str | None
    last_at: float | None
    failures: int
    confirmed_at: float | None = None  # when its browser last confirmed receiving a push

    def info(self) -> dict[str, Any]:
        """As pywebpush wants it: the browser's `PushSubscription.toJSON()`."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}

    def public(self) -> dict[str, Any]:
        """What its owner sees: everything but the encryption keys."""
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "host": urlsplit(self.endpoint).hostname,
            "user_agent": self.user_agent,
            "created_at": self.created_at,
            "last_result": self.last_result,
            "last_at": self.last_at,
            "failures": self.failures,
            "confirmed_at": self.confirmed_at,
        }


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What one push service answered: an HTTP status, or why there was no answer."""

    status: int | None
    error: str = ""

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED

    @property
    def gone(self) -> bool:
        return self.status in GONE

    def __str__(self) -> str:
        return str(self.status) if self.status is not None else self.error


@dataclass(frozen=True, slots=True)
class ActionClaim:
    """Who may act on which alert, as an action token says. Only a claim: whoever uses it is
    checked against the user as they are then (active, a role that acts on alerts, the alert in
    their scope; `hub/notify/routes.py`), not as they were when the push was sent."""

    alert_id: int
    username: str
    subscription: int | None = None  # the subscription the push went to (tokens since v0.2)


def endpoint_problem(
    endpoint: str, allowed_hosts: Sequence[str], outbound: OutboundPolicy | None = None
) -> str | None:
    """Why the hub must not POST to `endpoint`, or None when it may.

    With `outbound`, an endpoint whose host is written as an internal address (or is
    `localhost`) is refused too unless `outbound.allowed_hosts` lists it; names are resolved
    and checked when the hub sends (`PushService._post`), not here.
    """
    if not _URL_CHARS.fullmatch(endpoint):
        return "the endpoint is not a plain URL"
    parts = urlsplit(endpoint)
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError:
        return "the endpoint's port is not valid"
    host = (parts.hostname or "").lower()
    if not host or "@" in parts.netloc:
        return "the endpoint has no plain host"
    listed = host in allowed_hosts
    under = any(h.startswith("*.") and host.endswith(h[1:]) for h in allowed_hosts)
    if not (listed or under):
        return f"push service {host!r} is not allowed here (push.allowed_hosts)"
    if not (parts.scheme == "https" or (parts.scheme == "http" and listed and _loopback(host))):
        return "the endpoint must use https"
    private = outbound.host_problem(host, lookup=False) if outbound is not None else None
    return private_refusal("the endpoint", private) if private is not None else None


def _loopback(host: str) -> bool:
    """Plain http is for a push service on this machine only (a local test service)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decode_key(value: str, size: int, name: str) -> str:
    """A browser key, checked: base64url of `size` bytes; returned without padding."""
    if not _B64URL.fullmatch(value):
        raise PushError(422, f"{name} is not base64url")
    unpadded = value.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise PushError(422, f"{name} is not base64url") from None
    if len(raw) != size:
        raise PushError(422, f"{name} must be {size} bytes, not {len(raw)}")
    if name.endswith("p256dh"):
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise PushError(422, f"{name} is not a P-256 public key") from None
    return unpadded


def push_account(recipient: Recipient) -> str | None:
    """The hub account whose subscriptions reach this person."""
    return recipient.user or (recipient.id if recipient.kind == "user" else None)


def vapid_subject(config: PushConfig) -> str:
    """`push.subject`, or an address made from the organisation's name."""
    if config.push.subject:
        return config.push.subject
    slug = re.sub(r"[^a-z0-9]+", "-", config.organisation.lower()).strip("-") or "carewatch"
    return f"mailto:push@{slug[:60]}.invalid"


class ActionTokens:
    """Signed, timed tokens naming an alert and a user (itsdangerous, the web secret key)."""

    def __init__(self, secret_key: str, clock: Clock, max_age_s: int = ACTION_MAX_AGE_S) -> None:
        self._max_age_s = max_age_s
        self._serializer = URLSafeTimedSerializer(
            secret_key, salt=ACTION_SALT, signer=_clock_signer(clock)
        )

    def issue(self, alert_id: int, username: str, subscription: int | None = None) -> str:
        """A token for one push: the alert, the user, and the subscription it went to (so
        that the service worker's receipt names the browser that received it)."""
        data: dict[str, Any] = {"alert": alert_id, "user": username}
        if subscription is not None:
            data["sub"] = subscription
        return self._serializer.dumps(data)

    def read(self, token: str) -> ActionClaim:
        """The claim, or PushError 403 for a token that is expired, tampered with or not ours."""
        try:
            data = self._serializer.loads(token, max_age=self._max_age_s)
        except SignatureExpired:
            raise PushError(403, "this notification is too old to act on; open the app") from None
        except BadData:
            raise PushError(403, "the action token is not valid") from None
        if not (
            isinstance(data, dict)
            and isinstance(data.get("alert"), int)
            and isinstance(data.get("user"), str)
        ):
            raise PushError(403, "the action token is not valid")
        sub = data.get("sub")
        return ActionClaim(data["alert"], data["user"], sub if isinstance(sub, int) else None)


def _clock_signer(clock: Clock) -> type[TimestampSigner]:
    class ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock.now())

    return ClockSigner


class PushService:
    """The VAPID keys, the subscriptions, and sending one push to one subscription."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: PushSettings,
        subject: str,
        vapid: Vapid02,
        tokens: ActionTokens,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.settings = settings
        self.subject = subject
        self._vapid = vapid
        self.tokens = tokens
        self.public_key = b64urlencode(
            vapid.public_key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        self._per_user: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        # Internal hosts an endpoint may have after all (`outbound.allowed_hosts`).
        self._outbound = outbound or OutboundPolicy()
        # Push services never redirect; following one could lead the hub anywhere.
        self._http = requests.Session()
        self._http.max_redirects = 0

    @classmethod
    async def open(
        cls, store: Store, clock: Clock, config: PushConfig, secret_key: str
    ) -> PushService:
        await records.create(store)
        vapid = await _vapid_keys(store, clock)
        tokens = ActionTokens(secret_key, clock)
        service = cls(
            store,
            clock,
            config.push,
            vapid_subject(config),
            vapid,
            tokens,
            config.outbound.policy(),
        )
        await service._load_counts()
        if not config.push.subject:
            log.warning("push.subject is not set; push services are told %s", service.subject)
        return service

    def close(self) -> None:
        self._http.close()

    async def _load_counts(self) -> None:
        self._per_user = Counter(await records.subscription_counts(self._store))

    def has_subscription(self, username: str) -> bool:
        return self._per_user[username] > 0

    def counters(self) -> dict[str, int]:
        return {"subscriptions": sum(self._per_user.values()), **self._counts}

    # --- subscriptions ----------------------------------------------------------------------

    async def subscribe(
        self, username: str, endpoint: str, p256dh: str, auth: str, user_agent: str
    ) -> Subscription:
        """Keep a browser's subscription for `username`; the same endpoint moves to them."""
        problem = endpoint_problem(endpoint, self.settings.allowed_hosts, self._outbound)
        if problem:
            raise PushError(422, problem)
        p256dh = decode_key(p256dh, 65, "keys.p256dh")
        auth = decode_key(auth, 16, "keys.auth")
        now = self._clock.now()
        async with self._store.transaction() as db:
            dropped = await records.put_subscription(
                db,
                (username, endpoint, p256dh, auth, user_agent[:300], now),
                MAX_SUBSCRIPTIONS_PER_USER,
            )
            host = urlsplit(endpoint).hostname
            detail = {"host": host, "user_agent": user_agent[:300], "dropped_oldest": len(dropped)}
            await self._store.audit.record(
                [AuditEntry(now, username, "push_subscribed", CHANNEL, detail)]
            )
        await self._load_counts()
        (stored,) = await self._select(endpoint=endpoint)
        log.info("push subscription %d for %s at %s", stored.id, username, host)
        return stored

    async def unsubscribe(self, username: str, endpoint: str) -> bool:
        """Forget the caller's own subscription; False when they have none at that endpoint."""
        now = self._clock.now()
        async with self._store.transaction() as db:
            if not await records.delete_users_subscription(db, username, endpoint):
                return False
            detail = {"host": urlsplit(endpoint).hostname}
            await self._store.audit.record(
                [AuditEntry(now, username, "push_unsubscribed", CHANNEL, detail)]
            )
        await self._load_counts()
        return True

    async def subscriptions(self, username: str) -> list[Subscription]:
        return await self._select(username=username)

    async def confirm(self, claim: ActionClaim, endpoint: str | None = None) -> Subscription:
        """The service worker received a push: note it on the subscription it went to.

        The subscription is the one the token names (or, for a token from before tokens named
        it, the token user's subscription at `endpoint`). PushError 404 when there is none:
        it was removed, or moved to another user, since the push was sent."""
        if claim.subscription is not None:
            endpoint = None
        elif not endpoint:
            raise PushError(422, "the receipt names no subscription (give its endpoint)")
        now, username, subscription_id = self._clock.now(), claim.username, claim.subscription
        confirmed = await records.confirm(
            self._store, now, username, subscription_id=subscription_id, endpoint=endpoint
        )
        if not confirmed:
            raise PushError(404, "no such push subscription")
        found = await self._select(
            username=username, subscription_id=subscription_id, endpoint=endpoint
        )
        if not found:
            raise PushError(404, "no such push subscription")
        return found[0]

    async def last_confirmed(self, username: str) -> float | None:
        """When a browser of `username` last confirmed receiving a push; None if none ever did
        (or they have no subscription left). The roster shows a phone silent for long as not
        reachable."""
        return await records.last_confirmed(self._store, username)

    async def _select(
        self,
        *,
        username: str | None = None,
        endpoint: str | None = None,
        subscription_id: int | None = None,
    ) -> list[Subscription]:
        rows = await records.subscriptions(
            self._store, username=username, endpoint=endpoint, subscription_id=subscription_id
        )
        return [Subscription(**row) for row in rows]

    # --- sending ----------------------------------------------------------------------------

    async def send(
        self, subscription: Subscription, data: str, *, ttl: int, urgency: str, topic: str
    ) -> PushOutcome:
        """One encrypted, signed push; its result kept on the subscription, a gone one removed."""
        headers = {"Urgency": urgency, "Topic": topic}
        outcome = await asyncio.to_thread(self._post, subscription, data, ttl, headers)
        self._counts["accepted" if outcome.accepted else "failed"] += 1
        if outcome.gone:
            self._counts["removed_gone"] += 1
            await self._forget(subscription, outcome)
        else:
            await self._note(subscription, outcome)
        return outcome

    def _post(
        self, subscription: Subscription, data: str, ttl: int, headers: dict[str, str]
    ) -> PushOutcome:
        """Check the endpoint again (the settings and DNS may have changed since it was
        stored), then POST with every connection checked (hub/core/outbound.py)."""
        endpoint = subscription.endpoint
        problem = endpoint_problem(endpoint, self.settings.allowed_hosts)
        host = urlsplit(endpoint).hostname or ""
        problem = problem or self._outbound.host_problem(host)
        if problem is not None:
            return PushOutcome(None, f"refused ({problem})")
        with self._outbound.guard([host]) as guard:
            outcome = self._webpush(subscription, data, ttl, headers)
        if guard.refused and not outcome.accepted:
            return PushOutcome(None, f"refused (a connection to {guard.refused[0]})")
        return outcome

    def _webpush(
        self, subscription: Subscription, data: str, ttl: int, headers: dict[str, str]
    ) -> PushOutcome:
        try:
            response = webpush(
                subscription.info(),
                data,
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self.subject},  # pywebpush adds aud and exp to this dict
                ttl=ttl,
                headers=dict(headers),
                timeout=POST_TIMEOUT_S,
                requests_session=self._http,
            )
        except WebPushException as exc:
            if exc.status_code is not None:
                return PushOutcome(int(exc.status_code))
            return PushOutcome(None, str(exc.message)[:200])
        except requests.RequestException as exc:
            return PushOutcome(None, f"{type(exc).__name__}: {exc}"[:200])
        return PushOutcome(int(response.status_code))

    async def _note(self, subscription: Subscription, outcome: PushOutcome) -> None:
        await records.note_result(
            self._store, subscription.id, str(outcome), self._clock.now(), outcome.accepted
        )

    async def _forget(self, subscription: Subscription, outcome: PushOutcome) -> None:
        await records.delete_subscription(self._store, subscription.id)
        await self._load_counts()
        log.info(
            "push subscription %d of %s removed: the push service answered %s",
            subscription.id,
            subscription.username,
            outcome,
            extra={"user": subscription.username, "host": urlsplit(subscription.endpoint).hostname},
        )


async def _vapid_keys(store: Store, clock: Clock) -> Vapid02:
    """The hub's key pair; made on the first start (or after it was deleted, to rotate it)."""
    pem = await records.vapid_pem(store)
    if pem is not None:
        return Vapid02.from_pem(pem.encode())
    vapid = Vapid02()
    vapid.generate_keys()
    public = b64urlencode(
        vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    now = clock.now()
    async with store.transaction() as db:
        # Browsers bound their subscriptions to the old key; they must subscribe again.
        dropped = await records.put_vapid(db, vapid.private_pem().decode(), public, now)
        detail = {"public_key": public, "subscriptions_dropped": dropped}
        await store.audit.record([AuditEntry(now, "system", "push_keys_created", CHANNEL, detail)])
    log.info("new VAPID key pair made for Web Push")
    return vapid


class Accounts(Protocol):
    """The seam to the users table (hub/access/users.py `UserStore`)."""

    async def active(self, username: str) -> User | None:
        """The user if they exist and are not disabled, else None."""
        ...


def audience(grant: Grant) -> Audience | None:
    """Whose buttons a push to this account carries: staff (those who act on alerts) answer
    "I'm going" / "I can't", family members "I've seen it" / "Send someone"."""
    if grant.role == "family":
        return "family"
    principal = Principal("", "", grant)
    return "staff" if principal.can("alerts.act") else None


class PushNotifier:
    """Notifier for the escalation engine: pushes an alert to every browser of a person.

    Only to a person whose account is active and who may see the alert now: a disabled user,
    a nurse moved to another wing or a relative who no longer follows the resident is not
    pushed, whatever subscriptions they left behind (the attempt fails, saying why)."""

    channel = CHANNEL

    def __init__(
        self,
        push: PushService,
        accounts: Accounts | None = None,
        family_responder: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self._push = push
        self._accounts = accounts
        self._family_responder = family_responder or (lambda alert: False)

    def accepts(self, recipient: Recipient) -> bool:
        account = push_account(recipient)
        return account is not None and self._push.has_subscription(account)

    async def _audience(self, account: str, alert: dict[str, Any]) -> Audience | str:
        """The account's audience, or why it must not be pushed this alert."""
        if self._accounts is None:  # no users table (tests of the push side alone)
            return "family"
        user = await self._accounts.active(account)
        if user is None:
            return f"{account} is not an active user"
        principal = Principal(user.username, user.name, user.grant, "push")
        who = audience(user.grant)
        if who is None:
            article = "an" if principal.role[0] in "aeiou" else "a"
            return f"{article} {principal.role} does not answer alerts"
        if not principal.sees_alert(alert):
            return f"the alert is outside {account}'s scope"
        return who

    async def send(self, notification: Notification) -> DeliveryResult:
        account = push_account(notification.recipient)
        subscriptions = await self._push.subscriptions(account) if account else []
        if not account or not subscriptions:
            return DeliveryResult(False, "no push subscription")
        alert = notification.alert
        who = await self._audience(account, alert)
        if who not in ("staff", "family"):
            return DeliveryResult(False, f"not pushed: {who}")
        actions = push_actions(
            "staff" if who == "staff" else "family", self._family_responder(alert)
        )
        settings = self._push.settings
        emergency = alert["priority"] == "emergency"
        tokens = self._push.tokens

        def data(subscription: Subscription) -> str:
            token = tokens.issue(int(alert["id"]), account, subscription.id)
            payload = push_payload(notification, token, actions)
            return json.dumps(payload, separators=(",", ":"))

        outcomes = await asyncio.gather(
            *(
                self._push.send(
                    subscription,
                    data(subscription),
                    ttl=settings.emergency_ttl_s if emergency else settings.ttl_s,
                    urgency="high" if alert["priority"] in URGENT else "normal",
                    topic=f"alert-{alert['id']}",
                )
                for subscription in subscriptions
            )
        )
        accepted = sum(outcome.accepted for outcome in outcomes)
        detail = f"{accepted} of {len(outcomes)} subscriptions" + _failures(outcomes)
        log.info(
            "push of alert %s to %s: %s",
            alert["id"],
            account,
            detail,
            extra={"site": alert["site"], "bed": alert.get("bed"), "alert_id": alert["id"]},
        )
        return DeliveryResult(accepted > 0, detail)


def push_actions(who: Audience, family_responder: bool = False) -> list[dict[str, str]]:
    """The notification's buttons for staff or family, most important first."""
    if who == "staff":
        return [dict(action) for action in STAFF_ACTIONS]
    if family_responder:
        return [dict(HANDLING), dict(SEND_SOMEONE), dict(SEEN)]
    return [dict(SEEN), dict(SEND_SOMEONE)]


def push_payload(
    notification: Notification, action_token: str, actions: Sequence[dict[str, str]] = ()
) -> dict[str, Any]:
    """What the service worker shows; kept well under 3 KB (push services take about 4)."""
    alert = notification.alert
    rule = str(alert["rule"]).replace("_", " ").capitalize()
    who = alert.get("resident_name") or alert.get("bed") or alert.get("site")
    return {
        "alert_id": alert["id"],
        "rule": alert["rule"],
        "priority": alert["priority"],
        "phase": notification.phase,
        "title": _clip(f"{rule}: {who}" if who else rule, 120),
        "body": _clip(notification.text, 400),
        "resident_name": _clip(alert.get("resident_name"), 100),
        "bed": _clip(alert.get("bed"), 64),
        "opened_at": alert["opened_at"],
        "url": f"/family#alert={alert['id']}",
        "action_token": action_token,
        "actions": list(actions),
    }


def _clip(text: Any, size: int) -> Any:
    if isinstance(text, str) and len(text) > size:
        return text[: size - 1] + "…"
    return text


def _failures(outcomes: Iterable[PushOutcome]) -> str:
    failed = [str(outcome) for outcome in outcomes if not outcome.accepted]
    gone = sum(outcome.gone for outcome in outcomes)
    text = f"; failed: {', '.join(failed)}" if failed else ""
    return text + (f"; {gone} expired subscription(s) removed" if gone else "")
