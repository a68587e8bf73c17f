"""docs/flask.md: its Python blocks, read in order as one module, type-check and pass as tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hotconfig.testing import EmbeddedServer
from tests.integrations.flask.serving import ROOT, app_env
from tests.snippets import check, python_source

PAGE = ROOT / "docs" / "flask.md"


def test_the_python_blocks_type_check_strictly() -> None:
    status, report = check(PAGE)
    assert status == 0, report


def test_the_python_blocks_run_and_their_tests_pass(server: EmbeddedServer, tmp_path: Path) -> None:
    module = tmp_path / "test_flask_page.py"
    module.write_text(python_source(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    pytest = [sys.executable, "-m", "pytest", "-q", "-W", "error"]
    result = subprocess.run(
        [*pytest, "-p", "no:cacheprovider", "-p", "no:valkey", str(module)],
        cwd=tmp_path,
        env=app_env(server.url),  # the page's module-level apps follow the test's server
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
