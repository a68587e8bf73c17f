"""hotconfig for Django: live settings, one line in ``INSTALLED_APPS``.

INSTALLED_APPS = [..., "hotconfig_django"]
HOTCONFIG = {"URL": "redis://127.0.0.1:6379/0", "MODEL": "myproject.config.Settings"}

from hotconfig_django import config

config.get("feature_x"); config.settings.ai.model.default
"""

from __future__ import annotations

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("hotconfig_django needs Django: pip install 'hotconfig[django]'") from exc

from .errors import ConfigNotReadyError, HotConfigSettingsError, ReceiverError
from .lazy import LazyConfig, config
from .lifecycle import start

__all__ = [
    "ConfigNotReadyError",
    "HotConfigSettingsError",
    "LazyConfig",
    "ReceiverError",
    "config",
    "start",
]
