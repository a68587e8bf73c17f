"""Type-check the Python code blocks of Markdown files as users would paste them.

    python -m tests.snippets README.md

Every ```` ```python ```` block of a file is one module, in order (a later block may use what an
earlier one imported), checked with ``mypy --strict`` under the project's mypy settings. Lines
outside the blocks become blank lines, so an error names the Markdown file's own line number.
``make types`` runs it on the README: its quick start must type-check as written.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from mypy import api

__all__ = ["check", "python_source"]

_FENCE = re.compile(r"^```(\w*)\s*$")


def python_source(markdown: str) -> str:
    """The ``python`` blocks of ``markdown`` as one module, each line where it was."""
    lines: list[str] = []
    language: str | None = None  # the language of the block we are in, None outside
    for line in markdown.splitlines():
        fence = _FENCE.match(line)
        if fence is not None:
            language = fence.group(1) if language is None else None
            lines.append("")
        else:
            lines.append(line if language == "python" else "")
    return "\n".join(lines) + "\n"


def check(path: Path) -> tuple[int, str]:
    """``mypy --strict`` over the Python blocks of ``path``: its exit status and report."""
    source = python_source(path.read_text(encoding="utf-8"))
    if not source.strip():
        return 1, f"{path}: no ```python blocks to check\n"
    with tempfile.TemporaryDirectory() as tmp:
        module = Path(tmp) / f"{path.stem.lower()}_snippets.py"
        module.write_text(source, encoding="utf-8")
        stdout, stderr, status = api.run(["--strict", str(module)])
    return status, (stdout + stderr).replace(str(module), str(path))


def main(paths: list[str]) -> int:
    worst = 0
    for name in paths:
        status, report = check(Path(name))
        sys.stdout.write(report)
        worst = max(worst, status)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["README.md"]))
