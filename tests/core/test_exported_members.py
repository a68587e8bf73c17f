"""The public names are a promise: adding one is a decision, removing one a breaking change."""

from __future__ import annotations

import hotconfig
from hotconfig import signals


def test_public_names_are_pinned() -> None:
    assert hotconfig.__all__ == [
        "Change",
        "ClientClosedError",
        "ConfigKeyError",
        "ConfigStore",
        "Entry",
        "Fleet",
        "HistoryEntry",
        "HotConfig",
        "HotConfigError",
        "InvalidMessageError",
        "InvalidValueError",
        "NotConfiguredError",
        "Snapshot",
        "Stats",
        "Status",
        "StoreError",
        "config",
        "configure",
        "signals",
    ]
    for name in hotconfig.__all__:
        assert getattr(hotconfig, name) is not None


def test_signal_names_are_pinned() -> None:
    assert signals.__all__ == [
        "Change",
        "Status",
        "config_changed",
        "config_rejected",
        "send_isolated",
        "status_changed",
    ]


def test_every_error_is_a_hotconfig_error_and_a_builtin() -> None:
    assert issubclass(hotconfig.ConfigKeyError, KeyError)
    assert issubclass(hotconfig.InvalidMessageError, ValueError)
    assert issubclass(hotconfig.InvalidValueError, ValueError)
    assert issubclass(hotconfig.NotConfiguredError, RuntimeError)
    assert issubclass(hotconfig.ClientClosedError, RuntimeError)
    assert issubclass(hotconfig.StoreError, RuntimeError)
    for name in hotconfig.__all__:
        obj = getattr(hotconfig, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, hotconfig.HotConfigError)


def test_testing_names_are_pinned() -> None:
    import hotconfig.testing
    from hotconfig.testing import plugin

    assert hotconfig.testing.__all__ == [
        "EmbeddedServer",
        "EmbeddedServerError",
        "ServerKind",
        "available_kinds",
        "free_port",
        "override",
    ]
    for name in hotconfig.testing.__all__:
        assert getattr(hotconfig.testing, name) is not None
    assert plugin.__all__ == ["hotconfig_client", "hotconfig_server", "hotconfig_store"]
