"""Every route of the OpenAPI document, swept by a fuzzer (schemathesis) against a running hub:
no request, however malformed, is answered with a server error.

Schemathesis runs as a separate process, a real HTTP client of the hub's real socket, signed in
as an administrator (who may call every route) through an API token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from hub.app import Hub
from tests.conftest import HubFactory
from tests.hub.access.test_permissions import app_of

SWEEP_TOKEN = "sweep-" + "t" * 40
# The fuzzer sends a few thousand requests in a minute; the limits are the subject of
# tests/hub/http/test_request_limits.py, not of this sweep.
GENEROUS_LIMITS = {"requests_per_minute": 1_000_000, "public_requests_per_minute": 1_000_000}


async def sweep(hub: Hub, schema_file: Path, report: Path, *extra: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(schema_file),
        "--url",
        hub.url,
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {SWEEP_TOKEN}",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "ndjson",
        "--report-dir",
        str(report),
        "--no-color",
        "--generation-database",
        "none",
        # The live streams never end by themselves; their parameters are swept elsewhere.
        "--exclude-path-regex",
        "/stream$",
        *extra,
        cwd=report.parent,  # whatever schemathesis keeps for itself stays in the test's folder
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace")


async def test_no_route_answers_a_server_error(hub_factory: HubFactory, tmp_path: Path) -> None:
    tokens: list[dict[str, Any]] = [
        {
            "name": "sweep",
            "sha256": hashlib.sha256(SWEEP_TOKEN.encode()).hexdigest(),
            "role": "admin",
        }
    ]
    web = {
        "host": "127.0.0.1",
        "port": 0,
        "secret_key": "test-secret-" + "k" * 32,
        "limits": GENEROUS_LIMITS,
    }
    hub = await hub_factory(tokens=tokens, web=web)
    schema = app_of(hub).openapi()
    assert schema.get("paths"), "the hub serves no OpenAPI document"
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(schema))
    code, output = await sweep(hub, schema_file, tmp_path / "report", "--max-examples", "10")
    assert "Server error" not in output and "500 Internal Server Error" not in output, output
    assert code == 0, output
    # The sweep reached the routes, not only the door: an admin's token was accepted.
    assert len(schema["paths"]) >= 30
