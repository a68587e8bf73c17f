"""Settings of the test project: hotconfig_django next to a real django-constance.

``$HOTCONFIG_URL`` (default: a closed loopback port) and ``$HOTCONFIG_TEST_START`` ("1" / "0",
default "auto") let a second process (follower.py) join the test's server.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "constance",
    "hotconfig_django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

HOTCONFIG = {
    "URL": os.environ.get("HOTCONFIG_URL", "redis://127.0.0.1:9/0"),
    "MODEL": "tests.integrations.django.live_settings.Settings",
    "SERVICE": "django-tests",
    "START": {"1": True, "0": False}.get(os.environ.get("HOTCONFIG_TEST_START", ""), "auto"),
    "START_TIMEOUT": 5.0,
}

CONSTANCE_BACKEND = "hotconfig_django.constance.Backend"
CONSTANCE_CONFIG = {
    "SITE_NAME": ("Shop", "the site's name"),
    "MAX_ITEMS": (10, "items per order"),
    "LAUNCH_DAY": (date(2026, 1, 1), "when the sale starts"),
    "PRICE": (Decimal("9.99"), "the price"),
}

ROOT_URLCONF = "tests.integrations.django.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hotconfig_django.context_processors.hotconfig",
            ]
        },
    }
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    # A database that really closes (an in-memory SQLite ignores close()), for the tests of
    # what may close a connection; created by the test that uses it, and removed by it.
    "files": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(Path(tempfile.gettempdir()) / f"hotconfig-django-tests-{os.getpid()}.sqlite3"),
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
