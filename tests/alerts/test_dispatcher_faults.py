"""Dispatcher fault injection: notifiers that raise, hang, flood-wait or go down for half an hour.

Every alert must still arrive exactly once and in order, and the store must say what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import Any

import pytest

import bot.alerts.outbox as outbox
from bot.alerts.notifiers import RetryAfter
from bot.alerts.outbox import Dispatcher
from bot.models import Channel, Post
from bot.store.sqlite import SQLiteStore
from tests.alerts.test_outbox import GLADKOV, TEXT, missile, raise_many, run_dispatcher, store_and_raise
from tests.helpers import T0

CHAT = "chat"
GUARD_STEPS = 3000  # × 10 ms: hang guards, never speed checks

# A fault, per notifier call: None delivers; else what goes wrong.
ERROR, HANG, OS_ERROR, HTTP_502 = "error", "hang", "os-error", "http-502"


def flood(seconds: float) -> str:
    return f"flood:{seconds:g}"


class Faulty:
    """A notifier that fails as `faults` says for each call, and records every call and every delivery."""

    def __init__(self, name: str, faults: Callable[[str], str | None] = lambda _id: None) -> None:
        self.name = name
        self.faults = faults
        self.down = False  # an outage: every call fails
        self.calls: list[tuple[str, str]] = []  # (alert id, "sent" or the fault)
        self.delivered: list[dict[str, Any]] = []
        self.cancelled = 0  # hanging calls the dispatcher gave up on
        self.closed = False

    @property
    def sent(self) -> list[str]:
        return [str(alert["id"]) for alert in self.delivered]

    async def send(self, alert: Mapping[str, Any]) -> str | None:
        ident = str(alert["id"])
        fault = "outage" if self.down else self.faults(ident)
        self.calls.append((ident, fault or "sent"))
        if fault == "outage":
            raise ConnectionError("notifier down")
        if fault == ERROR:
            raise ConnectionError("network down")
        if fault == OS_ERROR:
            raise OSError(104, "Connection reset by peer")
        if fault == HTTP_502:
            raise RuntimeError("HTTP 502")
        if fault == HANG:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if fault is not None and fault.startswith("flood:"):
            raise RetryAfter(float(fault.removeprefix("flood:")))
        self.delivered.append(dict(alert))
        return f"r-{ident}"

    async def close(self) -> None:
        self.closed = True


def scripted(plan: Mapping[str, Sequence[str]]) -> Callable[[str], str | None]:
    """Faults per alert id, one per call, in order; then the alert goes through."""
    left = {ident: list(faults) for ident, faults in plan.items()}

    def fault(ident: str) -> str | None:
        queue = left.get(ident)
        return queue.pop(0) if queue else None

    return fault


class Clock:
    """`datetime.now` as the outbox sees it: set by the test, never by the wall clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(datetime.now(UTC).replace(microsecond=0))

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> FakeDatetime:
            now = fake.now if tz is None else fake.now.astimezone(tz)
            return cls.fromtimestamp(now.timestamp(), now.tzinfo)

    monkeypatch.setattr(outbox, "datetime", FakeDatetime)
    return fake


def fixed_backoff(monkeypatch: pytest.MonkeyPatch, wait: timedelta) -> None:
    monkeypatch.setattr(outbox, "backoff", lambda attempts: wait)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_backoff(monkeypatch, timedelta(0))


def deliveries(store: SQLiteStore, destination: str = CHAT) -> list[tuple[str, str, int, str | None, str | None]]:
    """(alert id, state, attempts, next_attempt_at, last_error) of each delivery, in alert order."""
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        rows = conn.execute(
            "SELECT a.id, d.state, d.attempts, d.next_attempt_at, d.last_error FROM deliveries d"
            " JOIN alerts a ON a.seq = d.alert_seq WHERE d.destination = ? ORDER BY d.alert_seq",
            (destination,),
        ).fetchall()
    return [(str(a), str(s), int(n), at, error) for a, s, n, at, error in rows]


def remote_ids(store: SQLiteStore, destination: str = CHAT) -> list[str | None]:
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        rows = conn.execute(
            "SELECT remote_id FROM deliveries WHERE destination = ? ORDER BY alert_seq", (destination,)
        ).fetchall()
    return [row[0] for row in rows]


def calls_made(notifier: Faulty, count: int) -> bool:
    return len(notifier.calls) == count


async def until(condition: Callable[[], bool], dispatcher: Dispatcher | None = None) -> None:
    """Wait for `condition`, waking the dispatcher meanwhile; fail rather than hang."""
    for _ in range(GUARD_STEPS):
        if condition():
            return
        if dispatcher is not None:
            dispatcher.wake()
        await asyncio.sleep(0.01)
    pytest.fail("the condition never came true")


# --- one fault at a time -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [ERROR, OS_ERROR, HTTP_502])
async def test_raising_notifier_is_retried_in_order(store: SQLiteStore, no_backoff: None, fault: str) -> None:
    ids = await raise_many(store, 3, [CHAT])
    notifier = Faulty(CHAT, scripted({ids[1]: [fault, fault]}))
    dispatcher = Dispatcher(store, [notifier])
    assert await run_dispatcher(dispatcher)
    assert notifier.sent == ids
    assert notifier.calls == [(ids[0], "sent"), (ids[1], fault), (ids[1], fault), (ids[1], "sent"), (ids[2], "sent")]
    assert [(a, s, n, e) for a, s, n, _, e in deliveries(store)] == [
        (ids[0], "sent", 1, None),
        (ids[1], "sent", 3, None),  # two failures and the delivery
        (ids[2], "sent", 1, None),
    ]
    assert remote_ids(store) == [f"r-{ident}" for ident in ids]
    assert dispatcher.sent == 3
    assert notifier.closed


async def test_failure_is_recorded_with_its_error_and_backoff(
    store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed_backoff(monkeypatch, timedelta(minutes=7))
    ids = await raise_many(store, 2, [CHAT])
    notifier = Faulty(CHAT, scripted({ids[0]: [OS_ERROR]}))
    dispatcher = Dispatcher(store, [notifier])
    dispatcher.start()
    try:
        await until(lambda: deliveries(store)[0][2] == 1)
    finally:
        await dispatcher.stop()
    assert notifier.calls == [(ids[0], OS_ERROR)]  # the next alert waits behind it
    retry_at = (clock.now + timedelta(minutes=7)).isoformat(timespec="milliseconds")
    assert deliveries(store) == [
        (ids[0], "pending", 1, retry_at, "ConnectionResetError: [Errno 104] Connection reset by peer"),
        (ids[1], "pending", 0, None, None),
    ]


async def test_hanging_notifier_times_out_and_is_retried(
    store: SQLiteStore, no_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "SEND_TIMEOUT_S", 0.05)
    ids = await raise_many(store, 3, [CHAT])
    notifier = Faulty(CHAT, scripted({ids[0]: [HANG, HANG]}))
    assert await run_dispatcher(Dispatcher(store, [notifier]))  # not stuck on the hanging call
    assert notifier.sent == ids
    assert notifier.cancelled == 2
    assert [c for _, c in notifier.calls] == [HANG, HANG, "sent", "sent", "sent"]
    assert [(a, s, n) for a, s, n, _, _ in deliveries(store)] == [
        (ids[0], "sent", 3),
        (ids[1], "sent", 1),
        (ids[2], "sent", 1),
    ]


async def test_hang_records_a_timeout_error(store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "SEND_TIMEOUT_S", 0.05)
    fixed_backoff(monkeypatch, timedelta(minutes=1))
    (ident,) = await raise_many(store, 1, [CHAT])
    notifier = Faulty(CHAT, lambda _id: HANG)
    dispatcher = Dispatcher(store, [notifier])
    dispatcher.start()
    try:
        await until(lambda: deliveries(store)[0][2] == 1)
    finally:
        await dispatcher.stop()
    retry_at = (clock.now + timedelta(minutes=1)).isoformat(timespec="milliseconds")
    assert deliveries(store) == [(ident, "pending", 1, retry_at, "TimeoutError")]
    assert notifier.cancelled == 1


@pytest.mark.parametrize(("wait_s", "backoff_s"), [(600, 0), (5, 3600)])
async def test_retry_after_is_honoured(
    store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch, wait_s: float, backoff_s: float
) -> None:
    """The remote's wait replaces the backoff, whether shorter or longer; nothing is tried before it."""
    fixed_backoff(monkeypatch, timedelta(seconds=backoff_s))
    ids = await raise_many(store, 2, [CHAT])
    notifier = Faulty(CHAT, scripted({ids[0]: [flood(wait_s)]}))
    first = Dispatcher(store, [notifier])
    first.start()
    try:
        await until(lambda: deliveries(store)[0][2] == 1)
    finally:
        await first.stop()
    failed_at = clock.now
    retry_at = (failed_at + timedelta(seconds=wait_s)).isoformat(timespec="milliseconds")
    assert deliveries(store)[0] == (ids[0], "pending", 1, retry_at, f"RetryAfter: retry after {wait_s:g} s")
    (head, _) = await store.due_deliveries(CHAT, 10)
    assert head.next_attempt_at == failed_at + timedelta(seconds=wait_s)

    clock.now = failed_at + timedelta(seconds=wait_s - 1)  # a second early
    early = Dispatcher(store, [notifier])
    assert await run_dispatcher(early, within=0.3) is False  # stops with the alert still queued
    assert notifier.calls == [(ids[0], flood(wait_s))]  # not tried again before the wait was over

    clock.now = failed_at + timedelta(seconds=wait_s)
    assert await run_dispatcher(Dispatcher(store, [notifier]))
    assert notifier.calls == [(ids[0], flood(wait_s)), (ids[0], "sent"), (ids[1], "sent")]
    assert notifier.sent == ids
    assert [(s, n) for _, s, n, _, _ in deliveries(store)] == [("sent", 2), ("sent", 1)]


async def test_retry_after_zero_is_retried_at_once(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_backoff(monkeypatch, timedelta(hours=1))  # would hold the test up if it were used
    ids = await raise_many(store, 2, [CHAT])
    notifier = Faulty(CHAT, scripted({ids[0]: [flood(0), flood(0), flood(0)]}))
    assert await run_dispatcher(Dispatcher(store, [notifier]))
    assert notifier.sent == ids
    assert [c for _, c in notifier.calls] == [flood(0)] * 3 + ["sent", "sent"]


async def test_edit_that_hangs_is_given_up_and_made_later(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "SEND_TIMEOUT_S", 0.05)

    class HangingEditor(Faulty):
        def __init__(self) -> None:
            super().__init__("telegram:1")
            self.edits: list[tuple[str, int]] = []  # (remote id, sources listed)
            self.hang_edits = True

        async def edit(self, remote_id: str, alert: Mapping[str, Any]) -> None:
            if self.hang_edits:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
            self.edits.append((remote_id, len(alert["sources"])))

    other = Channel(1902000009, "Другой канал", "other_channel")
    (first,) = await store_and_raise(store, [Post(GLADKOV, 1, T0, TEXT)], [missile()], ["telegram:1"])
    editor = HangingEditor()
    assert await run_dispatcher(Dispatcher(store, [editor]))
    (dup,) = await store_and_raise(store, [Post(other, 2, T0, TEXT)], [missile()], ["telegram:1"])
    assert (dup.suppressed, dup.merged_into) == ("duplicate", first.id)

    assert await run_dispatcher(Dispatcher(store, [editor]))  # the edit timed out: not stuck on it
    assert (editor.cancelled, editor.edits) == (1, [])
    assert [s.alert_id for s in await store.stale_deliveries("telegram:1", 10)] == [first.id]
    editor.hang_edits = False
    assert await run_dispatcher(Dispatcher(store, [editor]))
    assert editor.edits == [(f"r-{first.id}", 2)]
    assert await store.stale_deliveries("telegram:1", 10) == []
    assert editor.sent == [first.id]


# --- done when: 1,000 alerts through a notifier failing 30% of its calls -------------------------------


async def test_thousand_alerts_through_a_flaky_notifier_arrive_exactly_once_in_order(
    store: SQLiteStore, no_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "SEND_TIMEOUT_S", 0.005)
    rng = random.Random(20240312)
    kinds = [ERROR, OS_ERROR, HTTP_502, HANG, flood(0)]

    def transient(_ident: str) -> str | None:
        return rng.choice(kinds) if rng.random() < 0.30 else None

    ids = await raise_many(store, 1000, [CHAT])
    assert len(set(ids)) == 1000
    notifier = Faulty(CHAT, transient)
    dispatcher = Dispatcher(store, [notifier])
    assert await run_dispatcher(dispatcher, within=600)  # a hang guard

    assert notifier.sent == ids  # every alert, once, in order: 0 lost, 0 duplicated
    failures = [fault for _, fault in notifier.calls if fault != "sent"]
    assert len(notifier.calls) == 1000 + len(failures)
    assert 0.25 < len(failures) / len(notifier.calls) < 0.35  # the faults were injected as asked
    assert {kind: failures.count(kind) > 40 for kind in kinds} == dict.fromkeys(kinds, True)
    assert notifier.cancelled == failures.count(HANG)
    assert dispatcher.sent == 1000

    rows = deliveries(store)
    assert [a for a, _, _, _, _ in rows] == ids
    assert {s for _, s, _, _, _ in rows} == {"sent"}
    assert {e for _, _, _, _, e in rows} == {None}
    assert sum(n for _, _, n, _, _ in rows) == len(notifier.calls)  # every attempt recorded, once
    per_alert = dict.fromkeys(ids, 0)
    for ident, _ in notifier.calls:
        per_alert[ident] += 1
    assert [n for _, _, n, _, _ in rows] == [per_alert[ident] for ident in ids]
    assert remote_ids(store) == [f"r-{ident}" for ident in ids]
    stats = await store.stats()
    assert (stats["alerts"], stats["deliveries"], stats["pending_deliveries"], stats["dead_letters"]) == (
        1000,
        {CHAT: {"sent": 1000}},
        0,
        0,
    )
    assert await store.due_deliveries(CHAT, 10) == []


# --- a 30-minute outage, and a restart -----------------------------------------------------------------


async def test_thirty_minute_outage_then_everything_in_order(
    store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed_backoff(monkeypatch, timedelta(minutes=5))
    start = clock.now
    notifier = Faulty(CHAT)
    notifier.down = True
    dispatcher = Dispatcher(store, [notifier])
    dispatcher.start()
    try:
        early = await raise_many(store, 3, [CHAT])
        await until(lambda: len(notifier.calls) == 1, dispatcher)
        clock.now = start + timedelta(minutes=6)
        await until(lambda: len(notifier.calls) == 2, dispatcher)
        clock.now = start + timedelta(minutes=10)  # raised mid-outage, queued behind the failing head
        late = await store_and_raise(
            store,
            [Post(GLADKOV, 100 + i, T0 + timedelta(hours=1, minutes=i), TEXT) for i in range(2)],
            [missile(), missile()],
            [CHAT],
        )
        for _ in range(5):
            dispatcher.wake()
            await asyncio.sleep(0.01)
        assert len(notifier.calls) == 2  # the head is not due again before 11 min
        for minute, calls in ((12, 3), (18, 4), (24, 5)):
            clock.now = start + timedelta(minutes=minute)
            await until(partial(calls_made, notifier, calls), dispatcher)
        assert notifier.calls == [(early[0], "outage")] * 5
        assert notifier.sent == []

        clock.now = start + timedelta(minutes=30)
        notifier.down = False
        assert await dispatcher.drain(within=60)  # a hang guard
    finally:
        await dispatcher.stop()

    ids = [*early, *(a.id for a in late)]
    assert notifier.sent == ids
    assert [a["delayed_s"] for a in notifier.delivered] == [1800, 1800, 1800, 1200, 1200]
    assert [a["created_at"] for a in notifier.delivered] == [
        *[start.isoformat(timespec="milliseconds")] * 3,
        *[(start + timedelta(minutes=10)).isoformat(timespec="milliseconds")] * 2,
    ]
    assert [(s, n, e) for _, s, n, _, e in deliveries(store)] == [
        ("sent", 6, None),  # five failures during the outage, then sent
        *[("sent", 1, None)] * 4,
    ]
    stats = await store.stats()
    assert (stats["deliveries"], stats["pending_deliveries"]) == ({CHAT: {"sent": 5}}, 0)


@pytest.mark.parametrize("fault", [ERROR, HANG])
async def test_new_dispatcher_after_a_restart_delivers_what_was_left(
    store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    fixed_backoff(monkeypatch, timedelta(minutes=5))
    start = clock.now
    ids = await raise_many(store, 4, [CHAT])
    before = Faulty(CHAT, lambda ident: fault if ident in ids[2:] else None)  # down from the third alert on
    dispatcher = Dispatcher(store, [before])
    dispatcher.start()
    try:
        await until(lambda: (ids[2], fault) in before.calls)
    finally:
        await dispatcher.stop()  # the process stops (a hanging send is cut short)
    assert before.sent == ids[:2]
    assert before.closed
    assert [s for _, s, _, _, _ in deliveries(store)] == ["sent", "sent", "pending", "pending"]

    clock.now = start + timedelta(minutes=30)
    after = Faulty(CHAT)
    assert await run_dispatcher(Dispatcher(store, [after]))
    assert after.sent == ids[2:]  # nothing sent twice, nothing left behind
    assert [a["delayed_s"] for a in after.delivered] == [1800, 1800]
    assert [s for _, s, _, _, _ in deliveries(store)] == ["sent"] * 4
    assert (await store.stats())["pending_deliveries"] == 0
