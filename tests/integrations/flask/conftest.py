"""Fixtures of the Flask integration tests: real apps on the test's real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from flask import Flask

from hotconfig import ConfigStore
from hotconfig.testing import EmbeddedServer
from hotconfig_flask import HotConfig
from tests.integrations.flask.apps import create_app


class AppFactory(Protocol):
    """Build the test app on the test's server; ``config`` overrides its ``app.config``."""

    def __call__(self, extension: HotConfig[Any] | None = None, **config: Any) -> Flask: ...


@pytest.fixture
def store(server: EmbeddedServer) -> Iterator[ConfigStore]:
    """The Config Service side, on the test's server."""
    with ConfigStore(server.url) as opened:
        yield opened


@pytest.fixture
def make_app(server: EmbeddedServer) -> Iterator[AppFactory]:
    """Apps from the factory, pointed at ``server``; their clients are closed after the test."""
    made: list[Flask] = []

    def make(extension: HotConfig[Any] | None = None, **config: Any) -> Flask:
        app = create_app({"HOTCONFIG_URL": server.url, **config}, extension=extension)
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["hotconfig"].close()
