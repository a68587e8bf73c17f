"""django-constance's test settings (its ``tests/settings.py``), on hotconfig's backend.

Only what hotconfig needs changes: the backend, the app, and ``HOTCONFIG`` for the test's
server (``$HOTCONFIG_URL``, and ``$HOTCONFIG_SUITE_START`` for ``START``). Besides, the test
runner is ours only to write its results where the driver reads them, and passwords are hashed
with MD5 as Django advises for test suites: the admin tests make two users each, which costs
seconds with the default hasher and tests nothing of a backend.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

_theirs: dict[str, Any] = {
    name: value
    for name, value in vars(importlib.import_module("tests.settings")).items()
    if name.isupper()
}
globals().update(_theirs)

INSTALLED_APPS = (*_theirs["INSTALLED_APPS"], "hotconfig_django")
CONSTANCE_BACKEND = "hotconfig_django.constance.Backend"
HOTCONFIG = {
    "URL": os.environ["HOTCONFIG_URL"],
    "SERVICE": "constance-suite",
    "START": {"1": True, "0": False}.get(os.environ.get("HOTCONFIG_SUITE_START", ""), "auto"),
}
TEST_RUNNER = "hotconfig_suite.runner.Runner"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
