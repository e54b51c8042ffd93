"""The commissioning report of a walk test, as HTML and as PDF (fpdf2).

Site, gateway(s), every device with its binding (bed or room, resident), when it was last seen,
its signal and battery, which test it passed and when, who ran the walk test (the installer)
and when it started and ended. This is the record that subsidy audits ask for.

Below the devices: every rule switched on in the walk test's scope that the devices fitted
cannot drive, in words (hub/watch/coverage.py), or a line saying that every rule can be driven.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from hub.commissioning.walktest import WalkTests

COLUMNS: tuple[tuple[str, float], ...] = (
    ("Device", 34),
    ("Profile", 36),
    ("Gateway", 22),
    ("Bed / room", 38),
    ("Resident", 34),
    ("Last seen", 34),
    ("Signal", 16),
    ("Battery", 16),
    ("Passed", 47),
)


@dataclass(frozen=True, slots=True)
class ReportRow:
    device: str
    profile: str
    gateway: str
    binding: str
    resident: str
    last_seen: str
    signal: str
    battery: str
    passed: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.device,
            self.profile,
            self.gateway,
            self.binding,
            self.resident,
            self.last_seen,
            self.signal,
            self.battery,
            self.passed,
        )


@dataclass(frozen=True, slots=True)
class CommissioningReport:
    test_id: int
    organisation: str
    site: str
    gateways: list[str]
    installer: str
    started: str
    ended: str
    passed: int
    rows: list[ReportRow]
    warnings: list[str]

    @property
    def title(self) -> str:
        return f"Commissioning report: {self.site}, walk test {self.test_id}"

    def summary(self) -> list[tuple[str, str]]:
        return [
            ("Organisation", self.organisation),
            ("Site", self.site),
            ("Gateway(s)", ", ".join(self.gateways)),
            ("Installed and tested by", self.installer),
            ("Walk test started", self.started),
            ("Walk test ended", self.ended),
            ("Devices passed", f"{self.passed} of {len(self.rows)}"),
            (
                "Rules the devices cannot drive",
                str(len(self.warnings)) if self.warnings else "none",
            ),
        ]

    @property
    def coverage_lines(self) -> list[str]:
        """The warnings, or one line saying there are none."""
        return self.warnings or [ALL_DRIVEN]


WARNINGS_HEADING = "Rules switched on that the devices fitted cannot drive"
ALL_DRIVEN = "None: the devices fitted can drive every rule switched on for these beds."


def when(at: float | None) -> str:
    return "—" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def build_report(tests: WalkTests, test_id: int) -> CommissioningReport:
    status = await tests.status(test_id)
    health = await tests.device_health()
    site = tests.site_name(status["site"])
    rows = [_row(device, health.get(device["device"], {})) for device in status["devices"]]
    return CommissioningReport(
        test_id=test_id,
        organisation=tests.organisation,
        site=f"{site} ({status['site']})",
        gateways=sorted({row.gateway for row in rows}) or [status["gateway"] or "—"],
        installer=status["started_by"],
        started=when(status["started_at"]),
        ended=when(status["ended_at"]) if status["ended_at"] else "still running",
        passed=status["passed"],
        rows=rows,
        warnings=[warning["text"] for warning in status["warnings"]],
    )


def _row(device: dict[str, Any], health: dict[str, Any]) -> ReportRow:
    if device["bed"]:
        binding = f"bed {device['bed']}, {device['room_name']}"
    else:
        binding = f"room {device['room_name']}"
    passed = device["passed_at"]
    last_seen = max((t for t in (health.get("last_seen"), passed) if t is not None), default=None)
    return ReportRow(
        device=device["device"],
        profile=device["profile"],
        gateway=device["gateway"],
        binding=binding,
        resident=device["resident_name"] or "—",
        last_seen=when(last_seen),
        signal="—" if device["rssi"] is None else f"{device['rssi']} dBm",
        battery="—" if device["battery"] is None else f"{device['battery']:g} %",
        passed=f"{device['trigger']} at {when(passed)}" if passed else "NOT PASSED",
    )


# --- HTML ---------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1d2733; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #c9d2dc; padding: 4px 8px; text-align: left; }
th { background: #eef2f6; }
.failed { color: #a4161a; font-weight: bold; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { font-weight: bold; }
"""


def render_html(report: CommissioningReport) -> str:
    e = html.escape
    summary = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in report.summary())
    head = "".join(f"<th>{e(name)}</th>" for name, _ in COLUMNS)
    body = "".join(_html_row(row) for row in report.rows)
    warnings = "".join(f"<li>{e(line)}</li>" for line in report.coverage_lines)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(report.title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(report.title)}</h1><dl>{summary}</dl>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<h2>{e(WARNINGS_HEADING)}</h2>"
        f'<ul class="warnings">{warnings}</ul>'
        "</body></html>\n"
    )


def _html_row(row: ReportRow) -> str:
    failed = ' class="failed"' if row.passed == "NOT PASSED" else ""
    cells = "".join(f"<td>{html.escape(cell)}</td>" for cell in row.cells())
    return f'<tr data-device="{html.escape(row.device)}"{failed}>{cells}</tr>'


# --- PDF ----------------------------------------------------------------------------------


def render_pdf(report: CommissioningReport, *, compress: bool = True) -> bytes:
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_compression(compress)
    pdf.set_title(_latin1(report.title))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    _line(pdf, report.title, 8)
    pdf.set_font("Helvetica", size=10)
    for label, value in report.summary():
        _line(pdf, f"{label}: {value}", 5.5)
    pdf.ln(3)
    _table_row(pdf, tuple(name for name, _ in COLUMNS), bold=True)
    for row in report.rows:
        _table_row(pdf, row.cells(), bold=False)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 11)
    _line(pdf, WARNINGS_HEADING, 7)
    pdf.set_font("Helvetica", size=9)
    for line in report.coverage_lines:
        pdf.multi_cell(0, 5, _latin1(f"- {line}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _line(pdf: FPDF, text: str, height: float) -> None:
    pdf.cell(0, height, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _table_row(pdf: FPDF, cells: tuple[str, ...], *, bold: bool) -> None:
    pdf.set_font("Helvetica", "B" if bold else "", 7.5)
    for (_, width), text in zip(COLUMNS, cells, strict=True):
        pdf.cell(width, 6, _fit(pdf, _latin1(text), width), border=1)
    pdf.ln(6)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """Shorten `text` to fit a cell of `width` mm."""
    while len(text) > 1 and pdf.get_string_width(text) > width - 2:
        text = text[:-1]
    return text


def _latin1(text: str) -> str:
    """The PDF's core fonts are Latin-1: other characters become '?' (a dash stays a dash)."""
    return text.replace("—", "-").encode("latin-1", "replace").decode("latin-1")
