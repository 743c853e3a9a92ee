"""The full-text index (search.db): follows the archive, edits re-indexed, ё/е folded, rebuilt when lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.models import Channel, Edit
from bot.rules.query import search_expression
from bot.store.search import SearchIndexer
from bot.store.sqlite import SQLiteStore, open_store
from tests.helpers import T0, apply, channel, post, sqlite_worker_threads, stop_stray_sqlite_connections


async def found(store: SQLiteStore, query: str, channel: str | None = None, limit: int = 50) -> list[int]:
    return [row["message_id"] for row in await store.search(query, channel, None, limit)]


async def words(store: SQLiteStore, text: str) -> list[int]:
    """Search as `tgmon search` does for plain words: every inflection of each."""
    return await found(store, search_expression(text))


def edit(message_id: int, text: str, minutes: int) -> Edit:
    return Edit(Channel(1001), message_id, T0 + timedelta(minutes=minutes), text)


async def test_cyrillic_word_found_after_flush(store: SQLiteStore) -> None:
    await apply(store, [post(1, "Эвакуация жителей Шебекино"), post(2, "Погода в Курске", minutes=1)])
    await store.flush()
    assert await words(store, "эвакуация") == [1]
    assert await words(store, "эвакуации") == [1]
    assert await found(store, '"шебекино"') == [1]
    assert await found(store, "КУРСКЕ") == [2]
    assert (await store.stats())["search_lag"] == 0


async def test_search_row_fields(store: SQLiteStore) -> None:
    await apply(store, [post(7, "Ракетная опасность", ch=Channel(1001, "Гладков", "gladkov"))])
    await store.flush()
    (row,) = await store.search('"ракетная"', None, None, 10)
    assert row == {
        "channel_id": 1001,
        "channel_username": "gladkov",
        "channel_title": "Гладков",
        "message_id": 7,
        "date": "2024-03-12T03:00:00+00:00",
        "text": "Ракетная опасность",
    }


async def test_yo_and_ye_find_each_other(store: SQLiteStore) -> None:
    await apply(store, [post(1, "Прилёты в Белгороде"), post(2, "Ночью были прилеты по Шебекино", minutes=1)])
    await store.flush()
    assert sorted(await words(store, "прилёты")) == [1, 2]
    assert sorted(await words(store, "прилеты")) == [1, 2]
    assert sorted(await found(store, '"прилеты"')) == [1, 2]


async def test_yo_in_raw_query_finds_folded_text(store: SQLiteStore) -> None:
    await apply(store, [post(1, "Прилёты в Белгороде")])
    await store.flush()
    assert await found(store, "прилёты OR взрывы") == [1]


async def test_edited_post_found_by_new_text_only(store: SQLiteStore) -> None:
    await apply(store, [post(1, "Ракетная опастность в Белгороде"), post(2, "Другая новость", minutes=1)])
    await store.flush()
    assert await found(store, '"опастность"') == [1]
    await apply(store, [edit(1, "Ракетная опасность в Белгороде", 2)])
    await store.flush()
    assert await found(store, '"опасность"') == [1]
    assert await found(store, '"опастность"') == []
    assert await found(store, '"белгороде"') == [1]  # words kept by the edit are still found, once


async def test_two_edits_before_a_flush(store: SQLiteStore) -> None:
    await apply(store, [post(1, "первоначальный текст")])
    await store.flush()
    await apply(store, [edit(1, "промежуточный текст", 1)])
    await apply(store, [edit(1, "окончательный текст", 2)])
    await store.flush()
    assert await found(store, '"окончательный"') == [1]
    assert await found(store, '"промежуточный"') == []
    assert await found(store, '"первоначальный"') == []
    assert await found(store, '"текст"') == [1]


async def test_post_and_edits_before_the_first_flush(store: SQLiteStore) -> None:
    await apply(store, [post(1, "черновик"), edit(1, "вторая версия", 1)])
    await apply(store, [edit(1, "третья версия", 2)])
    await store.flush()
    assert await found(store, '"третья"') == [1]
    assert await found(store, '"вторая"') == []
    assert await found(store, '"черновик"') == []


async def test_edit_after_edit_across_flushes(store: SQLiteStore) -> None:
    await apply(store, [post(1, "альфа")])
    for minutes, text in enumerate(["бета", "гамма", "дельта"], start=1):
        await store.flush()
        await apply(store, [edit(1, text, minutes)])
    await store.flush()
    for old in ("альфа", "бета", "гамма"):
        assert await found(store, f'"{old}"') == []
    assert await found(store, '"дельта"') == [1]


async def test_refetched_post_with_new_text_reindexed(store: SQLiteStore) -> None:
    await apply(store, [post(1, "старое слово")])
    await store.flush()
    await apply(store, [post(1, "новое слово", edit_date=T0 + timedelta(minutes=1))])
    await store.flush()
    assert await found(store, '"новое"') == [1]
    assert await found(store, '"старое"') == []


async def test_deleted_search_db_is_rebuilt(tmp_data_dir: Path) -> None:
    store = await open_store(tmp_data_dir)
    await apply(store, [post(1, "Эвакуация из Шебекино"), post(2, "опечатка тут", minutes=1)])
    await apply(store, [edit(2, "исправлено тут", 2)])
    await store.flush()
    await store.close()
    for suffix in ("", "-wal", "-shm"):
        (tmp_data_dir / f"search.db{suffix}").unlink(missing_ok=True)
    reopened = await open_store(tmp_data_dir, create=False)
    try:
        await reopened.flush()
        assert (tmp_data_dir / "search.db").exists()
        assert await words(reopened, "эвакуацию") == [1]
        assert await found(reopened, '"исправлено"') == [2]
        assert await found(reopened, '"опечатка"') == []
        assert (await reopened.stats())["search_lag"] == 0
    finally:
        await reopened.close()


async def damage_search_db(data_dir: Path) -> None:
    store = await open_store(data_dir)
    await apply(store, [post(1, "Эвакуация из Шебекино")])
    await store.close()
    for suffix in ("-wal", "-shm"):
        (data_dir / f"search.db{suffix}").unlink(missing_ok=True)
    (data_dir / "search.db").write_bytes(b"garbage, not SQLite " * 500)


async def test_damaged_search_db_is_rebuilt(tmp_data_dir: Path) -> None:
    await damage_search_db(tmp_data_dir)
    try:
        reopened = await open_store(tmp_data_dir, create=False)
        try:
            await reopened.flush()
            assert await words(reopened, "эвакуация") == [1]
        finally:
            await reopened.close()
    finally:
        stop_stray_sqlite_connections()  # see the next test


async def test_rebuilding_damaged_search_db_leaves_no_thread(tmp_data_dir: Path) -> None:
    await damage_search_db(tmp_data_dir)
    before = len(sqlite_worker_threads())
    try:
        reopened = await open_store(tmp_data_dir, create=False)
        await reopened.close()
        for _ in range(40):  # a closed connection's thread ends a moment after close() returns
            if len(sqlite_worker_threads()) <= before:
                break
            await asyncio.sleep(0.05)
        assert len(sqlite_worker_threads()) == before
    finally:
        stop_stray_sqlite_connections()


async def test_indexer_stops_when_cancelled_as_it_is_woken(tmp_data_dir: Path) -> None:
    store = await open_store(tmp_data_dir)
    await store.close()
    indexer = await SearchIndexer.open(tmp_data_dir, tmp_data_dir / "tgmon.db")
    task = asyncio.create_task(indexer.run())
    try:
        for _ in range(500):  # until run() is idle, waiting to be woken
            await asyncio.sleep(0.01)
            if getattr(indexer.wake, "_waiters", None):
                break
        indexer.wake.set()  # a commit wakes it ...
        task.cancel()  # ... as the store closes
        done, _ = await asyncio.wait({task}, timeout=3)  # a guard against the hang, not a speed check
        assert task in done
    finally:
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1)
        await indexer.close()


async def test_index_follows_without_explicit_flush_between_batches(store: SQLiteStore) -> None:
    for i in range(1, 6):
        await apply(store, [post(i, f"сообщение номер {i}", minutes=i)])
    await store.flush()
    assert sorted(await found(store, '"сообщение"')) == [1, 2, 3, 4, 5]


async def test_search_filters(store: SQLiteStore) -> None:
    two = channel(1002, "chan_two", "Канал два")
    await apply(
        store,
        [
            post(1, "взрывы в городе", minutes=0),
            post(2, "взрывы снова", minutes=60),
            post(3, "взрывы и тут", ch=two, minutes=120),
        ],
    )
    await store.flush()
    assert await found(store, '"взрывы"') == [3, 2, 1]  # newest first
    assert await found(store, '"взрывы"', limit=2) == [3, 2]
    assert await found(store, '"взрывы"', channel="@chan_two") == [3]
    assert await found(store, '"взрывы"', channel="CHAN_TWO") == [3]
    assert await found(store, '"взрывы"', channel="1001") == [2, 1]
    assert await found(store, '"взрывы"', channel="Канал два") == [3]
    since = await store.search('"взрывы"', None, T0 + timedelta(minutes=30), 10)
    assert [r["message_id"] for r in since] == [3, 2]


async def test_bad_fts_syntax_is_a_store_error(store: SQLiteStore) -> None:
    await apply(store, [post(1, "текст")])
    await store.flush()
    with pytest.raises(StoreError, match="search query"):
        await store.search("AND AND", None, None, 10)
    with pytest.raises(StoreError) as exc:
        await store.search('"unbalanced', None, None, 10)
    assert "\n" not in str(exc.value)
