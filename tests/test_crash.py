"""Crash safety: `tgmon replay` SIGKILLed at random moments, then run to the end, stores every post once
and writes every alert to alerts.jsonl exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, T0

POSTS = 3000
KILLS = 3
ALERT_EVERY = 37
WORDS = [
    "в", "городе", "сегодня", "прошла", "ярмарка", "погода", "солнечная", "новости", "спорта", "курс", "рубля",
    "выставка", "концерт", "театр",
]  # fmt: skip
# `--rate` spreads the run over a couple of seconds, so that kills land while it stores and delivers.
RATE = "2000"


def write_feed(path: Path, rng: random.Random) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(POSTS):
            channel = 1902000100 + i % 7
            text = (
                f"Ракетная опасность в Белгороде! Пост {i}"
                if i % ALERT_EVERY == 0
                else " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40))) + f" {i}"
            )
            record = {
                "timestamp": (T0.timestamp() + i),
                "channel_id": channel,
                "channel_title": f"Канал {channel % 100}",
                "username": f"chan_{channel % 100}_demo" if channel % 2 else None,
                "message_id": 1000 + i,
                "text": text,
                "views": rng.randint(0, 100_000),
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def env() -> dict[str, str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith(("TGMON_", "TG_"))}
    child.update({"TGMON_NOTIFIERS": "jsonl", "TGMON_LOG_FORMAT": "json", "TGMON_LOG_LEVEL": "warning"})
    return child


def replay(feed: Path, data: Path, rate: str | None = RATE) -> subprocess.Popen[bytes]:
    """`tgmon replay` in a child process; `rate=None` runs it as fast as it goes."""
    pace = ["--rate", rate] if rate else []
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "replay", str(feed), "--data-dir", str(data), "--no-progress", *pace],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stored_posts(data: Path) -> int:
    try:
        with sqlite3.connect(f"file:{data / 'tgmon.db'}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM posts").fetchone()[0])
    except sqlite3.Error:
        return 0


def kill_mid_run(feed: Path, data: Path, rng: random.Random) -> int:
    """Start a replay, wait until it stores posts, SIGKILL it at a random moment; the posts stored then."""
    before = stored_posts(data)
    child = replay(feed, data)
    try:
        deadline = time.monotonic() + 60  # a hang guard, not a speed check
        while child.poll() is None and stored_posts(data) <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.8))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
    finally:
        _, stderr = child.communicate(timeout=60)
    if child.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"replay failed with {child.returncode}:\n{stderr.decode(errors='replace')}")
    return stored_posts(data)


def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    feed = tmp_path / "feed.jsonl"
    data = tmp_path / "data"
    write_feed(feed, rng)

    progress = [kill_mid_run(feed, data, rng) for _ in range(KILLS)]
    final = subprocess.run(
        [sys.executable, "-m", "bot", "replay", str(feed), "--data-dir", str(data), "--no-progress"],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    context = f"seed {seed}, posts stored after each kill: {progress}"
    assert final.returncode == 0, f"{context}\n{final.stderr}"

    stats = subprocess.run(
        [sys.executable, "-m", "bot", "stats", "--json", "--data-dir", str(data)],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    totals = json.loads(stats.stdout)
    assert totals["posts"] == POSTS, context
    assert totals["pending_deliveries"] == 0, context

    with sqlite3.connect(data / "tgmon.db") as conn:
        count, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT channel_id || '/' || message_id) FROM posts"
        ).fetchone()
        stored_alerts = {row[0] for row in conn.execute("SELECT id FROM alerts")}
    assert count == distinct == POSTS, context
    assert len(stored_alerts) == len(range(0, POSTS, ALERT_EVERY)), context

    lines = (data / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    written = [json.loads(line)["id"] for line in lines]  # every line whole: a kill never tears one
    assert len(written) == len(set(written)), f"{context}: duplicate alert lines"
    assert set(written) == stored_alerts, context
