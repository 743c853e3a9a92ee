"""The outbox: which stored posts raise alerts, the alert object, and delivery per destination."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import bot.alerts.outbox as outbox
from bot.alerts.notifiers import JsonlNotifier, PermanentError
from bot.alerts.outbox import Dispatcher, alert_id, build_alert, raise_alerts
from bot.models import Channel, Edit, ForwardOrigin, Media, MediaKind, Post
from bot.rules.engine import Document, Engine, Match, Verdict, verdict
from bot.store import AlertRecord
from bot.store.sqlite import SQLiteStore
from tests.helpers import T0, apply, read_jsonl

GLADKOV = Channel(1902000001, "Вячеслав Гладков", "gladkov_demo")
PRIVATE = Channel(1902000005, "Сибирский батальон", None)
TEXT = "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытия."


def missile(text: str = TEXT) -> Verdict:
    start = text.index("Ракетная")
    return verdict([Match("missile-danger", "missile", "high", start, start + 18, "ракетная опасность")])


# --- the alert object -------------------------------------------------------------------------------


def test_alert_id_is_deterministic() -> None:
    assert alert_id(1, 2, "missile") == alert_id(1, 2, "missile")
    assert (
        len({alert_id(1, 2, "missile"), alert_id(1, 2, "uav"), alert_id(1, 3, "missile"), alert_id(2, 2, "missile")})
        == 4
    )


def test_build_alert_payload() -> None:
    media = (Media(MediaKind.PHOTO, "image/jpeg", 1000), Media(MediaKind.VIDEO, "video/mp4", 5000, 35.0))
    post = Post(GLADKOV, 4101, T0, TEXT, media=media, forward=ForwardOrigin(name="Источник"))
    record = build_alert(post, missile())
    assert isinstance(record, AlertRecord)
    payload = record.payload
    assert record.id == payload["id"] == alert_id(GLADKOV.id, 4101, "missile")
    assert (record.channel_id, record.message_id, record.category, record.severity) == (
        GLADKOV.id,
        4101,
        "missile",
        "high",
    )
    assert payload["category"] == "missile"
    assert payload["severity"] == "high"
    assert payload["all_clear"] is False
    assert payload["rules"] == ["missile-danger"]
    assert payload["channel_id"] == GLADKOV.id
    assert payload["channel_title"] == "Вячеслав Гладков"
    assert payload["channel_username"] == "gladkov_demo"
    assert payload["message_id"] == 4101
    assert payload["link"] == "https://t.me/gladkov_demo/4101"
    assert payload["date"] == "2024-03-12T03:00:00+00:00"
    assert payload["edited"] is False
    assert payload["text"] == TEXT
    (match,) = payload["matches"]
    assert match["text"] == "Ракетная опасность"
    assert TEXT[match["start"] : match["end"]] == "Ракетная опасность"
    assert (match["rule"], match["category"], match["term"]) == ("missile-danger", "missile", "ракетная опасность")
    assert [m["kind"] for m in payload["media"]] == ["photo", "video"]
    assert payload["media"][1]["duration"] == 35.0
    assert payload["forward_from"] == "Источник"
    assert payload["sources"] == [
        {
            "channel_id": GLADKOV.id,
            "channel_title": "Вячеслав Гладков",
            "channel_username": "gladkov_demo",
            "message_id": 4101,
            "link": "https://t.me/gladkov_demo/4101",
            "date": "2024-03-12T03:00:00+00:00",
        }
    ]
    assert (payload["channel_tags"], payload["suppressed"], payload["late_s"]) == ([], None, None)


def test_build_alert_private_link_and_synthetic_id() -> None:
    assert build_alert(Post(PRIVATE, 310, T0, TEXT), missile()).payload["link"] == "https://t.me/c/1902000005/310"
    synthetic = build_alert(Post(PRIVATE, -12345, T0, TEXT), missile()).payload
    assert synthetic["link"] is None
    assert synthetic["message_id"] is None


def test_build_alert_for_an_edit() -> None:
    edit = Edit(GLADKOV, 4101, T0 + timedelta(minutes=1), TEXT)
    payload = build_alert(edit, missile()).payload
    assert payload["edited"] is True
    assert payload["date"] == "2024-03-12T03:01:00+00:00"
    assert payload["media"] == []


def test_build_alert_needs_a_match() -> None:
    with pytest.raises(ValueError, match="verdict"):
        build_alert(Post(GLADKOV, 1, T0, "x"), Verdict())


def test_build_alert_with_the_engine(engine: Engine) -> None:
    text = "😀 Ёлки, Ракетная опасность в Белгороде!"
    payload = build_alert(Post(GLADKOV, 1, T0, text), engine.verdict(Document(text))).payload
    assert payload["category"] == "missile"
    for match in payload["matches"]:
        assert text[match["start"] : match["end"]] == match["text"]
    assert "Ракетная опасность" in [m["text"] for m in payload["matches"]]


# --- raise_alerts -----------------------------------------------------------------------------------


async def store_and_raise(
    store: SQLiteStore,
    events: Sequence[Post | Edit],
    verdicts: Sequence[Verdict],
    destinations: Sequence[str] = ("jsonl",),
) -> list[AlertRecord]:
    def job(tx: Any) -> list[AlertRecord]:
        outcomes = tx.apply(list(events))
        return raise_alerts(tx, list(events), outcomes, list(verdicts), list(destinations))

    return await store.write(job)


async def test_new_post_with_a_category_raises_an_alert(store: SQLiteStore) -> None:
    raised = await store_and_raise(
        store, [Post(GLADKOV, 1, T0, TEXT), Post(GLADKOV, 2, T0, "Погода")], [missile(), Verdict()]
    )
    assert [(a.message_id, a.category) for a in raised] == [(1, "missile")]
    assert (await store.stats())["alerts"] == 1
    assert [d.alert_id for d in await store.due_deliveries("jsonl", 10)] == [raised[0].id]


async def test_repeated_post_raises_nothing(store: SQLiteStore) -> None:
    post = Post(GLADKOV, 1, T0, TEXT)
    assert len(await store_and_raise(store, [post], [missile()])) == 1
    assert await store_and_raise(store, [post], [missile()]) == []
    assert (await store.stats())["alerts"] == 1


async def test_typo_fix_edit_keeps_quiet(store: SQLiteStore) -> None:
    typo = "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытя."
    await store_and_raise(store, [Post(GLADKOV, 1, T0, typo)], [missile(typo)])
    fixed = Edit(Channel(GLADKOV.id), 1, T0 + timedelta(minutes=1), TEXT)
    assert await store_and_raise(store, [fixed], [missile()]) == []
    assert (await store.stats())["alerts"] == 1


async def test_edit_that_changes_the_category_raises(store: SQLiteStore) -> None:
    await store_and_raise(store, [Post(GLADKOV, 1, T0, "Погода")], [Verdict()])
    edited = Edit(Channel(GLADKOV.id), 1, T0 + timedelta(minutes=1), TEXT)  # edits carry no channel names
    (raised,) = await store_and_raise(store, [edited], [missile()])
    assert raised.category == "missile"
    assert raised.payload["edited"] is True
    assert raised.payload["channel_title"] == "Вячеслав Гладков"  # from the stored channel
    assert raised.payload["link"] == "https://t.me/gladkov_demo/1"
    uav = verdict([Match("uav-attack", "uav", "high", 3, 11, "шахед*")])
    (again,) = await store_and_raise(
        store, [Edit(Channel(GLADKOV.id), 1, T0 + timedelta(minutes=2), "шахеды тут")], [uav]
    )
    assert again.category == "uav"
    assert (await store.stats())["alerts_by_category"] == {"missile": 1, "uav": 1}


async def test_unchanged_stale_and_unknown_edits_raise_nothing(store: SQLiteStore) -> None:
    await store_and_raise(
        store,
        [Post(GLADKOV, 1, T0, "Погода"), Edit(GLADKOV, 1, T0 + timedelta(minutes=5), "Ясно")],
        [Verdict(), Verdict()],
    )
    stale = Edit(GLADKOV, 1, T0 + timedelta(minutes=2), TEXT)
    unknown = Edit(GLADKOV, 99, T0 + timedelta(minutes=2), TEXT)
    assert await store_and_raise(store, [stale, unknown], [missile(), missile()]) == []


async def test_post_and_its_edit_in_one_batch(store: SQLiteStore) -> None:
    typo = "⚠️ Ракетная опасность в Белгороде. Пройдите в укрытя."
    events = [Post(GLADKOV, 1, T0, typo), Edit(GLADKOV, 1, T0 + timedelta(minutes=1), TEXT)]
    raised = await store_and_raise(store, events, [missile(typo), missile()])
    assert [a.category for a in raised] == ["missile"]


async def test_deliveries_for_every_destination(store: SQLiteStore) -> None:
    (raised,) = await store_and_raise(store, [Post(GLADKOV, 1, T0, TEXT)], [missile()], ["console", "jsonl"])
    for destination in ("console", "jsonl"):
        assert [d.alert_id for d in await store.due_deliveries(destination, 10)] == [raised.id]


# --- the dispatcher -----------------------------------------------------------------------------------


class Recorder:
    """A notifier that records what it got, and fails as told."""

    def __init__(self, name: str, fail: Mapping[str, int] | None = None, permanent: set[str] | None = None) -> None:
        self.name = name
        self.fail = dict(fail or {})
        self.permanent = permanent or set()
        self.sent: list[str] = []
        self.attempts: list[str] = []
        self.closed = False

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        ident = str(alert["id"])
        self.attempts.append(ident)
        if ident in self.permanent:
            raise PermanentError("rejected by the remote")
        if self.fail.get(ident, 0) > 0:
            self.fail[ident] -= 1
            raise ConnectionError("network down")
        self.sent.append(ident)
        return f"remote-{ident}"

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "backoff", lambda attempts: timedelta(0))


async def raise_many(store: SQLiteStore, count: int, destinations: Sequence[str]) -> list[str]:
    posts = [Post(GLADKOV, i, T0 + timedelta(minutes=i), TEXT) for i in range(1, count + 1)]
    raised = await store_and_raise(store, posts, [missile()] * count, destinations)
    return [a.id for a in raised]


async def run_dispatcher(dispatcher: Dispatcher, within: float | None = 60) -> bool:
    dispatcher.start()
    try:
        return await dispatcher.drain(within=within)  # `within`: a hang guard, not a speed check
    finally:
        await dispatcher.stop()


async def test_drain_returns_when_nothing_is_pending(store: SQLiteStore) -> None:
    recorder = Recorder("jsonl")
    assert await run_dispatcher(Dispatcher(store, [recorder])) is True
    assert recorder.attempts == []
    assert recorder.closed


async def test_delivers_in_order_to_every_destination(store: SQLiteStore, no_backoff: None) -> None:
    ids = await raise_many(store, 6, ["first", "second"])
    first, second = Recorder("first"), Recorder("second", fail={ids[1]: 2})
    dispatcher = Dispatcher(store, [first, second])
    assert await run_dispatcher(dispatcher)
    assert first.sent == ids
    assert second.sent == ids  # the failing alert held back the ones after it
    assert second.attempts == [*ids[:2], ids[1], ids[1], *ids[2:]]
    assert dispatcher.sent == 12
    stats = await store.stats()
    assert stats["pending_deliveries"] == 0
    assert stats["deliveries"] == {"first": {"sent": 6}, "second": {"sent": 6}}


async def test_retry_is_recorded(store: SQLiteStore, no_backoff: None) -> None:
    (ident,) = await raise_many(store, 1, ["jsonl"])
    recorder = Recorder("jsonl", fail={ident: 3})
    assert await run_dispatcher(Dispatcher(store, [recorder]))
    assert recorder.attempts == [ident] * 4
    assert recorder.sent == [ident]
    assert await store.pending_deliveries(["jsonl"]) == 0


async def test_permanent_error_dead_letters(store: SQLiteStore, no_backoff: None) -> None:
    ids = await raise_many(store, 3, ["jsonl"])
    recorder = Recorder("jsonl", permanent={ids[1]})
    assert await run_dispatcher(Dispatcher(store, [recorder]))
    assert recorder.sent == [ids[0], ids[2]]
    assert recorder.attempts.count(ids[1]) == 1  # never retried
    stats = await store.stats()
    assert stats["dead_letters"] == 1
    assert stats["deliveries"]["jsonl"] == {"sent": 2, "dead": 1}


async def test_drain_gives_up_within_a_limit_and_keeps_the_alert(store: SQLiteStore) -> None:
    (ident,) = await raise_many(store, 1, ["jsonl"])
    recorder = Recorder("jsonl", fail={ident: 1_000_000})
    assert await run_dispatcher(Dispatcher(store, [recorder]), within=0.5) is False
    assert recorder.sent == []
    assert await store.pending_deliveries(["jsonl"]) == 1  # delivered on the next start


async def test_later_dispatcher_delivers_what_was_left(store: SQLiteStore) -> None:
    ids = await raise_many(store, 3, ["jsonl"])
    recorder = Recorder("jsonl")
    assert await run_dispatcher(Dispatcher(store, [recorder]))
    more = await store_and_raise(store, [Post(GLADKOV, 50, T0, TEXT)], [missile()], ["jsonl"])
    again = Recorder("jsonl")
    assert await run_dispatcher(Dispatcher(store, [again]))
    assert recorder.sent == ids
    assert again.sent == [more[0].id]


async def test_jsonl_delivery_after_a_crash_between_send_and_record(store: SQLiteStore, tmp_path: Path) -> None:
    ids = await raise_many(store, 3, ["jsonl"])
    path = tmp_path / "alerts.jsonl"
    # The first process wrote two lines, then died before recording them as sent.
    crashed = JsonlNotifier(path)
    for delivery in await store.due_deliveries("jsonl", 2):
        await crashed.send(delivery.payload)
    await crashed.close()
    assert await store.pending_deliveries(["jsonl"]) == 3

    assert await run_dispatcher(Dispatcher(store, [JsonlNotifier(path)]))
    written = [a["id"] for a in read_jsonl(path)]
    assert written == ids
    assert await store.pending_deliveries(["jsonl"]) == 0


async def test_dispatcher_wakes_for_new_alerts(store: SQLiteStore) -> None:
    recorder = Recorder("jsonl")
    dispatcher = Dispatcher(store, [recorder])
    dispatcher.start()
    try:
        await apply(store, [])
        ids = await raise_many(store, 2, ["jsonl"])
        dispatcher.wake()
        for _ in range(500):  # a hang guard, not a speed check
            if len(recorder.sent) == 2:
                break
            await asyncio.sleep(0.02)
        assert recorder.sent == ids
        assert await dispatcher.drain(within=60)
    finally:
        await dispatcher.stop()


class HeldReads:
    """The store, with the dispatcher's first read of due deliveries held back after it has run."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.read = asyncio.Event()
        self.release = asyncio.Event()
        self.held = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def due_deliveries(self, destination: str, limit: int) -> Any:
        due = await self.store.due_deliveries(destination, limit)
        if not self.held:
            self.held = True
            self.read.set()
            await self.release.wait()
        return due


async def test_drain_delivers_an_alert_committed_during_a_read(store: SQLiteStore) -> None:
    held = HeldReads(store)
    recorder = Recorder("jsonl")
    dispatcher = Dispatcher(held, [recorder])  # type: ignore[arg-type]
    dispatcher.start()
    try:
        await asyncio.wait_for(held.read.wait(), timeout=60)  # the worker read before the alert existed
        ids = await raise_many(store, 1, ["jsonl"])
        dispatcher.wake()
        draining = asyncio.create_task(dispatcher.drain(within=10))
        await asyncio.sleep(0)
        held.release.set()
        assert await draining is True
        assert recorder.sent == ids
    finally:
        held.release.set()
        await dispatcher.stop()
