"""What every ``hotconfig`` command shares: the group's options and the connections opened."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import click
import redis

from .._config.options import Connection, group_of
from .._config.wire import Limits
from .._redis.connection import Target, resolve
from .._redis.liveness import misconfiguration
from ..errors import HotConfigError
from ..fleet._observer import Fleet
from ..store import ConfigStore
from .arguments import hoisted
from .output import Output

__all__ = [
    "STORE_OPTIONS",
    "AppDefaults",
    "Failure",
    "Group",
    "Session",
    "pass_session",
    "server_error",
]

# The client options that writes must share with the app's clients: where they are published,
# the key ring that signs them; and, from the option groups (or, deprecated, given flat), how
# large a message may be and the connection's TLS files and mode.
STORE_OPTIONS: Final = ("channel", "namespace", "signing_keys")
_FLAT_OPTIONS: Final = ("max_message_bytes", "redis_kwargs", "sharded")


@dataclass(frozen=True, slots=True)
class AppDefaults:
    """What a framework's wrapper (``manage.py hotconfig``, ``flask hotconfig``) knows of its
    app: the URL and the options its clients use. ``--url``, ``--namespace`` and
    ``--channel`` on the command line win over them."""

    url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, url: str | None, client_options: Mapping[str, Any]) -> AppDefaults:
        """From the app's URL and its client's options (the store's kept, the rest ignored)."""
        kept = {
            k: client_options[k] for k in (*STORE_OPTIONS, *_FLAT_OPTIONS) if k in client_options
        }
        if client_options.get("limits") is not None:
            kept["max_message_bytes"] = group_of(Limits, client_options["limits"]).max_message_bytes
        if client_options.get("connection") is not None:
            connection = group_of(Connection, client_options["connection"])
            kept["redis_kwargs"] = dict(connection.redis_kwargs)
            kept["sharded"] = connection.sharded
        return cls(url, kept)


class Session:
    """The group's options, and the store and fleet connections, opened on first use."""

    def __init__(
        self,
        url: str | None,
        namespace: str,
        channel: str,
        out: Output,
        store_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = resolve(url)
        self.redacted = Target(self.url).redacted  # validates the URL first
        self.namespace = namespace
        self.channel = channel
        self.out = out
        self.store_options = dict(store_options or {})  # signing keys, TLS files...
        self._store: ConfigStore | None = None
        self._fleet: Fleet | None = None
        self.written: dict[str, Any] | None = None  # what the command wrote, for --json

    @property
    def store(self) -> ConfigStore:
        if self._store is None:
            self._store = ConfigStore(
                self.url, channel=self.channel, namespace=self.namespace, **self.store_options
            )
        return self._store

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            self._fleet = Fleet(
                self.url,
                self.namespace,
                channel=self.channel,
                redis_kwargs=self.store_options.get("redis_kwargs"),
                sharded=self.store_options.get("sharded"),
                # The store's ring: with signing on, unsigned health reports do not count.
                signing_keys=self.store_options.get("signing_keys"),
            )
        return self._fleet

    def close(self) -> None:
        for closable in (self._store, self._fleet):
            if closable is not None:
                closable.close()


class Failure(click.ClickException):
    """A usage error or a server that cannot be reached: one line, exit 2."""

    exit_code = 2


def server_error(exc: BaseException, where: str | None) -> str:
    """One line for a server's failure, in the library's words: what to fix when the server
    refused this client (a password, an ACL, a port that is not Redis), else what went wrong.
    ``where`` is the URL without its password."""
    at = f" at {where}" if where else ""
    hint = misconfiguration(exc)
    if hint is not None:
        return f"Redis{at} refused this client: {hint}"
    return f"Redis{at}: {exc}"


class Group(click.Group):
    """Reads the group's options anywhere on the line, and turns a server error into one line
    naming the URL without its password."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoisted(self, ctx, args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (redis.RedisError, OSError) as exc:
            session = ctx.find_object(Session)
            raise Failure(server_error(exc, session.redacted if session else None)) from None
        except (HotConfigError, ValueError) as exc:
            raise Failure(str(exc)) from None


pass_session = click.make_pass_decorator(Session)
