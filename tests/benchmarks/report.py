"""Rows of the benchmark table: what was measured, against what, and whether the bar holds."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Op = Literal["<=", "<", ">="]


@dataclass(frozen=True)
class Bar:
    """A bar from DESIGN §8: on the ratio to the baseline, or on the measured value itself."""

    on: Literal["ratio", "value"]
    op: Op
    limit: float

    def holds(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.limit
        if self.op == "<":
            return value < self.limit
        return value >= self.limit

    def text(self, unit: str) -> str:
        if self.on == "ratio":
            return f"{self.op} {self.limit:g}x"
        return f"{self.op} {_format(self.limit, unit)}"


@dataclass
class Row:
    """One line of the table. ``ratio`` is ``measured / baseline``; ``lower_is_better`` says
    which way a change between runs is an improvement."""

    id: str
    label: str
    measured: float
    unit: str
    baseline: float | None = None
    bar: Bar | None = None
    lower_is_better: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.measured / self.baseline

    @property
    def passed(self) -> bool | None:
        if self.bar is None:
            return None
        value = self.ratio if self.bar.on == "ratio" else self.measured
        return value is not None and self.bar.holds(value)

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ratio"] = self.ratio
        data["passed"] = self.passed
        return data


def _format(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "msg/s":
        return f"{value:,.0f} msg/s"
    if unit == "MB":
        return f"{value:.2f} MB"
    if unit in ("ns", "us", "ms") and value >= 1000:
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}" if value >= 10 else f"{value:.2f} {unit}"


def _result(row: Row) -> str:
    if row.passed is None:
        return "info"
    return "PASS" if row.passed else "FAIL"


def _change(row: Row, previous: dict[str, Any] | None) -> str:
    if previous is None:
        return ""
    before = previous.get(row.id, {}).get("measured")
    if not before:
        return "new"
    delta = (row.measured - before) / before
    if abs(delta) < 0.005:
        return "="
    better = (delta < 0) == row.lower_is_better
    return f"{delta:+.0%} {'better' if better else 'worse'}"


def render(
    rows: list[Row], sections: list[tuple[str, int]], previous: dict[str, Any] | None
) -> str:
    """The table; ``sections`` are (title, index of the first row) in order."""
    header = ["row", "measured", "baseline", "ratio", "bar", "result"]
    if previous is not None:
        header.append("vs last run")
    lines = []
    for row in rows:
        ratio = row.ratio
        cells = [
            row.label,
            _format(row.measured, row.unit),
            _format(row.baseline, row.unit),
            "-" if ratio is None else f"{ratio:.2f}x",
            "-" if row.bar is None else row.bar.text(row.unit),
            _result(row),
        ]
        if previous is not None:
            cells.append(_change(row, previous))
        lines.append(cells)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=True)]

    def fmt(cells: list[str]) -> str:
        left = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([left, *rest]).rstrip()

    out = [fmt(header), "-" * len(fmt(header))]
    starts = {start: title for title, start in sections}
    for index, cells in enumerate(lines):
        if index in starts:
            out.append(f"[{starts[index]}]")
        out.append(fmt(cells))
    return "\n".join(out)


def load_previous(directory: Path) -> dict[str, Any] | None:
    """The rows of the last run, by id, or None when there is no readable latest.json."""
    try:
        data = json.loads((directory / "latest.json").read_text())
        return {"_timestamp": data["timestamp"], **{r["id"]: r for r in data["rows"]}}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(directory: Path, timestamp: str, machine: dict[str, Any], rows: list[Row]) -> Path:
    """Write results-<timestamp>.json and latest.json; return the first."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {"timestamp": timestamp, "machine": machine, "rows": [r.as_json() for r in rows]}
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    path = directory / f"results-{timestamp}.json"
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path
