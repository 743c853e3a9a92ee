"""ChannelRegistry: resolve once, reach cached channels in bulk, renames, unavailable channels, joins, pacing."""

from __future__ import annotations

from typing import Any

import pytest
from telethon import errors

from bot.models import Channel, Post
from bot.settings import ChannelConfig, Channels
from bot.sources import limits as limits_module
from bot.sources.channels import ChannelRegistry
from bot.sources.limits import FloodStats, Pacer, Requests
from bot.store.sqlite import SQLiteStore
from tests.sources.fake_telegram import FakeTelegram, flood
from tests.sources.harness import FakeAsyncio, FakeClock


def world(n: int = 3, *, left: bool = True) -> FakeTelegram:
    tg = FakeTelegram()
    for i in range(n):
        tg.add_channel(1000 + i, f"chan_{i:04d}", f"Channel {i}", left=left)
    return tg


def configs(tg: FakeTelegram, **options: Any) -> Channels:
    return Channels.of(ChannelConfig(username=c.username, **options) for c in tg.channels.values())


async def registry(
    tg: FakeTelegram, channels: Channels, store: SQLiteStore, flood: FloodStats | None = None
) -> ChannelRegistry:
    requests = Requests(Pacer(0), flood)
    return ChannelRegistry(tg, channels, await store.channel_records(), store.write, requests=requests)


async def test_first_start_resolves_each_username_once_and_keeps_id_and_access_hash(store: SQLiteStore) -> None:
    tg = world(3)
    followed = await (await registry(tg, configs(tg), store)).resolve_all(join=False)

    assert tg.calls["resolve"] == 3
    assert tg.calls["get_channels"] == 0
    assert sorted(followed) == [1000, 1001, 1002]
    records = {r.id: r for r in await store.channel_records()}
    assert {cid: (r.username, r.access_hash, r.available) for cid, r in records.items()} == {
        c.id: (c.username, c.access_hash, True) for c in tg.channels.values()
    }
    # Reached by id and access hash from now on.
    assert followed[1001].peer.channel_id == 1001
    assert followed[1001].peer.access_hash == tg.channels[1001].access_hash


async def test_second_start_resolves_nothing_and_checks_cached_channels_in_bulk(store: SQLiteStore) -> None:
    tg = world(250)
    channels = configs(tg)
    await (await registry(tg, channels, store)).resolve_all(join=False)
    assert tg.calls["resolve"] == 250
    tg.calls.clear()

    followed = await (await registry(tg, channels, store)).resolve_all(join=False)

    assert tg.calls["resolve"] == 0
    assert tg.calls["get_channels"] == 3  # one per 100 channels
    assert len(followed) == 250


async def test_renamed_channel_keeps_its_id_and_history_and_its_record_is_updated(store: SQLiteStore) -> None:
    tg = world(2)
    channels = configs(tg)
    await (await registry(tg, channels, store)).resolve_all(join=False)
    await store.write(lambda tx: tx.apply([Post(followed_channel(tg, 1000), 1, tg.clock, "старый пост")]))
    tg.channels[1000].username, tg.channels[1000].title = "chan_renamed", "Переименованный"
    tg.calls.clear()

    followed = await (await registry(tg, channels, store)).resolve_all(join=False)

    assert tg.calls["resolve"] == 0
    assert followed[1000].channel.username == "chan_renamed"
    assert followed[1000].channel.title == "Переименованный"
    record = {r.id: r for r in await store.channel_records()}[1000]
    assert (record.username, record.title, record.access_hash) == (
        "chan_renamed",
        "Переименованный",
        tg.channels[1000].access_hash,
    )
    overview = {row["id"]: row for row in await store.channel_overview()}
    assert overview[1000]["posts"] == 1  # the history stays with the id
    assert len(overview) == 2


async def test_renamed_channel_is_still_followed_on_the_start_after_the_rename(store: SQLiteStore) -> None:
    tg = world(2)
    channels = configs(tg)  # the operator's channels.toml still says @chan_0000
    await (await registry(tg, channels, store)).resolve_all(join=False)
    tg.channels[1000].username = "chan_renamed"
    await (await registry(tg, channels, store)).resolve_all(join=False)  # sees and saves the rename

    third = await registry(tg, channels, store)
    followed = await third.resolve_all(join=False)

    assert third.unavailable == {}
    assert 1000 in followed


async def test_private_channel_is_marked_unavailable_in_the_store_and_the_others_are_followed(
    store: SQLiteStore,
) -> None:
    tg = world(3)
    channels = configs(tg)
    await (await registry(tg, channels, store)).resolve_all(join=False)
    tg.channels[1001].private = True

    second = await registry(tg, channels, store)
    followed = await second.resolve_all(join=False)

    assert sorted(followed) == [1000, 1002]
    assert "private" in second.unavailable["@chan_0001"]
    record = {r.id: r for r in await store.channel_records()}[1001]
    assert record.available is False
    assert record.unavailable_reason is not None
    assert "private" in record.unavailable_reason
    assert record.access_hash == tg.channels[1001].access_hash  # kept: it may come back


async def test_private_channel_on_first_resolve_is_unavailable_with_the_reason(store: SQLiteStore) -> None:
    tg = world(2)
    tg.channels[1001].private = True

    reg = await registry(tg, configs(tg), store)
    followed = await reg.resolve_all(join=False)

    assert list(followed) == [1000]
    assert reg.unavailable == {"@chan_0001": "private, or the account was banned from it"}


async def test_private_channel_configured_by_id_is_reported_private(store: SQLiteStore) -> None:
    tg = world(1)
    tg.channels[1000].private = True

    reg = await registry(tg, Channels.of([ChannelConfig(id=1000)]), store)
    await reg.resolve_all(join=False)

    assert "private" in reg.unavailable["1000"]


async def test_unknown_username_is_unavailable_with_the_reason_and_the_others_carry_on(store: SQLiteStore) -> None:
    tg = world(1)
    channels = Channels.of([ChannelConfig(username="chan_0000"), ChannelConfig(username="nobody_here")])

    reg = await registry(tg, channels, store)
    followed = await reg.resolve_all(join=False)

    assert list(followed) == [1000]
    assert set(reg.unavailable) == {"@nobody_here"}
    assert "no channel has this username" in reg.unavailable["@nobody_here"]


async def test_cached_channel_deleted_since_is_unavailable(store: SQLiteStore) -> None:
    tg = world(2)
    channels = configs(tg)
    await (await registry(tg, channels, store)).resolve_all(join=False)
    del tg.channels[1001]

    reg = await registry(tg, channels, store)
    followed = await reg.resolve_all(join=False)

    assert list(followed) == [1000]
    assert reg.unavailable == {"@chan_0001": "no longer exists"}
    record = {r.id: r for r in await store.channel_records()}[1001]
    assert (record.available, record.unavailable_reason) == (False, "no longer exists")


async def test_one_refused_channel_in_a_bulk_check_is_checked_alone_and_resolved_again(store: SQLiteStore) -> None:
    tg = world(3)
    channels = configs(tg)
    await (await registry(tg, channels, store)).resolve_all(join=False)
    tg.channels[1001].access_hash += 1  # Telegram rejects the whole getChannels request for it
    tg.calls.clear()

    reg = await registry(tg, channels, store)
    followed = await reg.resolve_all(join=False)

    assert sorted(followed) == [1000, 1001, 1002]
    assert tg.calls["get_channels"] == 1 + 3  # the batch, then one by one
    assert tg.calls["resolve"] == 1  # the refused one, resolved again by its name
    assert reg.unavailable == {}


async def test_a_rejected_cached_access_hash_is_resolved_again_by_username(store: SQLiteStore) -> None:
    tg = world(2)
    channels = configs(tg)
    await (await registry(tg, channels, store)).resolve_all(join=False)
    for channel in tg.channels.values():  # another account logged in: every access hash differs
        channel.access_hash += 1000

    reg = await registry(tg, channels, store)
    followed = await reg.resolve_all(join=False)

    assert reg.unavailable == {}
    assert sorted(followed) == [1000, 1001]
    assert followed[1000].peer.access_hash == tg.channels[1000].access_hash


async def test_join_only_channels_that_ask_for_it_and_are_not_members_yet(store: SQLiteStore) -> None:
    tg = world(3)
    tg.channels[1002].left = False  # already a member
    channels = Channels.of(
        [
            ChannelConfig(username="chan_0000"),  # join = true by default
            ChannelConfig(username="chan_0001", join=False),
            ChannelConfig(username="chan_0002"),
        ]
    )

    followed = await (await registry(tg, channels, store)).resolve_all()

    assert tg.calls["join"] == 1
    assert tg.channels[1000].left is False
    assert tg.channels[1001].left is True
    assert {cid: f.joined for cid, f in followed.items()} == {1000: True, 1001: False, 1002: True}

    tg.calls.clear()
    await (await registry(tg, channels, store)).resolve_all()
    assert tg.calls["join"] == 0  # members now: Telegram says so in the bulk check


async def test_join_refused_is_read_by_polling_only(store: SQLiteStore) -> None:
    tg = world(1)
    tg.fail("join", errors.ChannelsTooMuchError(request=None))

    followed = await (await registry(tg, configs(tg), store)).resolve_all()

    assert tg.calls["join"] == 1
    assert followed[1000].joined is False


async def test_flood_wait_during_resolve_is_counted_waited_out_and_the_resolve_retried(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAsyncio()
    monkeypatch.setattr(limits_module, "asyncio", fake)
    tg = world(2)
    tg.fail("resolve", None, flood(300))
    floods = FloodStats()

    followed = await (await registry(tg, configs(tg), store, floods)).resolve_all(join=False)

    assert sorted(followed) == [1000, 1001]
    assert (floods.by_request, floods.seconds) == ({"resolve": 1}, 300)
    assert 300 in fake.sleeps
    assert tg.calls["resolve"] == 3  # the second channel asked twice


async def test_flood_wait_during_bulk_check_is_waited_and_retried(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAsyncio()
    monkeypatch.setattr(limits_module, "asyncio", fake)
    tg = world(2)
    channels = configs(tg)
    await (await registry(tg, channels, store)).resolve_all(join=False)
    tg.calls.clear()
    tg.fail("get_channels", flood(42))
    floods = FloodStats()

    followed = await (await registry(tg, channels, store, floods)).resolve_all(join=False)

    assert len(followed) == 2
    assert (floods.by_request, floods.seconds) == ({"channels": 1}, 42)
    assert fake.sleeps == [42]
    assert tg.calls["resolve"] == 0
    assert tg.calls["get_channels"] == 2


async def test_five_hundred_channels_resolve_and_join_paced_through_one_pacer(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    fake = FakeAsyncio(clock)
    monkeypatch.setattr(limits_module, "asyncio", fake)
    monkeypatch.setattr(limits_module, "time", clock)
    tg = world(500)
    started = clock.now

    reg = ChannelRegistry(tg, configs(tg), [], store.write, requests=Requests(Pacer(1.0)))
    followed = await reg.resolve_all()

    assert len(followed) == 500
    assert tg.calls["resolve"] == 500
    assert tg.calls["join"] == 500
    # 1000 requests one second apart: the first goes at once, each other one waited its turn.
    assert len(fake.sleeps) == 999
    assert all(s == pytest.approx(1.0) for s in fake.sleeps)
    assert clock.now - started == pytest.approx(999.0)


def followed_channel(tg: FakeTelegram, channel_id: int) -> Channel:
    fake = tg.channels[channel_id]
    return Channel(fake.id, fake.title, fake.username)
