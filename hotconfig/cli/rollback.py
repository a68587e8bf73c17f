"""What ``hotconfig rollback VERSION`` writes: each key changed since VERSION, as it was then."""

from __future__ import annotations

from collections.abc import Sequence

from .._config.wire import Entry
from ..store import HistoryEntry

__all__ = ["rollback_entries"]


def rollback_entries(
    history: Sequence[HistoryEntry], version: int, epoch: str | None
) -> list[Entry]:
    """The sets and deletes that restore, as one new version, the values of every key written
    after ``version`` to what they were at ``version``.

    ``history`` is the store's history, newest first. A key first written after ``version`` is
    deleted — but only when the history reaches back to version 1 (otherwise it cannot say that
    the key did not exist then, and raises :class:`ValueError`).
    """
    ours = [entry for entry in history if entry.epoch == epoch]
    latest = ours[0].version if ours else 0
    if not 1 <= version <= latest:
        raise ValueError(f"version must be between 1 and the store's {latest}, got {version}")
    changed: dict[tuple[str, str], None] = {}  # (scope, key), in the order of their first change
    before: dict[tuple[str, str], Entry] = {}
    for write in reversed(ours):
        for entry in write.entries:
            slot = (entry.scope, entry.key)
            if write.version <= version:
                before[slot] = entry
            else:
                changed.setdefault(slot, None)
    complete = bool(ours) and ours[-1].version == 1
    restore: list[Entry] = []
    for slot in changed:
        scope, key = slot
        old = before.get(slot)
        if old is not None and old.op == "set":
            restore.append(Entry(key, old.value, scope, "set"))
        elif old is not None or complete:
            restore.append(Entry(key, None, scope, "delete"))
        else:
            raise ValueError(
                f"the history no longer reaches back to what {key!r} in {scope!r} was at "
                f"version {version}; set it by hand"
            )
    return restore
