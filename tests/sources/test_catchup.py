"""CatchUp.sync: forward reads from the cursor, FloodWait and network errors, first follow, gaps, refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telethon import errors

from bot.models import Deletion, Post
from bot.sources import SourceItem
from bot.sources import limits as limits_module
from bot.sources.catchup import CatchUp, SyncState, cursor_key
from bot.sources.channels import Followed
from bot.sources.limits import RETRIES, ChannelGone, FloodStats, Pacer, Requests
from bot.sources.tl import message_to_post
from bot.store.sqlite import SQLiteStore
from tests.sources.fake_telegram import FakeTelegram, flood
from tests.sources.harness import FakeAsyncio, count, db, followed, post_at

CID = 1001


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> FakeAsyncio:
    """FloodWaits and backoffs in catch-up (and the pacer) are recorded, not slept."""
    fake = FakeAsyncio()
    monkeypatch.setattr(limits_module, "asyncio", fake)
    return fake


def world(posts: int = 0) -> FakeTelegram:
    tg = FakeTelegram()
    tg.add_channel(CID, "chan_one", "Channel One", left=False)
    for i in range(1, posts + 1):
        tg.post(CID, f"пост {i}")
    return tg


def make(tg: FakeTelegram, store: SQLiteStore, **options: Any) -> tuple[CatchUp, FloodStats]:
    stats = FloodStats()
    return CatchUp(tg, store, Requests(Pacer(0), stats), **options), stats


async def run(
    catchup: CatchUp, target: Followed, state: SyncState, store: SQLiteStore, *, refresh: bool = False
) -> list[SourceItem]:
    """One sync, its events stored and its cursor kept, as the pipeline would."""
    items = [item async for item in catchup.sync(target, state, refresh=refresh)]
    events = [item.event for item in items if item.event is not None]
    cursor = items[-1].cursor
    assert cursor is not None
    assert items[-1].event is None

    def job(tx: Any) -> None:
        if events:
            tx.apply(events)
        tx.set_cursor(cursor.source, cursor.value)

    await store.write(job)
    return items


def post_ids(items: list[SourceItem]) -> list[int]:
    return [item.event.message_id for item in items if isinstance(item.event, Post)]


async def store_messages(store: SQLiteStore, target: Followed, messages: list[Any]) -> None:
    posts = [message_to_post(m, target.channel) for m in messages]
    await store.write(lambda tx: tx.apply([p for p in posts if p is not None]))


def synced(max_id: int = 0, floor: int = 0, ago: timedelta = timedelta(hours=1)) -> SyncState:
    return SyncState(max_id, floor, datetime.now(UTC) - ago)


# --- forward -----------------------------------------------------------------------------------


async def test_forward_read_from_the_cursor_in_pages_of_100(store: SQLiteStore) -> None:
    tg = world(250)
    catchup, _ = make(tg, store)
    state = synced(0)

    items = await run(catchup, followed(tg, CID), state, store)

    assert tg.calls["history"] == 3
    assert post_ids(items) == list(range(1, 251))
    assert state.max_id == 250
    saved = SyncState.parse(await store.get_cursor(cursor_key(CID)))
    assert (saved.max_id, saved.floor) == (250, 0)
    assert count(store.path.parent, "posts") == 250
    # Every post carries the cursor just past it: a crash mid-read resumes after the last stored post.
    assert [SyncState.parse(i.cursor.value).max_id for i in items[:3] if i.cursor] == [1, 2, 3]


async def test_forward_read_resumes_after_the_cursor_and_reads_only_what_is_new(store: SQLiteStore) -> None:
    tg = world(30)
    target = followed(tg, CID)
    await store_messages(store, target, [m for i, m in tg.channels[CID].messages.items() if i <= 25])
    catchup, _ = make(tg, store)
    state = synced(25)

    items = await run(catchup, target, state, store)

    assert post_ids(items) == [26, 27, 28, 29, 30]
    assert tg.calls["history"] == 1
    assert tg.calls["by_ids"] == 0  # 1..25 are stored: no gap
    assert state.max_id == 30


async def test_flood_wait_in_the_middle_of_a_backfill_resumes_from_the_last_id(
    store: SQLiteStore, sleeps: FakeAsyncio
) -> None:
    tg = world(250)
    tg.fail("history", None, flood(30))
    catchup, stats = make(tg, store)
    state = synced(0)

    items = await run(catchup, followed(tg, CID), state, store)

    assert post_ids(items) == list(range(1, 251))  # every post exactly once, in order
    assert tg.calls["history"] == 4  # page 2 asked twice
    assert (stats.waits, stats.seconds, stats.by_request) == (1, 30, {"history": 1})
    assert 30 in sleeps.sleeps
    assert state.max_id == 250
    assert count(store.path.parent, "posts") == 250


async def test_network_errors_back_off_then_the_read_succeeds(store: SQLiteStore, sleeps: FakeAsyncio) -> None:
    tg = world(5)
    tg.fail("history", OSError("connection reset"), ConnectionError("closed"), errors.ServerError(None, "500"))
    catchup, stats = make(tg, store)

    items = await run(catchup, followed(tg, CID), synced(0), store)

    assert post_ids(items) == [1, 2, 3, 4, 5]
    assert sleeps.sleeps == [1.0, 2.0, 4.0]  # exponential backoff
    assert stats.waits == 0  # network errors are not FloodWaits


async def test_network_errors_give_up_after_the_retries_with_a_connection_error(
    store: SQLiteStore, sleeps: FakeAsyncio
) -> None:
    tg = world(5)
    tg.fail("history", *[OSError("down")] * RETRIES)
    catchup, _ = make(tg, store)

    with pytest.raises(ConnectionError, match="no answer after"):
        await run(catchup, followed(tg, CID), synced(0), store)
    assert tg.calls["history"] == RETRIES
    assert max(sleeps.sleeps) <= limits_module.BACKOFF_CAP_S


async def test_channel_gone_private_stops_the_sync_with_channel_gone(store: SQLiteStore) -> None:
    tg = world(5)
    catchup, _ = make(tg, store)
    target = followed(tg, CID)
    tg.channels[CID].private = True

    with pytest.raises(ChannelGone, match="private") as raised:
        await run(catchup, target, synced(0), store)
    assert raised.value.reason == "private, or the account was banned from it"


async def test_other_rpc_errors_are_not_swallowed(store: SQLiteStore) -> None:
    tg = world(5)
    tg.fail("history", errors.ChatAdminRequiredError(request=None))
    catchup, _ = make(tg, store)

    with pytest.raises(errors.ChatAdminRequiredError):
        await run(catchup, followed(tg, CID), synced(0), store)


# --- first follow ------------------------------------------------------------------------------


async def test_initial_backfill_0_starts_at_the_newest_post_and_reads_only_what_comes_after(
    store: SQLiteStore,
) -> None:
    tg = world(30)
    catchup, _ = make(tg, store, initial_backfill=0)
    state = SyncState()

    first = await run(catchup, followed(tg, CID), state, store)
    tg.post(CID, "новый")
    second = await run(catchup, followed(tg, CID), state, store)

    assert post_ids(first) == []
    assert (state.floor, state.max_id) == (30, 31)
    assert post_ids(second) == [31]
    assert tg.calls["by_ids"] == 0  # older history is not wanted, so it is no gap


async def test_initial_backfill_10_reads_the_latest_10_and_treats_older_history_as_no_gap(
    store: SQLiteStore,
) -> None:
    tg = world(30)
    catchup, _ = make(tg, store, initial_backfill=10)
    state = SyncState()

    items = await run(catchup, followed(tg, CID), state, store)
    again = await run(catchup, followed(tg, CID), state, store)

    assert post_ids(items) == list(range(21, 31))
    assert (state.floor, state.max_id) == (20, 30)
    assert post_ids(again) == []
    assert tg.calls["by_ids"] == 0
    assert count(store.path.parent, "posts") == 10


async def test_initial_backfill_minus_1_reads_the_whole_history(store: SQLiteStore) -> None:
    tg = world(130)
    catchup, _ = make(tg, store, initial_backfill=-1)
    state = SyncState()

    items = await run(catchup, followed(tg, CID), state, store)

    assert post_ids(items) == list(range(1, 131))
    assert (state.floor, state.max_id) == (0, 130)


async def test_initial_backfill_over_a_page_reads_forward_from_its_floor(store: SQLiteStore) -> None:
    tg = world(300)
    catchup, _ = make(tg, store, initial_backfill=150)
    state = SyncState()

    items = await run(catchup, followed(tg, CID), state, store)

    assert post_ids(items) == list(range(151, 301))
    assert (state.floor, state.max_id) == (150, 300)
    assert tg.calls["by_ids"] == 0


async def test_empty_channel_followed_for_the_first_time(store: SQLiteStore) -> None:
    tg = world(0)
    catchup, _ = make(tg, store)
    state = SyncState()

    items = await run(catchup, followed(tg, CID), state, store)
    tg.post(CID, "первый")
    later = await run(catchup, followed(tg, CID), state, store)

    assert post_ids(items) == []
    assert post_ids(later) == [1]


# --- gaps --------------------------------------------------------------------------------------


async def test_gap_below_the_cursor_is_refilled_and_what_telegram_lacks_is_recorded_absent(
    store: SQLiteStore,
) -> None:
    tg = world(50)
    target = followed(tg, CID)
    await store_messages(store, target, [m for i, m in tg.channels[CID].messages.items() if not 20 <= i <= 25])
    tg.delete(CID, 22, 23)  # deleted before tgmon saw them
    catchup, _ = make(tg, store)
    state = synced(50)

    items = await run(catchup, target, state, store)

    assert tg.calls["by_ids"] == 1
    assert sorted(post_ids(items)) == [20, 21, 24, 25]
    assert count(store.path.parent, "posts") == 48
    absent = [r[0] for r in _rows(store, "SELECT message_id FROM absent_messages ORDER BY message_id")]
    assert absent == [22, 23]

    tg.calls.clear()
    again = await run(catchup, target, state, store)
    assert tg.calls["by_ids"] == 0  # nothing is missing any more: no question asked
    assert post_ids(again) == []


async def test_gap_check_does_not_ask_again_for_what_the_read_just_got(store: SQLiteStore) -> None:
    tg = world(20)
    catchup, _ = make(tg, store)

    # The whole page is read and yielded, not stored yet: the gap check must not take it for holes.
    items = [item async for item in catchup.sync(followed(tg, CID), synced(0), refresh=False)]

    assert post_ids(items) == list(range(1, 21))
    assert tg.calls["by_ids"] == 0


# --- refresh -----------------------------------------------------------------------------------


async def test_refresh_turns_an_offline_edit_into_a_version_and_an_offline_deletion_into_a_deletion(
    store: SQLiteStore,
) -> None:
    tg = world(0)
    recent = datetime.now(UTC) - timedelta(minutes=8)
    for i in range(1, 6):
        post_at(tg, CID, f"пост {i}", recent + timedelta(minutes=i))
    catchup, _ = make(tg, store)
    target = followed(tg, CID)
    state = SyncState()
    await run(catchup, target, state, store)
    assert count(store.path.parent, "posts") == 5

    tg.edit(CID, 2, "пост 2 (исправлено)")  # while tgmon was not listening
    tg.delete(CID, 4)
    items = await run(catchup, target, state, store, refresh=True)

    deletions = [item.event for item in items if isinstance(item.event, Deletion)]
    assert [d.message_ids for d in deletions] == [(4,)]
    assert all(item.catchup for item in items)
    versions = _rows(store, "SELECT message_id, version, text FROM post_versions")
    assert versions == [(2, 1, "пост 2")]
    assert _rows(store, "SELECT text, version FROM posts WHERE message_id = 2") == [("пост 2 (исправлено)", 2)]
    assert _rows(store, "SELECT message_id FROM deletions") == [(4,)]
    assert count(store.path.parent, "posts") == 5  # a deletion is recorded, the post stays


async def test_refresh_leaves_old_posts_alone_and_skips_a_channel_never_synced(store: SQLiteStore) -> None:
    tg = world(5)  # dated 2024: long before any refresh window
    catchup, _ = make(tg, store)
    target = followed(tg, CID)
    state = SyncState()

    await run(catchup, target, state, store, refresh=True)  # never synced: nothing to refresh
    assert tg.calls["by_ids"] == 0
    await run(catchup, target, state, store, refresh=True)
    assert tg.calls["by_ids"] == 0  # stored posts are older than the window


def _rows(store: SQLiteStore, sql: str) -> list[tuple[Any, ...]]:
    return db(store.path.parent, sql)
