"""The shop app: rebuilds its banner whenever the banner's settings change."""

from __future__ import annotations

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self) -> None:
        from hotconfig_django.signals import config_updated

        from . import banner

        banner.rebuild()
        # In every process, on its listener thread, after the new value is live.
        config_updated.connect(banner.on_config_updated, dispatch_uid="shop.banner")
