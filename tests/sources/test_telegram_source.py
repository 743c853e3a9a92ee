"""TelegramSource end to end: FakeTelegram → TelegramSource → Pipeline → SQLiteStore + default rules → notifiers.

Live updates, the poll, UpdateChannelTooLong, reconnects, a two-hour outage with edits and deletions
meanwhile, quiet restarts, media files. Each test starts the real pipeline and inspects the archive.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from telethon import errors
from telethon.tl import types

from bot.alerts.notifiers import ConsoleNotifier, JsonlNotifier
from bot.errors import ConfigError
from bot.rules.engine import Engine
from bot.settings import ChannelConfig, Channels
from bot.sources import catchup as catchup_module
from bot.sources import limits as limits_module
from bot.sources import telegram as telegram_module
from bot.sources.catchup import SyncState, cursor_key
from bot.sources.media import MediaDownloader
from tests.helpers import read_jsonl
from tests.sources.fake_telegram import FakeTelegram, flood
from tests.sources.harness import FakeAsyncio, FakeClock, LiveRun, channels_of, count, db, post_at, wait_until

ALARM = "Ракетная опасность! Всем в укрытия"


def world(n: int = 2, posts: int = 3) -> FakeTelegram:
    tg = FakeTelegram()
    for i in range(n):
        tg.add_channel(101 + i, f"region_{i + 1:02d}", f"Регион {i + 1}")
        for k in range(posts):
            tg.post(101 + i, f"новость {k + 1} региона {i + 1}")
    return tg


def live(tg: FakeTelegram, data_dir: Path, engine: Engine, channels: Channels | None = None, **kw: Any) -> LiveRun:
    options = {k: kw.pop(k) for k in list(kw) if k not in ("notifiers", "digest_after")}
    return LiveRun(tg, data_dir, channels or channels_of(tg), engine, source_options=options, **kw)


def edit_update(message: Any) -> Any:
    return types.UpdateEditChannelMessage(message=message, pts=message.id + 1000, pts_count=1)


def delete_update(channel_id: int, *ids: int) -> Any:
    return types.UpdateDeleteChannelMessages(channel_id=channel_id, messages=list(ids), pts=2000, pts_count=len(ids))


# --- live updates ------------------------------------------------------------------------------


async def test_live_post_edit_and_deletion_are_stored(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(1, posts=0)
    run = await live(tg, tmp_data_dir, engine).start()
    history = tg.calls["history"]

    await tg.push_new(101, f"{ALARM} Белгород")
    edited = tg.edit(101, 1, f"{ALARM} Белгород, отбой через час")
    await tg.push(edit_update(edited))
    await tg.push_new(101, "ошибочный пост")
    tg.delete(101, 2)
    await tg.push(delete_update(101, 2))
    await run.idle()
    stats = await run.stop()

    assert db(tmp_data_dir, "SELECT message_id, text, version FROM posts ORDER BY message_id") == [
        (1, f"{ALARM} Белгород, отбой через час", 2),
        (2, "ошибочный пост", 1),
    ]
    assert db(tmp_data_dir, "SELECT message_id, version, text FROM post_versions") == [(1, 1, f"{ALARM} Белгород")]
    assert db(tmp_data_dir, "SELECT channel_id, message_id FROM deletions") == [(101, 2)]
    assert stats.outcomes["new"] == 2
    assert stats.outcomes["edited"] == 1
    assert stats.outcomes["deleted"] == 1
    alerts = read_jsonl(tmp_data_dir / "alerts.jsonl")
    assert [(a["message_id"], a["category"], a["late_s"]) for a in alerts] == [(1, "missile", None)]  # pushed: not late
    assert tg.calls["history"] == history  # everything after the first round came live


async def test_an_alert_raised_by_a_live_edit_says_it_was_an_edit_and_when(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(1, posts=0)
    run = await live(tg, tmp_data_dir, engine).start()

    await tg.push_new(101, "Доброе утро, Белгород")
    edited = tg.edit(101, 1, f"{ALARM} Белгород")
    await tg.push(edit_update(edited))
    await run.idle()
    await run.stop()

    [alert] = read_jsonl(tmp_data_dir / "alerts.jsonl")
    assert alert["category"] == "missile"
    assert alert["edited"] is True
    assert alert["date"] == edited.edit_date.isoformat(timespec="seconds")


async def test_updates_of_unfollowed_channels_are_ignored(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(1, posts=0)
    tg.add_channel(999, "somebody_else", "Чужой канал")
    run = await live(tg, tmp_data_dir, engine, Channels.of([ChannelConfig(username="region_01")])).start()

    await tg.push_new(999, ALARM)
    await tg.push(edit_update(tg.edit(999, 1, ALARM + "!")))
    await tg.push(delete_update(999, 1))
    await tg.push_new(101, "наш пост")
    await run.idle()
    await run.stop()

    assert db(tmp_data_dir, "SELECT channel_id, message_id FROM posts") == [(101, 1)]
    assert count(tmp_data_dir, "deletions") == 0
    assert count(tmp_data_dir, "alerts") == 0
    assert count(tmp_data_dir, "channels", "id = 999") == 0


async def test_a_post_never_pushed_is_picked_up_by_the_poll_within_one_interval(
    tmp_data_dir: Path, engine: Engine
) -> None:
    tg = world(3, posts=1)
    run = await live(tg, tmp_data_dir, engine, poll_interval=0.05).start()
    rounds = run.source.rounds  # type: ignore[union-attr]
    history = tg.calls["history"]

    tg.post(102, "пост, о котором Telegram не сообщил")
    await wait_until(lambda: count(tmp_data_dir, "posts", "channel_id = 102 AND message_id = 2"), 1.0, "the poll")
    await run.settled()
    await run.stop()

    assert run.source.rounds - rounds <= 3  # type: ignore[union-attr]
    assert tg.calls["dialogs"] >= 1
    # Only the changed channel was read: getPeerDialogs said the others had nothing new.
    assert tg.calls["history"] - history == 1


async def test_update_channel_triggers_a_sync_of_that_channel(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(2, posts=1)
    run = await live(tg, tmp_data_dir, engine, poll_interval=60).start()
    calls = tg.calls.copy()

    tg.post(101, "пропущенный пост 1")
    tg.post(101, "пропущенный пост 2")
    await tg.push(types.UpdateChannel(channel_id=101))
    await run.settled()
    await run.stop()

    assert count(tmp_data_dir, "posts", "channel_id = 101") == 3
    assert tg.calls["history"] - calls["history"] == 1  # that channel only
    assert tg.calls["dialogs"] == calls["dialogs"]  # not the poll: the update asked for it


async def test_channel_going_private_while_followed_is_marked_unavailable_and_the_rest_carry_on(
    tmp_data_dir: Path, engine: Engine
) -> None:
    tg = world(2, posts=1)
    run = await live(tg, tmp_data_dir, engine, poll_interval=60).start()

    tg.channels[101].private = True
    await tg.push(types.UpdateChannel(channel_id=101))
    await run.settled()
    await tg.push_new(102, "жив")
    await tg.push_new(101, "уже не наш")  # updates of a channel no longer followed are dropped
    await run.idle()
    await run.stop()

    [(available, reason)] = db(tmp_data_dir, "SELECT available, unavailable_reason FROM channels WHERE id = 101")
    assert available == 0
    assert reason == "private, or the account was banned from it"
    assert 101 not in run.source.registry.followed  # type: ignore[union-attr]
    assert count(tmp_data_dir, "posts", "channel_id = 102") == 2
    assert count(tmp_data_dir, "posts", "channel_id = 101") == 1  # its history stays


async def test_a_revoked_session_ends_the_run_with_a_config_error(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(1, posts=1)
    tg.fail("history", errors.AuthKeyUnregisteredError(request=None))
    run = live(tg, tmp_data_dir, engine)

    await run.start(wait_first_round=False)
    assert run.task is not None
    assert run.store is not None
    with pytest.raises(ConfigError, match="tgmon login"):
        await run.task
    await run.store.close()


async def test_stopping_removes_the_update_handler_and_the_reconnect_listener(
    tmp_data_dir: Path, engine: Engine
) -> None:
    tg = world(1, posts=0)
    run = await live(tg, tmp_data_dir, engine).start()
    assert len(tg.handlers) == 1
    assert len(tg.reconnect_listeners) == 1

    await run.stop()

    assert tg.handlers == []
    assert tg.reconnect_listeners == []


async def test_the_start_paces_resolves_and_history_reads_each_through_one_pacer(
    tmp_data_dir: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    fake = FakeAsyncio(clock)
    monkeypatch.setattr(limits_module, "asyncio", fake)  # the Pacer's sleeps and clock
    monkeypatch.setattr(limits_module, "time", clock)
    tg = world(3, posts=2)

    run = await live(tg, tmp_data_dir, engine, resolve_pace_s=1.0, history_pace_s=0.35).start()
    await run.stop()

    resolves = tg.calls["resolve"] + tg.calls["join"]
    reads = tg.calls["history"] + tg.calls["by_ids"] + tg.calls["dialogs"]
    assert (tg.calls["resolve"], tg.calls["join"], tg.calls["history"]) == (3, 3, 6)
    # Each pacer lets its first request through at once and spaces every other one: 1 s apart, 0.35 s apart.
    assert fake.sleeps == pytest.approx([1.0] * (resolves - 1) + [0.35] * (reads - 1))


# --- reconnects --------------------------------------------------------------------------------


async def test_posts_made_while_disconnected_are_read_after_the_watchdog_reconnects(
    tmp_data_dir: Path, engine: Engine
) -> None:
    tg = world(2, posts=1)
    run = await live(tg, tmp_data_dir, engine, poll_interval=60).start()

    tg.post(101, "пока связи не было")  # never pushed: the connection was down
    tg.post(102, "и здесь тоже")
    tg.drop_connection()
    await run.settled()
    await run.stop()

    assert tg.calls["connect"] == 1
    assert count(tmp_data_dir, "posts") == 4
    assert db(tmp_data_dir, "SELECT text FROM posts WHERE message_id = 2 ORDER BY channel_id") == [
        ("пока связи не было",),
        ("и здесь тоже",),
    ]


async def test_posts_made_while_telethon_reconnected_by_itself_are_read(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(2, posts=1)
    run = await live(tg, tmp_data_dir, engine, poll_interval=60).start()

    tg.post(102, "пропало при переподключении")
    tg.auto_reconnected()
    await run.settled()
    await run.stop()

    assert tg.calls["connect"] == 0  # Telethon did it
    assert db(tmp_data_dir, "SELECT channel_id, message_id FROM posts WHERE message_id = 2") == [(102, 2)]


async def test_failed_reconnects_back_off_then_catch_up(
    tmp_data_dir: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAsyncio()
    monkeypatch.setattr(telegram_module, "asyncio", fake)
    tg = world(1, posts=1)
    tg.fail("connect", OSError("network unreachable"), TimeoutError(), None)
    run = await live(tg, tmp_data_dir, engine, poll_interval=60).start()

    tg.post(101, "после трёх попыток")
    tg.drop_connection()
    await run.settled()
    await run.stop()

    assert tg.calls["connect"] == 3
    assert fake.sleeps[:2] == [1.0, 2.0]
    assert count(tmp_data_dir, "posts") == 2


async def test_a_catch_up_round_cut_by_the_network_is_retried_as_a_refresh(
    tmp_data_dir: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_module, "asyncio", FakeAsyncio())  # network backoffs recorded, not slept
    tg = FakeTelegram()
    tg.add_channel(101, "region_01", "Регион 1")
    post_at(tg, 101, "пост 1", datetime.now(UTC) - timedelta(minutes=5))
    run = await live(tg, tmp_data_dir, engine, poll_interval=0.02).start()

    tg.edit(101, 1, "пост 1 (исправлено, пока не было связи)")  # never pushed
    tg.fail("by_ids", *[OSError("network is unreachable")] * limits_module.RETRIES)
    tg.auto_reconnected()
    await wait_until(lambda: tg.calls["by_ids"] >= limits_module.RETRIES, what="the refresh to fail")
    await run.settled(run.source.rounds + 3)  # type: ignore[union-attr]
    await run.stop()

    assert count(tmp_data_dir, "post_versions") == 1


# --- a two-hour outage -------------------------------------------------------------------------


class _Then(datetime):
    """catch-up's clock during the first run: two hours ago (the outage is simulated, not slept)."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) - timedelta(hours=2)


async def test_two_hour_outage_with_1000_posts_edits_and_deletions_is_caught_up_exactly_once(
    tmp_data_dir: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tg = FakeTelegram()
    ids = list(range(2001, 2021))
    for n, cid in enumerate(ids, 1):
        tg.add_channel(cid, f"region_{n:02d}", f"Регион {n}")
    stopped = datetime.now(UTC) - timedelta(hours=2)
    for cid in ids:
        for k in range(1, 6):
            post_at(tg, cid, f"до остановки {k}", stopped - timedelta(minutes=6 - k))
    post_at(tg, 2001, f"{ALARM} (до остановки)", stopped - timedelta(seconds=20))
    channels = channels_of(tg)

    # First run, two hours ago; then the service stops.
    monkeypatch.setattr(catchup_module, "datetime", _Then)
    first = await live(tg, tmp_data_dir, engine, channels).start()
    first_stats = await first.stop()
    monkeypatch.setattr(catchup_module, "datetime", datetime)
    assert first_stats.outcomes["new"] == 101
    assert count(tmp_data_dir, "alerts") == 1

    # The outage: 1000 posts over two hours, edits and deletions of earlier posts, two posts deleted unseen.
    for i in range(1000):
        text = f"{ALARM} Сообщение {i}" if i % 25 == 0 else f"Обычная новость номер {i}"
        post_at(tg, ids[i % 20], text, stopped + timedelta(seconds=7 * (i + 1)))
    for cid in ids[:10]:
        tg.edit(cid, 3, "до остановки 3 (исправлено)")
    tg.edit(ids[10], 2, f"{ALARM} (обновлено)")
    for cid in ids[11:16]:
        tg.delete(cid, 4)
    tg.delete(ids[16], 5 + 3)  # the third post of the outage in these two channels
    tg.delete(ids[17], 5 + 3)

    # The restart: a fresh source over the same data directory.
    screen = io.StringIO()
    console = ConsoleNotifier(Console(file=screen, width=240, color_system=None))
    second = live(
        tg, tmp_data_dir, engine, channels, digest_after=60,
        notifiers=[console, JsonlNotifier(tmp_data_dir / "alerts.jsonl")],
    )  # fmt: skip
    await second.start()
    stats = await second.stop()

    assert count(tmp_data_dir, "posts") == 101 + 1000 - 2
    assert db(tmp_data_dir, "SELECT count(*) FROM (SELECT 1 FROM posts GROUP BY channel_id, message_id)")[0][0] == 1099
    assert stats.outcomes["new"] == 998  # each outage post stored once, nothing stored twice
    assert stats.outcomes["edited"] == 11
    assert stats.outcomes["deleted"] == 5
    assert count(tmp_data_dir, "post_versions") == 11
    assert sorted(db(tmp_data_dir, "SELECT channel_id, message_id FROM deletions")) == [(c, 4) for c in ids[11:16]]
    assert sorted(db(tmp_data_dir, "SELECT channel_id, message_id FROM absent_messages")) == [
        (ids[16], 8),
        (ids[17], 8),
    ]
    for cid in ids:
        assert SyncState.parse(db(tmp_data_dir, "SELECT value FROM cursors WHERE source = ?", [cursor_key(cid)])[0][0])

    late = [a for a in read_jsonl(tmp_data_dir / "alerts.jsonl") if a["late_s"] is not None]
    # 40 outage posts and the edit; the first outage alarm of region 1 came 27 s after its alarm
    # before the stop: the 60 s cooldown holds it back (stored, not sent).
    assert stats.alerts["missile"] == 40
    assert stats.suppressed == {"cooldown": 1}
    assert len(late) == 41  # the first run read its alarm from history too
    caught_up = read_jsonl(tmp_data_dir / "alerts.jsonl")[1:]
    assert len(caught_up) == 40
    assert all(a["late_s"] is not None and a["late_s"] > 0 for a in caught_up)
    assert max(a["late_s"] for a in caught_up) >= 7000
    assert "late alerts" in screen.getvalue()
    digest_lines = [line for line in screen.getvalue().splitlines() if "late alerts" in line]
    # Runs of late alerts go as digests; one that comes alone in a delivery batch goes as itself.
    assert sum(int(line.split("late alerts")[0].split()[-1]) for line in digest_lines) >= 20
    assert screen.getvalue().count("MISSILE") == 40, screen.getvalue()

    # A second restart with nothing new raises nothing again.
    alerts_before = count(tmp_data_dir, "alerts")
    lines_before = len(read_jsonl(tmp_data_dir / "alerts.jsonl"))
    screen2 = io.StringIO()
    third = live(
        tg, tmp_data_dir, engine, channels, digest_after=60,
        notifiers=[ConsoleNotifier(Console(file=screen2)), JsonlNotifier(tmp_data_dir / "alerts.jsonl")],
    )  # fmt: skip
    await third.start()
    third_stats = await third.stop()

    assert third_stats.outcomes["new"] == 0
    assert third_stats.alerts.total() == 0
    assert count(tmp_data_dir, "alerts") == alerts_before
    assert len(read_jsonl(tmp_data_dir / "alerts.jsonl")) == lines_before
    assert screen2.getvalue() == ""


async def test_quiet_restart_asks_dialogs_only_and_reads_no_history(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(4, posts=3)
    first = await live(tg, tmp_data_dir, engine).start()
    await first.stop()
    tg.calls.clear()

    second = await live(tg, tmp_data_dir, engine, poll_interval=0.02).start()
    assert tg.calls["history"] == 0  # the start round: getPeerDialogs said no channel moved
    assert tg.calls["dialogs"] >= 1
    assert tg.calls["by_ids"] == 0  # stored posts are older than the refresh window
    assert tg.calls["resolve"] == 0

    rounds = second.source.rounds  # type: ignore[union-attr]
    await second.settled(rounds + 4)
    assert tg.calls["history"] == 0  # nor since
    assert tg.calls["dialogs"] >= 5

    tg.post(103, "новое")
    await wait_until(lambda: count(tmp_data_dir, "posts", "channel_id = 103") == 4, 1.0, "the new post")
    stats = await second.stop()
    assert tg.calls["history"] == 1  # one page, of the changed channel only
    assert stats.outcomes["new"] == 1


async def test_channels_not_joined_are_read_each_poll(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(2, posts=1)
    channels = Channels.of([ChannelConfig(username="region_01"), ChannelConfig(username="region_02", join=False)])
    run = await live(tg, tmp_data_dir, engine, channels, poll_interval=0.02).start()
    assert tg.calls["join"] == 1

    tg.post(102, "без подписки")
    await wait_until(lambda: count(tmp_data_dir, "posts", "channel_id = 102") == 2, 1.0, "the polled post")
    await run.stop()


# --- media -------------------------------------------------------------------------------------


def document(size: int, mime: str = "application/pdf", doc_id: int = 77) -> Any:
    return types.MessageMediaDocument(
        document=types.Document(
            id=doc_id, access_hash=1, file_reference=b"ref", date=datetime(2024, 3, 12, tzinfo=UTC), mime_type=mime,
            size=size, dc_id=2, attributes=[types.DocumentAttributeFilename("приказ.pdf")],
        )
    )  # fmt: skip


def media_run(tg: FakeTelegram, data_dir: Path, engine: Engine, cap: int, **kw: Any) -> LiveRun:
    channels = Channels.of(
        [ChannelConfig(username="region_01", download_media=True), ChannelConfig(username="region_02")]
    )
    return live(
        tg, data_dir, engine, channels, media=lambda store: MediaDownloader(tg, data_dir, cap, store.write), **kw
    )


async def test_media_of_a_channel_that_wants_files_is_downloaded_hashed_and_recorded(
    tmp_data_dir: Path, engine: Engine
) -> None:
    tg = world(2, posts=0)
    run = await media_run(tg, tmp_data_dir, engine, cap=1024).start()

    await tg.push_new(101, "документ", media=document(20))
    await tg.push_new(102, "документ в канале без файлов", media=document(20, doc_id=78))
    await wait_until(lambda: count(tmp_data_dir, "media_files") == 1, what="the file")
    await run.stop()

    [(cid, mid, path, digest, size)] = db(
        tmp_data_dir, "SELECT channel_id, message_id, path, sha256, size FROM media_files"
    )
    assert (cid, mid) == (101, 1)
    assert path == "media/101/1.pdf"
    file = tmp_data_dir / path
    assert file.read_bytes() == b"file of message 1"
    assert digest == hashlib.sha256(file.read_bytes()).hexdigest()
    assert size == file.stat().st_size
    assert not list((tmp_data_dir / "media").rglob("*.part"))
    assert not (tmp_data_dir / "media" / "102").exists()
    assert count(tmp_data_dir, "media", "channel_id = 102") == 1  # metadata is kept for every channel


async def test_media_over_the_cap_is_skipped_with_its_metadata_kept(tmp_data_dir: Path, engine: Engine) -> None:
    tg = world(2, posts=0)
    run = await media_run(tg, tmp_data_dir, engine, cap=10).start()

    await tg.push_new(101, "огромное видео", media=document(50 * 1024 * 1024, "video/mp4"))
    await tg.push_new(101, "размер не указан верно", media=document(5))  # says 5 bytes, is 17
    await wait_until(lambda: run.source.media.skipped == 2, what="both skipped")  # type: ignore[union-attr]
    await run.stop()

    assert tg.calls["download"] == 1  # the first was never asked for
    assert count(tmp_data_dir, "media_files") == 0
    assert not [p for p in (tmp_data_dir / "media").rglob("*") if p.is_file()]
    assert count(tmp_data_dir, "media", "channel_id = 101") == 2


async def test_a_flood_wait_during_a_download_is_waited_out_and_the_file_kept(
    tmp_data_dir: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAsyncio()
    monkeypatch.setattr(limits_module, "asyncio", fake)
    tg = world(2, posts=0)
    tg.fail("download", flood(40))
    run = await media_run(tg, tmp_data_dir, engine, cap=1024).start()

    await tg.push_new(101, "документ", media=document(20))
    await wait_until(lambda: count(tmp_data_dir, "media_files") == 1, what="the file")
    await run.stop()

    assert 40 in fake.sleeps
    assert tg.calls["download"] == 2


async def test_a_premium_flood_wait_during_a_download_is_waited_out_too(
    tmp_data_dir: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAsyncio()
    monkeypatch.setattr(limits_module, "asyncio", fake)
    tg = world(2, posts=0)
    tg.fail("download", errors.FloodPremiumWaitError(request=None, capture=7))
    run = await media_run(tg, tmp_data_dir, engine, cap=1024).start()

    await tg.push_new(101, "документ", media=document(20))
    media = run.source.media  # type: ignore[union-attr]
    await wait_until(lambda: media.downloaded + media.skipped >= 1, what="the download's outcome")
    await run.idle()
    await run.stop()

    assert count(tmp_data_dir, "media_files") == 1


async def test_a_file_seen_live_and_then_read_by_the_poll_is_downloaded_once(
    tmp_data_dir: Path, engine: Engine
) -> None:
    tg = world(2, posts=0)
    run = await media_run(tg, tmp_data_dir, engine, cap=1024, poll_interval=0.02).start()

    await tg.push_new(101, "документ", media=document(20))
    await wait_until(lambda: count(tmp_data_dir, "media_files") == 1, what="the file")
    await run.settled(run.source.rounds + 3)  # type: ignore[union-attr]
    media = run.source.media  # type: ignore[union-attr]
    # Whatever the rounds offered is queued by now: wait until it is all fetched (or skipped).
    await wait_until(lambda: media.pending() == 0 and media.downloaded + media.skipped == tg.calls["download"])
    await run.stop()

    assert tg.calls["download"] == 1
