"""`carewatch provision`: sites, zones, rooms, beds, gateways (with broker credentials), devices,
bulk import from CSV, and printable bed labels.

Works directly on the hub's database (`--config hub.yaml`), like `carewatch registry --config`:
use it while installing, with the hub stopped (a running hub does not see the change until it
restarts). Gateways' passwords and ACL blocks go to the files named under `provisioning:` in
the hub's configuration; reload Mosquitto afterwards (`systemctl reload mosquitto`).

Exit status: 0 done, 1 refused (the reasons are printed), 2 unusable configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from carewatch.commands.registry import Unreachable, _kind_from_name, cli_actor, open_hub_registry
from hub.commissioning.provisioning import Address, Bundle, DeviceRequest, Provisioner
from hub.config import HubConfig
from hub.registry.csv_import import LAYOUTS, ImportRejected
from hub.registry.labels import bed_png, site_labels, site_pdf
from hub.registry.models import Bed, Room, Site, Zone

Action = Callable[[Provisioner, HubConfig, argparse.Namespace], Awaitable[None]]


@contextlib.asynccontextmanager
async def provisioner(config_path: Path) -> AsyncIterator[tuple[Provisioner, HubConfig]]:
    async with open_hub_registry(config_path) as (service, store, config):
        yield await Provisioner.open(service, store, config), config


async def run_provision(args: argparse.Namespace) -> int:
    try:
        async with provisioner(args.config) as (prov, config):
            await args.action(prov, config, args)
    except Unreachable as exc:
        print(f"carewatch provision: {exc}", file=sys.stderr)
        return 2
    except ImportRejected as exc:
        for problem in exc.problems:
            print(f"{args.file}: line {problem.line}: {problem.problem}", file=sys.stderr)
        print(f"{args.file}: nothing was imported", file=sys.stderr)
        return 1
    except ValueError as exc:  # RegistryError and ProvisioningError
        print(f"carewatch provision: refused: {exc}", file=sys.stderr)
        return 1
    return 0


async def _site(prov: Provisioner, _: HubConfig, args: argparse.Namespace) -> None:
    await prov.service.create(Site, {"id": args.id, "name": args.name}, cli_actor())
    print(f"site {args.id} created")


async def _zone(prov: Provisioner, _: HubConfig, args: argparse.Namespace) -> None:
    fields = {"site": args.site, "id": args.id, "name": args.name or args.id, "kind": args.kind}
    await prov.service.create(Zone, fields, cli_actor())
    print(f"zone {args.site}/{args.id} created")


async def _room(prov: Provisioner, _: HubConfig, args: argparse.Namespace) -> None:
    fields = {
        "site": args.site,
        "id": args.id,
        "zone": args.zone,
        "name": args.name or args.id,
        "kind": args.kind,
    }
    await prov.service.create(Room, fields, cli_actor())
    print(f"room {args.site}/{args.id} created")


async def _bed(prov: Provisioner, _: HubConfig, args: argparse.Namespace) -> None:
    fields = {"code": args.code, "site": args.site, "room": args.room, "label": args.label}
    await prov.service.create(Bed, fields, cli_actor())
    print(f"bed {args.code} created")


def _print_bundle(bundle: Bundle) -> None:
    print(f"gateway {bundle.username}: bundle written to {bundle.directory}")
    for path in bundle.files:
        print(f"  {path}")


async def _gateway(prov: Provisioner, config: HubConfig, args: argparse.Namespace) -> None:
    bundle = await prov.gateway(args.site, args.gateway, args.out, cli_actor(), args.name)
    settings = config.provisioning
    print(f"password set in {settings.password_file}; ACL block written to {settings.acl_file}")
    _print_bundle(bundle)
    print("reload Mosquitto to use them: sudo systemctl reload mosquitto")


async def _device(prov: Provisioner, _: HubConfig, args: argparse.Namespace) -> None:
    request = DeviceRequest(
        site=args.site,
        gateway=args.gateway,
        id=args.id,
        profile=args.profile,
        address=Address(args.mac, args.key, args.port),
        bed=args.bed,
        room=args.room,
        role=args.role,
    )
    device = await prov.device(request, cli_actor())
    print(f"device {device.id} ({device.profile}) bound to {args.bed or 'room ' + args.room}")
    if args.out is not None:
        _print_bundle(await prov.bundle(args.site, args.gateway, args.out))


async def _import(prov: Provisioner, _: HubConfig, args: argparse.Namespace) -> None:
    what = args.kind or _kind_from_name(args.file)
    text = args.file.read_text(encoding="utf-8-sig")
    counts, bundles = await prov.import_csv(what, text, args.out, cli_actor())
    done = ", ".join(
        f"{action} {n} {kind}(s)" for action, kinds in counts.items() for kind, n in kinds.items()
    )
    print(f"{args.file}: imported: {done}")
    for bundle in bundles:
        _print_bundle(bundle)


async def _labels(prov: Provisioner, _: HubConfig, args: argparse.Namespace) -> None:
    labels = site_labels(prov.service.registry, args.site, prov.public_url)
    args.out.mkdir(parents=True, exist_ok=True)
    for label in labels:
        (args.out / f"{label.code}.png").write_bytes(bed_png(label))
    sheet = args.out / f"{args.site}-labels.pdf"
    sheet.write_bytes(site_pdf(labels))
    print(f"{len(labels)} label(s): {args.out}/<bed code>.png and {sheet}")


def add_provision_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="set up sites, gateways and devices",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="the hub's YAML configuration")
    commands = parser.add_subparsers(dest="provision_command", required=True, metavar="COMMAND")
    _add_places(commands)
    _add_gateway(commands)
    _add_device(commands)

    importing = commands.add_parser("import", help="import a wing from CSV (beds, devices, …)")
    importing.add_argument("file", type=Path)
    importing.add_argument("--kind", choices=list(LAYOUTS), help="default: from the file name")
    importing.add_argument(
        "--out", type=Path, default=Path("."), help="bundles of new gateways go to OUT/SITE-GW"
    )
    importing.set_defaults(action=_import)

    labels = commands.add_parser("labels", help="QR labels of a site's beds (PNG and PDF)")
    labels.add_argument("site")
    labels.add_argument("--out", type=Path, required=True)
    labels.set_defaults(action=_labels)

    parser.set_defaults(func=lambda args: asyncio.run(run_provision(args)))


def _add_places(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    site = commands.add_parser("site", help="create a site")
    site.add_argument("id")
    site.add_argument("name")
    site.set_defaults(action=_site)

    zone = commands.add_parser("zone", help="create a zone (wing, floor, unit)")
    zone.add_argument("site")
    zone.add_argument("id")
    zone.add_argument("--name")
    zone.add_argument("--kind", default="care_home")
    zone.set_defaults(action=_zone)

    room = commands.add_parser("room", help="create a room")
    room.add_argument("site")
    room.add_argument("id")
    room.add_argument("--zone", required=True)
    room.add_argument("--name")
    room.add_argument("--kind", default="bedroom")
    room.set_defaults(action=_room)

    bed = commands.add_parser("bed", help="create a bed with its printable code")
    bed.add_argument("site")
    bed.add_argument("room")
    bed.add_argument("code")
    bed.add_argument("--label")
    bed.set_defaults(action=_bed)


def _add_gateway(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gateway = commands.add_parser(
        "gateway", help="register a gateway, set its broker credentials, write its bundle"
    )
    gateway.add_argument("site")
    gateway.add_argument("gateway")
    gateway.add_argument("--out", type=Path, required=True, help="directory for the bundle")
    gateway.add_argument("--name")
    gateway.set_defaults(action=_gateway)


def _add_device(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    device = commands.add_parser("device", help="register a device with its address")
    device.add_argument("site")
    device.add_argument("gateway")
    device.add_argument("id")
    device.add_argument("--profile", required=True, help="device profile, e.g. seeed-mr60fda1")
    address = device.add_mutually_exclusive_group(required=True)
    address.add_argument("--mac", help="BLE address, e.g. B4:35:22:F5:3D:A4")
    address.add_argument("--port", help="serial port, e.g. /dev/serial/by-id/usb-…")
    device.add_argument("--key", help="BTHome/Xiaomi key (32 hex characters), with --mac")
    where = device.add_mutually_exclusive_group(required=True)
    where.add_argument("--bed", help="bed code")
    where.add_argument("--room", help="room id")
    device.add_argument("--role", choices=["exit_door"])
    device.add_argument("--out", type=Path, help="rewrite the gateway's bundle in this directory")
    device.set_defaults(action=_device)
