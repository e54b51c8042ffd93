"""`carewatch users`, run as an administrator runs it, against a hub's config and database.

The commands run in their own processes (password on standard input, not a terminal) while the
hub runs on the same database; the people and tokens they make are then used over HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import hashlib
import json
import os
import pty
import select
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from argon2 import PasswordHasher

from carewatch.cli import main as carewatch
from hub.access.users import User
from hub.app import Hub
from hub.config import load_hub_config
from tests.conftest import NURSE, SMALL_SITE, small_site_users
from tests.support.mosquitto import MosquittoBroker

CLI = [sys.executable, "-m", "carewatch.cli", "users"]
PASSWORD = "correct-horse-7"
NEW_PASSWORD = "battery-staple-8"
EAST_DEVICES = {"radar-101", "radar-102", "button-101", "smoke-101"}


@functools.cache
def config_users() -> list[dict[str, Any]]:
    """The small site's people, written in the config file (hashed once: argon2 is slow)."""
    return small_site_users()


def write_hub_yaml(directory: Path, broker_port: int) -> Path:
    config = {
        "broker": {"host": "127.0.0.1", "port": broker_port, "client_id": "carewatch-hub-test"},
        "database": str(directory / "hub.db"),
        "web": {"host": "127.0.0.1", "port": 0, "secret_key": "test-secret-" + "k" * 32},
        "users": config_users(),
        "sites": [SMALL_SITE],
    }
    path = directory / "hub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def hub_yaml(tmp_path: Path, broker: MosquittoBroker) -> Path:
    """For a hub that runs: its broker is the test's Mosquitto."""
    return write_hub_yaml(tmp_path, broker.port)


@pytest.fixture
def offline_yaml(tmp_path: Path) -> Path:
    """For commands only: no hub runs, so no broker is needed."""
    return write_hub_yaml(tmp_path, 1883)


@pytest.fixture
async def hub(hub_yaml: Path) -> AsyncIterator[Hub]:
    running = await Hub.start(load_hub_config(hub_yaml))
    yield running
    await running.stop()


def users_cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`carewatch users ARGS… --config CONFIG` in its own process; stdin is a pipe, no TTY."""
    command = [*CLI, *args, "--config", str(config)]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)


async def users_ok(config: Path, *args: str, stdin: str = "") -> str:
    done = await asyncio.to_thread(users_cli, config, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` until it holds (the hub re-reads the users table every ~2 s)."""
    async with asyncio.timeout(10):
        while not await check():  # noqa: ASYNC110 - the hub re-reads on its own schedule
            await asyncio.sleep(0.05)


async def hub_user(hub: Hub, username: str) -> User | None:
    """The user as the running hub sees it now (its cache included)."""
    assert hub.users is not None
    return await hub.users.get(username)


async def hub_sees(hub: Hub, username: str, holds: Callable[[User | None], bool]) -> None:
    async def check() -> bool:
        return holds(await hub_user(hub, username))

    await until(check)


async def log_in(client: httpx.AsyncClient, username: str, password: str) -> int:
    response = await client.post("/api/login", json={"username": username, "password": password})
    return response.status_code


async def test_a_user_made_with_the_cli_logs_in_and_a_password_reset_ends_their_session(
    hub_yaml: Path, hub: Hub
) -> None:
    out = await users_ok(
        hub_yaml,
        "add", "night-2", "--role", "staff", "--zone", "sunrise/east", "--name", "Night Two",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert "user night-2 created: staff, zones: sunrise/east" in out
    await hub_sees(hub, "night-2", lambda user: user is not None)
    async with (
        httpx.AsyncClient(base_url=hub.url) as first,
        httpx.AsyncClient(base_url=hub.url) as second,
    ):
        assert await log_in(first, "night-2", PASSWORD) == 200
        me = (await first.get("/api/me")).json()
        assert (me["user"], me["name"], me["role"]) == ("night-2", "Night Two", "staff")
        assert me["zones"] == ["sunrise/east"]
        before = await hub_user(hub, "night-2")
        assert before is not None

        out = await users_ok(hub_yaml, "reset-password", "night-2", stdin=NEW_PASSWORD + "\n")
        assert "sessions have ended" in out
        await hub_sees(
            hub, "night-2", lambda u: u is not None and u.session_gen > before.session_gen
        )

        assert (await first.get("/api/me")).status_code == 401
        assert await log_in(second, "night-2", PASSWORD) == 401
        assert await log_in(second, "night-2", NEW_PASSWORD) == 200
        assert (await second.get("/api/me")).json()["user"] == "night-2"


async def test_a_token_acts_as_its_user_with_their_scope_until_revoked(
    hub_yaml: Path, hub: Hub
) -> None:
    await users_ok(
        hub_yaml, "add", "east-2", "--role", "staff", "--zone", "sunrise/east",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    issued = await asyncio.to_thread(users_cli, hub_yaml, "token", "east-2", "--name", "bridge")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    assert "cannot be shown again" in issued.stderr
    bearer = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=hub.url, headers=bearer) as client:

        async def accepted() -> bool:
            return (await client.get("/api/me")).status_code == 200

        await until(accepted)
        me = (await client.get("/api/me")).json()
        assert (me["user"], me["role"], me["zones"]) == ("east-2", "staff", ["sunrise/east"])
        devices = (await client.get("/api/devices")).json()["devices"]
        assert {device["device"] for device in devices} == EAST_DEVICES

        listing = await users_ok(hub_yaml, "tokens")
        digest = hashlib.sha256(token.encode()).hexdigest()
        assert digest not in listing and token not in listing
        (row,) = [line.split() for line in listing.splitlines() if line.startswith("bridge")]
        assert row == ["bridge", "east-2", "cli", digest[:8] + "…"]

        assert "token bridge revoked" in await users_ok(hub_yaml, "revoke", "bridge")

        async def refused() -> bool:
            return (await client.get("/api/me")).status_code == 401

        await until(refused)
        (shown,) = json.loads(await users_ok(hub_yaml, "tokens", "--json"))
        assert shown["revoked"] is True and digest not in json.dumps(shown)


async def test_a_disabled_user_cannot_log_in_until_enabled_and_the_os_user_is_audited(
    hub_yaml: Path, hub: Hub
) -> None:
    out = await users_ok(hub_yaml, "add", "relief", "--role", "staff", "--site", "*", "--generate")
    (password,) = [line.split(": ")[-1] for line in out.splitlines() if "generated" in line]
    await hub_sees(hub, "relief", lambda user: user is not None)
    async with httpx.AsyncClient(base_url=hub.url) as client:
        assert await log_in(client, "relief", password) == 200
        await users_ok(hub_yaml, "disable", "relief")
        await hub_sees(hub, "relief", lambda user: user is not None and user.disabled)
        assert (await client.get("/api/me")).status_code == 401
        assert await log_in(client, "relief", password) == 401

        await users_ok(hub_yaml, "enable", "relief")
        await hub_sees(hub, "relief", lambda user: user is not None and not user.disabled)
        assert await log_in(client, "relief", password) == 200

    listed = json.loads(await users_ok(hub_yaml, "list", "--json"))
    relief = next(user for user in listed if user["username"] == "relief")
    assert relief | {"sites": ["*"], "source": "cli", "disabled": False} == relief
    with sqlite3.connect(load_hub_config(hub_yaml).database) as db:
        actors = db.execute(
            "SELECT action, actor FROM audit WHERE detail LIKE '%relief%' ORDER BY id"
        ).fetchall()
    cli = f"cli:{getpass.getuser()}"
    for action in ("user_created", "user_disabled", "user_enabled"):
        assert (action, cli) in actors


async def test_a_config_user_is_refused_and_told_to_change_hub_yaml(
    hub_yaml: Path, hub: Hub
) -> None:
    await hub_sees(hub, NURSE[0], lambda user: user is not None and user.source == "config")
    for args in (("reset-password", NURSE[0]), ("disable", NURSE[0])):
        done = await asyncio.to_thread(users_cli, hub_yaml, *args, stdin=NEW_PASSWORD + "\n")
        assert done.returncode == 1, args
        assert "change it in hub.yaml" in done.stderr
    async with httpx.AsyncClient(base_url=hub.url) as client:
        assert await log_in(client, *NURSE) == 200


def run_in_process(
    config: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    try:
        code = carewatch(["users", *args, "--config", str(config)])
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("add", "gran", "--role", "family"), 2, "a family member needs at least one resident"),
        (("add", "gran", "--role", "family", "--resident", "E-9999"), 2, "no resident 'E-9999'"),
        (("add", "x1", "--role", "staff", "--site", "moonrise"), 2, "no site 'moonrise'"),
        (("add", "x2", "--role", "staff", "--zone", "sunrise/north"), 2, "no zone 'north'"),
        (("add", "x3", "--role", "nurse", "--site", "sunrise"), 2, "roles: admin, supervisor"),
        (("add", "x4", "--role", "staff"), 2, "a staff needs sites"),
        (("add", "nurse", "--role", "staff", "--site", "sunrise"), 1, "change it in hub.yaml"),
        (("update", "nobody", "--role", "admin"), 1, "no user 'nobody'"),
        (("reset-password", "nobody"), 1, "no user 'nobody'"),
        (("update", "nobody"), 2, "nothing to change"),
        (("token", "nobody", "--name", "bridge"), 1, "no user 'nobody'"),
        (("revoke", "nothing"), 1, "no token named 'nothing'"),
    ],
)
def test_a_wrong_request_is_refused_with_what_to_do(
    offline_yaml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    options = ("--password-file", str(secret)) if args[0] == "add" else ()
    got, _, err = run_in_process(offline_yaml, capsys, *args, *options)
    assert (got, message in err) == (code, True), err
    _, out, _ = run_in_process(offline_yaml, capsys, "list", "--json")
    assert json.loads(out) == []


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-pw", "at least 10 characters"),
        ("", "no password given"),
        ("Gran-12345", "user name"),
    ],
)
def test_a_weak_password_is_refused(offline_yaml: Path, password: str, message: str) -> None:
    args = ("add", "gran-12345", "--role", "family", "--resident", "E-0001")
    done = users_cli(offline_yaml, *args, stdin=password + "\n")
    assert (done.returncode, message in done.stderr) == (2, True), done.stderr
    assert json.loads(users_cli(offline_yaml, "list", "--json").stdout) == []


def test_hash_prints_an_argon2_hash_of_the_password_for_the_config_file() -> None:
    done = subprocess.run(
        [*CLI, "hash"], input=PASSWORD + "\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    digest = done.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert PasswordHasher().verify(digest, PASSWORD)


def at_a_terminal(config: Path, args: list[str], typed: list[str]) -> tuple[int, str]:
    """Run the command with a terminal as its stdin; type each line when a prompt appears."""
    leader, terminal = pty.openpty()
    # A new session has no controlling terminal, so getpass prompts on stderr and reads stdin.
    process = subprocess.Popen(
        [*CLI, *args, "--config", str(config)],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    os.close(terminal)
    assert process.stderr is not None
    err = b""
    for line in typed:
        prompt = b""
        while not prompt.rstrip().endswith(b":"):
            ready, _, _ = select.select([process.stderr], [], [], 30)
            assert ready, f"no prompt: {err + prompt!r}"
            prompt += os.read(process.stderr.fileno(), 1024)
        os.write(leader, line.encode() + b"\n")
        err += prompt
    out, rest = process.communicate(timeout=60)
    os.close(leader)
    return process.returncode, (err + rest).decode() + out.decode()


def test_a_password_typed_at_a_terminal_is_asked_twice(offline_yaml: Path) -> None:
    add = ["add", "anne-2", "--role", "family", "--resident", "E-0001"]
    code, text = at_a_terminal(offline_yaml, add, [PASSWORD, PASSWORD + "x"])
    assert (code, "the two passwords differ" in text) == (2, True), text
    code, text = at_a_terminal(offline_yaml, add, [PASSWORD, PASSWORD])
    assert (code, "user anne-2 created" in text) == (0, True), text
    assert text.count("password:") + text.count("Again:") >= 2
    assert PASSWORD not in text
