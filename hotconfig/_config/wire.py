"""The wire format of the changes channel: parse what any publisher sends, encode the store's.

A message is a UTF-8 JSON object. The minimal form is what any client can publish by hand::

    {"key": "ai.model.default", "value": "gpt-4o", "scope": "global"}

Optional fields: ``op`` (``"set"`` or ``"delete"``), ``version`` (int, assigned by the store),
``epoch`` (str, the store's lifetime id) and ``changes`` (a batch of entries applied atomically
under one version). The store also sends ``prev`` and ``digest`` (the write this one follows,
and this one: see keyspace), ``sizes`` (keys per touched scope), ``reload`` (a change too large
for one message) and, when it signs, ``sig`` (see signing); a signed unversioned message has
``ts``; ``ns`` and ``db`` name the store (its namespace, and its database when not 0).
Unknown fields are ignored so that newer publishers can add some.

Hostile input is a counted rejection, never a crash: the size, the nesting depth and the number
of entries are limited (:class:`Limits`), NaN and Infinity are refused (the store refuses to
write them too), and a document too deep for the JSON decoder is reported as ``too_deep``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal, NamedTuple, TypeGuard

from ..errors import InvalidMessageError, RejectReason
from ..security.redaction import shown
from .limits import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_BYTES,
    Limits,
    check_depth,
    decode_value,
    decode_within,
    load_text,
)

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SCOPE",
    "HEADER_BYTES",
    "SIZE_BYTES",
    "Entry",
    "Limits",
    "Message",
    "check_depth",
    "decode_value",
    "decode_within",
    "encode_body",
    "encode_message",
    "envelope_version",
    "parse",
    "validate_key",
    "validate_scope",
]

Op = Literal["set", "delete"]

DEFAULT_CHANNEL: Final = "config:changes"
DEFAULT_SCOPE: Final = "global"
# The store's write script makes each message from a header it writes itself,
# '{"version":N,"epoch":"<32 hex>","prev":"<16 hex>","digest":"<16 hex>","sizes":{...},', and
# the body tail from encode_body(): at most this many bytes, plus SIZE_BYTES and the scope's
# name for each scope the write touches, counted against a client's limit before it is sent.
HEADER_BYTES: Final = 160
SIZE_BYTES: Final = 16
_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,256}").fullmatch
_MISSING: Final[Any] = object()


# NamedTuples rather than frozen dataclasses: they are built once per message on the listener's
# hot path, and a frozen dataclass's __init__ costs several times more.
class Entry(NamedTuple):
    """One change to one key in one scope. ``value`` is ``None`` for deletes."""

    key: str
    value: Any
    scope: str = DEFAULT_SCOPE
    op: Op = "set"


class Message(NamedTuple):
    """A parsed message: its entries apply together, under ``version`` when the store sent it."""

    entries: tuple[Entry, ...]
    version: int | None = None
    epoch: str | None = None
    prev: str | None = None  # the digest of the write this one follows (store messages only)
    digest: str | None = None  # this write's digest
    sizes: dict[str, int] | None = None  # stored keys per scope it touched, after the write
    reload: bool = False  # a change too large for one message: load it from the store
    sig: str | None = None  # "kid:mac" when the publisher signs (see signing)
    ts: int | None = None  # unix seconds, for a signed unversioned message
    ns: str | None = None  # the namespace of the store that sent it
    db: int = 0  # the database of the store that sent it (Pub/Sub ignores database numbers)


# NamedTuples are built on the listener's hot path by tuple.__new__ itself: their generated
# __new__ is a Python function that costs as much again.
_new: Final = tuple.__new__
# A message in the seed's format: every field after the entries at its default.
_UNVERSIONED: Final = Message(())[1:]


def _valid_name(name: object) -> TypeGuard[str]:
    if type(name) is not str:
        return False
    if name in _NAMES_SEEN:  # a dict lookup, not a regex match, for a name seen before
        return True
    if _NAME(name) is None:
        return False
    if len(_NAMES_SEEN) >= _NAMES_SEEN_MAX:
        _NAMES_SEEN.clear()  # bounded: hostile traffic of ever-new names costs a regex each
    _NAMES_SEEN[name] = None
    return True


# Valid names (keys, scopes) seen lately: a burst names the same few keys again and again.
_NAMES_SEEN: Final[dict[str, None]] = {}
_NAMES_SEEN_MAX: Final = 8192


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid dotted key, else raise :class:`InvalidMessageError`."""
    if _valid_name(key):
        return key
    raise InvalidMessageError(
        RejectReason.BAD_KEY, f"key must be 1-256 characters of [A-Za-z0-9_.:-], got {_short(key)}"
    )


def validate_scope(scope: object) -> str:
    """Return ``scope`` if it is a valid scope name, else raise :class:`InvalidMessageError`."""
    if _valid_name(scope):
        return scope
    raise InvalidMessageError(
        RejectReason.BAD_SCOPE,
        f"scope must be 1-256 characters of [A-Za-z0-9_.:-], got {_short(scope)}",
    )


def parse(data: bytes | str, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Parse one message; raise :class:`InvalidMessageError` with a reason code if it is invalid."""
    if len(data) > limits.max_message_bytes:
        raise InvalidMessageError(
            RejectReason.OVERSIZE,
            f"{len(data)} bytes exceeds the limit of {limits.max_message_bytes}",
        )
    obj = load_text(data)
    if type(obj) is not dict:
        raise InvalidMessageError(
            RejectReason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}"
        )
    if len(obj) <= 4 and "version" not in obj and "changes" not in obj and "sig" not in obj:
        # The seed's format (key, value, scope, op): what raw publishers send, so the path
        # that skips looking for the store's header fields.
        return _new(Message, ((_entry(obj, DEFAULT_SCOPE, limits),), *_UNVERSIONED))
    return _with_header(obj, limits)


def _with_header(obj: dict[str, Any], limits: Limits) -> Message:
    version = obj.get("version")
    if version is not None and (type(version) is not int or version < 0):
        raise InvalidMessageError(
            RejectReason.BAD_FIELD, f"version must be a non-negative int, got {_short(version)}"
        )
    get = obj.get
    epoch, prev, digest, sig, ns = get("epoch"), get("prev"), get("digest"), get("sig"), get("ns")
    # One test for the common case (all strings or absent); the culprit is named only on failure.
    if not (
        (epoch is None or type(epoch) is str)
        and (prev is None or type(prev) is str)
        and (digest is None or type(digest) is str)
        and (sig is None or type(sig) is str)
        and (ns is None or type(ns) is str)
    ):
        for name in ("epoch", "prev", "digest", "sig", "ns"):
            _text(obj, name)
    sizes = get("sizes")
    if sizes is not None:
        if type(sizes) is not dict:
            raise InvalidMessageError(RejectReason.BAD_FIELD, "sizes must map scopes to ints")
        for size in sizes.values():  # a loop, not all() of a generator: a few scopes at most
            if type(size) is not int:
                raise InvalidMessageError(RejectReason.BAD_FIELD, "sizes must map scopes to ints")
    ts = get("ts")
    if ts is not None and type(ts) is not int:
        raise InvalidMessageError(RejectReason.BAD_FIELD, f"ts must be an int, got {_short(ts)}")
    db = get("db", 0)
    if type(db) is not int or db < 0:
        raise InvalidMessageError(
            RejectReason.BAD_FIELD, f"db must be a non-negative int, got {_short(db)}"
        )
    if obj.get("reload") is True and version is not None:
        return Message((), version, epoch, prev, digest, sizes, True, sig, ts, ns, db)
    default_scope = obj.get("scope", DEFAULT_SCOPE)
    batch = obj.get("changes", _MISSING)
    if batch is _MISSING:
        entries: tuple[Entry, ...] = (_entry(obj, DEFAULT_SCOPE, limits),)
    elif type(batch) is list and batch:
        if len(batch) > limits.max_batch:
            raise InvalidMessageError(
                RejectReason.TOO_MANY_ENTRIES,
                f"{len(batch)} changes exceed the limit of {limits.max_batch}",
            )
        entries = tuple(_entry(item, default_scope, limits) for item in batch)
    else:
        raise InvalidMessageError(
            RejectReason.BAD_FIELD, "changes must be a non-empty list of objects"
        )
    return _new(Message, (entries, version, epoch, prev, digest, sizes, False, sig, ts, ns, db))


# The store's write script begins every message with '{"version":N,"ns":"<namespace>",', then
# '"db":N,' when its database is not 0 (see keyspace): enough to tell which write a message was,
# even when the rest cannot be read.
_ENVELOPE: Final = re.compile(
    rb'\s*\{"version":(\d{1,18}),(?:"ns":"([A-Za-z0-9_.:\-]{1,256})",(?:"db":(\d{1,9}),)?)?'
)


def envelope_version(data: bytes | str, namespace: str, db: int = 0) -> int | None:
    """The version a store's message claims in its envelope, read without parsing the rest:
    what a client that refuses the message (not UTF-8, too deep, a bad field) reports it under,
    so that a barrier waiting for that write hears *rejected*, not *behind*. None when the
    message does not start as a message of the store ``namespace`` in database ``db`` does."""
    head = data[:320].encode("utf-8", "surrogatepass") if isinstance(data, str) else data[:320]
    match = _ENVELOPE.match(head)
    if match is None:
        return None
    if match[2] is not None and (match[2].decode() != namespace or int(match[3] or 0) != db):
        return None
    return int(match[1])


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and type(value) is not str:
        raise InvalidMessageError(
            RejectReason.BAD_FIELD, f"{name} must be a string, got {_short(value)}"
        )
    return value


def _entry(obj: Any, default_scope: Any, limits: Limits) -> Entry:
    if type(obj) is not dict:
        raise InvalidMessageError(
            RejectReason.NOT_OBJECT, f"a change must be a JSON object, got {type(obj).__name__}"
        )
    key = validate_key(obj.get("key"))
    scope = validate_scope(obj.get("scope", default_scope))
    op = obj.get("op", "set")
    if op == "set":
        value = obj.get("value", _MISSING)
        if value is _MISSING:
            raise InvalidMessageError(RejectReason.BAD_FIELD, f"set of {key!r} has no value")
        check_depth(value, limits.max_depth)
        return _new(Entry, (key, value, scope, "set"))
    if op == "delete":
        return _new(Entry, (key, None, scope, "delete"))
    raise InvalidMessageError(
        RejectReason.BAD_FIELD, f"op must be 'set' or 'delete', got {_short(op)}"
    )


def _entry_json(entry: Entry) -> dict[str, Any]:
    if entry.op == "delete":
        return {"key": entry.key, "scope": entry.scope, "op": "delete"}
    return {"key": entry.key, "value": entry.value, "scope": entry.scope}


def encode_body(entries: tuple[Entry, ...] | list[Entry]) -> str:
    """Encode entries as the *tail* of a message: the JSON object without its opening brace.

    The store's Lua script prepends ``{"version":N,"epoch":"E",`` so that the server, not the
    client, assigns the version atomically with the write, without re-encoding the values.
    """
    if len(entries) == 1:
        body = _entry_json(entries[0])
    else:
        body = {"changes": [_entry_json(entry) for entry in entries]}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)[1:]


def encode_message(
    entries: tuple[Entry, ...] | list[Entry], version: int | None = None, epoch: str | None = None
) -> str:
    """Encode a complete message, as a publisher outside the store would send it."""
    head = "{"
    if version is not None:
        head += f'"version":{int(version)},'
    if epoch is not None:
        head += f'"epoch":{json.dumps(epoch)},'
    return head + encode_body(entries)


def _short(value: object) -> str:
    return shown(value, secret=False, limit=60)
