"""Django's test runner, writing what it ran to ``$HOTCONFIG_SUITE_REPORT`` as JSON."""

from __future__ import annotations

import json
import os
import unittest
from pathlib import Path
from typing import Any

from django.test.runner import DiscoverRunner


class Runner(DiscoverRunner):
    def run_suite(self, suite: unittest.TestSuite, **kwargs: Any) -> unittest.TextTestResult:
        result = super().run_suite(suite, **kwargs)
        report = {
            "ran": result.testsRun,
            "failed": sorted(test.id() for test, _ in (*result.failures, *result.errors)),
            "skipped": sorted(test.id() for test, _ in result.skipped),
            "unexpected_successes": sorted(test.id() for test in result.unexpectedSuccesses),
        }
        Path(os.environ["HOTCONFIG_SUITE_REPORT"]).write_text(json.dumps(report, indent=1))
        return result
