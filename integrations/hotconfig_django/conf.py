"""``settings.HOTCONFIG``: the one place the integration reads Django settings.

    HOTCONFIG = {
        "URL": "redis://127.0.0.1:6379/0",    # default: $HOTCONFIG_URL, then localhost
        "MODEL": "myproject.config.Settings",  # dotted path to a pydantic model
        "SCOPES": ["global", "service:shop"],  # low -> high precedence
        "SERVICE": "shop",
        "START": "auto",                       # True / False: listen in every / no process
        "START_TIMEOUT": 5.0,                  # how long startup waits for the first snapshot
        "CACHE_PATH": BASE_DIR / "hotconfig.json",
        "TIMINGS": {"poll_interval": 5.0},     # or hotconfig.Timings(...); likewise LIMITS,
        "NAMESPACE": "shop",                   # CONNECTION, and any other HotConfig argument
    }

:func:`load` turns it into a :class:`DjangoConf` or raises :class:`HotConfigSettingsError`;
:func:`problems` lists everything wrong with it for the system checks.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings
from django.utils.module_loading import import_string
from pydantic import BaseModel

from hotconfig import Connection, HotConfig, InvalidMessageError, Limits, Timings, resolve_url
from hotconfig.fleet import Reporter
from hotconfig.security import redacted_url

from .errors import HotConfigSettingsError, Problem

__all__ = [
    "DjangoConf",
    "Problem",
    "StartMode",
    "build_client",
    "load",
    "problems",
    "uses_constance_backend",
]

StartMode = Literal["auto", "always", "never"]

_NAMED = {"URL", "MODEL", "SCOPES", "SERVICE", "START", "START_TIMEOUT", "CACHE_PATH"}
# HotConfig arguments that the named entries above already set.
_NOT_PASSED = {"url", "model", "scopes", "service", "cache_path"}
# The option groups, and the flat entries of earlier releases each one now holds.
_GROUPS = {"timings": Timings, "limits": Limits, "connection": Connection}
_FLAT = {item.name: group for group, kind in _GROUPS.items() for item in dataclasses.fields(kind)}
_SCHEMES = ("redis://", "rediss://", "unix://")
_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,256}").fullmatch
_DOCS = "see docs/django.md, 'Settings'"


@dataclass(frozen=True)
class DjangoConf:
    """``settings.HOTCONFIG``, checked and resolved (``MODEL`` imported)."""

    url: str | None = None
    model: type[BaseModel] | None = None
    scopes: tuple[str, ...] = ("global",)
    service: str | None = None
    start: StartMode = "auto"
    start_timeout: float = 5.0
    cache_path: str | os.PathLike[str] | None = None
    health: bool = True
    timings: Timings = field(default_factory=Timings)
    limits: Limits = field(default_factory=Limits)
    connection: Connection = field(default_factory=Connection)
    options: Mapping[str, Any] = field(default_factory=dict)

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`hotconfig.HotConfig` this configuration means.

        ``health`` is off: :func:`build_client` attaches the reporter itself, so that health
        reports say ``framework="django"``.
        """
        return {
            "url": self.url,
            "model": self.model,
            "scopes": self.scopes,
            "service": self.service,
            "cache_path": self.cache_path,
            "health": False,
            "timings": self.timings,
            "limits": self.limits,
            "connection": self.connection,
            **self.options,
        }

    @property
    def effective_url(self) -> str:
        """``URL``, else ``$HOTCONFIG_URL``, else localhost: what the client connects to.

        Not checked here: :func:`load` checked ``URL``, the client checks the environment's,
        and a system check must still be able to show a broken one."""
        return resolve_url(self.url, check=False)

    @property
    def shown_url(self) -> str:
        """:attr:`effective_url` with its password hidden, for messages and logs."""
        return redacted_url(self.effective_url)


def load() -> DjangoConf:
    """Read and check ``settings.HOTCONFIG``; raise on the first problem found."""
    conf, found = _parse(getattr(settings, "HOTCONFIG", {}))
    if found or conf is None:
        raise HotConfigSettingsError.of(found[0])
    return conf


def problems() -> list[Problem]:
    """Everything wrong with ``settings.HOTCONFIG`` (empty when it is fine); offline."""
    conf, found = _parse(getattr(settings, "HOTCONFIG", {}))
    if conf is not None and not found:
        try:
            build_client(conf).close()
        except HotConfigSettingsError as exc:
            found.append(exc.problem)
    return found


def build_client(conf: DjangoConf) -> HotConfig[Any]:
    """The client ``conf`` describes, not started; offline.

    Building one runs every check hotconfig itself makes (the model's defaults, the scopes,
    the option values), so a bad entry is reported here, with the entry's name.
    """
    try:
        client: HotConfig[Any] = HotConfig(**conf.client_kwargs())
    except InvalidMessageError as exc:
        problem = Problem("hotconfig.E006", f"HOTCONFIG['SCOPES']: {exc.detail}", _DOCS)
    except TypeError as exc:
        if conf.model is None:
            problem = Problem("hotconfig.E008", f"HOTCONFIG cannot build a client: {exc}", _DOCS)
        else:
            hint = "give every field of the model a default that passes its own validation"
            problem = Problem("hotconfig.E005", f"HOTCONFIG['MODEL']: {exc}", hint)
    except ValueError as exc:
        problem = Problem("hotconfig.E008", f"HOTCONFIG cannot build a client: {exc}", _DOCS)
    else:
        if conf.health:  # the fleet's reporter attaches from outside, and starts with the client
            client.attach(Reporter(client, framework="django"))
        return client
    raise HotConfigSettingsError.of(problem)


def uses_constance_backend() -> bool:
    """Whether ``CONSTANCE_BACKEND`` is hotconfig's (then constance's signal is sent too)."""
    return getattr(settings, "CONSTANCE_BACKEND", None) == "hotconfig_django.constance.Backend"


def _parse(raw: object) -> tuple[DjangoConf | None, list[Problem]]:
    if not isinstance(raw, Mapping):
        return None, [
            Problem(
                "hotconfig.E001",
                f"settings.HOTCONFIG must be a dict, not {type(raw).__name__}",
                'write HOTCONFIG = {"URL": "redis://...", "MODEL": "app.config.Settings"}',
            )
        ]
    found: list[Problem] = []
    url = _url(raw.get("URL"), found)
    model = _model(raw.get("MODEL"), found)
    scopes = _scopes(raw.get("SCOPES", ("global",)), found)
    start = _start(raw.get("START", "auto"), found)
    timeout = _timeout(raw.get("START_TIMEOUT", 5.0), found)
    options = _options(raw, found)
    groups = _groups(options, found)
    health = options.pop("health", True)
    service = raw.get("SERVICE")
    if service is not None and not isinstance(service, str):
        found.append(Problem("hotconfig.E002", "HOTCONFIG['SERVICE'] must be a string", _DOCS))
        service = None
    conf = DjangoConf(
        url=url,
        model=model,
        scopes=scopes,
        service=service,
        start=start,
        start_timeout=timeout,
        cache_path=raw.get("CACHE_PATH"),
        health=bool(health),
        options=options,
        **groups,
    )
    return conf, found


def _url(url: object, found: list[Problem]) -> str | None:
    if url is None:
        return None
    if not isinstance(url, str):
        message = f"HOTCONFIG['URL'] must be a string, not {type(url).__name__}"
    else:
        try:
            return resolve_url(url)  # the core's own check; its message hides the password
        except ValueError as exc:
            message = f"HOTCONFIG['URL']: {exc}"
    found.append(
        Problem(
            "hotconfig.E003",
            message,
            f"use one of the schemes {', '.join(_SCHEMES)}, e.g. redis://127.0.0.1:6379/0",
        )
    )
    return None


def _model(path: object, found: list[Problem]) -> type[BaseModel] | None:
    if path is None:
        return None
    model: object = path
    if isinstance(path, str):
        try:
            model = import_string(path)
        except ImportError as exc:
            found.append(
                Problem(
                    "hotconfig.E004",
                    f"HOTCONFIG['MODEL'] = {path!r} cannot be imported: {exc}",
                    "give the dotted path of a pydantic model, e.g. 'myproject.config.Settings'",
                )
            )
            return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        found.append(
            Problem(
                "hotconfig.E004",
                f"HOTCONFIG['MODEL'] = {path!r} is not a pydantic model class",
                "point it at a subclass of pydantic.BaseModel whose fields all have defaults",
            )
        )
        return None
    return model


def _scopes(scopes: object, found: list[Problem]) -> tuple[str, ...]:
    hint = "list scope names of [A-Za-z0-9_.:-], low to high precedence: ['global', 'env:prod']"
    if isinstance(scopes, str) or not isinstance(scopes, list | tuple) or not scopes:
        found.append(Problem("hotconfig.E006", "HOTCONFIG['SCOPES'] must be a list", hint))
        return ("global",)
    bad = [s for s in scopes if not (isinstance(s, str) and _NAME(s))]
    if bad:
        found.append(Problem("hotconfig.E006", f"invalid scope names in SCOPES: {bad!r}", hint))
        return ("global",)
    return tuple(scopes)


def _start(start: object, found: list[Problem]) -> StartMode:
    modes: dict[object, StartMode] = {"auto": "auto", True: "always", False: "never"}
    try:
        return modes[start]
    except (KeyError, TypeError):
        found.append(
            Problem(
                "hotconfig.E007",
                f"HOTCONFIG['START'] = {start!r} is not one of 'auto', True, False",
                "leave it out ('auto': server processes listen, management commands do not)",
            )
        )
        return "auto"


def _timeout(timeout: object, found: list[Problem]) -> float:
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout >= 0:
        return float(timeout)
    found.append(
        Problem(
            "hotconfig.E007",
            f"HOTCONFIG['START_TIMEOUT'] = {timeout!r} is not a number of seconds",
            "give how long startup may wait for the first snapshot, e.g. 5.0",
        )
    )
    return 5.0


def _options(raw: Mapping[str, Any], found: list[Problem]) -> dict[str, Any]:
    parameters = inspect.signature(HotConfig).parameters.values()
    accepted = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} - _NOT_PASSED
    accepted |= set(_FLAT)  # deprecated: folded into their group by _groups()
    options: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _NAMED:
            continue
        if not isinstance(name, str) or name.lower() not in accepted or not name.isupper():
            known = sorted(_NAMED | {a.upper() for a in accepted - set(_FLAT)})
            found.append(
                Problem(
                    "hotconfig.E002",
                    f"HOTCONFIG has an unknown entry {name!r}",
                    f"the entries are {', '.join(known)}",
                )
            )
            continue
        options[name.lower()] = value
    return options


def _groups(options: dict[str, Any], found: list[Problem]) -> dict[str, Any]:
    """Pop ``TIMINGS``, ``LIMITS`` and ``CONNECTION`` (objects or dicts of their fields) off
    ``options`` as objects, with the flat entries of earlier releases folded in."""
    given: dict[str, Any] = {name: options.pop(name) for name in _GROUPS if name in options}
    for name in [name for name in options if name in _FLAT]:
        group = _FLAT[name]
        warnings.warn(
            f"HOTCONFIG[{name.upper()!r}] is deprecated and will be removed in the next "
            f"release: write {group.upper()!r}: {{{name!r}: ...}}",
            DeprecationWarning,
            stacklevel=2,
        )
        flat = given.setdefault(group, {})
        if not isinstance(flat, dict):
            found.append(
                Problem(
                    "hotconfig.E002",
                    f"HOTCONFIG has both {group.upper()!r} and {name.upper()!r}",
                    f"move {name.upper()!r} into {group.upper()!r} as {name!r}",
                )
            )
            continue
        given[group] = {**flat, name: options.pop(name)}
    made: dict[str, Any] = {}
    for name, value in given.items():
        kind = _GROUPS[name]
        try:
            made[name] = value if isinstance(value, kind) else kind(**dict(value))
        except (TypeError, ValueError) as exc:
            hint = f"give hotconfig.{kind.__name__}(...) or a dict of its fields; {_DOCS}"
            found.append(Problem("hotconfig.E008", f"HOTCONFIG[{name.upper()!r}]: {exc}", hint))
    return made
