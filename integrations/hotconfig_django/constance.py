"""A django-constance backend on hotconfig, for teams moving off constance.

    CONSTANCE_BACKEND = "hotconfig_django.constance.Backend"

``constance.config.X`` then reads this process's snapshot (no round trip), the admin and
``config.X = v`` write through :class:`hotconfig.ConfigStore`, and every process sees the new
value as soon as its listener applies it; constance's own ``config_updated`` signal is sent in
every process, not only in the one that wrote. Each constance key is a hotconfig key of the
same name, so ``hotconfig_django.config.get("SITE_NAME")`` reads the same value.

The process that writes reads its write at once, with or without a listener (a test run, a
command): the store's acknowledgement is applied to its client before ``set`` returns
(:meth:`hotconfig.HotConfig.apply_write`), and its receivers run then, on the writer's thread.

Values JSON has no type for (dates, times, decimals, UUIDs, timedeltas) are stored in
constance's own tagged form, ``{"__type__": "datetime", "__value__": "..."}``.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from constance import config as constance_config  # type: ignore[import-untyped]
from constance import settings as constance_settings
from constance import signals as constance_signals
from constance.backends import Backend as ConstanceBackend  # type: ignore[import-untyped]
from constance.codecs import dumps, loads  # type: ignore[import-untyped]

from hotconfig import Change, Entry, HotConfig

from . import lifecycle, process
from .lazy import config
from .signals import config_updated

__all__ = ["Backend", "decode", "encode", "forward_constance_signal"]

_MISSING: Any = object()
# The clients whose process was checked for following the store (see _follow_in_commands).
_checked: weakref.WeakSet[HotConfig[Any]] = weakref.WeakSet()
_checking = threading.Lock()


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
    """Reads from the in-process snapshot; writes through ``ConfigStore``, then applies the
    write in this process at once.

    Building one waits for nothing: constance builds one whenever its lazy ``config`` is first
    touched, even on the listener thread while it sends a signal. A management command, which
    runs no listener by itself, starts one at its first read instead, bounded by
    ``START_TIMEOUT``, so that its reads are the store's.
    """

    def __init__(self) -> None:
        super().__init__()
        self._first_read = True
        forward_constance_signal()

    def get(self, key: str) -> Any:
        if self._first_read:
            self._follow()
        value = config.get(key, _MISSING)
        if value is _MISSING:
            # Never None for a known key: constance would write its default back to the store.
            return _default(key)
        return decode(value)

    def mget(self, keys: Iterable[str]) -> dict[str, Any]:
        """The stored values of ``keys``: keys never stored are left out (constance merges in
        their defaults), as are values stored as null."""
        if self._first_read:
            self._follow()
        snapshot = config.snapshot()  # one consistent version for all keys
        found = {key: snapshot.get(key) for key in keys}
        return {key: decode(value) for key, value in found.items() if value is not None}

    def set(self, key: str, value: Any) -> None:
        stored = encode(value)
        version = lifecycle.store().set(key, stored)
        # Read-your-writes, listener or not: the admin redirects and reads the value back at
        # once, and constance's override_config reads back what it pinned.
        config.client.apply_write(version, [Entry(key, stored)])

    def _follow(self) -> None:
        self._first_read = False
        _follow_in_commands()

    async def aget(self, key: str) -> Any:
        return self.get(key)

    async def amget(self, keys: Iterable[str]) -> dict[str, Any]:
        return self.mget(keys)

    async def aset(self, key: str, value: Any) -> None:
        await sync_to_async(self.set)(key, value)


def _default(key: str) -> Any:
    options = constance_settings.CONFIG.get(key)
    return options[0] if options else None


def _follow_in_commands() -> None:
    """Follow the store from a management command's first read, so that a cron job reads the
    store's values, not defaults; once per client, by the thread that reads first.

    That thread cannot be the listener's: in a command there is none until this starts it.
    Servers follow from ``ready()``, test runs never (see the process rules).
    """
    client = config.client
    with _checking:
        if client in _checked:
            return
        _checked.add(client)
    if lifecycle.current_decision().role is process.Role.COMMAND:
        lifecycle.start()


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
