"""Printable bed labels: a QR code that opens the bed in the installer's page, and the bed code.

Each label shows the QR code, the bed code in large print, and the room and site names. The QR
code encodes `{public_url}/installer#bed=<code>`. `bed_png` draws one label (segno for the QR
code, Pillow for the text); `site_pdf` lays out every bed of a site, one label per page
(62 x 100 mm, a common label-printer size), with fpdf2.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

import segno
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from hub.registry import Registry
from hub.registry_models import Bed, Room, Site

QR_SCALE: Final = 8
LABEL_MM: Final = (62.0, 100.0)


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
    return Label(bed.code, room.name, site.name, installer_url(public_url, bed.code))


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
    lines = ((label.code, 64, 0), (f"Room {label.room}", 32, 80), (label.site, 28, 122))
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
    pdf.cell(width, 8, f"Room {label.room}", align="C")
    pdf.set_xy(0, width + 21)
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(width, 7, label.site, align="C")
