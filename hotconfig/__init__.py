"""hotconfig: hot-reloaded configuration over Redis Pub/Sub, read at memory speed.

The names below are imported on first use (PEP 562), so that ``import hotconfig.testing.plugin``
(which pytest loads in every session of every project that installs hotconfig) does not pay
for importing redis-py and pydantic until a fixture asks for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import signals
    from ._config.options import Connection, Timings
    from ._config.snapshot import Snapshot
    from ._config.stats import Stats
    from ._config.wire import Entry, Limits
    from ._redis.connection import resolve_url
    from .client import HotConfig
    from .default import config, configure
    from .errors import (
        ClientClosedError,
        ConfigKeyError,
        HotConfigError,
        InvalidMessageError,
        InvalidValueError,
        NotConfiguredError,
        RejectReason,
        StoreError,
    )
    from .fleet import Fleet
    from .signals import Change, Status
    from .store import ConfigStore, HistoryEntry

__all__ = [
    "Change",
    "ClientClosedError",
    "ConfigKeyError",
    "ConfigStore",
    "Connection",
    "Entry",
    "Fleet",
    "HistoryEntry",
    "HotConfig",
    "HotConfigError",
    "InvalidMessageError",
    "InvalidValueError",
    "Limits",
    "NotConfiguredError",
    "RejectReason",
    "Snapshot",
    "Stats",
    "Status",
    "StoreError",
    "Timings",
    "config",
    "configure",
    "resolve_url",
    "signals",
]

__version__ = "0.1.0"

# Where each public name lives; "" marks a submodule exported as itself.
_HOME = {
    "Change": "signals",
    "ClientClosedError": "errors",
    "ConfigKeyError": "errors",
    "ConfigStore": "store",
    "Connection": "_config.options",
    "Entry": "_config.wire",
    "Fleet": "fleet",
    "HistoryEntry": "store",
    "HotConfig": "client",
    "HotConfigError": "errors",
    "InvalidMessageError": "errors",
    "InvalidValueError": "errors",
    "Limits": "_config.wire",
    "NotConfiguredError": "errors",
    "RejectReason": "errors",
    "Snapshot": "_config.snapshot",
    "Stats": "_config.stats",
    "Status": "signals",
    "StoreError": "errors",
    "Timings": "_config.options",
    "config": "default",
    "configure": "default",
    "resolve_url": "_redis.connection",
    "signals": "",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'hotconfig' has no attribute {name!r}")
    if home == "":
        value: Any = importlib.import_module(f"{__name__}.{name}")
    else:
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups are plain module attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
