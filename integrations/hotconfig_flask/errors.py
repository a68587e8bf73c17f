"""The exceptions the Flask extension raises; all are :class:`hotconfig.HotConfigError`::

HotConfigError
├── ExtensionSetupError     (ValueError)    a HOTCONFIG_* key in app.config is wrong
├── AlreadyRegisteredError  (RuntimeError)  init_app called twice on one app
├── NotRegisteredError      (RuntimeError)  the current app never went through init_app
└── NoAppContextError       (RuntimeError)  a read through the extension outside any app
"""

from __future__ import annotations

from hotconfig import HotConfigError

__all__ = [
    "AlreadyRegisteredError",
    "ExtensionSetupError",
    "NoAppContextError",
    "NotRegisteredError",
]


class ExtensionSetupError(HotConfigError, ValueError):
    """A ``HOTCONFIG_*`` key of ``app.config`` holds something the extension cannot use."""


class AlreadyRegisteredError(HotConfigError, RuntimeError):
    """``init_app`` was called a second time for the same Flask app."""


class NotRegisteredError(HotConfigError, RuntimeError):
    """The current Flask app has no hotconfig client: ``init_app(app)`` was never called."""


class NoAppContextError(HotConfigError, RuntimeError):
    """The extension was read outside an application context, so it has no app to read."""
