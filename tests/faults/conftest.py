"""Fixtures of the fault tests; the helpers they use live in tests/faults/harness.py.

Fault tests written before harness.py existed import its names from here: the redundant
aliases below re-export them (for mypy --strict too) until no test module does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from hotconfig.testing.server import EmbeddedServer
from tests.faults.harness import CONVERGE_TIMEOUT as CONVERGE_TIMEOUT
from tests.faults.harness import NO_POLL as NO_POLL
from tests.faults.harness import Fleet as Fleet
from tests.faults.harness import Gate as Gate
from tests.faults.harness import StatusLog as StatusLog
from tests.faults.harness import VersionLog as VersionLog
from tests.faults.harness import effective as effective
from tests.faults.harness import kill_pubsub as kill_pubsub
from tests.faults.harness import pubsub_clients as pubsub_clients
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
