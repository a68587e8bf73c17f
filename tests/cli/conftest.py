"""Fixtures of the CLI tests: the ``hotconfig`` command run in-process against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest
from click.testing import CliRunner, Result

from hotconfig import ConfigStore
from hotconfig.cli import group
from hotconfig.testing.server import EmbeddedServer


class Run(Protocol):
    def __call__(self, *args: str, input: str | None = None) -> Result: ...


@pytest.fixture
def run(server: EmbeddedServer) -> Run:
    """Run ``hotconfig ARGS...`` with ``$HOTCONFIG_URL`` pointing at the test's server."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(
            group,
            list(args),
            input=input,
            env={"HOTCONFIG_URL": server.url},
            catch_exceptions=False,
        )

    return invoke


@pytest.fixture
def store(server: EmbeddedServer) -> Iterator[ConfigStore]:
    with ConfigStore(server.url) as store:
        yield store
