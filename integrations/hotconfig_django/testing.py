"""Test helpers: ``override_config`` pins values in this process's client, in memory only.

    from hotconfig_django.testing import override_config


    @override_config({"ai.model.default": "test-model"}, feature_x=True)
    class CheckoutTests(TestCase): ...


    def test_banner():
        with override_config(banner="Sale"):
            ...

Nothing is written to Redis, so test processes running in parallel never see each other's
values. Values go through ``MODEL`` (an invalid one raises ``hotconfig.InvalidValueError``),
change receivers and ``config_updated`` run as for a real change, and leaving the block
restores what was pinned before (overrides nest). Decorating a ``TestCase`` class applies the
values around each test and its ``setUp``, as Django's ``override_settings`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

from django.test.utils import TestContextDecorator

from hotconfig import HotConfig
from hotconfig.testing import override

from .lazy import config

__all__ = ["override_config"]


class override_config(TestContextDecorator):  # named like override_settings
    """Pin values for a block, a test function (sync or async) or each test of a TestCase.

    Dotted keys go in the mapping; keys that are identifiers can also be keywords.
    """

    def __init__(self, values: Mapping[str, Any] | None = None, /, **keywords: Any) -> None:
        super().__init__()
        self.values: dict[str, Any] = {**(values or {}), **keywords}
        self._active: list[ExitStack] = []

    def enable(self) -> HotConfig[Any]:
        with ExitStack() as stack:
            client = stack.enter_context(override(config.client, self.values))
            self._active.append(stack.pop_all())
        return client

    def disable(self) -> None:
        self._active.pop().close()

    # django-stubs types __enter__ after override_settings' (it returns an Apps registry).
    def __enter__(self) -> HotConfig[Any]:  # type: ignore[override]
        return self.enable()
