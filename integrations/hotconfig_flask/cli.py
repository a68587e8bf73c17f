"""``flask hotconfig ...``: the ``hotconfig`` command line, on the current app's settings.

::

    flask hotconfig status                      the live instances and what they applied
    flask hotconfig get ai.model.default        the stored value, as JSON
    flask hotconfig set feature_x true --wait   and wait until every live instance has it
    flask hotconfig --json history --limit 5    ... every command of `hotconfig --help`
    flask hotconfig show 'ai.*'                 this app's effective values (its model's too)

The commands are hotconfig's own (:func:`hotconfig.cli.framework_group`): the same options,
output and exit status. What the command line does not say comes from the app's config:
``HOTCONFIG_URL``, and the ``channel``, ``namespace``, signing keys and connection options of
``HOTCONFIG_OPTIONS``, so that a write is one the app's clients accept. Only ``show`` is the
app's: it reads the app's own client. Values of secret keys (names with ``password``,
``secret``, ``token``, ``api_key``..., and pydantic ``SecretStr`` fields) print as ``"***"``.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import click
from flask.cli import ScriptInfo, with_appcontext
from pydantic import SecretBytes, SecretStr

from hotconfig.cli import AppDefaults, framework_group
from hotconfig.security import looks_secret

from .current import current_client

__all__ = ["group"]


def _defaults(ctx: click.Context) -> AppDefaults:
    # The app's settings, not its client's attributes: the store needs the URL with its
    # password (the client shows it hidden).
    config = ctx.ensure_object(ScriptInfo).load_app().config
    return AppDefaults.of(config.get("HOTCONFIG_URL"), config.get("HOTCONFIG_OPTIONS") or {})


@click.command("show")
@click.argument("pattern", default="*")
@with_appcontext
def show(pattern: str) -> None:
    """This app's effective values whose key matches PATTERN (fnmatch), one per line."""
    snapshot = current_client().snapshot()
    for key in sorted(k for k in snapshot if fnmatch.fnmatchcase(k, pattern)):
        click.echo(f"{key} = {shown(key, snapshot[key])}")


group = framework_group(
    _defaults, show, help="hotconfig's commands on this app's HOTCONFIG_* settings."
)


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
