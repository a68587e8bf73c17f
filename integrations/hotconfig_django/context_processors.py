"""A template context processor: ``{{ hotconfig.feature_x }}`` in every template.

    TEMPLATES = [{..., "OPTIONS": {"context_processors": [
        ...,
        "hotconfig_django.context_processors.hotconfig",
    ]}}]

``hotconfig`` is the typed settings (an instance of ``MODEL``) as of the request, so one page
renders one consistent version; without a model it is the snapshot mapping of every value.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .lazy import config

__all__ = ["hotconfig"]


def hotconfig(request: HttpRequest) -> dict[str, Any]:
    client = config.client
    settings = client.settings
    return {"hotconfig": client.snapshot() if settings is None else settings}
