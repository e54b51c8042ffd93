"""The test Mosquitto helper (tests/support/mosquitto.py) when the port it picked is taken
meanwhile.

Ports are found by binding port 0 and closing the socket, so under parallel test runs another
process can take one before mosquitto binds it. Here that race is made certain: the helper's
first pick is a port a listening socket already holds.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import aiomqtt
import pytest

import tests.support.mosquitto
from tests.support.mosquitto import MosquittoPortInUse, free_port, mosquitto


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by a listener that is not mosquitto (as another test run's would be)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def first_pick_is(monkeypatch: pytest.MonkeyPatch, taken_port: int) -> list[int]:
    """The helper's free_port answers `taken_port` once, then real free ports; returns its picks."""
    picks: list[int] = []

    def pick(host: str = "127.0.0.1") -> int:
        picks.append(taken_port if not picks else free_port(host))
        return picks[-1]

    monkeypatch.setattr(tests.support.mosquitto, "free_port", pick)
    return picks


async def connects(host: str, port: int, identifier: str) -> None:
    async with aiomqtt.Client(host, port, identifier=identifier) as client:
        await client.publish("helper/check", b"1", qos=1)


async def test_a_picked_port_that_is_taken_moves_the_broker_to_another_one(
    taken_port: int, first_pick_is: list[int]
) -> None:
    with mosquitto() as broker:
        assert first_pick_is[0] == taken_port
        assert broker.port == first_pick_is[-1] != taken_port
        assert broker.running
        assert f"listener {broker.port} " in broker.config_path.read_text()
        await connects(broker.host, broker.port, "helper-moved")
        assert "Address already in use" in broker.log()
        assert "as helper-moved" in broker.log()  # the client reached this broker, not the holder


async def test_a_config_function_is_remade_for_the_port_the_broker_moves_to(
    taken_port: int, first_pick_is: list[int]
) -> None:
    def config(port: int) -> str:
        return f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nlog_type all\n"

    with mosquitto(config=config) as broker:
        assert broker.port != taken_port
        assert broker.config_path.read_text() == config(broker.port)
        await connects(broker.host, broker.port, "helper-config")
        assert "as helper-config" in broker.log()


def test_a_port_the_caller_gave_is_never_moved(taken_port: int) -> None:
    with pytest.raises(MosquittoPortInUse, match=f"port {taken_port} is taken"):
        with mosquitto(port=taken_port):
            pass


def test_a_restart_keeps_the_port_and_reports_it_taken_rather_than_moving(
    first_pick_is: list[int],
) -> None:
    with mosquitto() as broker:
        port = broker.port
        broker.stop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind((broker.host, port))
            squatter.listen()
            with pytest.raises(MosquittoPortInUse):
                broker.start()
        broker.start()
        assert broker.port == port
        assert broker.running
