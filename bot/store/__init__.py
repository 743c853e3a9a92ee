"""The archive and the alert outbox, behind a small interface.

The pipeline talks only to `Store` and `WriteTx`; `sqlite.py` is the default backend and a PostgreSQL
backend for multi-instance deployments can implement the same two protocols.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bot.errors import StoreError
from bot.models import Channel, Event

T = TypeVar("T")


class Outcome(StrEnum):
    """What applying one event did; alert decisions are made from these."""

    NEW = "new"  # first time this post was seen
    EDITED = "edited"  # its text changed: the old text became a stored version
    REFRESHED = "refreshed"  # counters or media changed, text did not
    UNCHANGED = "unchanged"  # nothing to do: the same event was applied before
    STALE = "stale"  # an edit older than the stored text; ignored
    UNKNOWN = "unknown"  # an edit of a post that is not in the archive
    DELETED = "deleted"  # a deletion was recorded (or already was)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: str
    created_at: datetime
    date: datetime
    channel_id: int
    message_id: int
    category: str
    severity: str
    payload: Mapping[str, Any]
    fingerprint: str | None = None  # the post's normalized text, hashed: the same statement elsewhere
    suppressed: str | None = None  # stored but not delivered: "muted …", "cooldown", "duplicate"
    merged_into: str | None = None  # a duplicate's twin, which lists it among its sources


@dataclass(frozen=True, slots=True)
class Mute:
    target: str  # channel:<id>, channel:@name, tag:<t>, category:<c>, rule:<id>
    until: datetime
    created_by: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A channel as the store knows it: enough to reach it again without resolving its username."""

    id: int
    username: str | None
    title: str | None
    access_hash: int | None
    available: bool = True
    unavailable_reason: str | None = None
    aliases: tuple[str, ...] = ()  # usernames it was configured or seen under, renames included


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A downloaded attachment: where it is (relative to the data directory) and its content hash."""

    channel_id: int
    message_id: int
    position: int
    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert waiting for one destination (or, when `remote_id` is set, a sent one to edit)."""

    destination: str
    seq: int
    alert_id: str
    attempts: int
    next_attempt_at: datetime | None
    payload: Mapping[str, Any]
    reply_to: str | None = None  # an all-clear: the remote id of the alarm it ends, at this destination
    clears: str | None = None  # an all-clear: the id of the alert it ends
    remote_id: str | None = None


class WriteTx(Protocol):
    """Writes inside one transaction; everything a job does commits together or not at all.

    Synchronous: jobs run on the store's writer thread, in one go (see store/sqlite_tx.py).
    """

    def apply(self, events: Sequence[Event]) -> list[Outcome]: ...

    def apply_prepared(self, batch: Any) -> list[Outcome]:
        """`apply` for a batch from `Store.prepare`."""
        ...

    def alerted_categories(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], set[str]]: ...

    def channels(self, ids: Sequence[int]) -> dict[int, Channel]:
        """Stored channels by id: names for events that arrive without them (edits, deletions)."""
        ...

    def add_alerts(self, alerts: Sequence[AlertRecord], destinations: Sequence[str]) -> list[str]:
        """Insert alerts not raised before (by id or by post and category); return the ids inserted."""
        ...

    def open_alert(self, channel_id: int, categories: Sequence[str], since: datetime) -> Mapping[str, Any] | None:
        """The channel's latest alarm of these categories (any, if empty) since then, not cleared, not held back.

        `own` is that alarm's id; `id`, `category`, `date`, `message_id`, `channel_id` describe the alert
        the analyst saw for it (another channel's, when this one was folded into it as a duplicate).
        """
        ...

    def clear_alert(self, alert_id: str, by: str) -> None: ...

    def twin_alert(
        self,
        fingerprint: str,
        category: str,
        around: datetime,
        window: timedelta,
        channel_id: int,
        clears: str | None = None,
    ) -> str | None:
        """A delivered alert of the same text and category from another channel, dated within `window` of
        `around`; for all-clears, one ending the same alert (`clears`)."""
        ...

    def add_source(self, alert_id: str, source: Mapping[str, Any]) -> None:
        """List one more channel under an alert; sent copies are marked for editing."""
        ...

    def last_alert_date(self, channel_id: int, category: str, before: datetime) -> datetime | None:
        """The post date of the channel's latest delivered alert of this category, up to `before`."""
        ...

    def active_mutes(self, now: datetime) -> dict[str, Mute]: ...

    def add_mute(self, mute: Mute) -> None: ...

    def remove_mute(self, target: str) -> bool: ...

    def mark_edited(self, destination: str, seq: int) -> None: ...

    def set_cursor(self, source: str, value: str) -> None: ...

    def save_channel(self, record: ChannelRecord) -> None:
        """Keep a resolved channel (id, access hash, names); a renamed one keeps its id and history."""
        ...

    def mark_absent(self, channel_id: int, message_ids: Sequence[int]) -> None:
        """Ids the channel's history does not have: deleted before they were seen."""
        ...

    def add_media_file(self, file: MediaFile) -> None: ...

    def forget_media_files(self, downloaded_before: datetime) -> list[str]:
        """Drop the records of files downloaded before then; their paths, relative to the data dir."""
        ...

    def mark_sent(
        self,
        destination: str,
        seqs: Sequence[int],
        remote_ids: Sequence[str | None],
        sources: Sequence[int] | None = None,
    ) -> None: ...

    def mark_retry(self, destination: str, seq: int, next_attempt_at: datetime, error: str) -> None: ...

    def mark_dead(self, destination: str, seq: int, error: str) -> None: ...


class Store(Protocol):
    path: Path

    async def write(self, job: Callable[[WriteTx], T]) -> T:
        """Run `job` in the single writer's next transaction and return its result."""
        ...

    def prepare(self, events: Sequence[Event]) -> Any:
        """Encode a batch for `WriteTx.apply_prepared` on the caller's thread, sparing the single writer."""
        ...

    async def get_cursor(self, source: str) -> str | None: ...

    async def due_deliveries(self, destination: str, limit: int) -> list[Delivery]:
        """Pending deliveries of one destination, oldest alert first (the head may not be due yet)."""
        ...

    async def pending_deliveries(self, destinations: Sequence[str]) -> int: ...

    async def recent_alerts(self, limit: int, category: str | None = None) -> list[dict[str, Any]]:
        """The latest alerts (payloads, suppressed ones included, with `suppressed` saying why), newest first."""
        ...

    async def mutes(self, now: datetime) -> list[dict[str, Any]]: ...

    async def stale_deliveries(self, destination: str, limit: int) -> list[Delivery]:
        """Sent alerts whose payload changed since (more sources): what an editing notifier updates."""
        ...

    async def channel_records(self) -> list[ChannelRecord]: ...

    async def channel_overview(self) -> list[dict[str, Any]]:
        """Per channel: names, availability, when resolved, posts stored and the latest post's date."""
        ...

    async def message_ids(self, channel_id: int, since: datetime, limit: int) -> list[int]:
        """Ids of the channel's stored posts dated from `since`, newest first, not deleted."""
        ...

    async def missing_ids(self, channel_id: int, low: int, high: int, limit: int) -> list[int]:
        """Ids in [low, high] neither stored, nor recorded deleted, nor known absent."""
        ...

    async def stats(self) -> dict[str, Any]: ...

    async def search(
        self, query: str, channel: str | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]: ...

    def export(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]: ...

    async def flush(self) -> None:
        """Wait until derived data (the search index) has caught up with what was committed."""
        ...

    async def optimize(self) -> None:
        """Routine upkeep a long-running service asks for now and then (query planner statistics)."""
        ...

    async def close(self) -> None: ...


async def write_until_stored(
    store: Store,
    job: Callable[[WriteTx], T],
    on_refused: Callable[[StoreError, float], None],
    *,
    first_s: float,
    cap_s: float,
) -> T:
    """`store.write(job)` until the database takes it. A refused write (a full disk, a read-only file)
    is told to `on_refused` with the wait before the next try, which doubles from `first_s` up to
    `cap_s`: what was read or sent is held, never dropped."""
    delay = first_s
    while True:
        try:
            return await store.write(job)
        except StoreError as exc:
            on_refused(exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, cap_s)
