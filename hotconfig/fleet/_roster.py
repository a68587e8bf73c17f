"""The registry as an observer reads it: each live instance's latest report, vetted.

:class:`Registrations` reads the live instances' reports (one script, which drops expired
registrations), and the reports that arrive on the health channel. Each is checked before it
counts: a report that is malformed, or, with signing keys, unsigned or not signed by one of
them, is ignored, counted by reason (:attr:`Registrations.ignored`) and logged the first time
its reason is seen. Instances whose process died are left out as soon as the server says their
connection is gone (:mod:`hotconfig.fleet._presence`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from .._redis.keyspace import Keyspace, as_text
from ..security.signing import KeyRing
from ._presence import Presence
from .registry import LIVE_SCRIPT, Registry, Report, channel_for

__all__ = ["Registrations", "Roster"]

log = logging.getLogger("hotconfig.fleet")

# A report's expiry is the server's clock; a little slack for the trip and the clocks' skew.
_EXPIRY_SLACK = 0.05


class Roster:
    """The latest report of each instance and when (on our clock) its registration expires."""

    def __init__(self, offset: float, service: str | None) -> None:
        self.offset = offset  # server clock minus our monotonic clock
        self.service = service
        self.reports: dict[str, Report] = {}

    def add(self, report: Report) -> bool:
        """Record ``report``; False if it is of another service."""
        if self.service is not None and report.service != self.service:
            return False
        self.reports[report.instance] = report
        return True

    def expiry(self, instance: str) -> float:
        return self.reports[instance].expires - self.offset + _EXPIRY_SLACK


class Registrations:
    """The registry of one namespace, read through ``client`` (a command client of its server).

    With ``ring``, only reports signed by one of its keys count. Thread-safe.
    """

    def __init__(
        self, client: Any, namespace: str, ring: KeyRing | None, channel: str | None = None
    ) -> None:
        self.registry = Registry(namespace)
        self._keyspace = Keyspace(namespace)
        self.channel = channel or channel_for(namespace)
        self._ring = ring
        self._live = client.register_script(LIVE_SCRIPT)
        self.presence = Presence(client, self.registry.instances)
        self._lock = threading.Lock()
        self._ignored: Counter[str] = Counter()

    @property
    def ignored(self) -> dict[str, int]:
        """Reports ignored so far, by reason (``unsigned``, ``bad_signature``, ``malformed``,
        or a decoding reason such as ``too_deep``)."""
        with self._lock:
            return dict(self._ignored)

    def read(self, service: str | None) -> Roster:
        """The live instances' latest reports (of ``service``), without the departed."""
        reply: list[Any] = self._live(
            keys=[self.registry.instances, self._keyspace.version], args=[self.registry.prefix]
        )
        roster = Roster(float(as_text(reply[0])) - time.monotonic(), service)
        for raw in reply[2:]:
            report = self.parse(raw)
            if report is not None:
                roster.add(report)
        for instance in self.presence.missing(roster.reports.values()):
            del roster.reports[instance]
        return roster

    def departed(self, roster: Roster, instances: Iterable[str]) -> set[str]:
        """Those of ``instances`` whose process died (their connection is gone)."""
        return self.presence.missing(roster.reports[i] for i in instances)

    def received(self, message: dict[str, Any] | None) -> Report | None:
        """The report a message of the health channel carries, if it counts."""
        if message is None or message.get("type") != "message":
            return None
        return self.parse(message["data"])

    def parse(self, raw: bytes | str) -> Report | None:
        """``raw`` as a report, or None (ignored and counted) if it does not count."""
        try:
            return Report.from_json(raw, self._ring, self.channel)
        except ValueError as exc:
            self._ignore(str(getattr(exc, "reason", "malformed")), exc)
            return None

    def _ignore(self, reason: str, error: ValueError) -> None:
        with self._lock:
            self._ignored[reason] += 1
            first = self._ignored[reason] == 1
        if first:
            log.warning("ignoring a health report (%s): %s; more are counted", reason, error)
        else:
            log.debug("ignoring a health report (%s): %s", reason, error)
