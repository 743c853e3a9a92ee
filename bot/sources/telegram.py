"""The live Telegram source: a Telethon user client following the configured channels.

Three mechanisms, each covering what the others miss (docs/telegram.md):

- live updates pushed by Telegram (new posts, edits, deletions), converted as they arrive: the fast
  path, seconds from post to alert;
- catch-up (`catchup.py`) of every channel from its own cursor in the store: at start, after every
  reconnect, and when Telegram says a channel changed (`UpdateChannel`);
- a periodic poll while connected: one `messages.getPeerDialogs` request per 100 channels tells
  which channels have posts past their cursor, and only those are read. A channel whose pushes
  silently stopped costs one poll interval at most. (Telethon handles `UpdateChannelTooLong` itself
  and drops a difference that is "too long" without a word: the poll is what catches that too.)

Only catch-up moves a channel's cursor, so a post is never skipped because a live update came out
of order; the store's idempotent upserts make a post seen both ways count once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from telethon import errors, events, utils
from telethon.tl import functions, types

from bot.aio import wait_event
from bot.errors import ConfigError
from bot.logging import get_logger
from bot.models import Channel, Deletion
from bot.settings import Channels
from bot.sources import CursorLookup, SourceItem
from bot.sources.catchup import CatchUp, HistoryStore, SyncState, cursor_key
from bot.sources.channels import RESOLVE_PACE_S, ChannelRegistry, Followed
from bot.sources.limits import ChannelGone, FloodStats, Pacer, Requests
from bot.sources.media import MediaDownloader
from bot.sources.recording import Recorder
from bot.sources.session import UNAUTHORIZED
from bot.sources.tl import CHANNEL_UPDATES, UpdateHandler, channel_of
from bot.store import ChannelRecord

log = get_logger("tgmon.telegram")

LIVE_UPDATES = (*CHANNEL_UPDATES, types.UpdateChannel)
QUEUE_SIZE = 1000
HISTORY_PACE_S = 0.35  # between history requests, across all channels: about 3 a second at most
REFRESH_EVERY = timedelta(minutes=30)  # a poll that also re-reads recent posts for edits and deletions
RECONNECT_CAP_S = 300.0
DIALOGS_CHUNK = 100


class TelegramStore(HistoryStore, Protocol):
    async def channel_records(self) -> list[ChannelRecord]: ...


class _Failed:
    """A background task's exception, handed to the consumer through the queue."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _channel_of_update(update: Any) -> int | None:
    if isinstance(update, types.UpdateNewChannelMessage | types.UpdateEditChannelMessage):
        peer = getattr(update.message, "peer_id", None)
        return peer.channel_id if isinstance(peer, types.PeerChannel) else None
    return getattr(update, "channel_id", None)


class TelegramSource:
    """Live updates, catch-up and polling of the configured channels, as one stream of items."""

    name = "telegram"

    def __init__(
        self,
        client: Any,
        channels: Channels,
        store: TelegramStore,
        *,
        poll_interval: float = 90.0,
        initial_backfill: int = 100,
        media: MediaDownloader | None = None,
        recorder: Recorder | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        history_pace_s: float = HISTORY_PACE_S,
        resolve_pace_s: float = RESOLVE_PACE_S,
    ) -> None:
        self.client = client
        self.channels = channels
        self.store = store
        self.poll_interval = poll_interval
        self.media = media
        self.recorder = recorder
        self.on_progress = on_progress
        self.flood = FloodStats()
        self._resolving = Requests(Pacer(resolve_pace_s), self.flood)
        self.registry = ChannelRegistry(client, channels, [], store.write, requests=self._resolving)
        self.catchup = CatchUp(
            client,
            store,
            Requests(Pacer(history_pace_s), self.flood),
            initial_backfill=initial_backfill,
            on_message=self._fetched,
        )
        self.states: dict[int, SyncState] = {}
        self.last_update_at: datetime | None = None
        self.last_sync_at: datetime | None = None
        self.rounds = 0
        self._handler = UpdateHandler(self._followed_channel)
        self._queue: asyncio.Queue[SourceItem | _Failed] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._wake = asyncio.Event()
        self._urgent: set[int] = set()
        self._refresh_due = True

    def _followed_channel(self, channel_id: int) -> Channel | None:
        followed = self.registry.followed.get(channel_id)
        return followed.channel if followed is not None else None

    def reconnected(self) -> None:
        """The connection came back: catch every channel up, edits and deletions included."""
        log.info("telegram.reconnected", action="catching up every channel")
        self._refresh_due = True
        self._wake.set()

    def sync_soon(self, channel_ids: Iterable[int]) -> None:
        self._urgent.update(channel_ids)
        self._wake.set()

    async def items(self, cursors: CursorLookup) -> AsyncIterator[SourceItem]:
        self.registry = ChannelRegistry(
            self.client, self.channels, await self.store.channel_records(), self.store.write, requests=self._resolving
        )
        await self.registry.resolve_all()
        if not self.registry.followed:
            log.warning("telegram.no_channels", hint="add reachable channels to config/channels.toml")
        for channel_id in self.registry.followed:
            self.states[channel_id] = SyncState.parse(await cursors(cursor_key(channel_id)))
        builder = events.Raw(types=list(LIVE_UPDATES))
        self.client.add_event_handler(self._on_update, builder)
        listeners = getattr(self.client, "reconnect_listeners", None)
        if listeners is not None:
            listeners.append(self.reconnected)
        tasks = [
            asyncio.create_task(self._guard(self._poll()), name="telegram-poll"),
            asyncio.create_task(self._guard(self._watch_connection()), name="telegram-connection"),
        ]
        if self.media is not None:
            tasks.append(asyncio.create_task(self._guard(self.media.run()), name="telegram-media"))
        log.info("telegram.listening", channels=len(self.registry.followed), poll_interval_s=self.poll_interval)
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.client.remove_event_handler(self._on_update, builder)
            if listeners is not None:
                with contextlib.suppress(ValueError):
                    listeners.remove(self.reconnected)

    async def _guard(self, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except errors.UnauthorizedError as exc:
            await self._queue.put(_Failed(ConfigError(f"Telegram: {UNAUTHORIZED} ({type(exc).__name__})")))
        except Exception as exc:  # any crash of a background task ends the source, loudly
            await self._queue.put(_Failed(exc))

    def _fetched(self, message: Any, followed: Followed) -> None:
        if self.recorder is not None:
            self.recorder.message(message, followed.entity)
        if self.media is not None:
            self.media.offer(message, followed)

    async def _on_update(self, update: Any) -> None:
        channel_id = _channel_of_update(update)
        followed = self.registry.followed.get(channel_id) if channel_id is not None else None
        if followed is None:
            return
        self.last_update_at = datetime.now(UTC)
        entities: Mapping[int, Any] = getattr(update, "_entities", None) or {}
        if self.recorder is not None:
            self.recorder.update(update, entities)
        entity = entities.get(utils.get_peer_id(followed.peer))
        if isinstance(entity, types.Channel) and channel_of(entity, entity.id) != followed.channel:
            followed.channel, followed.entity = channel_of(entity, entity.id), entity  # renamed: history too
        if isinstance(update, types.UpdateChannel):
            # The channel changed (renamed, went private, the account was removed): read it now.
            log.info("telegram.channel_changed", channel=followed.label)
            self.sync_soon([followed.id])
            return
        if self.media is not None and isinstance(update, types.UpdateNewChannelMessage):
            self.media.offer(update.message, followed)
        for event in self._handler.events(update, entities):
            await self._queue.put(SourceItem(event))  # a full queue holds Telethon back: backpressure, not loss

    async def _poll(self) -> None:
        last_refresh = time.monotonic()
        first = True
        while True:
            started = time.monotonic()
            urgent, self._urgent = self._urgent, set()
            refresh = self._refresh_due or started - last_refresh >= REFRESH_EVERY.total_seconds()
            self._refresh_due = False
            self._wake.clear()
            moved: set[int] | None = None  # channels with posts past their cursor; None: read them all
            if urgent and not refresh and not first:
                targets = [f for f in self.registry.followed.values() if f.id in urgent]
            else:
                targets = list(self.registry.followed.values())
                moved = await self._moved(targets)
            complete = await self._round(targets, moved, refresh=refresh, show_progress=first)
            if refresh and complete:
                last_refresh = started
            elif refresh:
                self._refresh_due = True  # cut short (the network, again): edits and deletions still to read
            first = False
            remaining = self.poll_interval - (time.monotonic() - started)
            if remaining > 0:
                await wait_event(self._wake, remaining)

    async def _moved(self, followed: list[Followed]) -> set[int] | None:
        """Channels with posts past their cursor, by one getPeerDialogs request per 100 joined channels.

        Channels not joined have no dialog to ask about: they are always read.
        """
        joined = [f for f in followed if f.joined]
        tops: dict[int, int] = {}
        for start in range(0, len(joined), DIALOGS_CHUNK):
            chunk = joined[start : start + DIALOGS_CHUNK]
            request = functions.messages.GetPeerDialogsRequest([types.InputDialogPeer(f.peer) for f in chunk])
            try:
                result = await self.catchup.request("dialogs", f"{len(chunk)} channels", partial(self.client, request))
            except (errors.RPCError, ChannelGone, ConnectionError) as exc:
                log.warning("telegram.dialogs_failed", error=str(exc), fallback="reading each channel")
                return None
            for dialog in result.dialogs:
                if isinstance(dialog.peer, types.PeerChannel):
                    tops[dialog.peer.channel_id] = dialog.top_message
        return {
            f.id for f in followed if f.id not in tops or tops[f.id] > self.states.setdefault(f.id, SyncState()).max_id
        }

    async def _round(
        self, targets: list[Followed], moved: set[int] | None, *, refresh: bool, show_progress: bool
    ) -> bool:
        """One sync of each target; False if the network cut the round short."""
        started = time.monotonic()
        synced = 0
        for done, followed in enumerate(targets, 1):
            forward = moved is None or followed.id in moved
            if followed.id in self.registry.followed and (forward or refresh):
                if not await self._sync(followed, refresh=refresh, forward=forward):
                    return False
                synced += 1
            if show_progress and self.on_progress is not None:
                self.on_progress(done, len(targets))
        self.rounds += 1
        self.last_sync_at = datetime.now(UTC)
        log.info(
            "telegram.synced",
            channels=synced,
            refresh=refresh,
            seconds=round(time.monotonic() - started, 1),
            flood_waits=self.flood.waits,
        )
        return True

    async def _sync(self, followed: Followed, *, refresh: bool, forward: bool) -> bool:
        """Catch one channel up; False if the network cut it short (the round stops: retried next time)."""
        state = self.states.setdefault(followed.id, SyncState())
        try:
            async for item in self.catchup.sync(followed, state, refresh=refresh, forward=forward):
                if self.recorder is not None and isinstance(item.event, Deletion):
                    self.recorder.deletion(item.event, followed.entity)
                await self._queue.put(item)
        except ChannelGone as exc:
            await self.registry.gone(followed, exc.reason)
        except ConnectionError as exc:
            log.warning("telegram.sync_interrupted", channel=followed.label, error=str(exc), retry="next round")
            return False
        except errors.UnauthorizedError:
            raise
        except errors.RPCError as exc:
            log.error("telegram.sync_failed", channel=followed.label, error=str(exc), retry="next round")
        return True

    async def _watch_connection(self) -> None:
        """Telethon retries a dropped connection a few times; when it gives up, keep trying, backing off."""
        while True:
            with contextlib.suppress(Exception):
                await self.client.disconnected
            log.error("telegram.disconnected", action="reconnecting")
            delay = 1.0
            while True:
                try:
                    await self.client.connect()
                    break
                except (OSError, ConnectionError, TimeoutError) as exc:
                    log.warning("telegram.reconnect_failed", error=str(exc), retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_CAP_S)
            self.reconnected()
