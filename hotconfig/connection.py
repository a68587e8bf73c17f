"""Where hotconfig's Redis connections come from: one place resolves, validates, connects, redacts.

Every part that talks to Redis (the listener, :class:`~hotconfig.ConfigStore`, the test servers'
callers) gets its URL and its clients here, so that the default URL, the validation and the
redaction rules are the same everywhere::

    url = connection.resolve(None)  # the argument, else $HOTCONFIG_URL, else localhost
    target = connection.Target(url)  # validated now: a typo raises instead of retrying forever
    target.command_client()  # redis.Redis for commands
    target.subscriber_client(socket_timeout=2.0)  # redis.Redis for the listener's subscription
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

__all__ = ["DEFAULT_URL", "ENV_VAR", "Target", "redacted", "resolve"]

ENV_VAR: Final = "HOTCONFIG_URL"
DEFAULT_URL: Final = "redis://localhost:6379/0"
_SCHEMES: Final = ("redis", "rediss", "unix")


def resolve(url: str | None) -> str:
    """The URL to use: ``url`` if given, else ``$HOTCONFIG_URL`` if set and not empty, else
    ``redis://localhost:6379/0``."""
    if url:
        return url
    return os.environ.get(ENV_VAR, "").strip() or DEFAULT_URL


def redacted(url: str) -> str:
    """``url`` with its password (and a lone user name's secret) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    # redis-py reads "redis://secret@host" as a password with no user name.
    auth = f"{user}:***" if parts.password is not None else "***"
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def _validate(url: str) -> dict[str, Any]:
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unsupported Redis URL {redacted(url)!r}: it must start with redis://, rediss:// "
            "or unix:// (e.g. redis://localhost:6379/0)"
        )
    try:
        parsed: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise ValueError(f"invalid Redis URL {redacted(url)!r}: {exc}") from None
    if scheme != "unix":
        path = urlsplit(url).path.strip("/")
        if path and not path.isdigit():
            raise ValueError(
                f"invalid Redis URL {redacted(url)!r}: the path must be a database number "
                f"(e.g. /0), not {path!r}"
            )
        if not parsed.get("host"):
            raise ValueError(f"invalid Redis URL {redacted(url)!r}: it names no host")
    return parsed


class Target:
    """One validated Redis URL and the options every client made for it shares.

    Raises :class:`ValueError` at construction for a URL that can never work (a bad scheme, a
    port that is not a number, a database that is not one), naming the URL without its password.
    """

    __slots__ = ("_options", "url")

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        _validate(url)
        self.url = url
        self._options = dict(options or {})

    @property
    def redacted(self) -> str:
        return redacted(self.url)

    def command_client(self, **overrides: Any) -> redis.Redis:
        """A client for commands, with redis-py's usual pooling and retries."""
        return redis.Redis.from_url(self.url, **{**self._options, **overrides})

    def subscriber_client(self, socket_timeout: float) -> redis.Redis:
        """A client for the listener: no silent retries, no health-check PINGs, bytes, RESP2.

        The listener detects every failure itself and resyncs after it, so redis-py must not
        hide one by reconnecting (and re-subscribing) under it. RESP2 is pinned: under RESP3
        redis-py routes every Pub/Sub message through its push-notification hooks, which cost
        more than applying the message.
        """
        return redis.Redis.from_url(
            self.url,
            **{
                **self._options,
                "protocol": 2,
                "socket_timeout": socket_timeout,
                "socket_connect_timeout": socket_timeout,
                "health_check_interval": 0,  # the listener's token PING checks the PONG too
                "retry": Retry(NoBackoff(), 0, supported_errors=()),
                "decode_responses": False,  # replies are matched as bytes
            },
        )

    def __repr__(self) -> str:
        return f"<Target {self.redacted}>"
