"""The package itself: its public names, its import without Flask, its clients at exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import hotconfig_flask
from hotconfig.testing import EmbeddedServer
from tests.integrations.flask.serving import ROOT, app_env
from tests.locks import extra_requirements


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_public_names_are_pinned() -> None:
    assert hotconfig_flask.__all__ == [
        "EXTENSION",
        "AlreadyRegisteredError",
        "ExtensionSetupError",
        "HotConfig",
        "NoAppContextError",
        "NotRegisteredError",
    ]
    for name in hotconfig_flask.__all__:
        assert getattr(hotconfig_flask, name) is not None


def test_without_flask_the_import_fails_with_one_message_that_says_what_to_install() -> None:
    # A None entry in sys.modules makes `import flask` raise ImportError, as if not installed.
    result = python("import sys; sys.modules['flask'] = None; import hotconfig_flask")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: hotconfig_flask needs Flask, which is not installed: "
        "pip install 'hotconfig[flask]'"
    )


def test_every_apps_client_is_closed_when_the_interpreter_exits(server: EmbeddedServer) -> None:
    result = python(
        """
        from hotconfig import signals
        from tests.integrations.flask.apps import create_app

        def moved(client, old, new):
            print(f"{client.service}: {old} -> {new}", flush=True)

        signals.status_changed.connect(moved, weak=False)
        create_app({"HOTCONFIG_SERVICE": "first"})
        create_app({"HOTCONFIG_SERVICE": "second"})
        print("exiting", flush=True)
        """,
        env=app_env(server.url),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[: lines.index("exiting")] == [
        "first: STARTING -> LIVE",
        "second: STARTING -> LIVE",
    ]
    assert sorted(lines[lines.index("exiting") + 1 :]) == [
        "first: LIVE -> CLOSED",
        "second: LIVE -> CLOSED",
    ]


def test_the_flask_extra_installs_what_flask_hotconfig_needs() -> None:
    # pip install 'hotconfig[flask]', then `flask hotconfig ...`: click and rich must come with it.
    assert extra_requirements("cli") <= extra_requirements("flask")
