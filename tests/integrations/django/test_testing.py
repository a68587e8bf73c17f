"""``override_config``: decorator, class decorator, context manager and fixture, in memory only."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

import pytest
from django.test import SimpleTestCase

from hotconfig import ConfigStore, HotConfig, InvalidValueError
from hotconfig.testing import EmbeddedServer
from hotconfig_django import LazyConfig, config
from hotconfig_django.pytest_plugin import Override
from hotconfig_django.signals import config_updated
from hotconfig_django.testing import override_config


def test_as_a_context_manager_pins_and_restores(app: LazyConfig) -> None:
    with override_config({"banner.text": "Sale"}, greeting="hi") as client:
        assert isinstance(client, HotConfig)
        assert (app.get("greeting"), app.settings.banner.text) == ("hi", "Sale")
        with override_config(greeting="nested"):
            assert app.get("greeting") == "nested"
        assert app.get("greeting") == "hi"
    assert (app.get("greeting"), app.settings.banner.text) == ("hello", "Welcome")


@override_config(greeting="decorated")
def test_as_a_function_decorator() -> None:
    assert config.get("greeting") == "decorated"


def test_as_a_decorator_of_an_async_function() -> None:
    @override_config(greeting="async")
    async def read() -> Any:
        return config.get("greeting")

    assert asyncio.run(read()) == "async"
    assert config.get("greeting") == "hello"


@override_config(items_per_page=3)
class OverriddenTestCase(SimpleTestCase):
    def setUp(self) -> None:
        self.seen_in_setup = config.get("items_per_page")

    def test_setup_and_test_see_the_value(self) -> None:
        assert self.seen_in_setup == 3
        assert config.get("items_per_page") == 3

    @override_config(items_per_page=4)
    def test_a_method_decorator_wins_over_the_class(self) -> None:
        assert config.get("items_per_page") == 4


@override_config(greeting="unittest")
class OverriddenUnittestCase(unittest.TestCase):
    def test_plain_unittest_classes_work_too(self) -> None:
        assert config.get("greeting") == "unittest"


def test_values_go_through_the_model() -> None:
    with (
        pytest.raises(InvalidValueError, match="items_per_page"),
        override_config(items_per_page="many"),
    ):
        pass
    assert config.get("items_per_page") == 20


def test_config_updated_is_sent_for_overrides() -> None:
    received: list[tuple[str, Any, Any]] = []

    def remember(sender: object, key: str, old_value: Any, new_value: Any, **kw: Any) -> None:
        received.append((key, old_value, new_value))

    config_updated.connect(remember)
    try:
        with override_config(greeting="hi"):
            pass
    finally:
        config_updated.disconnect(remember)
    assert received == [("greeting", "hello", "hi"), ("greeting", "hi", "hello")]


def test_the_pytest_fixture_pins_until_the_test_ends(hotconfig_override: Override) -> None:
    hotconfig_override({"banner.text": "Sale"})
    hotconfig_override(greeting="fixture")
    assert (config.get("greeting"), config.settings.banner.text) == ("fixture", "Sale")


def test_overrides_never_reach_redis_nor_another_process(
    live: LazyConfig, server: EmbeddedServer
) -> None:
    # A second client stands for a parallel test process on the same server.
    other: HotConfig[Any] = HotConfig(server.url)
    with other, ConfigStore(server.url) as store:
        with override_config(greeting="only here"):
            assert live.get("greeting") == "only here"
            assert store.get_all() == {}
            assert store.version == 0
            # A change from the store does not unpin the test's value either.
            version = store.set("greeting", "from the store")
            assert live.wait_for_version(version, timeout=5)
            assert live.get("greeting") == "only here"
            assert other.wait_for_version(version, timeout=5)
            assert other.get("greeting") == "from the store"
        assert live.get("greeting") == "from the store"
