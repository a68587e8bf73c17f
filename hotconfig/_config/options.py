"""The client's option groups: how it times its connection, and how it connects.

What users set on every client (the URL, the model, the scopes, ...) are the arguments of
:class:`~hotconfig.HotConfig` itself; what only some tune travels in a named, frozen, validated
object, as httpx groups ``Timeout`` and ``Limits``::

    HotConfig(
        url,
        timings=hotconfig.Timings(poll_interval=30.0),
        limits=hotconfig.Limits(max_message_bytes=4 << 20),  # defined with the parser, in wire
        connection=hotconfig.Connection(redis_kwargs={"ssl_ca_certs": "ca.pem"}),
    )

Each group is checked when it is made: a wrong value raises ``ValueError`` naming the field and
showing a value that works. The client also takes a plain mapping for each group (a settings
file cannot hold objects) and turns it into the group with :func:`group_of`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from .._redis.session import SessionOptions
from ..errors import InvalidMessageError
from .wire import Limits, validate_scope

__all__ = ["Connection", "Grouped", "Timings", "group_of", "named_scopes", "regroup"]

GroupT = TypeVar("GroupT", "Timings", Limits, "Connection")


@dataclass(frozen=True, slots=True)
class Timings:
    """How the listener times its connection, in seconds; the defaults see a dead connection
    within about 3 s and a missed message within about 5 s.

    ``ping_interval``: a PING with a token goes out this often; ``liveness_timeout``: no
    matching PONG (or probe echo) within this long and the connection is dropped and made
    anew. ``poll_interval``: the store's position is compared with this client's this often
    (anti-entropy; also what bounds the staleness of ``config.lag``). ``probe_interval``: a
    message published on a private channel must come back this often (None: every 30 s on
    Sentinel and Cluster, where a failover can leave a connection that answers PING but no
    longer delivers; off on one server). ``socket_timeout``: the longest a command waits.
    ``backoff_max``: the cap of the jittered exponential reconnect backoff.
    """

    ping_interval: float = 1.0
    liveness_timeout: float = 2.0
    poll_interval: float = 5.0
    probe_interval: float | None = None
    socket_timeout: float = 2.0
    backoff_max: float = 0.5

    def session(self, probe_default: float | None) -> SessionOptions:
        """The listener connection's timings; ``probe_default`` when ``probe_interval`` is None."""
        probe = self.probe_interval if self.probe_interval is not None else probe_default
        return SessionOptions(
            socket_timeout=self.socket_timeout,
            ping_interval=self.ping_interval,
            liveness_timeout=self.liveness_timeout,
            probe_interval=probe,
            backoff_max=self.backoff_max,
        )

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "probe_interval" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                example = item.default if item.default is not None else 30.0
                raise ValueError(
                    f"Timings({item.name}={value!r}): {item.name} must be a positive number "
                    f"of seconds, e.g. Timings({item.name}={example})"
                )


@dataclass(frozen=True, slots=True)
class Connection:
    """How to connect, beyond what the URL says.

    ``redis_kwargs``: keyword arguments for redis-py's client that a URL cannot carry (TLS
    files such as ``ssl_ca_certs``, ``protocol``); kept as a read-only copy. ``sharded``: in
    a Redis Cluster, also follow the store's changes by sharded Pub/Sub (SSUBSCRIBE); None
    takes the URL's ``?sharded=``.
    """

    redis_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    sharded: bool | None = None

    def __post_init__(self) -> None:
        kwargs = self.redis_kwargs
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise ValueError(
                f"Connection(redis_kwargs={kwargs!r}): redis_kwargs must map redis-py argument "
                "names to values, e.g. Connection(redis_kwargs={'ssl_ca_certs': 'ca.pem'})"
            )
        object.__setattr__(self, "redis_kwargs", MappingProxyType(dict(kwargs)))
        if self.sharded is not None and not isinstance(self.sharded, bool):
            raise ValueError(
                f"Connection(sharded={self.sharded!r}): sharded must be True, False or None "
                "(None: the URL's ?sharded=), e.g. Connection(sharded=True)"
            )

    def __repr__(self) -> str:
        # redis_kwargs may carry a password or a key file's passphrase: names only.
        names = ", ".join(sorted(self.redis_kwargs))
        return f"Connection(redis_kwargs=<{names}>, sharded={self.sharded!r})"


def group_of(kind: type[GroupT], value: GroupT | Mapping[str, Any] | None) -> GroupT:
    """``value`` as a ``kind``: itself, the defaults for None, or made from a mapping."""
    if value is None:
        return kind()
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        names = {item.name for item in dataclasses.fields(kind)}
        unknown = sorted(str(name) for name in value if name not in names)
        if unknown:
            raise TypeError(
                f"{kind.__name__} has no field {', '.join(unknown)}; its fields are "
                f"{', '.join(sorted(names))}"
            )
        return kind(**value)
    raise TypeError(
        f"expected hotconfig.{kind.__name__}(...) or a mapping of its fields, "
        f"not {type(value).__name__}"
    )


class Grouped(NamedTuple):
    """The client's option groups once the deprecated flat keyword arguments are folded in."""

    timings: Timings
    limits: Limits
    connection: Connection
    framework: str | None  # the health reporter's, from the deprecated framework=


# The flat keyword arguments of earlier releases and the group each now belongs to. Kept for
# one release, each with a DeprecationWarning naming its replacement.
_GROUPS: dict[str, type[Timings | Limits | Connection]] = {
    **{item.name: Timings for item in dataclasses.fields(Timings)},
    **{item.name: Limits for item in dataclasses.fields(Limits)},
    **{item.name: Connection for item in dataclasses.fields(Connection)},
}
_PARAMETER = {Timings: "timings", Limits: "limits", Connection: "connection"}


def regroup(
    legacy: Mapping[str, Any],
    timings: Timings | Mapping[str, Any] | None,
    limits: Limits | Mapping[str, Any] | None,
    connection: Connection | Mapping[str, Any] | None,
) -> Grouped:
    """The option groups, with ``legacy`` (the flat keyword arguments of earlier releases)
    folded into the group each belongs to; each one found is a DeprecationWarning."""
    given: dict[type[Any], Any] = {Timings: timings, Limits: limits, Connection: connection}
    flat: dict[type[Any], dict[str, Any]] = {Timings: {}, Limits: {}, Connection: {}}
    framework = None
    for name, value in legacy.items():
        if name == "framework":
            _deprecated(
                "framework= is deprecated: pass health=False and "
                "config.attach(hotconfig.fleet.Reporter(config, framework=...))"
            )
            framework = value
            continue
        kind = _GROUPS.get(name)
        if kind is None:
            raise TypeError(
                f"HotConfig() got an unexpected keyword argument {name!r}; timings go in "
                "timings=hotconfig.Timings(...), limits in limits=hotconfig.Limits(...), "
                "redis_kwargs and sharded in connection=hotconfig.Connection(...)"
            )
        parameter = _PARAMETER[kind]
        if given[kind] is not None:
            raise TypeError(f"pass {name} inside {parameter}=, not beside it")
        _deprecated(
            f"HotConfig({name}=...) is deprecated and will be removed in the next release: "
            f"pass {parameter}=hotconfig.{kind.__name__}({name}=...)"
        )
        flat[kind][name] = value
    return Grouped(
        group_of(Timings, flat[Timings] or timings),
        group_of(Limits, flat[Limits] or limits),
        group_of(Connection, flat[Connection] or connection),
        framework,
    )


def _deprecated(message: str) -> None:
    # stacklevel: this function, regroup(), HotConfig.__init__(), then the caller's line.
    warnings.warn(message, DeprecationWarning, stacklevel=4)


def named_scopes(scopes: Iterable[str] | str) -> tuple[str, ...]:
    """The client's ``scopes`` argument as a tuple, or a ValueError saying what is wrong."""
    # A string is one scope: tuple("global") would be six one-letter scopes.
    named = (scopes,) if isinstance(scopes, str) else tuple(scopes)
    if not named:
        raise ValueError("scopes must name at least one scope, e.g. ['global']")
    for scope in named:
        try:
            validate_scope(scope)
        except InvalidMessageError as exc:
            raise ValueError(f"scopes: {exc.detail}") from None
    return named
