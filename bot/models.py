"""Source-agnostic records: what every source produces and every later stage consumes.

Sources (Telegram, JSONL replay, Telegram Desktop exports) translate into these; nothing downstream
ever sees a Telethon object, so the store, the rules and the alerts can be tested without Telegram.

Records are treated as immutable but are not `frozen`: a frozen dataclass takes six times longer to
build, and a replay builds several of these for every post.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class MediaKind(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    AUDIO = "audio"
    VOICE = "voice"
    ROUND_VIDEO = "round_video"
    STICKER = "sticker"
    ANIMATION = "animation"
    WEB_PAGE = "web_page"
    POLL = "poll"
    GEO = "geo"
    CONTACT = "contact"
    OTHER = "other"


@dataclass(slots=True)
class Media:
    """Metadata of one attachment; the file itself is never required."""

    kind: MediaKind
    mime_type: str | None = None
    size: int | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    file_name: str | None = None
    file_id: str | None = None


@dataclass(slots=True)
class Entity:
    """A formatting or link entity; offsets are UTF-16 code units, as Telegram counts them."""

    type: str
    offset: int
    length: int
    url: str | None = None


@dataclass(slots=True)
class ForwardOrigin:
    channel_id: int | None = None
    message_id: int | None = None
    name: str | None = None
    date: datetime | None = None


@dataclass(slots=True)
class Channel:
    """A channel as a source last saw it; `id` is the bare MTProto id (no -100 prefix)."""

    id: int
    title: str | None = None
    username: str | None = None

    def updated(self, newer: Channel) -> Channel:
        """This channel with what `newer` knows; a source may lack the title or the username."""
        return Channel(self.id, newer.title or self.title, newer.username or self.username)


@dataclass(slots=True)
class Post:
    """The full state of one channel message, new or refreshed: the store upserts it."""

    channel: Channel
    message_id: int
    date: datetime
    text: str = ""
    entities: tuple[Entity, ...] = ()
    edit_date: datetime | None = None
    views: int | None = None
    forwards: int | None = None
    replies: int | None = None
    reply_to: int | None = None
    forward: ForwardOrigin | None = None
    grouped_id: int | None = None
    author: str | None = None
    media: tuple[Media, ...] = ()

    @property
    def key(self) -> tuple[int, int]:
        return (self.channel.id, self.message_id)

    @property
    def has_real_id(self) -> bool:
        """Synthetic ids (see `synthetic_message_id`) are negative and never link to t.me."""
        return self.message_id > 0


@dataclass(slots=True)
class Edit:
    """A new text for a known post; `media=None` means the attachments did not change."""

    channel: Channel
    message_id: int
    edit_date: datetime
    text: str
    entities: tuple[Entity, ...] = ()
    media: tuple[Media, ...] | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.channel.id, self.message_id)


@dataclass(slots=True)
class Deletion:
    channel_id: int
    message_ids: tuple[int, ...]
    date: datetime = field(default_factory=lambda: datetime.now(UTC))


Event = Post | Edit | Deletion


def channel_id_of(event: Event) -> int:
    return event.channel_id if isinstance(event, Deletion) else event.channel.id


def synthetic_message_id(channel_id: int, date: datetime, text: str) -> int:
    """A stable id for posts whose source lacks one, so re-running a replay stores nothing twice.

    Negative, so it can never collide with Telegram's positive message ids.
    """
    digest = hashlib.blake2b(
        f"{channel_id}\x1f{date.isoformat()}\x1f{text}".encode("utf-8", "surrogatepass"), digest_size=8
    ).digest()
    return -(int.from_bytes(digest, "big") >> 2) - 1


def post_link(channel_id: int, username: str | None, message_id: int) -> str | None:
    """t.me link of a post: public form with a username, private `/c/` form without."""
    if message_id <= 0:
        return None
    if username:
        return f"https://t.me/{username}/{message_id}"
    return f"https://t.me/c/{channel_id}/{message_id}"


def bare_channel_id(value: int) -> int | None:
    """A channel's bare MTProto id, from itself or the Bot API's `-100…` chat id; None if it is neither."""
    if value > 0:
        return value
    text = str(value)
    if text.startswith("-100") and len(text) > 4 and int(text[4:]) > 0:
        return int(text[4:])
    return None
