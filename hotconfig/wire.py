"""The wire format of the changes channel: parse what any publisher sends, encode the store's.

A message is a UTF-8 JSON object. The minimal form is what any client can publish by hand::

    {"key": "ai.model.default", "value": "gpt-4o", "scope": "global"}

Optional fields: ``op`` (``"set"`` or ``"delete"``), ``version`` (int, assigned by the store),
``epoch`` (str, the store's lifetime id) and ``changes`` (a batch of entries applied atomically
under one version). Unknown fields are ignored so that newer publishers can add some.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal, NamedTuple, TypeGuard

from .errors import InvalidMessageError
from .redaction import shown

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SCOPE",
    "HEADER_BYTES",
    "Entry",
    "Message",
    "encode_body",
    "encode_message",
    "parse",
    "validate_key",
    "validate_scope",
]

Op = Literal["set", "delete"]

DEFAULT_CHANNEL: Final = "config:changes"
DEFAULT_SCOPE: Final = "global"
DEFAULT_MAX_BYTES: Final = 1024 * 1024
# The store's write script makes each message from a header it writes itself,
# '{"version":N,"epoch":"<32 hex>",', and the body tail from encode_body(): this many bytes at
# most, counted against a client's message limit before the write is sent.
HEADER_BYTES: Final = 80
_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,256}").fullmatch
_MISSING: Final[Any] = object()
_DECODER: Final = json.JSONDecoder()


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


def _valid_name(name: object) -> TypeGuard[str]:
    return type(name) is str and _NAME(name) is not None


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid dotted key, else raise :class:`InvalidMessageError`."""
    if _valid_name(key):
        return key
    raise InvalidMessageError(
        "bad_key", f"key must be 1-256 characters of [A-Za-z0-9_.:-], got {_short(key)}"
    )


def validate_scope(scope: object) -> str:
    """Return ``scope`` if it is a valid scope name, else raise :class:`InvalidMessageError`."""
    if _valid_name(scope):
        return scope
    raise InvalidMessageError(
        "bad_scope", f"scope must be 1-256 characters of [A-Za-z0-9_.:-], got {_short(scope)}"
    )


def parse(data: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Parse one message; raise :class:`InvalidMessageError` with a reason code if it is invalid."""
    if len(data) > max_bytes:
        raise InvalidMessageError("oversize", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessageError("not_utf8", str(exc)) from None
    try:
        obj = _loads(data)
    except ValueError as exc:
        raise InvalidMessageError("invalid_json", str(exc)) from None
    if type(obj) is not dict:
        raise InvalidMessageError("not_object", f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("version")
    if version is not None and (type(version) is not int or version < 0):
        raise InvalidMessageError(
            "bad_field", f"version must be a non-negative int, got {version!r}"
        )
    epoch = obj.get("epoch")
    if epoch is not None and type(epoch) is not str:
        raise InvalidMessageError("bad_field", f"epoch must be a string, got {_short(epoch)}")
    default_scope = obj.get("scope", DEFAULT_SCOPE)
    batch = obj.get("changes", _MISSING)
    if batch is _MISSING:
        entries: tuple[Entry, ...] = (_entry(obj, DEFAULT_SCOPE),)
    elif type(batch) is list and batch:
        entries = tuple(_entry(item, default_scope) for item in batch)
    else:
        raise InvalidMessageError("bad_field", "changes must be a non-empty list of objects")
    return Message(entries, version, epoch)


def _loads(text: str) -> Any:
    # json.loads() is this decoder's raw_decode() behind two wrappers and two whitespace
    # scans: half the cost of decoding a small message. A document that does not fill the
    # text exactly (whitespace around it, trailing data, an error) takes json.loads(), so
    # that results and error messages stay exactly json.loads()'s.
    try:
        obj, end = _DECODER.raw_decode(text)
    except ValueError:
        return json.loads(text)
    return obj if end == len(text) else json.loads(text)


def _entry(obj: Any, default_scope: Any) -> Entry:
    if type(obj) is not dict:
        raise InvalidMessageError(
            "not_object", f"a change must be a JSON object, got {type(obj).__name__}"
        )
    key = validate_key(obj.get("key"))
    scope = validate_scope(obj.get("scope", default_scope))
    op = obj.get("op", "set")
    if op == "set":
        value = obj.get("value", _MISSING)
        if value is _MISSING:
            raise InvalidMessageError("bad_field", f"set of {key!r} has no value")
        return Entry(key, value, scope, "set")
    if op == "delete":
        return Entry(key, None, scope, "delete")
    raise InvalidMessageError("bad_field", f"op must be 'set' or 'delete', got {_short(op)}")


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
