"""Set up the test project's Django in this process (settings.py), once."""

from __future__ import annotations

import django
from django.conf import settings

from . import settings as test_settings


def configure() -> None:
    if not settings.configured:
        settings.configure(**{k: v for k, v in vars(test_settings).items() if k.isupper()})
        django.setup()
