"""``manage.py hotconfig``: the ``hotconfig`` command line, on this project's settings.

    manage.py hotconfig status                          the live instances and what they applied
    manage.py hotconfig get KEY [--scope S]
    manage.py hotconfig set KEY VALUE [--scope S] [--wait]
    manage.py hotconfig --json history --limit 5        ... every command of `hotconfig --help`
    manage.py hotconfig import-constance [--from-backend PATH] [--scope S] [--dry-run]

The commands are hotconfig's own (:func:`hotconfig.cli.framework_group`): the same options,
output and exit status. What the command line does not say comes from ``settings.HOTCONFIG``:
the URL, and the namespace, channel, signing keys and connection options of the project's
clients, so that a write is one its clients accept. Only ``import-constance`` is Django's.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, TextIO, cast

import click
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from hotconfig.cli import AppDefaults, Failure, Session, framework_group, pass_session

from ... import conf

# What Django's own parser acted on before the command ran; click must not see it.
_DJANGO_OPTIONS = ("--settings", "--pythonpath")


def _defaults(ctx: click.Context) -> AppDefaults:
    loaded = conf.load()
    return AppDefaults.of(loaded.url, loaded.options)


@click.command("import-constance")
@click.option("--from-backend", default=None, help="Dotted path of the constance backend.")
@click.option("--scope", default="global", show_default=True)
@click.option("--dry-run", is_flag=True, help="List the keys; write nothing.")
@pass_session
def import_constance(session: Session, from_backend: str | None, scope: str, dry_run: bool) -> None:
    """Copy the values django-constance's backend holds into the store, as one version."""
    try:
        from constance import settings as constance_settings  # type: ignore[import-untyped]

        from ...constance import Backend, encode
    except ImportError:
        raise Failure("django-constance is not installed") from None
    path = from_backend or constance_settings.BACKEND
    backend_class = import_string(path)
    if issubclass(backend_class, Backend):
        raise Failure(
            "CONSTANCE_BACKEND already is hotconfig's: name the backend to copy from, e.g. "
            "--from-backend constance.backends.database.DatabaseBackend"
        )
    stored = backend_class().mget(list(constance_settings.CONFIG))
    if not stored:
        session.out.line(f"{path} holds no values; nothing to import")
        return
    if dry_run:
        session.out.line(f"would import {len(stored)} keys: {', '.join(sorted(stored))}")
        return
    version = session.store.set_many({k: encode(v) for k, v in stored.items()}, scope=scope)
    session.out.line(
        f"imported {len(stored)} keys from {path} into {scope} at version {version}: "
        f"{', '.join(sorted(stored))}"
    )


group = framework_group(
    _defaults,
    import_constance,
    help="hotconfig's commands on this project's HOTCONFIG settings; see `hotconfig --help`.",
)


class Command(BaseCommand):
    help = "hotconfig's commands (`manage.py hotconfig --help`) on this project's settings."
    requires_system_checks: tuple[str, ...] = ()  # usable while the settings are being fixed

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # call_command() parses its arguments with this parser: every one is click's.
        parser.__class__ = _Verbatim
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*", help="a hotconfig command and its arguments")

    def run_from_argv(self, argv: list[str]) -> None:
        """``manage.py hotconfig ...``: the arguments are click's, exit status included."""
        group.main(_without_django_options(argv[2:]), prog_name=_prog_name(argv))

    def handle(self, *args: str, **options: Any) -> None:
        """``call_command("hotconfig", ...)``: in-process, printing to this command's streams."""
        code: object = 0
        # OutputWrapper is a TextIOBase; django-stubs do not say so.
        out, err = cast(TextIO, self.stdout), cast(TextIO, self.stderr)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                with group.make_context("manage.py hotconfig", list(args)) as ctx:
                    group.invoke(ctx)
            except click.exceptions.Exit as exc:  # --help
                code = exc.exit_code
            except click.ClickException as exc:
                raise CommandError(exc.format_message(), returncode=exc.exit_code) from None
            except SystemExit as exc:  # a "no" answer: a key not set, an instance behind
                code = exc.code
        if isinstance(code, int) and code != 0:
            raise CommandError(f"hotconfig {' '.join(args)}: exit status {code}", returncode=code)


class _Verbatim(CommandParser):
    """Django's defaults for its own options; the arguments, untouched, for click."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed = super().parse_args([], namespace)
        parsed.args = [str(arg) for arg in args or ()]
        return parsed


def _prog_name(argv: list[str]) -> str:
    return f"{os.path.basename(argv[0])} {argv[1]}"


def _without_django_options(args: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _DJANGO_OPTIONS:
            skip = True  # and its value
        elif not arg.startswith(tuple(f"{name}=" for name in _DJANGO_OPTIONS)):
            kept.append(arg)
    return kept
