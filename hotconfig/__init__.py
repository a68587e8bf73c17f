"""hotconfig: hot-reloaded configuration over Redis Pub/Sub, read at memory speed."""

from . import signals
from .client import HotConfig
from .default import config, configure
from .errors import (
    ClientClosedError,
    ConfigKeyError,
    HotConfigError,
    InvalidMessageError,
    InvalidValueError,
    NotConfiguredError,
    StoreError,
)
from .signals import Change, Status
from .snapshot import Snapshot
from .stats import Stats
from .store import ConfigStore, HistoryEntry
from .wire import Entry

__all__ = [
    "Change",
    "ClientClosedError",
    "ConfigKeyError",
    "ConfigStore",
    "Entry",
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

__version__ = "0.1.0"
