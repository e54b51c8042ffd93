"""`carewatch registry`: list the registry, import CSV files, admit, transfer and discharge,
and check which rules the devices fitted can drive.

Two ways to reach the registry:

- `--config hub.yaml` works directly on the hub's database (seeding it from the file's `sites:`
  if it is empty). A hub that is running keeps its registry in memory and does not see the
  change until it restarts, so use this while the hub is stopped (installation, migration).
- `--url http://hub:8080` with an API token (`--token`, or CAREWATCH_TOKEN in the environment)
  asks the running hub through its API; the change takes effect at once.

Either way the change is checked by the same rules and written to the audit log. Exit status:
0 done, 1 refused (the reasons are printed), 2 unusable configuration or hub unreachable.
`check` prints a warning for each rule switched on that a bed's, a bathroom's or a zone's
devices cannot drive (docs/rules-and-devices.md), and exits 1 if it printed any.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

from hub.config import HubConfig, HubConfigError, load_hub_config
from hub.core.clock import SystemClock
from hub.core.store import Store
from hub.registry.csv_import import LAYOUTS, ImportRejected, RowProblem
from hub.registry.models import RECORD_KINDS, RegistryError
from hub.registry.service import Actor, RegistryService
from hub.watch.coverage import PolicyCoverage
from hub.watch.settings import WatchPolicy

PLURALS: Final = {f"{kind}s": record for kind, record in RECORD_KINDS.items()}
COLUMNS: Final = {
    "sites": ("id", "name"),
    "zones": ("site", "id", "name", "kind"),
    "rooms": ("site", "id", "zone", "name", "kind"),
    "beds": ("code", "site", "room", "resident"),
    "residents": ("code", "name", "care_level", "flags", "bed"),
    "gateways": ("site", "id", "name"),
    "devices": ("id", "site", "gateway", "profile", "bed", "room", "role"),
}


class Unreachable(Exception):
    """The hub's database or API cannot be used at all."""


class Backend(Protocol):
    async def listing(self, plural: str, site: str | None) -> list[dict[str, Any]]: ...

    async def import_csv(self, what: str, text: str) -> dict[str, Any]: ...

    async def bind(self, action: str, code: str, bed: str | None, at: float | None) -> None: ...

    async def coverage(self, site: str | None, zone: str | None) -> dict[str, Any]: ...


class LocalBackend:
    """The hub's database, opened directly."""

    def __init__(self, service: RegistryService) -> None:
        self._service = service
        self._actor = cli_actor()

    async def listing(self, plural: str, site: str | None) -> list[dict[str, Any]]:
        return self._service.listing(PLURALS[plural], site)

    async def import_csv(self, what: str, text: str) -> dict[str, Any]:
        return await self._service.import_csv(what, text, self._actor)

    async def bind(self, action: str, code: str, bed: str | None, at: float | None) -> None:
        if action == "discharge":
            await self._service.discharge(code, at, self._actor)
        elif action == "transfer":
            await self._service.transfer(code, str(bed), at, self._actor)
        else:
            await self._service.admit(code, str(bed), at, self._actor)

    async def coverage(self, site: str | None, zone: str | None) -> dict[str, Any]:
        return self._service.coverage(site=site, zone=zone).as_dict()


@contextlib.asynccontextmanager
async def open_hub_registry(
    config_path: Path,
) -> AsyncIterator[tuple[RegistryService, Store, HubConfig]]:
    """The registry in the hub's database, opened from the hub's configuration file."""
    try:
        config = await asyncio.to_thread(load_hub_config, config_path)
    except HubConfigError as exc:
        raise Unreachable(f"invalid configuration:\n{exc}") from None
    store = await Store.open(config.database)
    try:
        service = await RegistryService.open(
            store,
            SystemClock(),
            config.sites,
            config.organisation,
            config.outbound.policy(),
            rule_coverage=PolicyCoverage(WatchPolicy(config.watch)),
        )
        yield service, store, config
    finally:
        await store.close()


def cli_actor() -> Actor:
    """Who a command-line change is recorded as: the operating-system user."""
    return Actor(f"cli:{getpass.getuser()}", "cli")


@contextlib.asynccontextmanager
async def local_backend(config_path: Path) -> AsyncIterator[LocalBackend]:
    async with open_hub_registry(config_path) as (service, _, _):
        yield LocalBackend(service)


class RemoteBackend:
    """A running hub, through its HTTP API with a bearer token."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url.rstrip("/")
        self._token = token

    async def listing(self, plural: str, site: str | None) -> list[dict[str, Any]]:
        query = f"?site={site}" if site and plural != "devices" else ""
        rows: list[dict[str, Any]] = (await self._call("GET", f"/api/{plural}{query}"))[plural]
        if plural == "devices":  # hub.http.app's device list names the id `device`
            rows = [{"id": row["device"], **row} for row in rows if site in (None, row["site"])]
        return rows

    async def import_csv(self, what: str, text: str) -> dict[str, Any]:
        answer = await self._call("POST", f"/api/registry/import/{what}", text, "text/csv")
        imported: dict[str, Any] = answer["imported"]
        return imported

    async def bind(self, action: str, code: str, bed: str | None, at: float | None) -> None:
        body = {"at": at} | ({"bed": bed} if bed is not None else {})
        await self._call("POST", f"/api/residents/{code}/{action}", json.dumps(body))

    async def coverage(self, site: str | None, zone: str | None) -> dict[str, Any]:
        query = urllib.parse.urlencode({k: v for k, v in (("site", site), ("zone", zone)) if v})
        return await self._call("GET", "/api/registry/coverage" + (f"?{query}" if query else ""))

    async def _call(
        self, method: str, path: str, body: str | None = None, kind: str = "application/json"
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._request, method, path, body, kind)

    def _request(self, method: str, path: str, body: str | None, kind: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self._url + path,
            data=None if body is None else body.encode(),
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": kind},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer: dict[str, Any] = json.load(response)
                return answer
        except urllib.error.HTTPError as exc:
            raise _refusal(exc) from None
        except OSError as exc:
            raise Unreachable(f"cannot reach the hub at {self._url}: {exc}") from None


def _refusal(exc: urllib.error.HTTPError) -> Exception:
    try:
        body = json.load(exc)
    except ValueError:
        body = {}
    detail = body.get("detail", exc.reason)
    if exc.code in (401, 403):
        return Unreachable(f"the hub refused the token: {detail}")
    if "problems" in body:
        problems = [RowProblem(p["line"], p["problem"]) for p in body["problems"]]
        return ImportRejected("import", problems)
    return RegistryError(detail if isinstance(detail, str) else json.dumps(detail))


def _backend(args: argparse.Namespace) -> contextlib.AbstractAsyncContextManager[Backend]:
    if args.url is not None:
        token = args.token or os.environ.get("CAREWATCH_TOKEN")
        if not token:
            raise Unreachable("--url needs an API token: --token or CAREWATCH_TOKEN")
        return contextlib.nullcontext(RemoteBackend(args.url, token))
    return local_backend(args.config)


async def run_registry(args: argparse.Namespace) -> int:
    try:
        async with _backend(args) as backend:
            status = await args.action(backend, args)
    except Unreachable as exc:
        print(f"carewatch registry: {exc}", file=sys.stderr)
        return 2
    except ImportRejected as exc:
        for problem in exc.problems:
            print(f"{args.file}: line {problem.line}: {problem.problem}", file=sys.stderr)
        print(f"{args.file}: nothing was imported", file=sys.stderr)
        return 1
    except RegistryError as exc:
        print(f"carewatch registry: refused: {exc}", file=sys.stderr)
        return 1
    return int(status or 0)


async def _list(backend: Backend, args: argparse.Namespace) -> None:
    rows = await backend.listing(args.kind, args.site)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    columns = COLUMNS[args.kind]
    print("\t".join(columns))
    for row in rows:
        print("\t".join(_cell(row, column) for column in columns))


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if column == "resident" and isinstance(value, dict):
        return f"{value['resident']} ({value['resident_name']})"
    if column == "bed" and "binding" in row:
        value = (row["binding"] or {}).get("bed")
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return "" if value is None else str(value)


async def _import(backend: Backend, args: argparse.Namespace) -> None:
    what = args.kind or _kind_from_name(args.file)
    text = args.file.read_text(encoding="utf-8-sig")
    counts = await backend.import_csv(what, text)
    done = ", ".join(
        f"{action} {n} {kind}(s)" for action, kinds in counts.items() for kind, n in kinds.items()
    )
    print(f"{args.file}: imported: {done}")


async def _check(backend: Backend, args: argparse.Namespace) -> int:
    """Print each rule switched on that the devices fitted cannot drive; 1 if there is one."""
    found = await backend.coverage(args.site, args.zone)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for warning in found["warnings"]:
            print(warning["text"])
        beds, warned = len(found["beds"]), len(found["warnings"])
        print(
            f"{beds} bed(s) checked: "
            + (f"{warned} warning(s)" if warned else "every rule switched on can be driven")
        )
    return 1 if found["warnings"] else 0


def _kind_from_name(path: Path) -> str:
    for what in LAYOUTS:
        if path.stem.lower().startswith(what):
            return what
    raise RegistryError(f"cannot tell what {path.name} holds; add --kind {'|'.join(LAYOUTS)}")


def _binder(action: str) -> Callable[[Backend, argparse.Namespace], Any]:
    async def bind(backend: Backend, args: argparse.Namespace) -> None:
        bed = getattr(args, "bed", None)
        await backend.bind(action, args.code, bed, args.at)
        print(f"{args.code}: {action} done" + (f" (bed {bed})" if bed else ""))

    return bind


def _timestamp(text: str) -> float:
    """An ISO 8601 time (the local time zone if it names none) as Unix seconds."""
    try:
        return datetime.fromisoformat(text).astimezone().timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def add_registry_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "registry",
        help="manage sites, beds, residents and devices",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="hub YAML configuration: use its database")
    where.add_argument("--url", help="a running hub's address: use its API")
    parser.add_argument("--token", help="API token for --url (default: $CAREWATCH_TOKEN)")
    commands = parser.add_subparsers(dest="registry_command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list records of one kind")
    listing.add_argument("kind", choices=list(PLURALS))
    listing.add_argument("--site", help="only this site's records")
    listing.add_argument("--json", action="store_true", help="full records as JSON")
    listing.set_defaults(action=_list)

    importing = commands.add_parser("import", help="import residents, beds or devices from CSV")
    importing.add_argument("file", type=Path)
    importing.add_argument("--kind", choices=list(LAYOUTS), help="default: from the file name")
    importing.set_defaults(action=_import)

    checking = commands.add_parser(
        "check", help="warn about rules switched on that the devices fitted cannot drive"
    )
    checking.add_argument("--site", help="only this site")
    checking.add_argument("--zone", help="only this zone (an id, with --site)")
    checking.add_argument("--json", action="store_true", help="every bed's rules as JSON")
    checking.set_defaults(action=_check)

    for action, needs_bed in (("admit", True), ("transfer", True), ("discharge", False)):
        command = commands.add_parser(action, help=f"{action} a resident")
        command.add_argument("code", help="elder code")
        if needs_bed:
            command.add_argument("bed", help="bed code")
        command.add_argument("--at", type=_timestamp, help="when (ISO 8601); default: now")
        command.set_defaults(action=_binder(action))

    parser.set_defaults(func=lambda args: asyncio.run(run_registry(args)))
