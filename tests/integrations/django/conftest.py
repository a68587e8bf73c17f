"""Fixtures of the Django tests: the test project set up once, its app reset around each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from hotconfig.testing import EmbeddedServer
from hotconfig_django import LazyConfig, config, lifecycle
from hotconfig_django.pytest_plugin import hotconfig_override
from tests.integrations.django import project

__all__ = ["hotconfig_override"]


@pytest.fixture(scope="session", autouse=True)
def django_project() -> None:
    """Django set up with tests/integrations/django/settings.py, once per test process."""
    project.configure()


@pytest.fixture(autouse=True)
def app(django_project: None) -> Iterator[LazyConfig]:
    """The app as ready() leaves it under pytest: a client built, no listener."""
    lifecycle.setup()
    yield config
    lifecycle.teardown()


@pytest.fixture
def hotconfig_settings() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.HOTCONFIG)


@pytest.fixture
def live(server: EmbeddedServer, hotconfig_settings: dict[str, Any]) -> Iterator[LazyConfig]:
    """The app following ``server`` with a listener, LIVE."""
    with override_settings(HOTCONFIG={**hotconfig_settings, "URL": server.url, "START": True}):
        lifecycle.setup()
        assert str(config.status) == "LIVE"
        yield config
        lifecycle.teardown()
