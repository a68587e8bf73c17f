"""Timing helpers: interleaved timeit runs, percentiles, medians."""

from __future__ import annotations

import math
import statistics
import timeit
from collections.abc import Mapping, Sequence
from typing import Any


def per_call(
    statements: Mapping[str, str],
    names: Mapping[str, Any],
    *,
    repeats: int = 15,
    target: float = 0.02,
) -> dict[str, float]:
    """Seconds per execution of each statement: the minimum over ``repeats`` timeit runs.

    The statements run interleaved (A B C, C B A, A B C, ...) so that a slow moment of the
    machine hits all of them alike. ``names`` become *local* variables of the timed function,
    so ``c.get(k)`` costs what it costs in a function body, not a global lookup more.
    """
    setup = "; ".join(f"{name} = __names[{name!r}]" for name in names) or "pass"
    timers = {
        label: timeit.Timer(stmt, setup=setup, globals={"__names": names})
        for label, stmt in statements.items()
    }
    numbers = {label: _number(timer, target) for label, timer in timers.items()}
    best = dict.fromkeys(timers, float("inf"))
    labels = list(timers)
    for repeat in range(repeats):
        for label in labels if repeat % 2 == 0 else reversed(labels):
            elapsed = timers[label].timeit(numbers[label]) / numbers[label]
            best[label] = min(best[label], elapsed)
    return best


def _number(timer: timeit.Timer, target: float) -> int:
    number, elapsed = timer.autorange()
    return max(1, int(number * target / max(elapsed, 1e-9)))


def loop_overhead(names: Mapping[str, Any], repeats: int = 15) -> float:
    """Seconds per iteration of timeit's empty loop (``pass``), to report net costs too."""
    return per_call({"pass": "pass"}, names, repeats=repeats)["pass"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
