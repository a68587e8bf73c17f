"""``hotconfig_django.config``: the app's client, reachable before it exists.

Code imports ``config`` at module level (views, tasks, other apps); the client it stands for is
built later, in ``HotConfigDjangoConfig.ready()``. Reads before then raise
:class:`ConfigNotReadyError` with what to do, instead of serving a guess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hotconfig import HotConfig, Snapshot, Stats, Status
from hotconfig.signals import Receiver

from .errors import ConfigNotReadyError

__all__ = ["LazyConfig", "Receiver", "config"]


_NOT_READY = (
    "hotconfig_django.config was read before the app registry was ready: read it inside "
    "functions (views, tasks, receivers) or after django.setup(), and check that "
    "'hotconfig_django' is in INSTALLED_APPS"
)


class LazyConfig:
    """Forwards to the client that ``ready()`` built; the same object for the whole process.

    No ``__slots__`` on purpose: once bound, ``get`` is the client's own ``get`` stored on the
    instance and replaced with it at every swap (:meth:`hotconfig.HotConfig.mirror_get`), so
    ``config.get(key)`` costs what the core's ``get`` costs.
    """

    def __init__(self) -> None:
        self._client: HotConfig[Any] | None = None
        self._failure: Exception | None = None

    @property
    def client(self) -> HotConfig[Any]:
        """The :class:`hotconfig.HotConfig` behind this object."""
        client = self._client
        if client is None and self._failure is None and _app_registry_loaded():
            # An app listed before hotconfig_django reads config in its own ready(): set up
            # now rather than make INSTALLED_APPS order matter.
            from . import lifecycle

            lifecycle.ensure_setup()
            client = self._client
        if client is None:
            if self._failure is not None:
                raise self._failure
            raise ConfigNotReadyError(_NOT_READY)
        return client

    # -- reads --------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The effective value of ``key``, or ``default``; replaced by the client's own ``get``."""
        return self.client.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.client[key]

    def __contains__(self, key: object) -> bool:
        return key in self.client

    @property
    def settings(self) -> Any:
        """The typed settings (an instance of ``MODEL``), replaced whole on every change."""
        return self.client.settings

    def snapshot(self) -> Snapshot:
        return self.client.snapshot()

    @property
    def version(self) -> int:
        return self.client.version

    @property
    def status(self) -> Status:
        return self.client.status

    @property
    def stats(self) -> Stats:
        return self.client.stats

    def wait_for_version(self, version: int, timeout: float | None = None) -> bool:
        return self.client.wait_for_version(version, timeout)

    def on_change(
        self, pattern: str = "*", *, loop: asyncio.AbstractEventLoop | None = None
    ) -> Callable[[Receiver], Receiver]:
        """Register a receiver with the client (see :meth:`hotconfig.HotConfig.on_change`)."""
        return self.client.on_change(pattern, loop=loop)

    def remove_receiver(self, receiver: Receiver, pattern: str | None = None) -> bool:
        """Unregister a receiver (see :meth:`hotconfig.HotConfig.remove_receiver`)."""
        return self.client.remove_receiver(receiver, pattern)

    # No __getattr__: a class with one loses CPython's fast attribute paths, and `get` with it.

    def __repr__(self) -> str:
        client = self._client
        if client is None:
            return "<hotconfig_django.config (not ready)>"
        return f"<hotconfig_django.config {client!r}>"

    # -- binding, by lifecycle only -----------------------------------------------------------

    def _bind(self, client: HotConfig[Any]) -> None:
        self._client, self._failure = client, None
        client.mirror_get(self.__dict__)  # `get` is then the snapshot's own, swapped with it

    def _fail(self, failure: Exception) -> None:
        self._unbind()
        self._failure = failure

    def _unbind(self) -> None:
        if self._client is not None:
            self._client.mirror_get(self.__dict__, keep=False)
        self.__dict__.pop("get", None)
        self._client = self._failure = None


def _app_registry_loaded() -> bool:
    """Whether settings are loaded and every app imported (some ready() may still be due)."""
    from django.apps import apps

    return apps.apps_ready and apps.is_installed("hotconfig_django")


config = LazyConfig()
