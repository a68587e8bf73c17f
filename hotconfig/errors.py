"""The exceptions hotconfig raises.

Every error derives from :class:`HotConfigError`; each leaf also subclasses the builtin it
resembles, so ``except KeyError`` and ``except ValueError`` keep working::

    HotConfigError
    ├── ConfigKeyError        (KeyError)      a key that is neither set nor a model field
    ├── InvalidMessageError   (ValueError)    a wire message hotconfig refuses to apply (why:
    │                                         a RejectReason)
    ├── InvalidValueError     (ValueError)    a value the typed model rejects
    ├── NotConfiguredError    (RuntimeError)  ``hotconfig.config`` used before ``configure()``
    ├── ClientClosedError     (RuntimeError)  ``start()`` on a closed client
    └── StoreError            (RuntimeError)  a ConfigStore write the server refused
"""

from __future__ import annotations

import enum

__all__ = [
    "ClientClosedError",
    "ConfigKeyError",
    "HotConfigError",
    "InvalidMessageError",
    "InvalidValueError",
    "NotConfiguredError",
    "RejectReason",
    "StoreError",
]


class RejectReason(enum.StrEnum):
    """Why a message or a value was refused: ``reason`` of :class:`InvalidMessageError` and of
    ``signals.config_rejected``, the head of ``stats.last_rejection``, and what health reports
    and metrics count (the string values are the stable codes).

    The parser (``hotconfig._config.wire``) decides the first nine, the key ring
    (:class:`hotconfig.security.Verdict`, which describes them) the signing four, the apply step
    the last three. In every case the previous value stays in effect.
    """

    INVALID_JSON = "invalid_json"  # not one JSON document (NaN and Infinity included)
    NOT_OBJECT = "not_object"  # a message, or a change in a batch, that is not a JSON object
    BAD_KEY = "bad_key"  # a key outside [A-Za-z0-9_.:-] or longer than 256 characters
    BAD_SCOPE = "bad_scope"  # a scope name outside [A-Za-z0-9_.:-] or longer than 256
    BAD_FIELD = "bad_field"  # a known field of the wrong type (version, op, changes, ts, ...)
    OVERSIZE = "oversize"  # more bytes than Limits.max_message_bytes
    NOT_UTF8 = "not_utf8"  # bytes that are not UTF-8
    TOO_DEEP = "too_deep"  # nested deeper than Limits.max_depth (or the JSON decoder allows)
    TOO_MANY_ENTRIES = "too_many_entries"  # a batch of more than Limits.max_batch changes
    UNSIGNED = "unsigned"  # signing: see hotconfig.security.Verdict
    BAD_SIGNATURE = "bad_signature"  # signing: see hotconfig.security.Verdict
    STALE = "stale"  # signing: see hotconfig.security.Verdict
    REPLAYED = "replayed"  # signing: see hotconfig.security.Verdict
    GAP = "gap"  # a version that does not follow the store's, while the store has not moved
    CONFLICT = "conflict"  # a version this client has, with another digest: not the store's
    INVALID_VALUE = "invalid_value"  # a value the typed model rejects


class HotConfigError(Exception):
    """Base class of every error hotconfig raises."""


class ConfigKeyError(HotConfigError, KeyError):
    """A key that is not set in any followed scope and is not a field of the model."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; the message reads better plain.
        return str(self.args[0]) if self.args else ""


class InvalidMessageError(HotConfigError, ValueError):
    """A message on the changes channel that cannot be applied.

    ``reason`` (a :class:`RejectReason`) is the stable code counted in ``stats``; ``detail``
    says what exactly was wrong.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class InvalidValueError(HotConfigError, ValueError):
    """A value that the typed model rejects; the previous value stays in effect."""

    def __init__(self, key: str, detail: str, version: int | None = None) -> None:
        super().__init__(f"invalid value for {key!r}: {detail}")
        self.key = key
        self.detail = detail
        self.version = version
        """The version of the change that carried the value, when it had one."""


class NotConfiguredError(HotConfigError, RuntimeError):
    """The process-wide ``hotconfig.config`` was used before ``hotconfig.configure()``."""


class ClientClosedError(HotConfigError, RuntimeError):
    """A closed client cannot be started again; create a new ``HotConfig``."""


class StoreError(HotConfigError, RuntimeError):
    """A ``ConfigStore`` operation failed on the server."""
