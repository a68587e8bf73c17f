"""constance's generic backend tests (``tests/storage.py``'s ``StorageTestsMixin``) on ours.

Each test starts from an empty store and a new client, as constance's own backend tests start
from an empty backend.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import redis
from django.test import TestCase

from hotconfig_django import lifecycle

StorageTestsMixin: Any = importlib.import_module("tests.storage").StorageTestsMixin


def _empty_store() -> None:
    lifecycle.teardown()
    server = redis.Redis.from_url(os.environ["HOTCONFIG_URL"])
    try:
        server.flushall()
    finally:
        server.close()
    lifecycle.setup()


class HotconfigStorageTests(StorageTestsMixin, TestCase):  # type: ignore[misc]
    def setUp(self) -> None:
        _empty_store()
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        _empty_store()
