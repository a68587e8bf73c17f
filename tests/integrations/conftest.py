"""The framework integrations' tests run each on one server kind, half of them on each.

What they check is the framework's wiring (workers, lifespans, commands, pages), which does not
depend on the server; the core, the fault suite and the CLI run every test on both kinds. So a
test that asks for ``server`` here runs on the kind its name picks (a stable hash): both kinds
are still exercised by the integrations as a whole, in half the time. ``HOTCONFIG_TEST_SERVER``
still chooses one kind for everything, and ``HOTCONFIG_TEST_BOTH=1`` runs each test on both.
"""

from __future__ import annotations

import os
import zlib

import pytest

from tests.conftest import KINDS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if len(KINDS) < 2 or os.environ.get("HOTCONFIG_TEST_BOTH", "") not in ("", "0"):
        return
    here = os.path.dirname(__file__)
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params: dict[str, object] = callspec.params if callspec is not None else {}
        kind = params.get("server_kind")
        if kind is None or not str(item.path).startswith(here):
            kept.append(item)
            continue
        # The test's name without its parameters' ids: both of its kinds hash alike.
        name = item.nodeid.split("[", 1)[0] + repr(
            sorted((k, repr(v)) for k, v in params.items() if k != "server_kind")
        )
        chosen = KINDS[zlib.crc32(name.encode()) % len(KINDS)]
        (kept if kind == chosen else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
