"""This process's own writes, applied before the listener brings them (read-your-writes).

A process that writes through :class:`hotconfig.ConfigStore` knows what it wrote and the
version the store gave it, before any message arrives, and without a listener none ever does.
:meth:`hotconfig.HotConfig.apply_write` applies such a write at once; :class:`Written`
remembers each key it took, at its version, until the listener's own state reaches that
version. Until then an older message on the channel, or an older snapshot, cannot undo it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import InvalidMessageError
from .wire import Entry, validate_key, validate_scope

__all__ = ["Written", "checked"]


def checked(version: object, entries: Iterable[Entry]) -> tuple[int, tuple[Entry, ...]]:
    """The arguments of ``apply_write``, or a ValueError naming the one that is wrong."""
    if type(version) is not int or version < 1:
        raise ValueError(
            f"version must be the positive int the store returned for the write, not {version!r}"
        )
    taken = tuple(entries)
    for entry in taken:
        if not isinstance(entry, Entry):
            raise ValueError(
                f"entries must be hotconfig.Entry(key, value, scope, op) items, not {entry!r}"
            )
        try:
            validate_key(entry.key)
            validate_scope(entry.scope)
        except InvalidMessageError as exc:
            raise ValueError(f"entries: {exc.detail}") from None
        if entry.op not in ("set", "delete"):
            raise ValueError(f"entries: op must be 'set' or 'delete', not {entry.op!r}")
    return version, taken


class Written:
    """The writes applied ahead of the listener: (scope, key) -> (version, entry)."""

    __slots__ = ("_ahead",)

    def __init__(self) -> None:
        self._ahead: dict[tuple[str, str], tuple[int, Entry]] = {}

    def __bool__(self) -> bool:
        return bool(self._ahead)

    def fresh(
        self, version: int, entries: Iterable[Entry], scopes: Iterable[str], applied: int
    ) -> list[Entry]:
        """The entries of a write at ``version`` to take: none if the client has ``applied``
        that version already; else those in the followed ``scopes`` that no later write of
        this process covers (the last entry of a key wins, as in the store)."""
        if version <= applied:
            return []
        followed = set(scopes)
        latest: dict[tuple[str, str], Entry] = {}
        for entry in entries:
            slot = (entry.scope, entry.key)
            if entry.scope in followed and self._ahead.get(slot, (0,))[0] < version:
                latest.pop(slot, None)
                latest[slot] = entry
        return list(latest.values())

    def record(self, version: int, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self._ahead[(entry.scope, entry.key)] = (version, entry)

    def shadows(self, scope: str, key: str, version: int | None) -> bool:
        """Whether a message at ``version`` is older than this process's write of the key (an
        unversioned one never is: it is applied when it arrives, as always)."""
        ahead = self._ahead.get((scope, key))
        return ahead is not None and version is not None and version < ahead[0]

    def settle(self, version: int) -> None:
        """The listener's state reached ``version``: the writes up to it are its own now."""
        if self._ahead:
            self._ahead = {slot: at for slot, at in self._ahead.items() if at[0] > version}

    def reapply(self, layers: dict[str, dict[str, Any]], version: int, same_epoch: bool) -> None:
        """Keep the writes a snapshot at ``version`` predates in its ``layers``; forget the
        rest. A snapshot of another epoch (a wiped store) lost them: forget them all."""
        if same_epoch:
            self.settle(version)
        else:
            self._ahead = {}
        for (scope, key), (_, entry) in self._ahead.items():
            if entry.op == "set":
                layers[scope][key] = entry.value
            else:
                layers[scope].pop(key, None)
