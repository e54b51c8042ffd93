"""`carewatch report --config hub.yaml`: response-time figures from the hub's database.

Times to acknowledge and to resolve (median, 90th percentile), the share acknowledged within
60 s and 180 s (telecare targets 97.5 % and 99 %), per site, zone and shift; test alerts left
out. Reads the database named in the hub configuration, read-only, while the hub runs.
Exit status: 0 printed, 2 the command or its configuration was wrong, 1 the database could
not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Final, TextIO
from zoneinfo import ZoneInfo

from hub.config import HubConfig, HubConfigError, load_hub_config
from hub.core.database import DATABASE_ERRORS, is_postgres, open_database
from hub.escalation.figures import DEFAULT_PRIORITIES, parse_when, period, report, write_csv
from hub.escalation.roster import Roster
from hub.watch.settings import WatchPolicy

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
COLUMNS: Final = (
    ("by", "by"),
    ("site", "site"),
    ("group", "zone/shift"),
    ("alerts", "alerts"),
    ("acknowledged", "acked"),
    ("ack_median_s", "ack median s"),
    ("ack_p90_s", "ack p90 s"),
    ("ack_within_60s", "≤60 s"),
    ("ack_within_180s", "≤180 s"),
    ("resolved", "resolved"),
    ("resolve_median_s", "resolve median s"),
    ("resolve_p90_s", "resolve p90 s"),
    ("meets_target", "target met"),
)


class UsageError(Exception):
    """The command was given something it cannot use (exit status 2)."""


def add_report_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="response-time figures: acknowledge and resolve times, shares within 60/180 s",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, type=Path, help="hub YAML configuration")
    parser.add_argument(
        "--since",
        help="ISO 8601 start (default: 30 days before --until); without an offset, the "
        "site's time zone with --site, else UTC",
    )
    parser.add_argument("--until", help="ISO 8601 end, exclusive (default: now)")
    parser.add_argument("--site", help="one site's id (default: every site)")
    parser.add_argument(
        "--priority",
        default=",".join(DEFAULT_PRIORITIES),
        help="comma-separated priorities to count (default: %(default)s)",
    )
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.set_defaults(func=report_main)


def report_main(args: argparse.Namespace) -> int:
    return asyncio.run(run_report(args, sys.stdout, sys.stderr))


async def run_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        config = await asyncio.to_thread(load_hub_config, args.config)
        since, until, priorities = _window(args, config)
        database = _database(config)
    except (HubConfigError, UsageError) as exc:
        print(f"carewatch report: {exc}", file=err)
        return USAGE
    print(f"carewatch report: reading {database}", file=err)
    policy = WatchPolicy(config.watch)
    try:
        db = await open_database(database, read_only=True)
        try:
            document = await report(
                db,
                Roster(config.roster, policy),
                since=since,
                until=until,
                now=time.time(),
                site=args.site,
                priorities=priorities,
            )
        finally:
            await db.close()
    except DATABASE_ERRORS as exc:
        print(f"carewatch report: cannot read {database}: {exc}", file=err)
        return FAILED
    total = document["figures"][0]["alerts"]
    print(f"carewatch report: {total} alert(s) from {_iso(since)} to {_iso(until)}", file=err)
    _print(document, args.format, out)
    return OK


def _window(args: argparse.Namespace, config: HubConfig) -> tuple[float, float, list[str]]:
    zone: tzinfo = UTC
    if args.site:
        zone = ZoneInfo(WatchPolicy(config.watch).settings(args.site, None, None).timezone)
    priorities = [p.strip() for p in args.priority.split(",") if p.strip()]
    unknown = sorted(set(priorities) - {"emergency", "routine", "trouble"})
    if unknown or not priorities:
        raise UsageError("--priority takes emergency, routine and trouble, comma-separated")
    try:
        since = parse_when(args.since, zone) if args.since else None
        until = parse_when(args.until, zone) if args.until else None
        start, end = period(since, until, time.time())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return start, end, priorities


def _database(config: HubConfig) -> Path | str:
    if is_postgres(config.database):
        return config.database
    if not Path(config.database).is_file():
        raise UsageError(
            f"no database at {config.database} (relative paths are read from the current "
            "directory; run the report where the hub runs, or has the hub not started yet?)"
        )
    return config.database


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _print(document: dict[str, Any], form: str, out: TextIO) -> None:
    rows: list[dict[str, Any]] = document["figures"]
    if form == "json":
        json.dump(document, out, indent=2)
        out.write("\n")
    elif form == "csv":
        write_csv(rows, [key for key, _ in COLUMNS], out)
    else:
        _table(rows, out)
        out.write("targets: 97.5 % acknowledged within 60 s, 99 % within 180 s\n")


def _table(rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    cells = [[title for _, title in COLUMNS]]
    cells += [[_cell(key, row[key]) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    for line in cells:
        padded = (text.ljust(width) for text, width in zip(line, widths, strict=True))
        out.write("  ".join(padded).rstrip() + "\n")


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.startswith("ack_within"):
        return f"{value * 100:.1f} %"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
