"""Telegram's TL objects → `bot.models` events: the one place that knows Telegram's types.

Live updates, messages fetched while catching up and recorded raw updates all go through these
functions, so each path is tested with the same real TL objects. Edits arrive as the full new
message and become a `Post` with `edit_date`: the store sees that the text changed and keeps the
old one as a version.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from telethon import utils
from telethon.tl import types

from bot.models import Channel, Deletion, Entity, Event, ForwardOrigin, Media, MediaKind, Post

CHANNEL_UPDATES = (types.UpdateNewChannelMessage, types.UpdateEditChannelMessage, types.UpdateDeleteChannelMessages)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def channel_of(entity: Any, channel_id: int) -> Channel:
    """A `Channel` from Telethon's `types.Channel` (or what we know when the entity is missing)."""
    if not isinstance(entity, types.Channel):
        return Channel(channel_id)
    username = entity.username
    if username is None and entity.usernames:
        active = [u.username for u in entity.usernames if u.active]
        username = active[0] if active else None
    return Channel(entity.id, entity.title, username)


def _entity_type(entity: types.TypeMessageEntity) -> str:
    """`MessageEntityTextUrl` → `text_url`, as Telegram's Bot API names them."""
    return _CAMEL.sub("_", type(entity).__name__.removeprefix("MessageEntity")).lower()


def entities_of(entities: Iterable[types.TypeMessageEntity] | None) -> tuple[Entity, ...]:
    return tuple(
        Entity(_entity_type(e), e.offset, e.length, getattr(e, "url", None)) for e in entities or () if e.length
    )


def _photo_size(photo: types.Photo) -> tuple[int | None, int | None, int | None]:
    """Width, height and bytes of the largest size Telegram keeps of a photo."""
    best: tuple[int | None, int | None, int | None] = (None, None, None)
    for size in photo.sizes:
        if isinstance(size, types.PhotoSize):
            candidate = (size.w, size.h, size.size)
        elif isinstance(size, types.PhotoSizeProgressive) and size.sizes:
            candidate = (size.w, size.h, max(size.sizes))
        else:
            continue
        if best[0] is None or (candidate[0] or 0) * (candidate[1] or 0) > (best[0] or 0) * (best[1] or 0):
            best = candidate
    return best


def _file_id(media: Any) -> str | None:
    try:
        packed = utils.pack_bot_file_id(media)
    except (TypeError, ValueError, AttributeError):
        return None
    return packed if isinstance(packed, str) else None


def _document_media(document: types.Document) -> Media:
    kind = MediaKind.DOCUMENT
    duration: float | None = None
    width = height = None
    file_name = None
    for attribute in document.attributes:
        if isinstance(attribute, types.DocumentAttributeVideo):
            kind = MediaKind.ROUND_VIDEO if attribute.round_message else MediaKind.VIDEO
            duration, width, height = float(attribute.duration), attribute.w, attribute.h
        elif isinstance(attribute, types.DocumentAttributeAudio):
            kind = MediaKind.VOICE if attribute.voice else MediaKind.AUDIO
            duration = float(attribute.duration)
        elif isinstance(attribute, types.DocumentAttributeFilename):
            file_name = attribute.file_name
        elif isinstance(attribute, types.DocumentAttributeImageSize):
            width, height = attribute.w, attribute.h
    # Stickers and GIFs also carry video or image attributes; their own attribute decides the kind.
    for attribute in document.attributes:
        if isinstance(attribute, types.DocumentAttributeSticker):
            kind = MediaKind.STICKER
        elif isinstance(attribute, types.DocumentAttributeAnimated):
            kind = MediaKind.ANIMATION
    return Media(kind, document.mime_type, document.size, duration, width, height, file_name, _file_id(document))


def media_of(media: types.TypeMessageMedia | None) -> tuple[Media, ...]:
    """Metadata of a message's media; every kind Telegram has maps to one of ours."""
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return ()
    if isinstance(media, types.MessageMediaPhoto):
        if not isinstance(media.photo, types.Photo):
            return (Media(MediaKind.PHOTO),)
        width, height, size = _photo_size(media.photo)
        return (Media(MediaKind.PHOTO, "image/jpeg", size, None, width, height, None, _file_id(media.photo)),)
    if isinstance(media, types.MessageMediaDocument):
        if not isinstance(media.document, types.Document):
            return (Media(MediaKind.DOCUMENT),)
        return (_document_media(media.document),)
    if isinstance(media, types.MessageMediaWebPage):
        return (Media(MediaKind.WEB_PAGE),)
    if isinstance(media, types.MessageMediaPoll):
        return (Media(MediaKind.POLL),)
    if isinstance(media, types.MessageMediaGeo | types.MessageMediaGeoLive | types.MessageMediaVenue):
        return (Media(MediaKind.GEO),)
    if isinstance(media, types.MessageMediaContact):
        return (Media(MediaKind.CONTACT),)
    return (Media(MediaKind.OTHER),)


def _forward_of(header: types.MessageFwdHeader | None, entities: Mapping[int, Any]) -> ForwardOrigin | None:
    if header is None:
        return None
    channel_id = header.from_id.channel_id if isinstance(header.from_id, types.PeerChannel) else None
    name = header.from_name
    if name is None and header.from_id is not None:
        entity = entities.get(utils.get_peer_id(header.from_id))
        name = getattr(entity, "title", None) or getattr(entity, "first_name", None)
    return ForwardOrigin(channel_id, header.channel_post, name, header.date)


def message_to_post(
    message: types.TypeMessage, channel: Channel, entities: Mapping[int, Any] | None = None
) -> Post | None:
    """A channel message as a `Post`; None for service messages and empty (deleted) ones."""
    if not isinstance(message, types.Message) or message.date is None:
        return None
    entities = entities or {}
    reply = message.reply_to.reply_to_msg_id if isinstance(message.reply_to, types.MessageReplyHeader) else None
    return Post(
        channel=channel,
        message_id=message.id,
        date=message.date.astimezone(UTC),
        text=message.message or "",
        entities=entities_of(message.entities),
        edit_date=message.edit_date.astimezone(UTC) if message.edit_date else None,
        views=message.views,
        forwards=message.forwards,
        replies=message.replies.replies if message.replies else None,
        reply_to=reply,
        forward=_forward_of(message.fwd_from, entities),
        grouped_id=message.grouped_id,
        author=message.post_author,
        media=media_of(message.media),
    )


class UpdateHandler:
    """Telegram updates → events, for the monitored channels only.

    `followed(channel_id)` is the channel as tgmon knows it, or None for a channel it does not
    follow; `entities` are the users and chats Telegram sent with the update, keyed by marked peer
    id (-100… for channels), as Telethon provides them. Names in the update win: they are the newest.
    """

    def __init__(self, followed: Callable[[int], Channel | None]) -> None:
        self.followed = followed

    def events(self, update: Any, entities: Mapping[int, Any], date: datetime | None = None) -> list[Event]:
        """`date`: when the update was received (a deletion carries no time of its own); now by default."""
        if isinstance(update, types.UpdateNewChannelMessage | types.UpdateEditChannelMessage):
            message = update.message
            peer = getattr(message, "peer_id", None)
            if not isinstance(peer, types.PeerChannel):
                return []
            known = self.followed(peer.channel_id)
            if known is None:
                return []
            entity = entities.get(utils.get_peer_id(peer))
            channel = channel_of(entity, peer.channel_id) if entity is not None else known
            post = message_to_post(message, channel, entities)
            return [post] if post is not None else []
        if isinstance(update, types.UpdateDeleteChannelMessages):
            if self.followed(update.channel_id) is None:
                return []
            return [Deletion(update.channel_id, tuple(update.messages), date or datetime.now(UTC))]
        return []
