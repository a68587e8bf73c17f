"""The health channel's report format and the instance registry: keys, scripts, parsing.

Every client's :class:`~hotconfig.fleet.Reporter` writes here and :class:`~hotconfig.fleet.Fleet`
reads here. The registry, under the store's hash tag (one Redis Cluster slot)::

    {ns}:health:instances       sorted set: instance id → when its registration expires
    {ns}:health:instance:<id>   the instance's latest report (JSON), with a TTL

Times are the server's (``TIME``), so that hosts with skewed clocks agree on who expired. A
report holds no value, ever: keys, versions and reasons only.

A report names the server's id of its instance's connection (``connection``, the listener's
``CLIENT ID``): the server forgets it the moment the process dies, so an observer that looks
it up sees a killed instance within a second instead of at its registration's expiry. With
signing keys, a reporter signs what it writes (:func:`sign_report`; the fields the script adds
on the server are not its to sign) and a reader refuses a report that does not verify.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._config.wire import decode_value
from .._redis.keyspace import DEFAULT_NAMESPACE, Keyspace
from ..errors import InvalidMessageError, InvalidValueError, RejectReason
from ..security.signing import KeyRing, Verdict, report_payload

__all__ = [
    "COUNTS",
    "LIVE_SCRIPT",
    "REPORT_SCRIPT",
    "SERVER_FIELDS",
    "Registry",
    "Rejection",
    "Report",
    "ReportEvent",
    "channel_for",
    "check_report",
    "describe",
    "sign_report",
]

COUNTS: Final = ("received", "applied", "rejected", "resyncs", "reconnects")
# A report is a few hundred bytes, two levels deep (its rejections); these bound what a report
# published by anyone else may cost to read.
_MAX_REPORT_BYTES: Final = 64 * 1024
_MAX_REPORT_DEPTH: Final = 4
_KEEP_REJECTIONS: Final = 10
_DETAIL_MAX: Final = 200
_MAX_CONNECTION_ID: Final = 2**63 - 1  # what CLIENT LIST ID accepts
_REFUSALS: Final = {
    Verdict.UNSIGNED: "a health report without a signature, while signing is on",
    Verdict.BAD_SIGNATURE: "a health report whose signature does not verify with these keys",
}
# What REPORT_SCRIPT appends on the server: not the reporter's to sign.
SERVER_FIELDS: Final = frozenset({"lag", "store_version", "time", "expires"})
# The schema appends "(input <value>)" to a validation message; a report keeps the message only.
_INPUT_SUFFIX = re.compile(r"\s*\(input .*\)\s*$", re.DOTALL)


def channel_for(namespace: str) -> str:
    """The health channel of a store namespace."""
    return f"health:status:{namespace}"


# KEYS: instances zset, this instance's report key, store version, store history.
# ARGV: channel, instance id, ttl (ms), applied version, report head (a JSON object without its
# closing brace), "1" to leave the registry. The script adds the server's time, the expiry, the
# store's version and the lag (how long the oldest version this instance lacks has existed).
REPORT_SCRIPT: Final = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local store = tonumber(redis.call('GET', KEYS[3]) or '0')
local applied = tonumber(ARGV[4])
local lag_ms = 0
if store > applied then
  local rows = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', math.min(store - applied, 100))
  if #rows > 0 then
    lag_ms = math.max(0, now_ms - tonumber(string.match(rows[#rows][1], '^(%d+)')))
  end
end
local ttl_ms = tonumber(ARGV[3])
local expires_ms = now_ms + ttl_ms
local report = ARGV[5] .. string.format(
  ',"lag":%.3f,"store_version":%d,"time":%.3f,"expires":%.3f}',
  lag_ms / 1000, store, now_ms / 1000, expires_ms / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms / 1000)
if ARGV[6] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[2])
else
  redis.call('ZADD', KEYS[1], string.format('%.3f', expires_ms / 1000), ARGV[2])
  redis.call('SET', KEYS[2], report, 'PX', ttl_ms)
end
redis.call('PUBLISH', ARGV[1], report)
return report
"""


# KEYS: instances zset, store version. ARGV: the report key prefix. Returns {server time (s),
# store version, report, report, ...}: the live instances' latest reports, expired ones dropped.
LIVE_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {string.format('%.6f', now), tonumber(redis.call('GET', KEYS[2]) or '0')}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.6f', now), '+inf')
for _, id in ipairs(ids) do
  local report = redis.call('GET', ARGV[1] .. id)
  if report then
    out[#out + 1] = report
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Registry:
    """The registry's key names under one store namespace."""

    namespace: str = DEFAULT_NAMESPACE

    @property
    def instances(self) -> str:
        return f"{Keyspace(self.namespace).tag}:health:instances"

    def instance(self, instance_id: str) -> str:
        return f"{Keyspace(self.namespace).tag}:health:instance:{instance_id}"

    @property
    def prefix(self) -> str:
        return f"{Keyspace(self.namespace).tag}:health:instance:"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A change an instance refused: the key (None for a whole message), the version it
    arrived with, and why — never the value."""

    key: str | None
    version: int
    reason: str


class ReportEvent(enum.StrEnum):
    """What made an instance report (:attr:`Report.event`)."""

    START = "start"  # its reporter started
    VERSION = "version"  # it applied a new version
    STATUS = "status"  # its status changed
    REJECTED = "rejected"  # it refused a message or a value
    TICK = "tick"  # the periodic refresh of its registration
    LEAVE = "leave"  # a clean close: it left the registry


@dataclass(frozen=True, slots=True)
class Report:
    """One instance's report as published on the health channel and kept in the registry.

    ``event`` says what made it (a :class:`ReportEvent` value; a report from another release of
    hotconfig may carry one this one does not know). ``time`` and ``expires`` are the
    server's clock, in seconds. ``lag`` is how long (s) the oldest store version this instance
    has not applied has existed, 0 when it is up to date. ``connection`` is the server's id of
    the instance's connection (None: not told, and then only the expiry says it died).
    """

    instance: str
    service: str | None
    host: str
    pid: int
    framework: str | None
    version: int
    epoch: str | None
    digest: str | None
    status: str
    lag: float
    store_version: int
    counts: Mapping[str, int]
    rejections: tuple[Rejection, ...]
    event: str
    time: float
    expires: float
    scopes: tuple[str, ...] = ()
    connection: int | None = None

    @classmethod
    def from_json(cls, raw: bytes | str, ring: KeyRing | None = None, channel: str = "") -> Report:
        """Parse a report; raises :class:`ValueError` for anything that is not one.

        Anyone who may publish on the health channel can send one, so it is read under the
        wire's own limits (size, depth, numbers that fit, valid Unicode): a hostile report is a
        ValueError like any malformed one, never an OverflowError or a RecursionError. With
        ``ring``, a report that is not signed by one of its keys for ``channel`` is refused
        too, with an :class:`~hotconfig.errors.InvalidMessageError` whose ``reason`` says why
        (``unsigned``, ``bad_signature``)."""
        if len(raw) > _MAX_REPORT_BYTES:
            raise ValueError(f"not a health report: {len(raw)} bytes")
        data = decode_value(raw, _MAX_REPORT_DEPTH)
        if not isinstance(data, dict) or not isinstance(data.get("instance"), str):
            raise ValueError("not a health report")
        if ring is not None and (refused := check_report(data, ring, channel)) is not None:
            raise InvalidMessageError(RejectReason(refused), _REFUSALS.get(refused, refused.detail))
        connection = data.get("connection")
        if connection is not None and not (
            type(connection) is int and 0 < connection <= _MAX_CONNECTION_ID
        ):
            raise ValueError("malformed health report: connection must be a client id")
        try:
            return cls(
                instance=data["instance"],
                service=data.get("service"),
                host=str(data.get("host", "")),
                pid=int(data.get("pid", 0)),
                framework=data.get("framework"),
                version=int(data.get("version", 0)),
                epoch=data.get("epoch"),
                digest=data.get("digest"),
                status=str(data.get("status", "")),
                lag=float(data.get("lag", 0.0)),
                store_version=int(data.get("store_version", 0)),
                counts={k: int(v) for k, v in dict(data.get("counts", {})).items()},
                rejections=tuple(
                    Rejection(r.get("key"), int(r.get("version", 0)), str(r.get("reason", "")))
                    for r in data.get("rejections", ())
                ),
                event=str(data.get("event", "")),
                time=float(data.get("time", 0.0)),
                expires=float(data.get("expires", 0.0)),
                scopes=tuple(data.get("scopes", ())),
                connection=connection,
            )
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ValueError(f"malformed health report: {exc}") from None

    def rejection_of(self, version: int) -> Rejection | None:
        """The rejection this instance reported for ``version``, if any."""
        return next((r for r in self.rejections if r.version == version), None)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``hotconfig status --json`` prints)."""
        return {
            "instance": self.instance,
            "service": self.service,
            "host": self.host,
            "pid": self.pid,
            "framework": self.framework,
            "version": self.version,
            "epoch": self.epoch,
            "digest": self.digest,
            "status": self.status,
            "lag": self.lag,
            "store_version": self.store_version,
            "counts": dict(self.counts),
            "rejections": [
                {"key": r.key, "version": r.version, "reason": r.reason} for r in self.rejections
            ],
            "event": self.event,
            "time": self.time,
            "expires": self.expires,
            "scopes": list(self.scopes),
            "connection": self.connection,
        }


def sign_report(fields: Mapping[str, Any], ring: KeyRing, channel: str) -> str:
    """The ``sig`` of a report whose reporter wrote ``fields`` (without ``sig``), on ``channel``."""
    return ring.sign(report_payload(channel, fields))


def check_report(data: Mapping[str, Any], ring: KeyRing, channel: str) -> Verdict | None:
    """Why the report ``data`` (as read: the server's fields and ``sig`` included) is not
    signed by a key of ``ring`` for ``channel``, or None if it is."""
    fields = {k: v for k, v in data.items() if k != "sig" and k not in SERVER_FIELDS}
    try:
        signed = report_payload(channel, fields)
    except ValueError:  # nothing a reporter could have signed
        return Verdict.BAD_SIGNATURE
    return ring.check_signature(data.get("sig"), signed)


def describe(reason: str, error: object) -> str:
    """A rejection's reason without the value: the code and the validator's message."""
    if isinstance(error, InvalidValueError):
        detail = _INPUT_SUFFIX.sub("", error.detail)
    elif isinstance(error, InvalidMessageError):
        detail = error.detail
    else:
        return reason
    text = f"{reason}: {detail}" if detail else reason
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 3] + "..."
