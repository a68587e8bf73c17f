"""The Django app: ``INSTALLED_APPS += ["hotconfig_django"]``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["HotConfigDjangoConfig"]


class HotConfigDjangoConfig(AppConfig):
    name = "hotconfig_django"
    label = "hotconfig"
    verbose_name = "hotconfig"

    def ready(self) -> None:
        from . import checks, lifecycle

        checks.register()
        lifecycle.ensure_setup()
