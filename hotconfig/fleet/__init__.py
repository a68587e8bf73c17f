"""The fleet: every instance's health reports, and what an operator reads from them.

Each client reports on ``health:status:{namespace}`` through its :class:`Reporter` and
registers in an expiring instance registry; :class:`Fleet` lists the instances, waits for a
version to land everywhere (:meth:`Fleet.wait`, behind ``hotconfig set --wait``) and watches
the channel. :mod:`hotconfig.fleet.metrics` exports the clients' counters to Prometheus
(``pip install 'hotconfig[metrics]'``).
"""

from __future__ import annotations

from ._observer import ChangeNotice, Convergence, Fleet, Gone, Outcome, Watch
from .registry import Report, ReportEvent
from .reporter import Reporter

__all__ = [
    "ChangeNotice",
    "Convergence",
    "Fleet",
    "Gone",
    "Outcome",
    "Report",
    "ReportEvent",
    "Reporter",
    "Watch",
]
