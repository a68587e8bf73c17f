"""A django-constance backend on hotconfig, for teams moving off constance.

    CONSTANCE_BACKEND = "hotconfig_django.constance.Backend"

``constance.config.X`` then reads this process's snapshot (no round trip), the admin and
``config.X = v`` write through :class:`hotconfig.ConfigStore`, and every process sees the new
value as soon as its listener applies it; constance's own ``config_updated`` signal is sent in
every process, not only in the one that wrote. Each constance key is a hotconfig key of the
same name, so ``hotconfig_django.config.get("SITE_NAME")`` reads the same value.

Values JSON has no type for (dates, times, decimals, UUIDs, timedeltas) are stored in
constance's own tagged form, ``{"__type__": "datetime", "__value__": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from constance import config as constance_config  # type: ignore[import-untyped]
from constance import settings as constance_settings
from constance import signals as constance_signals
from constance.backends import Backend as ConstanceBackend  # type: ignore[import-untyped]
from constance.codecs import dumps, loads  # type: ignore[import-untyped]

from hotconfig import Change

from . import lifecycle, process
from .errors import ConfigNotReadyError, HotConfigSettingsError
from .lazy import config
from .signals import config_updated

__all__ = ["Backend", "decode", "encode", "forward_constance_signal"]

_MISSING: Any = object()
_WRITE_VISIBLE_TIMEOUT = 1.0  # how long set() waits for this process to apply its own write


def encode(value: Any) -> Any:
    """A constance value as the JSON value hotconfig stores."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    tagged = json.loads(dumps(value))
    # dumps tags JSON-native containers as "default"; keep them plain for other readers.
    return tagged["__value__"] if tagged.get("__type__") == "default" else tagged


def decode(value: Any) -> Any:
    """A stored JSON value as constance's Python value (tagged dates, decimals, ... restored)."""
    if isinstance(value, dict | list):
        return loads(json.dumps(value))
    return value


class Backend(ConstanceBackend):  # type: ignore[misc]
    """Reads from the in-process snapshot; writes through ``ConfigStore``.

    A process that does not run a listener by itself (a management command) starts one at the
    first read, bounded by ``START_TIMEOUT``, so that its reads are the store's.
    """

    def __init__(self) -> None:
        super().__init__()
        try:
            config.client  # noqa: B018 - sets the app up if another app's ready() came first
            role = lifecycle.current_decision().role
        except (ConfigNotReadyError, HotConfigSettingsError):
            role = None  # reads will raise why (a bad HOTCONFIG, the app not installed)
        if role is process.Role.COMMAND:
            lifecycle.start()
        forward_constance_signal()

    def get(self, key: str) -> Any:
        value = config.get(key, _MISSING)
        if value is _MISSING:
            # Never None for a known key: constance would write its default back to the store.
            return _default(key)
        return decode(value)

    def mget(self, keys: Iterable[str]) -> dict[str, Any]:
        snapshot = config.snapshot()  # one consistent version for all keys
        found: dict[str, Any] = {}
        for key in keys:
            value = snapshot.get(key, _MISSING)
            found[key] = _default(key) if value is _MISSING else decode(value)
        return {key: value for key, value in found.items() if value is not None}

    def set(self, key: str, value: Any) -> None:
        version = lifecycle.store().set(key, encode(value))
        # Read-your-writes: the admin redirects and reads the value back at once.
        config.client.wait_for_version(version, timeout=_WRITE_VISIBLE_TIMEOUT)

    async def aget(self, key: str) -> Any:
        return self.get(key)

    async def amget(self, keys: Iterable[str]) -> dict[str, Any]:
        return self.mget(keys)

    async def aset(self, key: str, value: Any) -> None:
        await sync_to_async(self.set)(key, value)


def _default(key: str) -> Any:
    options = constance_settings.CONFIG.get(key)
    return options[0] if options else None


def forward_constance_signal() -> None:
    """Send constance's ``config_updated`` in every process; idempotent (called at setup)."""
    config_updated.connect(_forward, dispatch_uid="hotconfig_django.constance")


def _forward(sender: object, key: str, change: Change, **kwargs: Any) -> None:
    """Re-send each change of a constance key as constance's signal; on the listener thread."""
    if key in constance_settings.CONFIG:
        constance_signals.config_updated.send(
            sender=constance_config,
            key=key,
            old_value=_default(key) if change.old is None else decode(change.old),
            new_value=_default(key) if change.new is None else decode(change.new),
        )
