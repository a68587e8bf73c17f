"""The names hotconfig_django promises; a change here is a change of its public API."""

from __future__ import annotations

import hotconfig_django
from hotconfig_django import checks, context_processors, signals, testing


def test_the_package_exports_exactly_its_public_names() -> None:
    assert hotconfig_django.__all__ == [
        "ConfigNotReadyError",
        "HotConfigSettingsError",
        "LazyConfig",
        "ReceiverError",
        "config",
        "start",
    ]
    for name in hotconfig_django.__all__:
        assert hasattr(hotconfig_django, name)


def test_the_modules_a_project_names_in_its_settings_exist() -> None:
    from hotconfig_django import constance  # reads constance's settings: after setup only

    assert constance.Backend.__module__ == "hotconfig_django.constance"
    assert callable(context_processors.hotconfig)
    assert signals.__all__ == ["config_updated"]
    assert testing.__all__ == ["override_config"]
    assert callable(checks.register)
