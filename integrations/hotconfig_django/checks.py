"""System checks (tag ``hotconfig``).

Plain ``manage.py check`` stays offline: it checks ``settings.HOTCONFIG`` (URL, MODEL and its
defaults, SCOPES, the other entries). ``check --tag hotconfig`` and ``check --deploy`` also ask
the server whether it answers; ``--deploy`` warns when neither TLS nor message signing protects
the channel.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
from django.apps import AppConfig
from django.core import checks

from hotconfig.security import KeyRing

from . import conf, lifecycle, process
from .errors import HotConfigSettingsError

__all__ = [
    "check_reachable",
    "check_reachable_when_asked",
    "check_secure",
    "check_settings",
    "register",
]

_PING_TIMEOUT = 1.0


def register() -> None:
    checks.register(check_settings, "hotconfig")
    checks.register(check_reachable_when_asked, "hotconfig")
    checks.register(check_reachable, "hotconfig", deploy=True)
    checks.register(check_secure, "hotconfig", deploy=True)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    return [checks.Error(p.msg, hint=p.hint, id=p.id) for p in conf.problems()]


def check_reachable_when_asked(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """:func:`check_reachable` for ``manage.py check --tag hotconfig`` (without ``--deploy``,
    which runs that one itself); nothing for any other run of the checks."""
    if "hotconfig" not in process.requested_check_tags(sys.argv) or "--deploy" in sys.argv:
        return []
    return check_reachable(app_configs, **kwargs)


def check_reachable(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Whether the server answers and accepts this client; one request, bounded by 1 s."""
    try:
        loaded = conf.load()
    except HotConfigSettingsError:
        return []  # check_settings reports it
    url = loaded.shown_url
    try:
        store = lifecycle.open_store(loaded, timeout=_PING_TIMEOUT)
    except ValueError as exc:
        return [checks.Error(f"cannot connect to {url}: {exc}", id="hotconfig.E003")]
    try:
        store.version  # noqa: B018 - one round trip: the server answers and knows our keys
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError) as exc:
        return [
            checks.Error(
                f"the hotconfig server {url} refuses this client: {type(exc).__name__}: {exc}",
                hint="fix the user name or password in HOTCONFIG['URL'], or the server's ACL "
                "rules for this user; retrying will not help",
                id="hotconfig.E009",
            )
        ]
    except redis.RedisError as exc:
        return [
            checks.Warning(
                f"the hotconfig server {url} does not answer: {type(exc).__name__}: {exc}",
                hint="start Redis/Valkey or fix HOTCONFIG['URL']; until it answers, processes "
                "serve model defaults or the last-known-good file (CACHE_PATH)",
                id="hotconfig.W001",
            )
        ]
    finally:
        store.close()
    return []


def check_secure(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    try:
        loaded = conf.load()
    except HotConfigSettingsError:
        return []
    tls = urlsplit(loaded.effective_url).scheme in ("rediss", "rediss+sentinel", "unix")
    tls = tls or bool(loaded.connection.redis_kwargs.get("ssl"))
    try:
        # SIGNING_KEYS, else $HOTCONFIG_SIGNING_KEYS, as the client resolves them.
        signed = KeyRing.resolve(loaded.options.get("signing_keys")) is not None
    except ValueError:
        return []  # check_settings reports the bad key ring
    if tls or signed:
        return []
    return [
        checks.Warning(
            "hotconfig follows the store over plain TCP without message signing: anyone who "
            "can reach the server can publish a config change",
            hint="use a rediss:// URL (TLS) or set HOTCONFIG['SIGNING_KEYS'] (or "
            "$HOTCONFIG_SIGNING_KEYS) on every process that reads or writes; see docs/django.md",
            id="hotconfig.W002",
        )
    ]
