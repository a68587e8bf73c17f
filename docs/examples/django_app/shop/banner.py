"""Something built from the config and rebuilt when it changes: the banner's HTML."""

from __future__ import annotations

import time
from typing import Any

from django.utils.html import format_html

from hotconfig_django import config

_built: dict[str, Any] = {"html": "", "text": None, "at": None}


def rebuild() -> None:
    settings = config.settings  # one consistent version of both fields
    html = format_html(
        '<div class="banner" style="background:{}">{}</div>',
        settings.banner.color,
        settings.banner.text,
    )
    # Replace the whole dict: a request reads either the old banner or the new one.
    global _built
    _built = {"html": html, "text": settings.banner.text, "at": time.monotonic()}


def on_config_updated(sender: object, key: str, **kwargs: Any) -> None:
    """Receiver of hotconfig_django.signals.config_updated; runs on the listener thread."""
    if key.startswith("banner."):
        rebuild()


def current() -> dict[str, Any]:
    return _built
