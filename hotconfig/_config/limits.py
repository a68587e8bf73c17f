"""One set of input limits, and the one JSON reader that keeps them.

Everything hotconfig parses from outside — messages on the changes channel, stored values,
health reports, the bridge's payloads and envelopes, the last-known-good file, the CLI's values
and files — is read here, under the same limits: its size (``oversize``), its nesting
(``too_deep``), numbers that fit (NaN, Infinity and ``1e999`` are ``invalid_json``) and valid
UTF-8 (``not_utf8``, lone surrogate escapes included). A violation is an
:class:`~hotconfig.InvalidMessageError` with its reason, never a ``RecursionError`` or an
``OverflowError``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pydantic_core

from ..errors import InvalidMessageError, RejectReason

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "Limits",
    "check_depth",
    "decode_value",
    "decode_within",
    "load_text",
]

DEFAULT_MAX_BYTES: Final = 1024 * 1024
_FROM_JSON: Final = pydantic_core.from_json


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
# The decoder's C scanner, set by JSONDecoder.__init__ (typeshed does not declare it).
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


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


def decode_value(data: bytes | str, max_depth: int = DEFAULT_LIMITS.max_depth) -> Any:
    """Decode one stored value: exactly one JSON document, within ``max_depth``."""
    value = load_text(data)
    check_depth(value, max_depth)
    return value


def decode_within(data: bytes | str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode one JSON document from outside under every limit a message has: its size
    (``oversize``), its nesting (``too_deep``), numbers that fit and valid UTF-8."""
    if len(data) > limits.max_message_bytes:
        raise InvalidMessageError(
            RejectReason.OVERSIZE,
            f"{len(data)} bytes exceeds the limit of {limits.max_message_bytes}",
        )
    return decode_value(data, limits.max_depth)


def load_text(data: bytes | str) -> Any:
    """Exactly one JSON document from UTF-8 ``data``, with no limit on its nesting (see
    :func:`check_depth`, which also refuses a number too large for a float); every failure an
    :class:`InvalidMessageError` with its reason.

    pydantic-core's JSON parser reads it first (twice as fast as the standard library's on a
    message, and pydantic is a dependency already): it refuses NaN, Infinity, lone surrogates,
    invalid UTF-8 and trailing data as this module does. Anything it refuses is read again by
    the standard library's decoder, which gives the reason and the message this module has
    always given (or reads what pydantic-core refused for its own limits, such as nesting
    deeper than it recurses); only a float that overflows (``1e999``) it reads as infinity,
    which :func:`check_depth` refuses.
    """
    try:
        return _FROM_JSON(data, allow_inf_nan=False)
    except (ValueError, TypeError):
        return _load_strictly(data)


def _load_strictly(data: bytes | str) -> Any:
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
    # The scanner itself, not raw_decode(), which wraps it in one more Python call.
    try:
        obj, end = _SCAN(text, 0)
    except (StopIteration, ValueError):
        return _DECODER.decode(text)
    return obj if end == len(text) else _DECODER.decode(text)


def check_depth(value: Any, max_depth: int) -> None:
    """Raise :class:`InvalidMessageError` (TOO_DEEP) if ``value`` nests deeper than
    ``max_depth`` lists and objects: what every client refuses, checked by the store too."""
    # Iterative, so that checking a deep value cannot itself overflow the stack. Scalars, the
    # common case, cost a type check or two. A float that is not finite (x - x is NaN for an
    # infinity) can only come from a number too large for a float: refused as the standard
    # library's reading of it is.
    kind = type(value)
    if kind is not dict and kind is not list:
        if kind is float and value - value != 0.0:
            raise InvalidMessageError(RejectReason.INVALID_JSON, _OVERFLOW)
        return
    level = [value]
    for _ in range(max_depth):
        nested = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                kind = type(child)
                if kind is dict or kind is list:
                    nested.append(child)
                elif kind is float and child - child != 0.0:
                    raise InvalidMessageError(RejectReason.INVALID_JSON, _OVERFLOW)
        if not nested:
            return
        level = nested
    raise InvalidMessageError(
        RejectReason.TOO_DEEP, f"a value is nested deeper than {max_depth} levels"
    )


_OVERFLOW: Final = "a number too large for a float"
