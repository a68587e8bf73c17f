"""pytest fixtures for projects tested with pytest (with or without pytest-django).

Load it from the project's root ``conftest.py``::

    pytest_plugins = ["hotconfig_django.pytest_plugin"]


    def test_banner(hotconfig_override):
        hotconfig_override({"banner.text": "Sale"})
        ...

Like :class:`hotconfig_django.testing.override_config`, it pins values in memory only and
restores them when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import Any, Protocol

import pytest

from hotconfig import HotConfig

from .testing import override_config

__all__ = ["Override", "hotconfig_override"]


class Override(Protocol):
    def __call__(
        self, values: Mapping[str, Any] | None = None, /, **keywords: Any
    ) -> HotConfig[Any]: ...


@pytest.fixture
def hotconfig_override() -> Iterator[Override]:
    """Call it with values to pin them until the end of the test; calls can be repeated."""
    with ExitStack() as stack:

        def pin(values: Mapping[str, Any] | None = None, /, **keywords: Any) -> HotConfig[Any]:
            return stack.enter_context(override_config(values, **keywords))

        yield pin
