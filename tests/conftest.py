"""Fixtures that give tests real Redis and Valkey servers on free loopback ports.

Every test that asks for ``server`` (or ``server_kind``) runs once per server kind. A kind
whose binary is missing is skipped with the reason in the report, except on CI (``CI`` set),
where both kinds must be tested and a missing one fails. ``HOTCONFIG_TEST_SERVER`` (``redis``
or ``valkey``, as for the plugin's fixtures) runs one kind only: ``make test-lowest`` checks the
client libraries' floors against one server, the main run covers both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Protocol, get_args

import pytest
import redis

from hotconfig.testing.server import (
    EmbeddedServer,
    EmbeddedServerError,
    ServerKind,
    find_binary,
)

ALL_KINDS: tuple[ServerKind, ...] = get_args(ServerKind)


def _kinds() -> tuple[ServerKind, ...]:
    asked = os.environ.get("HOTCONFIG_TEST_SERVER", "").strip().lower()
    if not asked:
        return ALL_KINDS
    if asked not in ALL_KINDS:
        raise pytest.UsageError(
            f"HOTCONFIG_TEST_SERVER={asked!r} is not a server kind: use one of "
            f"{', '.join(ALL_KINDS)}, or leave it unset for both"
        )
    return (asked,)


KINDS = _kinds()


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class ServerFactory(Protocol):
    """Start another server; keyword arguments are those of ``EmbeddedServer``."""

    def __call__(self, kind: ServerKind | None = None, **kwargs: Any) -> EmbeddedServer: ...


@pytest.fixture(params=KINDS)
def server_kind(request: pytest.FixtureRequest) -> ServerKind:
    """The server kind under test: ``"valkey"`` or ``"redis"``."""
    kind: ServerKind = request.param
    try:
        find_binary(kind)
    except EmbeddedServerError as exc:
        if _on_ci():
            pytest.fail(f"CI must test both server kinds: {exc}", pytrace=False)
        pytest.skip(str(exc))
    return kind


@pytest.fixture
def server_factory(server_kind: ServerKind) -> Iterator[ServerFactory]:
    """Start extra servers (of ``server_kind`` unless told otherwise); all closed at teardown."""
    started: list[EmbeddedServer] = []

    def start(kind: ServerKind | None = None, **kwargs: Any) -> EmbeddedServer:
        server = EmbeddedServer(kind or server_kind, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.close()


@pytest.fixture
def server(server_factory: ServerFactory) -> EmbeddedServer:
    """A running server of ``server_kind``, on a free 127.0.0.1 port, empty."""
    return server_factory()


@pytest.fixture
def redis_client(server: EmbeddedServer) -> Iterator[redis.Redis]:
    """A redis-py client (bytes responses) connected to ``server``."""
    client = server.client()
    yield client
    client.close()
