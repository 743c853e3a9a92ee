"""Recordings: `tgmon run --record FILE` writes raw TL objects, `tgmon replay FILE` rebuilds the same archive."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from telethon.tl import types
from typer.testing import CliRunner

from bot.alerts.notifiers import JsonlNotifier
from bot.alerts.outbox import Dispatcher
from bot.cli import app
from bot.pipeline import Pipeline
from bot.rules.engine import Engine
from bot.rules.loader import load_rules
from bot.sources.recording import Recorder
from bot.sources.replay import ReplaySource, detect_format
from bot.store.sqlite import open_store
from tests.helpers import read_jsonl
from tests.sources.fake_telegram import FakeTelegram
from tests.sources.harness import LiveRun, channels_of, db, post_at, wait_until

RUNNER = CliRunner()
ALARM = "Ракетная опасность! Всем в укрытия"
# One regex rule: loads in milliseconds, where the default pack's morphology takes a second per CLI run.
RULES = '[[rule]]\nid = "missile"\ncategory = "missile"\nseverity = "high"\nregex = ["ракетная опасность"]\n'


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    return path


@pytest.fixture
def engine(rules: Path) -> Engine:
    return load_rules(rules)


def world() -> FakeTelegram:
    tg = FakeTelegram()
    tg.add_channel(101, "region_01", "Регион 1")
    tg.add_channel(102, "region_02", "Регион 2")
    tg.post(101, "история 1")
    tg.post(101, "история 2", media=types.MessageMediaGeo(types.GeoPoint(36.6, 50.6, 1)))
    tg.post(102, "история канала 2")
    return tg


async def live_session(tg: FakeTelegram, data_dir: Path, engine: Engine, recording: Path) -> None:
    """A short `tgmon run --record`: history read at start, pushed posts, an edit, a deletion, a polled post."""
    recorder = Recorder(recording)
    run = LiveRun(tg, data_dir, channels_of(tg), engine, source_options={"recorder": recorder, "poll_interval": 0.02})
    await run.start()
    await tg.push_new(101, f"{ALARM} Белгород")
    await tg.push(types.UpdateEditChannelMessage(tg.edit(101, 1, "история 1, исправленная"), pts=10, pts_count=1))
    await tg.push_new(102, "удалят через минуту")
    tg.delete(102, 2)
    await tg.push(types.UpdateDeleteChannelMessages(channel_id=102, messages=[2], pts=11, pts_count=1))
    tg.post(102, f"{ALARM} Курск (не пришло живьём)")
    await wait_until(lambda: db(data_dir, "SELECT 1 FROM posts WHERE channel_id = 102 AND message_id = 3"))
    await run.settled()
    await run.stop()
    recorder.close()


def archive(data_dir: Path) -> dict[str, Any]:
    """What an archive holds, without the moments it was written at."""
    return {
        "posts": db(
            data_dir,
            "SELECT channel_id, message_id, date, edit_date, text, entities, version, reply_to, forward_from"
            " FROM posts ORDER BY 1, 2",
        ),
        "versions": db(
            data_dir, "SELECT channel_id, message_id, version, edit_date, text FROM post_versions ORDER BY 1, 2, 3"
        ),
        "deletions": db(data_dir, "SELECT channel_id, message_id FROM deletions ORDER BY 1, 2"),
        "media": db(data_dir, "SELECT channel_id, message_id, position, kind FROM media ORDER BY 1, 2, 3"),
        "channels": db(data_dir, "SELECT id, username, title FROM channels ORDER BY id"),
        "alerts": db(data_dir, "SELECT id, channel_id, message_id, category FROM alerts ORDER BY id"),
    }


async def replay_into(
    paths: list[Path], data_dir: Path, engine: Engine, wanted: Any = None
) -> tuple[ReplaySource, dict[str, Any]]:
    store = await open_store(data_dir)
    try:
        source = ReplaySource(paths, wanted=wanted)
        dispatcher = Dispatcher(store, [JsonlNotifier(data_dir / "alerts.jsonl")])
        await Pipeline(store, engine, dispatcher).run(source)
        return source, await store.stats()
    finally:
        await store.close()


def config_dir(tmp_path: Path, toml: str) -> Path:
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    (folder / "channels.toml").write_text(toml, encoding="utf-8")
    return folder


def tgmon_replay(recording: Path, data_dir: Path, config: Path, *extra: str) -> Any:
    rules = config.parent / "rules.toml"
    if not rules.exists():
        rules.write_text(RULES, encoding="utf-8")
    return RUNNER.invoke(
        app,
        ["replay", str(recording), "--data-dir", str(data_dir), "--config-dir", str(config), "--rules", str(rules),
         "--no-progress", *extra],
        env={"TGMON_NOTIFIERS": "jsonl"},
        catch_exceptions=False,
    )  # fmt: skip


# --- record, then replay -----------------------------------------------------------------------


def test_tgmon_replay_of_a_recording_rebuilds_the_live_archive(tmp_path: Path, engine: Engine) -> None:
    tg = world()
    recording = tmp_path / "traffic.jsonl"
    live_dir, replay_dir = tmp_path / "live", tmp_path / "replayed"
    asyncio.run(live_session(tg, live_dir, engine, recording))

    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert all(set(line) == {"received_at", "tl"} for line in lines)
    assert detect_format(recording) == "tl"

    result = tgmon_replay(recording, replay_dir, config_dir(tmp_path, ""))

    assert result.exit_code == 0, result.output
    live, replayed = archive(live_dir), archive(replay_dir)
    assert replayed == live
    assert live["versions"]
    assert live["deletions"] == [(102, 2)]
    assert len(live["alerts"]) == 2
    assert live["media"] == [(101, 2, 0, "geo")]
    assert {a["id"] for a in read_jsonl(replay_dir / "alerts.jsonl")} == {a[0] for a in live["alerts"]}


async def test_replaying_a_recording_twice_changes_nothing(tmp_path: Path, engine: Engine) -> None:
    tg = world()
    recording = tmp_path / "traffic.jsonl"
    await live_session(tg, tmp_path / "live", engine, recording)

    _, first = await replay_into([recording], tmp_path / "replayed", engine)
    again, second = await replay_into([recording], tmp_path / "replayed", engine)

    assert again.counters.events == 0  # resumed past the end of the file
    for key in ("posts", "edits", "deletions", "alerts", "channels"):
        assert second[key] == first[key]


def test_only_configured_drops_channels_not_in_channels_toml(tmp_path: Path, engine: Engine) -> None:
    tg = world()
    recording = tmp_path / "traffic.jsonl"
    asyncio.run(live_session(tg, tmp_path / "live", engine, recording))
    config = config_dir(tmp_path, '# only Belgorod\n[[channel]]\nid = 101\ntitle = "Регион 1"\n')

    result = tgmon_replay(recording, tmp_path / "replayed", config, "--only-configured")

    assert result.exit_code == 0, result.output
    replayed = archive(tmp_path / "replayed")
    assert {p[0] for p in replayed["posts"]} == {101}
    assert replayed["deletions"] == []  # the deletion was in 102
    assert [row for row in archive(tmp_path / "live")["posts"] if row[0] == 101] == replayed["posts"]


def test_only_configured_keeps_channels_listed_by_username(tmp_path: Path, engine: Engine) -> None:
    tg = world()
    recording = tmp_path / "traffic.jsonl"
    asyncio.run(live_session(tg, tmp_path / "live", engine, recording))
    config = config_dir(tmp_path, '[[channel]]\nusername = "region_01"\n')

    result = tgmon_replay(recording, tmp_path / "replayed", config, "--only-configured")

    assert result.exit_code == 0, result.output
    assert {p[0] for p in archive(tmp_path / "replayed")["posts"]} == {101}


async def test_a_corrupted_line_is_counted_bad_and_logged_not_a_crash(tmp_path: Path, engine: Engine) -> None:
    recording = tmp_path / "traffic.jsonl"
    tg = world()
    recorder = Recorder(recording)
    recorder.message(tg.channels[101].messages[1], tg.channels[101].entity())  # 2 lines: the channel, the message
    recorder.close()
    with recording.open("a", encoding="utf-8") as handle:
        handle.write('{"received_at": "2024-03-12T05:00:00.000+00:00", "tl": "not base64!!"}\n')
        garbage = base64.b64encode(b"\x01\x02\x03\x04garbage").decode()
        handle.write(f'{{"received_at": "2024-03-12T05:00:00.000+00:00", "tl": "{garbage}"}}\n')
        handle.write("{truncated json\n")
    recorder = Recorder(recording)
    recorder.message(tg.channels[101].messages[2], tg.channels[101].entity())
    recorder.close()

    with capture_logs() as logs:
        source, stats = await replay_into([recording], tmp_path / "replayed", engine)

    assert source.counters.bad == 3
    assert stats["posts"] == 2  # the lines around the bad ones were replayed
    bad = [entry for entry in logs if entry["event"] == "replay.bad_record"]
    assert [entry["line"] for entry in bad] == [3, 4, 5]
    assert all(entry["file"] == str(recording.resolve()) for entry in bad)
    assert "not a serialized Telethon object" in bad[0]["error"]
    assert "not a serialized Telethon object" in bad[1]["error"]
    assert "not valid JSON" in bad[2]["error"]


def test_tgmon_replay_reports_bad_lines_in_its_summary(tmp_path: Path) -> None:
    recording = tmp_path / "traffic.jsonl"
    tg = world()
    recorder = Recorder(recording)
    recorder.message(tg.channels[101].messages[1], tg.channels[101].entity())
    recorder.close()
    with recording.open("a") as handle:
        handle.write('{"received_at": "2024-03-12T05:00:00.000+00:00", "tl": "AAAA"}\n')

    result = tgmon_replay(recording, tmp_path / "replayed", config_dir(tmp_path, ""))

    assert result.exit_code == 0, result.output
    assert "1 bad records" in result.stderr
    assert '"replay.bad_record"' in result.stderr
    assert db(tmp_path / "replayed", "SELECT channel_id, message_id, text FROM posts") == [(101, 1, "история 1")]


async def test_a_replayed_deletion_keeps_the_time_it_was_recorded(tmp_path: Path, engine: Engine) -> None:
    recording = tmp_path / "traffic.jsonl"
    when = datetime(2024, 3, 12, 5, 41, tzinfo=UTC)
    deletion = types.UpdateDeleteChannelMessages(channel_id=101, messages=[7], pts=1, pts_count=1)
    updates = types.Updates(updates=[deletion], users=[], chats=[], date=when, seq=0)  # as Recorder.update wraps it
    line = {"received_at": when.isoformat(timespec="milliseconds"), "tl": base64.b64encode(bytes(updates)).decode()}
    recording.write_text(json.dumps(line) + "\n")

    await replay_into([recording], tmp_path / "replayed", engine)

    [(deleted_at,)] = db(tmp_path / "replayed", "SELECT deleted_at FROM deletions")
    assert datetime.fromisoformat(deleted_at) == when


async def test_deletions_found_while_catching_up_are_in_the_recording(tmp_path: Path, engine: Engine) -> None:
    tg = FakeTelegram()
    tg.add_channel(101, "region_01", "Регион 1")
    recent = datetime.now(UTC) - timedelta(minutes=5)
    for k in range(3):
        post_at(tg, 101, f"пост {k + 1}", recent + timedelta(minutes=k))
    recording, live_dir = tmp_path / "traffic.jsonl", tmp_path / "live"
    for _ in range(2):  # a run, a deletion while stopped, a restart (both recorded to the same file)
        recorder = Recorder(recording)
        run = LiveRun(tg, live_dir, channels_of(tg), engine, source_options={"recorder": recorder})
        await run.start()
        await run.stop()
        recorder.close()
        tg.delete(101, 2)
    assert db(live_dir, "SELECT channel_id, message_id FROM deletions") == [(101, 2)]

    await replay_into([recording], tmp_path / "replayed", engine)

    assert db(tmp_path / "replayed", "SELECT channel_id, message_id FROM deletions") == [(101, 2)]
