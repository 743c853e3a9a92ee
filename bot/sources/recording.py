"""Raw Telegram traffic on disk: `tgmon run --record FILE` writes it, `tgmon replay --tl FILE` reads it.

One JSON line per TL object, `{"received_at": ISO-8601, "tl": base64 of bytes(obj)}`, read back with
Telethon's `BinaryReader(data).tgread_object()`:

- each live update of a followed channel, as an `Updates` holding it with the `Channel` and `User`
  objects Telegram sent along (what Telethon's update handling dispatched, gap fills included);
- each message read from history while catching up, as the bare `Message`, preceded once per
  channel and run by the `Channel` object it came with.

Replaying sends those objects through the same conversion as live updates (`bot.sources.tl`), so
an incident can be replayed offline and a test written from real traffic. Playback also accepts
what Telegram itself sends: `Updates`, `UpdatesCombined`, `UpdateShort`, bare updates and messages.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from telethon import utils
from telethon.errors import TypeNotFoundError
from telethon.extensions import BinaryReader
from telethon.tl import types

from bot.models import Channel, Deletion, Event
from bot.sources.tl import UpdateHandler, channel_of, message_to_post


def encode(obj: Any) -> bytes:
    """One recording line (with its newline) for a TL object."""
    received = datetime.now(UTC).isoformat(timespec="milliseconds")
    return orjson.dumps({"received_at": received, "tl": base64.b64encode(bytes(obj)).decode("ascii")}) + b"\n"


def decode(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("`tl` must be a base64 string")
    try:
        with BinaryReader(base64.b64decode(value, validate=True)) as reader:
            return reader.tgread_object()
    except (binascii.Error, struct.error, TypeNotFoundError, BufferError) as exc:
        raise ValueError(f"`tl` is not a serialized Telethon object ({type(exc).__name__}: {exc})") from None


class Recorder:
    """Appends every update and history message to a recording; flushed per line, so a crash loses none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BinaryIO = path.open("ab")
        self._channels: set[int] = set()

    def _write(self, obj: Any) -> None:
        self._handle.write(encode(obj))
        self._handle.flush()

    def update(self, update: Any, entities: Mapping[int, Any]) -> None:
        chats = [e for e in entities.values() if isinstance(e, types.Channel | types.ChannelForbidden | types.Chat)]
        users = [e for e in entities.values() if isinstance(e, types.User)]
        now = datetime.now(UTC)
        self._write(types.Updates(updates=[update], users=users, chats=chats, date=now, seq=0))

    def deletion(self, deletion: Deletion, entity: Any) -> None:
        """Deletions found while catching up (a message gone from history) are written as the update
        Telegram would have pushed, so a replay of the recording deletes what the live run deleted."""
        update = types.UpdateDeleteChannelMessages(deletion.channel_id, list(deletion.message_ids), pts=0, pts_count=0)
        chats = [entity] if entity is not None else []
        self._write(types.Updates(updates=[update], users=[], chats=chats, date=deletion.date, seq=0))

    def message(self, message: Any, entity: Any) -> None:
        if entity is not None and entity.id not in self._channels:
            self._channels.add(entity.id)
            self._write(entity)
        self._write(message)

    def close(self) -> None:
        self._handle.close()


class Playback:
    """Recorded TL objects → events, with channel names from the `Channel` objects seen so far."""

    def __init__(self) -> None:
        self._entities: dict[int, Any] = {}
        self._handler = UpdateHandler(self._channel)

    def _channel(self, channel_id: int) -> Channel:
        return channel_of(self._entities.get(utils.get_peer_id(types.PeerChannel(channel_id))), channel_id)

    def _learn(self, *entities: Any) -> dict[int, Any]:
        for entity in entities:
            if isinstance(entity, types.Channel | types.ChannelForbidden | types.Chat | types.User):
                self._entities[utils.get_peer_id(entity)] = entity
        return self._entities

    def events(self, record: Any) -> list[Event]:
        """Raises ValueError on a line that is not a recorded TL object."""
        if not isinstance(record, dict):
            raise ValueError("a recording line must be a JSON object")
        received = record.get("received_at")
        try:
            when = datetime.fromisoformat(received) if isinstance(received, str) else None
        except ValueError:
            when = None
        return self.objects(decode(record.get("tl")), when)

    def objects(self, obj: Any, received: datetime | None = None) -> list[Event]:
        """Events of one TL object; `received`: when it was recorded, the time of a bare deletion."""
        if isinstance(obj, types.Updates | types.UpdatesCombined):
            entities = self._learn(*obj.chats, *obj.users)
            when = obj.date or received
            return [event for update in obj.updates for event in self._handler.events(update, entities, when)]
        if isinstance(obj, types.UpdateShort):
            return self._handler.events(obj.update, self._entities, obj.date or received)
        if isinstance(obj, types.messages.ChannelMessages | types.messages.Messages | types.messages.MessagesSlice):
            self._learn(*obj.chats, *obj.users)
            return [event for message in obj.messages for event in self.objects(message, received)]
        if isinstance(obj, types.Message | types.MessageService):
            peer = obj.peer_id
            if not isinstance(peer, types.PeerChannel):
                return []
            post = message_to_post(obj, self._channel(peer.channel_id), self._entities)
            return [post] if post is not None else []
        if isinstance(obj, types.Channel | types.ChannelForbidden | types.Chat | types.User):
            self._learn(obj)
            return []
        events = self._handler.events(obj, self._entities, received)  # a bare update
        if not events and not isinstance(obj, types.TypeUpdate):
            raise ValueError(f"a {type(obj).__name__} is not something a channel recording holds")
        return events
