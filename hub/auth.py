"""Who is asking: password login into a signed session cookie, or an API token.

Passwords are argon2id hashes (argon2-cffi). A session carries a CSRF token that every
state-changing request made with the cookie must echo in the X-CSRF-Token header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request

from hub.config import TokenSpec, UserSpec

_hasher = PasswordHasher()
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    via: str


class Authenticator:
    def __init__(self, users: list[UserSpec], tokens: list[TokenSpec]) -> None:
        self._users = {user.username: user for user in users}
        self._tokens = tokens
        # Verifying against a real hash for unknown users keeps login timing uniform.
        self._decoy_hash = _hasher.hash(secrets.token_hex(16))

    def check_password(self, username: str, password: str) -> bool:
        user = self._users.get(username)
        try:
            return _hasher.verify(user.password_hash if user else self._decoy_hash, password) and (
                user is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def display_name(self, username: str) -> str:
        user = self._users.get(username)
        return (user.display_name or user.username) if user else username

    def _token_principal(self, header: str) -> Principal | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        digest = token_digest(token.strip())
        for spec in self._tokens:
            if hmac.compare_digest(spec.sha256, digest):
                return Principal(f"token:{spec.name}", "api")
        return None

    def principal(self, request: Request) -> Principal:
        """The caller, or 401; cookie callers must also pass the CSRF check on writes."""
        header = request.headers.get("authorization")
        if header:
            principal = self._token_principal(header)
            if principal is None:
                raise HTTPException(401, "invalid API token")
            return principal
        username = request.session.get("user")
        if not isinstance(username, str) or username not in self._users:
            raise HTTPException(401, "log in first")
        if request.method not in SAFE_METHODS:
            expected = request.session.get("csrf", "")
            given = request.headers.get("x-csrf-token", "")
            if not (expected and hmac.compare_digest(str(expected), given)):
                raise HTTPException(403, "missing or wrong X-CSRF-Token header")
        return Principal(username, "console")


def start_session(request: Request, username: str) -> str:
    request.session.clear()
    csrf = secrets.token_urlsafe(32)
    request.session.update({"user": username, "csrf": csrf})
    return csrf
