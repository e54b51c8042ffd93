"""`carewatch users`: create users, reset passwords, change scopes, issue and revoke API tokens.

Works directly on the hub's database (`--config hub.yaml`), also while the hub runs: a running
hub sees a change within about two seconds. Users written in the config file (`users:`) are
managed there; the hub writes them into the database at every start.

Passwords are typed twice at a prompt, or read from standard input (one line) when it is not a
terminal, or from `--password-file`; `--generate` makes one and prints it once.

Exit status: 0 done, 1 refused (the reason is printed), 2 wrong usage, unusable configuration or
an unacceptable password or scope.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from carewatch.commands.registry import Unreachable, cli_actor, open_hub_registry
from hub.access.permissions import ALL_SITES, ROLES, Grant, Role
from hub.access.users import USERNAME_PATTERN, Token, User, UserError, UserStore, hash_password
from hub.config import HubConfig
from hub.core.clock import SystemClock
from hub.core.database import DATABASE_ERRORS
from hub.registry.data import RegistryData
from hub.registry.models import Resident, Site, Zone

MIN_PASSWORD_LENGTH: Final = 10
SCOPE_HINT: Final = "scope options: --site SITE (or '*'), --zone SITE/ZONE, --resident CODE"
USER_COLUMNS: Final = ("username", "name", "role", "scope", "source", "disabled")
TOKEN_COLUMNS: Final = ("name", "user", "source", "revoked", "sha256")


class UsageError(Exception):
    """The command cannot be run as given; the message says what to give instead."""


@dataclass(frozen=True, slots=True)
class Context:
    users: UserStore
    registry: RegistryData
    config: HubConfig
    config_path: Path
    actor: str


Action = Callable[[Context, argparse.Namespace], Awaitable[None]]


def run_users(args: argparse.Namespace) -> int:
    try:
        if args.action is None:
            _hash(args)
        else:
            asyncio.run(_run_with_database(args))
    except (UsageError, Unreachable) as exc:
        print(f"carewatch users: {exc}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"carewatch users: refused: {exc}", file=sys.stderr)
        return 1
    except (*DATABASE_ERRORS, OSError) as exc:
        print(f"carewatch users: the hub's database cannot be used: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run_with_database(args: argparse.Namespace) -> None:
    if args.config is None:
        raise UsageError("give the hub's configuration file: --config hub.yaml")
    async with _context(args.config) as context:
        await args.action(context, args)


@contextlib.asynccontextmanager
async def _context(config_path: Path) -> AsyncIterator[Context]:
    async with open_hub_registry(config_path) as (service, store, config):
        users = await UserStore.open(store)
        actor = cli_actor().name
        yield Context(users, service.registry.data, config, config_path, actor)


# --- passwords ------------------------------------------------------------------------------


def _obtain_password(args: argparse.Namespace, username: str | None) -> str:
    """The new password, checked: generated, from a file, typed twice, or one line of stdin."""
    if args.generate:
        return secrets.token_urlsafe(15)
    if args.password_file is not None:
        password = _first_line(args.password_file)
    elif sys.stdin.isatty():
        password = _typed_twice()
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    _check_strength(password, username)
    return password


def _first_line(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the password file {path}: {exc}") from None
    return text.splitlines()[0] if text else ""


def _typed_twice() -> str:
    try:
        password = getpass.getpass("New password: ")
        again = getpass.getpass("Again: ")
    except EOFError:
        raise UsageError("no password typed; nothing was changed") from None
    if again != password:
        raise UsageError("the two passwords differ; nothing was changed")
    return password


def _check_strength(password: str, username: str | None) -> None:
    if not password:
        raise UsageError(
            "no password given: type it at the prompt, pipe one line to standard input, "
            "or use --password-file FILE or --generate"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(or --generate for a random one)"
        )
    if username is not None and password.casefold() == username.casefold():
        raise UsageError("the password must not be the user name")


def _print_generated(args: argparse.Namespace, password: str) -> None:
    if args.generate:
        print(f"generated password (shown only now, note it): {password}")


def _hash(args: argparse.Namespace) -> None:
    password = _obtain_password(args, None)
    _print_generated(args, password)
    print(hash_password(password))


# --- scopes ---------------------------------------------------------------------------------


def _grant(
    role: Role, sites: Sequence[str], zones: Sequence[str], residents: Sequence[str]
) -> Grant:
    try:
        grant = Grant(role=role, sites=tuple(sites), zones=tuple(zones), residents=tuple(residents))
    except ValidationError as exc:
        raise UsageError("; ".join(str(error["msg"]) for error in exc.errors())) from None
    problems = grant.problems()
    if problems:
        raise UsageError("; ".join(problems) + f"\n{SCOPE_HINT}")
    return grant


def _check_known(grant: Grant, data: RegistryData) -> None:
    """Every site, zone and resident named must be in the hub's registry."""
    problems = [
        *(_unknown_site(site, data) for site in grant.sites if site != ALL_SITES),
        *(_unknown_zone(zone, data) for zone in grant.zones),
        *(
            f"no resident {code!r} in the registry"
            for code in grant.residents
            if data.find(Resident, (code,)) is None
        ),
    ]
    found = [problem for problem in problems if problem]
    if found:
        raise UsageError("; ".join(found))


def _unknown_site(site: str, data: RegistryData) -> str | None:
    if data.find(Site, (site,)) is not None:
        return None
    known = ", ".join(s.id for s in data.all(Site)) or "none yet"
    return f"no site {site!r} in the registry (sites: {known})"


def _unknown_zone(zone: str, data: RegistryData) -> str | None:
    site, _, name = zone.partition("/")
    if data.find(Zone, (site, name)) is not None:
        return None
    if data.find(Site, (site,)) is None:
        return f"no site {site!r} in the registry (zone {zone})"
    known = ", ".join(z.id for z in data.all(Zone) if z.site == site) or "none"
    return f"no zone {name!r} in site {site!r} (zones: {known})"


def _scope_text(grant: Grant) -> str:
    parts = [
        f"{label}: {','.join(values)}"
        for label, values in (
            ("sites", grant.sites),
            ("zones", grant.zones),
            ("residents", grant.residents),
        )
        if values
    ]
    return "; ".join(parts) or ("every site" if grant.role == "admin" else "none")


def _not_in_config(username: str, context: Context) -> None:
    """Users of the config file's `users:` are managed there (the hub rewrites them at start)."""
    if any(user.username == username for user in context.config.users):
        raise UserError(
            f"user {username!r} is defined in {context.config_path} (users:); "
            f"change it in {context.config_path.name} and restart the hub"
        )


def _scope_given(args: argparse.Namespace) -> bool:
    return any(getattr(args, option) for option in ("sites", "zones", "residents"))


# --- actions --------------------------------------------------------------------------------


async def _list(context: Context, args: argparse.Namespace) -> None:
    users = await context.users.all()
    if args.json:
        print(json.dumps([user.public() for user in users], indent=2))
        return
    _print_table(USER_COLUMNS, [_user_row(user) for user in users])


def _user_row(user: User) -> tuple[str, ...]:
    disabled = "yes" if user.disabled else ""
    return (
        user.username,
        user.name,
        user.grant.role,
        _scope_text(user.grant),
        user.source,
        disabled,
    )


def _print_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=False)]
    for row in (columns, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


async def _add(context: Context, args: argparse.Namespace) -> None:
    _not_in_config(args.username, context)
    grant = _grant(args.role, args.sites, args.zones, args.residents)
    _check_known(grant, context.registry)
    if await context.users.get(args.username) is not None:
        raise UserError(f"user {args.username!r} already exists; use `reset-password` or `update`")
    password = _obtain_password(args, args.username)
    await context.users.create(
        args.username,
        password,
        grant,
        display_name=args.name,
        actor=context.actor,
        at=_now(),
    )
    print(f"user {args.username} created: {grant.role}, {_scope_text(grant)}")
    _print_generated(args, password)


async def _reset_password(context: Context, args: argparse.Namespace) -> None:
    _not_in_config(args.username, context)
    if await context.users.get(args.username) is None:
        raise UserError(f"no user {args.username!r}")
    password = _obtain_password(args, args.username)
    await context.users.set_password(args.username, password, actor=context.actor, at=_now())
    print(f"password of {args.username} changed; their open sessions have ended")
    _print_generated(args, password)


async def _update(context: Context, args: argparse.Namespace) -> None:
    if args.role is None and not _scope_given(args):
        raise UsageError(f"nothing to change: give --role ROLE or the new scope\n{SCOPE_HINT}")
    _not_in_config(args.username, context)
    user = await context.users.get(args.username)
    if user is None:
        raise UserError(f"no user {args.username!r}")
    old = user.grant
    if _scope_given(args):
        grant = _grant(args.role or old.role, args.sites, args.zones, args.residents)
        _check_known(grant, context.registry)
    else:
        grant = _grant(args.role, old.sites, old.zones, old.residents)
    await context.users.set_grant(args.username, grant, actor=context.actor, at=_now())
    print(f"user {args.username} now: {grant.role}, {_scope_text(grant)}; sessions ended")


def _switch(disabled: bool) -> Action:
    async def switch(context: Context, args: argparse.Namespace) -> None:
        _not_in_config(args.username, context)
        await context.users.set_disabled(args.username, disabled, actor=context.actor, at=_now())
        state = "disabled: they can no longer log in or use their tokens" if disabled else "enabled"
        print(f"user {args.username} {state}")

    return switch


async def _token(context: Context, args: argparse.Namespace) -> None:
    if any(token.name == args.name for token in context.config.tokens):
        raise UserError(f"a token named {args.name!r} is in {context.config_path}; choose another")
    token = await context.users.issue_token(
        args.username, args.name, actor=context.actor, at=_now()
    )
    print(token)
    print(
        f"token {args.name} acts as {args.username}; it cannot be shown again "
        "(only its SHA-256 is kept): store it now",
        file=sys.stderr,
    )


async def _tokens(context: Context, args: argparse.Namespace) -> None:
    tokens = await context.users.tokens()
    if args.json:
        print(json.dumps([_token_view(token) for token in tokens], indent=2))
        return
    _print_table(TOKEN_COLUMNS, [_token_row(token) for token in tokens])


def _token_view(token: Token) -> dict[str, Any]:
    """What may be shown of a token: never its whole digest."""
    return {
        "name": token.name,
        "user": token.username,
        "grant": token.grant.model_dump() if token.grant is not None else None,
        "source": token.source,
        "revoked": token.revoked,
        "sha256": token.sha256[:8] + "…",
    }


def _token_row(token: Token) -> tuple[str, ...]:
    user = token.username or f"(own grant: {token.grant.role if token.grant else '?'})"
    revoked = "yes" if token.revoked else ""
    return (token.name, user, token.source, revoked, token.sha256[:8] + "…")


async def _revoke(context: Context, args: argparse.Namespace) -> None:
    await context.users.revoke_token(args.name, actor=context.actor, at=_now())
    print(f"token {args.name} revoked")


def _now() -> float:
    return SystemClock().now()


# --- parser ---------------------------------------------------------------------------------


def _role(text: str) -> Role:
    for role in ROLES:
        if text == role:
            return role
    raise argparse.ArgumentTypeError(f"unknown role {text!r}; roles: {', '.join(ROLES)}")


def _username(text: str) -> str:
    if not re.fullmatch(USERNAME_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: 1–64 characters: letters, digits, '.', '_', '@', '-'"
        )
    return text


def _zone(text: str) -> str:
    site, _, name = text.partition("/")
    if not site or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"zone {text!r} must be written SITE/ZONE")
    return text


def _database_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the hub's YAML configuration: use its database",
    )
    return parent


def _password_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    source = parent.add_mutually_exclusive_group()
    source.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="read the password from the first line of FILE",
    )
    source.add_argument(
        "--generate", action="store_true", help="make a random password and print it once"
    )
    return parent


def _scope_options(parser: argparse.ArgumentParser, role_required: bool) -> None:
    parser.add_argument(
        "--role",
        type=_role,
        required=role_required,
        metavar="ROLE",
        help=f"one of {', '.join(ROLES)}",
    )
    parser.add_argument(
        "--site",
        dest="sites",
        action="append",
        default=[],
        metavar="SITE",
        help="a site, or '*' for all (repeat for more)",
    )
    parser.add_argument(
        "--zone",
        dest="zones",
        action="append",
        default=[],
        type=_zone,
        metavar="SITE/ZONE",
        help="one zone of a site (repeat for more)",
    )
    parser.add_argument(
        "--resident",
        dest="residents",
        action="append",
        default=[],
        metavar="CODE",
        help="family members: a resident's elder code (repeat for more)",
    )


def add_users_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "users",
        help="create users, reset passwords, issue API tokens",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, metavar="PATH", help="the hub's YAML configuration")
    parser.set_defaults(func=run_users)
    commands = parser.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    database, password = _database_options(), _password_options()

    def command(
        name: str, summary: str, action: Action | None, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, parents=list(parents))
        sub.set_defaults(action=action)
        return sub

    listing = command("list", "list users", _list, database)
    listing.add_argument("--json", action="store_true", help="as JSON")

    add = command("add", "create a user", _add, database, password)
    add.add_argument("username", type=_username)
    _scope_options(add, role_required=True)
    add.add_argument("--name", help="the name shown in the console (default: the user name)")

    reset = command(
        "reset-password", "set a new password; ends sessions", _reset_password, database, password
    )
    reset.add_argument("username")

    update = command("update", "change a user's role or scope", _update, database)
    update.add_argument("username")
    _scope_options(update, role_required=False)

    for name, disabled in (("disable", True), ("enable", False)):
        switch = command(name, f"{name} a user", _switch(disabled), database)
        switch.add_argument("username")

    token = command("token", "issue an API token acting as a user", _token, database)
    token.add_argument("username")
    token.add_argument("--name", type=_username, required=True, help="the token's name")

    tokens = command("tokens", "list API tokens", _tokens, database)
    tokens.add_argument("--json", action="store_true", help="as JSON")

    revoke = command("revoke", "revoke an API token", _revoke, database)
    revoke.add_argument("name")

    command("hash", "print an argon2 hash of a password for the config's users:", None, password)
