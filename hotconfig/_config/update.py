"""What one apply produces (:class:`Update`), what staging a message did (:class:`Staged`), and
how a change of an effective value is told (:class:`Change`, public as
:class:`hotconfig.signals.Change`; :func:`change`, :func:`differs`, :func:`diff`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..errors import InvalidValueError
from ..security.redaction import looks_secret, shown
from .snapshot import Snapshot

__all__ = ["ABSENT", "Change", "Staged", "Update", "change", "diff", "differs"]

ABSENT: Final[Any] = object()  # no value: a key unset, or deleted


@dataclass(frozen=True, slots=True)
class Change:
    """One effective value that changed.

    ``old`` and ``new`` are effective values (a model default counts; ``None`` when the key
    was or became unset), ``scope`` is where the change came from, ``version`` the store
    version it arrived with (0 for unversioned publishes before any store write).
    """

    key: str
    old: Any
    new: Any
    scope: str
    version: int
    op: Literal["set", "delete"]

    def __repr__(self) -> str:
        # Keys that look secret never show their values: reprs end up in logs.
        secret = looks_secret(self.key)
        old, new = shown(self.old, secret), shown(self.new, secret)
        return (
            f"Change(key={self.key!r}, old={old}, new={new}, scope={self.scope!r}, "
            f"version={self.version}, op={self.op!r})"
        )


Change.__module__ = "hotconfig.signals"  # its public home: reprs, docs and pickles name it


class Staged(enum.Enum):
    """What :meth:`ConfigState.stage` did with a message."""

    QUEUED = "queued"  # it applies at the next commit
    DUPLICATE = "duplicate"  # a version already applied (or staged): dropped
    GAP = "gap"  # a version or epoch this client cannot follow from where it is
    CONFLICT = "conflict"  # a version it has, or follows, with another digest: a different write


@dataclass(slots=True)
class Update:
    """What one apply produced: the new snapshot (None if nothing changed) and what to tell.

    ``applied`` counts the messages that took effect (a message the model refused does not).
    """

    snapshot: Snapshot | None = None
    changes: list[Change] = field(default_factory=list)
    rejected: list[InvalidValueError] = field(default_factory=list)
    applied: int = 0


def differs(before: Any, after: Any) -> bool:
    # 1 == True == 1.0 in Python, but a change of type is a change to the reader.
    return before is not after and (type(before) is not type(after) or before != after)


def change(key: str, before: Any, after: Any, scope: str, version: int, op: Any) -> Change:
    old = None if before is ABSENT else before
    new = None if after is ABSENT else after
    return Change(key, old, new, scope, version, "delete" if after is ABSENT else op)


def diff(
    old: Mapping[str, Any],
    values: dict[str, Any],
    origin: dict[str, str],
    old_layers: dict[str, dict[str, Any]],
    scopes: tuple[str, ...],
    version: int,
) -> list[Change]:
    """The changes from the effective values ``old`` to ``values`` (a resync): each key set to
    a different value, and each key gone (its scope: the highest that held it before)."""
    changes = []
    for key, after in values.items():
        before = old.get(key, ABSENT)
        if differs(before, after):
            changes.append(change(key, before, after, origin.get(key, "global"), version, "set"))
    for key, before in old.items():
        if key not in values:
            scope = next((s for s in reversed(scopes) if key in old_layers[s]), "global")
            changes.append(change(key, before, ABSENT, scope, version, "delete"))
    return changes
