"""What the reliability tests measured, and the table in docs/reliability.md written from it.

Tests record their figures here; `conftest.py` writes the table at the end of the session, only for
the long form (`TGMON_SOAK=1`) or when `TGMON_RELIABILITY_REPORT` names a file, so that the bounded
form CI runs never overwrites the figures of a soak. The variables are read at import: the suite's
autouse fixture hides every `TGMON_*` variable from the tests themselves.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.helpers import REPO

SOAK = os.environ.get("TGMON_SOAK", "") not in ("", "0")
_REPORT_ENV = os.environ.get("TGMON_RELIABILITY_REPORT", "")
REPORT: Path | None = Path(_REPORT_ENV) if _REPORT_ENV else (REPO / "docs" / "reliability.md" if SOAK else None)
SEED_ENV = os.environ.get("TGMON_RELIABILITY_SEED", "")


def scale(bounded: int, soak: int) -> int:
    """The bounded figure in CI, the issue's figure under `make soak`."""
    return soak if SOAK else bounded


@dataclass(slots=True)
class Result:
    order: int  # the place of the scenario in the table
    nodeid: str  # the test that measured it: its outcome marks the row failed
    scenario: str
    runs: int
    checked: str
    result: str
    notes: Mapping[str, str] = field(default_factory=dict)  # one-line facts for the header (seeds, data)


RESULTS: list[Result] = []
OUTCOMES: dict[str, str] = {}  # nodeid → "passed" / "failed", from the call phase
STARTED = datetime.now(UTC)


def record(result: Result) -> None:
    RESULTS.append(result)


def render(elapsed_s: float) -> str:
    """docs/reliability.md: how to reproduce, what ran where, then one row per scenario."""
    from bot import __version__

    notes: dict[str, str] = {}
    for result in RESULTS:
        notes.update(result.notes)
    lines = [
        "# Reliability",
        "",
        "tgmon's reliability suite (`tests/reliability/`) kills replays with SIGKILL, fills and write-protects",
        "the database under a running pipeline, and fuzzes the replay parser, the store and the config loaders.",
        "CI runs a bounded form of it with every `make test`; this table comes from the long form, written by the",
        "suite itself at the end of the run. Reproduce it with `make soak` (it rewrites this file), or run the long",
        "form with `TGMON_SOAK=1 TGMON_RELIABILITY_REPORT=/tmp/reliability.md .venv/bin/pytest tests/reliability`",
        "to write the table elsewhere; `TGMON_RELIABILITY_SEED=<seed>` replays the kill moments of a run.",
        "",
        f"- date: {STARTED.strftime('%Y-%m-%d %H:%M UTC')}, {elapsed_s / 60:.1f} min in all",
        f"- form: {'long (TGMON_SOAK=1)' if SOAK else 'bounded (CI)'}",
        f"- machine: {os.cpu_count()} CPUs (`nproc`), {platform.system()} {platform.release()} {platform.machine()}",
        f"- Python {platform.python_version()} ({sys.implementation.name}), tgmon {__version__}",
        *(f"- {key}: {value}" for key, value in notes.items()),
        "",
        "| scenario | runs | what was checked | result |",
        "|---|---|---|---|",
    ]
    for result in sorted(RESULTS, key=lambda r: r.order):
        outcome = OUTCOMES.get(result.nodeid, "not run to the end")
        verdict = result.result if outcome == "passed" else f"**{outcome.upper()}**: {result.result}"
        lines.append(f"| {result.scenario} | {result.runs:,} | {result.checked} | {verdict} |")
    return "\n".join(lines) + "\n"


def write(elapsed_s: float) -> Path | None:
    if REPORT is None or not RESULTS:
        return None
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(render(elapsed_s), encoding="utf-8")
    return REPORT
