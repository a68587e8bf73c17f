"""The wire format of the changes channel: parse what any publisher sends, encode the store's.

A message is a UTF-8 JSON object. The minimal form is what any client can publish by hand::

    {"key": "ai.model.default", "value": "gpt-4o", "scope": "global"}

Optional fields: ``op`` (``"set"`` or ``"delete"``), ``version`` (int, assigned by the store),
``epoch`` (str, the store's lifetime id) and ``changes`` (a batch of entries applied atomically
under one version). The store also sends ``prev`` and ``digest`` (the write this one follows,
and this one: see keyspace), ``sizes`` (keys per touched scope), ``reload`` (a change too large
for one message) and, when it signs, ``sig`` (see signing); a signed unversioned message has
``ts``. Unknown fields are ignored so that newer publishers can add some.

Hostile input is a counted rejection, never a crash: the size, the nesting depth and the number
of entries are limited (:class:`Limits`), NaN and Infinity are refused (the store refuses to
write them too), and a document too deep for the JSON decoder is reported as ``too_deep``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, TypeGuard

from ..errors import InvalidMessageError, RejectReason
from ..security.redaction import shown

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
DEFAULT_MAX_BYTES: Final = 1024 * 1024
# The store's write script makes each message from a header it writes itself,
# '{"version":N,"epoch":"<32 hex>","prev":"<16 hex>","digest":"<16 hex>","sizes":{...},', and
# the body tail from encode_body(): at most this many bytes, plus SIZE_BYTES and the scope's
# name for each scope the write touches, counted against a client's limit before it is sent.
HEADER_BYTES: Final = 160
SIZE_BYTES: Final = 16
_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,256}").fullmatch
_MISSING: Final[Any] = object()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isfinite(number):
        return number
    raise ValueError(f"{text[:40]} overflows a float")


# json's decoder accepts NaN and Infinity by default, and turns 1e999 into inf; nothing else in
# the system can hold them.
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one message may hold at most; beyond it, a counted rejection, never a crash.

    ``max_message_bytes``: its size in UTF-8 bytes (reason ``oversize``); ``max_depth``: the
    nesting of arrays and objects, in a value or the message (``too_deep``); ``max_batch``:
    the changes in one batch (``too_many_entries``). A client passes them as
    ``HotConfig(url, limits=hotconfig.Limits(max_message_bytes=4 << 20))``.
    """

    max_message_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = 64
    max_batch: int = 10_000

    def __post_init__(self) -> None:
        _check_limit("max_message_bytes", self.max_message_bytes, DEFAULT_MAX_BYTES)
        _check_limit("max_depth", self.max_depth, 64)
        _check_limit("max_batch", self.max_batch, 10_000)


def _check_limit(name: str, value: object, default: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Limits({name}={value!r}): {name} must be a whole number of at least 1, "
            f"e.g. Limits({name}={default})"
        )


DEFAULT_LIMITS: Final = Limits()


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


def _valid_name(name: object) -> TypeGuard[str]:
    return type(name) is str and _NAME(name) is not None


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
    obj = _decode(data)
    if type(obj) is not dict:
        raise InvalidMessageError(
            RejectReason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}"
        )
    if len(obj) <= 4 and "version" not in obj and "changes" not in obj and "sig" not in obj:
        # The seed's format (key, value, scope, op): what raw publishers send, so the path
        # that skips looking for the store's header fields.
        return Message((_entry(obj, DEFAULT_SCOPE, limits),))
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
    if sizes is not None and not (
        type(sizes) is dict and all(type(n) is int for n in sizes.values())
    ):
        raise InvalidMessageError(RejectReason.BAD_FIELD, "sizes must map scopes to ints")
    ts = get("ts")
    if ts is not None and type(ts) is not int:
        raise InvalidMessageError(RejectReason.BAD_FIELD, f"ts must be an int, got {_short(ts)}")
    if obj.get("reload") is True and version is not None:
        return Message((), version, epoch, prev, digest, sizes, True, sig, ts, ns)
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
    return Message(entries, version, epoch, prev, digest, sizes, False, sig, ts, ns)


# The store's write script begins every message with '{"version":N,"ns":"<namespace>",' (see
# keyspace): enough to tell which write a message was, even when the rest cannot be read.
_ENVELOPE: Final = re.compile(rb'\s*\{"version":(\d{1,18}),(?:"ns":"([A-Za-z0-9_.:\-]{1,256})",)?')


def envelope_version(data: bytes | str, namespace: str) -> int | None:
    """The version a store's message claims in its envelope, read without parsing the rest:
    what a client that refuses the message (not UTF-8, too deep, a bad field) reports it under,
    so that a barrier waiting for that write hears *rejected*, not *behind*. None when the
    message does not start as a store's message of ``namespace`` does."""
    head = data[:320].encode("utf-8", "surrogatepass") if isinstance(data, str) else data[:320]
    match = _ENVELOPE.match(head)
    if match is None or (match[2] is not None and match[2].decode() != namespace):
        return None
    return int(match[1])


def decode_value(data: bytes | str, max_depth: int = DEFAULT_LIMITS.max_depth) -> Any:
    """Decode one stored value: exactly one JSON document, within ``max_depth``."""
    value = _decode(data)
    check_depth(value, max_depth)
    return value


def _decode(data: bytes | str) -> Any:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessageError(RejectReason.NOT_UTF8, str(exc)) from None
    try:
        value = _loads(data)
    except RecursionError:
        raise InvalidMessageError(
            RejectReason.TOO_DEEP, "nested deeper than the JSON decoder allows"
        ) from None
    except MemoryError:
        raise InvalidMessageError(RejectReason.OVERSIZE, "too large to decode in memory") from None
    except ValueError as exc:
        raise InvalidMessageError(RejectReason.INVALID_JSON, str(exc)) from None
    # Only a \u escape can make a lone surrogate (bytes that are UTF-8 cannot): a text that no
    # UTF-8 can hold, which would fail in the app at its first encode() or json.dumps().
    if "\\u" in data and _SURROGATE_ESCAPE.search(data) and not _encodable(value):
        raise InvalidMessageError(
            RejectReason.NOT_UTF8,
            "a \\u escape of a lone surrogate (half of a UTF-16 pair): no UTF-8 text holds it",
        )
    return value


_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(value: Any) -> bool:
    """Whether every string in ``value`` (keys included) can be written as UTF-8; iterative."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is str:
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif type(item) is dict:
            pending += item.keys()
            pending += item.values()
        elif type(item) is list:
            pending += item
    return True


def _loads(text: str) -> Any:
    # json.loads() is this decoder's raw_decode() behind two wrappers and two whitespace
    # scans: half the cost of decoding a small message. A document that does not fill the
    # text exactly (whitespace around it, trailing data, an error) takes the full decode(),
    # so that results and error messages stay exactly json.loads()'s.
    try:
        obj, end = _DECODER.raw_decode(text)
    except ValueError:
        return _DECODER.decode(text)
    return obj if end == len(text) else _DECODER.decode(text)


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and type(value) is not str:
        raise InvalidMessageError(
            RejectReason.BAD_FIELD, f"{name} must be a string, got {_short(value)}"
        )
    return value


def check_depth(value: Any, max_depth: int) -> None:
    """Raise :class:`InvalidMessageError` (TOO_DEEP) if ``value`` nests deeper than
    ``max_depth`` lists and objects: what every client refuses, checked by the store too."""
    # Iterative, so that checking a deep value cannot itself overflow the stack. Scalars, the
    # common case, cost one type check.
    if type(value) is not dict and type(value) is not list:
        return
    level = [value]
    for _ in range(max_depth):
        nested = []
        for item in level:
            children = item.values() if type(item) is dict else item
            nested += [c for c in children if type(c) is dict or type(c) is list]
        if not nested:
            return
        level = nested
    raise InvalidMessageError(
        RejectReason.TOO_DEEP, f"a value is nested deeper than {max_depth} levels"
    )


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
        return Entry(key, value, scope, "set")
    if op == "delete":
        return Entry(key, None, scope, "delete")
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
