"""``manage.py hotconfig``: read and write the store, and import django-constance's values.

    manage.py hotconfig status
    manage.py hotconfig get KEY [--scope S]
    manage.py hotconfig set KEY JSON [--scope S]
    manage.py hotconfig import-constance [--from-backend PATH] [--scope S] [--dry-run]

Each command talks to the server directly with a bounded timeout (``--timeout``); none needs
a listener. Values of keys that look secret are never printed.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from hotconfig import ConfigStore, HotConfigError
from hotconfig.redaction import looks_secret, masked

from ... import conf, lifecycle


class Command(BaseCommand):
    help = "Read and write hotconfig's store; import django-constance's values into it."
    requires_system_checks: tuple[str, ...] = ()  # usable while the settings are being fixed

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="the server's version and this process's client")
        get = sub.add_parser("get", help="print a stored value as JSON")
        get.add_argument("key")
        get.add_argument("--scope", default="global")
        put = sub.add_parser("set", help="store a JSON value and publish it")
        put.add_argument("key")
        put.add_argument("value", help='a JSON value: 5, true, "text" (quoted), [1, 2]')
        put.add_argument("--scope", default="global")
        imp = sub.add_parser("import-constance", help="copy constance's stored values")
        imp.add_argument("--from-backend", help="dotted path of the constance backend to read")
        imp.add_argument("--scope", default="global")
        imp.add_argument("--dry-run", action="store_true", help="list the keys, write nothing")

    def handle(self, *args: Any, action: str, timeout: float, **options: Any) -> None:
        try:
            store = lifecycle.open_store(conf.load(), timeout=timeout)
        except (HotConfigError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        try:
            getattr(self, "_" + action.replace("-", "_"))(store, **options)
        except redis.RedisError as exc:
            url = conf.load().shown_url
            raise CommandError(
                f"{url} did not answer: {type(exc).__name__}: {exc}; check HOTCONFIG['URL']"
            ) from None
        except (HotConfigError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            store.close()

    def _status(self, store: ConfigStore, **options: Any) -> None:
        decision = lifecycle.current_decision()
        self.stdout.write(f"server: {conf.load().shown_url}")
        self.stdout.write(f"store version: {store.version}")
        self.stdout.write(f"scopes in the store: {', '.join(store.scopes()) or '(none)'}")
        self.stdout.write(f"this process: {decision.role.value}, listener: {decision.listen}")

    def _get(self, store: ConfigStore, key: str, scope: str, **options: Any) -> None:
        missing = object()
        value = store.get(key, scope=scope, default=missing)
        if value is missing:
            raise CommandError(f"{key!r} is not set in scope {scope!r}")
        # The core's rule: whole-word names, added patterns, secrets nested in JSON values.
        self.stdout.write("'***'" if looks_secret(key) else json.dumps(masked(value)))

    def _set(self, store: ConfigStore, key: str, value: str, scope: str, **options: Any) -> None:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise CommandError(
                f"the value must be JSON; for a string, quote it: '\"{value}\"'"
            ) from None
        version = store.set(key, parsed, scope=scope)
        self.stdout.write(f"{key} set in {scope} at version {version}")

    def _import_constance(
        self,
        store: ConfigStore,
        from_backend: str | None,
        scope: str,
        dry_run: bool,
        **options: Any,
    ) -> None:
        try:
            from constance import settings as constance_settings  # type: ignore[import-untyped]

            from ...constance import Backend, encode
        except ImportError:
            raise CommandError("django-constance is not installed") from None
        path = from_backend or constance_settings.BACKEND
        backend_class = import_string(path)
        if issubclass(backend_class, Backend):
            raise CommandError(
                "CONSTANCE_BACKEND already is hotconfig's: name the backend to copy from, e.g. "
                "--from-backend constance.backends.database.DatabaseBackend"
            )
        stored = backend_class().mget(list(constance_settings.CONFIG))
        if not stored:
            self.stdout.write(f"{path} holds no values; nothing to import")
            return
        if dry_run:
            self.stdout.write(f"would import {len(stored)} keys: {', '.join(sorted(stored))}")
            return
        version = store.set_many({k: encode(v) for k, v in stored.items()}, scope=scope)
        self.stdout.write(
            f"imported {len(stored)} keys from {path} into {scope} at version {version}: "
            f"{', '.join(sorted(stored))}"
        )
