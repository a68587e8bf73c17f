"""The exceptions hotconfig raises.

Every error derives from :class:`HotConfigError`; each leaf also subclasses the builtin it
resembles, so ``except KeyError`` and ``except ValueError`` keep working::

    HotConfigError
    ├── ConfigKeyError        (KeyError)      a key that is neither set nor a model field
    ├── InvalidMessageError   (ValueError)    a wire message hotconfig refuses to apply
    ├── InvalidValueError     (ValueError)    a value the typed model rejects
    ├── NotConfiguredError    (RuntimeError)  ``hotconfig.config`` used before ``configure()``
    ├── ClientClosedError     (RuntimeError)  ``start()`` on a closed client
    └── StoreError            (RuntimeError)  a ConfigStore write the server refused
"""

from __future__ import annotations

__all__ = [
    "ClientClosedError",
    "ConfigKeyError",
    "HotConfigError",
    "InvalidMessageError",
    "InvalidValueError",
    "NotConfiguredError",
    "StoreError",
]


class HotConfigError(Exception):
    """Base class of every error hotconfig raises."""


class ConfigKeyError(HotConfigError, KeyError):
    """A key that is not set in any followed scope and is not a field of the model."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; the message reads better plain.
        return str(self.args[0]) if self.args else ""


class InvalidMessageError(HotConfigError, ValueError):
    """A message on the changes channel that cannot be applied.

    ``reason`` is a short, stable code (``invalid_json``, ``not_object``, ``bad_key``,
    ``oversize``, ``not_utf8``, ``bad_field``) that is counted in ``stats``.
    """

    def __init__(self, reason: str, detail: str) -> None:
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
