"""A stand-in for Telegram at the narrowest boundary: the few TelegramClient methods tgmon calls.

Everything it hands out is a real Telethon TL object (`types.Channel`, `types.Message`, the
`UpdateNewChannelMessage`s pushed live, `messages.PeerDialogs`), so the conversion, catch-up and
live code under test is the production code. Faults are injected per request kind: a FloodWait on
the n-th history page, a channel going private, a dropped connection.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import errors, utils
from telethon.tl import functions, types

T0 = datetime(2024, 3, 12, 5, 0, tzinfo=UTC)


def flood(seconds: int = 0) -> errors.FloodWaitError:
    return errors.FloodWaitError(request=None, capture=seconds)


@dataclass
class FakeChannel:
    id: int
    username: str | None
    title: str
    access_hash: int
    messages: dict[int, Any] = field(default_factory=dict)
    left: bool = True
    private: bool = False
    next_id: int = 1

    def entity(self) -> Any:
        if self.private:
            return types.ChannelForbidden(id=self.id, access_hash=self.access_hash, title=self.title, broadcast=True)
        return types.Channel(
            id=self.id, title=self.title, photo=types.ChatPhotoEmpty(), date=T0, access_hash=self.access_hash,
            username=self.username, broadcast=True, left=self.left,
        )  # fmt: skip


class FakeTelegram:
    """Channels and their history; records every request so tests can count them."""

    def __init__(self) -> None:
        self.channels: dict[int, FakeChannel] = {}
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, list[BaseException | None]] = {}
        self.handlers: list[tuple[Callable[[Any], Awaitable[None]], Any]] = []
        self.reconnect_listeners: list[Callable[[], None]] = []
        self._disconnected: asyncio.Future[None] | None = None
        self.clock = T0

    # --- building the world -------------------------------------------------------------------

    def add_channel(self, channel_id: int, username: str | None, title: str, *, left: bool = True) -> FakeChannel:
        channel = FakeChannel(channel_id, username, title, access_hash=channel_id * 7 + 1, left=left)
        self.channels[channel_id] = channel
        return channel

    def post(self, channel_id: int, text: str, *, minutes: float | None = None, **fields: Any) -> Any:
        """A new message in a channel's history (not pushed: `push` does that)."""
        channel = self.channels[channel_id]
        self.clock = T0 + timedelta(minutes=minutes) if minutes is not None else self.clock + timedelta(seconds=30)
        message = types.Message(
            id=channel.next_id, peer_id=types.PeerChannel(channel_id), date=self.clock, message=text, post=True,
            **fields,
        )  # fmt: skip
        channel.messages[message.id] = message
        channel.next_id += 1
        return message

    def edit(self, channel_id: int, message_id: int, text: str) -> Any:
        old = self.channels[channel_id].messages[message_id]
        new = types.Message(
            id=message_id, peer_id=old.peer_id, date=old.date, message=text, post=True,
            edit_date=old.date + timedelta(minutes=3),
        )  # fmt: skip
        self.channels[channel_id].messages[message_id] = new
        return new

    def delete(self, channel_id: int, *message_ids: int) -> None:
        for message_id in message_ids:
            self.channels[channel_id].messages.pop(message_id, None)

    def fail(self, kind: str, *outcomes: BaseException | None) -> None:
        """The next calls of `kind` raise these in turn (None: that call succeeds)."""
        self.faults.setdefault(kind, []).extend(outcomes)

    def _call(self, kind: str) -> None:
        self.calls[kind] += 1
        queue = self.faults.get(kind)
        if queue:
            fault = queue.pop(0)
            if fault is not None:
                raise fault

    def _channel(self, peer: Any) -> FakeChannel:
        channel_id = getattr(peer, "channel_id", None) or getattr(peer, "id", None)
        channel = self.channels.get(channel_id) if channel_id is not None else None
        if channel is None:
            raise errors.ChannelInvalidError(request=None)
        if channel.private:
            raise errors.ChannelPrivateError(request=None)
        if getattr(peer, "access_hash", channel.access_hash) != channel.access_hash:
            raise errors.ChannelInvalidError(request=None)
        return channel

    # --- the TelegramClient surface tgmon uses ----------------------------------------------------

    async def get_entity(self, ref: Any) -> Any:
        self._call("resolve")
        for channel in self.channels.values():
            if isinstance(ref, str) and channel.username and channel.username.lower() == ref.lower():
                if channel.private:
                    raise errors.ChannelPrivateError(request=None)
                return channel.entity()
            if isinstance(ref, types.PeerChannel) and ref.channel_id == channel.id:
                return channel.entity()
        if isinstance(ref, str):
            raise errors.UsernameNotOccupiedError(request=None)
        raise ValueError(f"Could not find the input entity for {ref!r}")

    async def __call__(self, request: Any) -> Any:
        if isinstance(request, functions.channels.GetChannelsRequest):
            self._call("get_channels")
            known = [self.channels[c.channel_id] for c in request.id if c.channel_id in self.channels]
            if any(
                c.access_hash != self.channels[c.channel_id].access_hash
                for c in request.id
                if c.channel_id in self.channels
            ):
                raise errors.ChannelInvalidError(request=None)  # an access hash of another account: the whole request
            chats = [channel.entity() for channel in known]
            return types.messages.Chats(chats=chats)
        if isinstance(request, functions.channels.JoinChannelRequest):
            self._call("join")
            self._channel(request.channel).left = False
            return types.Updates(updates=[], users=[], chats=[], date=self.clock, seq=0)
        if isinstance(request, functions.messages.GetPeerDialogsRequest):
            self._call("dialogs")
            dialogs = []
            for dialog_peer in request.peers:
                channel = self.channels[dialog_peer.peer.channel_id]
                if channel.left or channel.private:
                    continue
                dialogs.append(
                    types.Dialog(
                        peer=types.PeerChannel(channel.id), top_message=max(channel.messages, default=0),
                        read_inbox_max_id=0, read_outbox_max_id=0, unread_count=0, unread_mentions_count=0,
                        unread_reactions_count=0, unread_poll_votes_count=0,
                        notify_settings=types.PeerNotifySettings(),
                    )
                )  # fmt: skip
            return types.messages.PeerDialogs(dialogs=dialogs, messages=[], chats=[], users=[], state=None)
        raise NotImplementedError(type(request).__name__)

    async def get_messages(
        self,
        peer: Any,
        limit: int | None = None,
        *,
        ids: list[int] | None = None,
        min_id: int = 0,
        reverse: bool = False,
    ) -> list[Any]:
        if ids is not None:
            self._call("by_ids")
            channel = self._channel(peer)
            return [channel.messages.get(i) for i in ids]
        self._call("history")
        channel = self._channel(peer)
        newer = sorted((m for i, m in channel.messages.items() if i > min_id), key=lambda m: m.id)
        if reverse:
            return newer[: limit or None]
        return list(reversed(newer))[: limit or None]

    async def download_media(self, message: Any, file: str) -> str:
        self._call("download")
        with open(file, "wb") as handle:
            handle.write(f"file of message {message.id}".encode())
        return file

    def add_event_handler(self, callback: Callable[[Any], Awaitable[None]], event: Any) -> None:
        self.handlers.append((callback, event))

    def remove_event_handler(self, callback: Callable[[Any], Awaitable[None]], event: Any) -> None:
        self.handlers = [(c, e) for c, e in self.handlers if c != callback]  # Telethon compares with ==

    @property
    def disconnected(self) -> asyncio.Future[None]:
        if self._disconnected is None:
            self._disconnected = asyncio.get_running_loop().create_future()
        return self._disconnected

    async def connect(self) -> None:
        self._call("connect")
        self._disconnected = None

    # --- driving it ---------------------------------------------------------------------------

    async def push(self, update: Any) -> None:
        """Deliver a live update to the registered handlers, with its channel as Telethon attaches it."""
        channel_id = getattr(getattr(update, "message", None), "peer_id", None)
        channel_id = getattr(channel_id, "channel_id", None) or getattr(update, "channel_id", None)
        if channel_id in self.channels:
            entity = self.channels[channel_id].entity()
            update._entities = {utils.get_peer_id(entity): entity}
        for callback, _ in list(self.handlers):
            await callback(update)

    async def push_new(self, channel_id: int, text: str, **fields: Any) -> Any:
        message = self.post(channel_id, text, **fields)
        await self.push(types.UpdateNewChannelMessage(message, pts=message.id, pts_count=1))
        return message

    def drop_connection(self) -> None:
        """Telethon gave up reconnecting: `disconnected` resolves."""
        self.disconnected.set_result(None)

    def auto_reconnected(self) -> None:
        """Telethon reconnected by itself after a drop."""
        for listener in list(self.reconnect_listeners):
            listener()
