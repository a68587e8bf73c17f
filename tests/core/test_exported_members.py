"""The public names are a promise: adding one is a decision, removing one a breaking change."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

import hotconfig
from hotconfig import signals

ROOT = Path(__file__).resolve().parents[2]

# The modules users and the integrations may import (DESIGN §2); everything else is internal.
PUBLIC_MODULES = {
    "hotconfig",
    "hotconfig.signals",
    "hotconfig.errors",
    "hotconfig.bridge",
    "hotconfig.bridge.serving",
    "hotconfig.fleet",
    "hotconfig.fleet.metrics",
    "hotconfig.security",
    "hotconfig.cli",
    "hotconfig.testing",
    "hotconfig.testing.plugin",
}


def test_public_names_are_pinned() -> None:
    assert hotconfig.__all__ == [
        "Change",
        "ClientClosedError",
        "ConfigKeyError",
        "ConfigStore",
        "Connection",
        "Entry",
        "Fleet",
        "HistoryEntry",
        "HotConfig",
        "HotConfigError",
        "InvalidMessageError",
        "InvalidValueError",
        "Limits",
        "NotConfiguredError",
        "RejectReason",
        "Snapshot",
        "Stats",
        "Status",
        "StoreError",
        "Timings",
        "config",
        "configure",
        "resolve_url",
        "signals",
    ]
    for name in hotconfig.__all__:
        assert getattr(hotconfig, name) is not None


def test_signal_names_are_pinned() -> None:
    assert signals.__all__ == [
        "Change",
        "Receiver",
        "RejectReason",
        "Status",
        "config_changed",
        "config_rejected",
        "send_isolated",
        "status_changed",
    ]


def test_every_error_is_a_hotconfig_error_and_a_builtin() -> None:
    assert issubclass(hotconfig.ConfigKeyError, KeyError)
    assert issubclass(hotconfig.InvalidMessageError, ValueError)
    assert issubclass(hotconfig.InvalidValueError, ValueError)
    assert issubclass(hotconfig.NotConfiguredError, RuntimeError)
    assert issubclass(hotconfig.ClientClosedError, RuntimeError)
    assert issubclass(hotconfig.StoreError, RuntimeError)
    for name in hotconfig.__all__:
        obj = getattr(hotconfig, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, hotconfig.HotConfigError)


def test_testing_names_are_pinned() -> None:
    import hotconfig.testing
    from hotconfig.testing import plugin

    assert hotconfig.testing.__all__ == [
        "EmbeddedServer",
        "EmbeddedServerError",
        "ServerKind",
        "available_kinds",
        "free_port",
        "override",
    ]
    for name in hotconfig.testing.__all__:
        assert getattr(hotconfig.testing, name) is not None
    assert plugin.__all__ == ["hotconfig_client", "hotconfig_server", "hotconfig_store"]


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            "hotconfig.bridge",
            [
                "Bridge",
                "BridgeStats",
                "Delivery",
                "Ephemeral",
                "Event",
                "EventKind",
                "Position",
                "Reason",
                "ReplayPublisher",
                "Replayable",
                "Sequenced",
                "Subscription",
            ],
        ),
        (
            "hotconfig.bridge.serving",
            [
                "CONTENT_TYPE",
                "KEEPALIVE",
                "LAST_EVENT_ID_HEADER",
                "LAST_EVENT_ID_PARAMETER",
                "SSE_HEADERS",
                "ASGIApp",
                "BlockingStream",
                "ChannelFrames",
                "Ending",
                "FrameSource",
                "Handshake",
                "Lookup",
                "Outbox",
                "OutboxEnded",
                "WebSocketAuthorize",
                "check_request",
                "comment",
                "end_streams_on_signals",
                "forward",
                "frame",
                "last_event_id",
                "refuse_handshake",
                "serve",
                "shared_loop",
                "sse_frame",
                "sse_stream",
                "websocket_app",
                "websocket_text",
            ],
        ),
        (
            "hotconfig.fleet",
            [
                "ChangeNotice",
                "Convergence",
                "Fleet",
                "Gone",
                "Outcome",
                "Report",
                "ReportEvent",
                "Reporter",
                "Watch",
            ],
        ),
        (
            "hotconfig.security",
            [
                "ENV_VAR",
                "ROLES",
                "KeyRing",
                "Role",
                "Verdict",
                "add_secret_patterns",
                "doctor",
                "looks_secret",
                "redacted_url",
                "rules",
                "signed_message",
            ],
        ),
        (
            "hotconfig.cli",
            [
                "AppDefaults",
                "Failure",
                "Session",
                "framework_group",
                "group",
                "main",
                "pass_session",
            ],
        ),
    ],
)
def test_each_public_module_pins_its_names(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    assert imported.__all__ == names
    if module == "hotconfig.cli" and importlib.util.find_spec("click") is None:
        return  # these need the cli extra (the lowest floors' run has none): tested elsewhere
    for name in names:
        assert getattr(imported, name) is not None


def imported_modules(path: Path) -> set[str]:
    """The hotconfig modules a source file imports, and the names it takes from them."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "hotconfig"}


def test_the_integrations_import_public_modules_and_names_only() -> None:
    offending: dict[str, list[str]] = {}
    for path in sorted((ROOT / "integrations").rglob("*.py")):
        for name in imported_modules(path):
            module, _, attribute = name.rpartition(".")
            if name in PUBLIC_MODULES:
                continue
            if module in PUBLIC_MODULES and attribute in importlib.import_module(module).__all__:
                continue
            offending.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert offending == {}


def test_the_top_of_the_package_is_the_facade_and_a_handful_of_modules() -> None:
    top = sorted(p.name for p in (ROOT / "hotconfig").glob("*.py"))
    assert top == [
        "__init__.py",
        "client.py",
        "default.py",
        "errors.py",
        "signals.py",
        "store.py",
    ]


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "hotconfig").rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert long == {}, "one module, one job: split these"
