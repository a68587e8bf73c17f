"""Fixtures of the fault tests; the helpers they use live in tests/faults/harness.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hotconfig.testing.server import EmbeddedServer
from tests.faults.harness import Fleet
from tests.faults.proxy import TcpProxy


@pytest.fixture
def fleet_factory() -> Iterator[Callable[[str], Fleet]]:
    """Make a :class:`Fleet` for any server URL; every fleet is closed after the test."""
    fleets: list[Fleet] = []

    def make(url: str) -> Fleet:
        fleet = Fleet(url)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in reversed(fleets):
        fleet.close()


@pytest.fixture
def fleet(server: EmbeddedServer, fleet_factory: Callable[[str], Fleet]) -> Fleet:
    """A :class:`Fleet` on the test's ``server``."""
    return fleet_factory(server.url)


@pytest.fixture
def proxy(server: EmbeddedServer) -> Iterator[TcpProxy]:
    """A :class:`TcpProxy` in front of ``server``."""
    with TcpProxy(server.host, server.port) as started:
        yield started
