"""A real PostgreSQL server for tests, on a free loopback port, from Debian's packages.

    from tests.support.postgres import postgres

    with postgres() as server:           # raises if Debian's postgresql is missing: never skips
        url = server.create_database("t_orders")   # postgresql://carewatch@127.0.0.1:PORT/t_orders
        server.make_template("t_orders")            # no connections from now on; then copies:
        server.create_database("t_copy", template="t_orders")
        server.url("postgres")           # the URL of any database on it
        ...
        server.stop()                    # an outage: fast shutdown, the port refuses connections
        server.start()                   # back on the same port, with the same data
        server.kill()                    # a crash: SIGKILL to the server and all its processes;
        server.start()                   # the next start recovers from the write-ahead log

The server is made for tests: a fresh cluster in a temporary directory (initdb with the
superuser `carewatch`, trust authentication, no password, UTF8, the C locale), listening on
127.0.0.1 only, with no Unix socket, fsync, synchronous_commit and full_page_writes off and
max_connections 200. Other settings (postgres `-c` options) are keyword arguments:

    with postgres(settings={"synchronous_commit": "on"}) as server: ...

With synchronous_commit off, a commit returns before its WAL is written, so `kill()` may lose
the last fraction of a second of commits (`stop()` loses nothing: it checkpoints). A test of
what survives a crash should turn synchronous_commit on.

PostgreSQL refuses to run as root. When the tests run as root, initdb and the server run as
`nobody` (in nobody's primary group, without root's supplementary groups) and the temporary
directory is given to nobody; it is made in $TMPDIR if nobody can reach it there, else in /tmp.
Otherwise they run as the current user.

The binaries are the newest /usr/lib/postgresql/*/bin holding initdb; the environment variable
CAREWATCH_POSTGRES_BIN names another directory.

The free port is found by binding port 0 and closing the socket, so another process may take it
before the server binds it. A first start that fails to bind its port is retried on another
free port; the port of a server that has already run (`stop()`/`start()`) is never moved. The
server is up once a connection to it is accepted and reports this cluster's data directory.

As pytest fixtures (tests/conftest.py has these):

    @pytest.fixture(scope="session")
    def postgres_server() -> Iterator[PostgresServer]:
        with postgres() as server:
            yield server

    @pytest.fixture
    def postgres_url(postgres_server: PostgresServer) -> str:
        return postgres_server.create_database(f"t_{next(counter)}_{os.getpid()}")
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from tests.support.mosquitto import free_port

POSTGRES_BIN = "CAREWATCH_POSTGRES_BIN"
PACKAGED = Path("/usr/lib/postgresql")
SUPERUSER = "carewatch"
UNPRIVILEGED_USER = "nobody"  # who runs the server when the tests run as root
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 5  # ports tried when the picked one turns out to be taken
PORT_TAKEN = re.compile(r"could not bind|Address already in use")
TEST_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresError(RuntimeError):
    pass


class PostgresPortInUse(PostgresError):
    """The server exited because something else holds its port."""


def _version(bin_dir: Path) -> tuple[int, ...]:
    """15 for /usr/lib/postgresql/15/bin; directories named otherwise sort first."""
    name = bin_dir.parent.name
    return tuple(int(part) for part in name.split(".")) if re.fullmatch(r"[\d.]+", name) else ()


def find_postgres_bin() -> Path:
    """The directory of initdb, pg_ctl and postgres: $CAREWATCH_POSTGRES_BIN, else the newest
    /usr/lib/postgresql/*/bin. Raises PostgresError if there is none."""
    override = os.environ.get(POSTGRES_BIN)
    if override:
        bin_dir = Path(override)
        if not (bin_dir / "initdb").is_file():
            raise PostgresError(f"{POSTGRES_BIN}={override} holds no initdb")
        return bin_dir
    found = [initdb.parent for initdb in PACKAGED.glob("*/bin/initdb") if initdb.is_file()]
    if not found:
        raise PostgresError(
            f"PostgreSQL not found (no {PACKAGED}/*/bin/initdb); install it "
            "(apt-get install postgresql) — these tests need a real server"
        )
    return max(found, key=_version)


def _reachable_by_others(directory: Path) -> bool:
    """Whether every directory from / down to this one may be entered by any user."""
    resolved = directory.resolve()
    return all(part.stat().st_mode & stat.S_IXOTH for part in (resolved, *resolved.parents))


def _temporary_parent(runs_as: pwd.struct_passwd | None) -> str | None:
    if runs_as is None or _reachable_by_others(Path(tempfile.gettempdir())):
        return None  # tempfile's default
    return "/tmp"


def _server_environment() -> dict[str, str]:
    """The environment without libpq's PG* variables, which would redirect initdb or clients."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}


def _group_alive(pgid: int) -> bool:
    """Whether a process of this process group is still running (zombies do not count)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@dataclass(eq=False)
class PostgresServer:
    """A postgres process over a cluster in `workdir`; `stop()`/`start()` keep port and data."""

    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, picked at the first start
    settings: Mapping[str, str] = field(default_factory=dict)
    bin_dir: Path = field(default_factory=find_postgres_bin)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _may_move_port: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "postgres.log"
        self.runs_as = pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else None
        if self.port == 0:
            self.port = free_port(self.host)
            self._may_move_port = True

    # -- what tests use ---------------------------------------------------------------------

    def url(self, database: str) -> str:
        """postgresql://carewatch@127.0.0.1:PORT/DATABASE"""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{quote(database, safe='')}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE `name`, a copy of `template` (by default template1, which is
        empty); returns its URL. PostgreSQL refuses to copy a database somebody is connected
        to (it waits a few seconds for them to leave first)."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(statement)
        return self.url(name)

    def make_template(self, name: str) -> None:
        """Make database `name` a template that nobody can connect to any more: no connection
        is ever open while `create_database(..., template=name)` copies it, and autovacuum
        leaves it alone."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                    sql.Identifier(name)
                )
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        if self._process is None:
            raise PostgresError("the server is not running")
        return self._process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- the cluster and the process --------------------------------------------------------

    def initdb(self) -> None:
        """Make the cluster (once, before the first start)."""
        if self.runs_as is not None:
            os.chown(self.workdir, self.runs_as.pw_uid, self.runs_as.pw_gid)
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=self.workdir,
            env=_server_environment(),
            capture_output=True,
            text=True,
            check=False,
            user=self._user(),
            group=self._group(),
            extra_groups=self._extra_groups(),
        )
        if result.returncode != 0:
            raise PostgresError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def _user(self) -> int | None:
        return None if self.runs_as is None else self.runs_as.pw_uid

    def _group(self) -> int | None:
        return None if self.runs_as is None else self.runs_as.pw_gid

    def _extra_groups(self) -> list[int] | None:
        return None if self.runs_as is None else []  # root's supplementary groups are dropped

    def start(self) -> None:
        """Start the server and wait until it accepts connections; raises PostgresError if not."""
        if self.running:
            raise PostgresError("the server is already running")
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once()
                break
            except PostgresPortInUse:
                if not self._may_move_port or attempt == START_ATTEMPTS:
                    raise
                self.port = free_port(self.host)
        self._may_move_port = False

    def _command(self) -> list[str]:
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for name, value in {
            **TEST_SETTINGS,
            "listen_addresses": self.host,
            **self.settings,
        }.items():
            command += ["-c", f"{name}={value}"]
        return command

    def _start_once(self) -> None:
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                env=_server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, which kill() ends as a whole
                user=self._user(),
                group=self._group(),
                extra_groups=self._extra_groups(),
            )
        self._wait_until_accepting(log_start)

    def _wait_until_accepting(self, log_start: int) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                started = self.log()[log_start:]
                if PORT_TAKEN.search(started):
                    raise PostgresPortInUse(f"port {self.port} is taken:\n{started}")
                raise PostgresError(f"postgres exited at start:\n{started}")
            if self._ready(process.pid) and self._accepts():
                return
            time.sleep(0.05)
        self.stop()
        raise PostgresError(
            f"postgres did not accept connections on {self.port} within {START_TIMEOUT_S} s:\n"
            + "\n".join(self.log().splitlines()[-40:])
        )

    def _ready(self, pid: int) -> bool:
        """Whether this postmaster has written "ready" into its lock file (postmaster.pid): it
        has bound its port and finished recovery. Until then a connection is not tried, as the
        port may be somebody else's."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0] == str(pid) and lines[7].strip() == "ready"

    def _accepts(self) -> bool:
        """Whether this cluster (not another server on the port) takes a connection."""
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=1) as connection:
                row = connection.execute("SELECT current_setting('data_directory')").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and Path(row[0]).resolve() == self.data_dir.resolve()

    def stop(self, *, immediate: bool = False) -> None:
        """Shut the server down; every client connection drops and the port refuses them.

        A fast shutdown (SIGINT) ends the sessions and checkpoints; `immediate` (SIGQUIT) does
        not checkpoint, so the next start recovers from the write-ahead log. Either way, a
        server that does not exit in time is killed."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._kill_group(process)

    def kill(self) -> None:
        """A crash: SIGKILL to the postmaster and every backend (its process group)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            self._kill_group(process)

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
        # The backends are not our children: wait until they are gone too, or the next start
        # finds the old shared memory still attached and refuses to run.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.02)


@contextlib.contextmanager
def postgres(
    host: str = "127.0.0.1", *, settings: Mapping[str, str] | None = None
) -> Iterator[PostgresServer]:
    """Make a fresh cluster, start its server on a free port; stop it and remove it afterwards.

    Raises PostgresError if it cannot. `settings` are postgres options (`-c name=value`) over
    the test settings.
    """
    bin_dir = find_postgres_bin()
    runs_as = pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(
        prefix="carewatch-postgres-", dir=_temporary_parent(runs_as)
    ) as workdir:
        server = PostgresServer(Path(workdir), host, settings=dict(settings or {}), bin_dir=bin_dir)
        server.initdb()
        server.start()
        try:
            yield server
        finally:
            server.stop(immediate=True)
