"""Fixtures of the core tests: a store and a started client on the test's real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hotconfig import ConfigStore, HotConfig, Status
from hotconfig.testing.server import EmbeddedServer


@pytest.fixture
def store(server: EmbeddedServer) -> Iterator[ConfigStore]:
    """A :class:`ConfigStore` on ``server``."""
    with ConfigStore(server.url) as store:
        yield store


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[HotConfig[Any]]:
    """An untyped client of ``server`` following ``global``, LIVE."""
    with HotConfig(server.url) as config:
        assert config.status is Status.LIVE
        yield config
