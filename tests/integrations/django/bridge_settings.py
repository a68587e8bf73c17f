"""Settings of the small Django project the bridge tests serve (``bridged.py`` holds its URLs)."""

from __future__ import annotations

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
USE_TZ = True
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.integrations.django.bridged"
DATABASES: dict[str, dict[str, str]] = {}
