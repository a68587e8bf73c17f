"""How the ``hotconfig`` command prints: JSON for scripts, rich tables in a terminal, plain
aligned text when piped. Values of keys that look secret are shown as ``***`` unless the user
asked for ``--show-secrets``; URLs are always shown without their password."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from .._config.wire import Entry
from ..security.redaction import looks_secret, masked

__all__ = ["Output", "dumps"]

HIDDEN = "***"


def dumps(value: Any) -> str:
    """A value as compact JSON (what ``set`` accepts back)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class Output:
    """One command's printer, chosen once from ``--json`` and whether stdout is a terminal."""

    def __init__(self, *, as_json: bool, show_secrets: bool) -> None:
        self.as_json = as_json
        self.show_secrets = show_secrets
        self.terminal = sys.stdout.isatty()
        self.hidden = 0  # values hidden so far

    def value(self, key: str, value: Any) -> Any:
        """``value``, or ``***`` for a secret key (counted in :attr:`hidden`); secret-named
        keys inside a JSON value are hidden too."""
        if self.show_secrets:
            return value
        if looks_secret(key):
            self.hidden += 1
            return HIDDEN
        return masked(value)

    def keeps(self, key: str) -> bool:
        """Whether ``key``'s value may be written out (an export leaves secrets out)."""
        if self.show_secrets or not looks_secret(key):
            return True
        self.hidden += 1
        return False

    def entry(self, entry: Entry) -> dict[str, Any]:
        """A change as JSON-ready data, its value hidden when secret."""
        data: dict[str, Any] = {"op": entry.op, "scope": entry.scope, "key": entry.key}
        if entry.op == "set":
            data["value"] = self.value(entry.key, entry.value)
        return data

    def shown(self, key: str, value: Any) -> str:
        """A value as text, hidden when secret."""
        kept = self.value(key, value)
        return HIDDEN if kept is HIDDEN else dumps(kept)

    def json(self, data: Any) -> None:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))

    def line(self, text: str, style: str | None = None) -> None:
        if self.terminal and style:
            click.secho(text, fg=style)
        else:
            click.echo(text)

    def note(self, text: str) -> None:
        """A remark for the human, on stderr: never mixed into what a script parses."""
        click.echo(text, err=True)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
        cells = [[str(cell) for cell in row] for row in rows]
        if self.terminal:
            try:
                self._rich_table(columns, cells, title)
                return
            except ImportError:
                pass  # rich is optional for plain output
        widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
        header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
        click.echo(header.rstrip())
        for row in cells:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

    def _rich_table(self, columns: Sequence[str], rows: list[list[str]], title: str) -> None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(*columns, title=title or None)
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # values are text, never markup
        Console().print(table)
