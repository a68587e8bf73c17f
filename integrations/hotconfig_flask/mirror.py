"""``HOTCONFIG_MIRROR``: chosen ``app.config`` keys kept equal to live hotconfig values.

Code that reads ``app.config["FEATURE_X"]`` (or ``current_app.config``) sees each change
without an edit. The listener thread writes each mirrored key with one ``app.config[name] =
value`` store, after the new snapshot is live; a dict item store is atomic, so a request
reads the old value or the new one, never a mix. Two mirrored keys are not updated together,
though: a request that needs several related values read at once should use
``ext.snapshot()``, which is one consistent view.

A key that becomes unset (deleted from every scope, and not a model field) gives the mirrored
name back the value ``app.config`` had before the extension took it over, or removes it if
there was none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

import hotconfig

__all__ = ["Mirror"]

_UNSET: Any = object()


class Mirror:
    """Copies live values into one app's ``app.config``; one instance per app."""

    __slots__ = ("_client", "_config", "_names", "_own")

    def __init__(
        self, app: Flask, client: hotconfig.HotConfig[Any], mirror: Mapping[str, str]
    ) -> None:
        self._config = app.config
        self._client = client
        # hotconfig key -> the app.config names it feeds (one key may feed several names).
        self._names: dict[str, list[str]] = {}
        for name, key in mirror.items():
            self._names.setdefault(key, []).append(name)
        # What app.config held before: the value to give back when a key becomes unset.
        self._own = {name: self._config.get(name, _UNSET) for name in mirror}

    def install(self) -> None:
        """Copy the current values, then follow changes; call before the client starts, so no
        change can land between the copy and the receiver. What the client loads at start is
        no change (no receiver hears of it): each move to LIVE copies every key again."""
        for key in self._names:
            self._copy(key)
        for key in self._names:
            self._client.on_change(key)(self._changed)
        hotconfig.signals.status_changed.connect(self._live, sender=self._client, weak=False)

    def _live(self, sender: object, *, old: hotconfig.Status, new: hotconfig.Status) -> None:
        if new is hotconfig.Status.LIVE:
            for key in self._names:
                self._copy(key)

    def _changed(self, change: hotconfig.Change) -> None:
        """Called on the listener thread (one at a time) after the new snapshot is live."""
        self._copy(change.key)

    def _copy(self, key: str) -> None:
        # The live snapshot, not change.new: if several changes queued up, the last copy wins
        # with the latest value either way.
        value = self._client.get(key, _UNSET)
        for name in self._names[key]:
            if value is not _UNSET:
                self._config[name] = value
            elif (own := self._own[name]) is not _UNSET:
                self._config[name] = own
            else:
                self._config.pop(name, None)
