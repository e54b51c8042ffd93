"""A real push service on loopback, for tests: it checks what a Web Push sender sends.

Each test subscription has its own P-256 key pair and auth secret, made here the way a
browser makes them. A POST to `/push/<id>` must carry a valid VAPID header (an ES256 JWT for
this origin, not expired, with a contact, signed by the key it names) and an aes128gcm body
that decrypts with that subscription's keys (RFC 8291). Good messages are answered 201 and
kept, decrypted, with their TTL, Urgency and Topic headers. A subscription can be told to
answer 410 Gone, as a push service does when the browser has unsubscribed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import http_ece
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class BrowserKeys:
    """What a browser keeps for one push subscription: its ECDH key pair and auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @classmethod
    def new(cls) -> BrowserKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16))

    @property
    def p256dh(self) -> str:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(public)

    def subscription(self, endpoint: str) -> dict[str, Any]:
        """As `PushSubscription.toJSON()` gives it."""
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }


@dataclass(frozen=True)
class Delivered:
    """One push the receiver accepted: its headers, VAPID claims and decrypted message."""

    subscription: str
    ttl: int
    urgency: str | None
    topic: str | None
    vapid_key: str
    claims: dict[str, Any]
    size: int
    message: dict[str, Any]


class Refused(Exception):
    pass


@dataclass
class PushReceiver:
    host: str = "127.0.0.1"
    delivered: list[Delivered] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why a POST was refused
    answered_gone: list[str] = field(default_factory=list)
    _keys: dict[str, BrowserKeys] = field(default_factory=dict)
    _gone: set[str] = field(default_factory=set)
    _port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Told (in the push service's own thread or loop) when each push is accepted and decrypted.
    on_push: Callable[[float, Delivered], None] | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self._port}"

    def new_subscription(self) -> tuple[str, BrowserKeys, dict[str, Any]]:
        """(id, the browser's keys, the subscription JSON to give the hub)."""
        sub_id = secrets.token_urlsafe(12)
        keys = BrowserKeys.new()
        self._keys[sub_id] = keys
        return sub_id, keys, keys.subscription(f"{self.origin}/push/{sub_id}")

    def answer_gone(self, sub_id: str) -> None:
        self._gone.add(sub_id)

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` pushes have been answered in all (delivered, gone or refused)."""

        async def arrived() -> None:
            while len(self.delivered) + len(self.refused) + len(self.answered_gone) < count:
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(arrived(), timeout)

    async def __aenter__(self) -> PushReceiver:
        # Named TCP so that asyncio sets TCP_NODELAY on the connections it accepts: else each
        # push after the first on a kept-alive connection waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((self.host, 0))
        sock.listen(16)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/push/{sub_id}", self._push, methods=["POST"])])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        # The socket already listens: a push sent before the server runs waits in its backlog.
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task

    async def _push(self, request: Request) -> PlainTextResponse:
        try:
            response = await self._accept(request)
            if response.status_code == 201 and self.on_push is not None:
                self.on_push(time.time(), self.delivered[-1])
            return response
        finally:
            self._arrived.set()

    async def _accept(self, request: Request) -> PlainTextResponse:
        sub_id = request.path_params["sub_id"]
        keys = self._keys.get(sub_id)
        if keys is None:
            self.refused.append(f"{sub_id}: no such subscription")
            return PlainTextResponse("no such subscription", 404)
        if sub_id in self._gone:
            self.answered_gone.append(sub_id)
            return PlainTextResponse("gone", 410)
        body = await request.body()
        try:
            vapid_key, claims = verify_vapid(request.headers.get("authorization", ""), self.origin)
            if request.headers.get("content-encoding") != "aes128gcm":
                raise Refused(f"content-encoding {request.headers.get('content-encoding')!r}")
            ttl = int(request.headers["ttl"])
            plain = http_ece.decrypt(
                body, private_key=keys.private_key, auth_secret=keys.auth, version="aes128gcm"
            )
            message = json.loads(plain)
        except (Refused, KeyError, ValueError, http_ece.ECEException) as exc:
            self.refused.append(f"{sub_id}: {type(exc).__name__}: {exc}")
            return PlainTextResponse(str(exc), 400)
        self.delivered.append(
            Delivered(
                sub_id,
                ttl,
                request.headers.get("urgency"),
                request.headers.get("topic"),
                vapid_key,
                claims,
                len(plain),
                message,
            )
        )
        return PlainTextResponse("", 201)


def verify_vapid(header: str, audience: str) -> tuple[str, dict[str, Any]]:
    """(the sender's public key, the JWT claims) of a valid `vapid t=…,k=…` header (RFC 8292)."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "vapid":
        raise Refused(f"authorization scheme {scheme!r}, not vapid")
    fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
    if "t" not in fields or "k" not in fields:
        raise Refused("vapid header without t= and k=")
    head, body, signature = fields["t"].split(".")
    if json.loads(unb64url(head)).get("alg") != "ES256":
        raise Refused("the JWT is not ES256")
    raw = unb64url(signature)
    if len(raw) != 64:
        raise Refused("the ES256 signature is not 64 bytes")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Refused("the JWT signature does not match the key k") from None
    claims: dict[str, Any] = json.loads(unb64url(body))
    if claims.get("aud") != audience:
        raise Refused(f"aud {claims.get('aud')!r} is not {audience!r}")
    if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
        raise Refused("exp is in the past or more than 24 h ahead")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
        raise Refused("no contact (sub) in the claims")
    return fields["k"], claims


class PushServiceThread:
    """The local push service in a thread with its own event loop: for a caller that is not
    async (a test driving a subprocess), or one whose own loop is busy (a benchmark's hub)."""

    def __init__(self, on_push: Callable[[float, Delivered], None] | None = None) -> None:
        self._on_push = on_push
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._receiver: PushReceiver | None = None
        self._thread = threading.Thread(target=self._run, name="push-service", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        receiver = PushReceiver(on_push=self._on_push)
        async with receiver:
            self._receiver = receiver
            self._started.set()
            await self._stop.wait()

    def __enter__(self) -> PushReceiver:
        self._thread.start()
        self._started.wait(10)
        if self._receiver is None:
            raise RuntimeError("the local push service did not start")
        return self._receiver

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
