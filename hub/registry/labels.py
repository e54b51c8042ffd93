"""Places in words, and printable bed labels.

**Places in words**: one place for how a bed, a room or a gateway is named to a person, used by
the bed board (hub/console/board.py, and from it the console's alert cards), the family app
(hub/family/view.py), the resident page (hub/console/resident_history.py) and the printed labels:

- a room is "Room 101" when its name is a number, else its own name ("West lounge", "Okafor
  home");
- a bed in a care home is "Room 101, Sunrise Care Home"; a bed in a zone of kind `family` (a
  bed at the resident's home) is "At home — cared for by Sunrise Care Home";
- a gateway is where it is (its registered name, else the one room, zone or site all its
  devices are in), and the beds it leaves unwatched when it goes offline are the beds with a
  device on it;
- a device is what it is and where ("fall radar in room 104", "smoke detector in West lounge",
  "call button at bed SR-E-101A in room 101" when the room has more beds): `device_name`, in
  every alert's `place` as `device_name`; what a relative calls it is `device_kind` ("fall
  sensor", "call button");
- a channel is said as people say it ("family app", "phone notification"): `channel_words`,
  and a person reached through it as "Okafor family (family app)": `reached_words`;
- a user is their display name, never their user name: `people_names` of
  `hub/access/records.py` reads them.

**Printable bed labels**: a QR code that opens the bed in the installer's page, and the bed code.
Each label shows the QR code, the bed code in large print, and the room and site names. The QR
code encodes `{public_url}/installer#bed=<code>`. `bed_png` draws one label (segno for the QR
code, Pillow for the text); `site_pdf` lays out every bed of a site, one label per page
(62 x 100 mm, a common label-printer size), with fpdf2.
"""

from __future__ import annotations

import io
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import segno
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from device_profiles import load_profile
from hub.registry.data import RegistryData
from hub.registry.index import Registry
from hub.registry.models import Bed, Device, Gateway, Room, Site, Zone

QR_SCALE: Final = 8
LABEL_MM: Final = (62.0, 100.0)
# How people name the ways an alert reaches someone, or someone answered it.
CHANNEL_WORDS: Final[dict[str, str]] = {
    "console": "console",
    "phone": "phone",
    "push": "phone notification",
    "apprise": "message",
    "family_app": "family app",
    "api": "another system",
}
# A radar is called a radar by staff: "fall radar", where a relative hears "fall sensor".
RADAR_KINDS: Final[dict[str, str]] = {
    "fall sensor": "fall radar",
    "bed sensor": "vital-signs radar",
    "room sensor": "presence radar",
}


# --- places in words ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BedWords:
    """How a person names where a bed is."""

    room: str  # the room: "Room 101", "Okafor home"
    text: str  # the whole place: "Room 101, Sunrise Care Home", "At home — cared for by …"
    at_home: bool  # a bed at the resident's home (its zone is of kind `family`)
    zone: str  # the zone's name: "East wing", "Family beds"
    site: str  # the site's name: the care service that answers for the bed


def room_words(name: str) -> str:
    """A room as a person names it: "Room 101" for a numbered room, else its own name."""
    return f"Room {name}" if name[:1].isdigit() else name


def site_name(data: RegistryData, site: str) -> str:
    found = data.find(Site, (site,))
    return found.name if found is not None else site


def bed_words(data: RegistryData, bed: Bed) -> BedWords:
    room = data.find(Room, (bed.site, bed.room))
    zone = data.find(Zone, (bed.site, room.zone)) if room is not None else None
    room_name = room_words(room.name if room is not None else bed.room)
    service = site_name(data, bed.site)
    at_home = zone is not None and zone.kind == "family"
    text = f"At home — cared for by {service}" if at_home else f"{room_name}, {service}"
    zone_name = zone.name if zone is not None else (room.zone if room is not None else "")
    return BedWords(room_name, text, at_home, zone_name, service)


def gateway_where(data: RegistryData, site: str, gateway: str) -> str:
    """Where a gateway is: its registered name, else the one room, zone or site of its devices."""
    return gateway_places(data, {(site, gateway)})[(site, gateway)]


def gateway_places(
    data: RegistryData, gateways: Iterable[tuple[str, str]] | None = None
) -> dict[tuple[str, str], str]:
    """`gateway_where` of each of `gateways` (default: every gateway), in one pass."""
    wanted = set(gateways) if gateways is not None else {(g.site, g.id) for g in data.all(Gateway)}
    rooms: dict[tuple[str, str], set[str]] = {key: set() for key in wanted}
    for device in data.all(Device):
        found = rooms.get((device.site, device.gateway))
        if found is not None:
            bed = data.find(Bed, (device.bed,)) if device.bed is not None else None
            room = bed.room if bed is not None else device.room
            if room is not None:
                found.add(room)
    return {key: _gateway_where(data, key, ids) for key, ids in rooms.items()}


def _gateway_where(data: RegistryData, key: tuple[str, str], room_ids: set[str]) -> str:
    site, gateway = key
    found = data.find(Gateway, (site, gateway))
    if found is not None and found.name:
        return found.name
    places = [room for room_id in sorted(room_ids) if (room := data.find(Room, (site, room_id)))]
    if len(places) == 1:
        return room_words(places[0].name)
    zones = {place.zone for place in places}
    zone = data.find(Zone, (site, zones.pop())) if len(zones) == 1 else None
    return zone.name if zone is not None else site_name(data, site)


def gateway_beds(data: RegistryData, site: str, gateway: str) -> list[Bed]:
    """The beds a gateway leaves unwatched when it goes offline: those with a device on it."""
    codes = {d.bed for d in data.all(Device) if d.site == site and d.gateway == gateway and d.bed}
    beds = [bed for code in codes if (bed := data.find(Bed, (code,))) is not None]
    return sorted(beds, key=lambda b: (room_words(_room_name(data, b)), b.code))


def _room_name(data: RegistryData, bed: Bed) -> str:
    room = data.find(Room, (bed.site, bed.room))
    return room.name if room is not None else bed.room


def channel_words(channel: str | None) -> str:
    """A channel as people say it: "family app", "phone notification"; "" for none."""
    if not channel:
        return ""
    return CHANNEL_WORDS.get(channel, channel.replace("_", " "))


def reached_words(name: str, channel: str | None) -> str:
    """A person and the channel that reached them (or they answered by): "Okafor family
    (family app)"."""
    via = channel_words(channel)
    return f"{name} ({via})" if via else name


def device_kind(profile: str) -> str:
    """What a relative calls a device: call button, bed sensor, smoke detector, …"""
    made = {rule.reading or rule.event for rule in load_profile(profile).rules}
    for name, kind in (
        ("smoke", "smoke detector"),
        ("call_button", "call button"),
        ("occupancy", "bed sensor"),
        ("heart_rate", "bed sensor"),
        ("fall", "fall sensor"),
        ("contact_open", "door sensor"),
    ):
        if name in made:
            return kind
    return "room sensor" if {"presence", "motion"} & made else "sensor"


def device_type(profile: str) -> str:
    """What staff call a device: a relative's word, but a radar is a radar ("fall radar")."""
    kind = device_kind(profile)
    if "radar" in load_profile(profile).name.lower():
        return RADAR_KINDS.get(kind, kind)
    return kind


def device_name(data: RegistryData, device_id: str) -> str:
    """A device in words, what it is and where: "fall radar in room 104"; "" for no such
    device (removed from the registry since)."""
    device = data.find(Device, (device_id,))
    if device is None:
        return ""
    return f"{device_type(device.profile)} {device_where(data, device)}"


def device_where(data: RegistryData, device: Device) -> str:
    """ "in room 104", "at bed SR-E-101A in room 101" (a room of several beds), "in West lounge",
    "at home"; a device bound to nothing is where its gateway is."""
    bed = data.find(Bed, (device.bed,)) if device.bed is not None else None
    if bed is not None and bed_words(data, bed).at_home:
        return "at home"
    room_id = bed.room if bed is not None else device.room
    room = data.find(Room, (device.site, room_id)) if room_id is not None else None
    if room is None:
        return f"by {gateway_where(data, device.site, device.gateway)}"
    inside = f"in {_room_in_sentence(room.name)}"
    if bed is not None and _beds_in_room(data, room) > 1:
        return f"at bed {bed.code} {inside}"
    return inside


def _room_in_sentence(name: str) -> str:
    """A room inside a sentence: "room 104", or its own name."""
    return f"room {name}" if name[:1].isdigit() else name


def _beds_in_room(data: RegistryData, room: Room) -> int:
    counts = _ROOM_BEDS.get(data)
    if counts is None:  # once per registry version (a change makes a new RegistryData)
        counts = _ROOM_BEDS[data] = Counter((bed.site, bed.room) for bed in data.all(Bed))
    return counts[(room.site, room.id)]


_ROOM_BEDS: weakref.WeakKeyDictionary[RegistryData, Counter[tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def alert_place(data: RegistryData, alert: dict[str, Any]) -> dict[str, Any]:
    """Where an alert happened, in words: `headline` (the bed code, the room, or the gateway),
    `room` and `zone` (where in the site: "Room 101" and "East wing"; for a gateway, where it
    is), `text` (all of it in one line), `device_name` (the device that raised it, in words:
    "fall radar in room 104"; "" for none) and, for a gateway, `unwatched` (the beds it leaves
    unwatched, each `bed` and `place`)."""
    return {**_alert_place(data, alert), "device_name": _alert_device(data, alert)}


def _alert_device(data: RegistryData, alert: dict[str, Any]) -> str:
    device = alert.get("device")
    return device_name(data, str(device)) if device else ""


def _alert_place(data: RegistryData, alert: dict[str, Any]) -> dict[str, Any]:
    site = str(alert["site"])
    zone = str(alert.get("zone_name") or alert.get("zone") or "")
    bed = data.find(Bed, (alert["bed"],)) if alert.get("bed") else None
    if bed is not None:
        words = bed_words(data, bed)
        text = words.text if words.at_home else f"{words.room}, {words.zone}"
        return _place(bed.code, words.room, words.zone, text)
    if alert.get("room_name") or alert.get("room"):
        room = room_words(str(alert.get("room_name") or alert["room"]))
        return _place(room, room, zone, f"{room}, {zone or site_name(data, site)}")
    if alert.get("gateway"):
        gateway = str(alert["gateway"])
        beds = gateway_beds(data, site, gateway)
        unwatched = [{"bed": b.code, "place": room_words(_room_name(data, b))} for b in beds]
        where = gateway_where(data, site, gateway)
        text = f"Gateway {gateway}, {where}"
        if unwatched:
            listed = ", ".join(f"{b['place']} ({b['bed']})" for b in unwatched)
            text += f" — {len(beds)} {'bed' if len(beds) == 1 else 'beds'} unwatched: {listed}"
        return _place(f"Gateway {gateway}", where, "", text, unwatched)
    if zone:  # a whole zone (nobody covers it)
        return _place(zone, "", zone, f"{zone}, {site_name(data, site)}")
    return _place(site_name(data, site), "", zone, site_name(data, site))


def _place(
    headline: str, room: str, zone: str, text: str, unwatched: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "headline": headline,
        "room": room,
        "zone": zone,
        "text": text,
        "unwatched": unwatched or [],
    }


# --- printable labels ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Label:
    code: str
    room: str
    site: str
    url: str


def installer_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/installer#bed={quote(code)}"


def qr_code(url: str) -> segno.QRCode:
    return segno.make(url, error="m", micro=False)


def label_for(registry: Registry, code: str, public_url: str) -> Label:
    data = registry.data
    bed = data.get(Bed, (code,))
    room = data.get(Room, (bed.site, bed.room))
    site = data.get(Site, (bed.site,))
    return Label(bed.code, room_words(room.name), site.name, installer_url(public_url, bed.code))


def site_labels(registry: Registry, site: str, public_url: str) -> list[Label]:
    registry.data.get(Site, (site,))
    beds = sorted((b for b in registry.data.all(Bed) if b.site == site), key=lambda b: b.code)
    return [label_for(registry, bed.code, public_url) for bed in beds]


def qr_png(url: str) -> bytes:
    buffer = io.BytesIO()
    qr_code(url).save(buffer, kind="png", scale=QR_SCALE, border=4)
    return buffer.getvalue()


def bed_png(label: Label) -> bytes:
    """One label as a PNG: the QR code above the bed code, the room and the site."""
    qr = Image.open(io.BytesIO(qr_png(label.url))).convert("L")
    width = max(qr.width, 480)
    canvas = Image.new("L", (width, qr.height + 170), 255)
    canvas.paste(qr, ((width - qr.width) // 2, 0))
    draw = ImageDraw.Draw(canvas)
    lines = ((label.code, 64, 0), (label.room, 32, 80), (label.site, 28, 122))
    for text, size, offset in lines:
        font = ImageFont.load_default(size=size)
        draw.text((width // 2, qr.height + offset), text, fill=0, font=font, anchor="mt")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def site_pdf(labels: list[Label], compress: bool = True) -> bytes:
    """Every label of a site, one per page, in bed-code order."""
    pdf = FPDF(unit="mm", format=LABEL_MM)
    pdf.set_compression(compress)
    pdf.set_auto_page_break(False)
    for label in labels:
        _pdf_label(pdf, label)
    return bytes(pdf.output())


def _pdf_label(pdf: FPDF, label: Label) -> None:
    pdf.add_page()
    width = LABEL_MM[0]
    pdf.image(io.BytesIO(qr_png(label.url)), x=6, y=6, w=width - 12)
    pdf.set_xy(0, width - 2)
    pdf.set_font("Helvetica", "B", 22)
    pdf.cell(width, 12, label.code, align="C")
    pdf.set_xy(0, width + 12)
    pdf.set_font("Helvetica", "", 13)
    pdf.cell(width, 8, label.room, align="C")
    pdf.set_xy(0, width + 21)
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(width, 7, label.site, align="C")
