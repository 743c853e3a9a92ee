"""Catching up: what a channel posted, edited or deleted while tgmon was not listening.

Telethon's `catch_up` replays the update state Telegram kept, and users of every live monitor report
what that misses: posts lost across restarts, channels whose pushed updates silently stop (Telethon
issues #4345, #4361, #4535, #4235). So tgmon keeps its own cursor per channel, in the store,
committed in the same transaction as the posts it covers:

- `max_id`: every message up to it has been read from history. Only history moves it; live updates,
  which can arrive out of order, never do, so a hole is never skipped;
- `floor`: where tgmon started reading a channel it follows for the first time (older history is
  not wanted, and not a gap);
- `synced_at`: when the channel was last read in full.

A sync of one channel does up to three things:

1. refresh (on start and after a reconnect): the stored posts dated since the last full sync are
   fetched again by id. A changed text is an edit, kept as a version; a message Telegram no longer
   has was deleted meanwhile. History shows neither, and neither is pushed again after an outage;
2. forward: history after `max_id`, oldest first, in pages of 100. A channel followed for the first
   time starts from its latest `initial_backfill` posts;
3. gaps: ids between `floor` and `max_id` (the last `GAP_WINDOW`) that are neither stored, deleted
   nor known absent are asked for once; what Telegram does not have is recorded absent.

FloodWait is never slept through silently: every wait is logged and counted, then waited out, and
the read resumes from the last id it got. Network errors back off exponentially.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from telethon import utils

from bot.logging import get_logger
from bot.models import Deletion
from bot.sources import Cursor, SourceItem
from bot.sources.channels import Followed
from bot.sources.limits import Requests
from bot.sources.tl import message_to_post
from bot.store import WriteTx

log = get_logger("tgmon.catchup")

T = TypeVar("T")
PAGE = 100
REFRESH_LIMIT = 500  # stored posts re-fetched per channel and refresh, newest first
REFRESH_MIN = timedelta(minutes=10)
REFRESH_MAX = timedelta(hours=48)
GAP_WINDOW = 1000  # ids below max_id checked for holes


def cursor_key(channel_id: int) -> str:
    return f"telegram:{channel_id}"


@dataclass(slots=True)
class SyncState:
    max_id: int = 0
    floor: int = 0
    synced_at: datetime | None = None

    @classmethod
    def parse(cls, value: str | None) -> SyncState:
        if not value:
            return cls()
        try:
            data = json.loads(value)
            synced = data.get("synced_at")
            return cls(
                int(data.get("max_id", 0)),
                int(data.get("floor", 0)),
                datetime.fromisoformat(synced) if synced else None,
            )
        except (ValueError, TypeError, AttributeError):
            return cls()

    def encode(self) -> str:
        synced = self.synced_at.isoformat(timespec="seconds") if self.synced_at else None
        return json.dumps({"max_id": self.max_id, "floor": self.floor, "synced_at": synced})


class HistoryStore(Protocol):
    """What catching up needs of the store."""

    async def message_ids(self, channel_id: int, since: datetime, limit: int) -> list[int]: ...

    async def missing_ids(self, channel_id: int, low: int, high: int, limit: int) -> list[int]: ...

    async def write(self, job: Callable[[WriteTx], T]) -> T: ...


def message_entities(message: Any) -> dict[int, Any]:
    """The forward origin's chat, as Telethon resolved it with the history page, for its name."""
    forward = getattr(message, "forward", None)
    chat = getattr(forward, "chat", None) if forward is not None else None
    header = getattr(message, "fwd_from", None)
    if chat is None or header is None or header.from_id is None:
        return {}
    return {utils.get_peer_id(header.from_id): chat}


class CatchUp:
    def __init__(
        self,
        client: Any,
        store: HistoryStore,
        requests: Requests,
        *,
        initial_backfill: int = 100,
        on_message: Callable[[Any, Followed], None] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.request = requests
        self.initial_backfill = initial_backfill
        self.on_message = on_message

    async def sync(
        self, followed: Followed, state: SyncState, *, refresh: bool, forward: bool = True
    ) -> AsyncIterator[SourceItem]:
        """Refresh (if asked), read forward (unless told nothing moved), fill gaps; the last item carries the cursor."""
        now = datetime.now(UTC)
        label = followed.label
        seen: set[int] = set()
        if refresh:
            async for item in self._refresh(followed, state, now, label):
                yield item
        if forward or state.synced_at is None:
            async for item in self._forward(followed, state, label, seen):
                yield item
        async for item in self._gaps(followed, state, label, seen):
            yield item
        if refresh or state.synced_at is None:
            state.synced_at = now
        yield SourceItem(None, Cursor(cursor_key(followed.id), state.encode()), catchup=True)

    def _item(self, message: Any, followed: Followed) -> SourceItem | None:
        if self.on_message is not None:
            self.on_message(message, followed)
        post = message_to_post(message, followed.channel, message_entities(message))
        return SourceItem(post, catchup=True) if post is not None else None

    async def _by_ids(self, followed: Followed, ids: Sequence[int], what: str) -> list[Any]:
        found: list[Any] = []
        for start in range(0, len(ids), PAGE):
            chunk = list(ids[start : start + PAGE])
            fetch = partial(self.client.get_messages, followed.peer, ids=chunk)
            page = await self.request(what, followed.label, fetch)
            found.extend(page)
        return found

    async def _refresh(
        self, followed: Followed, state: SyncState, now: datetime, label: str
    ) -> AsyncIterator[SourceItem]:
        if state.synced_at is None:
            return
        since = now - min(max(now - state.synced_at, REFRESH_MIN), REFRESH_MAX)
        ids = await self.store.message_ids(followed.id, since - REFRESH_MIN, REFRESH_LIMIT)
        if not ids:
            return
        messages = await self._by_ids(followed, ids, "refresh")
        gone = []
        for mid, message in zip(ids, messages, strict=True):
            item = self._item(message, followed) if message is not None else None
            if item is None:
                gone.append(mid)
            else:
                yield item
        if gone:
            log.info("catchup.deleted_meanwhile", channel=label, count=len(gone))
            yield SourceItem(Deletion(followed.id, tuple(sorted(gone)), now), catchup=True)

    async def _first_page(self, followed: Followed, state: SyncState) -> list[Any]:
        """A channel followed for the first time: its latest posts, and where its history starts for us."""
        fetch = partial(self.client.get_messages, followed.peer, limit=max(1, min(self.initial_backfill, PAGE)))
        latest = await self.request("history", followed.label, fetch)
        if not latest:
            return []
        top = max(int(m.id) for m in latest)
        if self.initial_backfill < 0:
            state.floor = 0
            return []  # the whole history: read forward from the start
        if self.initial_backfill == 0:
            state.floor = state.max_id = top
            return []
        if self.initial_backfill > PAGE:
            state.floor = max(0, top - self.initial_backfill)
            state.max_id = state.floor
            return []  # more than a page: read forward from there
        wanted = sorted(latest, key=lambda m: int(m.id))
        state.floor = int(wanted[0].id) - 1
        return wanted

    async def _forward(
        self, followed: Followed, state: SyncState, label: str, seen: set[int]
    ) -> AsyncIterator[SourceItem]:
        read = 0
        if state.max_id == 0 and state.floor == 0 and state.synced_at is None:
            for message in await self._first_page(followed, state):
                state.max_id = max(state.max_id, int(message.id))
                seen.add(int(message.id))
                read += 1
                item = self._item(message, followed)
                if item is not None:
                    item.cursor = Cursor(cursor_key(followed.id), state.encode())
                    yield item
        while True:
            after = state.max_id
            fetch = partial(self.client.get_messages, followed.peer, limit=PAGE, min_id=after, reverse=True)
            page = await self.request("history", label, fetch)
            fresh = sorted((m for m in page if int(m.id) > after), key=lambda m: int(m.id))
            for message in fresh:
                state.max_id = int(message.id)
                seen.add(state.max_id)
                read += 1
                item = self._item(message, followed)
                if item is not None:
                    item.cursor = Cursor(cursor_key(followed.id), state.encode())
                    yield item
            if len(page) < PAGE or not fresh:
                break
        if read:
            log.info("catchup.read", channel=label, messages=read, up_to=state.max_id)

    async def _gaps(
        self, followed: Followed, state: SyncState, label: str, seen: set[int]
    ) -> AsyncIterator[SourceItem]:
        low = max(state.floor + 1, state.max_id - GAP_WINDOW)
        if state.max_id <= low:
            return
        stored = await self.store.missing_ids(followed.id, low, state.max_id, PAGE + len(seen))
        missing = [mid for mid in stored if mid not in seen][:PAGE]
        if not missing:
            return
        messages = await self._by_ids(followed, missing, "gaps")
        absent = []
        refilled = 0
        for mid, message in zip(missing, messages, strict=True):
            item = self._item(message, followed) if message is not None else None
            if item is None:
                absent.append(mid)
            else:
                refilled += 1
                yield item
        if absent:
            await self.store.write(lambda tx: tx.mark_absent(followed.id, absent))
        log.info("catchup.gaps", channel=label, refilled=refilled, absent=len(absent))
