"""``flask hotconfig ...``: look at and change the current app's configuration.

::

    flask hotconfig status                  where this app's client stands
    flask hotconfig get ai.model.default    one effective value, as JSON
    flask hotconfig show 'ai.*'             every effective value (matching a pattern)
    flask hotconfig set feature_x true --wait
    flask hotconfig delete feature_x
    flask hotconfig history feature_x       the store's latest writes (of one key)

Values of secret keys (names with ``password``, ``secret``, ``token``, ``api_key``..., and
pydantic ``SecretStr`` fields) are never printed, and the URL is shown without its password.
Writes go through :class:`hotconfig.ConfigStore` on the app's URL, channel and namespace.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click
import redis
from flask import current_app
from flask.cli import AppGroup
from pydantic import SecretBytes, SecretStr

import hotconfig
from hotconfig.redaction import looks_secret

from .current import current_client

__all__ = ["group"]

T = TypeVar("T")
_STORE_OPTIONS = ("channel", "namespace", "max_message_bytes", "signing_keys")

group = AppGroup("hotconfig", help="Look at and change this app's hotconfig values.")


@group.command("status")
def status() -> None:
    """Where this app's client stands: URL, scopes, status, version, counters."""
    client = current_client()
    click.echo(f"url:     {client.url}")
    click.echo(f"scopes:  {', '.join(client.scopes)}")
    click.echo(f"service: {client.service}")
    click.echo(f"status:  {client.status}")
    click.echo(f"version: {client.version}")
    click.echo(f"stats:   {client.stats!r}")


@group.command("get")
@click.argument("key")
def get(key: str) -> None:
    """Print the effective value of KEY as JSON (exit status 1 if it is unset)."""
    client = current_client()
    if key not in client:
        raise click.ClickException(
            f"{key!r} is not set in the scopes {list(client.scopes)} and is not a field of "
            "the model; `flask hotconfig show` lists what is"
        )
    click.echo(shown(key, client.get(key)))


@group.command("show")
@click.argument("pattern", default="*")
def show(pattern: str) -> None:
    """Print every effective value whose key matches PATTERN (fnmatch), one per line."""
    snapshot = current_client().snapshot()
    for key in sorted(k for k in snapshot if fnmatch.fnmatchcase(k, pattern)):
        click.echo(f"{key} = {shown(key, snapshot[key])}")


@group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--scope", default="global", show_default=True, help="The scope to write.")
@click.option("--wait/--no-wait", default=True, help="Wait until this app's client has it.")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to --wait.")
def set_(key: str, value: str, scope: str, wait: bool, timeout: float) -> None:
    """Set KEY to VALUE in the store (VALUE is JSON, e.g. true, 3, '"text"'; else a string)."""
    version = _with_store(lambda store: store.set(key, _parse(value), scope=scope))
    click.echo(f"set {key} in {scope}: version {version}")
    _wait(version, wait, timeout)


@group.command("delete")
@click.argument("key")
@click.option("--scope", default="global", show_default=True, help="The scope to delete from.")
@click.option("--wait/--no-wait", default=True, help="Wait until this app's client has it.")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to --wait.")
def delete(key: str, scope: str, wait: bool, timeout: float) -> None:
    """Delete KEY from SCOPE in the store."""
    version = _with_store(lambda store: store.delete(key, scope=scope))
    click.echo(f"deleted {key} from {scope}: version {version}")
    _wait(version, wait, timeout)


@group.command("history")
@click.argument("key", required=False)
@click.option("-n", "--count", default=20, show_default=True, help="How many writes to show.")
def history(key: str | None, count: int) -> None:
    """The store's latest writes, newest first (of KEY only, if given)."""
    entries = _with_store(lambda store: store.history(count, key=key))
    for entry in entries:
        for change in entry.entries:
            if key is None or change.key == key:
                value = "" if change.op == "delete" else f" = {shown(change.key, change.value)}"
                click.echo(f"v{entry.version} {change.scope} {change.op} {change.key}{value}")


def _with_store(use: Callable[[hotconfig.ConfigStore], T]) -> T:
    # The app's own settings, not the client's attributes: the store needs the URL with its
    # password, and the channel and namespace the app's client follows.
    config = current_app.config
    extra = config.get("HOTCONFIG_OPTIONS") or {}
    options = {name: extra[name] for name in _STORE_OPTIONS if name in extra}
    store = hotconfig.ConfigStore(config.get("HOTCONFIG_URL"), **options)
    try:
        return use(store)
    except (ValueError, hotconfig.StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        url = current_client().url  # the client shows its URL without the password
        raise click.ClickException(
            f"cannot reach {url} ({exc}); check HOTCONFIG_URL and that the server is up"
        ) from None
    finally:
        store.close()


def _wait(version: int, wait: bool, timeout: float) -> None:
    if wait and not current_client().wait_for_version(version, timeout):
        raise click.ClickException(
            f"this app's client did not receive version {version} within {timeout}s; "
            "`flask hotconfig status` shows where it stands"
        )


def _parse(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # a bare word: gpt-4o, https://...


def shown(key: str, value: Any) -> str:
    """``value`` as JSON, with ``"***"`` for a secret, and for the secrets nested in it."""
    return json.dumps(_masked(key, value), default=str, ensure_ascii=False)


def _masked(key: str, value: Any) -> Any:
    if looks_secret(key) or isinstance(value, SecretStr | SecretBytes):
        return "***"
    if isinstance(value, dict):  # an untyped JSON object: {"user": ..., "password": ...}
        return {name: _masked(str(name), item) for name, item in value.items()}
    if isinstance(value, list):
        return [_masked("", item) for item in value]
    return value
