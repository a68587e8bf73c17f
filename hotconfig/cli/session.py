"""What every ``hotconfig`` command shares: the group's options and the connections opened."""

from __future__ import annotations

from typing import Any

import click
import redis

from ..connection import Target, resolve
from ..errors import HotConfigError
from ..fleet import Fleet
from ..store import ConfigStore
from .output import Output

__all__ = ["Failure", "Group", "Session", "pass_session"]


class Session:
    """The group's options, and the store and fleet connections, opened on first use."""

    def __init__(self, url: str | None, namespace: str, channel: str, out: Output) -> None:
        self.url = resolve(url)
        self.redacted = Target(self.url).redacted  # validates the URL first
        self.namespace = namespace
        self.channel = channel
        self.out = out
        self._store: ConfigStore | None = None
        self._fleet: Fleet | None = None
        self.written: dict[str, Any] | None = None  # what the command wrote, for --json

    @property
    def store(self) -> ConfigStore:
        if self._store is None:
            self._store = ConfigStore(self.url, channel=self.channel, namespace=self.namespace)
        return self._store

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            self._fleet = Fleet(self.url, self.namespace, channel=self.channel)
        return self._fleet

    def close(self) -> None:
        for closable in (self._store, self._fleet):
            if closable is not None:
                closable.close()


class Failure(click.ClickException):
    """A usage error or a server that cannot be reached: one line, exit 2."""

    exit_code = 2


class Group(click.Group):
    """Turns a server error into one line naming the URL without its password."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (redis.RedisError, OSError) as exc:
            session = ctx.find_object(Session)
            where = f" at {session.redacted}" if session is not None else ""
            raise Failure(f"Redis{where}: {exc}") from None
        except (HotConfigError, ValueError) as exc:
            raise Failure(str(exc)) from None


pass_session = click.make_pass_decorator(Session)
