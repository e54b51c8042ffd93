"""What a careless or hostile caller may send: bounded bodies (413), bounded rates (429) and
numbers out of any range (4xx, never a server error), against a running hub."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any, Final

import httpx

from hub.app import Hub
from tests.conftest import NURSE, HubFactory
from tests.hub.access.test_permissions import SAMPLES, app_of

ADMIN_TOKEN: Final = "limits-admin-" + "t" * 40
HUGE_INT: Final = "9" * 20  # beyond SQLite's 64-bit integers
HOSTILE_NUMBERS: Final = ("99999999999999999999", "-99999999999999999999", "1e308", "-1e308")
HOSTILE_JSON_NUMBERS: Final[tuple[Any, ...]] = (10**20, -(10**20), 1e308, -1e308, 10**400)
ADMIT_CODE: Final = "E-0002"  # discharged before the sweep, so that admitting them is possible
# The rest of a body that would be accepted, so that only the hostile number is wrong.
VALID_BODIES: Final[dict[str, dict[str, Any]]] = {
    "/api/residents/{code}/admit": {"bed": "SR-W-201"},
    "/api/residents/{code}/transfer": {"bed": "SR-W-201"},
}


def web(**limits: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": 0,
        "secret_key": "test-secret-" + "k" * 32,
        "limits": limits,
    }


def admin_token() -> list[dict[str, Any]]:
    digest = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    return [{"name": "limits-admin", "sha256": digest, "role": "admin"}]


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


async def raw_request(hub: Hub, head: str, body_chunks: list[bytes]) -> tuple[int, bytes]:
    """Send a request over a plain socket (headers may declare more than is sent); the status
    line and what follows, read until the hub closes or 2 s of quiet."""
    reader, writer = await asyncio.open_connection(hub.config.web.host, hub.web_port)
    writer.write(head.encode())
    try:
        for chunk in body_chunks:
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass  # the hub answered and closed while we were still sending: that is the point
    answer = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 2.0):
            answer += chunk
            if b"\r\n\r\n" in answer:
                break
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    match = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    assert match, f"no HTTP answer: {answer[:200]!r}"
    return int(match[1]), answer


async def test_a_300_mib_login_is_refused_before_its_body_is_read(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory()
    before = rss_kib()
    declared = 300 * 1024 * 1024
    head = (
        "POST /api/login HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    status, answer = await raw_request(hub, head, [b"{" + b" " * 65535] * 16)
    assert status == 413, answer[:300]
    assert rss_kib() - before < 64 * 1024, "the hub took in far more than the limit"


async def test_an_unannounced_chunked_body_is_counted_and_refused(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    head = (
        "POST /api/push/action HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"8000\r\n" + b" " * 0x8000 + b"\r\n"
    status, answer = await raw_request(hub, head, [chunk] * 64)  # 2 MiB, never finished
    assert status == 413, answer[:300]


async def test_each_kind_of_route_has_its_own_body_limit(hub_factory: HubFactory) -> None:
    hub = await hub_factory(web=web(max_body_kib=16, max_import_body_kib=256), tokens=admin_token())
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        note = "x" * (20 * 1024)
        big = await client.post(
            "/api/alerts/1/resolve", headers=bearer, json={"outcome": "false_alarm", "note": note}
        )
        assert big.status_code == 413, big.text
        rows = "code,name\n" + "".join(f"E-{n:05d},Resident {n}\n" for n in range(2000))
        assert 16 * 1024 < len(rows) < 256 * 1024
        imported = await client.post(
            "/api/registry/import/residents",
            headers={**bearer, "Content-Type": "text/csv"},
            content=rows.encode(),
        )
        assert imported.status_code != 413, imported.text
        small = await client.post("/api/login", json={"username": "nobody", "password": "p" * 200})
        assert small.status_code == 401, small.text


async def test_a_login_flood_is_slowed_per_address_while_signed_in_staff_carry_on(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(web=web(public_requests_per_minute=5, requests_per_minute=1000))
    async with (
        httpx.AsyncClient(base_url=hub.url, timeout=20) as nurse,
        httpx.AsyncClient(base_url=hub.url, timeout=20) as flood,
    ):
        signed_in = await nurse.post(
            "/api/login", json={"username": NURSE[0], "password": NURSE[1]}
        )
        assert signed_in.status_code == 200, signed_in.text
        answers = [
            await flood.post("/api/login", json={"username": f"guess{n}", "password": "x"})
            for n in range(8)
        ]
        codes = [answer.status_code for answer in answers]
        assert codes[:4] == [401] * 4 and codes[-1] == 429, codes
        refused = answers[-1]
        assert int(refused.headers["retry-after"]) >= 1
        assert "Too many requests" in refused.json()["detail"]
        assert (await nurse.get("/api/alerts")).status_code == 200


async def test_a_signed_in_caller_is_slowed_by_their_own_rate_only(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(web=web(requests_per_minute=10), tokens=admin_token())
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        codes = [(await client.get("/api/me", headers=bearer)).status_code for _ in range(12)]
        assert codes[:10] == [200] * 10 and codes[-1] == 429, codes
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as browser:
        credentials = {"username": NURSE[0], "password": NURSE[1]}
        assert (await browser.post("/api/login", json=credentials)).status_code == 200
        # The session cookie is re-signed as it is used; it is still the same caller.
        codes = [(await browser.get("/api/me")).status_code for _ in range(11)]
        assert codes[:9] == [200] * 9 and codes[-1] == 429, codes


def hostile_calls(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(method, path, query, body) for every route: each number parameter and each number field
    of a JSON body in turn set to a value beyond any range the hub stores."""
    calls: list[tuple[str, str, dict[str, Any], Any]] = []
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            samples = {
                p["name"]: ADMIT_CODE
                if template.endswith("/admit")
                else SAMPLES.get(p["name"], "1")
                for p in params
                if p["in"] == "path"
            }
            numeric = [p for p in params if _is_number(p.get("schema", {}))]
            for param in numeric:
                for value in HOSTILE_NUMBERS:
                    path_values = {**samples}
                    query: dict[str, Any] = {}
                    if param["in"] == "path":
                        path_values[param["name"]] = value
                    else:
                        query[param["name"]] = value
                    calls.append((method, _fill(template, path_values), query, None))
            for field in _body_number_fields(schema, operation):
                for json_value in HOSTILE_JSON_NUMBERS:
                    body = {**VALID_BODIES.get(template, {}), field: json_value}
                    calls.append((method, _fill(template, samples), {}, body))
    return calls


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], "sample"), template)


def _is_number(schema: dict[str, Any]) -> bool:
    kinds = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
    return "integer" in kinds or "number" in kinds


def _body_number_fields(schema: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    body_schema = content.get("application/json", {}).get("schema", {})
    for option in [body_schema, *body_schema.get("anyOf", [])]:
        if "$ref" in option:
            name = option["$ref"].rsplit("/", 1)[-1]
            properties = schema["components"]["schemas"][name].get("properties", {})
            return [key for key, prop in properties.items() if _is_number(prop)]
    return []


async def test_numbers_out_of_range_anywhere_are_refused_never_a_server_error(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(web=web(requests_per_minute=100_000), tokens=admin_token())
    calls = hostile_calls(app_of(hub).openapi())
    assert len(calls) > 50, "the sweep found too few number parameters to mean anything"
    assert any(HUGE_INT in path and "alerts" in path for _, path, _, _ in calls)
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        discharged = await client.post(f"/api/residents/{ADMIT_CODE}/discharge", headers=headers)
        assert discharged.status_code == 200, discharged.text
        for method, path, query, body in calls:
            content = None if body is None else json.dumps(body)
            answer = await client.request(
                method.upper(),
                path,
                params=query,
                content=content,
                headers={**headers, "Content-Type": "application/json"},
            )
            if answer.status_code >= 500 or not 400 <= answer.status_code < 500:
                failures.append(f"{method.upper()} {path} {query} {body}: {answer.status_code}")
            elif not answer.json().get("detail"):
                failures.append(f"{method.upper()} {path}: a refusal with nothing to act on")
        digits = await client.post(
            "/api/residents/E-0001/discharge",
            content=b'{"at": ' + b"9" * 5000 + b"}",
            headers={**headers, "Content-Type": "application/json"},
        )
        if digits.status_code != 400:
            failures.append(f"a 5,000-digit time: {digits.status_code} {digits.text[:200]}")
    assert failures == [], "\n".join(failures)
