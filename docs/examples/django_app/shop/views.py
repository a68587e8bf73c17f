"""One page showing live values, and a JSON view of what this process serves."""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from hotconfig_django import config

from . import banner


def index(request: HttpRequest) -> HttpResponse:
    # The template reads {{ hotconfig.greeting }} through the context processor.
    return render(request, "shop/index.html", {"banner": banner.current()["html"]})


def state(request: HttpRequest) -> JsonResponse:
    built = banner.current()
    return JsonResponse(
        {
            "pid": os.getpid(),
            "greeting": config.get("greeting"),
            "banner": config.settings.banner.text,
            "ai.model.default": config.settings.ai.model.default,
            "banner_built_from": built["text"],  # what the receiver last rebuilt it from
            "banner_built_at": built["at"],
            "version": config.version,
            "status": str(config.status),
        }
    )
