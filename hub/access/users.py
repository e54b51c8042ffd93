"""Hub users and API tokens, kept in the database (their SQL: `hub/access/records.py`).

Users declared in the config file (`users:`, `tokens:`) are written into the database at every
start and are managed there only; `carewatch users` manages the others. Only argon2 hashes of
passwords and SHA-256 digests of tokens are stored.

A user's `session_gen` goes up when their password, role or scope changes or when they are
disabled, and in the same transaction every web session of theirs is deleted
(`hub/access/sessions.py`): each copy of their session cookies stops at once, even when the change
is made by `carewatch users` while the hub runs.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from argon2 import PasswordHasher

from hub.access import records
from hub.access.permissions import ROLE_PERMISSIONS, Grant
from hub.core.audit import AuditEntry
from hub.core.store import Store

Source = Literal["config", "cli", "api"]
USERNAME_PATTERN: Final = r"^[A-Za-z0-9._@-]{1,64}$"
CACHE_S: Final = 2.0  # how long a read of the users table is trusted (the CLI may change it)
_hasher = PasswordHasher()


class UserError(ValueError):
    """A change to users that cannot be made; the message says why and what to do."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class User:
    username: str
    display_name: str | None
    grant: Grant
    password_hash: str
    source: Source
    disabled: bool
    session_gen: int

    @property
    def name(self) -> str:
        return self.display_name or self.username

    def public(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "name": self.name,
            **self.grant.model_dump(),
            "source": self.source,
            "disabled": self.disabled,
        }


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    sha256: str
    username: str | None  # acts as this user; None: a config token with its own grant
    grant: Grant | None
    source: Source
    revoked: bool


@dataclass(frozen=True, slots=True)
class ConfigUser:
    username: str
    display_name: str | None
    password_hash: str
    grant: Grant


@dataclass(frozen=True, slots=True)
class ConfigToken:
    name: str
    sha256: str
    grant: Grant


@dataclass
class _Snapshot:
    users: dict[str, User]
    tokens: dict[str, Token]  # by digest
    read_at: float


class UserStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._snapshot: _Snapshot | None = None

    @classmethod
    async def open(cls, store: Store) -> UserStore:
        await records.create(store)
        return cls(store)

    # --- reads ------------------------------------------------------------------------------

    async def _current(self) -> _Snapshot:
        snap = self._snapshot
        if snap is None or time.monotonic() - snap.read_at > CACHE_S:
            snap = self._snapshot = await self._read()
        return snap

    async def _read(self) -> _Snapshot:
        users = {row["username"]: _user(row) for row in await records.users(self._store)}
        tokens = {row["sha256"]: _token(row) for row in await records.tokens(self._store)}
        return _Snapshot(users, tokens, time.monotonic())

    async def get(self, username: str) -> User | None:
        return (await self._current()).users.get(username)

    async def active(self, username: str) -> User | None:
        user = await self.get(username)
        return user if user is not None and not user.disabled else None

    async def active_now(self, username: str) -> User | None:
        """The active user as the database has them now, not as last read (for a login or a
        notification's button): a change by `carewatch users` a moment ago counts already."""
        self._snapshot = await self._read()
        return await self.active(username)

    async def token(self, digest: str) -> Token | None:
        return (await self._current()).tokens.get(digest)

    async def all(self) -> list[User]:
        return sorted((await self._read()).users.values(), key=lambda u: u.username)

    async def tokens(self) -> list[Token]:
        return sorted((await self._read()).tokens.values(), key=lambda t: t.name)

    def name_of(self, username: str) -> str:
        """The display name as last read (a change by the CLI shows within `CACHE_S`)."""
        user = self._snapshot.users.get(username) if self._snapshot else None
        return user.name if user is not None else username

    async def responders(self) -> set[str]:
        """Active users whose role answers alerts (staff, supervisors, admins): whom the
        family may be told "was alerted" about."""
        return {
            user.username
            for user in (await self._current()).users.values()
            if not user.disabled and "alerts.act" in ROLE_PERMISSIONS[user.grant.role]
        }

    async def managers(self, site: str) -> list[str]:
        """Active supervisors and admins whose scope takes in the whole of `site`: who is
        told when an alert's escalation reached nobody."""
        return [
            user.username
            for user in sorted((await self._current()).users.values(), key=lambda u: u.username)
            if not user.disabled
            and (
                user.grant.role == "admin"
                or (user.grant.role == "supervisor" and {"*", site} & set(user.grant.sites))
            )
        ]

    async def display_names(self) -> dict[str, str]:
        return {user.username: user.name for user in (await self._current()).users.values()}

    # --- changes ----------------------------------------------------------------------------

    async def sync_config(
        self, users: Iterable[ConfigUser], tokens: Iterable[ConfigToken], at: float
    ) -> None:
        """Make the config's users and tokens the database's; disable users dropped from it."""
        users, tokens = list(users), list(tokens)
        existing = {user.username: user for user in await self.all()}
        async with self._store.transaction() as db:
            for spec in users:
                old = existing.get(spec.username)
                if old is not None and old.source != "config":
                    raise UserError(
                        f"user {spec.username!r} in the config file already exists in the "
                        "database (made with `carewatch users`); rename one of them"
                    )
                await records.put_config_user(
                    db,
                    (
                        spec.username,
                        spec.display_name,
                        _grant_json(spec.grant),
                        spec.password_hash,
                        at,
                        at,
                    ),
                )
            kept = {spec.username for spec in users}
            dropped = [name for name, old in existing.items() if _dropped(old, kept)]
            await records.disable_users(db, dropped, at)
            await records.end_stale_sessions(db)
            await records.replace_config_tokens(
                db, [(t.name, t.sha256, _grant_json(t.grant), at) for t in tokens]
            )
        self._snapshot = await self._read()

    async def create(
        self,
        username: str,
        password: str,
        grant: Grant,
        *,
        display_name: str | None,
        actor: str,
        at: float,
        source: Source = "cli",
    ) -> User:
        _check_grant(grant)
        if await self.get(username) is not None:
            raise UserError(f"user {username!r} already exists; use `reset-password` or `update`")
        async with self._store.transaction() as db:
            await records.insert_user(
                db,
                (
                    username,
                    display_name,
                    _grant_json(grant),
                    hash_password(password),
                    source,
                    at,
                    at,
                ),
            )
            await self._audit(at, actor, "user_created", {"user": username, **grant.model_dump()})
        return await self._require(username)

    async def set_password(self, username: str, password: str, *, actor: str, at: float) -> None:
        await self._changeable(username)
        await self._update(
            username, "password_hash", hash_password(password), actor, at, "password_reset"
        )

    async def set_grant(self, username: str, grant: Grant, *, actor: str, at: float) -> None:
        _check_grant(grant)
        await self._changeable(username)
        await self._update(
            username, "grant_json", _grant_json(grant), actor, at, "user_scope_changed"
        )

    async def set_disabled(self, username: str, disabled: bool, *, actor: str, at: float) -> None:
        await self._changeable(username)
        action = "user_disabled" if disabled else "user_enabled"
        await self._update(username, "disabled", int(disabled), actor, at, action)

    async def issue_token(self, username: str, name: str, *, actor: str, at: float) -> str:
        """A new API token acting as `username`; only its digest is kept, so show it once."""
        user = await self._require(username)
        if user.disabled:
            raise UserError(f"user {username!r} is disabled; enable it first")
        if any(t.name == name for t in await self.tokens()):
            raise UserError(f"a token named {name!r} exists; revoke it or choose another name")
        token = secrets.token_urlsafe(32)
        async with self._store.transaction() as db:
            await records.insert_token(db, name, token_digest(token), username, at)
            await self._audit(at, actor, "token_issued", {"token": name, "user": username})
        self._snapshot = None
        return token

    async def revoke_token(self, name: str, *, actor: str, at: float) -> None:
        found = next((t for t in await self.tokens() if t.name == name), None)
        if found is None:
            raise UserError(f"no token named {name!r}")
        if found.source == "config":
            raise UserError(f"token {name!r} is in the config file (tokens:); remove it there")
        async with self._store.transaction() as db:
            await records.revoke_token(db, name, at)
            await self._audit(at, actor, "token_revoked", {"token": name})
        self._snapshot = None

    async def _require(self, username: str) -> User:
        self._snapshot = None
        user = await self.get(username)
        if user is None:
            raise UserError(f"no user {username!r}")
        return user

    async def _changeable(self, username: str) -> User:
        user = await self._require(username)
        if user.source == "config":
            raise UserError(
                f"user {username!r} is defined in the hub's config file (users:); change it there"
            )
        return user

    async def _update(
        self,
        username: str,
        column: records.UserColumn,
        value: Any,
        actor: str,
        at: float,
        action: str,
    ) -> None:
        async with self._store.transaction() as db:
            await records.change_user(db, username, column, value, at)
            await records.end_stale_sessions(db, username)
            await self._audit(at, actor, action, {"user": username})
        self._snapshot = None

    async def _audit(self, at: float, actor: str, action: str, detail: dict[str, Any]) -> None:
        await self._store.audit.record([AuditEntry(at, actor, action, "admin", detail)])


def _check_grant(grant: Grant) -> None:
    problems = grant.problems()
    if problems:
        raise UserError("; ".join(problems))


def _grant_json(grant: Grant) -> str:
    return json.dumps(grant.model_dump(), sort_keys=True)


def _dropped(user: User, kept: set[str]) -> bool:
    return user.source == "config" and not user.disabled and user.username not in kept


def _user(row: dict[str, Any]) -> User:
    return User(
        username=row["username"],
        display_name=row["display_name"],
        grant=Grant.model_validate(json.loads(row["grant_json"])),
        password_hash=row["password_hash"],
        source=row["source"],
        disabled=bool(row["disabled"]),
        session_gen=int(row["session_gen"]),
    )


def _token(row: dict[str, Any]) -> Token:
    grant = row["grant_json"]
    return Token(
        name=row["name"],
        sha256=row["sha256"],
        username=row["username"],
        grant=Grant.model_validate(json.loads(grant)) if grant else None,
        source=row["source"],
        revoked=row["revoked_at"] is not None,
    )
