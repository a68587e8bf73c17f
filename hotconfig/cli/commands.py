"""The ``hotconfig`` command group: each command is a thin layer over ConfigStore or Fleet.

Exit status: 0 when done (and, with ``--wait``, converged); 1 when the answer is "no" (not
converged, a key not set, scopes that differ, an instance behind); 2 for a usage error (a file
that cannot be read included) or a server that cannot be reached or refuses this client; 3 when
``get`` printed a value with secrets hidden (``--show-secrets`` shows them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from .._config.wire import DEFAULT_CHANNEL, DEFAULT_SCOPE, Entry, decode_value
from .._redis.connection import ENV_VAR
from .._redis.keyspace import DEFAULT_NAMESPACE
from ..errors import InvalidMessageError, RejectReason, StoreError
from .access import acl, doctor_command
from .demo import demo
from .files import dump_file, load_file, write_file
from .fleet import status, wait_options, watch
from .output import HIDDEN, Output, dumps
from .rollback import rollback_entries
from .session import AppDefaults, Failure, Group, Session, pass_session

__all__ = ["HIDDEN_EXIT", "framework_group", "group", "parse_value"]

HIDDEN_EXIT = 3  # get printed *** where a value is: what a script reads is not the value


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar=ENV_VAR, help=f"Redis URL (default: ${ENV_VAR}, else localhost).")
@click.option("--namespace", default=DEFAULT_NAMESPACE, show_default=True)
@click.option("--channel", default=DEFAULT_CHANNEL, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.option("--show-secrets", is_flag=True, help="Show values of secret-looking keys.")
@click.version_option(
    package_name="hotconfig", prog_name="hotconfig", message="%(prog)s %(version)s"
)
@click.pass_context
def group(ctx: click.Context, /, **options: Any) -> None:
    """Read and write hotconfig's store; see which instances applied what."""
    _open_session(ctx, None, **options)


def _open_session(
    ctx: click.Context,
    defaults: AppDefaults | None,
    *,
    url: str | None,
    namespace: str,
    channel: str,
    as_json: bool,
    show_secrets: bool,
) -> None:
    options: dict[str, Any] = {}
    if defaults is not None:
        options = dict(defaults.options)
        # The app's settings win over the environment and the defaults, not over the user.
        if ctx.get_parameter_source("url") is not ParameterSource.COMMANDLINE:
            url = defaults.url or url
        if ctx.get_parameter_source("namespace") is not ParameterSource.COMMANDLINE:
            namespace = options.get("namespace", namespace)
        if ctx.get_parameter_source("channel") is not ParameterSource.COMMANDLINE:
            channel = options.get("channel", channel)
        options.pop("namespace", None)
        options.pop("channel", None)
    try:
        out = Output(as_json=as_json, show_secrets=show_secrets)
        session = Session(url, namespace, channel, out, options)
    except ValueError as exc:
        raise Failure(str(exc)) from None
    ctx.obj = session
    ctx.call_on_close(session.close)


def framework_group(
    defaults: Callable[[click.Context], AppDefaults], *extra: click.Command, help: str
) -> click.Group:
    """The ``hotconfig`` commands for a framework's CLI (``manage.py hotconfig``, ``flask
    hotconfig``): the same commands and options, with ``defaults(ctx)`` (the app's settings)
    for what the command line does not say, and the framework's ``extra`` commands."""

    @click.pass_context
    def callback(ctx: click.Context, /, **options: Any) -> None:
        _open_session(ctx, defaults(ctx), **options)

    # demo starts apps of its own: it has nothing to take from the app at hand.
    commands = {name: c for name, c in group.commands.items() if name != "demo"}
    wrapped = Group(
        "hotconfig",
        commands=commands,
        params=list(group.params),
        callback=callback,
        help=help,
        context_settings=group.context_settings,
    )
    for command in extra:
        wrapped.add_command(command)
    return wrapped


scope_option = click.option("--scope", default=DEFAULT_SCOPE, show_default=True)


# How only JSON starts: an object, an array, a JSON string. A digit or a minus does not count:
# "1.2.3", "2024-01-01", "10s" and "-v" are words, stored as strings.
_JSON_START = ("{", "[", '"')


def parse_value(text: str, *, as_string: bool = False) -> Any:
    """VALUE as JSON if it is JSON (``5``, ``true``, ``{"a": 1}``), else the string itself
    (``gpt-4o``, ``1.2.3``); with ``as_string``, the string itself whatever it looks like.

    Text that starts like JSON (``{``, ``[``, ``"``) but does not parse is a usage error with a
    hint, not a string stored by mistake. Read under the wire's own limits, as every client
    reads it: JSON no client would accept (nested too deep, NaN, a number too large for a
    float, a lone surrogate escape) is a usage error, not a write that every client refuses.
    """
    if as_string:
        return text
    try:
        return decode_value(text)
    except InvalidMessageError as exc:
        if exc.reason is RejectReason.INVALID_JSON and not _plain_json(text):
            if not text.lstrip().startswith(_JSON_START):
                return text  # not JSON at all: the string itself
            raise click.BadParameter(
                f"{_quoted(text)} starts like JSON but is not JSON ({exc.detail}); fix it, or "
                "give --string to store the text as it is",
                param_hint="VALUE",
            ) from None
        raise click.BadParameter(
            f"{exc.detail}; no client would accept it", param_hint="VALUE"
        ) from None


def _quoted(text: str, most: int = 40) -> str:
    return repr(text if len(text) <= most else text[:most] + "...")


def _plain_json(text: str) -> bool:
    """Whether Python's own decoder reads ``text`` (NaN, Infinity and 1e999 included)."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _written(session: Session, what: str, version: int) -> int:
    # With --json the write is printed by wait_options, in one document with the barrier's.
    session.written = {"version": version, "change": what}
    if not session.out.as_json:
        session.out.line(f"{what}: version {version}")
    return version


@group.command()
@click.argument("key")
@scope_option
@pass_session
def get(session: Session, key: str, scope: str) -> None:
    """Print the stored value of KEY (as JSON); exit 1 if not set, 3 if secrets were hidden."""
    missing = object()
    value = session.store.get(key, scope=scope, default=missing)
    if value is missing:
        session.out.note(f"{key!r} is not set in scope {scope!r}")
        raise SystemExit(1)
    out = session.out
    kept = out.value(key, value)
    if out.as_json:
        out.json({"key": key, "scope": scope, "value": kept})
    else:
        out.line(HIDDEN if kept is HIDDEN else dumps(kept))
    if kept is HIDDEN or kept != value:  # the key is secret, or secret-named fields inside it
        out.note(f"secret values of {key!r} are shown as ***; --show-secrets shows them")
        raise SystemExit(HIDDEN_EXIT)


@group.command("set")
@click.argument("key")
@click.argument("value")
@scope_option
@click.option("--string", "as_string", is_flag=True, help="Store VALUE as a string, as it is.")
@wait_options
@pass_session
def set_(session: Session, key: str, value: str, scope: str, as_string: bool) -> int:
    """Set KEY to VALUE (parsed as JSON, else taken as a string)."""
    version = session.store.set(key, parse_value(value, as_string=as_string), scope=scope)
    return _written(session, f"set {key} in {scope}", version)


@group.command()
@click.argument("key")
@scope_option
@wait_options
@pass_session
def delete(session: Session, key: str, scope: str) -> int:
    """Delete KEY from a scope (a lower scope's value shows through); exit 1, writing nothing,
    if it is not set there."""
    store, missing = session.store, object()
    try:
        unset = store.get(key, scope=scope, default=missing) is missing
    except StoreError:  # set, to something no client reads: all the more reason to delete it
        unset = False
    if unset:
        session.out.note(f"{key!r} is not set in scope {scope!r}: nothing deleted")
        raise SystemExit(1)
    return _written(session, f"deleted {key} from {scope}", store.delete(key, scope=scope))


@group.command("list")
@scope_option
@pass_session
def list_(session: Session, scope: str) -> None:
    """List the keys and values stored in a scope."""
    out, values = session.out, session.store.get_all(scope)
    if out.as_json:
        out.json({key: out.value(key, value) for key, value in sorted(values.items())})
        return
    out.table(["key", "value"], [[k, out.shown(k, v)] for k, v in sorted(values.items())], scope)


@group.command()
@click.option("--key", default=None, help="Only writes that touched this key.")
@click.option(
    "--limit",
    type=click.IntRange(1, 2**63 - 1),
    default=20,
    show_default=True,
    help="How many writes, newest first.",
)
@pass_session
def history(session: Session, key: str | None, limit: int) -> None:
    """The latest writes, newest first."""
    out = session.out
    rows = session.store.history(limit, key=key)
    if out.as_json:
        out.json([_history_row(out, entry.version, entry.id, entry.entries) for entry in rows])
        return
    table = []
    for entry in rows:
        changes = "; ".join(_entry_text(out, e) for e in entry.entries)
        table.append([entry.version, _stamp(entry.id), changes])
    out.table(["version", "time", "changes"], table)


@group.command()
@click.argument("version", type=int)
@wait_options
@pass_session
def rollback(session: Session, version: int) -> int | None:
    """Restore the values keys had at VERSION, as one new version."""
    store = session.store
    entries = rollback_entries(store.history(store.history_size + 1), version, store.epoch)
    if not entries:
        session.out.note(f"nothing changed after version {version}: nothing to roll back")
        return None
    return _written(session, f"rolled back to version {version}", store.apply(entries))


@group.command()
@click.argument("scope_a")
@click.argument("scope_b")
@pass_session
def diff(session: Session, scope_a: str, scope_b: str) -> None:
    """What differs between two scopes; exit 1 when anything does."""
    out = session.out
    a, b = session.store.get_all(scope_a), session.store.get_all(scope_b)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, _ABSENT) != b.get(k, _ABSENT))
    if out.as_json:
        out.json(
            [
                {"key": k, "a": _side(out, k, scope_a, a), "b": _side(out, k, scope_b, b)}
                for k in keys
            ]
        )
    elif keys:
        rows = [[k, _shown_side(out, k, a), _shown_side(out, k, b)] for k in keys]
        out.table(["key", scope_a, scope_b], rows)
    else:
        out.line(f"{scope_a} and {scope_b} hold the same keys and values")
    if keys:
        raise SystemExit(1)


@group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@scope_option
@wait_options
@pass_session
def import_(session: Session, file: str, scope: str) -> int:
    """Write FILE (JSON, or YAML with PyYAML) as one version: an export, or {key: value}."""
    layers = load_file(file, scope)
    entries = [Entry(k, v, s) for s, values in layers.items() for k, v in values.items()]
    if not entries:
        raise Failure(f"{file} holds no keys")
    return _written(session, f"imported {len(entries)} keys", session.store.apply(entries))


@group.command()
@click.option("--scope", default=None, help="Only this scope (default: every scope).")
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None)
@pass_session
def export(session: Session, scope: str | None, fmt: str, output: str | None) -> None:
    """Print every scope's keys and values (secret keys left out unless --show-secrets)."""
    store, out = session.store, session.out
    scopes = [scope] if scope else store.scopes()
    snapshot = store.snapshot(scopes)
    layers: dict[str, dict[str, Any]] = {}
    for name in scopes:
        layers[name] = {k: v for k, v in snapshot.layers[name].items() if out.keeps(k)}
    text = dump_file({"hotconfig": 1, "version": snapshot.version, "scopes": layers}, fmt)
    if output:
        write_file(output, text)
    else:
        click.echo(text, nl=False)
    if out.hidden:
        out.note(f"{out.hidden} secret values left out; --show-secrets includes them")


_ABSENT: Any = object()


def _side(out: Output, key: str, scope: str, values: dict[str, Any]) -> dict[str, Any]:
    """One scope's side of a difference: ``set`` false when the key is not set there (a stored
    ``null`` is ``"set": true, "value": null``)."""
    if key not in values:
        return {"scope": scope, "set": False}
    return {"scope": scope, "set": True, "value": out.value(key, values[key])}


def _shown_side(out: Output, key: str, values: dict[str, Any]) -> str:
    return out.shown(key, values[key]) if key in values else "(unset)"


def _entry_text(out: Output, entry: Entry) -> str:
    if entry.op == "delete":
        return f"delete {entry.scope} {entry.key}"
    return f"set {entry.scope} {entry.key}={out.shown(entry.key, entry.value)}"


def _history_row(out: Output, version: int, stream_id: str, entries: Any) -> dict[str, Any]:
    return {
        "version": version,
        "time": _stamp(stream_id),
        "changes": [out.entry(e) for e in entries],
    }


def _stamp(stream_id: str) -> str:
    import datetime

    millis = int(stream_id.split("-", 1)[0])
    moment = datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


group.add_command(status)
group.add_command(watch)
group.add_command(acl)
group.add_command(doctor_command)
group.add_command(demo)
