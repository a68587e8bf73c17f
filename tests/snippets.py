"""The Python code blocks of the Markdown docs, as users would paste them.

    python -m tests.snippets README.md       # mypy --strict over the README's blocks

Each ```` ```python ```` block is complete, or says otherwise on the last line before its fence
with an HTML comment, which the rendered page does not show:

``<!-- continues -->``
    the block goes on from the one before it: the two run as one program (a chain);
``<!-- not run: why -->``
    the block is not run, and the comment says why (it needs a Django project, say).

``tests/test_snippets.py`` runs every chain of README.md and docs/*.md against a real server,
whose URL it passes in ``HOTCONFIG_URL`` (the samples name no server: the library reads it). A
chain that defines ``test_*`` functions is run by pytest, which must pass them all. ``make
types`` type-checks the README's blocks with ``mypy --strict``; lines outside the blocks become
blank lines, so an error or a traceback names the Markdown file's own line number.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "Chain", "blocks", "chains", "check", "python_source"]

_FENCE = re.compile(r"^```(\w*)\s*$")
_INDENTED_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")  # a block may sit in a list item
_MARKER = re.compile(r"^<!--\s*(continues|not run:\s*(?P<why>.*?))\s*-->\s*$")
_TEST = re.compile(r"^def (test_\w+)\(", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """One ```` ```python ```` block: where its first line of code is, its code, and its mark."""

    path: Path
    line: int  # 1-based line number of the block's first line of code
    code: str
    continues: bool = False
    not_run: str | None = None  # why, for a block marked not to run


@dataclass(frozen=True)
class Chain:
    """Blocks that run as one program: a complete block and those that continue it."""

    blocks: tuple[Block, ...]

    def __str__(self) -> str:
        first = self.blocks[0]
        return f"{first.path.name}:{first.line}"

    @property
    def tests(self) -> list[str]:
        """The names of the ``test_*`` functions the chain defines (pytest runs those)."""
        return _TEST.findall("\n".join(block.code for block in self.blocks))

    def source(self) -> str:
        """The chain as one module, each line at its line number in the Markdown file."""
        lines: list[str] = []
        for block in self.blocks:
            code = block.code.splitlines()
            lines += [""] * (block.line - 1 - len(lines)) + code
        return "\n".join(lines) + "\n"


def blocks(path: Path) -> Iterator[Block]:
    """The ```` ```python ```` blocks of the Markdown file ``path``, in order, with their marks.

    A mark that names neither form is a ``ValueError``, so a typo cannot hide a block."""
    language: str | None = None  # the language of the block we are in, None outside
    before = ""  # the last non-blank line before the current fence
    start, code, indent = 0, list[str](), ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = _INDENTED_FENCE.match(line)
        if fence is None or (language is not None and fence.group(1) != indent):
            if language is not None:
                code.append(line.removeprefix(indent))
            elif line.strip():
                before = line.strip()
            continue
        if language is None:
            indent, language, start, code = fence.group(1), fence.group(2), number + 1, []
            mark = before
        else:
            if language == "python":
                yield _block(path, start, code, mark)
            language, before = None, ""


def _block(path: Path, line: int, code: list[str], mark: str) -> Block:
    text = "\n".join(code)
    if not mark.startswith("<!--"):
        return Block(path, line, text)
    found = _MARKER.match(mark)
    if found is None or (found.group(1) != "continues" and not found.group("why")):
        raise ValueError(
            f"{path}:{line - 1}: {mark!r} is not a block mark: use <!-- continues --> or "
            "<!-- not run: why -->"
        )
    if found.group(1) == "continues":
        return Block(path, line, text, continues=True)
    return Block(path, line, text, not_run=found.group("why"))


def chains(path: Path) -> list[Chain]:
    """The chains of ``path`` that run (a block marked not to run starts no chain and joins
    none); ``<!-- continues -->`` with no block before it to continue is a ``ValueError``."""
    found: list[list[Block]] = []
    previous: Block | None = None
    for block in blocks(path):
        if block.continues:
            if previous is None or previous.not_run is not None:
                raise ValueError(
                    f"{path}:{block.line - 1}: <!-- continues --> follows no block that runs"
                )
            found[-1].append(block)
        elif block.not_run is None:
            found.append([block])
        previous = block
    return [Chain(tuple(chain)) for chain in found]


def python_source(markdown: str) -> str:
    """Every ``python`` block of ``markdown`` as one module, each line where it was."""
    lines: list[str] = []
    language: str | None = None
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
    from mypy import api

    source = python_source(path.read_text(encoding="utf-8"))
    if not source.strip():
        return 1, f"{path}: no ```python blocks to check\n"
    with tempfile.TemporaryDirectory() as tmp:
        module = Path(tmp) / f"{path.stem.lower()}_snippets.py"
        module.write_text(source, encoding="utf-8")
        stdout, stderr, status = api.run(["--strict", str(module)])
    return status, (stdout + stderr).replace(str(module), str(path))


def main(paths: Sequence[str]) -> int:
    worst = 0
    for name in paths:
        status, report = check(Path(name))
        sys.stdout.write(report)
        worst = max(worst, status)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["README.md"]))
