"""Collects the outcome of each reliability test and writes the results table at the end of the session."""

from __future__ import annotations

import time

import pytest

from tests.reliability import report as results

_STARTED = time.monotonic()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A test that failed marks its row in the table failed (the figures it recorded still show)."""
    if report.failed:
        results.OUTCOMES[report.nodeid] = "failed"
    elif report.when == "call":
        results.OUTCOMES.setdefault(report.nodeid, report.outcome)


def pytest_sessionfinish(session: pytest.Session) -> None:
    written = results.write(time.monotonic() - _STARTED)
    if written is not None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"reliability: results written to {written}")
