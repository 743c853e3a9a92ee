"""SIGKILL during `tgmon replay`, at random moments spread over the whole run, then rerun to the end.

tests/test_crash.py kills a synthetic feed a few times near its start; this kills a feed of real posts
K times at moments drawn over the whole run (startup, storing, delivering, the drain at the end) and
compares the alerts with those of one uninterrupted run of the same file: the outbox must lose no
alert and write none twice, whatever was cut short. The kill moments come from a seeded RNG; the seed
is printed, written to the report, and `TGMON_RELIABILITY_SEED` replays it.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.reliability import report
from tests.reliability.feeds import write_feed
from tests.test_crash import replay, stored_posts

POSTS = report.scale(3_000, 50_000)
KILLS = report.scale(4, 20)
RATE = "2000"  # posts per second while being killed: each run stores at a pace the kills can aim at
KILL_SPAN = 0.9  # kill targets are drawn below this share of the posts, so each run is still going
JITTER_S = 0.05  # past its target: the kill lands inside a batch or a delivery, not only between them
HANG_S = 300.0  # a hang guard, not a speed check

Alert = tuple[int, int, str]


def run_to_end(feed: Path, data: Path) -> float:
    """An uninterrupted replay, as fast as it goes; its duration."""
    started = time.monotonic()
    child = replay(feed, data, rate=None)
    _, stderr = child.communicate(timeout=HANG_S)
    assert child.returncode == 0, stderr.decode(errors="replace")
    return time.monotonic() - started


def kill_at(feed: Path, data: Path, target: int, jitter: float) -> bool:
    """Start a replay, SIGKILL it once `target` posts are stored (and `jitter` s more); False if it ended first."""
    child = replay(feed, data)
    try:
        deadline = time.monotonic() + HANG_S
        while child.poll() is None and stored_posts(data) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(jitter)
        killed = child.poll() is None
        if killed:
            child.send_signal(signal.SIGKILL)
    finally:
        _, stderr = child.communicate(timeout=60)
    if child.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"replay failed with {child.returncode}:\n{stderr.decode(errors='replace')}")
    return killed and child.returncode == -signal.SIGKILL


def written_alerts(data: Path) -> tuple[list[str], set[Alert], int]:
    """alerts.jsonl: ids in the order written, (channel_id, message_id, category) sent, lines torn."""
    ids: list[str] = []
    sent: set[Alert] = set()
    torn = 0
    path = data / "alerts.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            alert = json.loads(line)
        except ValueError:
            torn += 1
            continue
        ids.append(alert["id"])
        sent.add((alert["channel_id"], alert["message_id"], alert["category"]))
    return ids, sent, torn


def test_sigkill_at_random_moments_stores_every_post_once_and_sends_every_alert_once(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    seed = int(report.SEED_ENV) if report.SEED_ENV else random.randrange(1 << 30)
    print(f"seed {seed} (TGMON_RELIABILITY_SEED={seed} replays these kill moments)")
    rng = random.Random(seed)
    feed = tmp_path / "feed.jsonl"
    origin = write_feed(feed, POSTS)

    reference = tmp_path / "reference"
    reference_s = run_to_end(feed, reference)
    _, expected, _ = written_alerts(reference)

    data = tmp_path / "data"
    targets = sorted(rng.randint(0, int(POSTS * KILL_SPAN)) for _ in range(KILLS))
    kills, progress = 0, []
    for target in targets:
        kills += kill_at(feed, data, target, rng.uniform(0.0, JITTER_S))
        progress.append(stored_posts(data))
    final_s = run_to_end(feed, data)
    context = f"seed {seed}, kill targets {targets}, posts stored after each kill {progress}"

    with sqlite3.connect(data / "tgmon.db") as conn:
        count, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT channel_id || '/' || message_id) FROM posts"
        ).fetchone()
        pending = conn.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]
        delivered = {row[0] for row in conn.execute("SELECT id FROM alerts WHERE suppressed IS NULL")}
    ids, sent, torn = written_alerts(data)
    duplicated = len(ids) - len(set(ids))
    lost, extra = expected - sent, sent - expected

    report.record(
        report.Result(
            order=10,
            nodeid=request.node.nodeid,
            scenario=f"`tgmon replay` of {POSTS:,} posts, SIGKILLed {KILLS} times at random moments"
            ", then rerun to the end",
            runs=kills,
            checked="posts stored exactly once; alerts.jsonl: every line whole, no alert id twice, the same"
            " (channel, message, category) alerts as one uninterrupted run of the file; no delivery left pending",
            result=f"{distinct:,}/{POSTS:,} posts stored once ({count - distinct} twice);"
            f" {len(sent):,}/{len(expected):,} alerts sent, {len(lost)} lost, {duplicated} sent twice,"
            f" {len(extra)} unexpected, {torn} torn lines, {pending} pending"
            f" (uninterrupted run {reference_s:.1f} s; final rerun {final_s:.1f} s)",
            notes={"kill seed": f"{seed} (`TGMON_RELIABILITY_SEED={seed}` replays it)", "replayed posts": origin},
        )
    )
    assert kills == KILLS, f"{context}: {KILLS - kills} runs ended before their kill"
    assert count == distinct == POSTS, context
    assert expected, "the reference run raised no alert: the feed tests nothing"
    assert torn == 0, f"{context}: {torn} torn lines in alerts.jsonl"
    assert duplicated == 0, f"{context}: alerts written twice"
    assert not lost, f"{context}: alerts lost {sorted(lost)[:10]}"
    assert not extra, f"{context}: alerts not in the uninterrupted run {sorted(extra)[:10]}"
    assert set(ids) == delivered, context
    assert pending == 0, context
