"""Counters of what a client's listener has done, and their read-only view."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Counters", "Stats"]


@dataclass(frozen=True, slots=True)
class Stats:
    """What the listener has seen since the client started. Read-only; ``config.stats`` is fresh.

    ``received``: messages read off the channel; ``applied``: messages applied to the snapshot;
    ``skipped``: duplicates and versions already applied; ``rejected``: messages or values
    refused, ``last_rejection`` the reason of the latest; ``resyncs``: snapshots loaded from the
    store; ``reconnects``: new connections after the first; ``receiver_errors``: change
    receivers that raised; ``coalesced``: changes an async receiver skipped because a newer
    change of the same key arrived while it was busy; ``last_error``: the latest connection or
    listener error, if any; ``server_warning``: something about the server that can break the
    delivery guarantee (an eviction policy that may evict the store's keys); ``connection_id``:
    the server's id (``CLIENT ID``) of the listener's connection while it is open on the server
    that holds the store, which the server forgets the moment this process dies (the fleet's
    observers look it up; None while disconnected, and on a cluster's classic subscription,
    which is on another node).
    """

    received: int = 0
    applied: int = 0
    skipped: int = 0
    rejected: int = 0
    last_rejection: str | None = None
    resyncs: int = 0
    reconnects: int = 0
    receiver_errors: int = 0
    coalesced: int = 0
    last_error: str | None = None
    server_warning: str | None = None
    connection_id: int | None = None


class Counters:
    """The mutable side of :class:`Stats`, written by the listener thread (receiver counts also
    by the loops of async receivers)."""

    __slots__ = tuple(field.name for field in dataclasses.fields(Stats))

    received: int
    applied: int
    skipped: int
    rejected: int
    last_rejection: str | None
    resyncs: int
    reconnects: int
    receiver_errors: int
    coalesced: int
    last_error: str | None
    server_warning: str | None
    connection_id: int | None

    def __init__(self) -> None:
        for field in dataclasses.fields(Stats):
            setattr(self, field.name, field.default)

    def view(self) -> Stats:
        return Stats(**{name: getattr(self, name) for name in self.__slots__})

    def receiver_failed(self) -> None:
        self.receiver_errors += 1

    def change_coalesced(self) -> None:
        self.coalesced += 1
