"""The heartbeat file and `check()`: what `tgmon health` (Docker's HEALTHCHECK) answers, and why."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.health import HEARTBEAT_FILE, MAX_AGE_S, Heartbeat, Snapshot, check, heartbeat_path, write_heartbeat
from tests.conftest import Logs

NOW = datetime(2024, 3, 12, 3, 0, tzinfo=UTC)


def snap(**fields: object) -> Snapshot:
    return Snapshot(**{"at": NOW, "pid": 4242, **fields})  # type: ignore[arg-type]


def written(tmp_path: Path, snapshot: Snapshot) -> Path:
    path = heartbeat_path(tmp_path)
    write_heartbeat(path, snapshot)
    return path


# --- check() ------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    healthy, reason = check(tmp_path / HEARTBEAT_FILE, now=NOW)
    assert not healthy
    assert reason.startswith("no heartbeat at ")
    assert str(tmp_path / HEARTBEAT_FILE) in reason
    assert "not running" in reason


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff garbage, not JSON",
        b'{"at": "2024-03-12T03:00:00+00:00", "pid": 1',  # cut short
        b'{"at": "yesterday", "pid": 1}',
        b'{"pid": 1}',
        b'{"at": "2024-03-12T03:00:00+00:00"}',
    ],
    ids=["empty", "binary", "truncated", "bad-time", "no-time", "no-pid"],
)
def test_unreadable_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / HEARTBEAT_FILE
    path.write_bytes(content)
    healthy, reason = check(path, now=NOW)
    assert not healthy
    assert reason.startswith(f"heartbeat {path} unreadable (")
    assert "\n" not in reason


@pytest.mark.parametrize(
    "content", [b"[]", b'"text"', b'{"at": "2024-03-12T03:00:00", "pid": 1}'], ids=["list", "string", "naive-time"]
)
def test_valid_json_that_is_no_heartbeat_is_unreadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / HEARTBEAT_FILE
    path.write_bytes(content)
    healthy, reason = check(path, now=NOW)
    assert not healthy
    assert "unreadable" in reason


def test_directory_in_place_of_the_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / HEARTBEAT_FILE
    path.mkdir()
    healthy, reason = check(path, now=NOW)
    assert not healthy
    assert "unreadable" in reason


def test_stale_heartbeat(tmp_path: Path) -> None:
    path = written(tmp_path, snap(telegram_connected=True))
    assert check(path, now=NOW + timedelta(seconds=MAX_AGE_S))[0]  # at the limit: still well
    healthy, reason = check(path, now=NOW + timedelta(seconds=MAX_AGE_S + 1))
    assert not healthy
    assert reason == "heartbeat 61 s old (limit 60 s): tgmon run is stuck or gone"


def test_max_age_is_the_callers(tmp_path: Path) -> None:
    path = written(tmp_path, snap())
    assert check(path, now=NOW + timedelta(seconds=20), max_age_s=30)[0]
    healthy, reason = check(path, now=NOW + timedelta(seconds=20), max_age_s=10)
    assert not healthy
    assert "20 s old (limit 10 s)" in reason


def test_stopped(tmp_path: Path) -> None:
    path = written(tmp_path, snap(state="stopped", telegram_connected=True))
    healthy, reason = check(path, now=NOW + timedelta(seconds=1))
    assert not healthy
    assert reason == "tgmon run stopped at 2024-03-12T03:00:00+00:00"


def test_store_problem(tmp_path: Path) -> None:
    path = written(tmp_path, snap(store_problem="disk I/O error", queued=17, telegram_connected=True))
    healthy, reason = check(path, now=NOW)
    assert not healthy
    assert reason.startswith("database not writable (disk I/O error); 17 events held and retried")
    assert "free disk space" in reason


def test_telegram_disconnected(tmp_path: Path) -> None:
    healthy, reason = check(written(tmp_path, snap(telegram_connected=False)), now=NOW)
    assert not healthy
    assert reason.startswith("Telegram not connected")


def test_stopped_wins_over_a_stale_file(tmp_path: Path) -> None:
    """A clean exit is the better explanation than "stuck or gone"."""
    healthy, reason = check(written(tmp_path, snap(state="stopped")), now=NOW + timedelta(hours=1))
    assert not healthy
    assert "stopped" in reason


def test_healthy(tmp_path: Path) -> None:
    path = written(tmp_path, snap(telegram_connected=True, queued=3, outbox_depth=2))
    healthy, reason = check(path, now=NOW + timedelta(seconds=4))
    assert healthy
    assert reason == "heartbeat 4 s ago, Telegram connected, 3 queued, 2 deliveries waiting"


@pytest.mark.parametrize(
    ("connected", "depth", "expected"),
    [
        (None, 0, "heartbeat 0 s ago, no Telegram source, 0 queued, 0 deliveries waiting"),
        (True, None, "heartbeat 0 s ago, Telegram connected, 0 queued, ? deliveries waiting"),
    ],
)
def test_healthy_without_telegram_or_outbox_depth(
    tmp_path: Path, connected: bool | None, depth: int | None, expected: str
) -> None:
    path = written(tmp_path, snap(telegram_connected=connected, outbox_depth=depth))
    assert check(path, now=NOW - timedelta(seconds=2)) == (True, expected)  # a clock a little behind: not negative


# --- the file -------------------------------------------------------------------------------------------


def test_snapshot_round_trips_through_json(tmp_path: Path) -> None:
    original = snap(
        telegram_connected=True,
        queued=5,
        catchup_lag_s=1.5,
        flood_waits=2,
        flood_seconds=31.0,
        posts={"chan_one": 3},
        alerts={"violence/sent": 1},
        errors={"store.commit_failed": 1},
    )
    path = written(tmp_path, original)
    assert Snapshot.from_json(json.loads(path.read_text(encoding="utf-8"))) == original


def test_fields_a_newer_tgmon_adds_are_ignored() -> None:
    data = {**snap().to_json(), "future_field": 1}
    assert Snapshot.from_json(data) == snap()


def test_write_is_private_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = written(folder, snap())
    written(folder, snap(queued=1))  # replaced, not appended to
    assert sorted(p.name for p in folder.iterdir()) == [HEARTBEAT_FILE]
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text(encoding="utf-8"))["queued"] == 1


def test_failed_write_leaves_the_last_heartbeat_whole(tmp_path: Path) -> None:
    path = written(tmp_path, snap(queued=1))
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_heartbeat(path, snap(posts={"chan_one": object()}))  # fails half-way through the JSON
    assert path.read_bytes() == before


def test_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    path = written(tmp_path, snap())
    big = {f"channel_{i}": i for i in range(2000)}  # a file of several pages, so a torn write could show
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(check(path, now=NOW)[1])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for queued in range(200):
            write_heartbeat(path, snap(queued=queued, posts=big))
    finally:
        done.set()
        reader.join()
    assert seen
    assert not [reason for reason in seen if "unreadable" in reason or "no heartbeat" in reason]


# --- Heartbeat ------------------------------------------------------------------------------------------


class Probe:
    """Snapshots on demand, counting the calls."""

    def __init__(self, **fields: object) -> None:
        self.fields = fields
        self.calls = 0

    async def __call__(self) -> Snapshot:
        self.calls += 1
        return snap(queued=self.calls, **self.fields)


async def test_beat_writes_the_file_and_tells_the_listeners(tmp_path: Path) -> None:
    heard: list[Snapshot] = []
    path = heartbeat_path(tmp_path)
    heartbeat = Heartbeat(Probe(telegram_connected=True), path, listeners=(heard.append, heard.append))
    first = await heartbeat.beat()
    assert heartbeat.last == first
    assert heard == [first, first]
    assert Snapshot.from_json(json.loads(path.read_text(encoding="utf-8"))) == first
    second = await heartbeat.beat()
    assert second.queued == 2
    assert json.loads(path.read_text(encoding="utf-8"))["queued"] == 2


async def test_unhealthy_beat_is_logged(tmp_path: Path, logs: Logs) -> None:
    await Heartbeat(Probe(telegram_connected=False), heartbeat_path(tmp_path)).beat()
    assert [e["reason"] for e in logs if e["event"] == "health.unhealthy"] == [
        "Telegram not connected: tgmon reconnects by itself; see the logs if this lasts"
    ]


async def test_failed_writes_are_logged_once_per_streak(tmp_path: Path, logs: Logs) -> None:
    folder = tmp_path / "gone"  # missing: every write fails (root ignores a read-only folder's mode)
    heard: list[Snapshot] = []
    heartbeat = Heartbeat(Probe(), heartbeat_path(folder), listeners=(heard.append,))
    for _ in range(3):
        await heartbeat.beat()  # does not raise
    assert len(heard) == 3  # the metrics still get every snapshot
    failed = [e for e in logs if e["event"] == "health.heartbeat_not_written"]
    assert len(failed) == 1
    assert failed[0]["log_level"] == "error"
    assert failed[0]["path"] == str(heartbeat_path(folder))

    folder.mkdir()
    await heartbeat.beat()
    assert json.loads(heartbeat_path(folder).read_text(encoding="utf-8"))["queued"] == 4
    assert [e["event"] for e in logs if e["event"].startswith("health.heartbeat")] == [
        "health.heartbeat_not_written",
        "health.heartbeat_written_again",
    ]

    heartbeat_path(folder).unlink()
    folder.rmdir()
    await heartbeat.beat()  # a new streak: said again
    assert len([e for e in logs if e["event"] == "health.heartbeat_not_written"]) == 2


async def test_run_beats_until_cancelled(tmp_path: Path) -> None:
    probe = Probe()
    task = asyncio.create_task(Heartbeat(probe, heartbeat_path(tmp_path), interval_s=0.01).run())
    for _ in range(500):  # a hang guard, not a speed check
        await asyncio.sleep(0.01)
        if probe.calls >= 3:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert probe.calls >= 3
    assert json.loads(heartbeat_path(tmp_path).read_text(encoding="utf-8"))["queued"] >= 3


async def test_stopped_marks_the_file_and_keeps_the_last_counts(tmp_path: Path) -> None:
    path = heartbeat_path(tmp_path)
    heartbeat = Heartbeat(Probe(telegram_connected=True, posts={"chan_one": 9}), path)
    await heartbeat.beat()
    heartbeat.stopped()
    stopped = Snapshot.from_json(json.loads(path.read_text(encoding="utf-8")))
    assert stopped.state == "stopped"
    assert stopped.posts == {"chan_one": 9}
    assert stopped.at > NOW  # now, not the last beat's time
    healthy, reason = check(path)
    assert not healthy
    assert reason.startswith("tgmon run stopped at ")


def test_stopped_before_any_beat(tmp_path: Path) -> None:
    path = heartbeat_path(tmp_path)
    Heartbeat(Probe(), path).stopped()
    stopped = Snapshot.from_json(json.loads(path.read_text(encoding="utf-8")))
    assert (stopped.state, stopped.pid) == ("stopped", os.getpid())
    assert not check(path)[0]


def test_stopped_into_a_missing_folder_does_not_raise(tmp_path: Path) -> None:
    Heartbeat(Probe(), heartbeat_path(tmp_path / "gone")).stopped()
    assert not (tmp_path / "gone").exists()
