"""The test PostgreSQL helper (tests/support/postgres.py) and its fixtures (tests/conftest.py):
a real server that is not root, a fresh database per test, outages and crashes on the same port.
"""

from __future__ import annotations

import os
import pwd
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import tests.support.postgres
from tests.support.mosquitto import free_port
from tests.support.postgres import (
    PostgresError,
    PostgresServer,
    find_postgres_bin,
    postgres,
)


def uids(pid: int) -> list[int]:
    """The real, effective, saved and filesystem user ids of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(uid) for uid in line.split()[1:]]
    raise AssertionError(f"no Uid line for process {pid}")


def groups(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Groups:"):
            return [int(gid) for gid in line.split()[1:]]
    raise AssertionError(f"no Groups line for process {pid}")


def expected_uid() -> int:
    return pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()


def user_tables(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
    return [row[0] for row in rows]


def test_the_server_accepts_a_connection_and_is_postgresql(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://carewatch@127.0.0.1:")
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute("SELECT version(), current_user").fetchone()
    assert row is not None
    version, user = row
    assert "PostgreSQL" in version
    assert user == "carewatch"


def test_the_server_does_not_run_as_root(postgres_server: PostgresServer) -> None:
    uid = expected_uid()
    assert uid != 0
    assert uids(postgres_server.pid) == [uid] * 4
    assert 0 not in groups(postgres_server.pid)  # root's supplementary groups are dropped
    with psycopg.connect(postgres_server.url("postgres")) as connection:
        row = connection.execute(
            "SELECT current_setting('data_directory'), pg_backend_pid()"
        ).fetchone()
        assert row is not None
        data_directory, backend = row
        # Checked while the connection is open: its backend process ends when it closes.
        assert uids(backend) == [uid] * 4
    assert os.stat(data_directory).st_uid == uid


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_a_fresh_empty_database(postgres_url: str, run: int) -> None:
    # Run twice: were the database shared, the second run would find the first one's table.
    assert user_tables(postgres_url) == []
    with psycopg.connect(postgres_url) as connection:
        connection.execute("CREATE TABLE marker (run integer)")
        connection.execute("INSERT INTO marker VALUES (%s)", (run,))
    assert user_tables(postgres_url) == ["marker"]


def test_two_databases_on_the_server_are_separate(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    other_url = postgres_server.create_database(f"other_{uuid.uuid4().hex}")
    assert other_url != postgres_url
    with psycopg.connect(postgres_url) as connection:
        connection.execute("CREATE TABLE only_here (id integer)")
    assert user_tables(postgres_url) == ["only_here"]
    assert user_tables(other_url) == []


def test_a_template_is_copied_whole_and_takes_no_connection(
    postgres_server: PostgresServer,
) -> None:
    name = f"tpl_{uuid.uuid4().hex}"
    template_url = postgres_server.create_database(name)
    with psycopg.connect(template_url) as connection:
        connection.execute("CREATE TABLE kept (n integer)")
        connection.execute("INSERT INTO kept VALUES (1)")
    postgres_server.make_template(name)
    with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
        psycopg.connect(template_url).close()

    copies = [
        postgres_server.create_database(f"copy_{run}_{uuid.uuid4().hex}", template=name)
        for run in (1, 2)
    ]
    with psycopg.connect(copies[0]) as connection:
        connection.execute("INSERT INTO kept VALUES (2)")
    with psycopg.connect(copies[1]) as connection:
        assert connection.execute("SELECT n FROM kept").fetchall() == [(1,)]


def refuses(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def test_stop_and_start_bring_the_server_back_on_its_port_with_its_data() -> None:
    with postgres() as server:
        url = server.create_database("kept")
        port = server.port
        with psycopg.connect(url) as connection:
            connection.execute("CREATE TABLE readings (value integer)")
            connection.execute("INSERT INTO readings VALUES (42)")
        held = psycopg.connect(url, autocommit=True)
        try:
            server.stop()
            assert not server.running
            assert refuses(url)
            with pytest.raises(psycopg.OperationalError):
                held.execute("SELECT 1")  # the outage drops connections already open
        finally:
            held.close()

        server.start()
        assert server.port == port
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT value FROM readings").fetchall() == [(42,)]


def test_a_killed_server_recovers_its_committed_data_at_the_next_start() -> None:
    with postgres(settings={"synchronous_commit": "on"}) as server:
        url = server.create_database("crashed")
        with psycopg.connect(url) as connection:
            connection.execute("CREATE TABLE readings (value integer)")
            connection.execute("INSERT INTO readings VALUES (7)")
        backend = psycopg.connect(url)  # a backend process, killed with the postmaster
        try:
            server.kill()
            assert refuses(url)
        finally:
            backend.close()

        server.start()
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT value FROM readings").fetchall() == [(7,)]
        assert "database system was interrupted" in server.log()  # crash recovery ran


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by a listener that is not postgres (as another test run's would be)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_picked_port_that_is_taken_moves_the_server_to_another_one(
    monkeypatch: pytest.MonkeyPatch, taken_port: int
) -> None:
    picks: list[int] = []

    def pick(host: str = "127.0.0.1") -> int:
        picks.append(taken_port if not picks else free_port(host))
        return picks[-1]

    monkeypatch.setattr(tests.support.postgres, "free_port", pick)
    with postgres() as server:
        assert picks[0] == taken_port
        assert server.port == picks[-1] != taken_port
        assert "Address already in use" in server.log()
        with psycopg.connect(server.url("postgres")) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)


def test_a_missing_postgresql_fails_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(tests.support.postgres.POSTGRES_BIN, raising=False)
    monkeypatch.setattr(tests.support.postgres, "PACKAGED", tmp_path)
    with pytest.raises(PostgresError, match=r"apt-get install postgresql"):
        find_postgres_bin()


def test_the_newest_packaged_version_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(tests.support.postgres.POSTGRES_BIN, raising=False)
    for version in ("9.6", "15", "13"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "initdb").touch()
    monkeypatch.setattr(tests.support.postgres, "PACKAGED", tmp_path)
    assert find_postgres_bin() == tmp_path / "15" / "bin"
