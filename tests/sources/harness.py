"""Shared scaffolding for the live-source tests: a fake clock and sleep, a running TelegramSource, DB peeks.

Everything here drives production code (`TelegramSource`, `Pipeline`, `SQLiteStore`, the default rules)
against `FakeTelegram`; nothing touches the network and nothing sleeps for real beyond a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from telethon.tl import types

from bot.alerts.notifiers import JsonlNotifier, Notifier
from bot.alerts.outbox import Dispatcher
from bot.models import Channel
from bot.pipeline import Pipeline, RunStats
from bot.rules.engine import Engine
from bot.settings import ChannelConfig, Channels
from bot.sources.channels import Followed
from bot.sources.telegram import TelegramSource
from bot.store.sqlite import SQLiteStore, open_store
from tests.sources.fake_telegram import FakeTelegram


class FakeAsyncio:
    """Stands in for a module's `asyncio`: every name is the real one except `sleep`, which only records.

    Patch it over `bot.sources.<module>.asyncio` (never over asyncio itself): FloodWaits of minutes and
    network backoffs are then asserted by what was asked for, not by wall time.
    """

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.sleeps: list[float] = []
        self.clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.sleeps.append(delay)
        if self.clock is not None:
            self.clock.now += delay
        await asyncio.sleep(0)
        return result


class FakeClock:
    """Stands in for a module's `time`: `monotonic()` moves only when FakeAsyncio sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


async def wait_until(predicate: Callable[[], Any], within: float = 3.0, what: str = "condition") -> None:
    """Poll `predicate` (sync or async) every few ms; fail the test if it stays false (a hang guard)."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def db(data_dir: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows straight from the archive (WAL: a reader beside the running writer is fine)."""
    with contextlib.closing(sqlite3.connect(data_dir / "tgmon.db")) as conn:
        return [tuple(row) for row in conn.execute(sql, params)]


def count(data_dir: Path, table: str, where: str = "1", params: Sequence[Any] = ()) -> int:
    return int(db(data_dir, f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0])


def post_at(tg: FakeTelegram, channel_id: int, text: str, when: datetime, **fields: Any) -> Any:
    """A history message dated `when` (the fake dates each post 30 s after its clock)."""
    tg.clock = when - timedelta(seconds=30)
    return tg.post(channel_id, text, **fields)


def channels_of(tg: FakeTelegram, **config: Any) -> Channels:
    """Every channel of the fake, configured by @username (as `tgmon channels add` writes them)."""
    return Channels.of(ChannelConfig(username=c.username, **config) for c in tg.channels.values())


def followed(tg: FakeTelegram, channel_id: int, config: ChannelConfig | None = None) -> Followed:
    fake = tg.channels[channel_id]
    return Followed(
        config or ChannelConfig(username=fake.username),
        types.InputPeerChannel(fake.id, fake.access_hash),
        Channel(fake.id, fake.title, fake.username),
        not fake.left,
        fake.entity(),
    )


@dataclass
class LiveRun:
    """A `tgmon run` in miniature: TelegramSource → Pipeline → SQLiteStore + notifiers, started and stopped."""

    tg: FakeTelegram
    data_dir: Path
    channels: Channels
    engine: Engine
    notifiers: list[Notifier] | None = None
    digest_after: float | None = None
    source_options: dict[str, Any] = field(default_factory=dict)
    store: SQLiteStore | None = None
    source: TelegramSource | None = None
    pipeline: Pipeline | None = None
    task: asyncio.Task[RunStats] | None = None

    async def start(self, *, wait_first_round: bool = True) -> LiveRun:
        self.store = await open_store(self.data_dir)
        options = {"poll_interval": 60.0, "history_pace_s": 0, "resolve_pace_s": 0, **self.source_options}
        if callable(options.get("media")):
            options["media"] = options["media"](self.store)
        self.source = TelegramSource(self.tg, self.channels, self.store, **options)
        notifiers = self.notifiers if self.notifiers is not None else [JsonlNotifier(self.data_dir / "alerts.jsonl")]
        dispatcher = Dispatcher(self.store, notifiers, digest_after=self.digest_after)
        self.pipeline = Pipeline(self.store, self.engine, dispatcher, self.channels)
        self.task = asyncio.create_task(self.pipeline.run(self.source, drain=False))
        if wait_first_round:
            await self.settled(rounds=1)
        return self

    async def settled(self, rounds: int | None = None, within: float = 3.0) -> None:
        """Wait until the source finished `rounds` poll rounds and the pipeline stored what they read."""
        assert self.source is not None
        assert self.pipeline is not None
        assert self.task is not None
        target = rounds if rounds is not None else self.source.rounds + 1

        def done() -> bool:
            if self.task is not None and self.task.done():
                self.task.result()  # a crashed pipeline fails the test with its own error
            return bool(self.source is not None and self.source.rounds >= target)

        await wait_until(done, within, f"poll round {target}")
        await self.idle()

    async def idle(self) -> None:
        """Every item the source queued has been committed."""
        assert self.source is not None
        assert self.pipeline is not None

        def empty() -> bool:
            assert self.source is not None
            assert self.pipeline is not None
            return self.source._queue.empty() and self.pipeline._queue.empty()

        assert self.store is not None
        for _ in range(3):  # the reader may hold one item across its periodic sleep(0): look a few times
            await wait_until(empty, what="queues to drain")
            await asyncio.sleep(0.005)
        await wait_until(empty, what="queues to drain")
        await self.store.write(lambda tx: None)  # the writer committed whatever was handed to it before

    async def stop(self) -> RunStats:
        assert self.pipeline is not None
        assert self.task is not None
        assert self.store is not None
        self.pipeline.stop()
        stats = await asyncio.wait_for(self.task, 15)
        await self.store.close()
        return stats
