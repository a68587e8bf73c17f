"""The process-wide default client, for code that imports its config directly.

# at startup
hotconfig.configure("redis://...", model=Settings)
# anywhere
from hotconfig import config
config.get("ai.model.default")
"""

from __future__ import annotations

import threading
from typing import Any

from .client import HotConfig, ModelT
from .errors import NotConfiguredError

__all__ = ["DefaultConfig", "config", "configure"]

_lock = threading.Lock()
_client: HotConfig[Any] | None = None


def configure(
    url: str | None = None,
    *,
    model: type[ModelT] | None = None,
    start_timeout: float | None = 5.0,
    **options: Any,
) -> HotConfig[ModelT]:
    """Create, start and install the process-wide client (closing the previous one, if any).

    Takes the arguments of :class:`HotConfig`; returns the new client. ``hotconfig.config``
    forwards to it from then on.
    """
    global _client
    client: HotConfig[ModelT] = HotConfig(url, model=model, **options)
    with _lock:
        previous, _client = _client, client
    if previous is not None:
        previous.close()
    client.start(timeout=start_timeout)
    return client


def current() -> HotConfig[Any]:
    client = _client
    if client is None:
        raise NotConfiguredError(
            "hotconfig.config is not configured yet: call hotconfig.configure(url, ...) at "
            "startup, or use a framework integration that does it for you"
        )
    return client


def reset() -> None:
    """Close and forget the process-wide client (for tests and shutdown hooks)."""
    global _client
    with _lock:
        previous, _client = _client, None
    if previous is not None:
        previous.close()


class DefaultConfig:
    """Forwards to the client installed by :func:`configure`, whichever it is at the time."""

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:
        return current().get(key, default)

    def __getitem__(self, key: str) -> Any:
        return current()[key]

    def __contains__(self, key: object) -> bool:
        return key in current()

    @property
    def settings(self) -> Any:
        return current().settings

    def __getattr__(self, name: str) -> Any:
        return getattr(current(), name)

    def __repr__(self) -> str:
        client = _client
        return (
            "<hotconfig.config (not configured)>"
            if client is None
            else f"<hotconfig.config {client!r}>"
        )


config = DefaultConfig()
