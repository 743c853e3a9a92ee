"""source → rules → store + outbox → notifiers, as asyncio tasks joined by a bounded queue.

The reader task pulls events from the source and matches them against the rules; the writer task
stores a batch of events, the alerts they raise and the source cursor in one transaction; the
dispatcher delivers committed alerts. Rules run before the transaction, not inside it, so the single
writer spends its time on I/O only; the bounded queue makes a fast source wait for a slow disk
instead of filling memory.

`stop()` (SIGINT/SIGTERM) ends the source; what was read is still matched, stored and committed,
pending alerts get a grace period to go out, and `run` returns normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.alerts.outbox import Dispatcher, raise_alerts
from bot.alerts.policy import AlertPolicy
from bot.errors import StoreError
from bot.logging import get_logger
from bot.models import Deletion, Edit, Event, Post
from bot.places.finder import PlaceFinder
from bot.places.gazetteer import load_gazetteer
from bot.rules.analyzer import Analyzer
from bot.rules.engine import NO_MATCH, Document, Engine, Verdict
from bot.rules.remote import RulesProcess
from bot.settings import Channels
from bot.sources import Cursor, Source, SourceItem
from bot.store import Outcome, Store, WriteTx, write_until_stored

log = get_logger("tgmon.pipeline")

QUEUE_SIZE = 8000
BATCH_SIZE = 2000
MATCH_BATCH = 256  # posts sent to a rules process at a time
_IN_FLIGHT = 3  # batches on their way to it or back: it never waits for the next one
DRAIN_GRACE_S = 10.0
_RETRY_FIRST_S = 0.5  # a write the database refused: tried again after this, doubled up to the cap
_RETRY_CAP_S = 60.0
_YIELD_EVERY = 16


@dataclass(slots=True)
class RunStats:
    outcomes: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)  # by reason: muted, cooldown, duplicate
    held: Counter[str] = field(default_factory=Counter)  # alerts suppressed, by category
    posts: Counter[str] = field(default_factory=Counter)  # new posts stored, by channel (username or id)
    lag_s: float | None = None  # how old the newest post of the last batch was when it was stored
    batches: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def events(self) -> int:
        return sum(self.outcomes.values())


Matched = tuple[SourceItem, Verdict]


class Pipeline:
    def __init__(
        self,
        store: Store,
        engine: Engine | RulesProcess,
        dispatcher: Dispatcher,
        channels: Channels | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        queue_size: int = QUEUE_SIZE,
        on_alerts: Callable[[int], None] | None = None,
        policy: AlertPolicy | None = None,
        places: PlaceFinder | None = None,
    ) -> None:
        self.store = store
        # Matching in this process, or in a rules process of its own (`bot.rules.remote`).
        self.remote = engine if isinstance(engine, RulesProcess) else None
        self.analyzer = (
            Analyzer(engine, places or PlaceFinder(load_gazetteer()), self._homes)
            if isinstance(engine, Engine)
            else None
        )
        self.dispatcher = dispatcher
        self.channels = channels or Channels.of(())
        self.policy = policy or AlertPolicy(dispatcher.destinations, tags_of=self.channels.tags_of)
        self.batch_size = batch_size
        self.stats = RunStats()
        self.on_alerts = on_alerts
        self._queue: asyncio.Queue[Matched | None] = asyncio.Queue(maxsize=queue_size)
        self._stopping = asyncio.Event()
        self._tags: dict[int, frozenset[str]] = {}
        self.store_problem: str | None = None  # while the database refuses writes: why
        self._storing = 0  # events of the batch being written (retried while the database refuses writes)

    @property
    def engine(self) -> Engine:
        if self.analyzer is None:
            raise RuntimeError("the rules run in a rules process: this pipeline holds no engine")
        return self.analyzer.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        """A reloaded rules file takes over from the next post; the channels' context carries over."""
        if self.analyzer is None:
            raise RuntimeError("the rules run in a rules process: reload them there")
        self.analyzer.engine = engine

    def _homes(self, channel_id: int) -> tuple[int, ...]:
        return self.channels.homes_of(channel_id)

    def queued(self) -> int:
        """Events read but not yet stored: queued, and the batch being written or retried."""
        return self._queue.qsize() + self._storing

    def stop(self) -> None:
        """Stop reading; everything already read is still stored. Safe to call from a signal handler."""
        if not self._stopping.is_set():
            log.info("pipeline.stopping")
        self._stopping.set()

    def document(self, event: Post | Edit) -> Document:
        channel = event.channel
        tags = self._tags.get(channel.id)
        if tags is None:
            tags = self._tags[channel.id] = frozenset(self.channels.tags_of(channel.id, channel.username))
        date = event.date if isinstance(event, Post) else event.edit_date
        return Document(event.text, channel.id, channel.username, tags, date)

    async def run(self, source: Source, *, drain: bool = True, drain_timeout: float | None = None) -> RunStats:
        """Run `source` to its end (or `stop()`); with `drain`, return only once its alerts are delivered."""
        self.dispatcher.start()
        reader = asyncio.create_task(self._read(source), name="pipeline-read")
        writer = asyncio.create_task(self._write(), name="pipeline-write")
        stopper = asyncio.create_task(self._stopping.wait(), name="pipeline-stop")
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await writer
            if drain:
                await self.store.flush()
            grace = DRAIN_GRACE_S if self._stopping.is_set() else drain_timeout
            if drain or self._stopping.is_set():
                delivered = await self.dispatcher.drain(within=grace)
                if not delivered:
                    log.warning("pipeline.alerts_left_queued", hint="they are delivered on the next start")
        finally:
            stopper.cancel()
            for task in (reader, writer):
                if not task.done():
                    task.cancel()
            await self.dispatcher.stop()
            self.stats.finished = time.monotonic()
        reader_error = reader.exception() if reader.done() and not reader.cancelled() else None
        if reader_error is not None:
            raise reader_error
        return self.stats

    async def _read(self, source: Source) -> None:
        if self.remote is not None:
            await self._read_remote(source, self.remote)
            return
        assert self.analyzer is not None
        try:
            read = 0
            async for item in source.items(self.store.get_cursor):
                read += 1
                if read % _YIELD_EVERY == 0:
                    # Matching is CPU work that never awaits or blocks: let the event loop run the
                    # writer's callbacks, and let the writer thread, likely waiting for the GIL
                    # after a SQLite step, take it now instead of after a whole switch interval.
                    time.sleep(0)  # noqa: ASYNC251 (a zero sleep only gives up the GIL)
                    await asyncio.sleep(0)
                event = item.event
                if isinstance(event, Post | Edit):
                    result = self.analyzer.verdict(self.document(event), new=isinstance(event, Post))
                else:
                    result = NO_MATCH
                if self._queue.full():
                    await self._queue.put((item, result))
                else:
                    self._queue.put_nowait((item, result))
                if self._stopping.is_set():
                    return
        finally:
            await self._queue.put(None)

    async def _read_remote(self, source: Source, remote: RulesProcess) -> None:
        """Posts go to the rules process in batches while the next ones are read and the last stored."""
        incoming: asyncio.Queue[SourceItem | None] = asyncio.Queue(maxsize=4 * MATCH_BATCH)

        async def feed() -> None:
            try:
                async for item in source.items(self.store.get_cursor):
                    if incoming.full():
                        await incoming.put(item)
                    else:
                        incoming.put_nowait(item)
                    if self._stopping.is_set():
                        return
            finally:
                await incoming.put(None)

        feeder = asyncio.create_task(feed(), name="pipeline-feed")
        in_flight: deque[tuple[list[SourceItem], asyncio.Future[list[Verdict]]]] = deque()

        async def deliver() -> None:
            batch, answer = in_flight.popleft()
            verdicts = iter(await answer)
            for item in batch:
                result = next(verdicts) if isinstance(item.event, Post | Edit) else NO_MATCH
                if self._queue.full():
                    await self._queue.put((item, result))
                else:
                    self._queue.put_nowait((item, result))

        try:
            ended = False
            while not ended:
                if in_flight and (incoming.empty() or len(in_flight) >= _IN_FLIGHT):
                    await deliver()  # nothing more to send now, or enough on its way: take answers first
                    continue
                first = await incoming.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < MATCH_BATCH and not incoming.empty():
                    item = incoming.get_nowait()
                    if item is None:
                        ended = True
                        break
                    batch.append(item)
                docs = [
                    (self.document(item.event), isinstance(item.event, Post))
                    for item in batch
                    if isinstance(item.event, Post | Edit)
                ]
                in_flight.append((batch, remote.submit(docs)))
            while in_flight:
                await deliver()
            await feeder  # a source that failed fails the run
        finally:
            for _, answer in in_flight:
                answer.cancel()
            if not feeder.done():
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feeder
            await self._queue.put(None)

    async def _write(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            done = False
            while len(batch) < self.batch_size and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    done = True
                    break
                batch.append(item)
            await self._commit(batch)
            if done:
                return

    async def _commit(self, batch: Sequence[Matched]) -> None:
        """Store a batch with its alerts and cursors; a store outage is retried, never dropped."""

        def refused(exc: StoreError, delay: float) -> None:
            self.store_problem = str(exc)
            log.error("pipeline.store_unavailable", error=str(exc), retry_in_s=delay, batch=len(batch))

        self._storing = len(batch)
        outcomes, raised, held, held_categories = await write_until_stored(
            self.store, self._job(batch), refused, first_s=_RETRY_FIRST_S, cap_s=_RETRY_CAP_S
        )
        self._storing = 0
        if self.store_problem is not None:
            log.info("pipeline.store_available", stored=len(batch))
            self.store_problem = None
        self.stats.batches += 1
        self.stats.outcomes.update(o.value for o in outcomes)
        self.stats.suppressed.update(held)
        self.stats.held.update(held_categories)
        events = [item.event for item, _ in batch if item.event is not None]
        newest = None
        for event, outcome in zip(events, outcomes, strict=True):
            if outcome is Outcome.NEW and isinstance(event, Post):
                self.stats.posts[event.channel.username or str(event.channel.id)] += 1
                newest = event.date if newest is None else max(newest, event.date)
        if newest is not None:
            self.stats.lag_s = max((datetime.now(UTC) - newest).total_seconds(), 0.0)
        if raised:
            self.stats.alerts.update(raised)
            self.dispatcher.wake()
            if self.on_alerts:
                self.on_alerts(raised.total())

    def _job(
        self, batch: Sequence[Matched]
    ) -> Callable[[WriteTx], tuple[list[Outcome], Counter[str], Counter[str], Counter[str]]]:
        events: list[Event] = []
        changes: list[tuple[int, Post | Edit, Verdict, bool]] = []  # index into events, for raise_alerts
        cursors: dict[str, Cursor] = {}
        for item, result in batch:
            if item.event is not None:
                if not isinstance(item.event, Deletion):
                    changes.append((len(events), item.event, result, item.catchup))
                events.append(item.event)
            if item.cursor is not None:
                cursors[item.cursor.source] = item.cursor
        policy = self.policy
        prepared = self.store.prepare(events)

        def job(tx: WriteTx) -> tuple[list[Outcome], Counter[str], Counter[str], Counter[str]]:
            outcomes = tx.apply_prepared(prepared)
            raised = raise_alerts(
                tx,
                [event for _, event, _, _ in changes],
                [outcomes[index] for index, _, _, _ in changes],
                [result for _, _, result, _ in changes],
                policy,
                [late for _, _, _, late in changes],
            )
            for cursor in cursors.values():
                tx.set_cursor(cursor.source, cursor.value)
            delivered = Counter(alert.category for alert in raised if alert.suppressed is None)
            held = Counter((alert.suppressed or "").split(" ")[0] for alert in raised if alert.suppressed)
            held_categories = Counter(alert.category for alert in raised if alert.suppressed)
            return outcomes, delivered, held, held_categories

        return job
