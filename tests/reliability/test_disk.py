"""The database fills up or turns read-only under a running pipeline, then comes back.

The disk is not really filled: SQLite is made to refuse writes on the store's own writer connection,
on its writer thread, as a full disk or a read-only file would (`PRAGMA max_page_count` at the current
size: "database or disk is full"; `PRAGMA query_only`: "attempt to write a readonly database"). While
it lasts the service must say so in its heartbeat and hold what it read; once writes succeed again,
every event is stored once and every alert delivered once, as in a run that never saw the outage.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.notifiers import JsonlNotifier
from bot.alerts.outbox import Dispatcher
from bot.health import Heartbeat, check, heartbeat_path
from bot.pipeline import Pipeline, RunStats
from bot.rules.engine import Engine
from bot.sources.replay import ReplaySource
from bot.status import snapshot
from bot.store.sqlite import SQLiteStore, open_store
from tests.conftest import Logs, close_store
from tests.helpers import read_jsonl
from tests.reliability import report
from tests.reliability.feeds import write_feed

POSTS = report.scale(1_500, 10_000)
RATE = report.scale(1_000, 2_000)  # posts per second: the run lasts long enough for an outage in its middle
OUTAGE_S = report.scale(1, 5)
RUNS = report.scale(1, 3)
WAIT_S = 120.0  # a hang guard, not a speed check

Alert = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Fault:
    """How to make the writer connection refuse writes, how to mend it, and a word the health check must say."""

    name: str
    scenario: str
    word: str
    order: int

    def apply(self, conn: sqlite3.Connection, broken: bool) -> None:
        if self.name == "full":
            pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
            conn.execute(f"PRAGMA max_page_count = {pages if broken else 1 << 30}")
        else:
            conn.execute(f"PRAGMA query_only = {int(broken)}")


FAULTS = [
    Fault("full", "database full (SQLite `max_page_count` reached) mid-replay", "full", 20),
    Fault("read-only", "database read-only (`PRAGMA query_only`) mid-replay", "read-only", 21),
]


class CountingNotifier:
    """Counts every send: JsonlNotifier skips ids it already wrote, a Telegram chat would show them twice.

    `during_next_send`, once set, runs inside the next send: the outage then begins while an alert is on
    its way out, and the outbox must record that alert sent once the database takes writes again.
    """

    name = "counting"

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.during_next_send: Callable[[], Awaitable[None]] | None = None

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        self.sent[str(alert["id"])] += 1
        hook, self.during_next_send = self.during_next_send, None
        if hook is not None:
            await hook()
        return None

    async def close(self) -> None:
        return None


async def on_writer(store: SQLiteStore, job: Callable[[sqlite3.Connection], None]) -> None:
    """Run `job` on the store's writer thread, between its transactions, with its connection."""
    await asyncio.get_running_loop().run_in_executor(store._executor, job, store._writer)


async def until(condition: Callable[[], bool], running: asyncio.Task[RunStats], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if running.done():
            running.result()  # its error, if it failed
            pytest.fail(f"the replay ended before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {WAIT_S:.0f} s for {what}")
        await asyncio.sleep(0.01)


def sent_alerts(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path) if path.exists() else []


_REFERENCE: dict[Path, set[Alert]] = {}


async def reference_alerts(feed: Path, data: Path, engine: Engine) -> set[Alert]:
    """The alerts of a run that never saw an outage."""
    store = await open_store(data)
    try:
        await Pipeline(store, engine, Dispatcher(store, [JsonlNotifier(data / "alerts.jsonl")])).run(
            ReplaySource([feed]), drain_timeout=WAIT_S
        )
    finally:
        await close_store(store)
    return {(a["channel_id"], a["message_id"], a["category"]) for a in sent_alerts(data / "alerts.jsonl")}


@dataclass(slots=True)
class Outage:
    held: int  # events read but not stored, at most, while writes failed
    unrecorded: int  # deliveries the outbox could not record sent while it lasted (it retried them)
    problem: str  # what the health check said
    recovered_s: float  # from the writes allowed again to the pipeline storing again
    alerts: int


async def outage_run(fault: Fault, feed: Path, data: Path, engine: Engine, expected: set[Alert], logs: Logs) -> Outage:
    store = await open_store(data)
    try:
        counting = CountingNotifier()
        pipeline = Pipeline(store, engine, Dispatcher(store, [JsonlNotifier(data / "alerts.jsonl"), counting]))
        source = ReplaySource([feed], rate=RATE)
        heartbeat = Heartbeat(lambda: snapshot(pipeline, store, None, None), heartbeat_path(data))
        running = asyncio.create_task(pipeline.run(source, drain_timeout=WAIT_S))
        await until(lambda: pipeline.stats.events >= POSTS // 4, running, "a quarter of the posts were stored")
        await heartbeat.beat()
        assert check(heartbeat.path)[0], check(heartbeat.path)

        async def breaking() -> None:
            await on_writer(store, lambda conn: fault.apply(conn, broken=True))

        counting.during_next_send = breaking
        await until(lambda: counting.during_next_send is None, running, "an alert was sent")
        await until(lambda: pipeline.store_problem is not None, running, f"the pipeline saw the database {fault.word}")
        broke = time.monotonic()
        held, problem = 0, ""
        while time.monotonic() - broke < OUTAGE_S:
            beat = await heartbeat.beat()
            healthy, problem = check(heartbeat.path)
            assert not healthy, problem
            assert problem.startswith("database not writable ("), problem
            assert fault.word in problem.split(";")[0], problem
            assert beat.store_problem is not None
            held = max(held, source.counters.events - pipeline.stats.events)
            await asyncio.sleep(0.1)
        assert not running.done(), "the replay ended while the database refused writes"

        await on_writer(store, lambda conn: fault.apply(conn, broken=False))
        mended = time.monotonic()
        await until(lambda: pipeline.store_problem is None, running, "the pipeline stored again")
        recovered_s = time.monotonic() - mended
        stats = await asyncio.wait_for(running, WAIT_S)
        beat = await heartbeat.beat()
        healthy, after = check(heartbeat.path)
        assert healthy, after

        with sqlite3.connect(data / "tgmon.db") as conn:
            count, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT channel_id || '/' || message_id) FROM posts"
            ).fetchone()
            pending = conn.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]
        written = sent_alerts(data / "alerts.jsonl")
        ids = [a["id"] for a in written]
        assert count == distinct == POSTS, (count, distinct)
        assert stats.outcomes == {"new": POSTS}
        assert len(ids) == len(set(ids)), "alerts.jsonl holds an alert twice"
        assert {(a["channel_id"], a["message_id"], a["category"]) for a in written} == expected
        assert counting.sent == Counter(ids), "an alert was sent twice, or to one notifier only"
        assert pending == 0
        unrecorded = sum(1 for entry in logs if entry["event"] == "alert.mark_sent_failed")
        return Outage(held, unrecorded, problem.replace(str(data), "<data dir>"), recovered_s, len(ids))
    finally:
        await close_store(store)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_database_refusing_writes_is_reported_unhealthy_loses_nothing_and_recovers(
    fault: Fault, engine: Engine, tmp_path: Path, request: pytest.FixtureRequest, logs: Logs
) -> None:
    feed = tmp_path / "feed.jsonl"
    write_feed(feed, POSTS)
    expected = await reference_alerts(feed, tmp_path / "reference", engine)
    assert expected, "the reference run raised no alert: the feed tests nothing"
    outages: list[Outage] = []
    try:
        for run in range(RUNS):
            logs.clear()
            outages.append(await outage_run(fault, feed, tmp_path / f"data{run}", engine, expected, logs))
    finally:
        report.record(
            report.Result(
                order=fault.order,
                nodeid=request.node.nodeid,
                scenario=f"{fault.scenario}, begun while an alert was being sent, lasting {OUTAGE_S} s;"
                f" {POSTS:,} posts replayed at {RATE:,}/s by the in-process pipeline",
                runs=len(outages),
                checked="`tgmon health` unhealthy (database not writable) throughout; events held, not dropped;"
                " after: healthy, every post stored once, every alert sent once to each of two notifiers"
                " (the same alerts as a run without the outage), no delivery pending",
                result=_summary(outages),
            )
        )


def _summary(outages: list[Outage]) -> str:
    if not outages:
        return "no run completed"
    held = _span([o.held for o in outages], "{:,}")
    recovered = _span([o.recovered_s for o in outages], "{:.1f}")
    return (
        f"{held} events held during an outage, all stored once after it;"
        f" stored again {recovered} s after writes were allowed (the pipeline's"
        f" retry backoff, 0.5 s doubling); {sum(o.unrecorded for o in outages)} failed writes of sent alerts"
        f" retried by the outbox; {outages[-1].alerts:,} alerts sent once each; health said:"
        f" “{outages[-1].problem.split(';')[0]}; …”"
    )


def _span(values: list[Any], form: str) -> str:
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low}–{high}"
